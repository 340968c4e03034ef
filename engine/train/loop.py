"""The curriculum: one readable loop (nanoGPT style: batch -> forward -> loss -> backward -> step -> log) that runs
every stage, each described by a `Stage`. Stage 0 trains the perception model on cached features alone; stages 1-3
run the LLM in plain PyTorch, loaded from the very GGUF that llama.cpp serves (on CUDA where there is one)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from collections import Counter

from ..config import MODES, EngineConfig
from ..data import augment
from ..data.build import load_clips, write_json
from ..data.instruct import describe
from ..data.split import VALIDATION_PACKAGES
from .. import native
from ..llm import LLM
from ..perception import (VOICE_HEADS, PerceptionDims, PerceptionInfo, PerceptionModel, head_probabilities,
                          load_perception, read, save_perception)
from ..prompt import PROMPT_FORMAT
from ..tltr import AdapterDims, AdapterInfo, AudioAdapter, check_pairing, load_adapter, save_adapter
from ..weights import file_sha256, perception_stem, resolve_llm, resolve_perception, resolve_whisper
from . import featurize
from .card import write_card, write_perception_card
from .config import STAGES, TrainConfig
from .examples import (CLASSIFICATION_TASKS, IGNORE, STUDENT_MODE, Tokenizer, balanced_batches, collate, draw_modes,
                       examples, invariance_targets, left_pad, load_records, multi_hot, rarest_labels)


class Run:
    """Paths and logging of one curriculum (one Whisper + LLM pair)."""

    def __init__(self, cfg: TrainConfig, whisper_name: str, llm_path: Path):
        self.cfg = cfg
        self.stem = f"ltu-as_whisper-{whisper_name}_{llm_path.stem.split('.')[0].lower()}"
        self.dir = Path(cfg.features).parent.parent / "train" / self.stem
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / f"stage{cfg.stage}.jsonl"

    def checkpoint(self, stage: int) -> Path:
        return self.dir / f"stage{stage}.safetensors"

    def lora_checkpoint(self, stage: int) -> Path:
        return self.dir / f"stage{stage}.lora.safetensors"

    def log(self, record: dict) -> None:
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")


def train(cfg: TrainConfig) -> dict:
    torch.manual_seed(cfg.seed)
    whisper = resolve_whisper(cfg.whisper)
    if not (Path(cfg.data) / "train.json").is_file():  # from scratch: build the data first
        from ..data import build

        build(Path(cfg.data))
    clips = load_clips(cfg.data)
    # Whisper's transcript for validation speech (what inference sees); training uses the known text
    speech_val = {c["audio_id"] for c in clips if c["split"] == "validation" and c["kind"] in ("speech", "mix")}
    views = augment.plan_views(clips, cfg.seed)
    if cfg.stage > 0:  # the LLM stages read the clips as built; the augmented views are stage 0's (2/3 of the cost)
        views = [v for v in views if v.name == "clean" and v.clip["kind"] != "background"]
    started = time.time()
    cache = featurize.build(views, Path(cfg.data), whisper, Path(cfg.features), speech_val, seed=cfg.seed)
    print(f"stage {cfg.stage}: {STAGES[cfg.stage][0]}; lr {cfg.lr}, {cfg.steps} steps, batch {cfg.batch_size}"
          f" (features ready in {time.time() - started:.0f} s)")
    if cfg.stage == 0:
        run = PerceptionRun(cfg, whisper.name)
        run.log_path.unlink(missing_ok=True)
        cost_path = Path(cfg.features) / "cost.json"
        cost = json.loads(cost_path.read_text()) if cost_path.is_file() else {}
        write_json(Path(cfg.features) / "summary.json",
                   {"views": len(views), "views_per_kind": augment.VIEWS_PER_KIND, "cpu": native.cpu().summary(),
                    "seconds": cost.get("seconds", "?")})
        return _train_perception(cfg, run, clips, views, cache, whisper.id)
    llm_path = resolve_llm(cfg.llm)
    run = Run(cfg, whisper.name, llm_path)
    run.log_path.unlink(missing_ok=True)
    return _train_with_llm(cfg, run, clips, cache, whisper.id, llm_path, _trained_perception(cfg, whisper))


# -- stage 0: the perception model (Whisper-AT's TLTR, with more heads) ---------------------------------------
@dataclass
class Stage:
    """What one stage trains and how it is scored; `optimise` runs any of them."""

    name: str
    parameters: list[torch.nn.Parameter]
    batches: Iterator
    losses: Callable[[list], dict[str, torch.Tensor]]  # batch -> {"loss": the total, other parts to log}
    evaluate: Callable[[], dict]  # validation metrics, logged every cfg.eval_every steps and at the end
    weight_decay: float = 0.0
    clip_norm: float | None = None


def optimise(stage: Stage, cfg: TrainConfig, run: Run) -> dict:
    """The training loop: AdamW with warmup + cosine decay over cfg.steps; one log record per step. -> the last."""
    optimizer = torch.optim.AdamW(stage.parameters, lr=cfg.lr, weight_decay=stage.weight_decay)
    schedule = _cosine(optimizer, cfg.steps)
    started = time.time()
    for step in (bar := tqdm(range(1, cfg.steps + 1), desc=stage.name)):
        losses = stage.losses(next(stage.batches))
        loss = losses["loss"]
        optimizer.zero_grad()
        loss.backward()
        if stage.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(stage.parameters, stage.clip_norm)
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        record = {"step": step, "loss": loss.item(), "lr": schedule.get_last_lr()[0], "seconds": time.time() - started}
        record |= {f"loss_{k}": v.item() for k, v in losses.items() if k != "loss"}
        if step % cfg.eval_every == 0 or step == cfg.steps:
            record.update(stage.evaluate())
            tqdm.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
        run.log(record)
    return record


class PerceptionRun(Run):
    """Paths and logs of the perception model: one per Whisper model, whatever the LLM."""

    def __init__(self, cfg: TrainConfig, whisper_name: str):
        self.cfg = cfg
        self.stem = perception_stem(whisper_name)
        self.dir = Path(cfg.features).parent.parent / "train" / self.stem
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "stage0.jsonl"


def head_targets(view: augment.View, dims: PerceptionDims) -> dict[str, torch.Tensor]:
    """One view's targets: the sound head's multi-hot, and each other head's class index (-1: not known)."""
    labels = view.clip["labels"]
    known = {"gender": labels.get("gender"), "rate": labels.get("rate"), "pitch": labels.get("pitch"),
             "instrument": labels.get("instrument")}
    out = {}
    for name, classes in dims.heads:
        if name == "sound":
            out[name] = multi_hot(view.sound_labels, classes)
        else:
            value = known.get(name) if view.partner is None else None  # a pair's second sound blurs the voice
            out[name] = torch.tensor(classes.index(value) if value in classes else -1)
    return out


def perception_loss(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per head: the sound head's softmax cross-entropy against the multi-hot spread evenly (tag_loss); the
    others' cross-entropy over the examples that have a label."""
    losses = {"sound": tag_loss(logits["sound"], targets["sound"])}
    for name, x in logits.items():
        if name != "sound" and (targets[name] >= 0).any():
            losses[name] = torch.nn.functional.cross_entropy(x, targets[name], ignore_index=-1)
    return losses


def _train_perception(cfg, run, clips, views, cache, whisper_id) -> dict:
    from ..data.labels import AUDIOSET_NAME, SOUND_LABELS
    from ..data.music import INSTRUMENTS

    sample = cache.features(views[0].key)
    heads = (("sound", tuple(SOUND_LABELS)), *VOICE_HEADS.items(), ("instrument", tuple(INSTRUMENTS)))
    dims = PerceptionDims(sample.shape[0], sample.shape[-1], heads, tuple(AUDIOSET_NAME[x] for x in SOUND_LABELS),
                          width=cfg.perception_width)
    model = PerceptionModel(dims)
    train_views = [v for v in views if v.clip["split"] == "train"]
    val_views = [v for v in views if v.clip["split"] == "validation"]
    counts = Counter(label for v in train_views for label in v.sound_labels)
    keys = [(v.clip["kind"], min(v.sound_labels, key=counts.__getitem__, default="")) for v in train_views]
    trained_voices = {v.clip["labels"]["voice"] for v in train_views if "voice" in v.clip["labels"]}

    def losses(batch: list[augment.View]) -> dict[str, torch.Tensor]:
        per_view = [head_targets(v, dims) for v in batch]
        targets = {name: torch.stack([t[name] for t in per_view]) for name, _ in heads}
        parts = perception_loss(model(featurize.stack(cache, [v.key for v in batch])), targets)
        return {"loss": sum(parts.values()), **parts}

    record = optimise(Stage("stage 0 (perception)", list(model.parameters()),
                            balanced_batches(train_views, keys, cfg.batch_size * 4, cfg.seed),  # no LLM: larger batches
                            losses, lambda: evaluate_perception(model, cache, val_views, trained_voices),
                            weight_decay=0.01), cfg, run)
    info = PerceptionInfo(whisper_id, f"stage 0 ({cfg.steps} steps, {len(train_views)} training views)")
    save_perception(model, info, run.checkpoint(0))
    return record


@torch.no_grad()
def evaluate_perception(model: PerceptionModel, cache, views: list[augment.View],
                        trained_voices: Collection[str] = ()) -> dict:
    """Validation per head and view: sound top-1 on single-label clips (all, the packages kept whole for
    validation = sources never trained on, and the noisy views), sound mAP, and each voice head's accuracy (also on
    the voices no training clip has, `_unseen_voices`, and on those alone that people recorded, `_recorded_unseen`)."""
    model.eval()
    parts = [head_probabilities(model, featurize.stack(cache, [v.key for v in views[start:start + 64]]))
             for start in range(0, len(views), 64)]
    model.train()
    scores = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    per_view = [head_targets(v, model.dims) for v in views]
    targets = {name: torch.stack([t[name] for t in per_view]).numpy() for name in scores}
    sound, truth = scores["sound"], targets["sound"]
    single = truth.sum(axis=1) == 1
    new_source = np.array([v.clip["provenance"][0]["package"] in VALIDATION_PACKAGES for v in views])
    out = {"val_mAP": mean_average_precision(sound, truth), "val_views": len(views)}
    subsets = {"val_top1": single, "val_top1_new_source": single & new_source}
    subsets |= {f"val_top1_{view}": single & np.array([v.name == view for v in views]) for view in augment.VIEWS}
    for name, keep in subsets.items():
        if keep.any():
            out[name] = float((truth[keep, sound[keep].argmax(axis=1)] == 1).mean())
    background = truth.sum(axis=1) == 0
    if background.any():  # how often quiet noise alone would be reported as an event
        out["val_background_named"] = float((sound[background].max(axis=1) >= EngineConfig.event_threshold).mean())
    seen = {"", *trained_voices}  # "": a mixture names no voice, and its speech is an espeak-ng clip of a trained one
    unseen = np.array([v.clip["labels"].get("voice", "") not in seen for v in views])
    recorded = np.array([v.clip["kind"] == "event" for v in views])  # speech events: voices people recorded
    for name in scores:
        if name != "sound" and (targets[name] >= 0).any():
            known = targets[name] >= 0
            right = scores[name].argmax(axis=1) == targets[name]
            out[f"val_{name}"] = float(right[known].mean())
            for subset, keep in (("unseen_voices", known & unseen), ("recorded_unseen", known & unseen & recorded)):
                if name in VOICE_HEADS and keep.any():
                    out[f"val_{name}_{subset}"] = float(right[keep].mean())
    return out


def _trained_perception(cfg: TrainConfig, whisper) -> PerceptionModel:
    """The perception model the LLM stages read events from: this run's stage 0, else the shipped one."""
    path = PerceptionRun(cfg, whisper.name).checkpoint(0)
    path = path if path.is_file() else resolve_perception(None, whisper)
    if path is None:
        raise FileNotFoundError(f"stage {cfg.stage} reads events from the perception model: run stage 0 first")
    return load_perception(path)[0]


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes that occur of the average precision (area under the precision-recall steps)."""
    aps = []
    for k in range(targets.shape[1]):
        positives = targets[:, k].sum()
        if positives == 0:
            continue
        order = np.argsort(-scores[:, k])
        hits = targets[order, k]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float((precision * hits).sum() / positives))
    return float(np.mean(aps)) if aps else float("nan")


# -- stages 1-3: through the LLM ------------------------------------------------------------------------------
def _train_with_llm(cfg, run, clips, cache, whisper_id, llm_path, perception) -> dict:
    from transformers import AutoModelForCausalLM

    train_records, val_records = load_records(cfg.data, "train"), load_records(cfg.data, "validation")
    rarest = rarest_labels([c for c in clips if c["split"] == "train"])  # what balanced sampling balances
    durations = {c["audio_id"]: c["duration"] for c in clips}

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    perception = perception.to(device).eval()  # frozen: it names the events, as at inference
    llm = LLM(llm_path, n_ctx=512)
    if cfg.stage == 1:  # the adapter's TLTR starts as the perception model's, its projector fresh
        p = perception.dims
        dims = AdapterDims(p.n_layers, p.whisper_width, llm.n_embd, p.width, p.time_heads, p.layer_heads)
        adapter = AudioAdapter(dims)
        adapter.tltr.load_state_dict(perception.tltr.state_dict())
        lineage = ("stage 0 (the perception model's TLTR)", "")  # (what trained it so far, the commands)
    else:
        previous = Path(cfg.start_from) if cfg.start_from else run.checkpoint(cfg.stage - 1)
        if not previous.is_file():
            raise FileNotFoundError(f"stage {cfg.stage} starts from {previous}: run stage {cfg.stage - 1} first")
        adapter, earlier = load_adapter(previous)
        p = perception.dims
        check_pairing(earlier, adapter.dims, whisper_id, p.n_layers, p.whisper_width, file_sha256(llm_path),
                      llm.n_embd, PROMPT_FORMAT, previous)
        # adapters from before recipes were recorded came from `--stage all` (their cards say so)
        lineage = (earlier.trained, earlier.recipe or "python -m engine.train --stage all")
    adapter.train()
    tokenizer = Tokenizer(llm, cfg.max_answer_tokens, MODES[STUDENT_MODE[cfg.objective]])
    model = AutoModelForCausalLM.from_pretrained(str(llm_path.parent), gguf_file=llm_path.name, dtype=torch.float32)
    model.requires_grad_(False)
    if cfg.stage == 1:
        adapter.start_projector_at(model.get_input_embeddings().weight.pow(2).mean().sqrt().item())
    if cfg.stage >= 2:
        start = Path(cfg.start_from).with_suffix(".lora.gguf") if cfg.start_from else run.lora_checkpoint(cfg.stage - 1)
        model = _with_lora(model, cfg, start)
    if cfg.stage == 1:  # the projector alone: no gradients through the TLTR (they would cost as much again)
        adapter.requires_grad_(False)
        adapter.projector.requires_grad_(True)
    trainable = [p for p in adapter.parameters() if p.requires_grad]
    trainable += [p for p in model.parameters() if p.requires_grad]
    tasks = CLASSIFICATION_TASKS if cfg.stage < 3 else None
    transcripts = cache.transcripts
    train_set = examples(train_records, {}, durations, tasks)  # training: the known spoken text
    val_set = examples(val_records, transcripts, durations, tasks)[:: max(1, len(val_records) // 400)]
    stream = balanced_batches(train_set, [(e.task, rarest[e.audio_id]) for e in train_set], cfg.batch_size, cfg.seed,
                              {"asr": cfg.asr_share} if cfg.asr_share and cfg.stage == 3 else None)
    if cfg.objective == "invariance":
        # the batches are drawn up front, so the teacher answers only what the stage will see: its cost follows
        # the steps (~2,000 questions in stage 1), not the data (27,000)
        drawn = [next(stream) for _ in range(cfg.steps)]
        descriptions = {c["audio_id"]: describe(c) for c in clips}
        teacher_path = resolve_llm(cfg.teacher)
        teacher = LLM(teacher_path, n_ctx=1024)
        targets = run.dir / f"invariance_targets_{teacher_path.stem.lower()}.json"
        unique = list(dict.fromkeys(e for batch in drawn for e in batch))
        target_of = dict(zip(unique, invariance_targets(unique, teacher, descriptions, targets,
                                                        cfg.max_answer_tokens)))
        # validation scores the same objective
        val_set = invariance_targets(val_set, teacher, descriptions, targets, cfg.max_answer_tokens)
        teacher.close()
        stream = iter([[target_of[e] for e in batch] for batch in drawn])
    model, adapter = model.to(device), adapter.to(device)
    embed = model.get_input_embeddings()
    coin = random.Random(cfg.seed)

    def loss(batch: list) -> dict:
        modes = draw_modes(tokenizer.mode, cfg.words_dropout, cfg.tokens_dropout, len(batch), coin)
        return {"loss": _lm_loss(model, adapter, perception, embed, tokenizer, cache, batch, device, modes)}

    record = optimise(Stage(f"stage {cfg.stage}", trainable, stream, loss,
                            lambda: evaluate_lm(model, adapter, perception, embed, tokenizer, cache, val_set, device),
                            clip_norm=1.0), cfg, run)
    left_out = [f"{what} left out of {share:.0%} of the prompts" for what, share, kept in (
        ("heard words", cfg.words_dropout, tokenizer.mode.heard_words),
        ("acoustic tokens", cfg.tokens_dropout, tokenizer.mode.acoustic_tokens)) if share and kept]
    this = f"stage {cfg.stage} ({', '.join([f'{cfg.steps} steps', f'objective {cfg.objective}', *left_out])})"
    info = AdapterInfo(whisper_id, llm_path.name, file_sha256(llm_path), PROMPT_FORMAT,
                       "; ".join(x for x in (lineage[0], this) if x),
                       " && ".join(x for x in (lineage[1], cfg.command) if x))
    save_adapter(adapter, info, run.checkpoint(cfg.stage))
    if cfg.stage >= 2:
        _save_lora(model, run.lora_checkpoint(cfg.stage))
    return record


def _lm_forward(model, adapter, perception, embed, tokenizer, cache, batch, device, modes=None):
    """[pad] + 25 acoustic vectors + prompt + answer per example, left-padded; positions count from the first
    real vector, as llama.cpp numbers them at inference. Each example is asked as its mode says (`modes`, default
    the tokenizer's): the acoustic vectors where it has them, and the events, voice and instrument the perception
    model hears (perception.read, as the engine's listen does) where it has the heard words.
    -> (answer logits, their targets)."""
    modes = modes or [tokenizer.mode] * len(batch)
    features = featurize.stack(cache, [e.audio_id for e in batch]).to(device)
    audio_tokens = adapter(features)
    probabilities = head_probabilities(perception, features)  # the whole batch in one pass, then each clip
    heard = [read(perception.dims, {h: p[i:i + 1] for h, p in probabilities.items()}, [(0.0, e.duration)],
                  EngineConfig.event_threshold, EngineConfig.max_events) for i, e in enumerate(batch)]
    ids, targets = collate(tokenizer, batch, heard, modes)
    audio = [a if m.acoustic_tokens else a[:0] for a, m in zip(audio_tokens, modes)]
    inputs = left_pad([torch.cat([a, embed(torch.tensor(t, device=device))]) for a, t in zip(audio, ids)], 0.0)
    labels = left_pad([torch.tensor([IGNORE] * len(a) + t) for a, t in zip(audio, targets)], IGNORE).to(device)
    mask = left_pad([torch.ones(len(a) + len(t), dtype=torch.long) for a, t in zip(audio, ids)], 0).to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    keep = max(sum(1 for x in t if x != IGNORE) for t in targets) + 1  # the answers and the position before them
    logits = model(inputs_embeds=inputs, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
    return logits[:, :-1], labels[:, -keep + 1:]


def _lm_loss(model, adapter, perception, embed, tokenizer, cache, batch, device, modes=None) -> torch.Tensor:
    logits, labels = _lm_forward(model, adapter, perception, embed, tokenizer, cache, batch, device, modes)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


def tag_loss(logits: torch.Tensor, multi_hot: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy against the multi-hot target spread evenly (a mixture: half speech, half its
    event); a window with no class (background noise) is pulled toward the uniform distribution, "nothing
    here", which stays under the event threshold. Whisper-AT uses per-class sigmoids on AudioSet; on these
    ~1,000 mostly single-label clips they learned far slower (validation top-1 0.11 against 0.46 after 200
    steps)."""
    empty = multi_hot.sum(dim=-1, keepdim=True) == 0
    target = torch.where(empty, torch.ones_like(multi_hot), multi_hot)
    return torch.nn.functional.cross_entropy(logits, target / target.sum(dim=-1, keepdim=True))


@torch.no_grad()
def evaluate_lm(model, adapter, perception, embed, tokenizer, cache, val_set, device) -> dict:
    """Validation loss, and the share of answers whose every token is the argmax (teacher-forced exact match)."""
    model.eval()
    adapter.eval()
    losses, exact = [], []
    for start in range(0, len(val_set), 8):
        batch = val_set[start:start + 8]
        logits, labels = _lm_forward(model, adapter, perception, embed, tokenizer, cache, batch, device)
        losses.append(torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(),
                                                        ignore_index=IGNORE).item())
        answer = labels != IGNORE
        exact.extend(((logits.argmax(-1) == labels) | ~answer).all(dim=1).tolist())
    model.train()
    adapter.train()
    return {"val_loss": float(np.mean(losses)), "val_exact": float(np.mean(exact)), "val_examples": len(val_set)}


def _with_lora(model, cfg: TrainConfig, previous: Path):
    """The LLM with a fresh LoRA, or the one in `previous` (a stage's safetensors, or a shipped GGUF)."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=["q_proj", "v_proj"], bias="none")
    heads = (model.config.num_attention_heads, model.config.num_key_value_heads)
    model = get_peft_model(model, config)
    if previous.suffix == ".gguf":
        from .export import lora_from_gguf

        set_peft_model_state_dict(model, lora_from_gguf(previous, get_peft_model_state_dict(model), *heads))
    elif previous.is_file():
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(previous)))
    return model


def _save_lora(model, path: Path) -> None:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in get_peft_model_state_dict(model).items()}, str(path))


def _cosine(optimizer, steps: int, warmup: int = 20):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def ship(cfg: TrainConfig, stages: list[int]) -> Path:
    """Copy what `stages` trained into `cfg.out`: stage 0 -> the perception model; the last of stages 1-3 ->
    the adapter and the LoRA as GGUF, under the name the engine finds for this Whisper + LLM pair; each with its
    training logs, a loss plot and a card."""
    whisper = resolve_whisper(cfg.whisper)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = Path(cfg.data) / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    target = None
    if 0 in stages:
        run = PerceptionRun(cfg, whisper.name)
        model, info = load_perception(run.checkpoint(0))
        target = out / f"{run.stem}.safetensors"
        save_perception(model, info, target, dtype=torch.float16)
        rows = [json.loads(line) for line in (run.dir / "stage0.jsonl").read_text().splitlines()]
        (out / f"{run.stem}.training.json").write_text(json.dumps({"stage0": rows}, indent=0))
        plot_losses({"perception": rows}, out / f"{run.stem}.losses.png")
        features = json.loads((Path(cfg.features) / "summary.json").read_text())
        write_perception_card(out / f"{run.stem}.md", run.stem, rows, manifest, asdict(info), asdict(model.dims),
                              features)
        print(f"shipped the perception model: {target}")
    if max(stages) == 0:
        return target
    llm_path = resolve_llm(cfg.llm)
    run = Run(cfg, whisper.name, llm_path)
    # the stage just trained, not the latest checkpoint in the cache: a fresh stage 2 after an older stage 3 run
    # shipped that stage 3 (found 2026-12-03)
    stage = max(stages)
    target = out / f"{run.stem}.safetensors"
    adapter, info = load_adapter(run.checkpoint(stage))
    save_adapter(adapter, info, target, dtype=torch.float16)  # git holds the shipped copy: half the size
    lora_target = target.with_suffix(".lora.gguf")
    lora_target.unlink(missing_ok=True)
    if stage >= 2:
        export_lora(run.lora_checkpoint(stage), llm_path, lora_target, cfg)
    # a run continued from shipped weights (--start-from) descends from them, not from this cache's earlier stages:
    # the card and the plot show their stages (the training.json beside them), then this one
    earlier = Path(cfg.start_from).with_suffix(".training.json") if cfg.start_from else None
    before = json.loads(earlier.read_text()) if earlier and earlier.is_file() else {}
    logs = dict(before)
    for s in STAGES:
        path = run.dir / f"stage{s}.jsonl"
        if 0 < s <= stage and path.is_file() and (s == stage or not cfg.start_from):
            key = f"stage{s}"
            while key in logs:  # "stage3 (continued)" after the stage 3 it started from
                key += " (continued)"
            logs[key] = [json.loads(line) for line in path.read_text().splitlines()]
    (out / f"{run.stem}.training.json").write_text(json.dumps(logs, indent=0))
    plot_losses(logs, out / f"{run.stem}.losses.png")
    write_card(out / "README.md", run.stem, logs, manifest,
               {**asdict(info), "lora": stage >= 2, "lora_r": cfg.lora_r, "lora_alpha": cfg.lora_alpha,
                "objective": cfg.objective, "teacher": cfg.teacher})
    print(f"shipped stage {stage}: {target}" + (f" + {lora_target}" if stage >= 2 else ""))
    return target


def export_lora(checkpoint: Path, llm_path: Path, target: Path, cfg: TrainConfig) -> None:
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from .export import lora_gguf_tensors, write_lora_gguf

    config = AutoConfig.from_pretrained(str(llm_path.parent), gguf_file=llm_path.name)
    tensors = lora_gguf_tensors(load_file(str(checkpoint)), config.num_attention_heads, config.num_key_value_heads)
    write_lora_gguf(tensors, target, LLM(llm_path, n_ctx=256).arch, cfg.lora_alpha)


def plot_losses(logs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(logs), figsize=(4 * len(logs), 3), squeeze=False)
    for ax, (stage, rows) in zip(axes[0], logs.items()):
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=0.6, label="train")
        val = [r for r in rows if "val_loss" in r]
        if val:
            ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation")
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.legend()
    axes[0][0].set_ylabel("loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
