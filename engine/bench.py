"""`python -m engine bench`: time every stage on one 10 s clip and compare `soft` with `cascade` in one run."""

from __future__ import annotations

import resource
import time
from pathlib import Path

from .config import EngineConfig

EXAMPLE = Path(__file__).resolve().parent.parent / "app" / "examples" / "speech_over_rain.ogg"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run(config: EngineConfig, audio: Path | None, question: str) -> dict:
    from .pipeline import Engine

    audio = audio or EXAMPLE
    clock = time.perf_counter()
    engine = Engine(config)
    load_seconds = time.perf_counter() - clock
    engine.analyze(audio)  # warm-up: first calls allocate buffers and pick kernels
    context = engine.analyze(audio)
    answers = {}
    for mode in ("soft", "cascade"):
        engine.llm.reset()  # both modes start from an empty KV cache
        stream = engine.ask(context, question, mode=mode)
        stream.read()
        answers[mode] = stream
    t = context.timings
    listen_soft = t["decode"] + t["asr"] + t["encoder"] + t["tltr"]
    listen_cascade = t["decode"] + t["asr"]  # the cascade needs no encoder or TLTR

    def end_to_end(mode: str, listen: float) -> float:
        s = answers[mode].stats
        return listen + s.prefill_seconds + s.generate_seconds

    rows = [("model load", load_seconds), ("decode audio", t["decode"]), ("ASR (whisper.cpp)", t["asr"]),
            ("Whisper encoder, all layers", t["encoder"]), ("TLTR + projector + tagger", t["tltr"])]
    for mode in ("soft", "cascade"):
        s = answers[mode].stats
        rows += [(f"{mode}: prefill ({s.decoded_units} positions)", s.prefill_seconds),
                 (f"{mode}: first token", s.first_token_seconds),
                 (f"{mode}: generate ({s.generated_tokens} tokens)", s.generate_seconds)]
    soft_e2e, cascade_e2e = end_to_end("soft", listen_soft), end_to_end("cascade", listen_cascade)
    print(f"clip: {audio.name} ({context.duration:.1f} s); models: {engine.models['whisper']}, {engine.models['llm']}, "
          f"device {engine.models['device']}, {config.threads} threads")
    print(f"{'stage':<44} {'seconds':>8}")
    for name, seconds in rows:
        print(f"{name:<44} {seconds:>8.3f}")
    for mode in ("soft", "cascade"):
        print(f"{mode + ': tokens/s':<44} {answers[mode].stats.tokens_per_second:>8.1f}")
    print(f"{'soft end-to-end':<44} {soft_e2e:>8.3f}")
    print(f"{'cascade end-to-end':<44} {cascade_e2e:>8.3f}")
    print(f"{'soft / cascade end-to-end':<44} {soft_e2e / cascade_e2e:>8.2f}")
    print(f"{'peak RSS (MB)':<44} {_peak_rss_mb():>8.0f}")
    return {"rows": rows, "soft_e2e": soft_e2e, "cascade_e2e": cascade_e2e, "peak_rss_mb": _peak_rss_mb()}
