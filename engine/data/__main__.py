"""CLI: a thin wrapper over `engine.data.build`.

    python -m engine.data build [--out DIR] [--limit N] [--packages P ...] [--source-dir DIR ...]
    python -m engine.data labels
"""

from __future__ import annotations

import argparse
import json
import sys

from .build import DEFAULT_PACKAGES, build, default_out_dir
from .labels import SOUND_LABELS


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
    sub.add_parser("labels", help="print the sound label vocabulary")
    args = parser.parse_args(argv)

    if args.command == "labels":
        print("\n".join(SOUND_LABELS))
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
