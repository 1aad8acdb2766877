"""Exceptions the CLI turns into exit codes.

``EvpError``: the work failed or an input is bad; the message is one line that says what to do (exit 1).
``NotBuiltError``: the stage exists as a command but is not implemented yet (exit 2, like a usage error).
"""


class EvpError(Exception):
    """A failure the user can act on. The message is shown as one line."""

    exit_code = 1


class MediaError(EvpError):
    """A media file is missing, empty, unreadable or lacks the stream asked for."""


class NotBuiltError(EvpError):
    """A pipeline stage that this version does not implement yet."""

    exit_code = 2


class UsageError(EvpError):
    """An option value out of its range (exit 2, like any usage error). Raised by the configs' own checks."""

    exit_code = 2
