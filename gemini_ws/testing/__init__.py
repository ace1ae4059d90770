"""gemini_ws.testing: a faithful fake Gemini Live server, with fault injection.

```python
from gemini_ws.testing import open_fake_server, Fault

async with open_fake_server(chunk_count=3) as server:
    server.inject(Fault.close(1011, "Internal error encountered.", at_message=3))
    ...  # connect a client to server.url with server.api_key
```

The server speaks raw JSON exactly as PROTOCOL.md describes the real service; it does not use
the client's codec. It is strict by default: it refuses what the service refuses (unknown
fields at any depth, ``sessionResumption.transparent``, the per-model rules), with the service's
close codes and reasons; ``open_fake_server(strict=False)`` is the lenient fake. It also serves
the Vertex AI path (``server.vertex_endpoint()``, ``Authorization: Bearer`` with one of
``server.bearer_tokens``; see ``_server`` item 9). The documented
behaviours (reply derivation, tool trigger, fault counting, resumption rules, strict mode) live
in the docstrings of ``_server``, ``_model``, ``_faults``, ``_rules`` and ``_schema``.
"""

from ._faults import Fault as Fault
from ._model import FakeModel as FakeModel
from ._model import Responder as Responder
from ._model import ResponderItem as ResponderItem
from ._model import UserTurn as UserTurn
from ._model import audio_message as audio_message
from ._model import find_tool_calls as find_tool_calls
from ._model import scripted as scripted
from ._model import split_text as split_text
from ._model import text_message as text_message
from ._model import tone_pcm as tone_pcm
from ._server import DEFAULT_MODELS as DEFAULT_MODELS
from ._server import DEFAULT_VERTEX_MODELS as DEFAULT_VERTEX_MODELS
from ._server import FakeConnection as FakeConnection
from ._server import FakeLiveServer as FakeLiveServer
from ._server import FakeServerError as FakeServerError
from ._server import FakeSession as FakeSession
from ._server import open_fake_server as open_fake_server
from ._server import serve_fake_server as serve_fake_server
