"""The documentation builds cleanly (nitpicky: every reference resolves) and the API reference
shows the types users need: parameter types in signatures, context managers as context
managers, no internal constructor arguments."""

from __future__ import annotations

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None or importlib.util.find_spec("furo") is None,
    reason="the docs build needs sphinx and furo: pip install -e '.[docs]' (or '.[test]')",
)


@pytest.fixture(scope="module")
def api_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("docs_html")
    # A subprocess, as CI builds the docs: pytest's "warnings are errors" filter stays out of
    # Sphinx, and -n -W makes any warning or unresolved reference fail the build.
    command = [sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", "html"]
    command += ["-d", str(out / ".doctrees"), str(DOCS), str(out)]
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"sphinx failed:\n{result.stdout}\n{result.stderr}"
    return (out / "api.html").read_text(encoding="utf-8")


def signatures(page: str) -> dict[str, str]:
    """The rendered text of every signature on the page, by id (``gemini_ws.Client.stream``)."""
    found = {}
    for name, body in re.findall(r'<dt class="sig[^"]*" id="([^"]+)">(.*?)</dt>', page, re.S):
        text = html.unescape(re.sub(r"<[^>]+>", "", body))
        text = text.replace("¶", "").replace("[source]", "")
        text = re.sub(r"\s+", " ", text).strip()
        # (a long signature is split one parameter per line: "stream( model: str, ..., )")
        found[name] = re.sub(r"\( ", "(", re.sub(r",? \)", ")", text))
    return found


def signature(page: str, name: str) -> str:
    found = signatures(page)
    assert name in found, f"{name} is not documented in api.html"
    return found[name]


def test_send_methods_show_parameter_types(api_html: str) -> None:
    assert signature(api_html, "gemini_ws.LiveStream.send_audio") == (
        "async send_audio(pcm: bytes, sample_rate: int = 16000) → None"
    )
    assert signature(api_html, "gemini_ws.LiveStream.send_text") == (
        "async send_text(text: str, *, turn_complete: bool = True) → None"
    )
    assert "message: ClientMessage" in signature(api_html, "gemini_ws.LiveStream.send")
    assert "frame: bytes" in signature(api_html, "gemini_ws.LiveStream.send_video")


def test_client_shows_parameter_types(api_html: str) -> None:
    client = signature(api_html, "gemini_ws.Client")
    for parameter in (
        "api_key: str | None = None",
        "base_url: str | None = None",
        "ssl_context: SSLContext | None = None",
        "connect_timeout: float = 10.0",
        "pool_size: int = 0",
    ):
        assert parameter in client


def test_stream_is_an_async_context_manager_of_live_stream(api_html: str) -> None:
    stream = signature(api_html, "gemini_ws.Client.stream")
    assert stream.startswith("stream(model: str, config: LiveConfig | Mapping[str, Any] | None")
    assert "reconnect: bool | ReconnectPolicy = False" in stream
    assert stream.endswith("→ AbstractAsyncContextManager[LiveStream]")
    assert signature(api_html, "gemini_ws.testing.open_fake_server").endswith(
        "→ AbstractAsyncContextManager[FakeLiveServer]"
    )


def test_internal_constructors_are_hidden(api_html: str) -> None:
    for name in ("LiveStream", "LiveConnection", "ConnectionPool", "StreamStatistics"):
        assert signature(api_html, f"gemini_ws.{name}") == f"class gemini_ws.{name}"
    assert signature(api_html, "gemini_ws.StreamClosedError") == (
        "exception gemini_ws.StreamClosedError"
    )


def test_data_classes_show_field_types(api_html: str) -> None:
    # attrs annotates __init__ with the converters' types (Any); the reference shows the fields'
    config = signature(api_html, "gemini_ws.LiveConfig")
    assert "speech_config: SpeechConfig | None = None" in config
    assert "response_modalities: tuple[Modality, ...] = ()" in config
    call = signature(api_html, "gemini_ws.FunctionCall")
    assert "name: str = '', args: dict[str, Any] = {}" in call
    for name, text in signatures(api_html).items():
        for leftover in ("TypeAliasForwardRef", "attr_dict", ": Any ="):
            assert leftover not in text, f"{name}: {text}"
        # no private module paths (gemini_ws._stream.LiveStream): short names only
        assert not re.search(r"gemini_ws(\.testing)?\._[a-z]", text), f"{name}: {text}"
