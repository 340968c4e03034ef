"""Spoken text {S}: whisper.cpp (through pywhispercpp) transcribes the whole clip into timed segments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .audio import SAMPLE_RATE

# Whisper writes sound descriptions such as "[Music]" or "(dog barking)" when it hears no speech: not speech.
NON_SPEECH = re.compile(r"^\s*[\[(*♪][^\])*♪]*[\])*♪]?\s*$")


@dataclass(frozen=True)
class Segment:
    start: float  # seconds
    end: float
    text: str
    probability: float  # geometric mean of the token probabilities


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    segments: tuple[Segment, ...]

    @property
    def has_speech(self) -> bool:
        return bool(self.text)

    def timed_text(self) -> str:
        """Segments with their times, for prompts about long audio: '[12.0-15.5 s] words'."""
        return "\n".join(f"[{s.start:.1f}-{s.end:.1f} s] {s.text}" for s in self.segments)


class WhisperASR:
    def __init__(self, ggml_path: Path, n_threads: int = 2, language: str | None = None):
        from pywhispercpp.model import Model

        self._model = Model(str(ggml_path), redirect_whispercpp_logs_to=None, n_threads=n_threads,
                            print_progress=False, print_realtime=False)
        self.multilingual = bool(_native().whisper_is_multilingual(self._model._ctx))
        self.language = language or ("" if self.multilingual else "en")  # "" = detect (whisper.cpp)

    def __call__(self, audio: np.ndarray, progress: bool = False) -> Transcript:
        duration = audio.size / SAMPLE_RATE
        from pywhispercpp.utils import redirect_stderr

        # whisper.cpp logs to the stderr file descriptor; silence it unless a progress bar is shown there anyway
        with tqdm(total=round(duration), unit="s", desc="transcribe", disable=not progress) as bar, \
                redirect_stderr(to=False if progress else None):
            def advance(segment) -> None:
                bar.update(max(0, min(round(segment.t1 / 100), bar.total) - bar.n))

            raw = self._model.transcribe(np.ascontiguousarray(audio, dtype=np.float32), language=self.language,
                                         new_segment_callback=advance if progress else None, extract_probability=True)
        segments = tuple(Segment(s.t0 / 100, s.t1 / 100, s.text.strip(), float(s.probability))
                         for s in raw if s.text.strip() and not NON_SPEECH.match(s.text))
        native = _native()
        language = native.whisper_lang_str(native.whisper_full_lang_id(self._model._ctx)) if self.multilingual else "en"
        return Transcript(" ".join(s.text for s in segments), language, segments)


def _native():
    import _pywhispercpp

    return _pywhispercpp
