"""Sphinx configuration for the gemini_ws documentation."""

from __future__ import annotations

import os
import sys

# Document the package from this checkout even when it is not installed.
sys.path.insert(0, os.path.abspath(".."))

project = "gemini_ws"
author = "the gemini_ws developers"
copyright = "2026, the gemini_ws developers"

try:
    from gemini_ws import __version__ as release
except ImportError:  # the package is mid-edit; the docs still build
    release = "unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    # sphinx.ext.intersphinx is deliberately off: the docs build without network access.
]

root_doc = "index"
exclude_patterns = ["_build"]
nitpicky = False

autodoc_typehints = "description"
# Types go next to documented parameters; no "Return type: None" on every class.
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"
default_role = "py:obj"

html_theme = "alabaster"
html_theme_options = {
    "description": "A trio-native client for the Gemini Live API",
}
