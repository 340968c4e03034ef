"""The command line: answers as JSON, batches, and one clear line with exit code 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import clips

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow  # a CLI subprocess that loads the models
def test_ask_json_has_every_field(mixed_clip):
    result = cli("ask", str(mixed_clip), "What is said, and what else can be heard?", "--json", "--max-tokens", "40")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert {"answer", "transcript", "language", "segments", "events", "voice", "mode", "timings", "models"} <= set(out)
    assert out["answer"] and "fox" in out["transcript"].lower() and out["mode"] == "soft"
    assert all({"label", "score", "start", "end"} <= set(e) for e in out["events"])
    assert {"decode", "asr", "encoder", "tltr", "prefill", "first_token", "load"} <= set(out["timings"])
    assert all(isinstance(v, float) for v in out["timings"].values())


@pytest.mark.slow  # a CLI subprocess that loads the models
def test_batch_keeps_going_past_a_bad_clip(tmp_path, mixed_clip):
    (tmp_path / "notes.wav").write_text("not audio")
    lines = [{"id": "good", "audio": str(mixed_clip), "question": "What is said?", "mode": "cascade"},
             {"id": "bad", "audio": "notes.wav", "question": "What is said?"},
             {"id": "tags", "audio": str(mixed_clip), "question": "What sounds are there?", "mode": "tags"}]
    jobs = tmp_path / "in.jsonl"
    jobs.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken json\n")
    result = cli("batch", str(jobs), str(tmp_path / "out.jsonl"), "--max-tokens", "24")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == ["good", "bad", "tags", 4]
    assert out[0]["answer"] and out[0]["mode"] == "cascade" and "error" not in out[0]
    assert "not a readable audio file" in out[1]["error"]
    assert out[2]["mode"] == "tags" and out[2]["answer"]
    assert "not JSON" in out[3]["error"]


def _png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure(figsize=(1, 1))
    plt.savefig(path)
    plt.close()


@pytest.mark.parametrize("name,make,message", [
    ("missing.wav", None, "not found"),
    ("empty.wav", lambda p: p.write_bytes(b""), "empty"),
    ("notes.wav", lambda p: p.write_text("meeting notes, not audio\n" * 50), "not a readable audio file"),
    ("truncated.mp3", lambda p: p.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 8),
     "not a readable audio file"),
    ("picture.png", _png, "no audio track"),
    ("silence.wav", lambda p: clips.run("sox", "-n", "-r", "16000", "-c", "1", str(p), "trim", "0", "3"), "silent"),
    ("long.wav", lambda p: clips.sound("noise", p, seconds=8), "limit"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, name, make, message):
    path = tmp_path / name
    if make is not None:
        make(path)
    result = cli("ask", str(path), "What is this?", "--max-duration", "5", timeout=120)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback_behind_the_line(tmp_path):
    result = cli("--debug", "ask", str(tmp_path / "missing.wav"), "What is this?", timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" in result.stderr
    assert lines[-1].startswith("error: ") and "not found" in lines[-1]


@pytest.mark.slow  # a CLI subprocess that loads the models
def test_bad_options_exit_2(speech_clip):
    result = cli("ask", str(speech_clip), "Hi?", "--llm", str(speech_clip))
    assert result.returncode == 2 and "not a GGUF" in result.stderr and "Traceback" not in result.stderr


def test_weights_lists_what_resolved():
    result = cli("weights")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ggml" in result.stdout and "SmolLM2" in result.stdout
