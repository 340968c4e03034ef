"""Text scoring: a Whisper-style English normaliser, word error rate, and key-word recall.

Pure functions on strings; no model, no download. The normaliser lower-cases, drops bracketed
annotations and punctuation, spells numbers out as words ("7" -> "seven", "3rd" -> "third") so a
reference written in words and a transcript written in digits compare equal, and folds a few
spelling variants. WER is the word-level edit distance (substitutions + deletions + insertions)
divided by the number of reference words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at "}
_SPELLING = {"ok": "okay", "mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "colour": "color",
             "favourite": "favorite", "centre": "center", "theatre": "theater", "grey": "gray", "metre": "meter",
             "kilometre": "kilometer", "kilometres": "kilometers", "travelled": "traveled", "neighbour": "neighbor",
             "neighbours": "neighbors", "organise": "organize", "realise": "realize", "cancelled": "canceled"}

# Words that carry no content: ignored by key-word recall.
STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from into onto over under up down out off about as is are "
    "was were be been being am do does did has have had will would shall should can could may might must i you he "
    "she it we they me him her us them my your his its our their this that these those there here so very too "
    "not no just than then please let lets s".split())


def number_words(n: int) -> str:
    """0 <= n < 10**9 in English words, without "and": 1205 -> "one thousand two hundred five"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    for size, name in ((10**6, "million"), (1000, "thousand")):
        if n >= size:
            high, rest = divmod(n, size)
            return f"{number_words(high)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise ValueError(n)


def ordinal_words(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _spell_number(match: re.Match) -> str:
    digits, fraction, suffix = match.group(1).replace(",", ""), match.group(2), (match.group(3) or "").lower()
    if len(digits) > 9:
        return " ".join(_ONES[int(d)] for d in digits)
    if suffix in ("st", "nd", "rd", "th") and not fraction:
        return f" {ordinal_words(int(digits))} "
    text = number_words(int(digits))
    if fraction:
        text += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return f" {text} {suffix} " if suffix else f" {text} "


def normalize(text: str) -> str:
    """Lower-case words separated by single spaces, numbers spelled out, no punctuation."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[\[(<][^\])>]*[\])>]", " ", text)  # [music], (laughs), <unk>
    text = re.sub(r"(\d+):(\d\d)", lambda m: f"{m.group(1)} {int(m.group(2))}" if m.group(2) != "00" else m.group(1),
                  text)  # 7:30 -> 7 30, 7:00 -> 7
    text = re.sub(r"\$(\d[\d,]*(?:\.\d+)?)", r"\1 dollars", text)
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    text = re.sub(r"(\d[\d,]*\d|\d)(?:\.(\d+))?(st|nd|rd|th|[a-z]+)?", _spell_number, text)
    text = re.sub(r"['’`]", "", text)  # don't -> dont on both sides
    text = re.sub(r"[^a-z0-9]+", " ", text)  # hyphens and every other mark split words
    return " ".join(_SPELLING.get(w, w) for w in text.split())


def words(text: str) -> list[str]:
    return normalize(text).split()


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (unit costs)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def wer_counts(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word errors, reference words) after normalising both sides."""
    ref, hyp = words(reference), words(hypothesis)
    return edit_distance(ref, hyp), len(ref)


def corpus_wer(pairs: Sequence[tuple[str, str]]) -> float:
    """Total word errors over total reference words for (reference, hypothesis) pairs."""
    errors = total = 0
    for reference, hypothesis in pairs:
        e, n = wer_counts(reference, hypothesis)
        errors, total = errors + e, total + n
    return errors / total if total else 0.0


def quoted_or_whole(answer: str) -> str:
    """The longest double-quoted span of `answer` if it has one ('The speaker says "..."'), else all of it."""
    spans = re.findall(r'"([^"]+)"|“([^”]+)”', answer)
    spans = [a or b for a, b in spans]
    return max(spans, key=len) if spans else answer


def key_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS}


SAID_RECALL = 0.6  # an answer holding this share of a reference's content words says it (eval's joint task, training)


def key_word_recall(reference: str, answer: str) -> float:
    """Share of the reference's content words (not in STOPWORDS) that the answer contains."""
    wanted = key_words(reference)
    return len(wanted & set(words(answer))) / len(wanted) if wanted else 1.0


def without_quotes(answer: str) -> str:
    """`answer` with its quoted spans removed: what it says besides repeating the speech."""
    return re.sub(r'"[^"]*"|“[^”]*”', " ", answer)
