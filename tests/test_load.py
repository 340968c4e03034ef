"""A small, bounded load test of the live app over loopback (scripts/loadtest.py does the work; run it alone
for bigger numbers): concurrent OpenAI-route clients and Gradio sessions get no errors, and a soak of small
requests does not grow the server's memory. The numbers are printed."""

from __future__ import annotations

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
