"""The truth.json corpora of real ST compiles (``../shared/data/st-n6-compiles``,
``../shared/data/third-party-n6``): one pytest parameter per entry, and the model file of an
entry with its SHA-256 checked; both skip, naming the path, when the data is absent."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest


def entries(truth: Path) -> list:
    """One ``pytest.param`` per entry of ``truth`` (id = its name), or one "absent" param."""
    if not truth.is_file():
        return [pytest.param(None, id="absent")]
    return [pytest.param(t, id=t["name"]) for t in json.loads(truth.read_text())]


def model_file(entry, folder: Path, truth: Path, what: str) -> Path:
    """The entry's model file in ``folder``, its SHA-256 checked; skips when absent."""
    if entry is None:
        pytest.skip(f"{what} not found at {truth}")
    path = folder / entry["file"]
    if not path.is_file():
        pytest.skip(f"model file not found at {path}")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["model_sha256"], path
    return path
