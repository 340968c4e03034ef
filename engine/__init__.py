"""LTU-AS, offline: listen to audio (speech and sounds together) and answer questions about it.

    import engine
    eng = engine.load()                       # embedded default models, resolved and loaded once
    # engine.load(llm="qwen2.5-coder-0.5b")   # a larger named LLM, after `python -m engine weights --get NAME`
    ctx = eng.analyze("clip.wav")              # transcript, segments, events, acoustic tokens
    for piece in eng.ask(ctx, "Why is the mood tense?"):
        print(piece, end="")
"""

from .config import EngineConfig, SamplingOptions
from .errors import InputError, LtuError, ModelError


def load(config: EngineConfig | None = None, **overrides):
    """Resolve and load every model (see EngineConfig for the options); returns an `Engine`."""
    from .pipeline import load as _load

    return _load(config, **overrides)


__all__ = ["EngineConfig", "SamplingOptions", "InputError", "LtuError", "ModelError", "load"]
