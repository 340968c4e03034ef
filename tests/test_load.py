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


# -- long audio ------------------------------------------------------------------------------------------------------
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402

import clips  # noqa: E402

LONG_MINUTES = float(os.environ.get("LTU_AS_LONG_MINUTES") or 4)  # 30 for the report: LTU_AS_LONG_MINUTES=30
SECRET = "In the middle of the recording, the secret word is pineapple."
OBJECTS = ["red lamp", "blue chair", "green kettle", "yellow bicycle", "silver clock", "brown basket", "white boat",
           "black piano", "orange kite", "purple scarf"]
DRIVER = r"""
import json, resource, sys, time
from engine.config import EngineConfig, SamplingOptions
from engine.pipeline import Engine

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

path, minutes, questions = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
engine = Engine(EngineConfig(max_duration=minutes * 60 + 60))
loaded = peak_mb()
clock = time.perf_counter()
context = engine.analyze(path, progress=True)
seconds = time.perf_counter() - clock
answers = []
for mode, question in questions:
    stream = engine.ask(context, question, mode=mode, sampling=SamplingOptions(max_tokens=32, temperature=0))
    used = getattr(stream, "windows", None) or (context.token_windows if mode == "soft" else [])  # question-aware?
    answers.append({"mode": mode, "question": question, "answer": stream.read(), "prompt": stream.stats.prompt_units,
                    "windows": [w.start for w in used]})
print(json.dumps({"peak_loaded_mb": loaded, "peak_mb": peak_mb(), "analyze_s": seconds, "timings": context.timings,
                  "windows": len(context.windows), "token_windows": [[w.start, w.end] for w in context.token_windows],
                  "segments": [[s.start, s.end, s.text] for s in context.transcript.segments],
                  "events": [[e.label, e.score, e.start, e.end] for e in context.events], "answers": answers}))
"""


def make_long_recording(path: Path, minutes: float, work: Path) -> dict[float, str]:
    """`minutes` of quiet pink noise with one espeak-ng sentence a minute ("Note 3. The green kettle ...") and
    the secret sentence at the middle; returns {start second: sentence}."""
    import soundfile

    rate = 16000
    noise = work / "noise.wav"
    clips.run("sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", str(noise), "synth", str(minutes * 60),
              "pinknoise", "vol", "0.03")  # -R: the same noise every run, so the transcript is reproducible
    audio, _ = soundfile.read(str(noise), dtype="float32")
    noise.unlink()
    placed: dict[float, str] = {}
    middle = round(minutes * 30 / 10) * 10 + 3  # seconds: 3 s into the window at the middle
    times = [m * 60 + 5 for m in range(int(minutes))]
    for k, start in enumerate(times):
        if abs(start - middle) < 20:
            continue
        placed[float(start)] = f"Note {k + 1}. The {OBJECTS[k % len(OBJECTS)]} is on the table."
    placed[float(middle)] = SECRET
    for start, sentence in placed.items():
        speech, _ = soundfile.read(str(clips.speech(sentence, work / "sentence.wav")), dtype="float32")
        at = int(start * rate)
        audio[at : at + speech.size] += speech[: max(0, audio.size - at)] * 0.8
    soundfile.write(str(path), audio, rate, subtype="PCM_16")
    return placed


def test_long_recording_in_bounded_memory(tmp_path, capsys):
    """A long recording (4 minutes here; 30 for the report) is analyzed with progress bars in memory bounded by
    the models plus a small cost per minute; the middle sentence is heard at its time. Printed: time, RSS, which
    10 s windows the LLM gets as acoustic tokens, and the answers about the middle."""
    path = tmp_path / "long.wav"
    placed = make_long_recording(path, LONG_MINUTES, tmp_path)
    middle = [t for t, s in placed.items() if s == SECRET][0]
    questions = [["cascade", "What is the secret word said in the middle of the recording?"],
                 ["soft", "What is the secret word said in the middle of the recording?"],
                 ["soft", "What is said at the start of the recording?"]]
    result = subprocess.run([sys.executable, "-c", DRIVER, str(path), str(LONG_MINUTES), json.dumps(questions)],
                            cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    (tmp_path / "long.json").write_text(json.dumps(out, indent=1))  # kept by pytest for a look afterwards
    assert "transcribe" in result.stderr and "encoder" in result.stderr  # the progress bars
    heard = [s for s in out["segments"] if "pineapple" in s[2].lower()]
    middle_window = [w for w in out["token_windows"] if w[0] <= middle < w[1]]
    with capsys.disabled():
        print(f"\n{LONG_MINUTES:g} min: analyze {out['analyze_s']:.0f} s "
              f"({', '.join(f'{k} {v:.0f} s' for k, v in out['timings'].items())}); peak RSS {out['peak_mb']:.0f} MB "
              f"(models loaded: {out['peak_loaded_mb']:.0f} MB)")
        print(f"  {out['windows']} windows, {len(out['token_windows'])} as acoustic tokens: "
              f"{[w[0] for w in out['token_windows']]}; the middle window ({middle:.0f} s) "
              f"{'is' if middle_window else 'is NOT'} among them")
        print(f"  secret heard at {[s[0] for s in heard]} s (placed at {middle:.0f} s)")
        for a in out["answers"]:
            seen = "sees" if any(t <= middle < t + 10 for t in a["windows"]) else "does NOT see"
            print(f"  [{a['mode']}] {a['question']} -> {a['answer']!r} ({a['prompt']} prompt positions; "
                  f"{'its acoustic tokens ' + seen + ' the middle' if a['windows'] else 'no acoustic tokens'})")
    assert heard and heard[0][0] - 1 <= middle <= heard[0][1] + 1, out["segments"]  # heard, at its time
    audio_mb = LONG_MINUTES * 60 * 16000 * 4 / 2**20
    assert out["peak_mb"] - out["peak_loaded_mb"] < 400 + 6 * audio_mb  # samples, windows, features: linear, small
    assert all(a["answer"] for a in out["answers"])
