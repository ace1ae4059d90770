"""Audio plumbing for voice apps: WAV in, resampling, paced sending, WAV out, barge-in playback.

The Live API takes **16 kHz, 16-bit signed little-endian, mono PCM** (:data:`INPUT_RATE`) and
answers with **24 kHz** PCM of the same kind (:data:`OUTPUT_RATE`). This module turns what an
app has (a WAV file at any rate, width and channel count) into what the model takes, sends it at
the pace a microphone would, and handles the reply: written to a WAV file as it arrives
(:class:`WavWriter`) or queued for playback with barge-in (:class:`PlaybackBuffer`).

Everything here is standard library only (``array``, :mod:`wave`; not the deprecated
``audioop``). Resampling uses `soxr <https://pypi.org/project/soxr/>`_ when it is installed
(``pip install 'gemini-ws[audio]'``), and otherwise a pure-Python polyphase windowed-sinc
filter: a Kaiser window (beta 6) over 8 zero crossings each side of the sinc, cut off at 90 % of
the lower Nyquist frequency (54 taps from 48 kHz to 16 kHz). Into 16 kHz that is flat within
0.35 dB up to 6 kHz, -18 dB at 8 kHz and at least 60 dB down from 9 kHz on, so what folds back
lands above 7 kHz: good for speech, modest for music. It takes about 50 ms of one core per
second of 48 kHz audio (some 20 times faster than real time; 8 to 16 kHz is twice as fast);
soxr is over a hundred times faster still, and sharper: the two agree within -65 dB up to
4 kHz, while the pure filter rolls off earlier towards 8 kHz.

Three calls are async, :func:`send_paced`, :meth:`Pacer.wait` (the pacing of ``send_paced`` for
an app's own loop) and :meth:`PlaybackBuffer.play`, and all pace themselves against trio's
clock. The rest is synchronous: reading, resampling and writing are
quick for speech-length audio; for long recordings, run :func:`read_wav` and :meth:`Pcm.to_input`
in :func:`trio.to_thread.run_sync`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import struct
import sys
import wave
from array import array
from collections.abc import Callable, Iterator
from itertools import repeat
from operator import add, floordiv, mul
from typing import Any, BinaryIO, Protocol

import attrs
import trio

from ._errors import ConfigurationError
from ._ticks import wait_tick
from ._types import ServerContent

__all__ = [
    "INPUT_RATE",
    "OUTPUT_RATE",
    "Pacer",
    "Pcm",
    "PlaybackBuffer",
    "PlaybackStatistics",
    "SupportsSendAudio",
    "WavWriter",
    "chunks",
    "has_soxr",
    "read_pcm",
    "read_wav",
    "resample",
    "send_paced",
    "to_mono",
]

#: The sample rate in Hz that the model takes natively; send it 16 kHz audio.
INPUT_RATE: int = 16000
#: The sample rate in Hz of the model's audio replies.
OUTPUT_RATE: int = 24000

#: The chunk lengths :func:`chunks`, :func:`send_paced` and :meth:`PlaybackBuffer.play` accept.
MIN_CHUNK_MS = 10
MAX_CHUNK_MS = 1000

_BIG_ENDIAN = sys.byteorder == "big"
_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    0x0002: "MS ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MP3",
}
# 8-bit WAV samples are unsigned: flipping the top bit makes them the high byte of a signed
# 16-bit sample.
_U8_TO_HIGH_BYTE = bytes(b ^ 0x80 for b in range(256))


# --- checks -------------------------------------------------------------------------------


def _check_rate(value: object, name: str = "sample_rate") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive int (Hz), got {value!r:.40}")
    return value


def _check_pcm16(value: object, name: str = "pcm") -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ConfigurationError(f"{name} must be bytes of 16-bit PCM, got {type(value).__name__}")
    data = bytes(value)
    if len(data) % 2:
        raise ConfigurationError(
            f"16-bit PCM must have an even number of bytes (two per sample), got {len(data)}"
        )
    return data


def _check_chunk_ms(value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_CHUNK_MS <= value <= MAX_CHUNK_MS
    ):
        raise ConfigurationError(
            f"chunk_ms must be an int from {MIN_CHUNK_MS} to {MAX_CHUNK_MS}, got {value!r:.40}"
        )
    return value


def _chunk_bytes(sample_rate: int, chunk_ms: int) -> int:
    """Bytes in one chunk of *chunk_ms* at *sample_rate*: whole samples, at least one."""
    return 2 * max(1, sample_rate * chunk_ms // 1000)


# --- samples ------------------------------------------------------------------------------


def _samples(data: bytes) -> array[int]:
    """Little-endian 16-bit PCM as an ``array('h')`` of sample values."""
    values = array("h")
    values.frombytes(data)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def _pcm_bytes(values: array[int]) -> bytes:
    """An ``array('h')`` as little-endian bytes."""
    if _BIG_ENDIAN:
        values = array("h", values)
        values.byteswap()
    return values.tobytes()


def _clip16(value: float) -> int:
    if value != value:  # NaN
        return 0
    if value >= 32767.0:
        return 32767
    if value <= -32768.0:
        return -32768
    return round(value)


def _round16(values: list[float]) -> bytes:
    """Float sample values rounded (and clipped, if they need it) to 16-bit PCM."""
    try:
        return _pcm_bytes(array("h", map(round, values)))
    except (OverflowError, ValueError):  # out of range, or inf/NaN
        return _pcm_bytes(array("h", map(_clip16, values)))


def _to_16bit(raw: bytes, width: int) -> bytes:
    """Little-endian integer PCM *width* bytes a sample to 16-bit (keeping the top 16 bits)."""
    if width == 2:
        return raw
    count = len(raw) // width
    out = bytearray(2 * count)
    if width == 1:  # unsigned: the sample, top bit flipped, is the high byte
        out[1::2] = raw.translate(_U8_TO_HIGH_BYTE)
    else:  # signed: the two most significant bytes of each sample
        out[0::2] = raw[width - 2 :: width]
        out[1::2] = raw[width - 1 :: width]
    return bytes(out)


def _float_to_16bit(raw: bytes, width: int) -> bytes:
    values = array("f" if width == 4 else "d")
    values.frombytes(raw)
    if _BIG_ENDIAN:
        values.byteswap()
    return _round16(list(map(mul, values, repeat(32767.0))))


def to_mono(data: bytes, channels: int) -> bytes:
    """Downmix interleaved 16-bit PCM to mono: each sample the average of its channels.

    The average is rounded down (toward negative infinity). One channel is returned as it is.

    Args:
        data: Interleaved 16-bit little-endian PCM, whole frames (``2 * channels`` bytes each).
        channels: The number of interleaved channels (1 or more).

    Returns:
        Mono 16-bit little-endian PCM, one sample per frame of *data*.

    Raises:
        ConfigurationError: *channels* is not a positive int, or *data* is not bytes of whole
            frames.
    """
    pcm = _check_pcm16(data, "data")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ConfigurationError(f"channels must be a positive int, got {channels!r:.40}")
    if channels == 1:
        return pcm
    if len(pcm) % (2 * channels):
        raise ConfigurationError(
            f"{len(pcm)} bytes is not a whole number of {channels}-channel 16-bit frames "
            f"({2 * channels} bytes each)"
        )
    values = _samples(pcm)
    if channels == 2:
        sums: Iterator[int] = map(add, values[0::2], values[1::2])
    else:
        sums = map(sum, zip(*(values[c::channels] for c in range(channels)), strict=True))
    return _pcm_bytes(array("h", map(floordiv, sums, repeat(channels))))


# --- Pcm ----------------------------------------------------------------------------------


def _pcm_data(value: bytes | bytearray | memoryview) -> bytes:
    return _check_pcm16(value, "data")


@attrs.frozen
class Pcm:
    """Mono 16-bit little-endian PCM at a sample rate.

    Build one from a file with :func:`read_wav` or :func:`read_pcm`, or from bytes you have:
    ``Pcm(data, 16000)``. Odd byte counts and non-positive rates raise
    :exc:`~gemini_ws.ConfigurationError`.

    Attributes:
        data: The samples, two bytes each, little-endian signed.
        sample_rate: Samples per second.
    """

    data: bytes = attrs.field(converter=_pcm_data, repr=lambda d: f"<{len(d)} bytes>")
    sample_rate: int = attrs.field(validator=lambda _i, _a, v: _check_rate(v))

    @property
    def samples(self) -> int:
        """The number of samples (``len(data) // 2``)."""
        return len(self.data) // 2

    @property
    def duration(self) -> float:
        """The length of the audio in seconds."""
        return len(self.data) / 2 / self.sample_rate

    def to_input(self, rate: int = INPUT_RATE) -> Pcm:
        """This audio resampled to *rate* (the model's 16 kHz by default).

        Returns ``self`` when the rate is already *rate*. See :func:`resample` for how.
        """
        _check_rate(rate, "rate")
        if rate == self.sample_rate:
            return self
        return Pcm(resample(self.data, self.sample_rate, rate), rate)


# --- reading files ------------------------------------------------------------------------


def _read_source(source: str | os.PathLike[str] | BinaryIO, what: str) -> tuple[bytes, str]:
    """The bytes of a path or binary file object, and a name for it in error messages."""
    if isinstance(source, str | os.PathLike):
        name = os.fsdecode(source)
        try:
            with open(name, "rb") as f:
                return f.read(), name
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigurationError(f"cannot read {what} '{name}': {reason}") from exc
    read = getattr(source, "read", None)
    if not callable(read):
        hint = " (for data in memory, pass io.BytesIO(data))" if isinstance(source, bytes) else ""
        raise ConfigurationError(
            f"expected a path or a binary file object, got {type(source).__name__}{hint}"
        )
    raw_name = getattr(source, "name", None)
    name = os.fsdecode(raw_name) if isinstance(raw_name, str | bytes) else "<file object>"
    try:
        data = read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} '{name}': {exc}") from exc
    if not isinstance(data, bytes | bytearray):
        raise ConfigurationError(
            f"cannot read {what} '{name}': the file object returned "
            f"{type(data).__name__}, not bytes (open it in binary mode, 'rb')"
        )
    return bytes(data), name


@attrs.frozen
class _WavFormat:
    tag: int
    channels: int
    rate: int
    width: int  # bytes per sample (container)


def _parse_fmt(body: bytes, name: str) -> _WavFormat:
    def bad(reason: str) -> ConfigurationError:
        return ConfigurationError(f"cannot read WAV file '{name}': {reason}")

    if len(body) < 16:
        raise bad(f"its fmt chunk is {len(body)} bytes, too short")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 26:
            raise bad("its WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        (tag,) = struct.unpack_from("<H", body, 24)  # the first two bytes of the SubFormat GUID
    if tag not in (_WAVE_FORMAT_PCM, _WAVE_FORMAT_IEEE_FLOAT):
        kind = _FORMAT_NAMES.get(tag, "compressed")
        raise bad(
            f"it is {kind} audio (format 0x{tag:04x}); only PCM WAV files can be read: convert "
            f"it first, e.g. `ffmpeg -i IN -c:a pcm_s16le OUT.wav`"
        )
    if channels < 1:
        raise bad("it declares 0 channels")
    if rate < 1:
        raise bad("it declares a sample rate of 0")
    width = block_align // channels if block_align % channels == 0 else 0
    if tag == _WAVE_FORMAT_IEEE_FLOAT:
        if width not in (4, 8) or bits != 8 * width:
            raise bad(f"{bits}-bit float samples are not supported (only 32- and 64-bit)")
    elif width not in (1, 2, 3, 4) or not 0 < bits <= 8 * width:
        raise bad(
            f"{bits}-bit samples in {block_align}-byte frames of {channels} channel(s) are not "
            f"supported (8-bit unsigned, 16-, 24- and 32-bit signed integers are)"
        )
    return _WavFormat(tag=tag, channels=channels, rate=rate, width=width)


def read_wav(source: str | os.PathLike[str] | BinaryIO) -> Pcm:
    """Read a PCM WAV file as mono 16-bit PCM at the file's own sample rate.

    Reads 8-bit unsigned, 16-, 24- and 32-bit signed integer PCM (also in
    ``WAVE_FORMAT_EXTENSIBLE`` files) and 32/64-bit float, with any number of channels: samples
    keep their top 16 bits (float is scaled by 32767 and clipped) and channels are averaged, as
    :func:`to_mono` does. A data chunk that the file ends in the middle of (a recording that was
    cut off) is read as far as it goes, in whole frames. Call :meth:`Pcm.to_input` for the
    model's 16 kHz.

    Args:
        source: A path, or a binary file object (read to its end).

    Returns:
        The audio, mono 16-bit, at the file's rate.

    Raises:
        ConfigurationError: The file is missing or unreadable, not a WAV file, compressed,
            or damaged; the message names the file.
    """
    raw, name = _read_source(source, "WAV file")

    def bad(reason: str) -> ConfigurationError:
        return ConfigurationError(f"cannot read WAV file '{name}': {reason}")

    if len(raw) < 12 or raw[0:4] != b"RIFF" or raw[8:12] != b"WAVE":
        if raw[0:4] in (b"RIFX", b"RF64", b"BW64"):
            raise bad(f"{raw[0:4].decode()} WAV files are not supported (only RIFF)")
        raise bad("it is not a WAV file (no RIFF/WAVE header)")
    fmt: _WavFormat | None = None
    data: bytes | None = None
    pos = 12
    while pos + 8 <= len(raw) and (fmt is None or data is None):
        chunk_id = raw[pos : pos + 4]
        (size,) = struct.unpack_from("<I", raw, pos + 4)
        body = raw[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < size:
                raise bad("the file ends inside its fmt chunk")
            fmt = _parse_fmt(body, name)
        elif chunk_id == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None:
        raise bad("it has no fmt chunk")
    if data is None:
        raise bad("it has no data chunk")
    frame = fmt.width * fmt.channels
    data = data[: len(data) - len(data) % frame]
    if fmt.tag == _WAVE_FORMAT_IEEE_FLOAT:
        pcm = _float_to_16bit(data, fmt.width)
    else:
        pcm = _to_16bit(data, fmt.width)
    return Pcm(to_mono(pcm, fmt.channels), fmt.rate)


def read_pcm(
    source: str | os.PathLike[str] | BinaryIO,
    sample_rate: int,
    *,
    channels: int = 1,
    sample_width: int = 2,
) -> Pcm:
    """Read a raw (headerless) PCM file as mono 16-bit PCM.

    Args:
        source: A path, or a binary file object (read to its end).
        sample_rate: The file's sample rate in Hz (a raw file does not say).
        channels: The number of interleaved channels; they are averaged to mono.
        sample_width: Bytes per sample: 1 (unsigned 8-bit), 2, 3 or 4 (signed
            little-endian 16-, 24- and 32-bit integers).

    Returns:
        The audio, mono 16-bit, at *sample_rate*.

    Raises:
        ConfigurationError: A bad argument, an unreadable file, or a file that is not a whole
            number of frames (the message names the file).
    """
    _check_rate(sample_rate)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ConfigurationError(f"channels must be a positive int, got {channels!r:.40}")
    if sample_width not in (1, 2, 3, 4) or isinstance(sample_width, bool):
        raise ConfigurationError(f"sample_width must be 1, 2, 3 or 4, got {sample_width!r:.40}")
    raw, name = _read_source(source, "PCM file")
    frame = channels * sample_width
    if len(raw) % frame:
        raise ConfigurationError(
            f"cannot read PCM file '{name}': {len(raw)} bytes is not a whole number of "
            f"{channels}-channel {8 * sample_width}-bit frames ({frame} bytes each)"
        )
    return Pcm(to_mono(_to_16bit(raw, sample_width), channels), sample_rate)


# --- resampling ---------------------------------------------------------------------------

_ZERO_CROSSINGS = 8  # of the sinc, each side of the centre
_KAISER_BETA = 6.0
_ROLLOFF = 0.9  # cut-off, as a fraction of the lower Nyquist frequency
_MAX_PHASES = 1024  # finer fractional delays are rounded to the nearest of this many


@functools.cache
def _load_soxr() -> tuple[Any, Any] | None:
    """The ``soxr`` and ``numpy`` modules, or None when they are not installed (imported on
    first use, so that importing this module stays cheap)."""
    try:
        return importlib.import_module("soxr"), importlib.import_module("numpy")
    except ImportError:
        return None


def has_soxr() -> bool:
    """Whether :func:`resample` uses soxr (installed with ``gemini-ws[audio]``)."""
    return _load_soxr() is not None


def _bessel_i0(x: float) -> float:
    term = total = 1.0
    quarter = x * x / 4
    k = 0
    while term > 1e-12 * total:
        k += 1
        term *= quarter / (k * k)
        total += term
    return total


@functools.lru_cache(maxsize=16)
def _polyphase(up: int, down: int) -> tuple[tuple[tuple[float, ...], ...], int]:
    """The filter for resampling by *up*/*down*: one tap tuple per fractional delay (phase),
    each summing to 1, and the number of input samples it reaches on each side."""
    cutoff = 0.5 * min(1.0, up / down) * _ROLLOFF  # cycles per input sample
    half_width = _ZERO_CROSSINGS / (2 * cutoff)  # input samples each side of the centre
    reach = math.ceil(half_width)
    phases = min(up, _MAX_PHASES)
    norm = _bessel_i0(_KAISER_BETA)
    table = []
    for phase in range(phases):
        delay = phase / phases
        taps = []
        for k in range(1 - reach, reach + 1):
            t = k - delay  # distance of input sample k from the output instant
            if abs(t) >= half_width:
                taps.append(0.0)
                continue
            ideal = 2 * cutoff if t == 0 else math.sin(2 * math.pi * cutoff * t) / (math.pi * t)
            window = _bessel_i0(_KAISER_BETA * math.sqrt(1 - (t / half_width) ** 2)) / norm
            taps.append(ideal * window)
        gain = sum(taps)
        table.append(tuple(tap / gain for tap in taps))
    return tuple(table), reach


def _dot_product(taps: tuple[float, ...], window: list[float]) -> float:
    total: float = sum(map(mul, taps, window))
    return total


# math.sumprod (Python 3.12+) is the same dot product, without the intermediate floats.
_dot: Callable[[tuple[float, ...], list[float]], float] = getattr(math, "sumprod", _dot_product)


def _resample_python(data: bytes, from_rate: int, to_rate: int) -> bytes:
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    table, reach = _polyphase(up, down)
    phases = len(table)
    width = 2 * reach
    n_out = (len(data) // 2 * to_rate + from_rate // 2) // from_rate
    # Zeros around the signal, so every output sample sees a full window.
    padded = [0.0] * reach
    padded += map(float, _samples(data))
    padded += [0.0] * (reach + 1)
    out: list[float] = []
    append = out.append
    dot = _dot
    for n in range(n_out):
        i, phase = divmod(n * down, up)  # output n is at input time i + phase/up
        taps = table[phase * phases // up]
        window = padded[i + 1 : i + 1 + width]
        append(dot(taps, window))
    return _round16(out)


def _resample_soxr(soxr: Any, np: Any, data: bytes, from_rate: int, to_rate: int) -> bytes:
    samples = np.frombuffer(data, dtype="<i2")
    out = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return bytes(np.asarray(out, dtype="<i2").tobytes())


def resample(data: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample mono 16-bit little-endian PCM from *from_rate* to *to_rate*.

    Uses soxr (high quality) when it is installed, otherwise the pure-Python polyphase
    windowed-sinc filter described in this module's introduction. The output has
    ``round(samples * to_rate / from_rate)`` samples. Resample a whole recording at once:
    resampling chunk by chunk adds a small click at every chunk boundary.

    Args:
        data: Mono 16-bit little-endian PCM.
        from_rate: Its sample rate in Hz.
        to_rate: The rate wanted, in Hz.

    Returns:
        The resampled PCM (*data* itself, as bytes, when the rates are equal).

    Raises:
        ConfigurationError: *data* is not bytes of whole samples, or a rate is not a positive
            int.
    """
    pcm = _check_pcm16(data, "data")
    _check_rate(from_rate, "from_rate")
    _check_rate(to_rate, "to_rate")
    if from_rate == to_rate or not pcm:
        return pcm
    fast = _load_soxr()
    if fast is not None:
        return _resample_soxr(*fast, pcm, from_rate, to_rate)
    return _resample_python(pcm, from_rate, to_rate)


# --- sending ------------------------------------------------------------------------------


def chunks(pcm: Pcm, chunk_ms: int = 20) -> Iterator[bytes]:
    """Cut audio into chunks of *chunk_ms* milliseconds for sending.

    Every chunk holds whole samples, ``sample_rate * chunk_ms // 1000`` of them (at least
    one); the last chunk may be shorter. 20 to 40 ms suits the Live API.

    Args:
        pcm: The audio.
        chunk_ms: The length of a chunk, 10 to 1000 ms.

    Yields:
        The chunks' bytes, in order.

    Raises:
        ConfigurationError: *pcm* is not a :class:`Pcm`, or *chunk_ms* is out of range.
    """
    if not isinstance(pcm, Pcm):
        raise ConfigurationError(f"pcm must be a gemini_ws.audio.Pcm, got {type(pcm).__name__}")
    step = _chunk_bytes(pcm.sample_rate, _check_chunk_ms(chunk_ms))
    return _cut(pcm.data, step)


def _cut(data: bytes, step: int) -> Iterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


class SupportsSendAudio(Protocol):
    """Anything :func:`send_paced` can send to: a :class:`~gemini_ws.LiveStream`, or a fake."""

    async def send_audio(self, pcm: bytes, sample_rate: int) -> object:
        """Send one chunk of 16-bit mono PCM at *sample_rate*."""
        ...


def _check_speed(speed: object) -> float:
    if (
        isinstance(speed, bool)
        or not isinstance(speed, int | float)
        or math.isnan(speed)
        or speed <= 0
    ):
        raise ConfigurationError(
            f"speed must be a positive number (1.0 = real time, math.inf = no pacing), "
            f"got {speed!r:.40}"
        )
    return float(speed)


class Pacer:
    """A clock for sending audio at the pace it is spoken, from your own loop: ``await
    pacer.wait()`` before each chunk.

    The first :meth:`wait` returns at once; the *k*-th returns at ``start + k * period``
    (*period* being ``chunk_ms / speed``, *start* the latest multiple of it on trio's clock at
    or before the first wait), so the time spent between waits does not add up into drift: a
    late chunk is followed by the next one at once, and the audio is never more than one chunk
    ahead of real time. ::

        pacer = audio.Pacer(chunk_ms=20)
        async for chunk in synthesizer:          # your audio source, 20 ms per chunk
            await pacer.wait()
            await s.send_audio(chunk)

    Every Pacer (and every :func:`send_paced`) of the trio run with the same period waits for
    the same ticks, and of the tasks waiting for one tick only one sleeps on a timer; the others
    wait for it, which costs far less. An app streaming into many sessions then wakes once per
    chunk for all of them instead of once per session (``bench_realtime.py``: the row
    ``gemini_ws (audio.Pacer)`` against ``gemini_ws``, whose sessions each run their own
    ``trio.sleep_until`` loop).

    :meth:`wait` is a trio checkpoint and cancellable; a cancelled wait takes no tick. After a
    gap in the audio (the microphone muted, the stream paused) call :meth:`restart`, or the
    waits that follow return at once until the pace has caught up with the time that passed.
    A Pacer belongs to one sender: two tasks sharing one would each take half of its ticks
    (give each its own; they still share the timer). Carried into another trio run (whose
    clock is another), it starts over with its first wait there.

    Args:
        chunk_ms: The length of a chunk, 10 to 1000 ms (20 to 40 ms suits the Live API).
        speed: 1.0 paces in real time, 2.0 twice as fast; ``math.inf`` does not pace (every
            wait is only a checkpoint).

    Raises:
        ConfigurationError: A bad argument.
    """

    __slots__ = ("_first", "_period", "_run", "_ticks")

    def __init__(self, chunk_ms: int = 20, *, speed: float = 1.0) -> None:
        self._period = _check_chunk_ms(chunk_ms) / 1000 / _check_speed(speed)
        #: the grid index of the first tick (None until the first wait)
        self._first: int | None = None
        self._ticks = 0
        #: the root task of the trio run whose clock the grid is on (each run's clock has its
        #: own offset: a Pacer carried into another run starts over instead of waiting for a
        #: time on the old clock)
        self._run: object = None

    @classmethod
    def _every(cls, period: float) -> Pacer:
        """A Pacer with *period* seconds between ticks (0: no pacing), arguments checked."""
        self = cls.__new__(cls)
        self._period, self._first, self._ticks, self._run = period, None, 0, None
        return self

    def __repr__(self) -> str:
        return f"Pacer(period={self._period * 1000:g} ms, ticks={self._ticks})"

    @property
    def period(self) -> float:
        """Seconds between ticks (0.0 with ``speed=math.inf``)."""
        return self._period

    @property
    def ticks(self) -> int:
        """Waits that returned since the first one (or the last :meth:`restart`)."""
        return self._ticks

    @property
    def behind(self) -> float:
        """The seconds since the next tick was due, which is how far the sender is behind the
        pace (0.0 when the next :meth:`wait` will sleep, or before the first). A sender that
        keeps falling behind is producing audio slower than real time. Call it inside the trio
        run."""
        if self._first is None or self._run is not trio.lowlevel.current_root_task():
            return 0.0
        return max(0.0, trio.current_time() - (self._first + self._ticks) * self._period)

    def restart(self) -> None:
        """Start over: the next :meth:`wait` returns at once and the pace counts from it."""
        self._first = None
        self._ticks = 0

    async def wait(self) -> None:
        """Wait for the next tick (at once for the first; see the class docstring)."""
        period = self._period
        if period <= 0:
            await trio.lowlevel.checkpoint()
        else:
            if self._first is None or self._run is not trio.lowlevel.current_root_task():
                # on the grid every Pacer with this period shares (the same float for the same
                # tick, whoever computes it)
                self._first = math.floor(trio.current_time() / period)
                self._ticks = 0
                self._run = trio.lowlevel.current_root_task()
            await wait_tick((self._first + self._ticks) * period)
        self._ticks += 1


async def send_paced(
    stream: SupportsSendAudio,
    pcm: Pcm,
    *,
    chunk_ms: int = 20,
    speed: float = 1.0,
    on_chunk: Callable[[int, float], object] | None = None,
) -> float:
    """Send recorded audio in chunks at the pace of a microphone.

    The chunks are paced by a :class:`Pacer`: the first goes out at once, chunk *k* at
    ``start + k * period``, the period being ``chunk_duration / speed`` and *start* the latest
    multiple of it on trio's clock (at or before the call), so time spent inside
    ``send_audio`` does not add up into drift (a late chunk is followed by the next one at
    once) and the audio is never more than one chunk ahead of real time. Every ``send_paced``
    and Pacer of a process with the same period sends on the same ticks: many sessions
    streaming audio wake once per chunk for all of them, not each at its own moment (a wake is
    most of what a paced chunk costs), and only one of them sleeps on a timer (the others wait
    for it, which costs far less). The audio is sent at its own rate: call
    :meth:`Pcm.to_input` first for the model's 16 kHz.

    This does **not** end the audio stream. With automatic activity detection (the default),
    tell the server the file is over, or it keeps waiting for more speech::

        seconds = await send_paced(s, read_wav("question.wav").to_input())
        await s.send_audio_stream_end()

    Every wait is a trio checkpoint: cancel the call (``move_on_after``, a cancelled nursery)
    to stop sending; the cancellation propagates as usual and *on_chunk* has seen every chunk
    that was sent.

    Args:
        stream: Where to send, usually a :class:`~gemini_ws.LiveStream`.
        pcm: The audio.
        chunk_ms: The length of a chunk, 10 to 1000 ms (20 to 40 ms suits the Live API).
        speed: 1.0 sends in real time, 2.0 twice as fast; ``math.inf`` sends as fast as the
            stream takes the chunks.
        on_chunk: Called after each chunk was sent, with the bytes and the seconds of audio
            sent so far; if it returns an awaitable, that is awaited before the next chunk.

    Returns:
        The seconds of audio sent (``pcm.duration``).

    Raises:
        ConfigurationError: A bad argument.
    """
    if not isinstance(pcm, Pcm):
        raise ConfigurationError(f"pcm must be a gemini_ws.audio.Pcm, got {type(pcm).__name__}")
    step = _chunk_bytes(pcm.sample_rate, _check_chunk_ms(chunk_ms))
    pace = _check_speed(speed)
    rate = pcm.sample_rate
    # (the period of whole samples: at common rates the same float as Pacer(chunk_ms)'s)
    pacer = Pacer._every(step / 2 / rate / pace)
    sent = 0
    for chunk in _cut(pcm.data, step):
        await pacer.wait()
        await stream.send_audio(chunk, rate)
        sent += len(chunk)
        if on_chunk is not None:
            result = on_chunk(sent, sent / 2 / rate)
            if inspect.isawaitable(result):
                await result
    if not sent:
        await trio.lowlevel.checkpoint()
    return sent / 2 / rate


# --- the reply ----------------------------------------------------------------------------


class WavWriter:
    """Writes mono 16-bit PCM to a WAV file as it arrives (a sync context manager).

    The WAV header is brought up to date after every write, so the file is complete (and
    playable) at every moment, even if the program stops before :meth:`close`::

        with WavWriter("reply.wav") as wav:
            async for msg in s.turn():
                wav.feed(msg)
        print(f"{wav.duration:.2f} s")

    Writes are ordinary blocking file writes: small, so fine inside a trio task.

    Args:
        path: The file to create (or overwrite).
        sample_rate: The rate of the PCM that will be written; the model speaks 24 kHz.

    Raises:
        ConfigurationError: A bad rate, or the file cannot be created (the message names it).
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate: int = OUTPUT_RATE) -> None:
        self.sample_rate = _check_rate(sample_rate)
        if not isinstance(path, str | os.PathLike):
            raise ConfigurationError(f"path must be a str or a path, got {type(path).__name__}")
        #: The path of the file, as a str.
        self.path = os.fsdecode(path)
        self._bytes = 0
        # The file is opened here rather than by wave.open(path): when that open fails, the
        # half-built Wave_write complains from its __del__. The writer owns the file until
        # close() (or __exit__).
        try:
            self._file = open(self.path, "wb")  # noqa: SIM115
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigurationError(f"cannot create WAV file '{self.path}': {reason}") from exc
        self._wav: wave.Wave_write | None = wave.open(self._file, "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)

    def __repr__(self) -> str:
        state = "closed" if self._wav is None else "open"
        return f"<WavWriter {self.path!r} {state}: {self.duration:.2f} s at {self.sample_rate} Hz>"

    @property
    def bytes_written(self) -> int:
        """Bytes of PCM written so far (the WAV header not counted)."""
        return self._bytes

    @property
    def duration(self) -> float:
        """Seconds of audio written so far."""
        return self._bytes / 2 / self.sample_rate

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._wav is None

    def write(self, pcm: bytes) -> None:
        """Append mono 16-bit little-endian PCM (at the writer's rate) to the file.

        Raises:
            ConfigurationError: *pcm* is not bytes of whole samples, or the writer is closed.
        """
        data = _check_pcm16(pcm)
        if self._wav is None:
            raise ConfigurationError(f"the WavWriter for '{self.path}' is closed")
        if data:
            self._wav.writeframes(data)
            self._bytes += len(data)

    def feed(self, message: object) -> None:
        """Write the audio of a :class:`~gemini_ws.ServerContent` (``message.audio``).

        Any other message (or stream event) is ignored, so every message of a turn can be fed.
        """
        if isinstance(message, ServerContent):
            self.write(message.audio)

    def close(self) -> None:
        """Finish the file. Idempotent."""
        wav, self._wav = self._wav, None
        if wav is not None:
            try:
                wav.close()  # writes the final header
            finally:
                self._file.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@attrs.frozen
class PlaybackStatistics:
    """A snapshot of a :class:`PlaybackBuffer` (from :meth:`PlaybackBuffer.statistics`).

    Attributes:
        queued_bytes: PCM waiting to be played.
        queued_seconds: The same, in seconds.
        played_bytes: PCM taken out by :meth:`~PlaybackBuffer.play` or
            :meth:`~PlaybackBuffer.read`.
        dropped_bytes: PCM thrown away unplayed: by interruptions and by ``max_seconds``.
        overflow_bytes: The part of ``dropped_bytes`` that ``max_seconds`` dropped.
        interruptions: How many times :meth:`~PlaybackBuffer.interrupt` ran (directly, or by
            :meth:`~PlaybackBuffer.feed` seeing ``interrupted``).
        playing: Whether :meth:`~PlaybackBuffer.play` is running.
    """

    queued_bytes: int
    queued_seconds: float
    played_bytes: int
    dropped_bytes: int
    overflow_bytes: int
    interruptions: int
    playing: bool


class PlaybackBuffer:
    """Reply audio queued for playback; ``interrupted`` drops what is queued (barge-in).

    The model sends its speech faster than real time, so a player has to queue it; when the
    user talks over the model the server sends ``interrupted``, and what is still queued must
    go at once or the app keeps talking. Feed every message of the stream in, and let
    :meth:`play` hand the audio to the sound device at its own pace::

        buffer = PlaybackBuffer()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(buffer.play, speaker.write)
            async for msg in s:
                buffer.feed(msg)

    Or pull with :meth:`read` from a sound card callback instead of running :meth:`play`.

    Args:
        sample_rate: The rate of the queued PCM; the model speaks 24 kHz.
        max_seconds: A bound on the queue. When a write takes it past, the oldest audio is
            dropped (counted in :attr:`dropped_bytes`), so a stalled player falls behind by
            at most this much. Set it above the longest reply you expect: replies arrive
            faster than they play. ``None`` (default) for no bound.

    Raises:
        ConfigurationError: A bad rate or bound.
    """

    def __init__(self, sample_rate: int = OUTPUT_RATE, *, max_seconds: float | None = None) -> None:
        self.sample_rate = _check_rate(sample_rate)
        self._max_bytes: int | None = None
        if max_seconds is not None:
            if (
                isinstance(max_seconds, bool)
                or not isinstance(max_seconds, int | float)
                or not 0 < max_seconds < math.inf
            ):
                raise ConfigurationError(
                    f"max_seconds must be a positive number or None, got {max_seconds!r:.40}"
                )
            self._max_bytes = 2 * max(1, int(max_seconds * sample_rate))
        #: The ``max_seconds`` given.
        self.max_seconds = max_seconds
        self._queue = bytearray()
        self._arrived = trio.Event()
        self._played = 0
        self._dropped = 0
        self._overflow = 0
        self._interruptions = 0
        self._playing = False

    def __repr__(self) -> str:
        return (
            f"<PlaybackBuffer: {self.queued_seconds:.2f} s queued, "
            f"{self._dropped} bytes dropped, {'playing' if self._playing else 'idle'}>"
        )

    @property
    def queued_bytes(self) -> int:
        """Bytes of PCM waiting to be played."""
        return len(self._queue)

    @property
    def queued_seconds(self) -> float:
        """Seconds of audio waiting to be played."""
        return len(self._queue) / 2 / self.sample_rate

    @property
    def dropped_bytes(self) -> int:
        """Bytes of PCM thrown away unplayed, by :meth:`interrupt` and by ``max_seconds``."""
        return self._dropped

    def statistics(self) -> PlaybackStatistics:
        """A snapshot of the buffer's counters."""
        return PlaybackStatistics(
            queued_bytes=self.queued_bytes,
            queued_seconds=self.queued_seconds,
            played_bytes=self._played,
            dropped_bytes=self._dropped,
            overflow_bytes=self._overflow,
            interruptions=self._interruptions,
            playing=self._playing,
        )

    def write(self, pcm: bytes) -> None:
        """Queue mono 16-bit little-endian PCM (at the buffer's rate) for playback.

        Raises:
            ConfigurationError: *pcm* is not bytes of whole samples.
        """
        data = _check_pcm16(pcm)
        if not data:
            return
        self._queue += data
        if self._max_bytes is not None and len(self._queue) > self._max_bytes:
            excess = len(self._queue) - self._max_bytes
            del self._queue[:excess]
            self._dropped += excess
            self._overflow += excess
        self._arrived.set()

    def feed(self, message: object) -> None:
        """Take a server message: a :class:`~gemini_ws.ServerContent` with ``interrupted``
        first drops what is queued (:meth:`interrupt`), then its audio is queued. Any other
        message (or stream event) is ignored, so every message can be fed."""
        if isinstance(message, ServerContent):
            if message.interrupted:
                self.interrupt()
            self.write(message.audio)

    def interrupt(self) -> int:
        """Drop everything queued (barge-in) and return how many bytes that was.

        The bytes are added to :attr:`dropped_bytes`. A chunk :meth:`play` already handed to
        its sink is not recalled: keep the sink's own buffer short.
        """
        dropped = len(self._queue)
        self._queue.clear()
        self._dropped += dropped
        self._interruptions += 1
        return dropped

    def read(self, nbytes: int) -> bytes:
        """Take up to *nbytes* of queued PCM now (whole samples; ``b""`` when nothing is queued).

        Raises:
            ConfigurationError: *nbytes* is not a non-negative int.
        """
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
            raise ConfigurationError(f"nbytes must be a non-negative int, got {nbytes!r:.40}")
        count = min(nbytes - nbytes % 2, len(self._queue))
        data = bytes(self._queue[:count])
        del self._queue[:count]
        self._played += count
        return data

    async def _wait_queued(self) -> None:
        while not self._queue:
            self._arrived = trio.Event()
            await self._arrived.wait()

    async def play(self, sink: Callable[[bytes], object], *, chunk_ms: int = 20) -> None:
        """Hand the queued audio to *sink*, one chunk every *chunk_ms*, in real time.

        Run it as a task (``nursery.start_soon(buffer.play, sink)``); it runs until cancelled.
        While nothing is queued it waits (no polling) and starts again at once when audio
        arrives. Chunks are paced against a clock started when playing (re)starts, so the
        sink's own latency does not add up into drift; after a sink that stalled for longer
        than a chunk, the clock restarts instead of rushing to catch up. The last chunk before
        the queue runs dry may be shorter than *chunk_ms*.

        Args:
            sink: Called with each chunk; if it returns an awaitable, that is awaited. A sink
                that blocks (a sound device's blocking write) should be an async function
                around :func:`trio.to_thread.run_sync`.
            chunk_ms: The length of a chunk, 10 to 1000 ms.

        Raises:
            ConfigurationError: A bad *chunk_ms*, or :meth:`play` is already running for this
                buffer (one player per buffer).
        """
        step = _chunk_bytes(self.sample_rate, _check_chunk_ms(chunk_ms))
        if self._playing:
            raise ConfigurationError("play() is already running for this PlaybackBuffer")
        self._playing = True
        try:
            chunk_seconds = step / 2 / self.sample_rate
            start = trio.current_time()
            played = 0
            while True:
                if not self._queue:
                    await self._wait_queued()
                    start, played = trio.current_time(), 0
                chunk = self.read(step)
                result = sink(chunk)
                if inspect.isawaitable(result):
                    await result
                played += len(chunk)
                deadline = start + played / 2 / self.sample_rate
                now = trio.current_time()
                if now > deadline + chunk_seconds:  # the sink stalled: restart the clock
                    start, played, deadline = now, 0, now
                await trio.sleep_until(deadline)
        finally:
            self._playing = False
