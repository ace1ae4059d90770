"""TLS over a trio socket through ``ssl.MemoryBIO``: one socket read yields every record it
completed.

``trio.SSLStream.receive_some`` returns at most one TLS record per call, so a burst of small
WebSocket frames (a streaming reply sends one record per frame) costs one trip round the reader
loop, and one scheduler checkpoint, per record. This pump reads what the socket has, feeds it to
the TLS object, and decrypts every complete record in one go; writes encrypt into a buffer that
goes to the socket in one ``send_all``.

It is used by the default transport only (trio-websocket is given trio's own ``SSLStream``).
Semantics kept from ``SSLStream(https_compatible=True)``: a peer's close_notify and a ragged EOF
(TCP closed without close_notify, common among HTTPS servers) both read as end of stream;
``aclose`` sends close_notify without waiting for the peer's. Session tickets (TLS 1.3) and
key updates are absorbed by the TLS object; whatever it has to say back goes out with the next
write, or from the reader when no write is under way.

One task reads and one task writes at a time (the WebSocket above serialises its writers).
"""

from __future__ import annotations

import contextlib
import socket
import ssl

import trio

__all__ = ["TLSStream"]

_READ = 256 * 1024
#: decrypted bytes returned by one receive_some at most (more stays in the TLS object)
_MAX_CHUNK = 1024 * 1024


class TLSStream(trio.abc.Stream):
    """A client TLS stream over the socket of *transport* (see the module docstring).

    The socket is taken over (detached from *transport*, which must not be used again) and
    driven directly: a non-blocking ``recv``/``send`` first, and trio's ``wait_readable`` /
    ``wait_writable`` only when the socket is not ready. That skips the two scheduler trips
    trio's socket layer makes around every call; callers still yield once per receive, and
    writers once per message (the WebSocket's send lock)."""

    def __init__(
        self, transport: trio.SocketStream, context: ssl.SSLContext, server_hostname: str
    ) -> None:
        self._sock = socket.socket(fileno=transport.socket.detach())
        self._sock.setblocking(False)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self._eof = False
        #: the last read took less than it asked for: the socket was empty then, so the next
        #: read waits for it first instead of trying a recv that would most likely fail
        self._drained = False
        #: a task is writing to the socket (the writer, or the reader flushing a TLS reply)
        self._writing = False
        #: woken when a write to the socket ends (nobody waits, but on a rare reader flush)
        self._written = trio.lowlevel.ParkingLot()
        self._closed = False
        #: decrypted bytes a cancelled receive_some could not return (the next one does)
        self._carried: bytes | None = None

    def fileno(self) -> int:
        """The socket's file descriptor (-1 once closed)."""
        return self._sock.fileno()

    # --- handshake -------------------------------------------------------------------------
    async def do_handshake(self) -> None:
        """Run the TLS handshake. Raises ``ssl.SSLError`` (a failed verification included)
        or ``trio.BrokenResourceError`` when the connection broke."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                filled, _ = await self._fill()
                if not filled:
                    raise trio.BrokenResourceError(
                        "the server closed the connection during the TLS handshake"
                    ) from None
            else:
                await self._flush()
                return

    # --- receiving -------------------------------------------------------------------------
    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Every byte the records read so far decrypt to (at least one byte), or ``b""`` at
        the end of the stream."""
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        limit = _MAX_CHUNK if max_bytes is None else max(1, max_bytes)
        waited = False
        while True:
            data = self._carried or self._decrypt(limit)
            self._carried = None
            if data is None and self._eof:
                data = b""
            if data is not None:
                if not waited:
                    try:
                        await trio.lowlevel.checkpoint()
                    except BaseException:
                        # cancelled: what was decrypted is returned by the next call
                        self._carried = data or None
                        raise
                return data
            filled, blocked = await self._fill()
            waited = waited or blocked
            if not filled:
                self._incoming.write_eof()
            elif self._outgoing.pending and not self._writing:
                await self._flush()  # a key update's answer, with no writer to carry it

    def _decrypt(self, limit: int) -> bytes | None:
        """Decrypt what the TLS object can; None when it needs more bytes."""
        chunks: list[bytes] = []
        size = 0
        tls = self._tls
        try:
            incoming = self._incoming
            while size < limit:
                chunk = tls.read(limit - size)
                if not chunk:  # close_notify read (an empty read is never "no data yet")
                    self._eof = True
                    break
                chunks.append(chunk)
                size += len(chunk)
                if not incoming.pending and not tls.pending():
                    break  # all read: another read would only fail (SSLWantReadError)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            # close_notify, or a ragged EOF: both end the stream (https_compatible)
            self._eof = True
        except ssl.SSLError as exc:
            raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
        if chunks:
            return b"".join(chunks)
        return None

    async def _fill(self) -> tuple[bool, bool]:
        """Read from the socket into the TLS object: (False at EOF, whether it waited)."""
        waited = False
        if self._drained:
            await trio.lowlevel.wait_readable(self._sock)  # ClosedResourceError if closed
            waited = True
        while True:
            try:
                data = self._sock.recv(_READ)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._sock)
                waited = True
                continue
            except OSError as exc:  # (a reset, or the kernel gave up: see _transport)
                raise trio.BrokenResourceError(f"socket error: {exc}") from exc
            break
        self._drained = len(data) < _READ
        if not data:
            return False, waited
        self._incoming.write(data)
        return True, waited

    # --- sending ---------------------------------------------------------------------------
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt *data* and write it (with anything the TLS object had queued) in one go."""
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        try:
            self._tls.write(data)
        except ssl.SSLError as exc:
            raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
        while self._writing:  # the reader is flushing (rare): it writes our records too
            await self._written.park()
        await self._flush()

    async def _flush(self) -> None:
        """Write what the TLS object queued (one writer at a time: see ``_writing``)."""
        self._writing = True
        try:
            while self._outgoing.pending:
                view = memoryview(self._outgoing.read())
                while view:
                    try:
                        sent = self._sock.send(view)
                    except BlockingIOError:
                        await trio.lowlevel.wait_writable(self._sock)
                        continue
                    except OSError as exc:
                        raise trio.BrokenResourceError(f"socket error: {exc}") from exc
                    view = view[sent:]
        finally:
            self._writing = False
            if self._written:
                self._written.unpark_all()

    async def wait_send_all_might_not_block(self) -> None:
        """Until the socket takes more bytes."""
        await trio.lowlevel.wait_writable(self._sock)

    # --- closing ---------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Send close_notify (best effort: skipped when cancelled, as ``aclose_forcefully``
        does, and never waiting for the peer's), then close the socket."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if not self._writing:
                # (SSLWantRead: our close_notify is queued; the peer's is not awaited)
                with contextlib.suppress(ssl.SSLError):
                    self._tls.unwrap()
                data = self._outgoing.read()
                if data:
                    self._sock.send(data)  # best effort, never waiting
        except OSError:
            pass
        finally:
            trio.lowlevel.notify_closing(self._sock)  # wakes a task waiting on it
            self._sock.close()
            await trio.lowlevel.checkpoint()
