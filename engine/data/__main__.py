"""CLI: a thin wrapper over `engine.data.build` and `engine.data.instruct`.

    python -m engine.data build [--out DIR] [--limit N] [--packages P ...] [--source-dir DIR ...]
    python -m engine.data instruct [--data DIR] [--clips N] [--llm PATH]
    python -m engine.data labels
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ModelError
from .build import DEFAULT_PACKAGES, build, default_out_dir
from .instruct import InstructOptions, instruct
from .labels import AUDIOSET_NAME, SOUND_LABELS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build or top up the dataset (finished files are reused)")
    b.add_argument("--out", default=None, help=f"output folder (default {default_out_dir()})")
    b.add_argument("--limit", type=int, default=None, help="at most N event clips per package, N speech, N mixtures")
    b.add_argument("--packages", nargs="*", default=None, metavar="P",
                   help=f"Debian packages to read (default: all {len(DEFAULT_PACKAGES)} with rules; none with no names)")
    b.add_argument("--source-dir", action="append", default=[], metavar="DIR",
                   help="also read a local folder, labelled by file-name keywords (repeatable)")
    b.add_argument("--speech", type=int, default=1000, help="number of espeak-ng speech clips")
    b.add_argument("--music", type=int, default=300, help="number of fluidsynth music clips (needs fluidsynth)")
    b.add_argument("--mixtures", type=int, default=1000, help="number of speech+event mixtures")
    b.add_argument("--max-per-label", type=int, default=80, help="event clips per (package, label)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--clean", action="store_true", help="delete built audio and JSON first (keeps downloads)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    i = sub.add_parser("instruct", help="add LLM-written open questions (task open_aig) to a built dataset")
    i.add_argument("--data", default=None, help=f"dataset folder (default {default_out_dir()})")
    i.add_argument("--clips", type=int, default=300, help="at most N clips, spread over kinds and splits")
    i.add_argument("--llm", default=None, metavar="PATH", help="a GGUF model (default: SmolLM2-135M-Instruct)")
    i.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("labels", help="print the sound classes, each with its AudioSet name")
    args = parser.parse_args(argv)

    if args.command == "labels":
        print("\n".join(f"{label}\t{AUDIOSET_NAME[label]}" for label in SOUND_LABELS))
        return 0
    if args.command == "instruct":
        options = InstructOptions(data=args.data or default_out_dir(), clips=args.clips, llm=args.llm,
                                  threads=args.threads, seed=args.seed, progress=not args.quiet)
        try:
            summary = instruct(options)
        except (ModelError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(json.dumps({k: v for k, v in summary.items() if k != "rejected_examples"}, indent=1))
        return 0
    manifest = build(
        args.out, packages=args.packages, source_dirs=args.source_dir, limit=args.limit, n_speech=args.speech,
        n_mix=args.mixtures, n_music=args.music, max_per_label=args.max_per_label, seed=args.seed, clean=args.clean,
        progress=not args.quiet,
    )
    summary = {k: manifest[k] for k in ("build_seconds", "clips", "records")}
    print(json.dumps(summary, indent=1))
    if manifest["sources_in_both_splits"]:
        print("error: sources in both splits:", manifest["sources_in_both_splits"][:10], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
