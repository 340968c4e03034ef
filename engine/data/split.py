"""Train/validation split fixed by source recording: a hash of the source id, never a random draw."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

VALIDATION_PERCENT = 10
# Packages whose every clip is validation: accuracy on them is accuracy on sources no training clip came from
VALIDATION_PACKAGES = ("scorched3d-data", "lugaru-data", "wordwarvi-sound", "heroes-sound-effects", "supertuxkart-data",
                       "enigma-data")
# Sources (voices) kept for validation whatever their hash: with kajongg's en/female1, which the hash puts there, one
# real recorded voice of each gender that the gender head never trains on
VALIDATION_SOURCES = ("kajongg:de/male1",)


def split_of_source(source_id: str, validation_percent: int = VALIDATION_PERCENT) -> str:
    """"validation" for ~`validation_percent` % of source ids and VALIDATION_SOURCES, "train" otherwise; stable
    across runs."""
    if source_id in VALIDATION_SOURCES:
        return "validation"
    bucket = int(hashlib.sha1(source_id.encode()).hexdigest()[:8], 16) % 100
    return "validation" if bucket < validation_percent else "train"


def split_of_sources(source_ids: Iterable[str], validation_percent: int = VALIDATION_PERCENT) -> str:
    """A clip made of several sources is validation if any of them is."""
    splits = {split_of_source(s, validation_percent) for s in source_ids}
    return "validation" if "validation" in splits else "train"
