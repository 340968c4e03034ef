"""python -m engine.eval.compare [--llms a,b] [--limit N] [--out docs]: the named LLMs side by side in `tags` and
`cascade` modes (the modes that need no adapter trained for the LLM) on the new-source sets, with what each
costs on this CPU; writes <out>/LLMS.md and <out>/results/llms.json. Answers come from the eval's cache where the
same models already answered the same question on the same clip; cost is measured afresh.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ..config import EngineConfig
from ..weights import LLMS, installed_llm
from .report import _table, fmt, git_version
from ..bench import EXAMPLE, median_of
from ..bench import measure as timed
from .run import COST_QUESTION, Runner, default_cache
from .sets import all_sets

REPO = Path(__file__).resolve().parent.parent.parent
TASKS = ("asr", "sound", "gender", "joint", "instruction", "cost")
SETS = ("flite-speech", "deb-events", "flite-deb-mix")
MODES = ("tags", "cascade")
BUDGET_SECONDS = 3.0  # the default should answer a 10 s clip within this, end to end, on this CPU
LATENCY = "whole answer, end to end, 10 s clip (s), tags"  # the row the budget applies to
# (label, task, metric, source, mode, lower is better): the rows of the table
ROWS = [
    ("what is said: answer WER, tags", "asr", "WER", "flite-speech", "tags", True),
    ("what is said: answer WER, cascade", "asr", "WER", "flite-speech", "cascade", True),
    ("what is said: Whisper's own WER", "asr", "WER", "flite-speech", "whisper", True),
    ("which sound: accuracy, tags", "sound", "accuracy", "deb-events", "tags", False),
    ("male or female: accuracy, tags", "gender", "accuracy", "flite-speech", "tags", False),
    ("open question on a mixture: speech and sound both right, tags", "joint", "both right", "flite-deb-mix", "tags",
     False),
    ("open question on a mixture: speech right, cascade", "joint", "speech right", "flite-deb-mix", "cascade", False),
    ("follows the instruction, tags", "instruction", "follows instruction", "flite-deb-mix", "tags", False),
    ("follows the instruction, cascade", "instruction", "follows instruction", "flite-deb-mix", "cascade", False),
    ("listening (decode, Whisper, perception), 10 s clip (s)", "bench", "listen (analyze)", "", "tags", True),
    ("first token, end to end, 10 s clip (s), tags", "bench", "tags: first token, end to end", "", "tags", True),
    ("whole answer, end to end, 10 s clip (s), tags", "bench", "tags: end to end", "", "tags", True),
    ("whole answer, end to end, 2-4 s mixtures (s), tags", "cost", "latency per answer (s)", "flite-deb-mix", "tags",
     True),
    ("generation tokens/s, tags", "cost", "generation tokens/s", "flite-deb-mix", "tags", False),
    ("peak RSS (MB), tags", "cost", "peak RSS (MB)", "flite-deb-mix", "tags", True),
]


def measure(name: str, limit: int, cache: Path, progress: bool, repeat: int = 3) -> dict:
    """One LLM's numbers: {row label: value}, with the evaluation's own record of models and machine; the
    bench's stage timings on its 10 s clip, median of `repeat`."""
    runner = Runner(EngineConfig(llm=name), cache, progress=progress)
    try:
        sets = {n: s for n, s in all_sets().items() if n in SETS}
        results = runner.evaluate(TASKS, MODES, limit, sets)
        found = {(r.task, r.metric, r.source, r.mode): {"value": round(float(r.value), 3), "n": r.n}
                 for r in results.rows}
        bench = median_of([timed(runner.engine, EXAMPLE, COST_QUESTION, ("tags",)) for _ in range(repeat)])
    finally:
        runner.close()
    found |= {("bench", metric, "", "tags"): {"value": round(value, 3), "n": repeat} for metric, value in bench.items()}
    values = {label: found.get((task, metric, source, mode)) or found.get((task, f"process {metric}", source, mode))
              for label, task, metric, source, mode, _ in ROWS}
    return {"values": values, "models": results.models, "settings": results.settings, "date": results.date,
            "answered": results.answered, "cached": results.cached}


def _value(measured: dict[str, dict], name: str, label: str) -> float:
    cell = measured[name]["values"][label]
    return float("inf") if cell is None else cell["value"]


def within_budget(measured: dict[str, dict]) -> list[str]:
    """The LLMs that answer the 10 s clip within BUDGET_SECONDS end to end."""
    return [n for n in measured if _value(measured, n, LATENCY) <= BUDGET_SECONDS]


def choose(measured: dict[str, dict]) -> str:
    """The best (lowest tags-mode WER, then the most mixtures right) of the LLMs that answer a 10 s clip
    within BUDGET_SECONDS end to end; the fastest, if none does."""
    fast = within_budget(measured)
    if not fast:
        return min(measured, key=lambda n: _value(measured, n, LATENCY))
    return min(fast, key=lambda n: (_value(measured, n, ROWS[0][0]), -_value(measured, n, ROWS[5][0])))


def write(measured: dict[str, dict], out: Path, command: str, limit: int) -> Path:
    from .. import native

    names = list(measured)
    loads = ", ".join(f"{n} {measured[n]['settings']['load_average_at_start']}-{measured[n]['settings']['load_average_at_end']}"
                      for n in names)
    lines = ["# LLMs compared", "",
             f"Generated by `{command}` on {measured[names[0]]['date']} (UTC), code {git_version(REPO)}. "
             "Written by the command: do not edit; rerun it.", "",
             f"- Machine: {native.cpu().summary()}; {measured[names[0]]['settings']['threads']}; 1-minute load "
             f"average at the start and end of each LLM's run: {loads}.",
             f"- Clips: the first {limit} of each new-source set per task (flite speech, Debian sound effects, flite "
             "speech over them; docs/RESULTS.md describes the sets). Nothing here was trained on them.",
             "- `tags` gives the LLM the perception model's words (sounds, voice, music) and the transcript; `cascade` "
             "the transcript only. Neither needs an adapter trained for the LLM, so every GGUF can be compared; "
             "`soft` (acoustic tokens) exists for SmolLM2-135M only, whose adapter is in weights/.",
             "- Cost: one answer to \"What is said, and what else can be heard?\", from listening to the last "
             f"token, from an empty KV cache: on the bench's 10 s clip ({EXAMPLE.name}, median of n runs) and as "
             "the mean over the 2-4 s mixture clips of the eval's cost task; the peak RSS is that of the whole "
             "process (Whisper, perception, LLM).",
             "- With n clips one clip moves an accuracy by 1/n: small differences are noise.", ""]
    header = ["", *[f"{n} ({LLMS[n].size / 1e6:.0f} MB)" for n in names]]
    rows = []
    for label, *_rest in ROWS:
        cells = [measured[n]["values"][label] for n in names]
        n = next((c["n"] for c in cells if c), "")
        rows.append([f"{label} (n={n})", *[fmt(c["value"]) if c else "" for c in cells]])
    lines += _table(header, rows)
    best = choose(measured)
    fast = within_budget(measured)
    if fast:
        verdict = (f"Within {BUDGET_SECONDS:.0f} s end to end on the 10 s clip: {', '.join(fast)}; the best of those "
                   f"(the lowest tags-mode WER, then the most mixtures right): **{best}**.")
    else:
        verdict = (f"None answers the 10 s clip within {BUDGET_SECONDS:.0f} s end to end on this CPU; the fastest: "
                   f"**{best}**.")
    lines += ["", verdict, ""]
    lines += ["What each is: " + "; ".join(f"`{n}`: {LLMS[n].title}, {LLMS[n].notes}" for n in names) + ".", ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(exist_ok=True)
    (out / "results" / "llms.json").write_text(json.dumps({"command": command, "llms": measured, "best": best},
                                                          indent=1, ensure_ascii=False))
    (out / "LLMS.md").write_text("\n".join(lines))
    return out / "LLMS.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.eval.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--llms", default=",".join(LLMS), help=f"comma-separated named LLMs (default: {','.join(LLMS)}"
                                                               "; those not installed are skipped)")
    parser.add_argument("--limit", type=int, default=12, help="clips per task and set (default 12)")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--cache", type=Path, default=None, help=f"answer cache folder (default {default_cache()})")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.llms.split(",") if n.strip()]
    if unknown := [n for n in names if n not in LLMS]:
        parser.error(f"unknown LLM {unknown[0]!r}: choose from {', '.join(LLMS)}")
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    missing = [n for n in names if installed_llm(LLMS[n]) is None]
    for name in missing:
        print(f"skipping {name}: not installed (python -m engine weights --get {name})", file=sys.stderr)
    names = [n for n in names if n not in missing]
    if not names:
        parser.error("none of the LLMs is installed")
    measured = {}
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        measured[name] = measure(name, args.limit, args.cache or default_cache(), not args.quiet)
    command = "python -m engine.eval.compare " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"wrote {write(measured, args.out, command.strip(), args.limit)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
