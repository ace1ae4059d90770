"""gemini_ws.audio: WAV and raw PCM in, resampling (pure Python and soxr), chunking, paced
sending on trio's clock, WAV out, the playback buffer's barge-in, and the whole recipe against
the fake Live server."""

from __future__ import annotations

import io
import itertools
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from gemini_ws import (
    Blob,
    Client,
    ConfigurationError,
    Content,
    GeminiWSError,
    LiveConfig,
    Part,
    ServerContent,
    SetupComplete,
    audio,
)
from gemini_ws.audio import (
    INPUT_RATE,
    OUTPUT_RATE,
    Pacer,
    Pcm,
    PlaybackBuffer,
    WavWriter,
    chunks,
    read_pcm,
    read_wav,
    resample,
    send_paced,
    to_mono,
)
from gemini_ws.testing import FakeLiveServer, open_fake_server

from .conftest import TEST_KEY

MODEL = "gemini-3.1-flash-live-preview"
AUDIO = LiveConfig(response_modalities=["AUDIO"])


# --- helpers -------------------------------------------------------------------------------


def sine(hz: float, rate: int, seconds: float = 1.0, amplitude: float = 8000.0) -> list[int]:
    n = round(rate * seconds)
    return [round(amplitude * math.sin(2 * math.pi * hz * i / rate)) for i in range(n)]


def pack16(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}h", *values)


def unpack16(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def encode_samples(values: list[int], width: int) -> bytes:
    """Integer samples of *width* bytes (8-bit unsigned, wider signed), little-endian."""
    if width == 1:
        return bytes(values)
    return b"".join(v.to_bytes(width, "little", signed=True) for v in values)


def write_wav(path: Path, frames: list[list[int]], width: int, rate: int) -> None:
    """A WAV file written by the standard library: one list of samples per frame."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(frames[0]))
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(encode_samples([s for frame in frames for s in frame], width))


def riff(fmt: bytes, data: bytes, *, extra: bytes = b"") -> bytes:
    """A WAV file put together by hand (for what the wave module cannot write)."""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def to16(value: int, width: int) -> int:
    """What read_wav makes of one sample: its top 16 bits (8-bit: unsigned, centred)."""
    if width == 1:
        return (value - 128) << 8
    return value >> (8 * (width - 2))


def zero_crossings(values: list[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))


def tone_amplitude(values: list[int], rate: int, hz: float) -> float:
    """The amplitude of the *hz* component (one DFT bin, computed directly)."""
    n = len(values)
    re = sum(v * math.cos(2 * math.pi * hz * i / rate) for i, v in enumerate(values))
    im = sum(v * math.sin(2 * math.pi * hz * i / rate) for i, v in enumerate(values))
    return 2 * math.hypot(re, im) / n


def rms(values: list[int]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values))


def audio_content(pcm: bytes, *, interrupted: bool = False) -> ServerContent:
    part = Part(inline_data=Blob(mime_type="audio/pcm;rate=24000", data=pcm))
    return ServerContent(model_turn=Content(parts=[part], role="model"), interrupted=interrupted)


@pytest.fixture(params=["python", "soxr"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with the pure-Python resampler, and again with soxr (skipped without it)."""
    name: str = request.param
    if name == "python":
        monkeypatch.setattr(audio, "_load_soxr", lambda: None)
        assert not audio.has_soxr()
    else:
        pytest.importorskip("soxr")
        assert audio.has_soxr()
    yield name


# --- reading WAV files -----------------------------------------------------------------------

# Per width: sample values covering the extremes and around zero.
SAMPLES = {
    1: [0, 1, 127, 128, 129, 200, 255, 64],
    2: [-32768, -1, 0, 1, 32767, 12345, -12345, 256],
    3: [-(2**23), -1, 0, 1, 2**23 - 1, 0x123456, -0x123456, 255],
    4: [-(2**31), -1, 0, 1, 2**31 - 1, 0x12345678, -0x12345678, 65535],
}


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_read_wav_round_trips_every_width_and_downmixes(
    tmp_path: Path, width: int, channels: int
) -> None:
    values = SAMPLES[width]
    # Channel c of frame i: the value list rotated, so the channels differ.
    frames = [[values[(i + 3 * c) % len(values)] for c in range(channels)] for i in range(40)]
    path = tmp_path / f"in_{width}_{channels}.wav"
    write_wav(path, frames, width, 22050)

    pcm = read_wav(path)

    expected = [sum(to16(v, width) for v in frame) // channels for frame in frames]
    assert pcm.sample_rate == 22050
    assert unpack16(pcm.data) == expected
    assert pcm.samples == 40
    assert pcm.duration == pytest.approx(40 / 22050)


def test_read_wav_takes_paths_strings_and_file_objects(tmp_path: Path) -> None:
    path = tmp_path / "in.wav"
    values = sine(440, 16000, 0.1)
    write_wav(path, [[v] for v in values], 2, 16000)
    from_path = read_wav(path)
    from_str = read_wav(str(path))
    with open(path, "rb") as f:
        from_file = read_wav(f)
    from_bytes = read_wav(io.BytesIO(path.read_bytes()))
    assert from_path == from_str == from_file == from_bytes == Pcm(pack16(values), 16000)


def test_read_wav_extensible_24_bit_stereo(tmp_path: Path) -> None:
    # WAVE_FORMAT_EXTENSIBLE, as sox and many DAWs write 24-bit files (Python 3.11's wave
    # module cannot read these).
    left = [0x7FFFFF, -0x800000, 0x010000, -0x010000]
    right = [0x7FFFFF, 0x7FFFFF, 0x030000, 0x010000]
    data = encode_samples([s for pair in zip(left, right, strict=True) for s in pair], 3)
    guid_pcm = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHH", 0xFFFE, 2, 48000, 48000 * 6, 6, 24)
    fmt += struct.pack("<HHI", 22, 24, 0x3) + guid_pcm
    path = tmp_path / "ext.wav"
    path.write_bytes(riff(fmt, data, extra=b"LIST" + struct.pack("<I", 3) + b"abc\x00"))

    pcm = read_wav(path)

    assert pcm.sample_rate == 48000
    assert unpack16(pcm.data) == [32767, 32767 // 2 - 16384, 512, 0]


def test_read_wav_float(tmp_path: Path) -> None:
    values = [0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 0.25]
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 8000 * 4, 4, 32)
    path = tmp_path / "float.wav"
    path.write_bytes(riff(fmt, struct.pack(f"<{len(values)}f", *values)))
    pcm = read_wav(path)
    assert unpack16(pcm.data) == [0, 16384, -16384, 32767, -32767, 32767, -32768, 8192]


def test_read_wav_keeps_what_a_cut_off_recording_has(tmp_path: Path) -> None:
    # A data chunk that declares more than the file holds, ending mid-frame.
    fmt = struct.pack("<HHIIHH", 1, 2, 16000, 16000 * 4, 4, 16)
    data = pack16([100, 200, 300, 500, 7])
    raw = riff(fmt, data)
    raw = raw.replace(b"data" + struct.pack("<I", len(data)), b"data" + struct.pack("<I", 4000))
    path = tmp_path / "cut.wav"
    path.write_bytes(raw)
    assert unpack16(read_wav(path).data) == [150, 400]


def test_read_pcm_raw_files(tmp_path: Path) -> None:
    path = tmp_path / "in.raw"
    path.write_bytes(pack16([1000, 3000, -2000, -4000, 5, 6]))
    pcm = read_pcm(path, 44100, channels=2)
    assert pcm == Pcm(pack16([2000, -3000, 5]), 44100)

    path.write_bytes(encode_samples([0x123456, -0x123456], 3))
    assert unpack16(read_pcm(path, 8000, sample_width=3).data) == [0x1234, -0x1235]
    assert read_pcm(io.BytesIO(b"\x80\xff"), 8000, sample_width=1).data == pack16([0, 127 << 8])


# --- errors ------------------------------------------------------------------------------


def assert_config_error_naming(
    excinfo: pytest.ExceptionInfo[ConfigurationError], path: Path
) -> None:
    assert isinstance(excinfo.value, GeminiWSError)
    assert str(path) in str(excinfo.value)
    assert not isinstance(excinfo.value, wave.Error | EOFError | struct.error)


def test_missing_file_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(ConfigurationError, match="No such file") as excinfo:
        read_wav(path)
    assert_config_error_naming(excinfo, path)
    assert isinstance(excinfo.value.__cause__, FileNotFoundError)
    with pytest.raises(ConfigurationError) as excinfo:
        read_pcm(path, 16000)
    assert_config_error_naming(excinfo, path)
    with pytest.raises(ConfigurationError) as excinfo:
        read_wav(tmp_path)  # a directory
    assert_config_error_naming(excinfo, tmp_path)


FMT_PCM16 = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a WAV file"),
        (b"hello, this is text and not audio at all", "not a WAV file"),
        (b"RIFF\x10\x00\x00\x00WAVE", "no fmt chunk"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "ends inside its fmt"),
        (riff(FMT_PCM16, b"")[:-8], "no data chunk"),
        (riff(struct.pack("<HHIIHH", 0x55, 1, 16000, 2000, 1, 0), b"\x00" * 8), "MP3"),
        (riff(struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8), b"\x00" * 8), "mu-law"),
        (riff(struct.pack("<HHIIHH", 1, 0, 16000, 0, 0, 16), b""), "0 channels"),
        (riff(struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 12)[:12], b""), "too short"),
        (riff(struct.pack("<HHIIHH", 1, 1, 16000, 80000, 5, 40), b""), "40-bit"),
        (riff(struct.pack("<HHIIHH", 3, 1, 16000, 32000, 2, 16), b""), "16-bit float"),
        (b"RIFX" + riff(FMT_PCM16, b"")[4:], "RIFX"),
    ],
)
def test_bad_wav_files_are_configuration_errors(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=reason) as excinfo:
        read_wav(path)
    assert_config_error_naming(excinfo, path)


def test_raw_file_of_partial_frames_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.raw"
    path.write_bytes(b"\x00" * 7)
    with pytest.raises(ConfigurationError, match="7 bytes is not a whole number") as excinfo:
        read_pcm(path, 16000)
    assert_config_error_naming(excinfo, path)
    path.write_bytes(b"\x00" * 9)
    with pytest.raises(ConfigurationError, match="2-channel 24-bit frames"):
        read_pcm(path, 16000, channels=2, sample_width=3)


def test_text_mode_file_object_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "in.wav"
    path.write_text("RIFF")
    with open(path) as f, pytest.raises(ConfigurationError, match="binary mode"):
        read_wav(f)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"io\.BytesIO"):
        read_wav(path.read_bytes())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        lambda: Pcm(b"\x00", 16000),
        lambda: Pcm(b"\x00\x00", 0),
        lambda: Pcm(b"\x00\x00", -16000),
        lambda: Pcm(b"\x00\x00", True),
        lambda: Pcm(b"\x00\x00", 16000.0),  # type: ignore[arg-type]
        lambda: Pcm("text", 16000),  # type: ignore[arg-type]
        lambda: Pcm(b"\x00\x00", 16000).to_input(0),
        lambda: resample(b"\x00\x00\x00", 16000, 8000),
        lambda: resample(b"\x00\x00", 0, 8000),
        lambda: resample(b"\x00\x00", 16000, -1),
        lambda: to_mono(b"\x00\x00\x00\x00\x00\x00", 2),
        lambda: to_mono(b"\x00\x00", 0),
        lambda: read_pcm(io.BytesIO(b""), 0),
        lambda: read_pcm(io.BytesIO(b""), 16000, channels=0),
        lambda: read_pcm(io.BytesIO(b""), 16000, sample_width=5),
        lambda: read_wav(42),  # type: ignore[arg-type]
        lambda: list(chunks(Pcm(b"", 16000), 9)),
        lambda: list(chunks(Pcm(b"", 16000), 1001)),
        lambda: list(chunks(b"\x00\x00", 20)),  # type: ignore[arg-type]
        lambda: PlaybackBuffer(0),
        lambda: PlaybackBuffer(max_seconds=0),
        lambda: PlaybackBuffer(max_seconds=math.inf),
        lambda: PlaybackBuffer().write(b"\x00"),
        lambda: PlaybackBuffer().read(-1),
        lambda: WavWriter("x.wav", sample_rate=0),
    ],
)
def test_bad_arguments_are_configuration_errors(call: object) -> None:
    assert callable(call)
    with pytest.raises(ConfigurationError):
        call()


# --- mono, resampling --------------------------------------------------------------------------


def test_to_mono_averages_channels_rounding_down() -> None:
    assert to_mono(pack16([1, 2, -1, 0, 32767, 32767, -32768, -32768]), 2) == pack16(
        [1, -1, 32767, -32768]
    )
    assert to_mono(pack16([3, 3, 4, -9, 0, 0]), 3) == pack16([3, -3])
    assert to_mono(pack16([5, 6]), 1) == pack16([5, 6])


@pytest.mark.parametrize(
    ("from_rate", "to_rate"),
    [(48000, 16000), (8000, 16000), (24000, 16000), (44100, 16000), (16000, 24000)],
)
def test_resample_keeps_length_frequency_and_level(
    engine: str, from_rate: int, to_rate: int
) -> None:
    values = sine(1000, from_rate, 1.0)
    out = unpack16(resample(pack16(values), from_rate, to_rate))

    assert abs(len(out) - to_rate) <= 1
    middle = out[to_rate // 10 : -to_rate // 10]  # away from the edges
    seconds = len(middle) / to_rate
    assert zero_crossings(middle) / 2 / seconds == pytest.approx(1000, rel=0.01)
    assert tone_amplitude(middle, to_rate, 1000) == pytest.approx(8000, rel=0.03)


def test_resample_odd_lengths_round_the_sample_count(engine: str) -> None:
    for n in (1, 2, 3, 7, 1000, 1001, 1002):
        out = resample(pack16([100] * n), 48000, 16000)
        assert len(out) // 2 == round(n / 3), n
        out = resample(pack16([100] * n), 8000, 16000)
        assert len(out) // 2 == 2 * n, n


def test_downsampling_filters_what_would_alias(engine: str) -> None:
    # 12 kHz is above 16 kHz's Nyquist frequency: a resampler without a low-pass filter
    # would fold it back to 4 kHz at full level.
    values = sine(12000, 48000, 0.5)
    out = unpack16(resample(pack16(values), 48000, 16000))
    middle = out[800:-800]
    assert tone_amplitude(middle, 16000, 4000) < 8000 * 0.01
    assert rms(middle) < rms(values) * 0.01


def test_resample_clips_overshoot_instead_of_failing(engine: str) -> None:
    # A full-scale square wave rings past the 16-bit range when filtered.
    square = [32767 if (i // 24) % 2 else -32768 for i in range(4800)]
    out = unpack16(resample(pack16(square), 48000, 16000))
    assert len(out) == 1600
    assert max(out) == 32767 and min(out) == -32768


def test_resample_same_rate_and_empty_are_unchanged(engine: str) -> None:
    data = pack16(sine(300, 16000, 0.01))
    assert resample(data, 16000, 16000) == data
    assert resample(b"", 48000, 16000) == b""
    pcm = Pcm(data, 16000)
    assert pcm.to_input() is pcm
    assert pcm.to_input(8000).sample_rate == 8000


def test_pure_and_soxr_resamplers_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("soxr")
    data = pack16(sine(440, 48000, 0.25))
    fast = unpack16(resample(data, 48000, 16000))
    monkeypatch.setattr(audio, "_load_soxr", lambda: None)
    pure = unpack16(resample(data, 48000, 16000))
    assert len(fast) == len(pure)
    middle = slice(400, -400)
    difference = [a - b for a, b in zip(fast[middle], pure[middle], strict=True)]
    assert rms(difference) < 8000 * 0.01  # -40 dB


# --- chunks ------------------------------------------------------------------------------


def test_chunks_are_whole_samples_and_the_last_may_be_short() -> None:
    pcm = Pcm(b"\x01\x00" * 16000, 16000)
    sizes = [len(c) for c in chunks(pcm)]
    assert sizes == [640] * 50
    assert b"".join(chunks(pcm, 30)) == pcm.data

    odd = Pcm(b"\x01\x00" * 1001, 16000)
    assert [len(c) for c in chunks(odd, 20)] == [640] * 3 + [82]
    assert [len(c) for c in chunks(Pcm(b"\x00\x00" * 44100, 44100), 20)] == [1764] * 50
    # 22050 Hz * 10 ms = 220.5 samples: whole samples, 220 a chunk.
    assert [len(c) for c in chunks(Pcm(b"\x00\x00" * 500, 22050), 10)] == [440, 440, 120]
    assert list(chunks(Pcm(b"", 16000))) == []


# --- send_paced --------------------------------------------------------------------------


class FakeStream:
    """Records each chunk with trio's clock when send_audio was called and when it returned."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.started: list[float] = []
        self.sent: list[tuple[float, bytes, int]] = []

    async def send_audio(self, pcm: bytes, sample_rate: int) -> None:
        self.started.append(trio.current_time())
        if self.latency:
            await trio.sleep(self.latency)
        self.sent.append((trio.current_time(), pcm, sample_rate))


ONE_SECOND = Pcm(pack16(sine(440, 16000, 1.0)), 16000)


async def test_send_paced_is_real_time(autojump_clock: trio.testing.MockClock) -> None:
    stream = FakeStream()
    start = trio.current_time()
    seconds = await send_paced(stream, ONE_SECOND)
    assert seconds == 1.0
    assert [t - start for t in stream.started] == pytest.approx([k * 0.02 for k in range(50)])
    assert b"".join(c for _, c, _ in stream.sent) == ONE_SECOND.data
    assert {rate for _, _, rate in stream.sent} == {16000}
    assert trio.current_time() - start == pytest.approx(0.98)  # the last chunk's start


async def test_send_paced_does_not_drift_with_send_latency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = FakeStream(latency=0.007)
    start = trio.current_time()
    await send_paced(stream, ONE_SECOND, chunk_ms=40)
    assert [t - start for t in stream.started] == pytest.approx([k * 0.04 for k in range(25)])


async def test_send_paced_streams_share_ticks(autojump_clock: trio.testing.MockClock) -> None:
    """Two streams started 7 ms and 12 ms off the 20 ms grid: each sends its first chunk at
    once, then both send on the same ticks (one wake for both), never ahead of real time by
    more than one chunk, and each still sends every chunk once."""
    streams = [FakeStream(), FakeStream()]
    started: list[float] = []

    async def paced(stream: FakeStream, delay: float) -> None:
        await trio.sleep(delay)
        started.append(trio.current_time())
        await send_paced(stream, ONE_SECOND)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(paced, streams[0], 0.007)
        nursery.start_soon(paced, streams[1], 0.032)
    a, b = (stream.started for stream in streams)
    assert a[0] == pytest.approx(started[0]) and b[0] == pytest.approx(started[1])
    assert set(a[2:]) & set(b[1:]) == set(a[2:]), "after its first chunks, b ticks with a"
    for begun, times, wait in zip(started, (a, b), (0.013, 0.008), strict=True):
        assert times[1] - begun == pytest.approx(wait)  # the next tick, not 20 ms later
        assert [t - times[1] for t in times[1:]] == pytest.approx([k * 0.02 for k in range(49)])
        for k, t in enumerate(times):
            assert t - begun >= k * 0.02 - 0.02 - 1e-9, "more than one chunk ahead"
    for stream in streams:
        assert b"".join(c for _, c, _ in stream.sent) == ONE_SECOND.data


async def test_a_shared_tick_survives_its_sleeper_being_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Five waiters for one tick: the first sleeps, the rest wait on it. Cancel the sleeper and
    one other before the tick: both raise Cancelled at once, the other three still wake at the
    tick (not before), and nothing is left registered for the run."""
    from gemini_ws._ticks import _TICKS, wait_tick

    deadline = trio.current_time() + 1.0
    woke: dict[int, float] = {}
    cancelled: list[int] = []
    scopes = [trio.CancelScope() for _ in range(5)]

    async def waiter(i: int) -> None:
        with scopes[i]:
            try:
                await wait_tick(deadline)
            except trio.Cancelled:
                cancelled.append(i)
                raise
            woke[i] = trio.current_time()

    with trio.fail_after(5):  # (a lost hand-over would leave the others parked for good)
        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(waiter, i)
                await trio.sleep(0.01)  # waiter 0 arrives first: it is the one sleeping
            await trio.sleep(0.3)
            scopes[0].cancel()
            scopes[3].cancel()
            await trio.sleep(0.01)
            assert sorted(cancelled) == [0, 3]
    assert set(woke) == {1, 2, 4} and set(woke.values()) == {deadline}
    assert _TICKS.get() == {}
    # a lone sleeper cancelled leaves nothing registered either
    with trio.move_on_after(0.1):
        await wait_tick(trio.current_time() + 1.0)
    assert _TICKS.get() == {}


async def test_send_paced_speed(autojump_clock: trio.testing.MockClock) -> None:
    stream = FakeStream()
    start = trio.current_time()
    await send_paced(stream, ONE_SECOND, speed=2.0)
    assert [t - start for t in stream.started] == pytest.approx([k * 0.01 for k in range(50)])

    stream = FakeStream()
    start = trio.current_time()
    assert await send_paced(stream, ONE_SECOND, speed=math.inf) == 1.0
    assert len(stream.sent) == 50
    assert trio.current_time() == start  # never slept


@pytest.mark.parametrize("speed", [0, -1.0, math.nan, True, "fast"])
async def test_send_paced_rejects_bad_speed(speed: object) -> None:
    stream = FakeStream()
    with pytest.raises(ConfigurationError, match="speed"):
        await send_paced(stream, ONE_SECOND, speed=speed)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="Pcm"):
        await send_paced(stream, ONE_SECOND.data)  # type: ignore[arg-type]
    assert stream.sent == []


async def test_send_paced_cancelled_midway_stops_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = FakeStream()
    progress: list[tuple[int, float]] = []
    with trio.move_on_after(0.105) as scope:
        await send_paced(stream, ONE_SECOND, on_chunk=lambda b, s: progress.append((b, s)))
    assert scope.cancelled_caught
    assert len(stream.sent) == 6  # at 0, 20, ..., 100 ms
    assert progress == [(640 * k, 0.02 * k) for k in range(1, 7)]
    # Nothing more goes out once cancelled.
    await trio.sleep(2)
    assert len(stream.sent) == 6


async def test_send_paced_cancelled_inside_send_audio(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = FakeStream(latency=0.05)  # each send takes longer than a chunk
    progress: list[int] = []
    with trio.move_on_after(0.12):
        await send_paced(stream, ONE_SECOND, on_chunk=lambda b, s: progress.append(b))
    # Sends completed at 50 and 100 ms; the third was cut off inside send_audio.
    assert len(stream.started) == 3
    assert progress == [640, 1280] == [640 * (k + 1) for k in range(len(stream.sent))]


async def test_send_paced_awaits_an_async_on_chunk(autojump_clock: trio.testing.MockClock) -> None:
    stream = FakeStream()
    seen: list[float] = []

    async def on_chunk(sent: int, seconds: float) -> None:
        await trio.sleep(0.001)
        seen.append(seconds)

    start = trio.current_time()
    await send_paced(stream, Pcm(ONE_SECOND.data[:3200], 16000), on_chunk=on_chunk)
    assert seen == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert [t - start for t in stream.started] == pytest.approx([0, 0.02, 0.04, 0.06, 0.08])


async def test_send_paced_empty_audio() -> None:
    stream = FakeStream()
    assert await send_paced(stream, Pcm(b"", 16000)) == 0.0
    assert stream.sent == []


# --- Pacer (send_paced's clock, for an app's own loop) ------------------------------------


async def test_a_pacer_paces_an_apps_own_loop(autojump_clock: trio.testing.MockClock) -> None:
    """An app's loop that takes 7 ms per chunk between waits: the first wait returns at once,
    the others on the 20 ms grid from the latest tick before it, without drift."""
    await trio.sleep(0.013)  # off the grid
    begun = trio.current_time()
    grid = math.floor(begun / 0.02) * 0.02
    pacer = Pacer(chunk_ms=20)
    times: list[float] = []
    for _ in range(50):
        await pacer.wait()
        times.append(trio.current_time())
        await trio.sleep(0.007)  # the app's own work
    assert times[0] == begun
    assert [t - grid for t in times[1:]] == pytest.approx([k * 0.02 for k in range(1, 50)])
    assert pacer.ticks == 50 and pacer.period == 0.02
    assert repr(pacer) == "Pacer(period=20 ms, ticks=50)"


async def test_pacers_and_send_paced_share_ticks(autojump_clock: trio.testing.MockClock) -> None:
    """A Pacer loop and a send_paced started 25 ms apart, off the grid: after their first
    chunks both wake on the same ticks, and while they wait for one only one of them holds a
    timer (the other is parked on it)."""
    stream = FakeStream()
    pacer_times: list[float] = []
    one_sleeper: list[bool] = []

    async def own_loop() -> None:
        await trio.sleep(0.007)
        pacer = Pacer(chunk_ms=20)
        for _ in range(50):
            await pacer.wait()
            pacer_times.append(trio.current_time())

    async def watch() -> None:
        from gemini_ws._ticks import _TICKS

        await trio.sleep(0.045)
        for _ in range(10):  # between ticks, both are waiting for the next one
            await trio.sleep(0.02)
            ticks = _TICKS.get()
            one_sleeper.append(
                len(ticks) == 1
                and all(t.leading and t.lot is not None and len(t.lot) == 1
                        for t in ticks.values())
            )

    async def paced() -> None:
        await trio.sleep(0.032)
        await send_paced(stream, ONE_SECOND)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(own_loop)
        nursery.start_soon(paced)
        nursery.start_soon(watch)
    assert set(stream.started[1:40]) <= set(pacer_times[2:]), "send_paced ticks with the Pacer"
    assert one_sleeper == [True] * 10


async def test_a_late_pacer_catches_up_and_restart_starts_over(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pacer = Pacer(chunk_ms=20)
    await pacer.wait()
    start = trio.current_time()
    await trio.sleep(0.101)  # the app stalled for five chunks
    caught_up = []
    for _ in range(6):
        await pacer.wait()
        caught_up.append(trio.current_time() - start)
    # ticks 1..5 had passed: at once; tick 6 on time
    assert caught_up == pytest.approx([0.101] * 5 + [0.12])

    await trio.sleep(1.0)  # a gap in the audio: start over instead of bursting 50 chunks
    pacer.restart()
    assert pacer.ticks == 0
    again = trio.current_time()
    await pacer.wait()
    await pacer.wait()
    assert trio.current_time() - again <= 0.02 + 1e-9 and pacer.ticks == 2


async def test_a_pacer_says_how_far_behind_the_sender_is(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pacer = Pacer(chunk_ms=20)
    assert pacer.behind == 0.0  # before the first wait
    await trio.sleep(0.013)
    await pacer.wait()
    due = (math.floor(trio.current_time() / 0.02) + 1) * 0.02
    assert pacer.behind == 0.0  # the next tick is still ahead
    await trio.sleep(0.05)  # the sender is slow
    assert pacer.behind == pytest.approx(trio.current_time() - due)
    for _ in range(3):  # the waits of the ticks passed return at once
        await pacer.wait()
    assert pacer.behind == 0.0


def test_a_pacer_carried_into_another_trio_run_starts_over() -> None:
    """Each trio run's clock has its own offset: a Pacer anchored in one run would, in the
    next, wait for a time on the old clock (hours away, or long past: a burst)."""
    pacer = Pacer(chunk_ms=20)

    async def three() -> float:
        start = trio.current_time()
        with trio.fail_after(5):
            for _ in range(3):
                await pacer.wait()
        return trio.current_time() - start

    assert trio.run(three) <= 0.04 + 0.03
    took = trio.run(three)
    assert pacer.ticks == 3  # started over: no burst of "late" ticks
    assert 0.02 <= took <= 0.04 + 0.03  # and paced on the new clock


async def test_a_cancelled_pacer_wait_takes_no_tick(autojump_clock: trio.testing.MockClock) -> None:
    pacer = Pacer(chunk_ms=40)
    await pacer.wait()
    grid = math.floor(trio.current_time() / 0.04) * 0.04
    with trio.move_on_after(0.01) as scope:
        await pacer.wait()
    assert scope.cancelled_caught and pacer.ticks == 1
    await pacer.wait()  # still tick 1
    assert trio.current_time() == pytest.approx(grid + 0.04) and pacer.ticks == 2


async def test_an_unpaced_pacer_only_checkpoints() -> None:
    pacer = Pacer(speed=math.inf)
    assert pacer.period == 0.0
    start = trio.current_time()
    for _ in range(100):
        await pacer.wait()
    assert pacer.ticks == 100 and trio.current_time() - start < 1.0
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await pacer.wait()  # a checkpoint all the same


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"chunk_ms": 5}, "chunk_ms"), ({"chunk_ms": 20.0}, "chunk_ms"),
     ({"chunk_ms": True}, "chunk_ms"), ({"speed": 0}, "speed"), ({"speed": math.nan}, "speed")],
)
def test_a_pacer_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Pacer(**kwargs)  # type: ignore[arg-type]


# --- WavWriter ---------------------------------------------------------------------------


def test_wav_writer_writes_a_wav_as_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "reply.wav"
    first, second = pack16(sine(440, 24000, 0.25)), pack16(sine(440, 24000, 0.5))
    with WavWriter(path) as writer:
        writer.write(first)
        # The header is current after every write: the file is readable mid-stream.
        with wave.open(str(path), "rb") as w:
            assert w.getnframes() == 6000
        writer.feed(audio_content(second))
        writer.feed(SetupComplete())  # not ServerContent: ignored
        writer.feed(ServerContent(turn_complete=True))  # no audio
        assert writer.bytes_written == len(first) + len(second)
        assert writer.duration == pytest.approx(0.75)
    assert writer.closed
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.readframes(w.getnframes()) == first + second
    assert read_wav(path) == Pcm(first + second, OUTPUT_RATE)


def test_wav_writer_errors(tmp_path: Path) -> None:
    writer = WavWriter(tmp_path / "a.wav", sample_rate=16000)
    with pytest.raises(ConfigurationError, match="even number"):
        writer.write(b"\x00\x00\x00")
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ConfigurationError, match="closed") as excinfo:
        writer.write(b"\x00\x00")
    assert str(tmp_path / "a.wav") in str(excinfo.value)
    with wave.open(str(tmp_path / "a.wav"), "rb") as w:
        assert (w.getframerate(), w.getnframes()) == (16000, 0)

    missing = tmp_path / "no" / "such" / "dir" / "b.wav"
    with pytest.raises(ConfigurationError, match="cannot create") as excinfo:
        WavWriter(missing)
    assert str(missing) in str(excinfo.value)


# --- PlaybackBuffer ----------------------------------------------------------------------


def test_playback_buffer_queue_read_and_interrupt() -> None:
    buffer = PlaybackBuffer()
    buffer.feed(audio_content(b"\x01\x00" * 2400))
    buffer.feed(audio_content(b"\x02\x00" * 2400))
    buffer.feed(SetupComplete())
    assert buffer.queued_bytes == 9600
    assert buffer.queued_seconds == pytest.approx(0.2)
    assert buffer.read(5) == b"\x01\x00\x01\x00"  # whole samples
    assert buffer.read(0) == b""

    # Barge-in: the interrupted message drops what is queued, then its own audio (if any) plays.
    buffer.feed(audio_content(b"\x03\x00" * 10, interrupted=True))
    assert buffer.dropped_bytes == 9596
    assert buffer.read(1000) == b"\x03\x00" * 10
    assert buffer.read(1000) == b""
    assert buffer.interrupt() == 0
    stats = buffer.statistics()
    assert (stats.played_bytes, stats.dropped_bytes, stats.interruptions) == (24, 9596, 2)
    assert "queued" in repr(buffer)


def test_playback_buffer_max_seconds_drops_the_oldest() -> None:
    buffer = PlaybackBuffer(8000, max_seconds=0.01)  # 80 samples
    buffer.write(pack16(list(range(100))))
    assert buffer.queued_bytes == 160
    assert buffer.dropped_bytes == 40
    assert buffer.statistics().overflow_bytes == 40
    assert unpack16(buffer.read(4)) == [20, 21]


async def test_play_delivers_in_real_time_and_waits_when_empty(
    autojump_clock: trio.testing.MockClock,
) -> None:
    buffer = PlaybackBuffer()
    played: list[tuple[float, int]] = []
    start = trio.current_time()
    buffer.write(b"\x00\x00" * 2400)  # 100 ms at 24 kHz
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            buffer.play, lambda chunk: played.append((trio.current_time(), len(chunk)))
        )
        await trio.sleep(1)
        assert [t - start for t, _ in played] == pytest.approx([k * 0.02 for k in range(5)])
        assert [n for _, n in played] == [960] * 5
        assert buffer.statistics().playing

        # Idle: the player waits on the queue, with no timer of its own (no polling).
        await trio.testing.wait_all_tasks_blocked()
        assert trio.lowlevel.current_statistics().seconds_to_next_deadline == math.inf

        # New audio plays at once, 30 ms of it: a full chunk, then the 10 ms rest.
        resumed = trio.current_time()
        buffer.write(b"\x00\x00" * 720)
        await trio.sleep(1)
        assert [t - resumed for t, _ in played[5:]] == pytest.approx([0, 0.02])
        assert [n for _, n in played[5:]] == [960, 480]
        nursery.cancel_scope.cancel()
    assert not buffer.statistics().playing


async def test_barge_in_while_playing(autojump_clock: trio.testing.MockClock) -> None:
    buffer = PlaybackBuffer()
    played: list[bytes] = []

    async def sink(chunk: bytes) -> None:  # an async sink is awaited
        await trio.lowlevel.checkpoint()
        played.append(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(buffer.play, sink)
        buffer.feed(audio_content(b"\x01\x00" * 24000))  # 1 s of reply
        await trio.sleep(0.05)  # chunks at 0, 20 and 40 ms went out
        assert len(played) == 3
        buffer.feed(ServerContent(interrupted=True))
        assert buffer.queued_bytes == 0
        assert buffer.dropped_bytes == 48000 - 3 * 960
        await trio.sleep(1)
        assert len(played) == 3  # the rest of the reply is never played
        with pytest.raises(ConfigurationError, match="already running"):
            await buffer.play(sink)
        nursery.cancel_scope.cancel()


# --- against the fake Live server ----------------------------------------------------------


def server_audio(server: FakeLiveServer) -> bytes:
    """The PCM of every audio part the fake server sent, from its own record."""
    import base64

    pcm = b""
    for message in server.connections[0].sent:
        turn = message.get("serverContent", {}).get("modelTurn", {})
        for part in turn.get("parts", []):
            if "inlineData" in part:
                assert part["inlineData"]["mimeType"] == "audio/pcm;rate=24000"
                pcm += base64.b64decode(part["inlineData"]["data"])
    return pcm


async def test_stream_a_wav_file_and_save_the_reply(tmp_path: Path) -> None:
    # 1 s of 16-bit 48 kHz stereo: different tones left and right.
    source = tmp_path / "question.wav"
    left, right = sine(440, 48000), sine(660, 48000, amplitude=4000)
    write_wav(source, [[a, b] for a, b in zip(left, right, strict=True)], 2, 48000)
    reply = tmp_path / "reply.wav"

    pcm = read_wav(source).to_input()
    assert (pcm.sample_rate, pcm.samples) == (INPUT_RATE, 16000)
    with trio.fail_after(20):
        async with open_fake_server(api_key=TEST_KEY, chunk_count=3) as server:
            async with Client(api_key=TEST_KEY, base_url=server.url) as client:
                async with client.stream(MODEL, config=AUDIO) as s:
                    seconds = await send_paced(s, pcm, speed=math.inf)
                    await s.send_audio_stream_end()
                    with WavWriter(reply) as wav:
                        async for message in s.turn():
                            wav.feed(message)
            (turn,) = server.connections[0].turns
            sent = server_audio(server)

    assert seconds == 1.0
    # The server received exactly the resampled audio, as one 16 kHz user turn...
    assert turn.audio == pcm.data
    assert turn.audio_rate == INPUT_RATE
    assert turn.said == "[audio 1.00s]"
    # ...and the reply WAV holds exactly what its model sent: 50 ms per reply character.
    assert len(sent) == 2400 * len("You said: [audio 1.00s]")
    with wave.open(str(reply), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.readframes(w.getnframes()) == sent
    assert read_wav(reply).duration == pytest.approx(1.15)


async def test_barge_in_against_the_fake_server() -> None:
    # A reply in five segments 200 ms apart; speech from the user after the first one (a loud
    # chunk: the fake's activity detection ignores silence) interrupts the model.
    buffer = PlaybackBuffer()
    queued_before = 0
    interrupted = False
    with trio.fail_after(20):
        async with open_fake_server(api_key=TEST_KEY, chunk_count=5, chunk_interval=0.2) as server:
            async with Client(api_key=TEST_KEY, base_url=server.url) as client:
                async with client.stream(MODEL, config=AUDIO) as s:
                    await s.send_text("tell me a long story")
                    async for message in s.turn():
                        if isinstance(message, ServerContent) and message.interrupted:
                            queued_before = buffer.queued_bytes
                            interrupted = True
                        buffer.feed(message)
                        if buffer.queued_bytes and not interrupted:
                            await s.send_audio(pack16(sine(300, 16000, 0.02)), 16000)
            sent = server_audio(server)

    assert interrupted
    assert 0 < queued_before == len(sent) < 2400 * len("You said: tell me a long story")
    assert buffer.dropped_bytes == queued_before
    assert buffer.queued_bytes == 0
