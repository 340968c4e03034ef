"""Views of a training clip for the perception model: each clip is heard several ways, one 10 s window each.

A sound effect from a game package is loud, dry, alone and starts at 0 s; a recording a user uploads is none of
these. The views below move the clip toward what users record, with the labels kept true:

  clean   the clip as built, from 0 s (the view the LLM stages train on)
  noisy   at a random level (-35 to -3 dBFS) and time in the window, over white, pink or brown noise at a
          random SNR (0-30 dB): a faint sound inside a long noisy recording looks like this in its window
  room    reverberated (a synthetic room, RT60 0.15-1.2 s), half of the time through a telephone band
          (300-3400 Hz), over quiet noise
  pair    mixed with a clip of another label (same split) at -6..+6 dB, each at its own time: two labels
  speed   speech played 0.9-1.1x as fast (tempo and pitch together, as Kaldi's speed perturbation), at a random
          level and time over quiet noise: another voice of the same gender, rate and pitch class

and label-free windows, `background`: white, pink or brown noise or near-silence at -75 to -25 dBFS, whose target
is "no sound class" (a uniform distribution), so that the quiet noise around a sound in a long recording is not
named as something (it was named "click" at 0.4-0.7 before these windows were trained on).

Every view is a pure function of (clip, view, seed): the feature cache can be rebuilt, and re-running a build
adds only what is missing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import audio

SR = audio.SAMPLE_RATE
VIEWS = ("clean", "noisy", "room", "pair", "speed", "background")
BACKGROUND_VIEWS = {"train": 400, "validation": 40}
SPEEDS = (0.9, 1.1)  # within a voice class: espeak-ng's slow / normal / fast are 0.7x / 1x / 1.4x apart
VIEWS_PER_KIND = {"event": ("clean", "noisy", "room", "pair"), "speech": ("clean", "noisy", "room", "speed"),
                  "music": ("clean", "noisy"), "mix": ("clean",)}


@dataclass(frozen=True)
class View:
    key: str  # feature-cache key: the clip's audio_id for "clean", "<audio_id>#<view>" otherwise
    clip: dict[str, Any]
    name: str
    partner: dict[str, Any] | None = None  # the second clip of a "pair" view

    @property
    def sound_labels(self) -> list[str]:
        """The view's sound classes; none for a background window."""
        labels = list(self.clip["labels"]["sound_labels"])
        if self.partner is not None:
            labels += [x for x in self.partner["labels"]["sound_labels"] if x not in labels]
        return labels


def plan_views(clips: list[dict[str, Any]], seed: int = 0) -> list[View]:
    """The views of every clip; a pair's partner is another event label of the same split, drawn by hash."""
    events: dict[str, list[dict]] = {}
    for c in clips:
        if c["kind"] == "event" and c["labels"]["label"] != "speech":
            events.setdefault(c["split"], []).append(c)
    out = []
    for c in clips:
        for name in VIEWS_PER_KIND.get(c["kind"], ("clean",)):
            key = c["audio_id"] if name == "clean" else f"{c['audio_id']}#{name}"
            partner = None
            if name == "pair":
                others = [e for e in events.get(c["split"], []) if e["labels"]["label"] != c["labels"]["label"]]
                if not others:
                    continue
                partner = others[_rng(key, seed).integers(len(others))]
            out.append(View(key, c, name, partner))
    for split, count in BACKGROUND_VIEWS.items():
        for i in range(count):
            key = f"background/{split}-{i:04d}"
            clip = {"id": key, "audio_id": key, "kind": "background", "split": split, "duration": audio.MAX_SECONDS,
                    "labels": {"sound_labels": []}, "provenance": [{"package": "generated", "licence": "none"}]}
            out.append(View(key, clip, "background"))
    return out


def render(view: View, data_dir: Path, seed: int = 0) -> np.ndarray:
    """The view's 10 s window, float32 (160000,)."""
    rng = _rng(view.key, seed)
    if view.name == "background":
        level = 10 ** (rng.uniform(-75, -25) / 20)
        return (colored_noise(audio.MAX_SAMPLES, float(rng.choice([0.0, 1.0, 2.0])), rng) * level).astype(np.float32)
    x = audio.read_wav(Path(data_dir) / view.clip["audio_id"])[: audio.MAX_SAMPLES]
    if view.name == "clean":
        return _fit(x)
    if view.name == "noisy":
        window = place(x, rng)
        return add_noise(set_level(window, rng.uniform(-35, -3)), rng.uniform(0, 30), rng)
    if view.name == "room":
        wet = reverberate(x, rng.uniform(0.15, 1.2), rng)
        if rng.random() < 0.5:
            wet = telephone(wet)
        return add_noise(set_level(place(wet, rng), rng.uniform(-30, -6)), rng.uniform(15, 35), rng)
    if view.name == "speed":
        faster = change_speed(x, rng.uniform(*SPEEDS))
        return add_noise(set_level(place(faster, rng), rng.uniform(-30, -6)), rng.uniform(20, 40), rng)
    if view.name == "pair":
        y = audio.read_wav(Path(data_dir) / view.partner["audio_id"])[: audio.MAX_SAMPLES]
        a, b = place(x, rng), place(y, rng)
        gain = audio.active_rms(a) / max(audio.active_rms(b), 1e-9) / 10 ** (rng.uniform(-6, 6) / 20)
        return set_level(a + gain * b, rng.uniform(-25, -3))
    raise ValueError(f"unknown view {view.name!r}")


def _rng(key: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha1(f"{seed}|{key}".encode()).hexdigest()[:12], 16))


def _fit(x: np.ndarray) -> np.ndarray:
    out = np.zeros(audio.MAX_SAMPLES, dtype=np.float32)
    out[: len(x)] = x[: audio.MAX_SAMPLES]
    return out


def place(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`x` at a random start inside an otherwise silent 10 s window."""
    out = np.zeros(audio.MAX_SAMPLES, dtype=np.float32)
    x = x[: audio.MAX_SAMPLES]
    start = int(rng.integers(0, audio.MAX_SAMPLES - len(x) + 1))
    out[start:start + len(x)] = x
    return out


def set_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale so the active RMS is `dbfs`; never past a peak of 0.99."""
    gain = 10 ** (dbfs / 20) / max(audio.active_rms(x), 1e-9)
    gain = min(gain, 0.99 / max(audio.peak(x), 1e-9))
    return (x * gain).astype(np.float32)


def colored_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power falling as 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    noise = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return (noise / max(np.sqrt(np.mean(noise ** 2)), 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`x` over stationary colored noise, `snr_db` below the sound's active RMS."""
    noise = colored_noise(len(x), float(rng.choice([0.0, 1.0, 2.0])), rng)
    out = x + noise * audio.active_rms(x) / 10 ** (snr_db / 20)
    peak = np.max(np.abs(out))
    return (out * (0.99 / peak) if peak > 0.99 else out).astype(np.float32)


def reverberate(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolution with a synthetic room: the direct sound, then exponentially decaying noise (-60 dB at rt60)."""
    t = np.arange(int(rt60 * SR)) / SR
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * 0.3
    rir[0] = 1.0
    n = len(x) + len(rir) - 1
    size = 1 << (n - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: min(n, audio.MAX_SAMPLES)]
    return (wet / max(np.max(np.abs(wet)), 1e-9) * max(audio.peak(x), 1e-3)).astype(np.float32)


def telephone(x: np.ndarray) -> np.ndarray:
    """A telephone channel: 300-3400 Hz, by zeroing the spectrum outside the band."""
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / SR)
    spectrum[(f < 300) | (f > 3400)] = 0
    return np.fft.irfft(spectrum, len(x)).astype(np.float32)


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """`x` played `factor` times as fast: len / factor samples, every frequency times `factor` (linear
    interpolation: at 0.9-1.1x its aliasing sits far under the noise the view adds)."""
    n = max(1, int(round(len(x) / factor)))
    return np.interp(np.arange(n) * factor, np.arange(len(x)), x).astype(np.float32)
