"""Coverage-guided fuzzing of frame decoding with atheris (an optional run: ``nox -s fuzz``).

Any byte string given to ``gemini_ws.decode`` must give a server message or our
``ProtocolError``; any other exception is a crash that atheris reports with the input that
caused it. The hypothesis property tests (tests/test_wire_properties.py) cover the same
contract in the normal suite; this run explores deeper, guided by coverage.

    python tests/fuzz/atheris_decode.py -runs=200000
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    import gemini_ws
    from gemini_ws import ProtocolError


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        gemini_ws.decode(data)
    # Also as text: the server may send text frames.
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    with contextlib.suppress(ProtocolError):
        gemini_ws.decode(text)


SEEDS = [
    b'{"setupComplete": {}}',
    b'{"serverContent": {"modelTurn": {"parts": [{"text": "Hello"}, {"inlineData": '
    b'{"mimeType": "audio/pcm;rate=24000", "data": "AAECAw=="}}]}}}',
    b'{"serverContent": {"turnComplete": true}, "usageMetadata": {"promptTokenCount": 515, '
    b'"responseTokenCount": 38, "totalTokenCount": 553, "promptTokensDetails": '
    b'[{"modality": "TEXT", "tokenCount": 515}]}}',
    b'{"toolCall": {"functionCalls": [{"name": "f", "args": {"x": 1}, "id": "function-call-1"}]}}',
    b'{"toolCallCancellation": {"ids": ["function-call-1"]}}',
    b'{"goAway": {"timeLeft": "9.5s"}}',
    b'{"sessionResumptionUpdate": {"newHandle": "h", "resumable": true, '
    b'"lastConsumedClientMessageIndex": "123"}}',
    b'{"serverContent": {"outputTranscription": {"text": "hi", "finished": true}, '
    b'"interrupted": true, "turnCompleteReason": "NEED_MORE_INPUT"}}',
]


def main() -> None:
    import tempfile
    from pathlib import Path

    corpus = Path(tempfile.mkdtemp(prefix="gemini-ws-fuzz-"))
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed{i}").write_bytes(seed)
    atheris.Setup([*sys.argv, str(corpus)], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
