"""`python -m engine bench`: time every stage on one 10 s clip, each of `soft`, `tags` and `cascade` in one run.

    --contended   the same measurement again beside one CPU-bound process, side by side with the idle one
    --repeat N    the median of N measurements of each
    --asr         the analysis with the spoken language taken from the acoustic path's encoder pass (as shipped)
                  against whisper.cpp detecting it with an encoder pass of its own: WER and seconds per stage
                  on the speech evaluation sets, in one run
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .config import EngineConfig

EXAMPLE = Path(__file__).resolve().parent.parent / "app" / "examples" / "speech_over_rain.ogg"
TIMED_MODES = ("soft", "tags", "cascade")


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-memory high-water mark of this process (Linux: clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process's resident-memory high-water mark (since the last reset_peak_rss), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def competing_processes(n: int):
    """`n` single-threaded busy loops beside the measurement: the load of a shared 2-core machine."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5 if n else 0.0)  # let the scheduler see them before the first reading
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def measure(engine, audio: Path, question: str, modes: tuple[str, ...] = TIMED_MODES) -> dict[str, float]:
    """One analysis and one answer per mode, from an empty KV cache: seconds per stage and end to end."""
    context = engine.analyze(audio)
    t = context.timings
    row = {"decode audio": t["decode"], "Whisper encoder, all layers (+ language)": t["encoder"],
           "ASR (whisper.cpp)": t["asr"], "TLTR (perception + adapter)": t["tltr"]}
    listen = t["decode"] + t["encoder"] + t["asr"] + t["tltr"]  # every mode's analysis (the cascade's language too)
    row["listen (analyze)"] = listen
    for mode in modes:
        engine.llm.reset()
        stream = engine.ask(context, question, mode=mode)
        stream.read()
        s = stream.stats
        row |= {f"{mode}: prompt positions decoded": s.decoded_units, f"{mode}: prefill": s.prefill_seconds,
                f"{mode}: tokens generated": s.generated_tokens, f"{mode}: generate": s.generate_seconds,
                f"{mode}: tokens/s": s.tokens_per_second, f"{mode}: llama.cpp threads": s.threads,
                f"{mode}: first token, end to end": listen + s.first_token_seconds,
                f"{mode}: end to end": listen + s.prefill_seconds + s.generate_seconds}
    return row


def median_of(rows: list[dict[str, float]]) -> dict[str, float]:
    """Each row's median over repeated measurements."""
    return {name: float(statistics.median(row[name] for row in rows)) for name in rows[0]}


def run(config: EngineConfig, audio: Path | None, question: str, contended: bool = False, repeat: int = 1) -> dict:
    from . import native
    from .pipeline import Engine

    audio = audio or EXAMPLE
    clock = time.perf_counter()
    engine = Engine(config)
    load_seconds = time.perf_counter() - clock
    engine.analyze(audio)  # warm-up: first calls allocate buffers and pick kernels
    columns = {"idle": median_of([measure(engine, audio, question) for _ in range(repeat)])}
    if contended:
        with competing_processes(1):
            columns["1 busy process"] = median_of([measure(engine, audio, question) for _ in range(repeat)])
    print(f"clip: {audio.name}; models: {engine.models['whisper']}, {engine.models['llm']}, device "
          f"{engine.models['device']}, {config.threads}; median of {repeat}")
    print(f"CPU: {native.cpu().summary()}; llama.cpp CPU variant {engine.llm.cpu_variant}, extra buffer types "
          f"{'on' if engine.llm.extra_bufts else 'off'}")
    names = list(columns["idle"])
    header = f"{'stage':<44}" + "".join(f"{name:>16}" for name in columns)
    if contended:
        header += f"{'busy / idle':>13}"
    print(f"{'model load':<44}{load_seconds:>16.3f}")
    print(header)
    for name in names:
        values = [column[name] for column in columns.values()]
        line = f"{name:<44}" + "".join(f"{v:>16.3f}" for v in values)
        if contended and values[0]:
            line += f"{values[1] / values[0]:>13.2f}"
        print(line)
    print(f"{'peak RSS (MB)':<44}{peak_rss_mb():>16.0f}")
    return {"load_seconds": load_seconds, "columns": columns, "peak_rss_mb": peak_rss_mb()}


def asr_comparison(config: EngineConfig, limit: int | None) -> dict:
    """Both ways of finding the language, through the engine's own `analyze`, on every speech evaluation set
    that can be built here (flite speech and speech over sounds; the validation split once it is built)."""
    from . import native
    from .eval.sets import all_sets
    from .eval.text import corpus_wer
    from .pipeline import Engine

    engine = Engine(config)
    shared = engine.language_id
    if shared is None:
        raise SystemExit("--asr compares ways of detecting the language: it needs a multilingual Whisper and no "
                         "--language")
    ways = {"language from the shared encoder pass": shared, "whisper.cpp detects the language": None}
    print(f"CPU: {native.cpu().summary()}; {config.threads}")
    out = {}
    for name, evalset in all_sets().items():
        if evalset.kind not in ("speech", "mix"):
            continue
        try:
            clips = [c for c in evalset.clips(limit) if "text" in c.labels]
        except (FileNotFoundError, RuntimeError):
            continue  # the validation split before `python -m engine.data build`, or no flite
        if not clips:
            continue
        engine.language_id = shared
        engine.analyze(clips[0].path)  # warm-up
        for way, language_id in ways.items():
            engine.language_id = language_id
            contexts = [engine.analyze(c.path) for c in clips]
            wer = corpus_wer([(c.labels["text"], x.transcript.text) for c, x in zip(clips, contexts)])
            seconds = {stage: sum(x.timings[stage] for x in contexts) / len(clips) for stage in ("encoder", "asr")}
            languages = sum(x.transcript.language == "en" for x in contexts)
            out[(name, way)] = {"clips": len(clips), "wer": wer, **seconds}
            print(f"{name:<14} {len(clips):>3} clips  {way:<38} WER {wer:.3f}  English {languages}/{len(clips)}  "
                  f"encoder {seconds['encoder']:.2f} s + ASR {seconds['asr']:.2f} s = "
                  f"{seconds['encoder'] + seconds['asr']:.2f} s per clip", flush=True)
    engine.language_id = shared
    return out
