"""Errors a user can act on. Each message is one line that says what is wrong and, where known, the fix."""

import time


class LtuError(Exception):
    """Base class: anything the CLI, API and app show as a one-line message instead of a traceback."""


class InputError(LtuError, ValueError):
    """The audio or request is unusable (missing, corrupt, empty, silent, too long, ...)."""


class ModelError(LtuError, RuntimeError):
    """A model file is missing, corrupt, or does not match the other models it is paired with."""


class StageTimeout(LtuError, TimeoutError):
    """A stage ran past its time limit (a pathological input, or a machine far slower than expected)."""


class Deadline:
    """One time limit shared by the stages of a call; each stage checks it between units of work."""

    def __init__(self, seconds: float | None, what: str):
        self.seconds = seconds
        self.what = what
        self._end = None if seconds is None else time.monotonic() + seconds

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() > self._end

    def check(self, stage: str) -> None:
        if self.expired():
            raise StageTimeout(f"{self.what} took longer than its limit of {self.seconds:.0f} s (stopped during "
                               f"{stage}); raise the limit or shorten the audio")
