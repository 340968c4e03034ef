"""Synthetic speech with known labels: espeak-ng voices x rates x pitches over our sentence bank."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import decode_trusted
from .sentences import ENGLISH, OTHER_LANGUAGES

ESPEAK = "espeak-ng"

# espeak-ng voice -> (language, accent)
ENGLISH_VOICES: dict[str, str] = {"en-us": "American", "en-gb": "British", "en-gb-scotland": "Scottish"}
OTHER_VOICES: dict[str, str] = {"German": "de", "French": "fr-fr", "Spanish": "es", "Italian": "it"}

# espeak-ng variants and the gender they sound like ("" = the voice's own, male).
VARIANTS: dict[str, str] = {
    "": "male", "m1": "male", "m2": "male", "m3": "male", "m4": "male", "m5": "male", "m6": "male", "m7": "male",
    "f1": "female", "f2": "female", "f3": "female", "f4": "female", "f5": "female",
}
RATES: dict[str, int] = {"slow": 120, "normal": 170, "fast": 235}  # words per minute (espeak -s)
PITCHES: dict[str, int] = {"low": 25, "normal": 50, "high": 75}  # espeak -p, 0..99


@dataclass(frozen=True)
class Utterance:
    text: str
    language: str
    voice: str
    accent: str
    variant: str
    rate: str
    pitch: str

    @property
    def gender(self) -> str:
        return VARIANTS[self.variant]

    @property
    def sentence_id(self) -> str:
        return hashlib.sha1(f"{self.language}|{self.text}".encode()).hexdigest()[:12]

    @property
    def key(self) -> str:
        spec = f"{self.text}|{self.voice}|{self.variant}|{self.rate}|{self.pitch}"
        return hashlib.sha1(spec.encode()).hexdigest()[:12]


def plan_utterances(n: int, seed: int) -> list[Utterance]:
    """`n` utterances: every sentence in turn (English ~90 %), each with a random voice, rate and pitch.

    Gender is balanced by alternating male and female variants.
    """
    rng = random.Random(f"speech:{seed}")
    bank: list[tuple[str, str]] = [("English", s) for s in ENGLISH]
    bank += [(lang, s) for lang, sents in OTHER_LANGUAGES.items() for s in sents]
    rng.shuffle(bank)
    males = [v for v, g in VARIANTS.items() if g == "male"]
    females = [v for v, g in VARIANTS.items() if g == "female"]
    out: list[Utterance] = []
    for i in range(n):
        language, text = bank[i % len(bank)]
        if language == "English":
            voice = rng.choice(list(ENGLISH_VOICES))
            accent = ENGLISH_VOICES[voice]
        else:
            voice, accent = OTHER_VOICES[language], ""
        variant = rng.choice(females if i % 2 else males)
        rate = rng.choices(list(RATES), weights=(1, 2, 1))[0]
        pitch = rng.choices(list(PITCHES), weights=(1, 2, 1))[0]
        out.append(Utterance(text, language, voice, accent, variant, rate, pitch))
    return out


def have_espeak() -> bool:
    return shutil.which(ESPEAK) is not None


def synthesize(u: Utterance) -> np.ndarray:
    """Speak `u` with espeak-ng; 16 kHz mono float32."""
    voice = f"{u.voice}+{u.variant}" if u.variant else u.voice
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run(
            [ESPEAK, "-v", voice, "-s", str(RATES[u.rate]), "-p", str(PITCHES[u.pitch]), "-w", str(wav), u.text],
            check=True, capture_output=True,
        )
        return decode_trusted(wav)
