"""Run the fake Gemini Live server standalone: ``python -m gemini_ws.testing --port 8765``.

Prints ``url: ...``, ``api_key: ...`` (and ``ca_file: ...`` with ``--tls``), then
``vertex_endpoint: ...`` (the Vertex AI path on the same host and port) and one
``bearer_token: ...`` line per accepted Vertex access token, on stdout, one per line, then a
line ``ready``, and serves until Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Sequence

import trio

from ._server import FakeLiveServer

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gemini_ws.testing",
        description="A fake Gemini Live (BidiGenerateContent) server for tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tls", action="store_true", help="serve wss:// with a throwaway CA")
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument(
        "--bearer-token",
        action="append",
        default=None,
        metavar="TOKEN",
        help="an OAuth access token accepted on the Vertex AI path (repeatable; default "
        "test-access-token)",
    )
    parser.add_argument("--chunk-count", type=int, default=5)
    parser.add_argument("--first-chunk-delay", type=float, default=0.0)
    parser.add_argument("--chunk-interval", type=float, default=0.0)
    parser.add_argument("--default-modality", choices=("TEXT", "AUDIO"), default="AUDIO")
    parser.add_argument("--connection-lifetime", type=float, default=None)
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="the lenient fake (strict=False): top-level keys checked only, no per-model rules",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    server = FakeLiveServer(
        tls=args.tls,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        bearer_tokens=tuple(args.bearer_token or ("test-access-token",)),
        chunk_count=args.chunk_count,
        first_chunk_delay=args.first_chunk_delay,
        chunk_interval=args.chunk_interval,
        default_modality=args.default_modality,
        connection_lifetime=args.connection_lifetime,
        strict=not args.lenient,
    )
    with tempfile.TemporaryDirectory(prefix="gemini-ws-fake-") as tmp:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            print(f"url: {server.url}")
            print(f"api_key: {server.api_key}")
            if server.ca_pem is not None:
                ca_file = trio.Path(tmp) / "ca.pem"
                await ca_file.write_bytes(server.ca_pem)
                print(f"ca_file: {ca_file}")
            print(f"vertex_endpoint: {server.vertex_endpoint()}")
            print(f"rest_url: {server.rest_url}")  # Client(rest_base_url=...): auth tokens
            for token in sorted(server.bearer_tokens):
                print(f"bearer_token: {token}")
            print("ready", flush=True)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    try:
        trio.run(_serve, args)
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C during shutdown
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
