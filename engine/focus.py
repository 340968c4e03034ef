"""What of a long recording the LLM is shown for one question. The context holds at most `max_windows` blocks
of acoustic tokens and a few thousand transcript tokens, so a question that points somewhere ("in the middle",
"at 12:30", "at the end", or words that were said there) gets the windows and transcript segments around that
place, and the rest of the window budget is spread evenly so every part of the recording is still represented.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .asr import Segment
from .audio import WINDOW_SECONDS, Window

PLACES = {"start": 0.0, "beginning": 0.0, "begins": 0.0, "first": 0.0, "opening": 0.0, "middle": 0.5,
          "halfway": 0.5, "midway": 0.5, "end": 1.0, "ending": 1.0, "ends": 1.0, "last": 1.0, "final": 1.0}
UNITS = {"h": 3600, "hour": 3600, "hours": 3600, "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
         "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1}
# words of a question that say nothing about where to look
STOPWORDS = set("""what which when where who whom whose why how does did do is are was were be been the a an of in on
at to for from with about into this that these those there their them they it its said say says saying spoken
speak speaks speaker speakers speech talk talks talking recording audio clip sound sounds hear heard hearing
listen mentioned mention word words tell please could would should can you your any some anything something
happen happens happening part time moment while during after before then than just only also very""".split())


def anchors(question: str, duration: float, segments: Sequence[Segment], most_words: int = 3) -> list[float]:
    """The times (s) `question` points at, most explicit first: clock times and durations ("at 12:30", "after
    90 seconds", "minute 4"), places ("the middle", "the end"), then the segments sharing the most words with it."""
    text = question.lower()
    times: list[float] = []
    for h, m, s in re.findall(r"\b(?:(\d+):)?(\d{1,2}):(\d{2})\b", text):
        times.append(int(h or 0) * 3600 + int(m) * 60 + int(s))
    for value, unit in re.findall(r"\b(\d+(?:\.\d+)?)\s*(hours?|h|minutes?|mins?|m|seconds?|secs?|s)\b", text):
        times.append(float(value) * UNITS[unit])
    for number in re.findall(r"\bminute\s+(\d+)\b", text):
        times.append(int(number) * 60)
    for word in re.findall(r"[a-z]+", text):
        if word in PLACES:
            times.append(min(PLACES[word] * duration, max(0.0, duration - 1.0)))
    asked = {w for w in re.findall(r"[a-z']+", text) if len(w) > 2 and w not in STOPWORDS and w not in PLACES}
    overlap = [(len(asked & set(re.findall(r"[a-z']+", s.text.lower()))), (s.start + s.end) / 2) for s in segments]
    times += [t for n, t in sorted(overlap, key=lambda x: -x[0])[:most_words] if n > 0]
    return [t for t in dict.fromkeys(times) if 0 <= t <= duration]


def choose_windows(windows: Sequence[Window], times: Sequence[float], cap: int,
                   salience: Sequence[float] | None = None) -> list[Window]:
    """At most `cap` windows in time order: those holding `times` (and the neighbour nearest each time, as a
    sentence may cross the boundary), up to half the budget; the rest evenly spread over the recording. A
    single free slot cannot be spread: it goes to the most salient window (the engine's: the loudest)."""
    if len(windows) <= cap:
        return list(windows)
    picked: dict[int, None] = {}
    for t in times:
        if len(picked) >= max(1, cap // 2):
            break
        index = min(int(t // WINDOW_SECONDS), len(windows) - 1)
        neighbour = index + (1 if t % WINDOW_SECONDS > WINDOW_SECONDS / 2 else -1)
        for i in (index, neighbour):
            if 0 <= i < len(windows) and len(picked) < max(1, cap // 2):
                picked[i] = None
    others = [i for i in range(len(windows)) if i not in picked]
    slots = cap - len(picked)
    if slots == 1 and salience is not None:
        rest = [max(others, key=lambda i: salience[i])]
    else:
        rest = [others[k] for k in np.linspace(0, len(others) - 1, slots).round().astype(int)]
    return [windows[i] for i in sorted([*picked, *rest])]


def nearest_segments(segments: Sequence[Segment], times: Sequence[float], max_chars: int) -> list[Segment]:
    """The transcript segments nearest to `times` (or the first ones, without times) whose text fits in
    `max_chars`, in time order: all of them when they fit."""
    costs = [len(s.text) + 16 for s in segments]  # "[123.4-125.0 s] " and a newline
    if sum(costs) <= max_chars:
        return list(segments)
    order = range(len(segments))
    if times:
        order = np.argsort([min(abs((s.start + s.end) / 2 - t) for t in times) for s in segments], kind="stable")
    kept, used = [], 0
    for i in order:
        if used + costs[i] > max_chars:
            break
        kept.append(segments[i])
        used += costs[i]
    return sorted(kept, key=lambda s: s.start)
