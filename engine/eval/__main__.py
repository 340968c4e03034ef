"""python -m engine.eval [--tasks ...] [--sets ...] [--limit N] [--modes soft,tags,cascade] [--json] [--out docs]

Runs the evaluation tasks on clips no training step saw and writes <out>/RESULTS.md, <out>/results/*.png and
<out>/results/summary.json (the same numbers, for machines; also printed with --json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def _csv(choices):
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (comma-separated), not {text!r}")
        return items
    return parse


def main(argv: list[str] | None = None) -> int:
    from ..config import MODES, EngineConfig
    from .run import ALL_TASKS, default_cache
    from .sets import SET_NAMES

    parser = argparse.ArgumentParser(prog="python -m engine.eval", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=_csv(ALL_TASKS), default=list(ALL_TASKS),
                        help=f"comma-separated, from {','.join(ALL_TASKS)} (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="at most N clips per task and set (default: all)")
    parser.add_argument("--modes", type=_csv(list(MODES)), default=list(MODES),
                        help=f"comma-separated, from {','.join(MODES)} (default: all)")
    parser.add_argument("--sets", type=_csv(SET_NAMES), default=list(SET_NAMES),
                        help=f"comma-separated evaluation sets, from {','.join(SET_NAMES)} (default: all)")
    parser.add_argument("--json", action="store_true", help="print the JSON summary on stdout")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where RESULTS.md and results/ go")
    parser.add_argument("--cache", type=Path, default=None, help=f"answer cache folder (default {default_cache()})")
    parser.add_argument("--data", type=Path, default=None, help="the data builder's output (validation sets)")
    parser.add_argument("--whisper", default=None, help="Whisper model (as EngineConfig.whisper; default base)")
    parser.add_argument("--llm", default=None, help="LLM GGUF path (default: the embedded one)")
    parser.add_argument("--adapter", default=None, help="adapter safetensors (default: the matching one in weights/)")
    parser.add_argument("--lora", default=None, help="LoRA GGUF (default: the one beside the adapter)")
    parser.add_argument("--perception", default=None, help="perception safetensors (default: the one in weights/)")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="answer length limit (default: the engine's, 200); the other sampling options stay "
                             "the engine defaults")
    parser.add_argument("--penalize-prompt", action="store_true",
                        help="the repetition penalty counts the prompt's tokens too (llama.cpp's way; the engine "
                             "penalises only the answer's)")
    parser.add_argument("--max-windows", type=int, default=EngineConfig.max_windows,
                        help="soft mode: 10 s windows of acoustic tokens per question (as EngineConfig.max_windows)")
    parser.add_argument("--threads", type=int, default=None,
                        help="fixed CPU threads for the engine (default: per stage, the cores other work leaves free)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")

    from .report import write
    from .run import Runner
    from .sets import all_sets

    config = EngineConfig.given(whisper=args.whisper, llm=args.llm, adapter=args.adapter, lora=args.lora,
                                perception=args.perception, n_threads=args.threads, max_windows=args.max_windows)
    if args.max_tokens is not None:
        config = config.replace(sampling=dataclasses.replace(config.sampling, max_tokens=args.max_tokens))
    if args.penalize_prompt:
        config = config.replace(sampling=dataclasses.replace(config.sampling, penalize_prompt=True))
    runner = Runner(config, args.cache or default_cache(), progress=not args.quiet)
    try:
        sets = {name: s for name, s in all_sets(args.data).items() if name in args.sets}
        results = runner.evaluate(args.tasks, args.modes, args.limit, sets)
    finally:
        runner.close()
    command = "python -m engine.eval " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    args.out.mkdir(parents=True, exist_ok=True)
    data = write(results, args.out, command.strip(), REPO)
    if args.json:
        print(json.dumps(data, indent=1, ensure_ascii=False))
    else:
        print(f"wrote {args.out / 'RESULTS.md'} ({len(results.rows)} numbers; {results.answered} answers generated, "
              f"{results.cached} cached)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
