"""The tasks: which question each clip is asked, and how the answers are scored (stated rules, no judge model).

Each task scores a list of `Item`s (one clip's answer in one mode) into named metrics; the first metric is the
task's headline number (used by the ablation table and the plots). Rules, as RESULTS.md states them:

asr          "Can you identify the spoken text?" (LTU-AS), on speech and on speech over a sound event (the mix
             sets: the words must come out whatever else is heard). The longest double-quoted span of the answer
             if it has one, else the whole answer, against the reference: corpus WER after `text.normalize`.
             Whisper's own transcript is scored the same way ("whisper" rows). The answer is a quote (the asked
             type) if that scored text holds none of the words a caption uses (speech, speaker, speaking, says,
             voice, sound, sounds, heard, recording, audio, background, male, female, man, woman) unless the
             reference holds it too.
sound        "Write an audio caption describing the sound." (LTU-AS). The caption's closest SOUND_LABELS name by
             embedding cosine = the prediction. The perception model's own top-1 and mAP come from window_tags
             (max over windows), on every set: targets are the event, "speech", "music", or speech + event.
gender       "What is the gender of the speaker?" Rule: the first gender word (female/woman/girl/lady/she/her vs
             male/man/boy/gentleman/he/his/him); no gender word: the closer of "male"/"female" by embedding.
rate         "How fast is the speaker talking? Answer slow, normal or fast." Rule: the first rate word
             (slow/slowly/leisurely; normal/moderate/average/medium/regular; fast/quick/quickly/rapid/rapidly);
             none: the closest of the three by embedding.
instrument   "What instrument is playing?" The answer's closest instrument name (the 16 the music generator
             uses) by embedding cosine.
asr_asked    As asr, asked in words no training record uses (ASKED_FOR_WORDS, one per clip by a hash of its id:
             "What is said?" as a user types it); tests/test_eval.py checks that the training phrasings hold none.
joint        "What is said, and what else can be heard?" on speech over a sound event. Right only if both:
             speech: >= 60 % of the reference's content words (not stopwords) appear in the answer; sound: the
             answer with its quoted spans and the reference's words removed is closest (embedding) to the true
             event among SOUND_LABELS without "speech".
instruction  Open questions (not the training templates). Follows the instruction if all four hold: non-empty
             (>= 3 words); complete (generation stopped at end-of-turn, not at the token limit); no template
             echo (none of the prompt's scaffolding "Speech:", "Sounds:", "Audio:", the system prompt, nor the
             question or the transcript repeated as the whole answer); on topic (embedding cosine >= 0.3 with
             the question or with a reference description of the clip built from its labels).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.labels import LABEL_PHRASE, SOUND_LABELS
from ..data.music import INSTRUMENTS
from ..prompt import SYSTEM
from . import text as tx
from .match import Embedder
from .sets import EvalClip

ON_TOPIC_COSINE = 0.3
MIN_WORDS = 3
OPEN_QUESTIONS = (
    "What might be the setting of this recording, and why?",
    "Summarize what happens in this audio in one sentence.",
    "How might a listener feel when hearing this, and why?",
    "What would you expect to happen next in this scene?",
    "Who could be speaking here, and in what situation?",
    "Is there anything unusual about this recording? Explain.",
)
# "what is said?" as users ask it; engine.data.questions.PHRASINGS must never hold these (a test checks)
ASKED_FOR_WORDS = (
    "What is said?",
    "What are they saying?",
    "Can you tell me what was spoken?",
    "What do I hear someone say?",
)
GENDER_WORDS = {"female": {"female", "woman", "women", "girl", "lady", "feminine", "she", "her"},
                "male": {"male", "man", "men", "boy", "gentleman", "masculine", "he", "his", "him"}}
RATE_WORDS = {"slow": {"slow", "slowly", "leisurely", "slower"},
              "normal": {"normal", "moderate", "moderately", "average", "medium", "regular"},
              "fast": {"fast", "quick", "quickly", "rapid", "rapidly", "faster", "fastpaced"}}
CAPTION_WORDS = frozenset("speech speaker speaking says voice sound sounds heard recording audio background male "
                          "female man woman".split())
ECHO_MARKERS = ("speech:", "sounds:", "audio:", "speech: none", SYSTEM[:40].lower())


@dataclass
class Item:
    """One clip's answer in one mode, with what the engine heard."""

    clip: EvalClip
    answer: str
    stop_reason: str
    question: str
    transcript: str = ""  # Whisper's
    tags: np.ndarray | None = None  # tagging-head probability per SOUND_LABELS (max over windows)
    detail: dict = field(default_factory=dict)  # filled by scoring: what each rule decided


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    kinds: tuple[str, ...]  # which set kinds it runs on
    question: Callable[[EvalClip], str]
    score: Callable[[list[Item], Embedder], dict[str, float]]  # metric -> value; the first is the headline
    headline: str
    higher_is_better: bool = True
    chance: float | None = None  # the headline of a uniform random guess among the classes


def _first_keyword(answer: str, table: dict[str, set[str]]) -> str | None:
    for word in tx.words(answer):
        for cls, keys in table.items():
            if word in keys:
                return cls
    return None


def _classify_by_rule(items: list[Item], embedder: Embedder, table: dict[str, set[str]], truth: str) -> dict:
    right = by_rule = 0
    for item in items:
        guess = _first_keyword(item.answer, table)
        rule = guess is not None
        if guess is None:
            guess = embedder.closest(item.answer or "(no answer)", list(table))[0]
        item.detail.update(prediction=guess, by_rule=rule, correct=guess == item.clip.labels[truth])
        right += guess == item.clip.labels[truth]
        by_rule += rule
    return {"accuracy": right / len(items), "decided by keyword rule": by_rule / len(items)}


def is_quote(scored_text: str, reference: str) -> bool:
    """No caption word in the scored text that the reference does not say itself."""
    return not (set(tx.words(scored_text)) & CAPTION_WORDS) - set(tx.words(reference))


def score_asr(items: list[Item], embedder: Embedder) -> dict[str, float]:
    quotes = 0
    for item in items:
        hyp = tx.quoted_or_whole(item.answer)
        errors, n = tx.wer_counts(item.clip.labels["text"], hyp)
        quote = is_quote(hyp, item.clip.labels["text"])
        item.detail.update(scored_text=hyp, errors=errors, reference_words=n, quote=quote)
        quotes += quote
    return {"WER": tx.corpus_wer([(i.clip.labels["text"], tx.quoted_or_whole(i.answer)) for i in items]),
            "answer is a quote": quotes / len(items)}


def score_sound(items: list[Item], embedder: Embedder) -> dict[str, float]:
    return _classify_by_embedding(items, embedder, SOUND_LABELS, "label")


def score_gender(items: list[Item], embedder: Embedder) -> dict[str, float]:
    return _classify_by_rule(items, embedder, GENDER_WORDS, "gender")


def score_rate(items: list[Item], embedder: Embedder) -> dict[str, float]:
    return _classify_by_rule(items, embedder, RATE_WORDS, "rate")


def score_instrument(items: list[Item], embedder: Embedder) -> dict[str, float]:
    return _classify_by_embedding(items, embedder, list(INSTRUMENTS), "instrument")


def _classify_by_embedding(items: list[Item], embedder: Embedder, names: list[str], key: str) -> dict[str, float]:
    """The class whose name is nearest to the answer (sentence-embedding cosine) is the prediction."""
    right = 0
    for item in items:
        guess, cosine = embedder.closest(item.answer or "(no answer)", names)
        item.detail.update(prediction=guess, cosine=round(cosine, 3), correct=guess == item.clip.labels[key])
        right += guess == item.clip.labels[key]
    return {"accuracy": right / len(items)}


EVENT_LABELS = [label for label in SOUND_LABELS if label != "speech"]


def _rest_of_answer(answer: str, reference_text: str) -> str:
    """The answer without quoted spans and without the reference's words: what it says about the sound."""
    spoken = set(tx.words(reference_text))
    return " ".join(w for w in tx.words(tx.without_quotes(answer)) if w not in spoken)


def score_joint(items: list[Item], embedder: Embedder) -> dict[str, float]:
    both = speech = sound = 0
    for item in items:
        lab = item.clip.labels
        recall = tx.key_word_recall(lab["text"], item.answer)
        rest = _rest_of_answer(item.answer, lab["text"])
        guess = embedder.closest(rest, EVENT_LABELS)[0] if rest else None
        speech_ok, sound_ok = recall >= tx.SAID_RECALL, guess == lab["event"]
        item.detail.update(key_word_recall=round(recall, 3), sound_text=rest, sound_prediction=guess,
                           speech_ok=speech_ok, sound_ok=sound_ok, correct=speech_ok and sound_ok)
        both, speech, sound = both + (speech_ok and sound_ok), speech + speech_ok, sound + sound_ok
    n = len(items)
    return {"both right": both / n, "speech right": speech / n, "sound right": sound / n}


def _hashed(questions: tuple[str, ...]) -> Callable[[EvalClip], str]:
    """One of `questions` per clip, fixed by a hash of its id."""
    return lambda clip: questions[int(hashlib.sha1(clip.id.encode()).hexdigest()[:8], 16) % len(questions)]


open_question = _hashed(OPEN_QUESTIONS)


def reference_description(clip: EvalClip) -> str:
    lab = clip.labels
    parts = []
    if "text" in lab:
        parts.append(f"A {lab.get('gender', '')} speaker says: {lab['text']}".replace("  ", " "))
    if "event" in lab:
        parts.append(f"The sound of {LABEL_PHRASE[lab['event']]} can be heard.")
    if "label" in lab and lab["label"] in LABEL_PHRASE:
        parts.append(f"The sound of {LABEL_PHRASE[lab['label']]}.")
    if "instrument" in lab:
        parts.append(f"A {lab['instrument']} plays music.")
    return " ".join(parts) or "An audio recording."


def _is_echo(item: Item) -> bool:
    low = item.answer.lower()
    if any(marker in low for marker in ECHO_MARKERS):
        return True
    answer = tx.normalize(item.answer)
    return answer in (tx.normalize(item.question), tx.normalize(item.transcript),
                      tx.normalize(item.clip.labels.get("text", "")))


def score_instruction(items: list[Item], embedder: Embedder) -> dict[str, float]:
    counts = {"follows instruction": 0, "non-empty": 0, "complete (stopped at end of turn)": 0,
              "no template echo": 0, "on topic": 0}
    for item in items:
        non_empty = len(tx.words(item.answer)) >= MIN_WORDS
        complete = item.stop_reason == "eos"
        no_echo = not _is_echo(item)
        to_question = embedder.similarity(item.answer, item.question) if non_empty else 0.0
        to_reference = embedder.similarity(item.answer, reference_description(item.clip)) if non_empty else 0.0
        on_topic = max(to_question, to_reference) >= ON_TOPIC_COSINE
        ok = non_empty and complete and no_echo and on_topic
        item.detail.update(non_empty=non_empty, complete=complete, no_echo=no_echo, on_topic=on_topic,
                           cosine_question=round(to_question, 3), cosine_reference=round(to_reference, 3), correct=ok)
        for key, flag in zip(counts, (ok, non_empty, complete, no_echo, on_topic)):
            counts[key] += flag
    return {k: v / len(items) for k, v in counts.items()}


def _fixed(question: str) -> Callable[[EvalClip], str]:
    return lambda clip: question


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("asr", "Speech recognition", ("speech", "mix"), _fixed("Can you identify the spoken text?"), score_asr, "WER",
         higher_is_better=False),
    Task("asr_asked", "Speech recognition, asked in untrained words", ("speech", "mix"), _hashed(ASKED_FOR_WORDS),
         score_asr, "WER", higher_is_better=False),
    Task("sound", "Sound-event classification", ("event",), _fixed("Write an audio caption describing the sound."),
         score_sound, "accuracy", chance=1 / len(SOUND_LABELS)),
    Task("gender", "Speaker gender", ("speech",), _fixed("What is the gender of the speaker?"), score_gender,
         "accuracy", chance=1 / len(GENDER_WORDS)),
    Task("rate", "Speaking rate", ("speech",),
         _fixed("How fast is the speaker talking? Answer slow, normal or fast."), score_rate, "accuracy",
         chance=1 / len(RATE_WORDS)),
    Task("instrument", "Music instrument", ("music",), _fixed("What instrument is playing?"), score_instrument,
         "accuracy", chance=1 / len(INSTRUMENTS)),
    Task("joint", "Joint audio and speech", ("mix",), _fixed("What is said, and what else can be heard?"),
         score_joint, "both right"),
    Task("instruction", "Instruction following", ("mix",), open_question, score_instruction, "follows instruction"),
)}


# ---------------------------------------------------------------- the listening stages' own scores


def whisper_wer(items: Sequence[Item]) -> float:
    return tx.corpus_wer([(i.clip.labels["text"], i.transcript) for i in items])


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the precision-recall curve, ranking by score (ties in input order)."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order].astype(float)
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def sound_labels(clip: EvalClip) -> list[str]:
    """The sound head's targets for a clip: its event, "speech", "music", or speech + the event."""
    if clip.kind == "event":
        return [clip.labels["label"]]
    if clip.kind == "speech":
        return ["speech"]
    if clip.kind == "music":
        return ["music"]
    return ["speech", clip.labels["event"]]


def tagging_scores(items: Sequence[Item]) -> dict[str, float]:
    """The sound head: top-1 accuracy (its strongest class is one of the clip's labels), and mAP over the
    classes that are present in some clips and absent from others (a class in every clip has AP 1 whatever the
    scores; such sets report top-1 only)."""
    tags = np.stack([i.tags for i in items])
    truth = np.zeros_like(tags, dtype=bool)
    for row, item in enumerate(items):
        for label in sound_labels(item.clip):
            truth[row, SOUND_LABELS.index(label)] = True
    scores = {"tagging top-1 accuracy": float(np.mean(truth[np.arange(len(items)), tags.argmax(axis=1)]))}
    ranked = [k for k in range(len(SOUND_LABELS)) if 0 < truth[:, k].sum() < len(items)]
    if ranked:
        scores["tagging mAP"] = float(np.mean([average_precision(tags[:, k], truth[:, k]) for k in ranked]))
    return scores
