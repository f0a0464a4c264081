"""User-facing errors.

Every problem a user can fix (a missing file, a corrupt checkpoint, an empty calibration set, a
bad option) is raised as :class:`BlazeEarError`.  The command line prints its message on one line
and exits with ``exit_code`` (2 for bad input); any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations


class BlazeEarError(Exception):
    """An error the user can act on: one line naming the file and the problem."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
