"""Audio Instruction Generation (AIG, the LTU-AS paper's open-ended Open-ASQA data): a local LLM reads a
plain-words description of a clip made from its labels and writes one question a listener might ask, with
its answer. A filter keeps only well-formed pairs that state the clip's key fact, and they become Open-ASQA
records of task "open_aig" in train.json / validation.json (by the clip's split).

    python -m engine.data instruct [--data DIR] [--clips N] [--llm PATH]

Decoding is greedy from a cleared KV cache, and the few-shot examples are chosen by a hash of the clip id,
so a rerun with the same model and clips writes the same records.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..config import SamplingOptions
from ..llm import LLM
from ..weights import file_sha256, resolve_llm
from .build import default_out_dir, load_clips, write_json
from .labels import CATEGORY_PHRASE, LABEL_CATEGORY, LABEL_PHRASE
from .music import INSTRUMENTS
from .questions import DATASETS, PATTERN_PHRASE, loudness_answer
from .speech import ENGLISH_VOICES, OTHER_VOICES

TASK = "open_aig"
SPLITS = ("train", "validation")
KINDS = ("event", "speech", "music", "mix")
MIN_ANSWER_WORDS, MAX_ANSWER_WORDS = 3, 40
COPY_NGRAM = 6  # this many words in a row taken from the instructions or examples count as copying them

SYSTEM = ("You write one question that a listener might ask about an audio recording, and its answer. "
          "Use only the facts in the description. Reply in the form: Q: <question> A: <answer>")


@dataclass(frozen=True)
class Shot:
    """A hand-written example: a clip description and the question-answer pair it should lead to."""

    description: str
    question: str
    answer: str


# Two examples per kind; each prompt shows one of every kind, the clip's own kind last (nearest the query).
SHOTS: dict[str, tuple[Shot, Shot]] = {
    "event": (
        Shot("A 2.4 second recording of a dog barking (an animal sound).",
             "What animal can be heard in this recording?", "A dog, barking several times."),
        Shot("A 6.0 second recording of rain (a sound of nature).",
             "What is the weather like where this was recorded?", "It is raining: steady rain can be heard."),
    ),
    "speech": (
        Shot("A 3.1 second recording of a female voice with a high pitch speaking English quickly. "
             "She says: \"Please close the window before you leave.\"",
             "What does the woman ask the listener to do?", "She asks them to close the window before they leave."),
        Shot("A 2.2 second recording of a male voice with a low pitch speaking French slowly. "
             "He says: \"Le train part à midi.\"",
             "What language is the man speaking, and what does he say?",
             "He speaks French, saying that the train leaves at noon."),
    ),
    "music": (
        Shot("A 5.0 second recording of a violin playing a short melody in D minor at 70 beats per minute, "
             "a slow tempo.",
             "Which instrument plays the melody, and how fast is it?", "A violin plays it at a slow tempo."),
        Shot("A 4.0 second recording of a trumpet playing arpeggios in G major at 140 beats per minute, a fast tempo.",
             "What mood does this music suggest?",
             "A bright, lively mood: a trumpet plays fast arpeggios in a major key."),
    ),
    "mix": (
        Shot("A 10.0 second recording of a female voice saying \"The meeting starts at nine.\" in English, while "
             "the sound of a siren can be heard from 1.2 s to 6.5 s, quieter than the speech "
             "(10 dB signal-to-noise ratio).",
             "Where might the speaker be?",
             "Probably outdoors in a city: a siren passes while the woman says the meeting starts at nine."),
        Shot("A 7.5 second recording of a male voice saying \"Could you pass the salt?\" in English, while the "
             "sound of thunder can be heard from 0.0 s to 7.5 s, about as loud as the speech "
             "(0 dB signal-to-noise ratio).",
             "Is the background sound easy to hear over the speech?",
             "Yes, the thunder is about as loud as the man asking for the salt."),
    ),
}

# Words that carry no fact: left out of the key-fact words of a label phrase or transcript.
STOPWORDS = frozenset(
    "a an the of in on at to and or but is are was were be being been it its this that these those with for "
    "from by as so some someone he she his her him they them their you your we our us i me my do does did has "
    "have had will would can could not no yes there here what who when where which how".split())
GENDER_WORDS = {"male": {"male", "man", "men", "boy", "gentleman"},
                "female": {"female", "woman", "women", "girl", "lady"}}
GENDER_PRONOUN = {"male": "he", "female": "she"}  # the speaker's; "him"/"her" may be the listener
INSTRUMENT_MODIFIERS = {"electric", "acoustic"}  # "electric" alone does not name the instrument
LANGUAGES = ["English", *OTHER_VOICES]
ACCENTS = list(ENGLISH_VOICES.values())
RATE_WORDS = {"slow": {"slow", "slowly"}, "normal": set(), "fast": {"fast", "quickly", "quick"}}
TEMPOS = ("slow", "moderate", "fast")
LONG_UNITS = {"minute", "minutes", "hour", "hours"}  # no clip lasts that long (music: "beats per minute")
GENRES = frozenset("jazz blues classical opera symphony reggae techno disco funk".split())  # never labelled
NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
                "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
                "hundred": 100, "thousand": 1000, "million": 1000000}  # not "one": it is also a pronoun


@dataclass(frozen=True)
class InstructOptions:
    data: Path = field(default_factory=default_out_dir)
    clips: int = 300  # at most this many clips get a question
    llm: str | None = None  # a GGUF path; None = the default model (engine.weights.resolve_llm)
    threads: int = 1
    max_tokens: int = 80
    seed: int = 0  # picks the clips and each clip's examples
    progress: bool = True


@dataclass(frozen=True)
class Judgement:
    question: str
    answer: str
    reason: str | None  # why the pair was rejected; None when accepted


# ---------------------------------------------------------------- the prompt


def _recording(clip: dict[str, Any]) -> str:
    return f"{clip['duration']:.1f} second recording"


def describe(clip: dict[str, Any]) -> str:
    """The clip in plain words, from its labels only (the LLM never hears the audio)."""
    kind, lab = clip["kind"], clip["labels"]
    if kind == "event":
        category = CATEGORY_PHRASE[LABEL_CATEGORY[lab["label"]]]
        return f"A {_recording(clip)} of {LABEL_PHRASE[lab['label']]} ({category})."
    if kind == "speech":
        pitch = {"low": "a low", "normal": "a medium", "high": "a high"}[lab["pitch"]]
        pace = {"slow": "slowly", "normal": "at a normal pace", "fast": "quickly"}[lab["rate"]]
        accent = f" with a {lab['accent']} accent" if lab.get("accent") and lab["language"] == "English" else ""
        pronoun = "She" if lab["gender"] == "female" else "He"
        return (f"A {_recording(clip)} of a {lab['gender']} voice with {pitch} pitch speaking {lab['language']}"
                f"{accent} {pace}. {pronoun} says: \"{lab['text']}\"")
    if kind == "music":
        return (f"A {_recording(clip)} of a {lab['instrument']} playing {PATTERN_PHRASE[lab['pattern']]} in "
                f"{lab['key']} {lab['mode']} at {lab['tempo_bpm']} beats per minute, a {lab['tempo']} tempo.")
    if kind == "mix":
        loudness = loudness_answer(lab["snr_db"]).lower()
        return (f"A {_recording(clip)} of a {lab['gender']} voice saying \"{lab['text']}\" in {lab['language']}, "
                f"while the sound of {LABEL_PHRASE[lab['event']]} can be heard from {lab['event_start']:.1f} s "
                f"to {lab['event_end']:.1f} s, {loudness} ({lab['snr_db']} dB signal-to-noise ratio).")
    raise ValueError(f"unknown clip kind {kind!r}")


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big")


def prompt_messages(clip: dict[str, Any], seed: int = 0) -> list[dict[str, str]]:
    """System instructions, one example per kind (the clip's kind last), then the clip's description."""
    pick = _hash(f"{seed}:{clip['id']}")
    kinds = [k for k in KINDS if k != clip["kind"]] + [clip["kind"]]
    messages = [{"role": "system", "content": SYSTEM}]
    for i, kind in enumerate(kinds):
        shot = SHOTS[kind][(pick >> i) & 1]
        messages += [{"role": "user", "content": shot.description},
                     {"role": "assistant", "content": f"Q: {shot.question} A: {shot.answer}"}]
    messages.append({"role": "user", "content": describe(clip)})
    return messages


# ---------------------------------------------------------------- parsing and the quality filter

_QA = re.compile(r"\b(?:Q|Question)\s*:\s*(?P<q>.+?)\s*\b(?:A|Answer)\s*:\s*(?P<a>.+)", re.DOTALL | re.IGNORECASE)


def parse_qa(output: str) -> tuple[str, str] | None:
    """(question, answer) from "Q: ... A: ..." (or "Question: ... Answer: ..."); the answer ends at a line
    break or at the next "Q:" or "A:". None when there is no such pair."""
    found = _QA.search(output)
    if not found:
        return None
    question = " ".join(found["q"].split()).strip("* ")  # "*" from markdown bold markers
    answer = re.split(r"\n|\s(?:Q|Question|A|Answer)\s*:", found["a"].strip(), maxsplit=1, flags=re.IGNORECASE)[0]
    answer = answer.strip("* ")
    return (question, answer) if question and answer else None


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _stem(word: str) -> str:
    """Crude stemming so "barks", "barking" and "bark" compare equal (but "string" stays whole)."""
    for suffix in ("ing", "ed", "s"):
        rest = word[: -len(suffix)]
        if word.endswith(suffix) and len(rest) >= 3 and re.search("[aeiouy]", rest):
            word = rest
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    return word


def key_words(clip: dict[str, Any]) -> set[str]:
    """Stems of the words of which an answer must contain one: the sound event, the instrument, or for
    speech a word of the transcript or the speaker's gender (mixtures: also the background event)."""
    kind, lab = clip["kind"], clip["labels"]
    words: set[str] = set()
    if kind == "event":
        words |= set(_words(LABEL_PHRASE[lab["label"]])) | set(_words(lab["label"]))
    elif kind == "music":
        words |= set(_words(lab["instrument"])) - INSTRUMENT_MODIFIERS
    else:
        words |= set(_words(lab["text"])) | GENDER_WORDS.get(lab["gender"], set())
        if kind == "mix":
            words |= set(_words(LABEL_PHRASE[lab["event"]])) | set(_words(lab["event"]))
    return {_stem(w) for w in words if w not in STOPWORDS and len(w) >= 2}


def wrong_words(clip: dict[str, Any]) -> set[str]:
    """Stems of words that give a labelled attribute another value than the clip's: an instrument or music
    genre the labels do not name; minutes or hours (clips last seconds); the other gender, language or accent
    for speech; another mode or tempo for music. Words of the transcript are exempt."""
    kind, lab = clip["kind"], clip["labels"]
    named = set(_words(" ".join(lab.get(key, "") for key in ("label", "event", "instrument"))))
    wrong = ({_words(name)[-1] for name in INSTRUMENTS} | GENRES) - named  # head nouns: "bass" may be a register
    if kind in ("speech", "mix"):
        other = "female" if lab["gender"] == "male" else "male"
        wrong |= GENDER_WORDS[other] | {GENDER_PRONOUN[other]}
        wrong |= {language.lower() for language in LANGUAGES} - {lab["language"].lower()}
        wrong |= {accent.lower() for accent in ACCENTS} - {lab.get("accent", "").lower()}
    if kind == "speech":
        wrong |= set().union(*(words for rate, words in RATE_WORDS.items() if rate != lab["rate"]))
    if kind == "music":
        wrong |= {"major", "minor"} - {lab["mode"]}
        wrong |= set(TEMPOS) - {lab["tempo"]}
    else:
        wrong |= LONG_UNITS
    return {_stem(w) for w in wrong - set(_words(lab.get("text", "")))}


def _numbers(text: str) -> set[str]:
    """The numbers in `text`, normalised: "2.0", "2" and "two" are all "2"."""
    digits = {f"{float(n):g}" for n in re.findall(r"\d+(?:\.\d+)?", text)}
    return digits | {f"{NUMBER_WORDS[w]:g}" for w in _words(text) if w in NUMBER_WORDS}


def contradicts(question: str, answer: str, clip: dict[str, Any], description: str) -> bool:
    """Whether the pair names another value of a labelled attribute (`wrong_words`), or the answer states a
    number the description does not have (a made-up duration, count or measure)."""
    said = {_stem(w) for w in _words(f"{question} {answer}")}
    return bool(said & wrong_words(clip)) or not _numbers(answer) <= _numbers(description)


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def copies_scaffolding(text: str, messages: list[dict[str, str]]) -> bool:
    """Whether `text` repeats the prompt's instructions or examples: an example's question or answer, a
    run of COPY_NGRAM words from them that the clip's own description lacks, or a format placeholder."""
    if re.search(r"<\s*(question|answer)\s*>|<\||\bdescription\b", text, re.IGNORECASE):
        return True
    scaffold = [m["content"] for m in messages[:-1]]
    examples = {" ".join(_words(part)) for m in messages[1:-1] if m["role"] == "assistant"
                for part in re.split(r"\s*\bA:\s*", m["content"].removeprefix("Q:"))}
    words = _words(text)
    if " ".join(words) in examples:
        return True
    borrowed = set().union(*(_ngrams(_words(s), COPY_NGRAM) for s in scaffold))
    return bool((_ngrams(words, COPY_NGRAM) & borrowed) - _ngrams(_words(messages[-1]["content"]), COPY_NGRAM))


def judge(output: str, clip: dict[str, Any], messages: list[dict[str, str]],
          accepted: set[tuple[str, str]]) -> Judgement:
    """Accept or reject one LLM output for `clip`. `accepted` holds the normalised pairs kept so far
    (the caller adds this one when accepted)."""
    parsed = parse_qa(output)
    if parsed is None:
        return Judgement("", "", "unparsable")
    question, answer = parsed
    n_words = len(_words(answer))
    if not question.endswith("?"):
        reason = "question without '?'"
    elif n_words < MIN_ANSWER_WORDS:
        reason = "answer too short"
    elif n_words > MAX_ANSWER_WORDS:
        reason = "answer too long"
    elif copies_scaffolding(question, messages) or copies_scaffolding(answer, messages):
        reason = "copies the prompt"
    elif contradicts(question, answer, clip, messages[-1]["content"]):
        reason = "contradicts the description"
    elif not {_stem(w) for w in _words(answer)} & key_words(clip):
        reason = "misses the key fact"
    elif normalised_pair(question, answer) in accepted:
        reason = "duplicate"
    else:
        reason = None
    return Judgement(question, answer, reason)


def normalised_pair(question: str, answer: str) -> tuple[str, str]:
    return " ".join(_words(question)), " ".join(_words(answer))


# ---------------------------------------------------------------- generation


def choose_clips(clips: list[dict[str, Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Up to `n` clips taken from the kinds in turn; within a kind, train and validation clips are
    interleaved in proportion to their numbers (each in an order fixed by a hash of the clip id)."""
    by_kind: dict[str, list[tuple[float, dict]]] = defaultdict(list)
    for kind in KINDS:
        for split in SPLITS:
            group = sorted((c for c in clips if c["kind"] == kind and c["split"] == split),
                           key=lambda c: _hash(f"{seed}:{c['id']}"))
            by_kind[kind] += [((i + 0.5) / len(group), c) for i, c in enumerate(group)]
    ranked = []
    for k, kind in enumerate(KINDS):
        for rank, (_, clip) in enumerate(sorted(by_kind[kind], key=lambda pair: pair[0])):
            ranked.append(((rank, k), clip))
    return [clip for _, clip in sorted(ranked, key=lambda pair: pair[0])[:n]]


def generate_output(llm: LLM, clip: dict[str, Any], options: InstructOptions) -> tuple[str, list[dict[str, str]]]:
    """The LLM's raw reply to the clip's prompt, and the prompt's messages."""
    messages = prompt_messages(clip, options.seed)
    sampling = SamplingOptions(temperature=0.0, max_tokens=options.max_tokens, seed=options.seed, timeout=60.0)
    llm.reset()  # decode every prompt from scratch: the reply then does not depend on the clips before it
    return "".join(llm.generate([llm.render_chat(messages)], sampling)), messages


def make_record(clip: dict[str, Any], question: str, answer: str) -> dict[str, Any]:
    lab = clip["labels"]
    return {
        "instruction": question,
        "input": lab.get("text", "") if clip["kind"] in ("speech", "mix") else "",
        "audio_id": clip["audio_id"],
        "dataset": DATASETS[clip["kind"]],
        "task": TASK,
        "output": answer,
        "labels": lab,
        "split": clip["split"],
    }


def generate_records(llm: LLM, clips: list[dict[str, Any]], options: InstructOptions) -> tuple[list[dict], dict]:
    """Accepted records for `clips`, and the counts: tried, accepted, rejected per reason, examples."""
    accepted: set[tuple[str, str]] = set()
    records: list[dict[str, Any]] = []
    rejected: Counter = Counter()
    rejected_examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    bar = tqdm(clips, desc="instruct", unit="clip", disable=not options.progress)
    for clip in bar:
        output, messages = generate_output(llm, clip, options)
        verdict = judge(output, clip, messages, accepted)
        if verdict.reason is None:
            accepted.add(normalised_pair(verdict.question, verdict.answer))
            records.append(make_record(clip, verdict.question, verdict.answer))
        else:
            rejected[verdict.reason] += 1
            if len(rejected_examples[verdict.reason]) < 3:
                rejected_examples[verdict.reason].append({"clip": clip["id"], "output": output})
        bar.set_postfix(accepted=len(records))
    counts = {"tried": len(clips), "accepted": len(records), "rejected": dict(sorted(rejected.items())),
              "accepted_per_kind": dict(Counter(r["dataset"] for r in records)),
              "accepted_per_split": dict(Counter(r["split"] for r in records)),
              "rejected_examples": dict(rejected_examples)}
    return records, counts


def instruct(options: InstructOptions) -> dict[str, Any]:
    """Generate for up to `options.clips` clips of the dataset in `options.data`, replace the earlier
    open_aig records of its train.json and validation.json with the accepted ones, and write instruct.json."""
    started = time.perf_counter()
    data = Path(options.data).expanduser()
    chosen = choose_clips(load_clips(data), options.clips, options.seed)
    model_path = resolve_llm(options.llm)
    llm = LLM(model_path, n_ctx=2048, threads=options.threads)
    try:
        generating = time.perf_counter()
        records, counts = generate_records(llm, chosen, options)
        generate_seconds = time.perf_counter() - generating
    finally:
        llm.close()
    for split in SPLITS:
        path = data / f"{split}.json"
        kept = [r for r in json.loads(path.read_text()) if r.get("task") != TASK] if path.is_file() else []
        write_json(path, kept + [r for r in records if r["split"] == split])
    summary = {
        "model": {"path": str(model_path), "sha256": file_sha256(model_path)},
        **counts,
        "seconds": round(time.perf_counter() - started, 1),
        "seconds_per_clip": round(generate_seconds / max(1, len(chosen)), 2),
        "options": {"clips": options.clips, "seed": options.seed, "max_tokens": options.max_tokens,
                    "threads": options.threads},
    }
    write_json(data / "instruct.json", summary)
    return summary
