"""The engine: audio -> (transcript {S}, acoustic tokens {A}, events) -> prompt -> LLM -> streamed answer.

    engine = load()                      # models resolved and loaded once
    context = engine.analyze("clip.wav")  # listen: ASR + encoder + TLTR, once per clip
    for piece in engine.ask(context, "What is happening?"):
        print(piece, end="")
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from . import audio as audio_io
from . import focus, native
from .asr import LOUDNESS_FRAME, Transcript, WhisperASR, frame_rms
from .audio import WINDOW_SECONDS, AudioSource, Window
from .config import MODES, EngineConfig, SamplingOptions
from .errors import Deadline, InputError
from .features import WhisperLayerFeatures
from .language import LanguageID
from .llm import LLM, GenerationStats
from .prompt import PROMPT_FORMAT, build_prompt, describe_audio
from .threads import CoreMonitor
from .perception import Heard, PerceptionInfo, Voice, check_whisper, listen, load_perception
from .tltr import AdapterDims, AdapterInfo, AudioAdapter, Event, check_pairing, load_adapter
from .weights import resolve

PROMPT_OVERHEAD = 400  # context positions for the system text, the question, the history and the template


@dataclass
class AudioContext:
    """What the engine heard in one clip; reusable for any number of questions."""

    id: str  # digest of the samples and the adapter: names the acoustic tokens in the KV cache
    duration: float
    transcript: Transcript
    events: list[Event]
    voice: Voice | None  # the perception model's reading of the voice, where it hears speech
    instrument: str | None  # and of the instrument, where it hears music
    windows: list[Window]  # every 10 s window of the clip
    window_tokens: np.ndarray  # (len(windows), 25, n_embd): each window's acoustic tokens
    window_tags: np.ndarray  # (len(windows), sound classes) the perception model's sound probabilities
    window_loudness: np.ndarray  # (len(windows),) RMS of each window's loudest 100 ms
    timings: dict[str, float] = field(default_factory=dict)

    def audio_tokens(self, windows: Sequence[Window]) -> np.ndarray:
        """The acoustic tokens of `windows`, in order: (len(windows) * 25, n_embd)."""
        return self.window_tokens[[w.index for w in windows]].reshape(-1, self.window_tokens.shape[-1])

    def to_dict(self) -> dict:
        return {"duration": round(self.duration, 3), "transcript": self.transcript.text,
                "language": self.transcript.language,
                "segments": [asdict(s) for s in self.transcript.segments],
                "events": [asdict(e) for e in self.events],
                "voice": asdict(self.voice) if self.voice else None, "instrument": self.instrument}


class AnswerStream:
    """Iterate for the answer's text pieces as they are generated; afterwards `text`, `stats`, `timings`."""

    def __init__(self, pieces: Iterator[str], stats: GenerationStats, mode: str, windows: list[Window]):
        self._pieces = pieces
        self.stats = stats
        self.mode = mode
        self.windows = windows  # the 10 s windows whose acoustic tokens the LLM was given (soft mode)
        self.text = ""

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            self.text += piece
            yield piece

    def read(self) -> str:
        for _ in self:
            pass
        return self.text.strip()

    def close(self) -> None:
        """Stop generating (a client went away): frees the LLM for the next caller at once."""
        self._pieces.close()

    @property
    def timings(self) -> dict[str, float]:
        s = self.stats
        return {"prefill": s.prefill_seconds, "first_token": s.first_token_seconds, "generate": s.generate_seconds,
                "tokens_per_s": s.tokens_per_second}


class Engine:
    def __init__(self, config: EngineConfig | None = None):
        self.config = config = config or EngineConfig()
        found = resolve(config)  # every file found and the LLM checked before any model loads
        self.whisper, self.llm_path, self.llm_sha256 = found.whisper, found.llm, found.llm_sha256
        adapter_path, self.lora_path, self.perception_path = found.adapter, found.lora, found.perception
        device = config.torch_device
        self.features = WhisperLayerFeatures(self.whisper.hf_dir, device)
        self.perception, self.perception_info = None, PerceptionInfo(self.whisper.id, "none")
        if self.perception_path is not None:  # keyed to the Whisper model only: any LLM can read what it hears
            self.perception, self.perception_info = load_perception(self.perception_path)
            check_whisper(self.perception_info, self.perception.dims, self.whisper.id, self.features.n_layers,
                          self.features.width, self.perception_path)
            self.perception = self.perception.to(device)
        native.probe_whisper(self.whisper.ggml_path)  # a child process dies here, not this one
        self.cores = CoreMonitor(config.n_threads)
        self.threads = self.cores.free
        self.asr = WhisperASR(self.whisper.ggml_path, self.threads, config.language)
        # a multilingual Whisper with no language given: the language comes from the acoustic path's encoder pass
        self.language_id = LanguageID(self.whisper.hf_dir, device) if self.asr.language == "" else None
        self.llm = LLM(self.llm_path, config.n_ctx, config.n_batch, self.threads, config.gpu_layers, self.lora_path,
                       config.llama_extra_bufts)
        if adapter_path is not None:
            self.adapter, self.adapter_info = load_adapter(adapter_path)
            check_pairing(self.adapter_info, self.adapter.dims, self.whisper.id, self.features.n_layers,
                          self.features.width, self.llm_sha256, self.llm.n_embd, PROMPT_FORMAT, adapter_path)
        else:  # no trained weights for this pair: the machinery runs, and every output says it is untrained
            self.adapter, self.adapter_info = _untrained_adapter(self, self.llm.n_embd)
        self.adapter = self.adapter.to(device).eval()
        self.adapter_path = adapter_path
        self._device = device
        self._listen_lock = threading.Lock()  # whisper.cpp and the encoder are used by one caller at a time
        self._llm_lock = threading.Lock()  # one KV cache: one conversation decodes at a time

    @property
    def trained(self) -> bool:
        return self.adapter_info.trained != "untrained"

    def warnings(self, mode: str, context: AudioContext | None = None) -> list[str]:
        """What a user should know about the answers in `mode`, and on `context` (the CLI and the app show them)."""
        deaf = ([] if self.perception is not None else
                [f"no perception model for Whisper {self.whisper.name}: no sound events or voice are named"])
        if not MODES[mode].acoustic_tokens:
            return deaf
        if self.trained:
            if context is not None and len(context.windows) > 1:
                if self.config.max_windows == 1:
                    return [f"soft mode hears one 10 s window of this {context.duration:.0f} s recording (the one "
                            "the question points at, else the loudest); the transcript covers all of it"]
                return [f"soft mode was trained on 10 s clips; this {context.duration:.0f} s recording gives it "
                        f"{min(len(context.windows), self.config.max_windows)} windows of acoustic tokens at once and "
                        "its answers there are unreliable (cascade and tags modes are not affected)"]
            return deaf
        return deaf + [f"no trained adapter for {self.whisper.id} + {self.llm_path.name}: in soft mode the acoustic "
                       "tokens are untrained (random projector); tags and cascade modes work with any LLM"]

    @property
    def models(self) -> dict:
        return {"whisper": self.whisper.id, "whisper_source": self.whisper.source, "llm": self.llm_path.name,
                "llm_sha256": self.llm_sha256[:12], "adapter": str(self.adapter_path or "untrained (random init)"),
                "adapter_training": self.adapter_info.trained, "lora": str(self.lora_path or "none"),
                "perception": str(self.perception_path or "none"), "perception_training": self.perception_info.trained,
                "device": self._device, "prompt_format": PROMPT_FORMAT}

    def analyze(self, source: AudioSource, progress: bool = False, sample_rate: int | None = None) -> AudioContext:
        """Listen to a clip once: transcript, per-window events, and the acoustic tokens for the LLM."""
        timings: dict[str, float] = {}
        self.cores.mark()  # the decoding below is part of the load reading the native stages choose threads by
        clock = time.perf_counter()
        samples = audio_io.load_audio(source, self.config.max_duration, sample_rate)
        timings["decode"] = time.perf_counter() - clock
        windows = audio_io.windows(samples)
        rms, per_window = frame_rms(samples), audio_io.WINDOW_SAMPLES // LOUDNESS_FRAME  # one pass, no per-window copies
        frames = [rms[w.index * per_window:(w.index + 1) * per_window] for w in windows]
        loudness = np.array([f.max(initial=0.0) for f in frames])
        detect = self.language_id is not None
        with self._listen_lock:
            deadline = Deadline(self.config.analyze_timeout, "analysing the audio")
            clock = time.perf_counter()
            torch.set_num_threads(self.threads())
            # the language is read from the window with the most energy, in the same encoder pass
            speechiest = int(np.argmax([np.square(f).mean() if f.size else 0.0 for f in frames])) if detect else None
            features, final = self.features.encode(samples, windows, progress=progress, deadline=deadline,
                                                   final_of=speechiest)
            language = self.language_id(final)[0] if detect else None
            timings["encoder"] = time.perf_counter() - clock
            clock = time.perf_counter()
            transcript = self.asr(samples, progress=progress, deadline=deadline, language=language)
            timings["asr"] = time.perf_counter() - clock
            clock = time.perf_counter()
            features = features.to(self._device)
            with torch.inference_mode():
                tokens = self.adapter(features)
            heard = (listen(self.perception, features, [(w.start, w.end) for w in windows], self.config.event_threshold,
                            self.config.max_events) if self.perception is not None else Heard({}, [], None, None))
            timings["tltr"] = time.perf_counter() - clock
        window_tags = heard.probabilities.get("sound", np.zeros((len(windows), 0), dtype=np.float32))
        digest = hashlib.sha1(samples.tobytes())
        digest.update(str(self.adapter_path).encode())
        return AudioContext(digest.hexdigest()[:16], samples.size / audio_io.SAMPLE_RATE, transcript, heard.events,
                            heard.voice, heard.instrument, windows, tokens.float().cpu().numpy(), window_tags,
                            loudness, timings)

    @property
    def sound_labels(self) -> tuple[str, ...]:
        """The classes of `AudioContext.window_tags` (none without a perception model)."""
        return self.perception.dims.classes("sound") if self.perception is not None else ()

    def ask(self, context: AudioContext, question: str, history: Sequence[tuple[str, str]] = (),
            mode: str | None = None, sampling: SamplingOptions | None = None,
            session: str | None = None) -> AnswerStream:
        """Stream the answer to `question` about `context`; `history` holds earlier (question, answer) turns.
        `session` names the conversation whose KV cache to reuse (default: one per clip)."""
        name = mode or self.config.mode
        if name not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, not {name!r}")
        mode = MODES[name]
        question = (question or "").strip()
        if not question:
            raise InputError("the question is empty")
        sampling = sampling or self.config.sampling
        soft = mode.acoustic_tokens
        heard = context.transcript if mode.transcript else Transcript("", context.transcript.language, ())
        # a long recording: the windows and transcript segments nearest to what the question points at
        segments = heard.segments
        times = focus.anchors(question, context.duration, segments)
        windows = (focus.choose_windows(context.windows, times, self.config.max_windows, context.window_loudness)
                   if soft else [])
        n_audio = len(windows) * context.window_tokens.shape[1]
        room = self.config.n_ctx - n_audio - sampling.max_tokens - PROMPT_OVERHEAD
        kept = focus.nearest_segments(segments, times or [(w.start + w.end) / 2 for w in windows], 3 * room)
        timed = ""
        if context.duration > WINDOW_SECONDS:
            timed = Transcript(heard.text, heard.language, tuple(kept)).timed_text()
            if len(kept) < len(segments):
                timed += f"\n(the {len(kept)} of {len(segments)} speech segments nearest the question)"
        description = describe_audio(mode, heard.text, timed, [(e.label, e.start, e.end) for e in context.events],
                                     [(w.start, w.end) for w in windows],
                                     context.voice.describe() if context.voice else "",
                                     context.instrument or "")
        key = f"{context.id}:{','.join(str(w.index) for w in windows)}"  # other windows: other KV positions
        prompt, _ = build_prompt(self.llm, question, history, description, key if soft else None,
                                 context.audio_tokens(windows) if soft else None, reserve=sampling.max_tokens)
        stats = GenerationStats()

        def generate() -> Iterator[str]:  # a generator: the lock is held while tokens flow, released on close
            with self._llm_lock:
                self.llm.use_session(session or context.id, lora=mode.lora)
                yield from self.llm.generate(prompt, sampling, stats)

        return AnswerStream(generate(), stats, name, windows)


def _untrained_adapter(engine: Engine, n_embd: int) -> tuple[AudioAdapter, AdapterInfo]:
    torch.manual_seed(0)  # the same random projector every run, so results are at least reproducible
    dims = AdapterDims(engine.features.n_layers, engine.features.width, n_embd)
    info = AdapterInfo(engine.whisper.id, engine.llm_path.name, engine.llm_sha256, PROMPT_FORMAT, "untrained")
    return AudioAdapter(dims), info


def load(config: EngineConfig | None = None, **overrides) -> Engine:
    """Resolve and load every model: `load()` for the embedded defaults, `load(whisper="tiny.en")` etc."""
    config = (config or EngineConfig()).replace(**overrides) if overrides else (config or EngineConfig())
    return Engine(config)
