"""The engines every session and request share: loaded lazily, once per model choice, the most recent few kept.

A session that keeps the defaults uses the same Engine as everyone else; one that picks another LLM, Whisper
or device gets (and loads, once) the Engine for that choice. The Engine serialises its own stages, so sharing
one between sessions is safe; its KV prefix cache makes switching sessions correct, only slower."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import ModelError
from engine.weights import DEFAULT_LLM, LLMS, LLMPackage, check_gguf, has_trained_adapter, installed_llm

from .settings import AppSettings

WHISPER_CHOICES = ("base", "tiny.en")


@dataclass(frozen=True)
class ModelChoice:
    """The settings that need another Engine (the rest, mode and sampling, are per question)."""

    whisper: str = "base"
    llm: str | None = None  # a named LLM (engine.weights.LLMS) or a GGUF path; None = the embedded default
    device: str = "auto"
    n_gpu_layers: int | None = None  # None = all layers on CUDA, none on CPU

    def describe(self) -> str:
        llm = Path(self.llm).name if self.llm else "default LLM"
        layers = "" if self.n_gpu_layers is None else f", {self.n_gpu_layers} GPU layers"
        return f"Whisper {self.whisper}, {llm}, device {self.device}{layers}"


def check_choice(whisper: str, llm: str | None, device: str, n_gpu_layers: float | None,
                 custom_llm: bool = True) -> ModelChoice:
    """A ModelChoice from the settings form, or ModelError with what to fix. `llm` is a named LLM (installed
    here) or, where the server allows it (`custom_llm`), a GGUF path. Cheap checks only: the Engine verifies
    the rest (pairing, conversion) when it loads."""
    if whisper not in WHISPER_CHOICES:
        raise ModelError(f"Whisper must be one of {', '.join(WHISPER_CHOICES)}, not {whisper!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "cuda" and not cuda_available():
        raise ModelError("device cuda was chosen but torch sees no CUDA GPU here")
    path = (llm or "").strip().strip('"').strip("'")
    if path in LLMS:
        if installed_llm(LLMS[path]) is None:
            raise ModelError(f"{path} is not installed on this server (python -m engine weights --get {path})")
    elif path and not custom_llm:
        raise ModelError(f"this server offers the LLMs {', '.join(p.name for p in installed_llms())} only")
    elif path:
        file = Path(path).expanduser()
        check_gguf(file)  # the form's answer now, not the Engine's after a load
        path = str(file.resolve())
    layers = None if n_gpu_layers is None or n_gpu_layers == "" else int(n_gpu_layers)
    if layers is not None and layers < -1:
        raise ModelError("GPU layers must be -1 (all), 0 (none) or a positive count")
    return ModelChoice(whisper, None if path in ("", DEFAULT_LLM) else path, device, layers)


def installed_llms() -> list[LLMPackage]:
    """The named LLMs this machine has (the default always, in practice)."""
    return [package for package in LLMS.values() if installed_llm(package) is not None]


def llm_label(package: LLMPackage) -> str:
    """How the picker names an LLM: its name, size, measured speed and the modes it is trained for."""
    modes = "all modes" if has_trained_adapter(package) else "tags and cascade; soft untrained"
    return f"{package.name}: {package.size / 1e6:.0f} MB, {package.speed}, {modes}"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def detected_device() -> str:
    """What `device="auto"` resolves to, for display."""
    import os

    if cuda_available():
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({os.cpu_count() or 1} cores)"


def close_stream(stream, pieces) -> None:
    """Stop an answer left early (a closed page or connection, an error) so the LLM is free for the next
    question now, not when the garbage collector finds the generator. `pieces` is `iter(stream)`."""
    pieces.close()
    stream.close()


class Engines:
    """Engine per ModelChoice, created on first use; at most `settings.engines` stay loaded: the default one
    always, others least recently used first out (a stream still answering keeps its Engine alive until done)."""

    def __init__(self, settings: AppSettings):
        self.settings = settings
        self.default = ModelChoice(whisper=settings.whisper)
        self._loaded: OrderedDict[ModelChoice, object] = OrderedDict()
        self._lock = threading.Lock()  # guards _loaded
        self._loading = threading.Lock()  # one load at a time: each takes the cores for 10-20 s
        self.load_seconds: dict[ModelChoice, float] = {}

    def config(self, choice: ModelChoice) -> EngineConfig:
        return EngineConfig.given(whisper=choice.whisper, llm=choice.llm, device=choice.device,
                                  n_gpu_layers=choice.n_gpu_layers, max_duration=self.settings.max_duration,
                                  analyze_timeout=self.settings.analyze_timeout)

    def get(self, choice: ModelChoice | None = None):
        """The Engine for `choice` (default: the embedded models), loading it if needed. Raises LtuError."""
        choice = choice or self.default
        with self._lock:
            if choice in self._loaded:
                self._loaded.move_to_end(choice)
                return self._loaded[choice]
        with self._loading:
            with self._lock:
                if choice in self._loaded:  # loaded by another session while this one waited
                    return self._loaded[choice]
            from engine.pipeline import Engine

            clock = time.perf_counter()
            engine = Engine(self.config(choice))
            self.load_seconds[choice] = time.perf_counter() - clock
            with self._lock:
                self._loaded[choice] = engine
                others = [c for c in self._loaded if c not in (self.default, choice)]  # oldest first; keep default
                for old in others[: max(0, len(self._loaded) - self.settings.engines)]:
                    del self._loaded[old]
            return engine

    def is_loaded(self, choice: ModelChoice | None = None) -> bool:
        with self._lock:
            return (choice or self.default) in self._loaded
