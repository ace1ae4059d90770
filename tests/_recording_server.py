"""An independent Live-like server that records what its "model" consumed.

Raw JSON over trio-websocket; it shares no code with gemini_ws (neither its codec nor
gemini_ws.testing), so a test can judge the client by the server's own record.

* The first message must be ``{"setup": {"model": ...}}``; anything else closes 1007. A setup
  without ``sessionResumption.handle`` starts a session ("s1", "s2", ...).
* Every later clientContent / realtimeInput / toolResponse is *consumed* in the order read:
  appended to the session's model log as ``Consumed(connection, message)``.
* A *request* is clientContent with turnComplete (its text: the clientContent texts since the
  last request), realtimeInput.text, or audioStreamEnd or activityEnd after audio (its text
  ``<audio xN>``, N the audio chunks since the last request). Either marker with no audio since
  the last request, activityStart, audio chunks and tool responses are consumed, never answered.
* A request is answered after ``latency`` s: update(resumable false), ``chunks`` chunks
  ``[answer to <text> part k/n]``, turnComplete, then, only if no other request awaits its
  answer, a handle ``h-<session>-<n>`` whose snapshot is a copy of the model state at that
  moment. Requests read during a reply are queued (not interrupting) and answered in order.
* A setup with a handle restores its snapshot: the model log *becomes* the snapshot's and what
  the new connection consumes is appended. Unknown handle (or any, while ``refuse_resumes`` is
  set): 1008. With
  ``refuse_resume_while_open`` a resume while another connection of the session is open: 1011.
* A request whose text starts with ``call `` first gets a toolCall of function ``f`` (id
  ``call-<n>``), and its reply goes on without waiting for the response (a ``NON_BLOCKING``
  call); a toolResponse is consumed when read.
* ``read_delay``: each client message, the setup too, is taken that long after it was read (the
  uplink's latency); ``gap``: the pause between the messages of a reply (a model
  streaming at its pace). Both 0 by default.
* ``stall(session)`` makes a session's current connection stop reading (its socket fills up once
  trio-websocket's one-message queue is full); it never reads again.
* Faults (``go_away``, ``close``, ``abort``) target a session's current connection, ``when``:
  "now", "after_handle" (right after the next resumable handle), "after_reply" (right after the
  next reply's turnComplete, before its handle), "after_request" (right after
  the next request is consumed), "mid_reply" (right after the first chunk of the next reply),
  or an int N (when the N-th client message read from now on arrives, before it is consumed).
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, wrap_server_stream

KINDS = {"clientContent", "realtimeInput", "toolResponse"}
When = str | int


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


def texts_of(message: dict[str, Any]) -> list[str]:
    """The texts in one consumed client message (clientContent parts, realtimeInput.text)."""
    if "clientContent" in message:
        return [
            part["text"]
            for turn in message["clientContent"].get("turns") or []
            for part in turn.get("parts") or []
            if isinstance(part.get("text"), str)
        ]
    text = message.get("realtimeInput", {}).get("text")
    return [text] if isinstance(text, str) else []


def expected_reply(text: str, chunks: int = 3) -> str:
    return "".join(f"[answer to {text} part {k}/{chunks}]" for k in range(1, chunks + 1))


@dataclass(frozen=True)
class Consumed:
    connection: int
    message: dict[str, Any]


@dataclass
class Model:
    """What the model knows; a handle stores a copy."""

    log: list[Consumed] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # request texts consumed
    answered: list[str] = field(default_factory=list)  # request texts answered
    partial: list[str] = field(default_factory=list)  # clientContent texts awaiting turnComplete
    audio: int = 0  # audio chunks since the last request

    def copy(self) -> Model:
        return Model(list(self.log), list(self.requests), list(self.answered),
                     list(self.partial), self.audio)


@dataclass(eq=False)
class Fault:
    action: str  # "go_away" | "close" | "abort"
    when: When
    time_left: float = 0.5
    code: int | None = 1011
    reason: str = "Internal error encountered."


@dataclass(eq=False)
class Session:
    id: str
    model: Model
    connections: int = 0  # connections that carried it (refused resumes not counted)
    handles: list[str] = field(default_factory=list)
    resumed_from: list[str] = field(default_factory=list)
    refused: int = 0  # resumes refused because an older connection was open
    links: list[Connection] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    @property
    def consumed(self) -> list[Consumed]:
        """The final model log: the restored snapshot plus what came after."""
        return self.model.log

    @property
    def requests(self) -> list[str]:
        return self.model.requests

    def texts(self) -> list[str]:
        return [t for entry in self.model.log for t in texts_of(entry.message)]

    @property
    def current(self) -> Connection | None:
        live = [c for c in self.links if c.model is self.model and c.open]
        return live[-1] if live else None


@dataclass(eq=False)
class Connection:
    number: int
    ws: Any
    stream: trio.SocketStream
    nursery: trio.Nursery
    setup: dict[str, Any] | None = None
    session: Session | None = None
    model: Model | None = None
    received: list[Any] = field(default_factory=list)  # every client message read, setup too
    sent: list[dict[str, Any]] = field(default_factory=list)
    closed_with: int | None = None  # our close code; 1006 when we aborted
    done: bool = False
    pending: int = 0  # requests consumed and not yet answered
    stalled: bool = False  # stopped reading (see RecordingServer.stall)
    reading: trio.CancelScope | None = None  # the read under way

    def __post_init__(self) -> None:
        self.to_answer, self.requests_in = trio.open_memory_channel[str](float("inf"))

    @property
    def open(self) -> bool:
        return not self.done and self.ws.closed is None


class RecordingServer:
    def __init__(self, latency: float, chunks: int, refuse_resume_while_open: bool,
                 max_message_size: int = 2**20, receive_buffer: int | None = None,
                 read_delay: float = 0.0, gap: float = 0.0) -> None:
        self.read_delay = read_delay
        self.gap = gap
        self.max_message_size = max_message_size
        self.receive_buffer = receive_buffer
        self.latency = latency
        self.chunks = chunks
        self.refuse_resume_while_open = refuse_resume_while_open
        self.url = ""
        self.sessions: dict[str, Session] = {}
        self.connections: list[Connection] = []
        self.snapshots: dict[str, tuple[Session, Model]] = {}
        #: refuse every resume as an unknown handle (1008) while set
        self.refuse_resumes = False
        self._changed = trio.Event()

    # --- for tests ---------------------------------------------------------------------------
    def session(self, sid: str | None = None) -> Session:
        """The session called *sid*, or the newest."""
        return self.sessions[sid] if sid else list(self.sessions.values())[-1]

    def reply_to(self, text: str) -> str:
        return expected_reply(text, self.chunks)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until *predicate()* holds (checked after every change); bound it yourself."""
        while not predicate():
            await self._changed.wait()

    def go_away(self, session: Session | str | None = None, *, time_left: float = 0.5,
                when: When = "now", close_code: int | None = 1011) -> None:
        """Send goAway; unless close_code is None, close with it time_left later."""
        self._arm(session, Fault("go_away", when, time_left=time_left, code=close_code))

    def close(self, session: Session | str | None = None, *, code: int = 1011,
              reason: str = "Internal error encountered.", when: When = "now") -> None:
        self._arm(session, Fault("close", when, code=code, reason=reason))

    def abort(self, session: Session | str | None = None, *, when: When = "now") -> None:
        """Drop the TCP connection (FIN, no close frame)."""
        self._arm(session, Fault("abort", when))

    def stall(self, session: Session | str | None = None) -> Connection:
        """The session's current connection stops reading, for good."""
        target = session if isinstance(session, Session) else self.session(session)
        conn = target.current
        if conn is None:
            raise RuntimeError(f"session {target.id} has no open connection")
        conn.stalled = True
        if conn.reading is not None:
            conn.reading.cancel()  # a read under way takes nothing either
        return conn

    def _arm(self, session: Session | str | None, fault: Fault) -> None:
        target = session if isinstance(session, Session) else self.session(session)
        if fault.when != "now":
            target.faults.append(fault)
            return
        conn = target.current
        if conn is None:
            raise RuntimeError(f"session {target.id} has no open connection")
        conn.nursery.start_soon(self._perform_quietly, conn, fault)

    # --- internals ---------------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _send(self, conn: Connection, message: dict[str, Any]) -> None:
        await conn.ws.send_message(json.dumps(message))
        conn.sent.append(message)

    async def _close(self, conn: Connection, code: int, reason: str) -> None:
        conn.closed_with = code
        with trio.move_on_after(1):
            await conn.ws.aclose(code, reason)
        conn.done = True
        conn.nursery.cancel_scope.cancel()

    def _abort(self, conn: Connection) -> None:
        conn.closed_with, conn.done = 1006, True
        conn.stream.socket.close()
        conn.nursery.cancel_scope.cancel()

    async def _perform(self, conn: Connection, fault: Fault) -> bool:
        """Carry out *fault* on *conn*; True if the connection is over."""
        if fault.action == "go_away":
            await self._send(conn, {"goAway": {"timeLeft": f"{fault.time_left}s"}})
            if fault.code is not None:
                conn.nursery.start_soon(self._close_later, conn, fault.time_left, fault.code)
            return False
        if fault.action == "close":
            assert fault.code is not None
            await self._close(conn, fault.code, fault.reason)
        else:
            self._abort(conn)
        return True

    async def _perform_quietly(self, conn: Connection, fault: Fault) -> None:
        with suppress(ConnectionClosed):
            await self._perform(conn, fault)

    async def _close_later(self, conn: Connection, delay: float, code: int) -> None:
        await trio.sleep(delay)
        if conn.open:
            await self._close(conn, code, "Deadline expired before operation could complete.")

    async def _fire(self, conn: Connection, point: str) -> bool:
        session = conn.session
        assert session is not None
        if session.model is not conn.model:
            return False  # an old connection of a resumed session: faults target the new one
        for fault in [f for f in session.faults if f.when == point]:
            session.faults.remove(fault)
            if await self._perform(conn, fault):
                return True
        return False

    async def _count_message(self, conn: Connection) -> bool:
        session = conn.session
        assert session is not None
        if session.model is not conn.model:
            return False
        for fault in [f for f in session.faults if isinstance(f.when, int)]:
            assert isinstance(fault.when, int)
            fault.when -= 1
            if fault.when == 0:
                session.faults.remove(fault)
                if await self._perform(conn, fault):
                    return True
        return False

    async def _handle(self, stream: trio.SocketStream) -> None:
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.receive_buffer is not None:
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        async with trio.open_nursery() as nursery:
            try:
                with trio.fail_after(5):
                    request = await wrap_server_stream(
                        nursery, stream, max_message_size=self.max_message_size)
                    ws = await request.accept()
            except (trio.TooSlowError, ConnectionClosed, HandshakeError,
                    trio.BrokenResourceError, trio.ClosedResourceError):
                nursery.cancel_scope.cancel()
                return
            conn = Connection(len(self.connections) + 1, ws, stream, nursery)
            self.connections.append(conn)
            nursery.start_soon(self._serve, conn)

    async def _serve(self, conn: Connection) -> None:
        try:
            await self._run(conn)
        except ConnectionClosed:
            pass
        finally:
            conn.done = True
            self._notify()
            conn.nursery.cancel_scope.cancel()

    async def _read(self, conn: Connection) -> Any:
        with trio.CancelScope() as conn.reading:
            if not conn.stalled:
                raw = await conn.ws.get_message()
        conn.reading = None
        if conn.stalled:
            await trio.sleep_forever()
        if self.read_delay:
            await trio.sleep(self.read_delay)
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        conn.received.append(message)
        return message

    async def _run(self, conn: Connection) -> None:
        first = await self._read(conn)
        setup = first.get("setup") if isinstance(first, dict) and len(first) == 1 else None
        if not isinstance(setup, dict) or not isinstance(setup.get("model"), str):
            await self._close(conn, 1007, "the first message must be setup with a model")
            return
        conn.setup = setup
        resumption = setup.get("sessionResumption")
        handle = resumption.get("handle") if isinstance(resumption, dict) else None
        if handle:
            if handle not in self.snapshots or self.refuse_resumes:
                await self._close(conn, 1008, "session resumption handle not found")
                return
            session, snapshot = self.snapshots[handle]
            if self.refuse_resume_while_open and any(c.open for c in session.links):
                session.refused += 1
                await self._close(conn, 1011, "The session is still in use.")
                return
            session.model = snapshot.copy()
            session.resumed_from.append(handle)
        else:
            session = Session(f"s{len(self.sessions) + 1}", Model())
            self.sessions[session.id] = session
        conn.session, conn.model = session, session.model
        session.links.append(conn)
        session.connections += 1
        await self._send(conn, {"setupComplete": {}})
        self._notify()
        conn.nursery.start_soon(self._generate, conn, isinstance(resumption, dict))
        while True:
            message = await self._read(conn)
            if await self._count_message(conn):
                return
            request = self._consume(conn, message)
            if request is False:
                await self._close(conn, 1007, "Request contains an invalid argument.")
                return
            self._notify()
            if request and await self._fire(conn, "after_request"):
                return

    def _consume(self, conn: Connection, message: Any) -> bool | None:
        """Feed *message* to the model: None, or True if it is a request, False if invalid."""
        if not isinstance(message, dict) or len(message) != 1:
            return False
        ((kind, body),) = message.items()
        kind = _camel(kind)
        if kind not in KINDS or not isinstance(body, dict):
            return False
        body = {_camel(k): v for k, v in body.items()}
        model = conn.model
        assert model is not None
        model.log.append(Consumed(conn.number, {kind: body}))
        text: str | None = None
        if kind == "clientContent":
            model.partial += texts_of({kind: body})
            if body.get("turnComplete"):
                text, model.partial = " ".join(model.partial), []
        elif kind == "realtimeInput":
            if isinstance(body.get("text"), str):
                text = body["text"]
            elif body.get("audio") or body.get("mediaChunks"):
                model.audio += 1
            elif (body.get("audioStreamEnd") or "activityEnd" in body) and model.audio:
                text, model.audio = f"<audio x{model.audio}>", 0
        if text is None:
            return None
        model.requests.append(text)
        conn.pending += 1
        conn.to_answer.send_nowait(text)
        return True

    async def _generate(self, conn: Connection, updates: bool) -> None:
        session, model = conn.session, conn.model
        assert session is not None and model is not None
        try:
            async for text in conn.requests_in:
                if self.latency:
                    await trio.sleep(self.latency)
                if updates:
                    await self._send(conn, {"sessionResumptionUpdate": {
                        "newHandle": "", "resumable": False}})
                if text.startswith("call "):
                    await self._send(conn, {"toolCall": {"functionCalls": [
                        {"id": f"call-{len(model.answered) + 1}", "name": "f", "args": {}}]}})
                for k in range(1, self.chunks + 1):
                    part = {"text": f"[answer to {text} part {k}/{self.chunks}]"}
                    await self._send(conn, {"serverContent": {"modelTurn": {"parts": [part]}}})
                    if k == 1 and await self._fire(conn, "mid_reply"):
                        return
                    if self.gap:
                        await trio.sleep(self.gap)
                await self._send(conn, {"serverContent": {"turnComplete": True}})
                conn.pending -= 1
                model.answered.append(text)
                if await self._fire(conn, "after_reply"):
                    return
                if updates and conn.pending == 0:
                    handle = f"h-{session.id}-{len(session.handles) + 1}"
                    self.snapshots[handle] = (session, model.copy())
                    session.handles.append(handle)
                    await self._send(conn, {"sessionResumptionUpdate": {
                        "newHandle": handle, "resumable": True}})
                    self._notify()
                    if await self._fire(conn, "after_handle"):
                        return
                self._notify()
        except ConnectionClosed:
            pass


@asynccontextmanager
async def open_recording_server(
    latency: float = 0.0,
    *,
    chunks: int = 3,
    refuse_resume_while_open: bool = True,
    max_message_size: int = 2**20,
    receive_buffer: int | None = None,
    read_delay: float = 0.0,
    gap: float = 0.0,
) -> AsyncIterator[RecordingServer]:
    """Serve on ws://127.0.0.1:<free port> for the block; every task and socket ends with it.
    *receive_buffer*: SO_RCVBUF of every accepted socket (None: the system's)."""
    server = RecordingServer(latency, chunks, refuse_resume_while_open, max_message_size,
                             receive_buffer, read_delay, gap)
    error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            server.url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
            nursery.start_soon(trio.serve_listeners, server._handle, listeners)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        error = group.exceptions[0]
    if error is not None:
        raise error


__all__ = ["Consumed", "RecordingServer", "Session", "expected_reply", "open_recording_server",
           "texts_of"]
