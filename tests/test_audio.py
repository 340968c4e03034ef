"""Audio in: every common container decodes to 16 kHz mono float32; windows cover the clip."""

from __future__ import annotations

import numpy as np
import pytest

import clips

from engine.audio import SAMPLE_RATE, WINDOW_SAMPLES, load_audio, window_samples, windows
from engine.errors import InputError


def _encode_av(path, codec: str, container_format: str, seconds: float = 2.0, rate: int = 44100, channels: int = 2):
    """Write a stereo 440 Hz tone with FFmpeg (PyAV) in the given codec/container."""
    import av

    t = np.arange(int(seconds * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo" if channels == 2 else "mono")
        # build float planar frames and let FFmpeg's resampler convert them to what the codec takes
        convert = av.AudioResampler(format=stream.codec_context.format.name, layout=stream.layout.name, rate=rate)
        step = 1024
        for i in range(0, tone.size, step):
            frame = av.AudioFrame.from_ndarray(np.stack([tone[i:i + step]] * channels), format="fltp",
                                               layout=stream.layout.name)
            frame.sample_rate = rate
            for converted in convert.resample(frame):
                for packet in stream.encode(converted):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize("codec,container,suffix", [
    ("pcm_s16le", "wav", "wav"), ("flac", "flac", "flac"), ("sox", "vorbis", "ogg"), ("libopus", "ogg", "opus"),
    ("libmp3lame", "mp3", "mp3"), ("aac", "mp4", "m4a"), ("libopus", "webm", "webm"),
])
def test_formats_decode_to_16k_mono(tmp_path, codec, container, suffix):
    rate = 48000 if "opus" in codec else 44100
    if codec == "sox":  # the FFmpeg in PyAV's wheel has no Vorbis encoder; sox has
        path = tmp_path / f"tone.{suffix}"
        clips.run("sox", "-n", "-r", str(rate), "-c", "2", str(path), "synth", "2", "sine", "440", "vol", "0.5")
    else:
        path = _encode_av(tmp_path / f"tone.{suffix}", codec, container, rate=rate)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size / SAMPLE_RATE - 2.0) < 0.1, audio.size  # encoder padding is at most a few frames
    spectrum = np.abs(np.fft.rfft(audio[SAMPLE_RATE // 2: SAMPLE_RATE // 2 + SAMPLE_RATE]))
    assert abs(np.argmax(spectrum) - 440) <= 2  # still a 440 Hz tone after resampling (1 Hz bins)


def test_numpy_input_is_resampled_and_downmixed():
    t = np.arange(8000 * 3) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 300 * t)] * 2, axis=1).astype(np.float32)
    audio = load_audio(stereo, sample_rate=8000)
    assert audio.ndim == 1 and abs(audio.size - 3 * SAMPLE_RATE) < 100


def test_windows_cover_any_length():
    audio = np.random.default_rng(0).normal(0, 0.1, 25 * SAMPLE_RATE).astype(np.float32)
    ws = windows(audio)
    assert [(w.start, w.end) for w in ws] == [(0, 10), (10, 20), (20, 25.0)]
    last = window_samples(audio, ws[-1])
    assert last.size == WINDOW_SAMPLES and not last[5 * SAMPLE_RATE:].any()  # padded with silence


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, I am not audio\n" * 20), "not a readable audio file"),
    (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), "not a readable audio file"),
])
def test_bad_files_raise_one_line(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(InputError, match=message) as error:
        load_audio(path)
    assert "\n" not in str(error.value)


def test_silence_missing_and_too_long(tmp_path):
    with pytest.raises(InputError, match="silent"):
        load_audio(np.zeros(SAMPLE_RATE, np.float32))
    with pytest.raises(InputError, match="not found"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(InputError, match="limit"):
        load_audio(np.ones(SAMPLE_RATE * 5, np.float32) * np.sin(np.arange(SAMPLE_RATE * 5)), max_duration=2)
    nan = np.full(SAMPLE_RATE, np.nan, np.float32)
    with pytest.raises(InputError, match="silent"):  # NaNs become zeros: nothing left to hear
        load_audio(nan)
