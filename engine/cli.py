"""`python -m engine ...`: a thin command line over the engine. Bad input exits 2 with one line on stderr."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from .config import MODES, EngineConfig, SamplingOptions, modes_help
from .errors import LtuError
from .weights import DEFAULT_LLM, LLMS

EXIT_BAD_INPUT = 2


def _engine_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("models")
    g.add_argument("--whisper", default=None, help="base (default), tiny.en, or a Whisper model directory")
    g.add_argument("--llm", default=None, help=f"{' | '.join(LLMS)} (default {DEFAULT_LLM}; others once fetched "
                                                 "by `weights --get NAME`), or a GGUF file")
    g.add_argument("--adapter", default=None, help="TLTR + projector safetensors (default: the trained one in weights/)")
    g.add_argument("--lora", default=None, help="a GGUF LoRA adapter for the LLM")
    g.add_argument("--perception", default=None,
                   help="sound-event and voice heads, safetensors (default: the one in weights/ for this Whisper)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument("--gpu-layers", type=int, default=None, help="llama.cpp layers on the GPU (default: all on CUDA)")
    g.add_argument("--threads", type=int, default=None, help="fixed thread count (default: the free cores, per stage)")
    g.add_argument("--extra-bufts", choices=["auto", "on", "off"], default="auto",
                   help="llama.cpp's repacked/AMX weight buffers (auto: as a child-process probe found safe)")
    g.add_argument("--max-windows", type=int, default=EngineConfig.max_windows, help="10 s windows given to the LLM")
    g.add_argument("--max-duration", type=float, default=EngineConfig.max_duration, help="refuse longer audio (s)")
    g.add_argument("--analyze-timeout", type=float, default=EngineConfig.analyze_timeout,
                   help="time limit (s) for transcribing and encoding one clip")
    s = parser.add_argument_group("answer")
    s.add_argument("--mode", choices=list(MODES), default="soft", help=modes_help())
    s.add_argument("--temperature", type=float, default=SamplingOptions.temperature)
    s.add_argument("--max-tokens", type=int, default=SamplingOptions.max_tokens)
    s.add_argument("--seed", type=int, default=SamplingOptions.seed)
    s.add_argument("--answer-timeout", type=float, default=SamplingOptions.timeout,
                   help="seconds after which an answer stops generating")


def _config(args: argparse.Namespace) -> EngineConfig:
    sampling = SamplingOptions(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
                               timeout=args.answer_timeout)
    return EngineConfig.given(whisper=args.whisper, llm=args.llm, adapter=args.adapter, lora=args.lora,
                              perception=args.perception, mode=args.mode, device=args.device,
                              n_gpu_layers=args.gpu_layers, n_threads=args.threads,
                              llama_extra_bufts={"auto": None, "on": True, "off": False}[args.extra_bufts],
                              max_windows=args.max_windows, max_duration=args.max_duration,
                              analyze_timeout=args.analyze_timeout, sampling=sampling)


def _load(args: argparse.Namespace):
    from .pipeline import Engine

    return Engine(_config(args))


def _result(engine, context, stream, mode: str, load_seconds: float | None = None) -> dict:
    answer = stream.read()
    timings = {**context.timings, **stream.timings}
    if load_seconds is not None:
        timings["load"] = load_seconds
    return {"answer": answer, **context.to_dict(), "mode": mode, "windows": [[w.start, w.end] for w in stream.windows],
            "timings": {k: round(v, 4) for k, v in timings.items()},
            "tokens": {"prompt": stream.stats.prompt_units, "decoded": stream.stats.decoded_units,
                       "generated": stream.stats.generated_tokens, "stop": stream.stats.stop_reason},
            "models": engine.models, "warnings": engine.warnings(mode, context)}


def cmd_ask(args: argparse.Namespace) -> int:
    from .audio import load_audio

    clock = time.perf_counter()
    samples = load_audio(args.audio, args.max_duration)  # bad input fails here, before models load
    decode_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    engine = _load(args)
    load_seconds = time.perf_counter() - clock
    context = engine.analyze(samples, progress=not args.json and sys.stderr.isatty())
    context.timings["decode"] = decode_seconds
    stream = engine.ask(context, args.question, mode=args.mode)
    if args.json:
        print(json.dumps(_result(engine, context, stream, args.mode, load_seconds), ensure_ascii=False))
        return 0
    for warning in engine.warnings(args.mode, context):
        print(f"note: {warning}", file=sys.stderr)
    for piece in stream:
        print(piece, end="", flush=True)
    print()
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    lines = Path(args.input).read_text(encoding="utf-8").splitlines() if Path(args.input).is_file() else None
    if lines is None:
        raise _BadInput(f"batch input not found: {args.input}")
    engine = _load(args)
    failed = 0
    with open(args.output, "w", encoding="utf-8") as out:  # one line per input, written as soon as it is done
        for number, line in enumerate(tqdm(lines, desc="batch", unit="clip"), start=1):
            if not line.strip():
                continue
            record: dict = {"id": None}
            try:
                request = json.loads(line)
                if not isinstance(request, dict) or "audio" not in request or "question" not in request:
                    raise _BadInput("each line needs \"audio\" and \"question\"")
                record["id"] = request.get("id", number)
                mode = request.get("mode") or args.mode
                if mode not in MODES:
                    raise _BadInput(f"mode must be one of {', '.join(MODES)}")
                audio = Path(request["audio"])
                if not audio.is_absolute():
                    audio = Path(args.input).resolve().parent / audio
                context = engine.analyze(audio)
                record.update(_result(engine, context, engine.ask(context, str(request["question"]), mode=mode), mode))
            except json.JSONDecodeError as error:
                failed += 1
                record.update(id=number, error=f"line {number} is not JSON: {error.msg}")
            except LtuError as error:
                failed += 1
                record["error"] = str(error)
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
    print(f"{len([l for l in lines if l.strip()]) - failed} answered, {failed} failed -> {args.output}", file=sys.stderr)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from .audio import load_audio

    samples = load_audio(args.audio, args.max_duration)
    engine = _load(args)
    context = engine.analyze(samples, progress=True)
    print(f"Heard ({context.duration:.1f} s, {context.transcript.language}): {context.transcript.text or '(no speech)'}")
    if context.events:
        print("Sounds: " + ", ".join(f"{e.label} {e.score:.2f}" for e in context.events))
    if context.voice:
        print(f"Voice: {context.voice.describe()}")
    for warning in engine.warnings(args.mode, context):
        print(f"note: {warning}")
    print(f"Ask about the clip. Commands: /mode {'|'.join(MODES)}, /reset, /quit")
    history: list[tuple[str, str]] = []
    mode = args.mode
    while True:
        try:
            question = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if question in ("/quit", "/exit"):
            return 0
        if question == "/reset":
            history.clear()
            print("(history cleared)")
            continue
        if question.startswith("/mode"):
            choice = question.split(maxsplit=1)[-1]
            if choice in MODES:
                mode = choice
                history.clear()
                print(f"(mode {mode}; history cleared)")
            else:
                print(f"(modes: {', '.join(MODES)})")
            continue
        if not question:
            continue
        print("llm> ", end="", flush=True)
        stream = engine.ask(context, question, history, mode=mode)
        for piece in stream:
            print(piece, end="", flush=True)
        print(f"\n     [{stream.stats.decoded_units} of {stream.stats.prompt_units} prompt positions decoded, "
              f"{stream.stats.tokens_per_second:.1f} tok/s]")
        history.append((question, stream.text.strip()))


def cmd_weights(args: argparse.Namespace) -> int:
    from .weights import get_llm, report

    for name in args.get or []:
        print(f"{name}: {get_llm(name)}")
    rows, ok = report(args.whisper, args.llm, verify=args.verify, convert=args.convert)
    width = max(len(r[0]) for r in rows)
    for component, where, note in rows:
        print(f"{component:<{width}}  {where}\n{'':<{width}}  ({note})")
    return 0 if ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import asr_comparison, run

    if args.asr:
        asr_comparison(_config(args), args.limit)
    else:
        run(_config(args), Path(args.audio) if args.audio else None, args.question, contended=args.contended,
            repeat=args.repeat)
    return 0


class _BadInput(LtuError):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description="LTU-AS: ask questions about audio, offline.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ask", help="answer one question about one clip")
    p.add_argument("audio")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print one JSON object with answer, transcript, events, timings")
    _engine_args(p)
    p.set_defaults(run=cmd_ask)
    p = sub.add_parser("batch", help="answer a JSONL file of {id, audio, question, mode} lines")
    p.add_argument("input")
    p.add_argument("output")
    _engine_args(p)
    p.set_defaults(run=cmd_batch)
    p = sub.add_parser("chat", help="a multi-turn chat about one clip in the terminal")
    p.add_argument("audio")
    _engine_args(p)
    p.set_defaults(run=cmd_chat)
    p = sub.add_parser("weights", help="show which model files resolve, convert what is missing")
    p.add_argument("--whisper", default=None)
    p.add_argument("--llm", default=None)
    p.add_argument("--convert", action="store_true", help="convert Whisper weights that are not cached yet")
    p.add_argument("--verify", action="store_true", help="re-check every cached file's SHA-256")
    p.add_argument("--get", action="append", metavar="NAME", choices=list(LLMS),
                   help=f"download and join a named LLM once ({', '.join(n for n, p in LLMS.items() if p.split)})")
    p.set_defaults(run=cmd_weights)
    p = sub.add_parser("bench", help="time each stage on a 10 s clip, in soft, tags and cascade modes")
    p.add_argument("--audio", default=None, help="a clip (default: the bundled example)")
    p.add_argument("--question", default="What can be heard in this recording?")
    p.add_argument("--contended", action="store_true",
                   help="measure again beside one CPU-bound process and print both, side by side")
    p.add_argument("--asr", action="store_true", help="language from the shared encoder pass against whisper.cpp's "
                                                      "own detection: WER and time on the speech sets")
    p.add_argument("--repeat", type=int, default=1, help="report the median of N measurements")
    p.add_argument("--limit", type=int, default=None, help="--asr: at most N clips per set")
    _engine_args(p)
    p.set_defaults(run=cmd_bench)
    parser.add_argument("--debug", action="store_true", help="show the full traceback behind a one-line error")
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (LtuError, ValueError) as error:  # ValueError: invalid option values (sampling, limits)
        if args.debug:
            traceback.print_exc()
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
