"""Training examples: the data builder's records -> token sequences laid out exactly as the engine prompts at
inference: [25 acoustic vectors] + chat tokens (with what the perception model names: events, voice, instrument)
+ answer tokens."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from tqdm import tqdm

from ..audio import WINDOW_SECONDS
from ..config import Mode, SamplingOptions
from ..data.build import write_json
from ..eval.text import SAID_RECALL, key_word_recall, words
from ..llm import LLM, GenerationStats
from ..prompt import build_prompt, chat_messages, describe_audio
from ..perception import Heard

IGNORE = -100  # no loss on acoustic and prompt positions
# what the student is given, per objective: the template answers are learned with the heads' words in the prompt
# (soft, as the engine asks); under modal invariance the acoustic tokens must carry what the description says, so
# the student gets the tokens and the transcript only
STUDENT_MODE = {"answer": "soft", "invariance": "tokens"}
CLASSIFICATION_TASKS = {"cla_label", "cla_category", "speech_presence", "gender", "background_event", "instrument",
                        "language", "speech_rate", "pitch", "tempo"}


@dataclass(frozen=True)
class Example:
    audio_id: str
    question: str
    transcript: str
    answer: str
    task: str
    duration: float  # seconds: the span of the clip's one window, as the engine reports events


def load_records(data_dir: Path, split: str) -> list[dict]:
    path = Path(data_dir) / f"{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: build the data first (python -m engine.data build)")
    return json.loads(path.read_text())


def multi_hot(labels: list[str], classes: tuple[str, ...]) -> torch.Tensor:
    target = torch.zeros(len(classes))
    for label in labels:
        target[classes.index(label)] = 1.0
    return target


def examples(records: list[dict], transcripts: dict[str, str], durations: dict[str, float],
             tasks: set[str] | None = None) -> list[Example]:
    """QA examples; the transcript is Whisper's where the feature cache has one, else the record's input."""
    return [Example(r["audio_id"], r["instruction"], transcripts.get(r["audio_id"]) or r["input"], r["output"],
                    r["task"], min(durations[r["audio_id"]], WINDOW_SECONDS))
            for r in records if tasks is None or r["task"] in tasks]


class Tokenizer:
    """Prompt and answer tokens from llama.cpp's own tokenizer and chat template: training sees the very ids
    that inference decodes."""

    def __init__(self, llm: LLM, max_answer_tokens: int, mode: Mode):
        self.llm = llm
        self.max_answer_tokens = max_answer_tokens
        self.mode = mode
        self.end = llm.end_of_turn

    def prompt(self, example: Example, heard: Heard, mode: Mode | None = None) -> list[int]:
        """The chat tokens as `mode` asks (default: the tokenizer's; see `draw_modes`), with what the perception
        model heard as the engine writes it: the events, the voice where there is speech, the instrument."""
        mode = mode or self.mode
        description = describe_audio(mode, example.transcript, "", [(e.label, e.start, e.end) for e in heard.events],
                                     [(0.0, example.duration)], heard.voice.describe() if heard.voice else "",
                                     heard.instrument or "")
        return self.llm.render_chat(chat_messages(example.question, [], description))

    def answer(self, text: str) -> list[int]:
        return self.llm.tokenize(text)[: self.max_answer_tokens] + self.end


def draw_modes(base: Mode, words_dropout: float, tokens_dropout: float, n: int, rng: random.Random) -> list[Mode]:
    """The mode each of `n` training prompts is asked in: `base` (the student's), or, for a `words_dropout` share,
    without the heard words (as mode `tokens`: the acoustic tokens must carry what the perception model hears), or,
    for a `tokens_dropout` share, without the acoustic tokens (as mode `tags`: the one LoRA also serves the modes
    that send none; trained on soft prompts alone it came to need them). A part the base mode lacks stays out."""
    def one() -> Mode:
        draw = rng.random()
        if draw < words_dropout and base.heard_words:
            return replace(base, heard_words=False)
        if words_dropout <= draw < words_dropout + tokens_dropout and base.acoustic_tokens:
            return replace(base, acoustic_tokens=False)
        return base
    return [one() for _ in range(n)]


def collate(tokenizer: Tokenizer, batch: list[Example], heard: list[Heard],
            modes: list[Mode] | None = None) -> tuple[list[list[int]], list[list[int]]]:
    """`heard`: what the perception model heard in each example; `modes`: how each prompt is asked (default: the
    tokenizer's mode). -> per example: token ids (prompt + answer) and their targets (IGNORE on the prompt)."""
    ids, targets = [], []
    for example, reading, mode in zip(batch, heard, modes or [tokenizer.mode] * len(batch)):
        prompt, answer = tokenizer.prompt(example, reading, mode), tokenizer.answer(example.answer)
        ids.append(prompt + answer)
        targets.append([IGNORE] * len(prompt) + answer)
    return ids, targets


def left_pad(rows: list[torch.Tensor], value: float) -> torch.Tensor:
    """Stack (length, ...) rows padded on the left: every answer ends at the last position, so the LLM's
    output layer only has to run over the last few positions (it is the costliest part at 49k tokens)."""
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width, *rows[0].shape[1:]), value, dtype=rows[0].dtype)
    for i, row in enumerate(rows):
        out[i, width - len(row):] = row
    return out


def balanced_batches(items: list, keys: list[tuple], batch_size: int, seed: int,
                     group_shares: dict[str, float] | None = None):
    """Endless batches drawn with replacement: within a group (a key's first part, e.g. the task) every key
    (e.g. the clip's sound class) is equally likely; a group named in `group_shares` gets that share of each batch,
    the others split the rest in their natural proportions. The sound data is imbalanced (over 100 clips of
    groaning, under 10 of most classes): natural sampling taught the tagger and the LLM to answer the commonest
    classes."""
    counts = Counter(keys)
    group_size = Counter(key[0] for key in keys)
    group_keys = Counter(key[0] for key in counts)
    shares = {g: s for g, s in (group_shares or {}).items() if g in group_size}
    rest = sum(n for g, n in group_size.items() if g not in shares)
    share = {g: shares.get(g, (1 - sum(shares.values())) * n / max(rest, 1)) for g, n in group_size.items()}
    weights = [share[key[0]] / (group_keys[key[0]] * counts[key]) for key in keys]
    rng = random.Random(seed)
    while True:
        yield rng.choices(items, weights, k=batch_size)


def rarest_labels(clips: list[dict]) -> dict[str, str]:
    """audio_id -> the clip's least common tagging label (for a mixture, its event rather than "speech")."""
    counts = Counter(label for clip in clips for label in clip["labels"]["sound_labels"])
    return {clip["audio_id"]: min(clip["labels"]["sound_labels"], key=counts.__getitem__) for clip in clips}


def agrees(truth: str, answer: str) -> bool:
    """Whether `answer` states the ground truth: its first word for a yes/no truth, else SAID_RECALL of the
    truth's content words (the eval's joint-task rule)."""
    truth_words = words(truth)
    if truth_words in (["yes"], ["no"]):
        return words(answer)[:1] == truth_words
    return key_word_recall(truth, answer) >= SAID_RECALL


def invariance_targets(train_set: list[Example], teacher: LLM, descriptions: dict[str, str], path: Path,
                       max_tokens: int) -> list[Example]:
    """AudioChatLlama's modal invariance on rich descriptions: the target of each question is what a frozen
    LLM (`teacher`, no LoRA) answers when it reads the clip's description as text (engine.data.instruct.describe:
    every label the data builder knows, the transcript among them); the student hears the acoustic tokens and
    the transcript (STUDENT_MODE) and learns to give that answer. The ground truth stays where the teacher's
    answer did not end within `max_tokens` (the answer limit), or, for a closed question, misses the truth (`agrees`).
    Teacher answers are greedy and cached in `path` (text and whether it ended) with the sampling options that
    made them: other options start the cache afresh."""
    greedy = SamplingOptions(temperature=0.0, max_tokens=max_tokens)
    saved = json.loads(path.read_text()) if path.is_file() else {}
    cached = saved.get("answers", {}) if saved.get("sampling") == asdict(greedy) else {}
    out, kept = [], Counter()
    for example in tqdm(train_set, desc="teacher answers"):
        description = f"Description of the recording: {descriptions[example.audio_id]}"
        key = f"{example.question}\n{description}"
        if key not in cached:
            prompt, _ = build_prompt(teacher, example.question, [], description)
            stats = GenerationStats()
            text = "".join(teacher.generate(prompt, greedy, stats)).strip()
            cached[key] = {"answer": text, "ended": stats.stop_reason == "eos"}
            if len(cached) % 200 == 0:  # an interrupted run keeps what the teacher said so far
                write_json(path, {"sampling": asdict(greedy), "answers": cached}, indent=None)
        answer, ended = cached[key]["answer"], cached[key]["ended"]
        closed = example.task in CLASSIFICATION_TASKS or example.task in ("asr", "asr_none", "background_none")
        why = ("unfinished" if not (answer and ended) else "wrong" if closed and not agrees(example.answer, answer)
               else "teacher")
        kept[why] += 1
        out.append(replace(example, answer=answer) if why == "teacher" else example)
    write_json(path, {"sampling": asdict(greedy), "answers": cached}, indent=None)
    print(f"invariance targets: {kept['teacher']} teacher answers; the ground truth for {kept['wrong']} closed "
          f"questions the teacher got wrong and {kept['unfinished']} answers it did not end")
    return out
