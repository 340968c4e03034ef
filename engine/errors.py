"""Errors a user can act on. Each message is one line that says what is wrong and, where known, the fix."""


class LtuError(Exception):
    """Base class: anything the CLI, API and app show as a one-line message instead of a traceback."""


class InputError(LtuError, ValueError):
    """The audio or request is unusable (missing, corrupt, empty, silent, too long, ...)."""


class ModelError(LtuError, RuntimeError):
    """A model file is missing, corrupt, or does not match the other models it is paired with."""
