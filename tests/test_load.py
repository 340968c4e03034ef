"""A small, bounded load test of the live app over loopback (scripts/loadtest.py does the work; run it alone
for bigger numbers): concurrent OpenAI-route clients and Gradio sessions get no errors, and a soak of small
requests does not grow the server's memory. The numbers are printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import loadtest  # noqa: E402

CLIENTS, REQUESTS = 4, 6  # 24 concurrent completions of a cached clip
SESSIONS = 2  # gradio_client sessions at once: /analyze + /ask each
SOAK = 150  # sequential small requests
SOAK_GROWTH_MB = 30  # allowed RSS growth over the soak, after its first samples warmed the allocator
LATENCY_P95_S = 20.0  # a cached request is well under a second; this only catches a stuck queue


def test_load_and_soak(tmp_path, speech_clip, capsys):
    with loadtest.serve(tmp_path / "app.log") as server:
        assert [a.rsplit(":", 1)[0] for a in loadtest.listening_addresses(server.pid)] == ["127.0.0.1"]
        report = loadtest.run(server, speech_clip, CLIENTS, REQUESTS, SESSIONS, SOAK, max_tokens=8)
    with capsys.disabled():
        print()
        loadtest.print_report(report)
    assert report["alive"], "the server died under load"
    assert report["errors"] == []
    assert len(report["openai"].latencies) == CLIENTS * REQUESTS
    assert report["openai"].percentile(95) < LATENCY_P95_S
    assert len(report["gradio_analyze"].latencies) == len(report["gradio_ask"].latencies) == SESSIONS
    assert len(report["soak"].latencies) == SOAK
    samples = report["soak_rss"]
    warmed = samples[1][1]  # after the first 25 soak requests
    assert samples[-1][1] - warmed < SOAK_GROWTH_MB, f"RSS grew during the soak: {samples}"


# -- long audio ------------------------------------------------------------------------------------------------------
LONG_MINUTES = float(os.environ.get("LTU_AS_LONG_MINUTES") or 4)  # 30 for the report: scripts/longaudio.py


def test_long_recording_in_bounded_memory(capsys):
    """A long recording (4 minutes here; 30 for the report) is analysed with progress bars in memory bounded by
    the models plus a small cost per minute; the secret sentence at the middle is heard at its time, and a
    question about the middle gets acoustic tokens from the middle window (scripts/longaudio.py does the work)."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "longaudio.py"), "--minutes", str(LONG_MINUTES),
                             "--json"], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert result.stdout.strip(), result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    with capsys.disabled():
        print("\n" + "\n".join(result.stdout.strip().splitlines()[:-1]))
    assert "transcribe" in result.stderr and "encoder" in result.stderr  # the progress bars
    middle = out["secret_at_s"]
    assert any(middle - 1 <= t <= middle + 1 for t in out["secret_heard_at_s"]), out["segments"]
    assert out["notes_heard"] >= out["notes_placed"] - 1  # the rest of the recording is transcribed too
    soft_middle = out["answers"][1]
    assert any(t <= middle < t + 10 for t in soft_middle["windows"])  # tokens from the window that holds it
    assert len(soft_middle["windows"]) <= 12
    audio_mb = LONG_MINUTES * 60 * 16000 * 4 / 2**20
    assert out["peak_rss_mb"] - out["models_loaded_rss_mb"] < 400 + 6 * audio_mb  # linear in the audio, small
    assert out["answers"][0]["answer"]  # cascade; soft on many windows is unreliable (the engine warns about it)
    assert result.returncode == 0, result.stderr[-3000:]  # the script's own verdict agrees
