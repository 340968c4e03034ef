"""Held-out sources: never used for training, validation, prompts or tuning (see shared/NOTES-data.md).

Every package the builder fetches and every local folder it reads passes `assert_allowed` first.
"""

from __future__ import annotations

import re

# Debian packages held out for independent evaluation.
HELD_OUT_PACKAGES: frozenset[str] = frozenset(
    {
        "scratch",
        "tuxpaint-stamps-default",
        "gcompris-qt-data",
        "openttd-opensfx",
        "ktuberling-data",
        "sonic-pi-samples",
        "pocketsphinx-testdata",
    }
)

# alsa-utils is held out only for its speaker-test voices; the builder never reads alsa-utils at all.
HELD_OUT_PARTIAL: dict[str, str] = {"alsa-utils": "speaker-test voices"}

# Corpora held out in any copy from anywhere: matched against package names, folder names and paths.
HELD_OUT_CORPORA: tuple[str, ...] = (
    "ESC-50",
    "LJ Speech",
    "LibriSpeech",
    "VCTK",
    "TIMIT",
    "speechocean762",
    "Speech Commands",
    "Free Spoken Digit Dataset",
    "FSDD",
    "RAVDESS",
    "EmoDB",
    "FSDKaggle2018",
    "Open Speech Repository",
    "Harvard sentences",
)


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


_CORPUS_KEYS = tuple(_squash(c) for c in HELD_OUT_CORPORA) + ("ljspeech", "speechcommands", "harvardsentence", "esc50", "speakertest")


class HeldOutError(ValueError):
    """Raised when a held-out source is about to be used."""


def is_held_out(name: str) -> bool:
    """True if `name` (a Debian package, a folder or a path) is, or names, a held-out source."""
    if name in HELD_OUT_PACKAGES or name in HELD_OUT_PARTIAL:
        return True
    base = name.rsplit("/", 1)[-1].split("_", 1)[0]  # "scratch_1.4_all.deb" -> "scratch"
    if base in HELD_OUT_PACKAGES or base in HELD_OUT_PARTIAL:
        return True
    squashed = _squash(name)
    return any(key in squashed for key in _CORPUS_KEYS)


def assert_allowed(name: str) -> str:
    """Return `name` unchanged, or raise HeldOutError if it is held out."""
    if is_held_out(name):
        raise HeldOutError(f"{name!r} is a held-out evaluation source and must never be used for training")
    return name
