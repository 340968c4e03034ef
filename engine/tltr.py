"""Acoustic tokens {A}: the time-and-layer-wise transformer (TLTR) of Whisper-AT / LTU-AS and the projector to
the LLM's embedding width; saved as safetensors with metadata that names the models they were trained with,
and refused when paired with others. What is heard in words (sound events, voice) comes from the perception
model (perception.py), which shares the TLTR architecture but not the LLM."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ModelError
from .files import written_atomically

ADAPTER_FORMAT = "ltu-as-adapter/1"


@dataclass(frozen=True)
class AdapterDims:
    n_layers: int  # Whisper encoder blocks (6 tiny/base)
    whisper_width: int  # Whisper d_model (384 tiny, 512 base)
    n_embd: int  # the LLM's embedding width (576 SmolLM2-135M)
    width: int = 512  # TLTR width ("tl_down_tr_512_1_8" in Whisper-AT)
    time_heads: int = 1
    layer_heads: int = 8


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block, as in Whisper."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn_ln = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp_ln = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attn_ln(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.mlp_ln(x))


class TLTR(nn.Module):
    """(batch, layers, time, whisper_width) -> (batch, time, width): attention over time within each layer,
    then over layers at each time step, then the mean over layers."""

    def __init__(self, whisper_width: int, width: int, time_heads: int, layer_heads: int):
        super().__init__()
        self.down = nn.Sequential(nn.LayerNorm(whisper_width), nn.Linear(whisper_width, width))
        self.time_block = ResidualAttentionBlock(width, time_heads)
        self.layer_block = ResidualAttentionBlock(width, layer_heads)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, layers, time, _ = features.shape
        x = self.time_block(self.down(features).reshape(batch * layers, time, -1))
        x = x.reshape(batch, layers, time, -1).transpose(1, 2).reshape(batch * time, layers, -1)
        return self.layer_block(x).mean(dim=1).reshape(batch, time, -1)


class AudioAdapter(nn.Module):
    """TLTR + projector (LayerNorm without affine + Linear, as LTU-AS)."""

    def __init__(self, dims: AdapterDims):
        super().__init__()
        self.dims = dims
        self.tltr = TLTR(dims.whisper_width, dims.width, dims.time_heads, dims.layer_heads)
        self.projector = nn.Sequential(nn.LayerNorm(dims.width, elementwise_affine=False), nn.Linear(dims.width, dims.n_embd))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (batch, layers, 25, whisper_width) -> acoustic tokens (batch, 25, n_embd)."""
        return self.projector(self.tltr(features))

    def start_projector_at(self, rms: float) -> None:
        """A fresh projector whose outputs have the RMS of the LLM's own token embeddings (its input is layer-
        normed, so std = rms / sqrt(width)). PyTorch's default init starts ~4x larger for SmolLM2, and from there
        the validation loss of stage 2 jumped 2-3x within a few steps in 3 of 4 seeds of the tiny test."""
        nn.init.normal_(self.projector[1].weight, std=rms / self.dims.width ** 0.5)
        nn.init.zeros_(self.projector[1].bias)


@dataclass(frozen=True)
class Event:
    label: str
    score: float  # the sound head's highest probability over the span
    start: float  # seconds
    end: float


def tagged_events(window_tags: np.ndarray, spans: Sequence[tuple[float, float]], labels: Sequence[str],
                  threshold: float, max_events: int) -> list[Event]:
    """Tagging-head probabilities (windows, labels) -> the labels above `threshold` as time spans of consecutive
    windows (`spans`: each window's start and end), strongest first. Inference and training share it, so the
    LLM learns from the very event lines it will read."""
    events = []
    for k in np.argsort(-window_tags.max(axis=0)):
        above = window_tags[:, k] >= threshold
        i = 0
        while i < len(spans):
            if above[i]:
                j = i
                while j + 1 < len(spans) and above[j + 1]:
                    j += 1
                events.append(Event(labels[k], round(float(window_tags[i:j + 1, k].max()), 3),
                                    spans[i][0], round(spans[j][1], 2)))
                i = j + 1
            else:
                i += 1
    return sorted(events, key=lambda e: -e.score)[:max_events]


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter file was trained with; stored as safetensors metadata."""

    whisper: str  # Whisper model id: name + weights digest
    llm: str  # GGUF file name
    llm_sha256: str
    prompt_format: str
    trained: str  # what training it had, stage by stage ("untrained" for a fresh init)
    recipe: str = ""  # the commands that trained it, stage by stage (the model card's "reproduce")


def save_module(module: nn.Module, metadata: dict[str, str], path: Path, dtype: torch.dtype = torch.float32) -> None:
    """A module's weights and string metadata as safetensors, written atomically; `dtype=torch.float16` halves a
    shipped file (loading casts back to float32)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to(dtype).contiguous().cpu() for k, v in module.state_dict().items()}
    with written_atomically(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def read_module(path: Path, file_format: str, what: str, parse):
    """(parse(metadata), metadata, float32 tensors) of a safetensors file of `file_format`; anything unreadable
    (not safetensors, another format, bad metadata) is one ModelError line naming `what`."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != file_format:
                raise ModelError(f"{path} is not an LTU-AS {what} (format {metadata.get('format')!r})")
            parsed = parse(metadata)
            return parsed, metadata, {k: f.get_tensor(k).float() for k in f.keys()}
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as error:
        raise ModelError(f"cannot read {what} {path}: {str(error).splitlines()[0]}") from None


def load_state(module: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> nn.Module:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ModelError(f"{what} {path} does not match its own dimensions: {str(error).splitlines()[0]}") from None
    return module.eval()


def save_adapter(adapter: AudioAdapter, info: AdapterInfo, path: Path, dtype: torch.dtype = torch.float32) -> None:
    metadata = {"format": ADAPTER_FORMAT, "dims": json.dumps(asdict(adapter.dims)), **asdict(info)}
    save_module(adapter, metadata, path, dtype)


def load_adapter(path: Path) -> tuple[AudioAdapter, AdapterInfo]:
    def parse(metadata: dict) -> AdapterDims:
        raw = json.loads(metadata["dims"])
        return AdapterDims(**{k: v for k, v in raw.items() if k in AdapterDims.__dataclass_fields__})

    dims, metadata, state = read_module(path, ADAPTER_FORMAT, "adapter file", parse)
    # files written before the perception model carried a tagging head: the perception file replaces it
    state = {k: v for k, v in state.items() if not k.startswith("tagger.")}
    adapter = load_state(AudioAdapter(dims), state, path, "adapter file")
    return adapter, AdapterInfo(**{k: metadata.get(k, "") for k in AdapterInfo.__dataclass_fields__})


def check_pairing(info: AdapterInfo, dims: AdapterDims, whisper: str, n_layers: int, whisper_width: int,
                  llm_sha256: str, n_embd: int, prompt_format: str, path: Path) -> None:
    """Refuse an adapter trained for other models: its tokens would be silent garbage to the LLM."""
    problems = []
    if (dims.n_layers, dims.whisper_width) != (n_layers, whisper_width) or info.whisper != whisper:
        problems.append(f"it was trained on Whisper {info.whisper}, not {whisper}")
    if dims.n_embd != n_embd or info.llm_sha256 != llm_sha256:
        problems.append(f"it was trained for LLM {info.llm} (n_embd {dims.n_embd}), not this one (n_embd {n_embd})")
    if info.prompt_format != prompt_format:
        problems.append(f"its prompt format {info.prompt_format!r} is not {prompt_format!r}")
    if problems:
        raise ModelError(f"adapter {Path(path).name} does not fit: " + "; ".join(problems))
