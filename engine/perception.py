"""What the engine hears, whichever LLM answers: a TLTR over the Whisper encoder's layers with one head per
question a listener asks (which sounds, and of a voice: gender, speaking rate, pitch; of music: the
instrument). Stored as one safetensors file keyed to the Whisper model only, with its class lists inside, so
`tags` and `cascade` work with any GGUF. The LLM-specific projector and LoRA live in the adapter (tltr.py).

    model, info = load_perception(path)
    heard = listen(model, features, spans, threshold=0.25, max_events=5)
    heard.events, heard.voice
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ModelError
from .tltr import TLTR, Event, load_state, read_module, save_module, tagged_events

PERCEPTION_FORMAT = "ltu-as-perception/1"

# The voice heads and their classes; the sound and instrument classes come with the training data
VOICE_HEADS: dict[str, tuple[str, ...]] = {
    "gender": ("female", "male"),
    "rate": ("slow", "normal", "fast"),
    "pitch": ("low", "normal", "high"),
}


@dataclass(frozen=True)
class PerceptionDims:
    n_layers: int  # Whisper encoder blocks
    whisper_width: int
    heads: tuple[tuple[str, tuple[str, ...]], ...]  # (head name, its classes), "sound" first
    audioset: tuple[str, ...] = ()  # the AudioSet class name of each sound class
    width: int = 512
    time_heads: int = 1
    layer_heads: int = 8

    def classes(self, head: str) -> tuple[str, ...]:
        return dict(self.heads)[head]


class PerceptionModel(nn.Module):
    """TLTR + one LayerNorm-Linear head per question over the time-mean of its output (Whisper-AT's head)."""

    def __init__(self, dims: PerceptionDims):
        super().__init__()
        self.dims = dims
        self.tltr = TLTR(dims.whisper_width, dims.width, dims.time_heads, dims.layer_heads)
        self.heads = nn.ModuleDict({name: nn.Sequential(nn.LayerNorm(dims.width), nn.Linear(dims.width, len(classes)))
                                    for name, classes in dims.heads})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """features (batch, layers, 25, whisper_width) -> {head: logits (batch, classes)}."""
        pooled = self.tltr(features).mean(dim=1)
        return {name: head(pooled) for name, head in self.heads.items()}


@dataclass(frozen=True)
class PerceptionInfo:
    whisper: str  # Whisper model id: name + weights digest
    trained: str  # what training it had ("untrained" for a fresh init)


@dataclass(frozen=True)
class Voice:
    gender: str
    rate: str
    pitch: str
    confidence: float  # the gender head's probability
    window: int  # the window it was read from

    def describe(self) -> str:
        return f"{self.gender}, {self.rate} rate, {self.pitch} pitch"


@dataclass(frozen=True)
class Heard:
    probabilities: dict[str, np.ndarray]  # head -> (windows, classes), softmax per window
    events: list[Event]
    voice: Voice | None  # from the window where speech is likeliest, if speech is heard at all
    instrument: str | None  # from the window where music is likeliest, if music is heard at all


@torch.inference_mode()
def head_probabilities(model: PerceptionModel, features: torch.Tensor) -> dict[str, np.ndarray]:
    """features (n, layers, 25, width) -> {head: (n, classes)} softmax probabilities, in one forward pass."""
    return {name: torch.softmax(x.float(), dim=-1).cpu().numpy() for name, x in model(features).items()}


def listen(model: PerceptionModel, features: torch.Tensor, spans: Sequence[tuple[float, float]],
           threshold: float, max_events: int) -> Heard:
    """The one listen path (engine, training and eval): one clip's windows (windows, layers, 25, width) -> what
    was heard."""
    return read(model.dims, head_probabilities(model, features), spans, threshold, max_events)


def read(dims: PerceptionDims, probabilities: dict[str, np.ndarray], spans: Sequence[tuple[float, float]],
         threshold: float, max_events: int) -> Heard:
    """One clip's head probabilities (windows first) -> its events, voice and instrument."""
    sounds = probabilities["sound"]
    labels = dims.classes("sound")
    events = tagged_events(sounds, spans, labels, threshold, max_events)

    def strongest(label: str) -> int | None:  # the window where `label` is likeliest, if it is heard at all
        if label not in labels:
            return None
        w = int(np.argmax(sounds[:, labels.index(label)]))
        return w if sounds[w, labels.index(label)] >= threshold else None

    def top(head: str, w: int) -> str:
        return dims.classes(head)[int(np.argmax(probabilities[head][w]))]

    voice = instrument = None
    if (w := strongest("speech")) is not None and "gender" in probabilities:
        voice = Voice(top("gender", w), top("rate", w), top("pitch", w),
                      round(float(probabilities["gender"][w].max()), 3), w)
    if (w := strongest("music")) is not None and "instrument" in probabilities:
        instrument = top("instrument", w)
    return Heard(probabilities, events, voice, instrument)


def save_perception(model: PerceptionModel, info: PerceptionInfo, path: Path,
                    dtype: torch.dtype = torch.float32) -> None:
    metadata = {"format": PERCEPTION_FORMAT, "dims": json.dumps(asdict(model.dims)), **asdict(info)}
    save_module(model, metadata, path, dtype)


def load_perception(path: Path) -> tuple[PerceptionModel, PerceptionInfo]:
    def parse(metadata: dict) -> PerceptionDims:
        raw = json.loads(metadata["dims"])
        return PerceptionDims(**{**raw, "heads": tuple((n, tuple(c)) for n, c in raw["heads"]),
                                 "audioset": tuple(raw.get("audioset", ()))})

    dims, metadata, state = read_module(path, PERCEPTION_FORMAT, "perception file", parse)
    model = load_state(PerceptionModel(dims), state, path, "perception file")
    return model, PerceptionInfo(**{k: metadata.get(k, "") for k in PerceptionInfo.__dataclass_fields__})


def check_whisper(info: PerceptionInfo, dims: PerceptionDims, whisper: str, n_layers: int, whisper_width: int,
                  path: Path) -> None:
    """Refuse a perception file trained on another Whisper: its heads would read garbage."""
    if (dims.n_layers, dims.whisper_width) != (n_layers, whisper_width) or info.whisper != whisper:
        raise ModelError(f"perception file {Path(path).name} was trained on Whisper {info.whisper}, not {whisper}")
