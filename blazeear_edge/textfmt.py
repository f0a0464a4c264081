"""Plain-text output shared by the reports: aligned tables to paste into a report, and the
status-line printer of the slow commands."""

from __future__ import annotations

import sys


def text_table(head: list, rows: list, right: set = frozenset()) -> list[str]:
    """Plain-text columns (header, dashes, rows) to paste into a report; ``right``: indexes of
    right-aligned (numeric) columns."""
    cols = list(zip(head, *rows)) if rows else [[h] for h in head]
    w = [max(len(str(x)) for x in c) for c in cols]

    def line(r):
        return "  ".join((str(x).rjust(w[i]) if i in right else str(x).ljust(w[i]))
                         for i, x in enumerate(r)).rstrip()

    return [line(head), "  ".join("-" * x for x in w)] + [line(r) for r in rows]


def progress_printer(progress):
    """``progress``: a callable taking a status line, True (lines to stderr) or None/False."""
    if callable(progress):
        return progress
    if progress:
        return lambda msg: print(msg, file=sys.stderr, flush=True)
    return lambda msg: None
