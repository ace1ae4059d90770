"""Property tests of the wire codec.

- decode() of anything (any JSON value, any JSON object shaped like a server message with
  random values, any bytes) gives a ServerMessage or a ProtocolError, never anything else.
- encode() of random client messages gives exactly the JSON an independent, hand-written
  expectation describes, and decode_client() gives the message back.
- Random server messages survive encode_server() -> decode().
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any, get_args

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gemini_ws._errors import ProtocolError
from gemini_ws._types import (
    ActivityEnd,
    ActivityStart,
    AudioTranscriptionConfig,
    Blob,
    ClientContent,
    Content,
    FunctionCall,
    FunctionDeclaration,
    FunctionResponse,
    GenerationConfig,
    GoAway,
    GoogleSearch,
    InteractionStatus,
    Modality,
    ModalityTokenCount,
    NullValue,
    Part,
    PartialArg,
    RealtimeInput,
    Scheduling,
    ServerContent,
    ServerMessage,
    SessionResumptionConfig,
    SessionResumptionUpdate,
    Setup,
    Tool,
    ToolCall,
    ToolCallCancellation,
    ToolResponse,
    TrafficType,
    Transcription,
    UsageMetadata,
    WordInfo,
)
from gemini_ws._wire import decode, decode_all, decode_client, encode, encode_server

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVER_TYPES = get_args(ServerMessage)

# --- strategies ----------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

SERVER_KEYS = [
    "setupComplete",
    "serverContent",
    "toolCall",
    "toolCallCancellation",
    "goAway",
    "sessionResumptionUpdate",
    "usageMetadata",
    "voiceActivity",
    "voiceActivityDetectionSignal",
]
NESTED_KEYS = [
    "modelTurn",
    "parts",
    "text",
    "inlineData",
    "mimeType",
    "data",
    "thought",
    "turnComplete",
    "generationComplete",
    "interrupted",
    "inputTranscription",
    "outputTranscription",
    "finished",
    "functionCalls",
    "name",
    "args",
    "id",
    "ids",
    "timeLeft",
    "newHandle",
    "resumable",
    "lastConsumedClientMessageIndex",
    "promptTokenCount",
    "promptTokensDetails",
    "modality",
    "tokenCount",
    "role",
    "turnCompleteReason",
    "groundingMetadata",
    "urlContextMetadata",
    "urlMetadata",
    "sessionId",
    "functionCall",
    "thoughtSignature",
]
b64_like = st.sampled_from(["AAAA", "AA", "-_-_", "+/+/", "AA==", "!!", "A", ""]) | st.text(
    alphabet="ABCab+/-_=", max_size=12
)
shaped_values = st.recursive(
    json_scalars | b64_like,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(NESTED_KEYS) | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=25,
)
shaped_frames = st.dictionaries(
    st.sampled_from(SERVER_KEYS) | st.text(max_size=8), shaped_values, min_size=0, max_size=3
)


def check_decodes_or_protocol_error(frame: bytes | str) -> None:
    try:
        msg = decode(frame)
    except ProtocolError as exc:
        assert exc.excerpt is not None
    else:
        assert isinstance(msg, SERVER_TYPES)
    try:
        msgs = decode_all(frame)
    except ProtocolError:
        pass
    else:
        assert msgs and all(isinstance(m, SERVER_TYPES) for m in msgs)


@SETTINGS
@given(json_values)
def test_any_json_value(value: Any) -> None:
    check_decodes_or_protocol_error(json.dumps(value))
    check_decodes_or_protocol_error(json.dumps(value, indent=2).encode())


@SETTINGS
@given(shaped_frames)
def test_any_server_shaped_object(value: dict[str, Any]) -> None:
    check_decodes_or_protocol_error(json.dumps(value).encode())


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes(frame: bytes) -> None:
    check_decodes_or_protocol_error(frame)
    check_decodes_or_protocol_error(b'{"serverContent": ' + frame + b"}")


@SETTINGS
@given(st.text(max_size=200))
def test_any_text(frame: str) -> None:
    check_decodes_or_protocol_error(frame)


# --- client messages: encode vs an independent expectation ---------------------------------

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
texts = st.text(max_size=30)
free_form = st.dictionaries(
    st.text(max_size=10),  # any keys, including snake_case ones, must stay untouched
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@st.composite
def blobs(draw: st.DrawFn) -> tuple[Blob, dict[str, Any]]:
    mime = draw(st.sampled_from(["audio/pcm;rate=16000", "image/jpeg", "application/x-y"]))
    data = draw(st.binary(max_size=64))
    return Blob(mime_type=mime, data=data), {"mimeType": mime, "data": b64(data)}


@st.composite
def parts(draw: st.DrawFn) -> tuple[Part, dict[str, Any]]:
    kind = draw(st.sampled_from(["text", "thought", "blob", "call", "response"]))
    if kind == "text":
        s = draw(texts)
        return Part(text=s), {"text": s}
    if kind == "thought":
        s = draw(texts)
        return Part(text=s, thought=True), {"text": s, "thought": True}
    if kind == "blob":
        blob, exp = draw(blobs())
        return Part(inline_data=blob), {"inlineData": exp}
    if kind == "call":
        name, args, call_id = draw(names), draw(free_form), draw(st.none() | names)
        exp = {"name": name, "args": args}
        if call_id is not None:
            exp["id"] = call_id
        return Part(function_call=FunctionCall(name=name, args=args, id=call_id)), {
            "functionCall": exp
        }
    fr, exp = draw(function_responses())
    return Part(function_response=fr), {"functionResponse": exp}


@st.composite
def contents(draw: st.DrawFn) -> tuple[Content, dict[str, Any]]:
    items = draw(st.lists(parts(), max_size=4))
    role = draw(st.none() | st.sampled_from(["user", "model"]))
    exp: dict[str, Any] = {}
    if items:
        exp["parts"] = [e for _, e in items]
    if role is not None:
        exp["role"] = role
    return Content(parts=tuple(p for p, _ in items), role=role), exp


@st.composite
def function_responses(draw: st.DrawFn) -> tuple[FunctionResponse, dict[str, Any]]:
    call_id, name, response = draw(names), draw(names), draw(free_form)
    scheduling = draw(st.none() | st.sampled_from(list(Scheduling)))
    will_continue = draw(st.none() | st.booleans())
    exp: dict[str, Any] = {"id": call_id, "name": name, "response": response}
    if scheduling is not None:
        exp["scheduling"] = scheduling.value
    if will_continue is not None:
        exp["willContinue"] = will_continue
    fr = FunctionResponse(
        id=call_id,
        name=name,
        response=response,
        scheduling=scheduling,
        will_continue=will_continue,
    )
    return fr, exp


@st.composite
def client_contents(draw: st.DrawFn) -> tuple[ClientContent, dict[str, Any]]:
    turns = draw(st.lists(contents(), max_size=3))
    turn_complete = draw(st.none() | st.booleans())
    exp: dict[str, Any] = {}
    if turns:
        exp["turns"] = [e for _, e in turns]
    if turn_complete is not None:
        exp["turnComplete"] = turn_complete
    msg = ClientContent(turns=tuple(c for c, _ in turns), turn_complete=turn_complete)
    return msg, {"clientContent": exp}


@st.composite
def realtime_inputs(draw: st.DrawFn) -> tuple[RealtimeInput, dict[str, Any]]:
    kind = draw(st.sampled_from(["audio", "video", "text", "start", "end", "stream_end", "media"]))
    if kind in ("audio", "video"):
        blob, exp = draw(blobs())
        return RealtimeInput(**{kind: blob}), {"realtimeInput": {kind: exp}}
    if kind == "text":
        s = draw(texts)
        return RealtimeInput(text=s), {"realtimeInput": {"text": s}}
    if kind == "start":
        return RealtimeInput(activity_start=ActivityStart()), {
            "realtimeInput": {"activityStart": {}}
        }
    if kind == "end":
        return RealtimeInput(activity_end=ActivityEnd()), {"realtimeInput": {"activityEnd": {}}}
    if kind == "stream_end":
        flag = draw(st.booleans())
        return RealtimeInput(audio_stream_end=flag), {"realtimeInput": {"audioStreamEnd": flag}}
    items = draw(st.lists(blobs(), min_size=1, max_size=2))
    return RealtimeInput(media_chunks=tuple(b for b, _ in items)), {
        "realtimeInput": {"mediaChunks": [e for _, e in items]}
    }


@st.composite
def tool_responses(draw: st.DrawFn) -> tuple[ToolResponse, dict[str, Any]]:
    items = draw(st.lists(function_responses(), max_size=3))
    exp: dict[str, Any] = {}
    if items:
        exp["functionResponses"] = [e for _, e in items]
    return ToolResponse(function_responses=tuple(f for f, _ in items)), {"toolResponse": exp}


@st.composite
def setups(draw: st.DrawFn) -> tuple[Setup, dict[str, Any]]:
    model = "models/" + draw(names)
    exp: dict[str, Any] = {"model": model}
    modalities = draw(st.lists(st.sampled_from(["TEXT", "AUDIO", "NEW_MODALITY"]), max_size=2))
    temperature = draw(st.none() | st.floats(0, 2))
    top_k = draw(st.none() | st.integers(1, 100))
    gen_exp: dict[str, Any] = {}
    if modalities:
        gen_exp["responseModalities"] = modalities
    if temperature is not None:
        gen_exp["temperature"] = temperature
    if top_k is not None:
        gen_exp["topK"] = top_k
    gen = None
    if gen_exp:
        gen = GenerationConfig(
            response_modalities=tuple(Modality(m) for m in modalities),
            temperature=temperature,
            top_k=top_k,
        )
        exp["generationConfig"] = gen_exp
    system = draw(st.none() | contents())
    if system is not None:
        exp["systemInstruction"] = system[1]
    decls = draw(st.lists(st.tuples(names, st.none() | free_form), max_size=2))
    search = draw(st.booleans())
    tools: list[Tool] = []
    tools_exp: list[dict[str, Any]] = []
    if decls:
        tools.append(
            Tool(
                function_declarations=tuple(
                    FunctionDeclaration(name=n, parameters=p) for n, p in decls
                )
            )
        )
        tools_exp.append(
            {
                "functionDeclarations": [
                    {"name": n, **({"parameters": p} if p is not None else {})} for n, p in decls
                ]
            }
        )
    if search:
        tools.append(Tool(google_search=GoogleSearch()))
        tools_exp.append({"googleSearch": {}})
    if tools_exp:
        exp["tools"] = tools_exp
    handle = draw(st.none() | st.just("") | names)
    resumption = None
    if handle is not None:
        resumption = SessionResumptionConfig(handle=handle or None)
        exp["sessionResumption"] = {"handle": handle} if handle else {}
    transcribe = draw(st.booleans())
    if transcribe:
        exp["outputAudioTranscription"] = {}
    msg = Setup(
        model=model,
        generation_config=gen,
        system_instruction=None if system is None else system[0],
        tools=tuple(tools),
        session_resumption=resumption,
        output_audio_transcription=AudioTranscriptionConfig() if transcribe else None,
    )
    return msg, {"setup": exp}


client_messages = client_contents() | realtime_inputs() | tool_responses() | setups()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(client_messages)
def test_encode_matches_independent_expectation(case: tuple[Any, dict[str, Any]]) -> None:
    msg, expected = case
    text = encode(msg)
    assert json.loads(text) == expected
    assert decode_client(text) == msg
    assert decode_client(text.encode()) == msg


def snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


FREE_FORM_KEYS = {"args", "response", "parameters"}


def to_snake(obj: Any) -> Any:
    """Rename every key to snake_case except inside free-form objects (as the Python SDK)."""
    if isinstance(obj, dict):
        return {snake(k): (v if k in FREE_FORM_KEYS else to_snake(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_snake(v) for v in obj]
    return obj


@SETTINGS
@given(client_messages)
def test_snake_case_frames_decode_the_same(case: tuple[Any, dict[str, Any]]) -> None:
    msg, expected = case
    assert decode_client(json.dumps(to_snake(expected))) == msg


# --- server messages: encode_server -> decode ----------------------------------------------

offsets = st.none() | st.timedeltas(
    min_value=datetime.timedelta(0), max_value=datetime.timedelta(hours=1)
)
transcriptions = st.builds(
    Transcription,
    text=st.none() | texts,
    finished=st.none() | st.booleans(),
    speaker_label=st.none() | names,
    words=st.lists(
        st.builds(WordInfo, word=st.none() | texts, start_offset=offsets, end_offset=offsets),
        max_size=2,
    ).map(tuple),
    start_offset=offsets,
    end_offset=offsets,
)
partial_args = st.lists(
    st.builds(
        PartialArg,
        json_path=texts,
        string_value=st.none() | texts,
        number_value=st.none() | st.floats(allow_nan=False, allow_infinity=False),
        bool_value=st.none() | st.booleans(),
        null_value=st.none() | st.just(NullValue.NULL_VALUE),
        will_continue=st.none() | st.booleans(),
    ),
    max_size=3,
).map(tuple)
usages = st.none() | st.builds(
    UsageMetadata,
    prompt_token_count=st.none() | st.integers(0, 2**40),
    response_token_count=st.none() | st.integers(0, 2**40),
    total_token_count=st.none() | st.integers(0, 2**40),
    traffic_type=st.none() | st.sampled_from([*TrafficType, TrafficType("ON_DEMAND_NEW")]),
    prompt_tokens_details=st.lists(
        st.builds(
            ModalityTokenCount,
            modality=st.sampled_from(list(Modality)),
            token_count=st.integers(0, 1000),
        ),
        max_size=2,
    ).map(tuple),
)


@st.composite
def server_contents(draw: st.DrawFn) -> ServerContent:
    turn = draw(st.none() | contents())
    return ServerContent(
        model_turn=None if turn is None else turn[0],
        turn_complete=draw(st.booleans()),
        generation_complete=draw(st.booleans()),
        interrupted=draw(st.booleans()),
        input_transcription=draw(st.none() | transcriptions),
        output_transcription=draw(st.none() | transcriptions),
        grounding_metadata=draw(st.none() | free_form),
        interim_input_transcription=draw(st.none() | transcriptions),
        interaction_status=draw(st.none() | st.sampled_from(list(InteractionStatus))),
        usage_metadata=draw(usages),
    )


server_messages = (
    server_contents()
    | st.builds(
        ToolCall,
        function_calls=st.lists(
            st.builds(
                FunctionCall,
                name=names,
                args=free_form,
                id=st.none() | names,
                partial_args=partial_args,
            ),
            max_size=3,
        ).map(tuple),
        usage_metadata=usages,
    )
    | st.builds(ToolCallCancellation, ids=st.lists(names, max_size=3).map(tuple))
    | st.builds(
        GoAway,
        time_left=st.timedeltas(
            min_value=datetime.timedelta(0), max_value=datetime.timedelta(hours=1)
        ),
    )
    | st.builds(
        SessionResumptionUpdate,
        new_handle=st.none() | names,
        resumable=st.booleans(),
        last_consumed_client_message_index=st.none() | st.integers(0, 2**62),
    )
)


@SETTINGS
@given(server_messages)
def test_server_messages_round_trip(msg: Any) -> None:
    frame = encode_server(msg)
    assert decode(frame) == msg
    assert decode(json.dumps(json.loads(frame), indent=2).encode()) == msg
    assert decode_all(frame) == [msg]


# --- the fast path for streaming chunks agrees with the table decoder ----------------------------

_fast_part = st.one_of(
    st.builds(lambda text: {"text": text}, st.text(max_size=30)),
    st.builds(
        lambda mime, data: {"inlineData": {"mimeType": mime, "data": data}},
        st.sampled_from(["audio/pcm;rate=24000", "image/png", ""]),
        st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    ),
)
#: shapes next to the fast one that it must leave to the table decoder (or agree with it on)
_other_part = st.one_of(
    st.builds(lambda text: {"text": text, "thought": True}, st.text(max_size=10)),
    st.just({"inline_data": {"mime_type": "audio/pcm", "data": "AAAA"}}),
    st.just({"inlineData": {"mimeType": "audio/pcm", "data": "AA-_"}}),  # URL-safe base64
    st.just({"inlineData": {"mimeType": "audio/pcm", "data": "AA"}}),  # unpadded
    st.just({"inlineData": {"mimeType": "audio/pcm", "data": "A"}}),  # invalid
    st.just({"inlineData": {"mimeType": 1, "data": "AAAA"}}),
    st.just({"text": None}),
    st.just({"text": 5}),
    st.just({}),
    st.just("not an object"),
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.one_of(_fast_part, _fast_part, _other_part), max_size=4),
    role=st.sampled_from([None, "model", 7]),
    extra=st.dictionaries(
        st.sampled_from(
            [
                "turnComplete",
                "interrupted",
                "generationComplete",
                "waitingForInput",
                "outputTranscription",
                "inputTranscription",
                "turnCompleteReason",
            ]
        ),
        st.one_of(
            st.booleans(),
            st.just(None),
            st.just("yes"),
            st.builds(
                lambda text, finished: {
                    k: v for k, v in (("text", text), ("finished", finished)) if v != "-"
                },
                st.sampled_from(["-", "a few words", "", 5, None]),
                st.sampled_from(["-", True, False, "true", None]),
            ),
            st.just({"text": "x", "languageCode": "en"}),
        ),
        max_size=3,
    ),
    with_turn=st.booleans(),
    usage=st.sampled_from([False, False, False, True]),
)
@example(
    parts=[],
    role=None,
    extra={"outputTranscription": {"finished": "true"}},
    with_turn=False,
    usage=False,
)
@example(parts=[], role=None, extra={"interrupted": "yes"}, with_turn=False, usage=False)
@example(
    parts=[], role=None, extra={"inputTranscription": {"text": 5}}, with_turn=False, usage=False
)
def test_the_chunk_fast_path_builds_what_the_table_decoder_builds(
    parts: list[Any], role: Any, extra: dict[str, Any], with_turn: bool, usage: bool
) -> None:
    """The fast path (text and audio chunks, transcriptions, turn flags) and the cattrs hooks
    agree on every shape near the fast ones: same message, or the same error."""
    import gemini_ws._wire as wire

    turn: dict[str, Any] = {"parts": parts}
    if role is not None:
        turn["role"] = role
    content: dict[str, Any] = {"modelTurn": turn} if with_turn else {}
    message: dict[str, Any] = {"serverContent": {**content, **extra}}
    if usage:
        message["usageMetadata"] = (
            {"totalTokenCount": 3, "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 2}]}
            if len(parts) % 2
            else {"totalTokenCount": "many"}  # invalid: the same error either way
        )
    frame = json.dumps(message, indent=2).encode()

    def table(frame: bytes) -> Any:
        saved = wire._fast_server_content
        wire._fast_server_content = lambda value, usage=None: None
        try:
            return wire.decode(frame)
        except ProtocolError as exc:
            return ("error", str(exc))
        finally:
            wire._fast_server_content = saved

    try:
        fast: Any = wire.decode(frame)
    except ProtocolError as exc:
        fast = ("error", str(exc))
    assert fast == table(frame)
    assert type(fast) is type(table(frame))


# --- the usageMetadata fast path -------------------------------------------------------------

_usage_keys = st.sampled_from([
    "promptTokenCount", "responseTokenCount", "candidatesTokenCount", "totalTokenCount",
    "cachedContentTokenCount", "toolUsePromptTokenCount", "thoughtsTokenCount",
    "promptTokensDetails", "candidatesTokensDetails", "responseTokensDetails",
    "cacheTokensDetails", "toolUsePromptTokensDetails", "trafficType", "newCountField",
])
_json_scalars = (
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.floats(allow_nan=False)
    | st.sampled_from(["7", "TEXT", "AUDIO", "HOLOGRAM", "ON_DEMAND"])
)
_token_counts = st.dictionaries(
    st.sampled_from(["modality", "tokenCount", "note"]), _json_scalars, max_size=3
)
_usage_values = _json_scalars | st.lists(_token_counts | _json_scalars, max_size=3)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(usage=st.dictionaries(_usage_keys, _usage_values, max_size=6), flags=st.booleans())
@example(usage={"totalTokenCount": 9, "promptTokensDetails": [{"modality": "TEXT",
                                                               "tokenCount": 9}]}, flags=True)
@example(usage={"promptTokensDetails": [{"modality": ["TEXT"]}]}, flags=False)
@example(usage={"responseTokenCount": 1, "candidatesTokenCount": 2}, flags=True)
def test_the_usage_fast_path_builds_what_the_hooks_build(usage: dict[str, Any],
                                                         flags: bool) -> None:
    """Counts and modality details at a turn's end (and alone, as a usage report): the fast
    path and the generated hooks give the same message, or the same error."""
    import gemini_ws._wire as wire

    message: dict[str, Any] = {"usageMetadata": usage}
    if flags:
        message["serverContent"] = {"turnComplete": True}
    frame = json.dumps(message).encode()

    def run() -> Any:
        try:
            return wire.decode(frame)
        except ProtocolError as exc:
            return ("error", str(exc))

    fast = run()
    saved = wire._fast_usage
    wire._fast_usage = lambda raw: None
    try:
        hooks = run()
    finally:
        wire._fast_usage = saved
    assert fast == hooks
    assert type(fast) is type(hooks)
    if not isinstance(fast, tuple):
        got, want = fast.usage_metadata, hooks.usage_metadata
        assert type(got) is type(want)
        assert repr(got) == repr(want)  # (the enum members themselves, not just equal values)
