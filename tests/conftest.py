from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/clips.py
import clips  # noqa: E402

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def speech_clip(clip_dir) -> Path:
    return clips.speech(SENTENCE, clip_dir / "speech.wav")


@pytest.fixture(scope="session")
def mixed_clip(clip_dir, speech_clip) -> Path:
    """espeak-ng speech over a sox-made alarm-like beeping, 10 s."""
    return clips.mix(speech_clip, clips.sound("beeps", clip_dir / "beeps.wav"), clip_dir / "speech_over_beeps.wav")


@pytest.fixture(scope="session")
def engine():
    """The embedded default models (Whisper base + SmolLM2-135M-Instruct), loaded once for the session."""
    from engine.pipeline import Engine

    eng = Engine()
    yield eng
    eng.llm.close()
