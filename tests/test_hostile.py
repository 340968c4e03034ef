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
    import soundfile

    audio, source_rate = soundfile.read(str(clip), dtype="float32")
    if rate != source_rate:
        from engine.audio import _Resampler

        resample = _Resampler(source_rate)
        audio = np.concatenate([resample(audio), resample.flush()])
        audio = _resample_to(audio, rate)
    return audio


def _resample_to(audio16k: np.ndarray, rate: int) -> np.ndarray:
    import av

    frame = av.AudioFrame.from_ndarray(audio16k[None, :].astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = 16000
    swr = av.AudioResampler(format="flt", layout="mono", rate=rate)
    out = [f.to_ndarray().reshape(-1) for f in [*swr.resample(frame), *swr.resample(None)]]
    return np.concatenate(out)


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
    Case("absurd_format.wav", make_absurd_format, "not a readable audio file"),
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
