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


def pytest_collection_modifyitems(items):
    """test_native.py first: it decodes with llama.cpp and whisper.cpp in child processes."""
    items.sort(key=lambda item: item.path.name != "test_native.py")


@pytest.fixture(scope="session")
def native_smoke() -> list[str]:
    """llama.cpp and whisper.cpp, probed afresh in child processes on this CPU: the problems, one line each."""
    from engine import native
    from engine.errors import LtuError

    try:
        native.report(fresh=True)
    except LtuError as error:
        return [str(error)]
    return []


@pytest.fixture(scope="session")
def native_ok(native_smoke) -> None:
    """For tests that load llama.cpp or whisper.cpp into this process: a failed smoke test fails them with its
    line instead of letting a crash end the whole run."""
    if native_smoke:
        pytest.fail(f"native smoke test failed: {native_smoke[0]}", pytrace=False)


@pytest.fixture(scope="session")
def engine(native_ok):
    """The embedded default models (Whisper base + SmolLM2-135M-Instruct), loaded once for the session."""
    from engine.pipeline import Engine

    eng = Engine()
    yield eng
    eng.llm.close()
