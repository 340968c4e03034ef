"""Audio in: any common file, bytes or array -> 16 kHz mono float32, and the 10 s windows LTU-AS works on."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

SAMPLE_RATE = 16000
WINDOW_SECONDS = 10  # LTU-AS's unit: one window gives 25 acoustic tokens
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE  # 160000 samples in a 10-second window
SILENCE_PEAK = 10 ** (-70 / 20)  # a peak below -70 dBFS carries nothing to listen to
MIN_SAMPLES = SAMPLE_RATE // 100  # 10 ms: shorter is not a clip
SOUNDFILE_MAGIC = (b"RIFF", b"RIFX", b"fLaC", b"OggS")  # wav, flac, ogg: read by libsndfile

AudioSource = str | Path | bytes | np.ndarray


@dataclass(frozen=True)
class Window:
    index: int
    start: float  # seconds
    end: float  # seconds of real audio in the window (the last one is padded past this)


def load_audio(source: AudioSource, max_duration: float = 3600.0, sample_rate: int | None = None,
               name: str | None = None) -> np.ndarray:
    """Decode `source` to 16 kHz mono float32 in [-1, 1].

    A numpy array is taken as mono (or (samples, channels)) at `sample_rate` (default 16 kHz). `name` is how
    error messages call bytes input. Raises InputError with one line for anything that is not usable audio.
    """
    if isinstance(source, np.ndarray):
        audio = _from_array(source, sample_rate or SAMPLE_RATE)
    elif isinstance(source, bytes):
        if not source:
            raise InputError(f"{name or 'the audio'} is empty")
        audio = _decode(io.BytesIO(source), name or "the audio", max_duration)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"audio file not found: {path}")
        if path.stat().st_size == 0:
            raise InputError(f"audio file is empty: {path.name}")
        audio = _decode(path, path.name, max_duration)
    return _check(audio, max_duration)


def _from_array(array: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(array)
    if audio.ndim == 2:
        audio = audio.mean(axis=1 if audio.shape[1] < audio.shape[0] else 0)
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.number):
        raise InputError(f"audio array must be 1-D or (samples, channels) numbers, got shape {array.shape}")
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio / float(np.iinfo(audio.dtype).max + 1)
    return _resample(audio.astype(np.float32), sample_rate)


def _decode(file: Path | io.BytesIO, name: str, max_duration: float) -> np.ndarray:
    """soundfile for wav/flac/ogg (fast, exact); PyAV (FFmpeg inside the wheel) for everything else. The
    container is told by its magic bytes, not its name (libsndfile's mp3 reader prints to stderr)."""
    import soundfile

    if isinstance(file, io.BytesIO):
        magic = file.getvalue()[:4]
    else:
        with open(file, "rb") as f:
            magic = f.read(4)
    if magic in SOUNDFILE_MAGIC:
        try:
            with soundfile.SoundFile(file) as f:
                if f.frames / f.samplerate > max_duration:
                    raise InputError(f"{name} lasts {f.frames / f.samplerate:.0f} s, over the {max_duration:.0f} s limit")
                data = f.read(dtype="float32", always_2d=True)
                return _resample(data.mean(axis=1), f.samplerate)
        except InputError:
            raise
        except Exception:  # e.g. a truncated header: FFmpeg is more forgiving, or gives the better message
            if isinstance(file, io.BytesIO):
                file.seek(0)
    return _decode_av(file, name, max_duration)


def _decode_av(file: Path | io.BytesIO, name: str, max_duration: float) -> np.ndarray:
    import av

    limit = int(max_duration * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(file if isinstance(file, io.BytesIO) else str(file), mode="r") as container:
            if not container.streams.audio:
                raise InputError(f"{name} has no audio track")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    total += chunk.size
                    if total > limit:  # stop before an endless or huge stream fills memory
                        raise InputError(f"{name} is longer than the {max_duration:.0f} s limit")
                    chunks.append(chunk)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except InputError:
        raise
    except Exception as error:  # FFmpeg's errors name the problem; keep its words, not its errno and path
        reason = getattr(error, "strerror", None) or (str(error).splitlines() or [type(error).__name__])[0]
        raise InputError(f"{name} is not a readable audio file ({reason})") from None
    if not chunks:
        raise InputError(f"{name} contains no audio samples")
    return np.concatenate(chunks).astype(np.float32)


def _resample(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    if sample_rate == SAMPLE_RATE or audio.size == 0:
        return audio.astype(np.float32)
    import av  # FFmpeg's resampler (swr): band-limited, unlike linear interpolation

    layout = av.AudioLayout("mono")
    frame = av.AudioFrame.from_ndarray(audio.astype(np.float32)[None, :], format="flt", layout=layout.name)
    frame.sample_rate = sample_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def _check(audio: np.ndarray, max_duration: float) -> np.ndarray:
    audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    if audio.size < MIN_SAMPLES:
        raise InputError(f"the audio is too short ({audio.size / SAMPLE_RATE * 1000:.0f} ms); give at least 10 ms")
    if audio.size > max_duration * SAMPLE_RATE:
        raise InputError(f"the audio lasts {audio.size / SAMPLE_RATE:.0f} s, over the {max_duration:.0f} s limit")
    audio = audio - audio.mean()  # a DC offset is not sound
    peak = float(np.abs(audio).max())
    if peak < SILENCE_PEAK:
        raise InputError("the audio is silent (peak below -70 dBFS)")
    if peak > 1.0:
        audio = audio / peak
    return np.ascontiguousarray(audio, dtype=np.float32)


def windows(audio: np.ndarray) -> list[Window]:
    """The 10 s windows covering `audio`; the last one is partial (padded by `window_samples`)."""
    n = max(1, -(-audio.size // WINDOW_SAMPLES))
    duration = audio.size / SAMPLE_RATE
    return [Window(i, i * WINDOW_SECONDS, min((i + 1) * WINDOW_SECONDS, duration)) for i in range(n)]


def window_samples(audio: np.ndarray, window: Window) -> np.ndarray:
    """The samples of one window, zero-padded to exactly WINDOW_SAMPLES."""
    chunk = audio[window.index * WINDOW_SAMPLES : (window.index + 1) * WINDOW_SAMPLES]
    return np.pad(chunk, (0, WINDOW_SAMPLES - chunk.size))
