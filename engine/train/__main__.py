"""python -m engine.train --stage N [...]: one stage of the curriculum, then ships it (stage 0: the perception
model, weights/perception_whisper-<name>.safetensors; stages 1-3: the LLM adapter and LoRA); `--stage all` runs
0-3 and ships both."""

import argparse
import sys
from pathlib import Path

from .config import STAGES, TrainConfig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__)
    parser.add_argument("--stage", required=True, help="0, 1, 2, 3, or all")
    parser.add_argument("--objective", choices=["answer", "invariance"], default="answer")
    parser.add_argument("--teacher", default=None, help="invariance teacher: a named LLM or a GGUF path "
                                                        f"(default {TrainConfig.teacher})")
    parser.add_argument("--words-dropout", type=float, default=None,
                        help="objective answer: share of training prompts without the heard words "
                             f"(default {TrainConfig.words_dropout})")
    parser.add_argument("--tokens-dropout", type=float, default=None,
                        help="objective answer: share of training prompts without the acoustic tokens, as mode tags "
                             f"(default {TrainConfig.tokens_dropout})")
    parser.add_argument("--asr-share", type=float, default=None,
                        help="stage 3: share of each batch asked what is said (default: its natural share)")
    parser.add_argument("--start-from", type=Path, default=None,
                        help="stages 2-3: start from this adapter (its .lora.gguf beside it), e.g. the shipped one in "
                             "weights/, instead of the previous stage's checkpoint in the cache")
    parser.add_argument("--data", type=Path, default=None, help="the data builder's output (default: cache)")
    parser.add_argument("--features", type=Path, default=None, help="feature cache directory")
    parser.add_argument("--out", type=Path, default=None, help="where the shipped files go (default: weights/)")
    parser.add_argument("--whisper", default="base")
    parser.add_argument("--llm", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from .loop import ship, train

    stages = sorted(STAGES) if args.stage == "all" else [int(args.stage)]
    if args.start_from is not None:
        if args.stage not in ("2", "3"):
            parser.error("--start-from is for --stage 2 or 3")
        if not args.start_from.is_file() or not args.start_from.with_suffix(".lora.gguf").is_file():
            parser.error(f"--start-from: {args.start_from} and its .lora.gguf beside it must both exist")
    options = {k: v for k, v in vars(args).items() if k not in ("stage", "out") and v is not None}
    try:  # every stage's options are checked before the first one trains
        configs = [TrainConfig(stage=stage, **options, **({"out": args.out} if args.out else {})) for stage in stages]
    except ValueError as error:
        parser.error(str(error))
    for cfg in configs:
        train(cfg)
    ship(configs[-1], stages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
