"""Audio helpers for the data builder: decode anything to 16 kHz mono, trim, write, mix at an SNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import SAMPLE_RATE
from ..files import written_atomically

MAX_SECONDS = 10.0  # one LTU-AS window
MAX_SAMPLES = int(MAX_SECONDS * SAMPLE_RATE)  # 160000 samples
MIN_SECONDS = 0.1  # shorter clips carry too little to label
TRIM_FRAME = SAMPLE_RATE // 100  # 10 ms analysis frame for silence trimming
SILENCE_DB = -50.0  # frames quieter than this (dBFS RMS) at the edges are trimmed
SILENCE_FLOOR = 10 ** (SILENCE_DB / 20)
EDGE_MARGIN = 2 * TRIM_FRAME  # keep 20 ms around the sound when trimming


def trim(x: np.ndarray, max_samples: int = MAX_SAMPLES) -> np.ndarray:
    """Drop near-silent lead-in and tail (keeping a 20 ms margin), then cut to at most `max_samples`."""
    n_frames = len(x) // TRIM_FRAME
    if n_frames == 0:
        return x[:max_samples]
    rms = np.sqrt(np.mean(x[: n_frames * TRIM_FRAME].reshape(n_frames, TRIM_FRAME) ** 2, axis=1))
    loud = np.flatnonzero(rms > SILENCE_FLOOR)
    if len(loud) == 0:
        return x[:0]
    start = max(0, loud[0] * TRIM_FRAME - EDGE_MARGIN)
    end = min(len(x), (loud[-1] + 1) * TRIM_FRAME + EDGE_MARGIN)
    return x[start:end][:max_samples]


def peak(x: np.ndarray) -> float:
    return float(np.max(np.abs(x))) if len(x) else 0.0


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def active_rms(x: np.ndarray) -> float:
    """RMS over the louder half of 10 ms frames: the level of the sound itself, not its pauses."""
    n_frames = len(x) // TRIM_FRAME
    if n_frames < 2:
        return rms(x)
    frames = np.sqrt(np.mean(x[: n_frames * TRIM_FRAME].reshape(n_frames, TRIM_FRAME).astype(np.float64) ** 2, axis=1))
    top = np.sort(frames)[n_frames // 2 :]
    return float(np.sqrt(np.mean(top**2)))


def normalize_peak(x: np.ndarray, target_db: float = -1.0) -> np.ndarray:
    p = peak(x)
    return x if p == 0 else (x * (10 ** (target_db / 20) / p)).astype(np.float32)


def write_wav(path: Path, x: np.ndarray) -> None:
    """Write 16 kHz mono PCM_16, atomically (a half-written file never looks done)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as tmp:
        sf.write(tmp, np.clip(x, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")


def read_wav(path: Path) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=False)
    if sr != SAMPLE_RATE or x.ndim != 1:
        raise ValueError(f"{path}: expected 16 kHz mono, got {sr} Hz shape {x.shape}")
    return x


def mix_at_snr(speech: np.ndarray, event: np.ndarray, snr_db: float, offset: int) -> np.ndarray:
    """Speech plus `event` starting at sample `offset`, the event scaled so speech/event = `snr_db`.

    Levels are active RMS (see `active_rms`); the sum is scaled down only if it would clip.
    """
    length = max(len(speech), offset + len(event))
    out = np.zeros(length, dtype=np.float64)
    out[: len(speech)] += speech
    gain = active_rms(speech) / max(active_rms(event), 1e-9) / (10 ** (snr_db / 20))
    out[offset : offset + len(event)] += gain * event
    p = np.max(np.abs(out))
    if p > 0.99:
        out *= 0.99 / p
    return out.astype(np.float32)
