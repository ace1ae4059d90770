"""``python -m gemini_ws`` and the ``gemini-ws`` console script: see :mod:`gemini_ws._cli`."""

from __future__ import annotations

import sys

from ._cli import main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
