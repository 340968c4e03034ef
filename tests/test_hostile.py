"""Hostile and odd input, made here at test time: every kind gets one clear line or a sensible answer through
the Python API, the CLI and the live app (OpenAI route and Gradio API), with no crash, hang or temp file left.
Also the limits (size, duration, decoder memory and time) and the server's file-access boundaries."""

from __future__ import annotations

import base64
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
import pytest

import clips

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
LIMIT_SECONDS = 600  # the app's default LTU_AS_MAX_DURATION; the CLI is given the same limit here
UPLOAD_MB = 25  # the app's default LTU_AS_MAX_UPLOAD_MB


# -- the corpus ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One kind of input: how to make it, and what every face must say about it."""

    name: str  # also the file's name
    make: Callable[[Path, Path], None]  # (path to write, the speech clip) -> None
    error: str | None  # a fragment of the one-line error, or None: it must be answered
    heard: str | None = None  # for answered clips: a word the transcript must hold


def _write_wav(path: Path, samples: np.ndarray, rate: int, subtype: str) -> None:
    import soundfile

    soundfile.write(str(path), samples, rate, subtype=subtype, format="WAV")


def _speech(clip: Path, rate: int = 16000) -> np.ndarray:
    """The 16 kHz speech clip's samples, resampled to `rate` with FFmpeg's resampler."""
    import av
    import soundfile

    audio, source_rate = soundfile.read(str(clip), dtype="float32")
    if rate == source_rate:
        return audio
    frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
    frame.sample_rate = source_rate
    swr = av.AudioResampler(format="flt", layout="mono", rate=rate)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in [*swr.resample(frame), *swr.resample(None)]])


def _encode(path: Path, container: str, audio: np.ndarray | None, rate: int = 16000, codec: str = "aac",
            video: str | None = None, seconds: float = 3.0) -> None:
    """Write with FFmpeg (PyAV): an audio track (`audio` at `rate`) and/or a small video track (`video` codec)."""
    import av

    with av.open(str(path), "w", format=container) as out:
        vstream = astream = None
        if video:
            vstream = out.add_stream(video, rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        if audio is not None:
            astream = out.add_stream(codec, rate=rate, layout="mono")
            convert = av.AudioResampler(format=astream.codec_context.format.name, layout="mono", rate=rate)
            frame = av.AudioFrame.from_ndarray(audio[None, :].astype(np.float32), format="flt", layout="mono")
            frame.sample_rate = rate
            for converted in [*convert.resample(frame), *convert.resample(None)]:
                for packet in astream.encode(converted):
                    out.mux(packet)
            for packet in astream.encode(None):
                out.mux(packet)
        if vstream is not None:
            for i in range(int(seconds * 10)):
                image = np.full((48, 64, 3), (i * 8) % 256, np.uint8)
                for packet in vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
            for packet in vstream.encode(None):
                out.mux(packet)


def _mp3(audio: np.ndarray, rate: int, path: Path) -> None:
    _encode(path, "mp3", audio, rate=rate, codec="libmp3lame")


def make_empty(path, _):
    path.write_bytes(b"")


def make_zero_frames(path, _):
    _write_wav(path, np.zeros(0, np.float32), 16000, "PCM_16")


def make_truncated_header(path, _):
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")


def make_corrupt_mp3(path, clip):
    """A real MP3's first frame header, then noise: nothing decodable."""
    _mp3(_speech(clip), 16000, path)
    data = path.read_bytes()
    start = data.find(b"\xff\xf3") if b"\xff\xf3" in data else data.find(b"\xff\xfb")
    path.write_bytes(data[: start + 4] + np.random.default_rng(1).bytes(len(data)))


def make_damaged_mp3(path, clip):
    """A real MP3 with a run of its middle bytes overwritten: FFmpeg skips the broken frames."""
    _mp3(_speech(clip), 16000, path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 600] = np.random.default_rng(2).bytes(600)
    path.write_bytes(bytes(data))


def make_text(path, _):
    path.write_text("Meeting notes: not audio at all.\n" * 100)


def make_image(path, _):
    import av

    with av.open(str(path), "w", format="image2pipe") as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "rgb24"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")),
                       *stream.encode(None)]:
            out.mux(packet)


def make_video_with_audio(path, clip):
    audio = _speech(clip)
    _encode(path, "mp4", audio, codec="aac", video="mpeg4", seconds=audio.size / 16000)


def make_video_without_audio(path, _):
    _encode(path, "mp4", None, video="mpeg4")


def make_pcm_u8(path, clip):
    _write_wav(path, _speech(clip), 16000, "PCM_U8")


def make_float32(path, clip):
    _write_wav(path, _speech(clip), 16000, "FLOAT")


def make_8khz(path, clip):
    _write_wav(path, _speech(clip, 8000), 8000, "PCM_16")


def make_96khz(path, clip):
    _write_wav(path, _speech(clip, 96000), 96000, "PCM_24")


def make_six_channels(path, clip):
    speech = _speech(clip)
    channels = np.zeros((speech.size, 6), np.float32)
    channels[:, 2] = speech  # 5.1: the centre channel carries the voice, as in a film
    channels[:, 3] = 0.05 * np.sin(2 * np.pi * 50 * np.arange(speech.size) / 16000)  # LFE hum
    _write_wav(path, channels, 16000, "PCM_16")


def make_dc_only(path, _):
    _write_wav(path, np.full(16000 * 3, 0.5, np.float32), 16000, "FLOAT")


def make_nan_inf(path, clip):
    """Speech in a float WAV with NaN, +inf and -inf samples sprinkled through it."""
    speech = _speech(clip).copy()
    rng = np.random.default_rng(3)
    for value in (np.nan, np.inf, -np.inf):
        speech[rng.integers(0, speech.size, 200)] = value
    _write_wav(path, speech, 16000, "FLOAT")


def make_all_nan(path, _):
    _write_wav(path, np.full(16000 * 2, np.nan, np.float32), 16000, "FLOAT")


def make_huge_values(path, clip):
    """A float WAV scaled to 1e37: far outside [-1, 1], still finite."""
    _write_wav(path, _speech(clip) * np.float32(1e37), 16000, "FLOAT")


def make_silence(path, _):
    clips.run("sox", "-n", "-r", "16000", "-c", "1", str(path), "trim", "0", "3")


def make_noise(path, _):
    clips.sound("noise", path, seconds=5)


def make_tenth_second(path, _):
    clips.run("sox", "-n", "-r", "16000", "-c", "1", str(path), "synth", "0.1", "sine", "440", "vol", "0.5")


def make_two_hours_mp3(path, _):
    """Two hours of MP3 (8 kHz, 8 kbit/s) in 7 MB, made in milliseconds: one 10 s encoding, its frames repeated
    (MPEG audio frames stand alone). Only a streaming decoder with a cap can refuse it before it ends."""
    ten = path.with_suffix(".ten.mp3")
    noise = np.random.default_rng(4).normal(0, 0.1, 80000).astype(np.float32)
    import av

    with av.open(str(ten), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=8000, layout="mono")
        stream.bit_rate = 8000
        convert = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=8000)
        frame = av.AudioFrame.from_ndarray(noise[None, :], format="flt", layout="mono")
        frame.sample_rate = 8000
        for converted in [*convert.resample(frame), *convert.resample(None)]:
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = ten.read_bytes()
    ten.unlink()
    path.write_bytes(data[_first_frame(data):] * 720)


def _first_frame(data: bytes) -> int:
    """Offset of the first MPEG audio frame after any ID3 tag and the Xing/Info header frame."""
    offset = 0
    if data[:3] == b"ID3":
        offset = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    first = data.index(b"\xff", offset)
    second = first + 1
    while not (data[second] == 0xFF and data[second + 1] & 0xE0 == 0xE0):
        second += 1
    return second if b"Xing" in data[first:second] or b"Info" in data[first:second] else first


def make_two_hours_flac(path, _):
    """Two hours of 8 kHz FLAC in 4 MB: digital silence compresses to almost nothing; the header tells the length
    (and the length is refused first, before anything says the audio is silent)."""
    clips.run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "trim", "0", "7200")


def make_lying_header(path, clip):
    """A WAV header claiming two hours, followed by 3 s of speech."""
    _write_wav(path, _speech(clip), 16000, "PCM_16")
    data = bytearray(path.read_bytes())
    claimed = 7200 * 16000 * 2
    data[4:8] = struct.pack("<I", claimed + 36)
    at = data.index(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", claimed)
    path.write_bytes(bytes(data))


def make_absurd_format(path, _):
    """A WAV header with 1 Hz and 1024 channels."""
    fmt = struct.pack("<HHIIHH", 1, 1024, 1, 2048, 2048, 16)
    body = os.urandom(240000)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 24 + 8 + len(body)) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
                     + fmt + b"data" + struct.pack("<I", len(body)) + body)


def make_playlist(path, clip):
    """An FFmpeg concat script naming a real audio file: a server must not read files a request names."""
    path.write_text(f"ffconcat version 1.0\nfile '{clip}'\n")


def make_hls(path, clip):
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{clip}\n#EXT-X-ENDLIST\n")


def make_unicode_name(path, clip):
    _write_wav(path, _speech(clip), 16000, "PCM_16")


CASES = [
    Case("empty.wav", make_empty, "empty"),
    Case("zero_frames.wav", make_zero_frames, "no audio samples"),
    Case("truncated_header.wav", make_truncated_header, "not a readable audio file"),
    Case("corrupt.mp3", make_corrupt_mp3, "not a readable audio file"),
    Case("damaged.mp3", make_damaged_mp3, None, "fox"),
    Case("notes.wav", make_text, "not a readable audio file"),
    Case("picture.png", make_image, "no audio track"),
    Case("film.mp4", make_video_with_audio, None, "fox"),
    Case("silent_film.mp4", make_video_without_audio, "no audio track"),
    Case("pcm_u8.wav", make_pcm_u8, None, "fox"),
    Case("float32.wav", make_float32, None, "fox"),
    Case("rate_8k.wav", make_8khz, None, "fox"),
    Case("rate_96k.wav", make_96khz, None, "fox"),
    Case("six_channels.wav", make_six_channels, None, "fox"),
    Case("dc_only.wav", make_dc_only, "silent"),
    Case("nan_inf.wav", make_nan_inf, None, "fox"),
    Case("all_nan.wav", make_all_nan, "silent"),
    Case("huge_values.wav", make_huge_values, None, "fox"),
    Case("silence.wav", make_silence, "silent"),
    Case("noise.wav", make_noise, None),
    Case("tenth_second.wav", make_tenth_second, None),
    Case("two_hours.mp3", make_two_hours_mp3, "limit"),
    Case("two_hours.flac", make_two_hours_flac, "limit"),
    Case("lying_header.wav", make_lying_header, None, "fox"),
    Case("absurd_format.wav", make_absurd_format, "sample rate of 1 Hz"),
    Case("playlist.ffconcat", make_playlist, "not a readable audio file"),
    Case("playlist.m3u8", make_hls, "not a readable audio file"),
    Case("../日本語 ünïcødé\nname $(id).wav", make_unicode_name, None, "fox"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, speech_clip) -> dict[str, Path]:
    """Every case's file, by case name. The unicode case's path goes through a `..` component."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "sub").mkdir()
    made = {}
    for case in CASES:
        path = root / "sub" / case.name if case.name.startswith("../") else root / case.name
        case.make(path, speech_clip)
        made[case.name] = path
    return made


def _id(case: Case) -> str:
    return case.name.encode("ascii", "backslashreplace").decode().replace("\n", "\\n")


ERRORS = [c for c in CASES if c.error]
ANSWERED = [c for c in CASES if not c.error]
QUESTION = "What can be heard in this recording?"


def assert_one_line(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message and "\x1b" not in message, repr(message)
    assert "Traceback" not in message and len(message) < 400, message


SYSTEM_TMP = Path(tempfile.gettempdir())  # before private_tmp points this module elsewhere
SYSTEM_TMP_BEFORE: set[str] = set()


@pytest.fixture(scope="module")
def private_tmp(tmp_path_factory):
    """A temp dir for everything this module runs (in-process: tempfile.tempdir; children: TMPDIR); it must
    be empty again at the end (checked by test_no_temp_files_left, the module's last test)."""
    path = tmp_path_factory.mktemp("tmpdir")
    SYSTEM_TMP_BEFORE.update(os.listdir(SYSTEM_TMP))
    saved = tempfile.tempdir
    tempfile.tempdir = str(path)
    os.environ["TMPDIR"] = str(path)  # decoder children inherit it
    yield path
    tempfile.tempdir = saved
    os.environ.pop("TMPDIR", None)


# -- Python API ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_api_load_audio(case, corpus, private_tmp):
    from engine.audio import SAMPLE_RATE, load_audio
    from engine.errors import InputError, LtuError

    started = time.perf_counter()
    if case.error:
        with pytest.raises(InputError) as raised:
            load_audio(corpus[case.name], LIMIT_SECONDS)
        assert isinstance(raised.value, LtuError) and case.error in str(raised.value), str(raised.value)
        assert_one_line(str(raised.value))
    else:
        audio = load_audio(corpus[case.name], LIMIT_SECONDS)
        assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()
        assert 0.05 < audio.size / SAMPLE_RATE < 10 and np.abs(audio).max() <= 1.0
    assert time.perf_counter() - started < 30  # the longest (a 10-minute MP3 refused at the cap) takes ~1 s


def test_api_engine_answers_usable_cases(engine, corpus, private_tmp):
    """The usable cases through Engine.analyze + ask: heard (the transcript has the sentence) and answered."""
    from engine.config import SamplingOptions
    from engine.errors import InputError

    short = SamplingOptions(max_tokens=8)
    for case in ANSWERED:
        context = engine.analyze(corpus[case.name])
        if case.heard:
            assert case.heard in context.transcript.text.lower(), (case.name, context.transcript.text)
        assert engine.ask(context, QUESTION, sampling=short).read(), case.name
    for case in ERRORS:
        with pytest.raises(InputError, match=case.error):
            engine.analyze(corpus[case.name])


# -- the command line ---------------------------------------------------------------------------------------------
def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ})


@pytest.mark.parametrize("case", ERRORS, ids=_id)
def test_cli_bad_input_exits_2_with_one_line(case, corpus, private_tmp):
    result = cli("ask", str(corpus[case.name]), QUESTION, "--max-duration", str(LIMIT_SECONDS), timeout=120)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and case.error in lines[0], result.stderr
    assert_one_line(lines[0])


@pytest.mark.slow  # a CLI subprocess that loads the models
def test_cli_batch_answers_or_explains_every_case(corpus, tmp_path, private_tmp):
    jobs = tmp_path / "corpus.jsonl"
    jobs.write_text("".join(json.dumps({"id": c.name, "audio": str(corpus[c.name]), "question": QUESTION}) + "\n"
                            for c in CASES))
    out = tmp_path / "answers.jsonl"
    result = cli("batch", str(jobs), str(out), "--max-tokens", "8", "--max-duration", str(LIMIT_SECONDS))
    assert result.returncode == 0, result.stderr[-3000:]
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == {c.name for c in CASES}
    for case in CASES:
        record = records[case.name]
        if case.error:
            assert case.error in record["error"] and "answer" not in record, (case.name, record)
            assert_one_line(record["error"])
        else:
            assert "error" not in record and record["answer"], (case.name, record)
            if case.heard:
                assert case.heard in record["transcript"].lower(), (case.name, record["transcript"])


class _Payload:
    """Pickled, it would create `marker` when unpickled: proof that nothing unpickles a model file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Hostile model files: not a GGUF, a GGUF header over noise, an adapter for another LLM, a pickle."""
    from engine.prompt import PROMPT_FORMAT
    from engine.tltr import AdapterDims, AdapterInfo, AudioAdapter, save_adapter

    root = tmp_path_factory.mktemp("models")
    (root / "notes.gguf").write_text("not a model\n" * 100)
    (root / "noise.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40) + os.urandom(4096))
    dims = AdapterDims(6, 512, 960, width=64)  # another LLM's width (SmolLM2-360M)
    info = AdapterInfo("base:000000000000", "SmolLM2-360M-Instruct.gguf", "0" * 64, PROMPT_FORMAT, "stage2")
    save_adapter(AudioAdapter(dims), info, root / "other_llm.safetensors")
    marker = root / "unpickled"
    (root / "pickle.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    (root / "pickle.gguf").write_bytes(pickle.dumps(_Payload(marker)))
    return root


@pytest.mark.parametrize("option,file,message", [
    ("--llm", "notes.gguf", "not a GGUF file"),
    ("--llm", "noise.gguf", "llama.cpp cannot load"),
    ("--llm", "pickle.gguf", "not a GGUF file"),
    ("--llm", "missing.gguf", "not found"),
    ("--adapter", "other_llm.safetensors", "does not fit"),
    ("--adapter", "pickle.safetensors", "cannot read adapter"),
    ("--perception", "pickle.safetensors", "cannot read perception file"),
    ("--perception", "other_llm.safetensors", "not an LTU-AS perception file"),
])
def test_cli_bad_model_files_exit_2(model_files, corpus, option, file, message, private_tmp):
    result = cli("ask", str(corpus["float32.wav"]), QUESTION, option, str(model_files / file), "--max-tokens", "4",
                 timeout=300)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert_one_line(lines[0])
    assert not (model_files / "unpickled").exists(), "a model file was unpickled"


def test_api_bad_model_files_raise_model_error(model_files):
    from engine.errors import ModelError
    from engine.llm import LLM
    from engine.tltr import check_pairing, load_adapter

    with pytest.raises(ModelError, match="not a GGUF"):
        LLM(model_files / "pickle.gguf")
    with pytest.raises(ModelError, match="cannot load"):
        LLM(model_files / "noise.gguf")
    with pytest.raises(ModelError, match="cannot read adapter"):
        load_adapter(model_files / "pickle.safetensors")
    adapter, info = load_adapter(model_files / "other_llm.safetensors")
    with pytest.raises(ModelError, match="does not fit"):
        check_pairing(info, adapter.dims, "base:123456789abc", 6, 512, "f" * 64, 576, info.prompt_format,
                      model_files / "other_llm.safetensors")
    assert not (model_files / "unpickled").exists()


# -- limits of the decoder -------------------------------------------------------------------------------------------
def _decoder_children() -> list[int]:
    """Decoder processes (children of this one) still alive."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"_decoder_main" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_decoder_timeout_stops_a_slow_decode(corpus, monkeypatch, private_tmp):
    from engine.audio import load_audio
    from engine.errors import InputError

    monkeypatch.setenv("LTU_AS_DECODE_TIMEOUT", "0.3")
    started = time.perf_counter()
    with pytest.raises(InputError, match="to decode; it was stopped") as raised:
        load_audio(corpus["two_hours.mp3"], max_duration=7300)  # 2 h allowed: only the clock stops it
    assert time.perf_counter() - started < 5
    assert_one_line(str(raised.value))
    assert _decoder_children() == []


def test_decoder_memory_cap_stops_a_big_decode(corpus, monkeypatch, private_tmp):
    """With a 40 MB allowance, decoding 10 minutes (38 MB of samples, plus buffers) is stopped in the child;
    this process does not grow."""
    from engine.audio import load_audio
    from engine.errors import InputError

    monkeypatch.setenv("LTU_AS_DECODE_MEMORY_MB", "40")
    before = _rss_mb()
    with pytest.raises(InputError, match="memory|limits") as raised:
        load_audio(corpus["two_hours.mp3"], max_duration=7300)
    assert_one_line(str(raised.value))
    assert _rss_mb() - before < 20
    assert _decoder_children() == []


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_decoder_sandbox_cannot_open_files_or_sockets_or_grow(tmp_path):
    """The limits the decoder sets on itself, tried from inside: no new file, no socket, no big allocation."""
    code = """
import socket, sys
sys.path.insert(0, sys.argv[1])
from engine.audio import _limit_self
_limit_self(64 << 20, 10)
results = []
for attempt in (lambda: open('/etc/hostname'), lambda: socket.socket(), lambda: bytearray(256 << 20),
                lambda: open('written', 'w')):
    try:
        attempt()
        results.append('allowed')
    except (OSError, MemoryError) as error:
        results.append(type(error).__name__)
print(' '.join(results))
"""
    result = subprocess.run([sys.executable, "-I", "-c", code, str(ROOT)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["OSError", "OSError", "MemoryError", "OSError"], result.stdout


def test_duration_limit_is_the_callers(corpus):
    from engine.audio import load_audio
    from engine.errors import InputError

    with pytest.raises(InputError, match="over the 2 s limit"):
        load_audio(corpus["float32.wav"], max_duration=2)  # 4.5 s of speech
    with pytest.raises(InputError, match="over the 2 s limit"):
        load_audio(corpus["float32.wav"].read_bytes(), max_duration=2, name="upload")
    with pytest.raises(InputError, match="longer than the 60 s limit"):
        load_audio(corpus["two_hours.mp3"], max_duration=60)  # streamed: refused at 60 s, not after 2 h


# -- the live app: the OpenAI route and the Gradio API ------------------------------------------------------------------
sys.path.insert(0, str(ROOT / "scripts"))
import loadtest  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python app.py` with the default limits, its own TMPDIR and Gradio upload folder (checked at the end)."""
    root = tmp_path_factory.mktemp("server")
    (root / "tmp").mkdir()
    env = {"TMPDIR": str(root / "tmp"), "GRADIO_TEMP_DIR": str(root / "tmp" / "gradio")}
    with loadtest.serve(root / "app.log", env) as live:
        live.tmp = root / "tmp"
        live.uploads = root / "tmp" / "gradio"
        live.rss_start = live.rss_mb()
        yield live


def route(url: str, audio: bytes, question: str = QUESTION, timeout: float = 300) -> httpx.Response:
    body = loadtest.chat_body(audio, question, max_tokens=8)
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=timeout)


UPLOADED: set[Path] = set()  # every file this module uploaded: the only files the upload folder may hold


def gradio_upload(url: str, name: str, data: bytes) -> str:
    response = httpx.post(f"{url}/gradio_api/upload", files={"files": (name, data)}, timeout=60)
    assert response.status_code == 200, response.text
    UPLOADED.add(Path(response.json()[0]).resolve())
    return response.json()[0]


def gradio_analyze(url: str, file: dict, timeout: float = 300) -> tuple[str, list | str]:
    """Call /analyze as a raw API client would; the final event ("complete" or "error") and its data."""
    started = httpx.post(f"{url}/gradio_api/call/analyze", json={"data": [file]}, timeout=60)
    assert started.status_code == 200, started.text
    event, data = None, None
    with httpx.stream("GET", f"{url}/gradio_api/call/analyze/{started.json()['event_id']}", timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in ("complete", "error"):
                data = json.loads(line[6:])
                break
    return event, data


def file_data(path: str, name: str | None = None) -> dict:
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_route_answers_or_explains(server, corpus, case):
    response = route(server.url, corpus[case.name].read_bytes())
    if case.error:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert case.error in error["message"] and error["type"] == "invalid_request_error", error
        assert_one_line(error["message"])
    else:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["choices"][0]["message"]["content"].strip()
        if case.heard:
            assert case.heard in body["ltu_as"]["transcript"].lower(), body["ltu_as"]
    assert server.alive()


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_gradio_answers_or_explains(server, corpus, case):
    """Uploaded under its own (hostile) name, as a browser would, then analyzed."""
    stored = gradio_upload(server.url, Path(case.name).name, corpus[case.name].read_bytes())
    assert Path(stored).resolve().is_relative_to(server.uploads.resolve()), stored
    event, data = gradio_analyze(server.url, file_data(stored, Path(case.name).name))
    assert event == "complete", (event, data)
    status, details = data[1], data[5]
    if case.error:
        assert status.startswith("⚠️") and case.error in status, status
        assert_one_line(details["error"])
    else:
        assert status.startswith("Heard"), status
        if case.heard:
            assert case.heard in details["transcript"].lower(), details
    assert server.alive()


def test_gradio_upload_names_cannot_escape(server):
    """Hostile names are cleaned or refused; nothing lands outside the upload folder. (Gradio 6.31 keeps the
    bytes of an upload it refuses for its name as a tmp* file in the upload folder, until delete_cache.)"""
    escaped = server.tmp / "escaped.wav"
    before = set(server.uploads.glob("tmp*"))
    for name in [f"../../../../../..{escaped}", "..\\..\\escaped.wav", "/etc/escaped.wav", ".", "..", "a/../../b.wav"]:
        response = httpx.post(f"{server.url}/gradio_api/upload", files={"files": (name, b"RIFF, not audio")}, timeout=60)
        if response.status_code == 400:  # refused outright ("Invalid file name: ..")
            continue
        stored = Path(response.json()[0]).resolve()
        UPLOADED.add(stored)
        assert response.status_code == 200 and stored.is_relative_to(server.uploads.resolve()), (name, stored)
    assert not escaped.exists() and not Path("/etc/escaped.wav").exists()
    for leftover in set(server.uploads.glob("tmp*")) - before:  # Gradio's, from the refused names
        assert leftover.read_bytes() == b"RIFF, not audio", leftover
        UPLOADED.add(leftover.resolve())


def test_gradio_api_cannot_analyze_server_files(server, speech_clip):
    """A hand-made API call can put any path in a FileData. Only files Gradio stored for this server (uploads,
    recordings, the bundled examples) may be opened: not /etc/passwd, not an audio file elsewhere on the disk."""
    outside = server.tmp / "private_recording.wav"  # next to the upload folder, not in it
    outside.write_bytes(speech_clip.read_bytes())
    try:
        for path in ["/etc/passwd", str(speech_clip), str(outside), f"{server.uploads}/../{outside.name}",
                     "app/examples/../../tests/clips.py", "missing.wav", "/proc/self/environ"]:
            event, data = gradio_analyze(server.url, file_data(path))
            text = json.dumps(data, ensure_ascii=False)
            assert not (event == "complete" and data[1].startswith("Heard")), f"{path} was analyzed: {data[1]}"
            assert "fox" not in text.lower() and "root:" not in text and "not found" not in text, (path, text)
    finally:
        outside.unlink()


def test_gradio_file_route_serves_only_gradio_files(server, corpus):
    secret = server.tmp / "secret.txt"
    secret.write_text("SECRET-7f3a")
    stored = gradio_upload(server.url, "mine.wav", corpus["float32.wav"].read_bytes())
    assert httpx.get(f"{server.url}/gradio_api/file={stored}", timeout=30).status_code == 200  # the upload itself
    for path in ["/etc/passwd", "../../../../etc/passwd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", str(secret),
                 f"{server.uploads}/../secret.txt", f"{server.uploads}/%2e%2e/secret.txt", str(ROOT / "app.py"),
                 str(ROOT / "engine" / "audio.py"), "/proc/self/environ", str(Path.home() / ".cache/ltu-as/sha256.json")]:
        for prefix in ("/gradio_api/file=", "/file=", "/static/", "/assets/", "/gradio_api/"):
            response = httpx.get(server.url + prefix + path, timeout=30)
            assert response.status_code in (403, 404, 405), (prefix + path, response.status_code)
            assert "SECRET-7f3a" not in response.text and "root:" not in response.text
    secret.unlink()


@pytest.mark.parametrize("part", [
    {"type": "input_audio", "input_audio": {"data": "file:///etc/passwd", "format": "wav"}},
    {"type": "input_audio", "input_audio": {"url": "file:///etc/passwd"}},
    {"type": "input_audio", "input_audio": {"data": "data:audio/wav;base64,../../etc/passwd"}},
    {"type": "audio_url", "audio_url": {"url": "file:///etc/passwd"}},
    {"type": "file", "file": {"file_id": "/etc/passwd"}},
])
def test_route_cannot_name_server_files(server, part):
    body = {"model": "ltu-as", "messages": [{"role": "user", "content": [part, {"type": "text", "text": "Hi?"}]}]}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400, response.text
    assert "root:" not in response.text


def test_sizes_are_capped(server):
    too_big = UPLOAD_MB * 2**20 + 1
    response = httpx.post(f"{server.url}/gradio_api/upload", files={"files": ("big.wav", b"\0" * too_big)},
                          timeout=120)
    assert response.status_code in (400, 413), response.status_code
    assert not any(p.stat().st_size >= too_big for p in server.uploads.rglob("*") if p.is_file())
    body = b'{"model": "ltu-as", "messages": [{"role": "user", "content": "' + b"A" * (UPLOAD_MB * 2 * 2**20) + b'"}]}'
    started = time.perf_counter()
    response = httpx.post(f"{server.url}/v1/chat/completions", content=body, timeout=120,
                          headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert time.perf_counter() - started < 30
    body = b'{"model": "ltu-as", "messages": "' + b"A" * (60 * 2**20) + b'"}'  # 60 MB: read, dropped, refused
    response = httpx.post(f"{server.url}/v1/chat/completions", content=body, timeout=120,
                          headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def test_deeply_nested_json_is_a_400(server):
    response = httpx.post(f"{server.url}/v1/chat/completions", content=b"[" * 5000, timeout=60,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]["message"]


def test_binds_loopback_by_default(server):
    from app.settings import AppSettings

    assert [address.rsplit(":", 1)[0] for address in loadtest.listening_addresses(server.pid)] == ["127.0.0.1"]
    saved = os.environ.pop("GRADIO_SERVER_NAME", None)
    try:
        assert AppSettings.from_env().host == "127.0.0.1"
    finally:
        if saved is not None:
            os.environ["GRADIO_SERVER_NAME"] = saved


@pytest.mark.parametrize("env, allowed", [({}, True), ({"GRADIO_SERVER_NAME": "0.0.0.0"}, False),
                                          ({"SPACE_ID": "someone/ltu-as"}, False),
                                          ({"GRADIO_SERVER_NAME": "0.0.0.0", "LTU_AS_CUSTOM_LLM": "1"}, True)])
def test_visitors_name_server_files_only_on_loopback(monkeypatch, env, allowed):
    """The settings panel's LLM path is a file on the server: open to visitors only when the server is local."""
    from app.settings import AppSettings

    for name in ("GRADIO_SERVER_NAME", "SPACE_ID", "LTU_AS_CUSTOM_LLM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert AppSettings.from_env().custom_llm is allowed


def test_a_public_server_offers_its_named_llms_only(tmp_path):
    """Where visitors may not name server files, the picker's named LLMs still load and a path is refused."""
    from app.engines import check_choice
    from engine.errors import ModelError

    assert check_choice("base", "smollm2-135m", "auto", None, custom_llm=False).llm is None  # the default Engine
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(ModelError, match="offers the LLMs smollm2-135m"):
        check_choice("base", str(fake), "auto", None, custom_llm=False)
    assert check_choice("base", str(fake), "auto", None, custom_llm=True).llm == str(fake.resolve())


# -- the code ---------------------------------------------------------------------------------------------------------
def test_no_pickle_loading_anywhere():
    """Model files are GGUF and safetensors only: no code path unpickles (torch.load, pickle, joblib, numpy's
    allow_pickle, transformers' .bin weights)."""
    import re

    patterns = [r"\btorch\.load\(", r"\b(import|from)\s+(c?pickle|joblib|dill|shelve|marshal)\b", r"\bpickle\.loads?\(",
                r"\bjoblib\.load\(", r"allow_pickle\s*=\s*True",
                r"weights_only\s*=\s*False", r"use_safetensors\s*=\s*False", r"torch\.hub\b",
                r"trust_remote_code\s*=\s*True", r"(?<![\w.])eval\(", r"(?<![\w.])exec\("]
    sources = [p for d in ("engine", "app", "scripts") for p in (ROOT / d).rglob("*.py")] + [ROOT / "app.py"]
    found = [f"{p.relative_to(ROOT)}: {pattern}" for p in sources for pattern in patterns
             if re.search(pattern, p.read_text(encoding="utf-8"))]
    assert found == []
    hardcoded_tmp = [str(p.relative_to(ROOT)) for p in sources if '"/tmp' in p.read_text(encoding="utf-8")]
    assert hardcoded_tmp == []  # temp files go where TMPDIR says (and are checked there)


# -- last: the server survived, and nothing was left behind --------------------------------------------------------------
TORCH_CACHE = "torchinductor_"  # torch makes $TMPDIR/torchinductor_<user> (empty) when transformers' Whisper loads


def test_no_temp_files_left(server, corpus, private_tmp, speech_clip):
    response = route(server.url, speech_clip.read_bytes())
    assert response.status_code == 200 and server.alive()
    print(f"\nserver RSS {server.rss_start:.0f} MB at start, {server.rss_mb():.0f} MB after the hostile corpus")
    left = [p for p in private_tmp.rglob("*") if not p.name.startswith(TORCH_CACHE)]
    assert left == [], left  # this process and its CLI/decoder children
    left = [p.relative_to(server.tmp) for p in server.tmp.rglob("*")
            if not p.is_relative_to(server.uploads) and not p.name.startswith(TORCH_CACHE)]
    assert left == [], left  # the server, outside Gradio's upload folder
    from app.ui import EXAMPLES

    examples = {clip for clip, _ in EXAMPLES}
    strays = [p for p in server.uploads.rglob("*") if p.is_file() and p.resolve() not in UPLOADED
              and p.name != "image.png" and p.name not in examples]  # uploads, overview images, bundled examples
    assert strays == [], strays  # decoding wrote nothing
    new = sorted(set(os.listdir(SYSTEM_TMP)) - SYSTEM_TMP_BEFORE)  # every process here had its own TMPDIR
    print(f"new in {SYSTEM_TMP} during this module (other programs on this machine included): {new}")
