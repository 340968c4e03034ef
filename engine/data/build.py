"""Build the training set: sound events from Debian packages, espeak-ng speech, fluidsynth music,
speech+event mixtures,
template QA in the Open-ASQA style, a train/validation split by source, and a manifest.

    from engine.data import build
    manifest = build(out="~/.cache/ltu-as/data", limit=None)

Layout of `out`:
    _sources/debs/*.deb, _sources/pkg/<package>/     downloaded and unpacked packages (cache)
    audio/events/<package>/<name>.wav                16 kHz mono PCM_16, <= 10 s
    audio/speech/<key>.wav, audio/music/<key>.wav, audio/mix/<key>.wav
    clips.jsonl                                      one line per audio clip (labels, provenance, split)
    train.json, validation.json                      QA records
    manifest.json                                    counts, licences, skips, build date and settings
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..files import written_atomically
from ..weights import cache_dir
from ..audio import decode_trusted
from . import audio, music, speech
from .debian import FetchError, Source, fetch_package, open_local_dir, read_bytes
from .denylist import HELD_OUT_CORPORA, HELD_OUT_PACKAGES, assert_allowed
from .labels import SOUND_LABELS
from .questions import qa_for_clip
from .rules import EXCLUDED_PACKAGES, GENERIC_SPEC, PACKAGES, PackageSpec, SkipCounts, match
from .split import VALIDATION_PACKAGES, VALIDATION_PERCENT, split_of_source, split_of_sources

DEFAULT_PACKAGES: tuple[str, ...] = tuple(PACKAGES)
SNRS_DB: tuple[int, ...] = (0, 5, 10, 20)
MIX_LEAD_IN = 0.3  # seconds of room before speech may start in a mixture


def default_out_dir() -> Path:
    return cache_dir() / "data"


@dataclass(frozen=True)
class BuildConfig:
    out: Path = field(default_factory=default_out_dir)
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    source_dirs: tuple[Path, ...] = ()
    limit: int | None = None  # at most this many event clips per package, speech clips, and mixtures
    n_speech: int = 1000
    n_mix: int = 1000
    n_music: int = 300
    max_per_label: int = 80  # event clips per (package, label), chosen by hash of path
    seed: int = 0
    validation_percent: int = VALIDATION_PERCENT
    progress: bool = True


def _slug(text: str, n: int = 60) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[-n:]


def _sha(text: str | bytes, n: int = 10) -> str:
    return hashlib.sha1(text.encode() if isinstance(text, str) else text).hexdigest()[:n]


def _duration(path: Path) -> float:
    info = sf.info(path)
    return info.frames / info.samplerate


# ---------------------------------------------------------------- sound events


def collect_events(
    sources: list[tuple[Source, PackageSpec]], cfg: BuildConfig, skips: SkipCounts
) -> list[dict[str, Any]]:
    """Label, de-duplicate, cap and convert the event recordings of `sources` -> clip dicts."""
    out_root = cfg.out
    clips: list[dict[str, Any]] = []
    seen_bytes: dict[str, str] = {}  # sha1 of file bytes -> clip id (byte-identical copies kept once)
    for source, spec in sources:
        candidates: dict[str, list[tuple[str, Any, str, str]]] = defaultdict(list)
        for path, where in source.audio_files():
            m = match(spec, path)
            if m is None:
                skips.add(source.name, "unlabelled or excluded by rule")
                continue
            candidates[m.label].append((path, where, m.label, f"{source.name}:{m.group}"))
        chosen: list[tuple[str, Any, str, str]] = []
        for label in sorted(candidates):
            items = sorted(candidates[label], key=lambda c: _sha(c[0]))
            if len(items) > cfg.max_per_label:
                skips.add(source.name, "over the per-label cap", len(items) - cfg.max_per_label)
            chosen += items[: cfg.max_per_label]
        chosen.sort(key=lambda c: c[0])
        if cfg.limit is not None and len(chosen) > cfg.limit:
            chosen = sorted(chosen, key=lambda c: _sha(c[0]))[: cfg.limit]
            chosen.sort(key=lambda c: c[0])
        bar = tqdm(chosen, desc=f"events {source.name}", unit="clip", disable=not cfg.progress, leave=False)
        for path, where, label, source_id in bar:
            data = read_bytes(where)
            digest = _sha(data, 40)
            if digest in seen_bytes:
                skips.add(source.name, "duplicate of another file")
                continue
            clip_id = f"ev-{_slug(source.name, 30)}-{_sha(source.name + '/' + path)}"
            rel = Path("audio") / "events" / _slug(source.name, 40) / f"{_slug(path)}-{_sha(path, 6)}.wav"
            wav = out_root / rel
            if not wav.exists():
                try:
                    x = decode_trusted(data)
                except Exception:  # noqa: BLE001 - any undecodable file is skipped and counted
                    skips.add(source.name, "could not decode")
                    continue
                if audio.peak(x) > 0.99:
                    x = audio.normalize_peak(x, -0.1)
                x = audio.trim(x)
                if audio.peak(x) < audio.SILENCE_FLOOR:
                    skips.add(source.name, "silent")
                    continue
                if len(x) < audio.MIN_SECONDS * audio.SAMPLE_RATE:
                    skips.add(source.name, "shorter than 0.1 s")
                    continue
                audio.write_wav(wav, x)
            seen_bytes[digest] = clip_id
            clips.append(
                {
                    "id": clip_id,
                    "audio_id": rel.as_posix(),
                    "kind": "event",
                    "duration": round(_duration(wav), 3),
                    "source_ids": [source_id],
                    "labels": {"label": label, "sound_labels": [label]}
                    | ({"voice": speaker[0], "gender": speaker[1]} if (speaker := spec.speaker(path)) else {}),
                    "provenance": [
                        {
                            "package": source.name,
                            "version": source.version,
                            "path": path,
                            "licence": source.licence_for(path),
                            "sha1": digest,
                        }
                    ],
                }
            )
    return clips


# ---------------------------------------------------------------- speech


def make_speech(cfg: BuildConfig, skips: SkipCounts) -> list[dict[str, Any]]:
    n = cfg.n_speech if cfg.limit is None else min(cfg.n_speech, cfg.limit)
    if n <= 0:
        return []
    if not speech.have_espeak():
        skips.add("espeak-ng", "espeak-ng not installed", n)
        return []
    clips = []
    for u in tqdm(speech.plan_utterances(n, cfg.seed), desc="speech", unit="clip", disable=not cfg.progress):
        rel = Path("audio") / "speech" / f"{u.key}.wav"
        wav = cfg.out / rel
        if not _write_once(wav, lambda: speech.synthesize(u), skips, "espeak-ng", "empty synthesis"):
            continue
        clips.append(
            {
                "id": f"sp-{u.key}",
                "audio_id": rel.as_posix(),
                "kind": "speech",
                "duration": round(_duration(wav), 3),
                "source_ids": [f"tts-sentence:{u.sentence_id}"],
                "labels": {
                    "text": u.text,
                    "gender": u.gender,
                    "rate": u.rate,
                    "pitch": u.pitch,
                    "language": u.language,
                    "accent": u.accent,
                    "voice": f"espeak-ng {u.voice}" + (f"+{u.variant}" if u.variant else ""),
                    "sound_labels": ["speech"],
                },
                "provenance": [{"package": "espeak-ng", "version": _espeak_version(), "path": "", "licence": "GPL-3+"}],
            }
        )
    return clips


def _write_once(wav: Path, render, skips: SkipCounts, source: str, reason: str) -> bool:
    """Render, trim and write `wav` unless it exists; False (one skip counted) when the render came out empty."""
    if wav.exists():
        return True
    x = audio.trim(render())
    if len(x) < audio.MIN_SECONDS * audio.SAMPLE_RATE:
        skips.add(source, reason)
        return False
    audio.write_wav(wav, audio.normalize_peak(x, -3.0))
    return True


_ESPEAK_VERSION: list[str] = []


def _espeak_version() -> str:
    if not _ESPEAK_VERSION:
        import subprocess

        done = subprocess.run([speech.ESPEAK, "--version"], capture_output=True, text=True)
        found = re.search(r"(\d+\.\d+[\w.\-]*)", done.stdout)
        _ESPEAK_VERSION.append(found.group(1) if found else "unknown")
    return _ESPEAK_VERSION[0]


# ---------------------------------------------------------------- music


def make_music(cfg: BuildConfig, skips: SkipCounts) -> list[dict[str, Any]]:
    n = cfg.n_music if cfg.limit is None else min(cfg.n_music, cfg.limit)
    if n <= 0:
        return []
    if not music.have_fluidsynth():
        skips.add("fluidsynth", "fluidsynth not installed (music skipped)", n)
        return []
    try:
        font = fetch_package(music.SOUNDFONT_PACKAGE, cfg.out / "_sources")
    except FetchError as err:
        skips.add(music.SOUNDFONT_PACKAGE, f"soundfont not available: {err}", n)
        return []
    sf2 = font.root / music.SOUNDFONT_PATH
    clips = []
    for piece in tqdm(music.plan_pieces(n, cfg.seed), desc="music", unit="clip", disable=not cfg.progress):
        rel = Path("audio") / "music" / f"{piece.key_id}.wav"
        wav = cfg.out / rel
        if not _write_once(wav, lambda: music.render(piece, sf2), skips, "fluidsynth", "empty render"):
            continue
        clips.append(
            {
                "id": f"mu-{piece.key_id}",
                "audio_id": rel.as_posix(),
                "kind": "music",
                "duration": round(_duration(wav), 3),
                "source_ids": [f"midi:{piece.key_id}"],
                "labels": {
                    "label": "music",
                    "instrument": piece.instrument,
                    "gm_program": music.INSTRUMENTS[piece.instrument],
                    "key": piece.key,
                    "mode": piece.mode,
                    "tempo_bpm": piece.bpm,
                    "tempo": music.tempo_class(piece.bpm),
                    "pattern": piece.pattern,
                    "sound_labels": ["music"],
                },
                "provenance": [
                    {"package": font.name, "version": font.version, "path": music.SOUNDFONT_PATH,
                     "licence": font.default_licence, "renderer": "fluidsynth", "midi": "generated"}
                ],
            }
        )
    return clips


# ---------------------------------------------------------------- mixtures


def make_mixtures(
    speech_clips: list[dict[str, Any]], event_clips: list[dict[str, Any]], cfg: BuildConfig
) -> list[dict[str, Any]]:
    """Speech over a sound event (or a music clip) at SNRs 0/5/10/20 dB with known times.

    Train mixtures use train speech and train events only; validation mixtures use validation speech and
    validation events, so no source ever crosses the split.
    """
    n = cfg.n_mix if cfg.limit is None else min(cfg.n_mix, cfg.limit)
    if n <= 0 or not speech_clips or not event_clips:
        return []
    rng = random.Random(f"mix:{cfg.seed}")
    plan: list[tuple[dict, dict, int]] = []
    n_val = max(1, round(n * cfg.validation_percent / 100))
    for split, count in (("train", n - n_val), ("validation", n_val)):
        sp = [c for c in speech_clips if c["split"] == split]
        ev = [c for c in event_clips if c["split"] == split and c["labels"]["label"] != "speech"]
        if not sp or not ev:
            continue
        ev_by_label: dict[str, list[dict]] = defaultdict(list)
        for c in ev:
            ev_by_label[c["labels"]["label"]].append(c)
        labels = sorted(ev_by_label)
        for i in range(count):
            event = rng.choice(ev_by_label[labels[i % len(labels)]])  # cycle labels: balance the events
            plan.append((rng.choice(sp), event, SNRS_DB[i % len(SNRS_DB)]))
    clips = []
    for sp_clip, ev_clip, snr in tqdm(plan, desc="mixtures", unit="clip", disable=not cfg.progress):
        key = _sha(f"{sp_clip['id']}|{ev_clip['id']}|{snr}|{cfg.seed}", 12)
        x_sp = audio.read_wav(cfg.out / sp_clip["audio_id"])
        x_ev = audio.read_wav(cfg.out / ev_clip["audio_id"])
        sr = audio.SAMPLE_RATE
        mix_rng = random.Random(key)
        speech_start = int(mix_rng.uniform(0, MIX_LEAD_IN) * sr)
        x_sp = x_sp[: audio.MAX_SAMPLES - speech_start]
        # the event overlaps the speech: it starts somewhere in the speech, and is cut at 10 s
        latest = max(0, speech_start + len(x_sp) - min(len(x_ev), len(x_sp)) // 2)
        event_start = int(mix_rng.uniform(0, latest)) if latest else 0
        x_ev = x_ev[: audio.MAX_SAMPLES - event_start]
        padded = np.concatenate([np.zeros(speech_start, dtype=np.float32), x_sp])
        rel = Path("audio") / "mix" / f"{key}.wav"
        wav = cfg.out / rel
        if not wav.exists():
            audio.write_wav(wav, audio.mix_at_snr(padded, x_ev, snr, event_start)[: audio.MAX_SAMPLES])
        lab_sp = sp_clip["labels"]
        clips.append(
            {
                "id": f"mx-{key}",
                "audio_id": rel.as_posix(),
                "kind": "mix",
                "duration": round(_duration(wav), 3),
                "source_ids": sp_clip["source_ids"] + ev_clip["source_ids"],
                "labels": {
                    "text": lab_sp["text"],
                    "gender": lab_sp["gender"],
                    "language": lab_sp["language"],
                    "event": ev_clip["labels"]["label"],
                    "snr_db": snr,
                    "speech_start": round(speech_start / sr, 2),
                    "speech_end": round((speech_start + len(x_sp)) / sr, 2),
                    "event_start": round(event_start / sr, 2),
                    "event_end": round((event_start + len(x_ev)) / sr, 2),
                    "sound_labels": ["speech", ev_clip["labels"]["label"]],
                    "speech_clip": sp_clip["id"],
                    "event_clip": ev_clip["id"],
                },
                "provenance": sp_clip["provenance"] + ev_clip["provenance"],
            }
        )
    return clips


# ---------------------------------------------------------------- the whole build


def _open_sources(cfg: BuildConfig, skips: SkipCounts, failures: dict[str, str]) -> list[tuple[Source, PackageSpec]]:
    sources: list[tuple[Source, PackageSpec]] = []
    cache = cfg.out / "_sources"
    for name in tqdm(cfg.packages, desc="packages", unit="pkg", disable=not cfg.progress):
        assert_allowed(name)
        if name not in PACKAGES:
            failures[name] = "no labelling rules for this package"
            continue
        try:
            sources.append((fetch_package(name, cache), PACKAGES[name]))
        except FetchError as err:
            failures[name] = str(err)
    for folder in cfg.source_dirs:
        sources.append((open_local_dir(Path(folder)), GENERIC_SPEC))
    return sources


def build(
    out: str | Path | None = None,
    *,
    packages: list[str] | tuple[str, ...] | None = None,
    source_dirs: list[str | Path] | tuple[str | Path, ...] = (),
    limit: int | None = None,
    n_speech: int = 1000,
    n_mix: int = 1000,
    n_music: int = 300,
    max_per_label: int = 80,
    seed: int = 0,
    clean: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Build (or top up: finished files are kept) the dataset under `out`; returns the manifest."""
    started = time.time()
    cfg = BuildConfig(
        out=Path(out).expanduser() if out else default_out_dir(),
        packages=tuple(DEFAULT_PACKAGES if packages is None else packages),
        source_dirs=tuple(Path(p) for p in source_dirs),
        limit=limit, n_speech=n_speech, n_mix=n_mix, n_music=n_music, max_per_label=max_per_label, seed=seed, progress=progress,
    )
    for name in cfg.packages:
        assert_allowed(name)
    for folder in cfg.source_dirs:
        assert_allowed(str(folder))
    if clean:
        for item in ("audio", "clips.jsonl", "train.json", "validation.json", "manifest.json"):
            target = cfg.out / item
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    cfg.out.mkdir(parents=True, exist_ok=True)

    skips, failures = SkipCounts(), {}
    sources = _open_sources(cfg, skips, failures)
    events = collect_events(sources, cfg, skips)
    for c in events:  # whole packages apart, so validation also measures sources never trained on
        package = c["provenance"][0]["package"]
        c["split"] = ("validation" if package in VALIDATION_PACKAGES
                      else split_of_source(c["source_ids"][0], cfg.validation_percent))
    spoken = make_speech(cfg, skips)
    for c in spoken:
        c["split"] = split_of_source(c["source_ids"][0], cfg.validation_percent)
    pieces = make_music(cfg, skips)
    for c in pieces:
        c["split"] = split_of_source(c["source_ids"][0], cfg.validation_percent)
    mixes = make_mixtures(spoken, events + pieces, cfg)
    for c in mixes:
        c["split"] = split_of_sources(c["source_ids"], cfg.validation_percent)
    clips = events + spoken + pieces + mixes

    rng = random.Random(f"qa:{cfg.seed}")
    records: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for clip in clips:
        for rec in qa_for_clip(clip, rng):
            records[rec["split"]].append(rec)

    pruned = _prune_unreferenced(cfg.out, clips)
    if pruned:
        skips.add("output", "stale audio files removed (not in this build)", pruned)
    _write_jsonl(cfg.out / "clips.jsonl", clips)
    for split, recs in records.items():
        write_json(cfg.out / f"{split}.json", recs)
    manifest = _manifest(cfg, clips, records, skips, failures, sources, time.time() - started)
    write_json(cfg.out / "manifest.json", manifest)
    return manifest


def _manifest(cfg, clips, records, skips, failures, sources, seconds) -> dict[str, Any]:
    def per(key, kind: str | None = None) -> dict[str, int]:
        return dict(sorted(Counter(str(key(c)) for c in clips if kind in (None, c["kind"])).items()))

    events = [c for c in clips if c["kind"] == "event"]
    licences: dict[str, Counter] = defaultdict(Counter)
    for c in events:
        prov = c["provenance"][0]
        licences[prov["package"]][prov["licence"]] += 1
    source_split: dict[str, set[str]] = defaultdict(set)
    for c in clips:
        for s in c["source_ids"]:
            source_split[s].add(c["split"])
    return {
        "format": "ltu-as open-asqa-style v1",
        "build_date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 1),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k != "out"}
        | {"source_dirs": [str(p) for p in cfg.source_dirs]},
        "sound_labels": SOUND_LABELS,
        "held_out": {"packages": sorted(HELD_OUT_PACKAGES), "corpora": list(HELD_OUT_CORPORA)},
        "sources": {s.name: {"version": s.version} for s, _ in sources},
        "packages_failed": failures,
        "packages_excluded": EXCLUDED_PACKAGES,
        "clips": {
            "total": len(clips),
            "hours": round(sum(c["duration"] for c in clips) / 3600, 3),
            "per_kind": per(lambda c: c["kind"]),
            "per_split": per(lambda c: c["split"]),
            "per_kind_split": per(lambda c: f"{c['kind']}/{c['split']}"),
            "event_per_package": dict(sorted(Counter(c["provenance"][0]["package"] for c in events).items())),
            "event_per_label": dict(sorted(Counter(c["labels"]["label"] for c in events).items())),
            "event_per_label_split": dict(sorted(Counter(f"{c['labels']['label']}/{c['split']}" for c in events).items())),
            "event_sources": len({c["source_ids"][0] for c in events}),
            "event_seconds": round(sum(c["duration"] for c in events), 1),
            "speech_per_gender": per(lambda c: c["labels"]["gender"], "speech"),
            "speech_per_language": per(lambda c: c["labels"]["language"], "speech"),
            "mix_per_snr": per(lambda c: c["labels"]["snr_db"], "mix"),
            "mix_per_event": per(lambda c: c["labels"]["event"], "mix"),
            "music_per_instrument": per(lambda c: c["labels"]["instrument"], "music"),
        },
        "records": {
            "per_split": {k: len(v) for k, v in records.items()},
            "per_task": dict(sorted(Counter(r["task"] for v in records.values() for r in v).items())),
        },
        "sources_in_both_splits": sorted(s for s, sp in source_split.items() if len(sp) > 1),
        "licences": {pkg: dict(c) for pkg, c in sorted(licences.items())},
        "skipped": skips.counts,
    }


def _prune_unreferenced(out: Path, clips: list[dict[str, Any]]) -> int:
    """Delete audio files under out/audio that this build does not list (left by an earlier, different build)."""
    keep = {out / c["audio_id"] for c in clips}
    stale = [p for p in (out / "audio").rglob("*") if p.is_file() and p not in keep]
    for p in stale:
        p.unlink()
    return len(stale)


def write_json(path: Path, obj: Any, indent: int | None = 1) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    with written_atomically(path) as tmp:
        tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=indent))


def load_clips(data_dir: Path) -> list[dict[str, Any]]:
    """The clips of a built dataset (clips.jsonl, one per line)."""
    return [json.loads(line) for line in (Path(data_dir) / "clips.jsonl").read_text().splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with written_atomically(path) as tmp, tmp.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
