"""The feature cache: Whisper layer features (layers, 25, width) of every training clip, and Whisper's own
transcript of it, computed once and reused by every stage. Shards of float16 safetensors + a JSON index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..asr import WhisperASR
from ..audio import load_audio, window_samples, windows
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


def build(audio_ids: list[str], data_dir: Path, whisper: WhisperWeights, out: Path, transcribe: set[str],
          threads: int = 2) -> FeatureCache:
    """Compute what is missing. `transcribe`: the clips that get Whisper's transcript (the others get "")."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    meta = {"whisper": whisper.id}
    if meta_path.is_file() and json.loads(meta_path.read_text()) != meta:
        raise ValueError(f"{out} holds features of another Whisper model; remove it or use another --cache")
    meta_path.write_text(json.dumps(meta))
    index_path, transcripts_path = out / "index.json", out / "transcripts.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    transcripts = json.loads(transcripts_path.read_text()) if transcripts_path.is_file() else {}
    todo = [a for a in dict.fromkeys(audio_ids) if a not in index]
    encoder = WhisperLayerFeatures(whisper.hf_dir) if todo else None
    asr = WhisperASR(whisper.ggml_path, threads) if any(a in transcribe and a not in transcripts for a in audio_ids) else None
    shard_no = len({s for s, _ in index.values()})
    with tqdm(total=len(todo), desc="features", unit="clip") as bar:
        for start in range(0, len(todo), SHARD):
            chunk = todo[start:start + SHARD]
            rows = []
            for group in range(0, len(chunk), BATCH_WINDOWS):  # encoder batches: much faster than one by one
                ids = chunk[group:group + BATCH_WINDOWS]
                audio = [load_audio(data_dir / a, max_duration=600) for a in ids]
                first = [window_samples(x, windows(x)[0]) for x in audio]  # training clips are one window long
                rows.extend(encoder(np.stack(first))[0].half())
                for audio_id, samples in zip(ids, audio):
                    if asr is not None and audio_id in transcribe and audio_id not in transcripts:
                        transcripts[audio_id] = asr(samples).text
                bar.update(len(ids))
            name = f"features-{shard_no:05d}.safetensors"
            save_file({"features": torch.stack(rows)}, str(out / name))
            index.update({a: [name, i] for i, a in enumerate(chunk)})
            shard_no += 1
            write_json(index_path, index, indent=None)  # index after the shard: an indexed row always exists
            write_json(transcripts_path, transcripts, indent=None)
    for audio_id in audio_ids:
        transcripts.setdefault(audio_id, "")
    write_json(transcripts_path, transcripts, indent=None)
    return FeatureCache(out)


def stack(cache: FeatureCache, audio_ids: list[str]) -> torch.Tensor:
    return torch.stack([cache.features(a) for a in audio_ids]).float()
