"""Real test audio, made at test time with espeak-ng (speech) and sox (sounds)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def speech(text: str, path: Path, voice: str = "en-us", rate: int = 150) -> Path:
    raw = path.with_suffix(".raw.wav")
    run("espeak-ng", "-v", voice, "-s", str(rate), "-w", str(raw), text)
    run("sox", str(raw), "-r", "16000", "-c", "1", str(path))
    raw.unlink()
    return path


def sound(kind: str, path: Path, seconds: float = 10.0) -> Path:
    """A synthetic sound event: 'beeps' (an alarm-like 1 kHz pulse train), 'noise' (rain-like), 'tone'."""
    effects = {
        "beeps": ["synth", str(seconds), "square", "1000", "vol", "0.2", "tremolo", "4", "100"],
        "noise": ["synth", str(seconds), "pinknoise", "highpass", "800", "vol", "0.3"],
        "tone": ["synth", str(seconds), "sine", "440", "vol", "0.5"],
    }[kind]
    run("sox", "-n", "-r", "16000", "-c", "1", str(path), *effects)
    return path


def mix(speech_path: Path, sound_path: Path, path: Path, seconds: float = 10.0) -> Path:
    """Speech starting at 1 s over the sound, cut to `seconds`."""
    padded = path.with_suffix(".pad.wav")
    run("sox", str(speech_path), str(padded), "pad", "1", "0")
    run("sox", "-m", str(padded), str(sound_path), "-r", "16000", "-c", "1", str(path), "trim", "0", str(seconds))
    padded.unlink()
    return path
