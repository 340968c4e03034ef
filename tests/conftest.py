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


# The fast tier (`pytest -m "not slow"`) leaves out what loads the models or a server: tests using these
# fixtures, these modules, and the few marked @pytest.mark.slow by hand (subprocesses that load the models)
SLOW_FIXTURES = {"engine", "native_ok", "native_smoke", "server", "browser", "microphone_browser", "tiny",
                 "small_run", "model_files"}
SLOW_MODULES = {"test_app.py", "test_load.py", "test_train.py", "test_native.py", "test_instruct.py",
                "test_convert.py"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: loads models or a server (left out by -m 'not slow')")


def pytest_collection_modifyitems(items):
    """test_native.py first: it decodes with llama.cpp and whisper.cpp in child processes. Marks the slow tier."""
    items.sort(key=lambda item: item.path.name != "test_native.py")
    for item in items:
        if item.path.name in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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
