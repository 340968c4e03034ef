"""A long recording end to end: `minutes` of quiet pink noise with a spoken note every minute and a secret
sentence at the middle, analysed with progress bars; then questions about its middle and its start.

    .venv/bin/python scripts/longaudio.py --minutes 30 --save docs/results/reliability.json

Prints the analysis time per stage, the peak RSS (and what the loaded models alone took), where the secret was
heard, which 10 s windows each answer's acoustic tokens came from, and the answers. Also used by
tests/test_load.py (`--json`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
import loadtest  # noqa: E402

SECRET = "In the middle of the recording, the secret word is pineapple."
OBJECTS = ["red lamp", "blue chair", "green kettle", "yellow bicycle", "silver clock", "brown basket", "white boat",
           "black piano", "orange kite", "purple scarf"]
QUESTIONS = [("cascade", "What is the secret word said in the middle of the recording?"),
             ("soft", "What is the secret word said in the middle of the recording?"),
             ("soft", "What is said at the start of the recording?")]


def make_long_recording(path: Path, minutes: float, work: Path) -> dict[float, str]:
    """`minutes` of quiet pink noise with one sentence a minute ("Note 3. The green kettle is on the table.")
    and the secret sentence 3 s into the window at the middle; returns {start second: sentence}."""
    import soundfile

    rate = 16000
    noise = work / "noise.wav"
    subprocess.run(["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", str(noise), "synth", str(minutes * 60),
                    "pinknoise", "vol", "0.03"], check=True, capture_output=True)  # -R: the same noise every run
    audio, _ = soundfile.read(str(noise), dtype="float32")
    noise.unlink()
    middle = round(minutes * 30 / 10) * 10 + 3
    placed = {float(m * 60 + 5): f"Note {m + 1}. The {OBJECTS[m % len(OBJECTS)]} is on the table."
              for m in range(int(minutes)) if abs(m * 60 + 5 - middle) >= 20}
    placed[float(middle)] = SECRET
    for start, sentence in placed.items():
        speech, _ = soundfile.read(str(loadtest.speech_clip(work / "sentence.wav", sentence)), dtype="float32")
        at = int(start * rate)
        audio[at : at + speech.size] += speech[: max(0, audio.size - at)] * 0.8
    soundfile.write(str(path), audio, rate, subtype="PCM_16")
    return placed


def measure(minutes: float) -> dict:
    from engine.bench import peak_rss_mb
    from engine.config import EngineConfig, SamplingOptions
    from engine.pipeline import Engine

    with tempfile.TemporaryDirectory(prefix="ltu-long-") as tmp:
        path = Path(tmp) / "long.wav"
        placed = make_long_recording(path, minutes, Path(tmp))
        engine = Engine(EngineConfig(max_duration=minutes * 60 + 60))
        loaded = peak_rss_mb()
        clock = time.perf_counter()
        context = engine.analyze(path, progress=True)
        seconds = time.perf_counter() - clock
    middle = next(t for t, s in placed.items() if s == SECRET)
    answers = []
    for mode, question in QUESTIONS:
        stream = engine.ask(context, question, mode=mode, sampling=SamplingOptions(max_tokens=32, temperature=0))
        answers.append({"mode": mode, "question": question, "answer": stream.read(),
                        "prompt_positions": stream.stats.prompt_units, "windows": [w.start for w in stream.windows]})
    heard = [s for s in context.transcript.segments if "pineapple" in s.text.lower()]
    return {"minutes": minutes, "analyze_s": round(seconds, 1),
            "timings": {k: round(v, 1) for k, v in context.timings.items()},
            "peak_rss_mb": round(peak_rss_mb()), "models_loaded_rss_mb": round(loaded), "windows": len(context.windows),
            "secret_at_s": middle, "secret_heard_at_s": [s.start for s in heard],
            "notes_heard": sum(_heard_at(context.transcript.segments, t, s) for t, s in placed.items() if s != SECRET),
            "notes_placed": len(placed) - 1,
            "segments": [[s.start, s.end, s.text] for s in context.transcript.segments], "answers": answers}


def _heard_at(segments, start: float, sentence: str) -> bool:
    """Whether a transcript segment starting within 3 s of `start` names the sentence's object ("kettle")."""
    noun = next(o for o in OBJECTS if o in sentence).split()[-1]
    return any(abs(s.start - start) < 3 and noun in s.text.lower() for s in segments)


def print_report(out: dict) -> None:
    middle = out["secret_at_s"]
    print(f"{out['minutes']:g} min: analyze {out['analyze_s']:.0f} s "
          f"({', '.join(f'{k} {v:.0f} s' for k, v in out['timings'].items())}); peak RSS {out['peak_rss_mb']} MB "
          f"(models loaded: {out['models_loaded_rss_mb']} MB); {out['windows']} windows")
    print(f"  secret heard at {out['secret_heard_at_s']} s (placed at {middle:.0f} s); "
          f"{out['notes_heard']} of {out['notes_placed']} minute notes heard at their time")
    for a in out["answers"]:
        sees = any(t <= middle < t + 10 for t in a["windows"])
        print(f"  [{a['mode']}] {a['question']} -> {a['answer']!r} ({a['prompt_positions']} prompt positions"
              + (f"; acoustic tokens from {len(a['windows'])} windows, {'including' if sees else 'NOT'} the middle)"
                 if a["windows"] else "; no acoustic tokens)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line at the end")
    parser.add_argument("--save", type=Path, help="add the figures to this reliability JSON (docs/results/...)")
    args = parser.parse_args()
    if not 1 <= args.minutes <= 120:
        raise SystemExit("--minutes must be between 1 and 120")
    out = measure(args.minutes)
    print_report(out)
    if args.save:
        loadtest.save_figures(args.save, "long_audio", {k: v for k, v in out.items() if k != "segments"},
                              f"scripts/longaudio.py --minutes {args.minutes:g}")
    if args.json:
        print(json.dumps(out))
    return 0 if out["secret_heard_at_s"] and out["answers"][0]["answer"] else 1


if __name__ == "__main__":
    sys.exit(main())
