"""Export for inference: the LoRA of the torch LLM as a GGUF adapter that llama.cpp loads (`lora_path`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..files import written_atomically

# PEFT module name -> llama.cpp tensor name (the GGUF's own: blk.N.attn_q.weight, ...)
GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}


def rotary_permute(rows: np.ndarray, n_head: int, inverse: bool = False) -> np.ndarray:
    """llama.cpp's HF->GGUF converter reorders the output rows of q and k for its rotary layout (and transformers
    undoes it when it loads a GGUF): a LoRA B of q/k must get the same order to add to the GGUF's weights."""
    half = rows.shape[0] // n_head // 2
    shape = (n_head, half, 2) if inverse else (n_head, 2, half)
    return rows.reshape(*shape, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


PEFT_NAME = re.compile(r"layers\.(\d+)\.self_attn\.(\w+)\.lora_([AB])(?:\.default)?\.weight$")


def gguf_name(peft_name: str, n_head: int, n_head_kv: int) -> tuple[str, int] | None:
    """A PEFT LoRA tensor's llama.cpp name, and the head count its rows are reordered by (0: not reordered, only a
    B of q or k is); None for a name that is not a LoRA tensor."""
    match = PEFT_NAME.search(peft_name)
    if not match:
        return None
    layer, module, which = match.groups()
    heads = {"q_proj": n_head, "k_proj": n_head_kv}.get(module, 0) if which == "B" else 0
    return f"blk.{layer}.{GGUF_NAMES[module]}.weight.lora_{which.lower()}", heads


def lora_gguf_tensors(peft_state: dict[str, torch.Tensor], n_head: int, n_head_kv: int) -> dict[str, np.ndarray]:
    """PEFT's saved LoRA (…layers.N.self_attn.q_proj.lora_A.weight) -> llama.cpp's tensor names and row order:
    a (r, n_in) and b (n_out, r) per module."""
    out = {}
    for name, weight in peft_state.items():
        if (found := gguf_name(name, n_head, n_head_kv)) is None:
            continue
        key, heads = found
        array = weight.detach().float().cpu().numpy()
        out[key] = np.ascontiguousarray(rotary_permute(array, heads) if heads else array)
    if not out:
        raise ValueError("no LoRA weights to export")
    return out


def write_lora_gguf(tensors: dict[str, np.ndarray], path: Path, architecture: str, alpha: float) -> None:
    import gguf

    with written_atomically(path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), architecture)  # llama.cpp checks it equals the base model's
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))  # scale = alpha / rank, as in PEFT
        for name, array in sorted(tensors.items()):
            writer.add_tensor(name, array.astype(np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()


def lora_from_gguf(path: Path, peft_state: dict[str, torch.Tensor], n_head: int,
                   n_head_kv: int) -> dict[str, torch.Tensor]:
    """A LoRA GGUF (as write_lora_gguf wrote it) back into PEFT's state dict, under the names and in the shapes of
    the model's own (`peft_state`, get_peft_model_state_dict), so that training continues from shipped weights."""
    import gguf

    # copied: the reader maps the file read-only
    tensors = {t.name: np.array(t.data, dtype=np.float32) for t in gguf.GGUFReader(str(path)).tensors}
    out = {}
    for name, like in peft_state.items():
        if (found := gguf_name(name, n_head, n_head_kv)) is None:
            continue
        key, heads = found
        array = tensors.get(key)
        if array is None or array.shape != tuple(like.shape):
            raise ValueError(f"{Path(path).name} does not hold {key} of shape {tuple(like.shape)}: a LoRA of "
                             "another rank, other modules or another LLM")
        array = rotary_permute(array, heads, inverse=True) if heads else array
        out[name] = torch.from_numpy(np.ascontiguousarray(array))
    return out
