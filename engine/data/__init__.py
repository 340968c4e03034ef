"""Training-data builder for LTU-AS: real sound events from Debian packages, espeak-ng speech, mixtures,
and template question-answer pairs in the Open-ASQA style, split by source recording.

    python -m engine.data build [--out DIR] [--limit N] [--packages P ...]
    python -m engine.data instruct [--data DIR] [--clips N] [--llm PATH]   (opt-in: LLM-written open QA)

    from engine.data import build, SOUND_LABELS
"""

from .build import BuildConfig, build, default_out_dir
from .denylist import HeldOutError, assert_allowed, is_held_out
from .labels import SOUND_LABELS

__all__ = ["SOUND_LABELS", "BuildConfig", "HeldOutError", "assert_allowed", "build", "default_out_dir", "is_held_out"]
