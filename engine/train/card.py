"""The model card of shipped weights (weights/README.md), written from the data manifest and training logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .config import STAGES


def write_card(path: Path, stem: str, logs: dict, manifest: dict, info: dict) -> None:
    invariance = info["objective"] == "invariance"
    command = info.get("recipe") or "python -m engine.train --stage all"
    heard = ("the transcript and the question (no heard words: under modal invariance the tokens must carry them); "
             f"the targets are {info['teacher']}'s answers to the clip's description as text, the ground truth "
             "where it missed a closed question" if invariance else
             "its first turn names the events the perception model hears (as the engine does at inference), the "
             "transcript, and the question")
    lines = [f"# Shipped weights: `{stem}`", "",
             "Written by `python -m engine.train` (do not edit by hand). Reproduce everything with "
             f"`{command}` (it builds the data first when the cache has none).", "",
             f"- Whisper: `{info['whisper']}`; LLM: `{info['llm']}` (sha256 `{info['llm_sha256'][:12]}`); "
             f"prompt format `{info['prompt_format']}`", f"- Training: {info['trained']}",
             f"- Files: `{stem}.safetensors` (TLTR + projector)"
             + (f", `{stem}.lora.gguf` (LoRA r {info['lora_r']}, alpha {info['lora_alpha']}, q/v)"
                if info.get("lora") else ""),
             "- Sampling: class-balanced within each task (every sound class as often as the commonest; "
             "tasks keep their natural share unless the command gives `--asr-share`)",
             f"- Prompt: 25 acoustic tokens, then the chat: {heard}",
             f"- Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "", "## Data", ""]
    clips, records = manifest.get("clips", {}), manifest.get("records", {})
    lines += ["Built offline by `python -m engine.data build` from Debian packages' sound effects, espeak-ng speech, "
              "fluidsynth music and speech-over-event mixtures; the held-out evaluation sources were never used "
              "(`engine/data/denylist.py`). Split by source recording "
              f"({len(manifest.get('sources_in_both_splits', []))} sources in both splits).", "",
              f"- clips: {clips.get('total')} ({clips.get('hours')} h); per kind and split: "
              f"`{json.dumps(clips.get('per_kind_split', {}))}`",
              f"- QA records: `{json.dumps(records.get('per_split', {}))}`; per task: "
              f"`{json.dumps(records.get('per_task', {}))}`",
              f"- event clips per package: `{json.dumps(clips.get('event_per_package', {}))}`",
              f"- licences per package: `{json.dumps(manifest.get('licences', {}))}`"]
    lines += ["", "## Stages", "", "| stage | what trains | lr | steps | first loss | last loss | validation |",
              "|---|---|---|---|---|---|---|"]
    for name, rows in logs.items():
        label = name.removeprefix("stage")  # "3", or "3 (continued)" after --start-from
        stage = int(label.split()[0])
        what, lr, _ = STAGES[stage]
        first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-20:]) / len(rows[-20:])
        val = next((r for r in reversed(rows) if any(k.startswith("val_") for k in r)), {})
        shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in val.items() if k.startswith("val_"))
        lines.append(f"| {label} | {what} | {lr:.0e} (peak, cosine) | {len(rows)} | {first:.3f} | "
                     f"{last:.3f} (mean of last 20) | {shown} |")
    lines += ["", f"![losses]({stem}.losses.png)", "",
              "Validation metrics per task and mode (sound events in `soft` vs `tags` vs `cascade`, answer WER, "
              "tagging mAP) come from `python -m engine.eval`: see [docs/RESULTS.md](../docs/RESULTS.md).", ""]
    path.write_text("\n".join(lines))


def write_perception_card(path: Path, stem: str, rows: list[dict], manifest: dict, info: dict, dims: dict,
                          features: dict) -> None:
    """The perception model's card: its heads, data, views, training time and validation per head."""
    clips = manifest.get("clips", {})
    last = next((r for r in reversed(rows) if "val_mAP" in r), {})
    val = "\n".join(f"| {k.removeprefix('val_')} | {f'{v:.3f}' if isinstance(v, float) else v} |"
                    for k, v in last.items() if k.startswith("val_"))
    heads = "; ".join(f"{name} ({len(classes)}: {', '.join(classes[:6])}{' ...' if len(classes) > 6 else ''})"
                      for name, classes in dims["heads"])
    lines = [f"# Perception model: `{stem}`", "",
             "Written by `python -m engine.train --stage 0` (do not edit by hand). One file per Whisper model, used "
             "with any LLM: the sound events and the voice that `tags` mode writes into the prompt, and that the "
             "LLM stages train with.", "",
             f"- Whisper: `{info['whisper']}`; training: {info['trained']}",
             f"- Heads: {heads}",
             "- Sound classes carry their AudioSet name (the file's metadata, `audioset`)",
             "- Views per clip (engine/data/augment.py): " + json.dumps(features.get("views_per_kind", {})),
             f"- Data build: {manifest.get('build_seconds')} s; feature cache: {features.get('views')} views "
             f"({features.get('seconds', '?')} s to compute here); training: {rows[-1].get('seconds', 0):.0f} s "
             f"for {len(rows)} steps; CPU: {features.get('cpu', '?')}",
             f"- Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "", "## Data", "",
             f"- clips: {clips.get('total')} ({clips.get('hours')} h); per kind and split: "
             f"`{json.dumps(clips.get('per_kind_split', {}))}`",
             f"- event clips per package: `{json.dumps(clips.get('event_per_package', {}))}`",
             f"- licences per package: `{json.dumps(manifest.get('licences', {}))}`",
             "- validation: the data builder's split by source recording, and whole packages never trained on "
             "(`engine/data/split.py` VALIDATION_PACKAGES): `new_source` below", "",
             "## Validation (last evaluation)", "", "| metric | value |", "|---|---|", val, ""]
    path.write_text("\n".join(lines))
