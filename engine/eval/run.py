"""Run the tasks: listen to each clip once, ask every task's question in every mode, score, measure cost.

Answers and analyses are cached in SQLite, keyed by the clip's audio digest and the model versions (Whisper
id, LLM and adapter/LoRA digests, prompt format, analysis and sampling settings): a rerun asks the engine only
what it has not answered with these exact models, and scoring is always recomputed from the cached text. The
engine is loaded only when something is missing. Cost is measured afresh in every run that includes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..bench import peak_rss_mb, reset_peak_rss
from ..config import MODES, EngineConfig
from ..data.labels import SOUND_LABELS
from ..prompt import PROMPT_FORMAT, PROMPT_REVISION
from ..weights import cache_dir, file_sha256, resolve
from .match import EMBEDDER, Embedder
from .sets import EvalClip, EvalSet, all_sets, file_sha1
from .tasks import TASKS, Item, tagging_scores, whisper_wer

ALL_TASKS = (*TASKS, "cost")
COST_QUESTION = "What is said, and what else can be heard?"
COST_CLIPS = 4  # clips per mode for the cost measurement (fewer with --limit)


def default_cache() -> Path:
    return cache_dir() / "eval"


# ---------------------------------------------------------------- model identity (without loading the models)


def model_identity(config: EngineConfig) -> dict:
    """What the answers depend on, resolved as Engine() resolves it (weights.resolve), without loading any model."""
    found = resolve(config)
    adapter, lora, perception = found.adapter, found.lora, found.perception
    return {
        "whisper": found.whisper.id,
        "llm": found.llm.name, "llm_sha256": found.llm_sha256[:16],
        "adapter": adapter.name if adapter else "untrained (random init, seed 0)",
        "adapter_sha256": file_sha256(adapter)[:16] if adapter else "",
        "lora": lora.name if lora else "none", "lora_sha256": file_sha256(lora)[:16] if lora else "",
        "perception": perception.name if perception else "none",
        "perception_sha256": file_sha256(perception)[:16] if perception else "",
        "prompt_format": PROMPT_FORMAT, "prompt_revision": PROMPT_REVISION,
        "analysis": {k: getattr(config, k) for k in ("max_windows", "max_events", "event_threshold", "language")},
        "sampling": dataclasses.asdict(config.sampling),
    }


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- cache


class Cache:
    """Two key -> JSON tables in one SQLite file: analyses (per clip) and answers (per clip, question, mode)."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "answers.sqlite"
        self._db = sqlite3.connect(self.path)
        for table in ("analyses", "answers", "models"):
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get(self, table: str, key: str) -> dict | None:
        row = self._db.execute(f"SELECT value FROM {table} WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, table: str, key: str, value: dict) -> None:
        self._db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", (key, json.dumps(value)))
        self._db.commit()

    def close(self) -> None:
        self._db.close()


# ---------------------------------------------------------------- results


@dataclass
class Row:
    task: str
    metric: str
    source: str  # eval set name
    n: int  # clips scored
    mode: str  # ablation variant, or "whisper" / "perception" for the listening stages' own outputs
    value: float

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "value": round(float(self.value), 3)}


@dataclass
class Results:
    date: str
    models: dict
    identity: dict
    sets: dict[str, dict]  # name -> origin, source, kind, available, used
    rows: list[Row] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)  # per clip and mode: question, answer, what scoring decided
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    answered: int = 0  # answers generated in this run (the rest came from the cache)
    cached: int = 0


# ---------------------------------------------------------------- the run


class Runner:
    def __init__(self, config: EngineConfig, cache_root: Path, progress: bool = True):
        self.config = config
        self.progress = progress
        self.identity = model_identity(config)
        self.key = _digest(self.identity)
        self.cache = Cache(cache_root)
        self._engine = None
        self._embedder: Embedder | None = None
        self._warm: set[str] = set()  # "listen" and the modes the engine has already run in this process

    @property
    def engine(self):
        if self._engine is None:
            from ..pipeline import Engine

            self._engine = Engine(self.config)
            self.cache.put("models", self.key, self._engine.models)
        return self._engine

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder()
        return self._embedder

    def models(self) -> dict:
        if self._engine is not None:
            return self._engine.models
        return self.cache.get("models", self.key) or self.engine.models

    def close(self) -> None:
        if self._engine is not None:
            self._engine.llm.close()
        self.cache.close()

    # -- listening and answering, through the cache

    def _analysis_key(self, digest: str) -> str:
        # what an analysis holds: the transcript (Whisper), the perception model's tags, voice and instrument, and
        # the adapter's acoustic tokens' timings
        ident = {k: self.identity[k] for k in ("whisper", "adapter_sha256", "perception_sha256", "analysis")}
        return _digest({"clip": digest, **ident})

    def _answer_key(self, digest: str, question: str, mode: str) -> str:
        return _digest({"clip": digest, "question": question, "mode": mode, "models": self.key})

    def _analyze(self, clip: EvalClip):
        samples, rate = sf.read(clip.path, dtype="float32", always_2d=False)
        context = self.engine.analyze(samples, sample_rate=rate)
        self._warm.add("listen")
        return context

    def run_clip(self, clip: EvalClip, questions: Sequence[tuple[str, str]], results: Results) -> dict:
        """Analysis + the answer to each (question, mode) of one clip, from the cache or the engine."""
        digest = file_sha1(clip.path)
        akey = self._analysis_key(digest)
        analysis = self.cache.get("analyses", akey)
        answers = {(q, m): self.cache.get("answers", self._answer_key(digest, q, m)) for q, m in questions}
        missing = [qm for qm, a in answers.items() if a is None]
        context = None
        if analysis is None or missing:
            context = self._analyze(clip)
            if analysis is None:
                analysis = {"transcript": context.transcript.text, "language": context.transcript.language,
                            "tags": {label: round(float(p), 5) for label, p in
                                     zip(self.engine.sound_labels, context.window_tags.max(axis=0))},
                            "events": [e.label for e in context.events], "timings": context.timings,
                            "voice": dataclasses.asdict(context.voice) if context.voice else None,
                            "instrument": context.instrument,
                            "date": _now()}
                self.cache.put("analyses", akey, analysis)
        for question, mode in missing:
            stream = self.engine.ask(context, question, mode=mode)
            text = stream.read()
            self._warm.add(mode)
            s = stream.stats
            record = {"text": text, "stop_reason": s.stop_reason, "tokens": s.generated_tokens,
                      "prefill_s": round(s.prefill_seconds, 4), "generate_s": round(s.generate_seconds, 4),
                      "date": _now()}
            self.cache.put("answers", self._answer_key(digest, question, mode), record)
            answers[(question, mode)] = record
        results.answered += len(missing)
        results.cached += len(questions) - len(missing)
        return {"analysis": analysis, "answers": answers}

    # -- everything

    def evaluate(self, tasks: Sequence[str], modes: Sequence[str], limit: int | None,
                 sets: dict[str, EvalSet] | None = None) -> Results:
        sets = sets if sets is not None else all_sets()
        results = Results(_now(), {}, self.identity, {},
                          settings={"tasks": list(tasks), "modes": list(modes), "limit": limit,
                                    "embedder": EMBEDDER, "threads": self.config.threads,
                                    "load_average_at_start": round(os.getloadavg()[0], 2)})
        llm_tasks = [TASKS[t] for t in tasks if t in TASKS]
        # which clips of which sets each task uses
        plan: dict[str, list[EvalClip]] = {}
        for name, s in sets.items():
            for_tasks = any(s.kind in t.kinds for t in llm_tasks)
            if not for_tasks and not ("cost" in tasks and s.kind == "mix"):
                continue
            try:
                total = s.total
                if total == 0:
                    results.notes.append(f"{name}: no clips (build the training data: python -m engine.data build)")
                    continue
                plan[name] = s.clips(limit) if for_tasks else []
            except Exception as error:  # noqa: BLE001 - an unavailable source is reported, not fatal
                results.notes.append(f"{name}: not available ({str(error).splitlines()[0]})")
                continue
            results.sets[name] = {"kind": s.kind, "origin": s.origin, "source": s.source, "available": total,
                                  "used": len(plan[name])}
        # listen and answer, one clip at a time (each clip once, whatever the tasks)
        outputs: dict[tuple[str, str], dict] = {}
        jobs = [(name, clip) for name, clips in plan.items() for clip in clips]
        bar = tqdm(jobs, desc="eval", unit="clip", disable=not self.progress)
        for name, clip in bar:
            bar.set_postfix_str(f"{name} {clip.id}")
            questions = [(t.question(clip), m) for t in llm_tasks if sets[name].kind in t.kinds for m in modes]
            outputs[(name, clip.id)] = self.run_clip(clip, list(dict.fromkeys(questions)), results)
        # score
        for task in llm_tasks:
            for name, clips in plan.items():
                if sets[name].kind not in task.kinds or not clips:
                    continue
                for mode in modes:
                    items = []
                    for clip in clips:
                        out = outputs[(name, clip.id)]
                        question = task.question(clip)
                        answer = out["answers"][(question, mode)]
                        items.append(Item(clip, answer["text"], answer["stop_reason"], question,
                                          out["analysis"]["transcript"], _tag_vector(out["analysis"])))
                    for metric, value in task.score(items, self.embedder).items():
                        results.rows.append(Row(task.name, metric, name, len(items), mode, value))
                    results.details += [{"task": task.name, "source": name, "mode": mode, "clip": i.clip.id,
                                         "labels": i.clip.labels, "question": i.question, "answer": i.answer,
                                         "stop_reason": i.stop_reason, "whisper_transcript": i.transcript,
                                         **i.detail} for i in items]
                if task.name == "asr":
                    analyses = [Item(c, "", "", "", outputs[(name, c.id)]["analysis"]["transcript"],
                                     _tag_vector(outputs[(name, c.id)]["analysis"])) for c in clips]
                    results.rows.append(Row("asr", "WER", name, len(clips), "whisper", whisper_wer(analyses)))
        if "sound" in tasks:  # the perception model's sound head alone, on every set this run listened to
            for name, clips in plan.items():
                if clips:
                    analyses = [Item(c, "", "", "", "", _tag_vector(outputs[(name, c.id)]["analysis"])) for c in clips]
                    for metric, value in tagging_scores(analyses).items():
                        results.rows.append(Row("sound", metric, name, len(clips), "perception", value))
        for task, key in (("gender", "gender"), ("rate", "rate"), ("instrument", "instrument")):
            if task not in tasks:  # the perception model's own reading of the voice and the music
                continue
            for name, clips in plan.items():
                labelled = [c for c in clips if key in c.labels]
                if labelled and sets[name].kind in TASKS[task].kinds:
                    heard = [_heard(outputs[(name, c.id)]["analysis"], key) for c in labelled]
                    value = float(np.mean([h == c.labels[key] for h, c in zip(heard, labelled)]))
                    results.rows.append(Row(task, "accuracy", name, len(labelled), "perception", value))
        if "cost" in tasks:
            source = next((n for n in ("val-mix", "flite-deb-mix") if n in results.sets), None)
            if source is None:
                results.notes.append("cost: no mixture set available")
            else:
                count = min(COST_CLIPS, limit or COST_CLIPS)
                clips = sets[source].clips(count)
                results.sets[source]["used"] = max(results.sets[source]["used"], len(clips))
                results.rows += self.measure_cost(clips, source, modes)
        results.models = self.models()
        results.settings["load_average_at_end"] = round(os.getloadavg()[0], 2)
        return results

    # -- cost

    def measure_cost(self, clips: list[EvalClip], source: str, modes: Sequence[str]) -> list[Row]:
        """Per mode: mean seconds per answer (the mode's listening stages + prefill + generation) and the peak
        resident memory while serving that mode (the high-water mark is reset before each mode)."""
        engine = self.engine
        # warm-up, unless this run already did it: first calls allocate buffers and pick kernels
        context = None if {"listen", *modes} <= self._warm else self._analyze(clips[0])
        for mode in modes:
            if mode not in self._warm:
                engine.ask(context, COST_QUESTION, mode=mode).read()
                self._warm.add(mode)
        rows = []
        bar = tqdm(total=len(modes) * len(clips), desc="cost", unit="answer", disable=not self.progress)
        for mode in modes:
            listens = MODES[mode].acoustic_tokens or MODES[mode].heard_words  # the encoder and the TLTR
            reset = reset_peak_rss()
            latencies, first_tokens, rates = [], [], []
            for clip in clips:
                context = self._analyze(clip)
                stream = engine.ask(context, COST_QUESTION, mode=mode)
                stream.read()
                t = context.timings
                listen = t["decode"] + t["asr"] + (t["encoder"] + t["tltr"] if listens else 0.0)
                latencies.append(listen + stream.stats.prefill_seconds + stream.stats.generate_seconds)
                first_tokens.append(listen + stream.stats.first_token_seconds)
                rates.append(stream.stats.tokens_per_second)
                bar.update()
            peak = peak_rss_mb()
            rows += [Row("cost", "latency per answer (s)", source, len(clips), mode, float(np.mean(latencies))),
                     Row("cost", "first token (s)", source, len(clips), mode, float(np.mean(first_tokens))),
                     Row("cost", "generation tokens/s", source, len(clips), mode, float(np.mean(rates))),
                     Row("cost", "peak RSS (MB)" if reset else "process peak RSS (MB)", source, len(clips), mode,
                         peak)]
        bar.close()
        return rows


def _heard(analysis: dict, field: str) -> str | None:
    """What the perception model read: the voice's gender or rate, or the instrument."""
    if field == "instrument":
        return analysis.get("instrument")
    return (analysis.get("voice") or {}).get(field)


def _tag_vector(analysis: dict) -> np.ndarray:
    """The perception model's sound probabilities in SOUND_LABELS order (0 for a label it does not have)."""
    return np.array([analysis["tags"].get(label, 0.0) for label in SOUND_LABELS])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
