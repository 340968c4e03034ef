"""Pictures of what the engine heard: waveform and spectrogram over one time axis, with the speech segments
and the detected sound events drawn as lanes beneath; and the events as a table for a bar chart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.audio import SAMPLE_RATE

N_FFT = 512  # 32 ms at 16 kHz
MAX_COLUMNS = 1200  # spectrogram columns (and waveform buckets): about one per pixel of the figure
FLOOR_DB = -80.0  # below the loudest bin; quieter is drawn as silence
EVENT_COLORS = ("#e4572e", "#29335c", "#f3a712", "#669bbc", "#a8c686", "#8d6a9f", "#c44536")


def spectrogram(samples: np.ndarray, n_fft: int = N_FFT, columns: int = MAX_COLUMNS) -> np.ndarray:
    """Log-power spectrogram in dB relative to its peak, (n_fft // 2 + 1, frames), at most `columns` frames."""
    hop = max(n_fft // 4, -(-samples.size // columns))
    padded = np.pad(samples, (0, max(0, n_fft - samples.size)))
    frames = 1 + (padded.size - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(padded[index] * np.hanning(n_fft), axis=1)) ** 2
    db = 10 * np.log10(np.maximum(power, 1e-12))
    return np.maximum(db - db.max(), FLOOR_DB).T


def envelope(samples: np.ndarray, buckets: int = MAX_COLUMNS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, minima, maxima) of the waveform in at most `buckets` slices: a long clip drawn as its outline."""
    size = max(1, -(-samples.size // buckets))
    n = -(-samples.size // size)
    padded = np.pad(samples, (0, n * size - samples.size), mode="edge").reshape(n, size)
    times = (np.arange(n) + 0.5) * size / SAMPLE_RATE
    return times, padded.min(axis=1), padded.max(axis=1)


def overview(samples: np.ndarray, segments: Sequence[tuple[float, float, str]],
             events: Sequence[tuple[str, float, float, float]]) -> np.ndarray:
    """RGB image: waveform, spectrogram, then a lane for speech and one per event label (label, score, start,
    end), all on the clip's time axis."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: figures are not registered globally, so threads are safe

    duration = samples.size / SAMPLE_RATE
    labels = list(dict.fromkeys(label for label, *_ in events))
    lanes = ["transcript", *labels]
    figure = Figure(figsize=(10, 3.6 + 0.28 * len(lanes)), dpi=100, layout="constrained")
    wave_ax, spec_ax, lane_ax = figure.subplots(3, 1, sharex=True,
                                                gridspec_kw={"height_ratios": [1, 1.8, 0.25 + 0.3 * len(lanes)]})
    times, low, high = envelope(samples)
    wave_ax.fill_between(times, low, high, color="#29335c", linewidth=0.5)
    wave_ax.set_ylim(-1, 1)
    wave_ax.set_yticks([])
    wave_ax.set_ylabel("wave")
    spec = spectrogram(samples)
    spec_ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", extent=(0, duration, 0, SAMPLE_RATE / 2000))
    spec_ax.set_ylabel("kHz")
    for lane, name in enumerate(lanes):
        lane_ax.axhline(lane, color="#dddddd", linewidth=0.5, zorder=0)
    for start, end, _ in segments:
        lane_ax.barh(0, max(end - start, 0.05), left=start, height=0.6, color="#4c956c")
    for label, score, start, end in events:
        lane = lanes.index(label)
        color = EVENT_COLORS[(lane - 1) % len(EVENT_COLORS)]
        lane_ax.barh(lane, end - start, left=start, height=0.6, color=color, alpha=0.35 + 0.65 * min(score, 1.0))
        lane_ax.text(start + 0.1, lane, f"{score:.2f}", va="center", fontsize=7, color="white")
    lane_ax.set_yticks(range(len(lanes)), lanes, fontsize=8)
    lane_ax.set_ylim(len(lanes) - 0.5, -0.5)
    lane_ax.set_xlim(0, duration)
    lane_ax.set_xlabel("time (s)")
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def events_table(events: Sequence[tuple[str, float, float, float]]):
    """One row per event label with its best score, strongest first: the bar chart's data."""
    import pandas as pd

    best: dict[str, float] = {}
    for label, score, *_ in events:
        best[label] = max(score, best.get(label, 0.0))
    rows = sorted(best.items(), key=lambda item: -item[1])
    return pd.DataFrame({"event": pd.Series([label for label, _ in rows], dtype=str),  # typed even when empty:
                         "score": pd.Series([round(s, 3) for _, s in rows], dtype=float)})  # the chart's axes
