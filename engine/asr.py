"""Spoken text {S}: whisper.cpp (through pywhispercpp) transcribes the whole clip into timed segments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .audio import SAMPLE_RATE
from .errors import Deadline
from .threads import Threads, thread_source

# Whisper writes sound descriptions such as "[Music]" or "(dog barking)" when it hears no speech: not speech.
NON_SPEECH = re.compile(r"^\s*[\[(*♪][^\])*♪]*[\])*♪]?\s*$")
CHUNK_SECONDS = 30.0  # Whisper's own window: longer audio is transcribed in chunks of at most this
MIN_CHUNK_SECONDS = 20.0  # a chunk is cut at the quietest point between this and CHUNK_SECONDS
LOUDNESS_FRAME = SAMPLE_RATE // 10  # 100 ms: the unit of loudness for cuts and onsets


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
    def __init__(self, ggml_path: Path, threads: Threads | int = 2, language: str | None = None):
        """`threads`: the thread count, or a function asked before each chunk (engine/threads.py)."""
        from pywhispercpp.model import Model

        self.threads = thread_source(threads)
        self._model = Model(str(ggml_path), redirect_whispercpp_logs_to=None, n_threads=self.threads(),
                            print_progress=False, print_realtime=False)
        self.multilingual = bool(_native().whisper_is_multilingual(self._model._ctx))
        self.language = language or ("" if self.multilingual else "en")  # "" = detect (whisper.cpp)

    def __call__(self, audio: np.ndarray, progress: bool = False, deadline: Deadline | None = None,
                 language: str | None = None) -> Transcript:
        """Transcribe `audio` in chunks of at most 30 s cut at quiet points. Each chunk is decoded on its own:
        whisper.cpp's running context over a long recording drifts into repeating itself and skipping speech.
        The language is `language`, else the one this model was given, else whisper.cpp detects it once, on
        the loudest chunk (an encoder pass of its own), and holds it for the whole recording."""
        from pywhispercpp.utils import redirect_stderr

        deadline = deadline or Deadline(None, "transcription")
        rms = frame_rms(audio)  # one loudness measure serves the cuts, the onsets and the language's chunk
        chunks = quiet_chunks(rms, audio.size)
        if len(chunks) > 1:
            chunks = sound_onsets(rms, chunks)
        energy = [np.square(rms[first // LOUDNESS_FRAME : -(-last // LOUDNESS_FRAME)]).mean() if last - first >= LOUDNESS_FRAME else 0.0
                  for first, last in chunks]
        loudest = int(np.argmax(energy))
        order = [loudest, *(i for i in range(len(chunks)) if i != loudest)]
        language = language or self.language
        segments: list[Segment] = []
        # whisper.cpp logs to the stderr file descriptor; silence it unless a progress bar is shown there anyway
        with tqdm(total=round(audio.size / SAMPLE_RATE), unit="s", desc="transcribe", disable=not progress) as bar, \
                redirect_stderr(to=False if progress else None):
            for i in order:
                deadline.check("transcription")
                first, last = chunks[i]
                raw = self._model.transcribe(np.ascontiguousarray(audio[first:last], dtype=np.float32),
                                             language=language, abort_callback=deadline.expired,
                                             extract_probability=True, n_threads=self.threads())
                deadline.check("transcription")
                if language == "":
                    language = self.detected_language()
                offset = first / SAMPLE_RATE
                segments += [Segment(round(offset + s.t0 / 100, 2), round(offset + s.t1 / 100, 2), s.text.strip(),
                                     float(s.probability))
                             for s in raw if s.text.strip() and not NON_SPEECH.match(s.text)]
                bar.update(round((last - first) / SAMPLE_RATE))
        segments.sort(key=lambda s: s.start)
        return Transcript(" ".join(s.text for s in segments), language or "en", tuple(segments))

    def detected_language(self) -> str:
        native = _native()
        return native.whisper_lang_str(native.whisper_full_lang_id(self._model._ctx)) if self.multilingual else "en"


def frame_rms(audio: np.ndarray) -> np.ndarray:
    """The loudness of each 100 ms frame."""
    n = audio.size // LOUDNESS_FRAME
    return np.sqrt(np.square(audio[: n * LOUDNESS_FRAME].reshape(n, LOUDNESS_FRAME), dtype=np.float64).mean(axis=1))


def quiet_chunks(rms: np.ndarray, n_samples: int, longest: float = CHUNK_SECONDS,
                 shortest: float = MIN_CHUNK_SECONDS) -> list[tuple[int, int]]:
    """(first, last) sample ranges of at most `longest` s covering `n_samples` of audio whose 100 ms frames have
    loudness `rms`, each cut (past `shortest` s) in the middle of the quietest frame, so that words are not split
    between chunks."""
    chunks, first = [], 0
    while n_samples - first > longest * SAMPLE_RATE:
        low, high = (first + int(shortest * SAMPLE_RATE)) // LOUDNESS_FRAME, (first + int(longest * SAMPLE_RATE)) // LOUDNESS_FRAME
        cut = (low + int(np.argmin(rms[low:high]))) * LOUDNESS_FRAME + LOUDNESS_FRAME // 2
        chunks.append((first, cut))
        first = cut
    chunks.append((first, n_samples))
    return chunks


def sound_onsets(rms: np.ndarray, chunks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each chunk started 0.5 s before its first frame louder than 4x the recording's noise floor (its 10th
    percentile frame): Whisper dates a chunk's first words from the chunk's start, whatever precedes them."""
    threshold = 4 * np.percentile(rms, 10) + 1e-4
    out = []
    for first, last in chunks:
        loud = np.flatnonzero(rms[first // LOUDNESS_FRAME : last // LOUDNESS_FRAME] > threshold)
        out.append((first + max(0, int(loud[0]) * LOUDNESS_FRAME - SAMPLE_RATE // 2) if loud.size else first, last))
    return out


def _native():
    import _pywhispercpp

    return _pywhispercpp
