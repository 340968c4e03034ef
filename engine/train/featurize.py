"""The feature cache: Whisper layer features (layers, 25, width) of every view of every training clip (the clip
as built, and its augmented views: engine/data/augment.py), and Whisper's own transcript of the validation
speech, computed once and reused by every stage. Shards of float16 safetensors + a JSON index."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..asr import WhisperASR
from ..audio import SAMPLE_RATE
from ..data import augment
from ..data.augment import View
from ..data.build import write_json
from ..features import BATCH_WINDOWS, WhisperLayerFeatures
from ..weights import WhisperWeights

SHARD = 256  # clips per shard: a crash loses at most one shard of work


class FeatureCache:
    """Read side: features and transcripts by audio_id."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.index: dict[str, list] = json.loads((self.root / "index.json").read_text())
        self.transcripts: dict[str, str] = json.loads((self.root / "transcripts.json").read_text())
        self._shards: dict[str, torch.Tensor] = {}

    def features(self, audio_id: str) -> torch.Tensor:
        shard, row = self.index[audio_id]
        if shard not in self._shards:
            from safetensors.torch import load_file

            self._shards[shard] = load_file(str(self.root / shard))["features"]
        return self._shards[shard][row]

    def __contains__(self, audio_id: str) -> bool:
        return audio_id in self.index


def build(views: list[View], data_dir: Path, whisper: WhisperWeights, out: Path, transcribe: set[str],
          threads: int = 2, seed: int = 0) -> FeatureCache:
    """Compute what is missing: the features of every view (augment.render), and Whisper's transcript of the
    clean views in `transcribe` (the others get ""). `views.json` records each view's clip and labels."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    meta = {"whisper": whisper.id, "views": f"augment/{seed}"}
    if meta_path.is_file() and json.loads(meta_path.read_text()) != meta:
        raise ValueError(f"{out} holds features of another Whisper model or views; remove it or use another --features")
    meta_path.write_text(json.dumps(meta))
    index_path, transcripts_path = out / "index.json", out / "transcripts.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    transcripts = json.loads(transcripts_path.read_text()) if transcripts_path.is_file() else {}
    todo = [v for v in {v.key: v for v in views}.values() if v.key not in index]
    encoder = WhisperLayerFeatures(whisper.hf_dir) if todo else None
    asr = WhisperASR(whisper.ggml_path, threads) if any(k not in transcripts for k in transcribe) else None
    shard_no = len({s for s, _ in index.values()})
    cost_path = out / "cost.json"  # compute time so far, over every run that added shards (for the model card)
    cost = json.loads(cost_path.read_text()) if cost_path.is_file() else {"views": 0, "seconds": 0.0}
    with tqdm(total=len(todo), desc="features", unit="view") as bar:
        for start in range(0, len(todo), SHARD):
            clock = time.perf_counter()
            chunk = todo[start:start + SHARD]
            rows = []
            for group in range(0, len(chunk), BATCH_WINDOWS):  # encoder batches: much faster than one by one
                batch = chunk[group:group + BATCH_WINDOWS]
                samples = np.stack([augment.render(v, data_dir, seed) for v in batch])
                rows.extend(encoder(samples)[0].half())
                for view, window in zip(batch, samples):
                    if asr is not None and view.key in transcribe and view.key not in transcripts:
                        transcripts[view.key] = asr(window[: int(view.clip["duration"] * SAMPLE_RATE) + 1]).text
                bar.update(len(batch))
            name = f"features-{shard_no:05d}.safetensors"
            save_file({"features": torch.stack(rows)}, str(out / name))
            index.update({v.key: [name, i] for i, v in enumerate(chunk)})
            shard_no += 1
            write_json(index_path, index, indent=None)  # index after the shard: an indexed row always exists
            write_json(transcripts_path, transcripts, indent=None)
            seconds = round(cost["seconds"] + time.perf_counter() - clock, 1)
            cost = {"views": cost["views"] + len(chunk), "seconds": seconds}
            write_json(cost_path, cost, indent=None)
    for view in views:
        if view.name == "clean":
            transcripts.setdefault(view.key, "")
    write_json(transcripts_path, transcripts, indent=None)
    write_json(out / "views.json", {v.key: {"clip": v.clip["id"], "view": v.name, "sound_labels": v.sound_labels}
                                    for v in views}, indent=None)
    return FeatureCache(out)


def stack(cache: FeatureCache, audio_ids: list[str]) -> torch.Tensor:
    return torch.stack([cache.features(a) for a in audio_ids]).float()
