"""Whisper encoder features for the acoustic path: every block's hidden states of each 10 s window,
mean-pooled by 20 in time -> (layers, 25, width), as Whisper-AT / LTU-AS feed their TLTR."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .audio import WINDOW_SAMPLES, Window, window_samples
from .convert import mel_filters
from .errors import Deadline

N_FFT = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms: 1000 mel frames per 10 s window
WINDOW_FRAMES = WINDOW_SAMPLES // HOP_LENGTH  # 1000
ENCODER_POSITIONS = WINDOW_FRAMES // 2  # 500 after the stride-2 convolution
POOL = 20  # 500 positions / 20 = 25 acoustic tokens per window
TOKENS_PER_WINDOW = ENCODER_POSITIONS // POOL  # 25
BATCH_WINDOWS = 8  # windows per encoder call: bounds memory on long audio


def log_mel_spectrogram(windows: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """(batch, 160000) samples -> (batch, n_mels, 1000) Whisper log-mel, normalised per window."""
    stft = torch.stft(windows, N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT, device=windows.device),
                      return_complex=True)
    power = stft[..., :-1].abs() ** 2  # Whisper drops the last frame
    log_spec = torch.clamp(filters.to(windows.device) @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.amax(dim=(-2, -1), keepdim=True) - 8.0)
    return (log_spec + 4.0) / 4.0


class WhisperLayerFeatures:
    """The encoder half of a Hugging Face Whisper checkpoint, run on 10 s windows."""

    def __init__(self, hf_dir: Path, device: str = "cpu"):
        from safetensors import safe_open
        from transformers import WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        config = WhisperConfig.from_pretrained(hf_dir)
        config.max_source_positions = ENCODER_POSITIONS  # 10 s windows: the positional table is cut to 500 rows
        encoder = WhisperEncoder(config)
        prefix = "model.encoder."
        with safe_open(str(Path(hf_dir) / "model.safetensors"), framework="pt") as f:
            state = {k[len(prefix):]: f.get_tensor(k).float() for k in f.keys() if k.startswith(prefix)}
        state["embed_positions.weight"] = state["embed_positions.weight"][:ENCODER_POSITIONS]
        encoder.load_state_dict(state, strict=True)
        self.encoder = encoder.eval().to(device)
        self.filters = torch.from_numpy(mel_filters(config.num_mel_bins))  # the one ggml files carry
        self.device = device
        self.n_layers = config.encoder_layers
        self.width = config.d_model

    @torch.inference_mode()
    def __call__(self, windows: np.ndarray, final_of: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(n, 160000) float32 windows -> (n, layers, 25, width) float32 features; n of BATCH_WINDOWS runs best.
        With `final_of` = i, also window i's final encoder states (1, 500, width), Whisper's decoder input."""
        batch = torch.from_numpy(np.ascontiguousarray(windows)).to(self.device)
        features, last = self._layer_states(log_mel_spectrogram(batch, self.filters))
        final = None if final_of is None else self.encoder.layer_norm(last[final_of : final_of + 1])
        return features.cpu(), final

    def encode(self, audio: np.ndarray, windows: Sequence[Window], progress: bool = False,
               deadline: Deadline | None = None, final_of: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every window of `audio`, BATCH_WINDOWS at a time, so that a long recording's windows are never all
        copied at once -> (len(windows), layers, 25, width); and window `final_of`'s final states, if asked."""
        out, final = [], None
        for start in tqdm(range(0, len(windows), BATCH_WINDOWS), desc="encoder", unit="batch", disable=not progress):
            if deadline is not None:
                deadline.check("the Whisper encoder")
            batch = windows[start : start + BATCH_WINDOWS]
            wanted = final_of - start if final_of is not None and 0 <= final_of - start < len(batch) else None
            features, states = self(np.stack([window_samples(audio, w) for w in batch]), wanted)
            out.append(features)
            final = states if states is not None else final
        return torch.cat(out), final

    def _layer_states(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled hidden states of every block (batch, layers, 25, width), and the last block's unpooled output."""
        enc = self.encoder
        x = torch.nn.functional.gelu(enc.conv1(mel))
        x = torch.nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        states = []
        for layer in enc.layers:  # each block's output; the last one before the final LayerNorm, as LTU-AS
            x = layer(x, attention_mask=None)
            x = x[0] if isinstance(x, tuple) else x
            states.append(x)
        stacked = torch.stack(states, dim=1)  # (batch, layers, 500, width)
        batch, layers, time, width = stacked.shape
        return stacked.reshape(batch, layers, time // POOL, POOL, width).mean(dim=3), x
