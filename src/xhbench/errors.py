"""Exceptions that the command line turns into clear messages."""

from __future__ import annotations

__all__ = ["XhbenchError", "UsageError", "RegistrationError", "DataError", "ConfigError",
           "TrainingError"]


class XhbenchError(Exception):
    """Base class of every error xhbench reports without a traceback."""


class UsageError(XhbenchError):
    """The user asked for something that does not exist or does not fit (exit code 2)."""


class ConfigError(UsageError):
    """An unknown configuration key or a value of the wrong type."""


class RegistrationError(XhbenchError):
    """A plugin registered something malformed or a name twice."""


class DataError(XhbenchError):
    """A data set on disk is missing files or holds invalid data.

    Attributes:
        message: what is wrong, without the case and file prefix.
        case: the case id, when the problem belongs to one case.
        path: the offending file or folder.
    """

    def __init__(self, message: str, *, case: str | None = None, path: object = None):
        self.message = message
        self.case = case
        self.path = path
        where = ", ".join(
            part for part in (f"case {case}" if case else "", f"file {path}" if path else "") if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class TrainingError(XhbenchError):
    """Training cannot go on (a non-finite loss); names the step and the last checkpoint."""
