"""What the server allows, read once from the environment. Gradio's own variables keep their meaning
(GRADIO_SERVER_NAME, GRADIO_SERVER_PORT); the rest are LTU_AS_*."""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.config import EngineConfig

DEFAULT_HOST = "127.0.0.1"  # local only unless GRADIO_SERVER_NAME says otherwise (a Space sets 0.0.0.0)
DEFAULT_PORT = 7860  # Gradio's and Hugging Face Spaces' port
MB = 1 << 20
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _number(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, not {value!r}") from None


def default_concurrency() -> int:
    """How many analyses (and, separately, answers) run at once. The engine serialises each stage itself, so
    more workers only help to overlap one user's listening with another's answer: one per two cores on CPU,
    two on a GPU."""
    import torch

    if torch.cuda.is_available():
        return 2
    return max(1, min(4, (os.cpu_count() or 1) // 2))


@dataclass(frozen=True)
class AppSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_upload_mb: float = 25.0  # an uploaded file or a base64 `input_audio` larger than this is refused
    max_duration: float = 600.0  # seconds of audio one clip may last (the engine's own default is an hour)
    analyze_timeout: float = 600.0  # seconds to transcribe and encode one clip (600 s of audio takes ~1 min)
    answer_timeout: float = 120.0  # seconds an answer may keep generating
    concurrency: int = 1  # Gradio queue workers per event
    max_queue: int = 32  # waiting requests per event; more are told the server is busy
    engines: int = 2  # distinct model sets kept loaded (a session that picks another LLM loads a second)
    whisper: str = "base"
    custom_llm: bool = True  # may a visitor point the app at another GGUF file on this machine?

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @classmethod
    def from_env(cls) -> "AppSettings":
        host = os.environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST
        # visitors may name a GGUF file on the server only when the server is reachable from this machine alone
        local = host in LOOPBACK and not os.environ.get("SPACE_ID")
        return cls(host=host,
                   port=int(_number("GRADIO_SERVER_PORT", DEFAULT_PORT)),
                   max_upload_mb=_number("LTU_AS_MAX_UPLOAD_MB", cls.max_upload_mb),
                   max_duration=_number("LTU_AS_MAX_DURATION", cls.max_duration),
                   analyze_timeout=_number("LTU_AS_ANALYZE_TIMEOUT", cls.analyze_timeout),
                   answer_timeout=_number("LTU_AS_ANSWER_TIMEOUT", cls.answer_timeout),
                   concurrency=int(_number("LTU_AS_CONCURRENCY", 0)) or default_concurrency(),
                   max_queue=int(_number("LTU_AS_MAX_QUEUE", cls.max_queue)),
                   engines=max(1, int(_number("LTU_AS_ENGINES", cls.engines))),
                   whisper=EngineConfig().whisper,  # LTU_AS_WHISPER, read where the engine reads it
                   custom_llm=os.environ.get("LTU_AS_CUSTOM_LLM", "1" if local else "0") == "1")
