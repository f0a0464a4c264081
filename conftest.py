"""Repository-wide pytest fixtures.

``default_export``: one ``export --int8`` of the default MediaPipe-weight model per test session
(about 30 s), shared by the export, lint, parity, harness and bench tests. Set
``BLAZEEAR_TEST_EXPORT=DIR`` to reuse an existing export folder while iterating locally.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent / "shared"
EAR210 = SHARED / "data" / "ear210"
#: socket connections attempted while the shared export ran (must stay empty)
NETWORK_ATTEMPTS: list = []


@pytest.fixture(scope="session")
def default_export(tmp_path_factory) -> Path:
    reuse = os.environ.get("BLAZEEAR_TEST_EXPORT")
    if reuse:
        return Path(reuse)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from blazeear_edge.export import ExportConfig, export

    import socket

    out = tmp_path_factory.mktemp("export") / "default"
    real = socket.socket.connect

    def record(self, address):  # the export must never reach the network
        NETWORK_ATTEMPTS.append(address)
        raise ConnectionRefusedError(f"network disabled in tests: {address}")

    socket.socket.connect = record
    try:
        export(ExportConfig(int8=True, out=str(out), progress=False))
    finally:
        socket.socket.connect = real
    return out


@pytest.fixture(scope="session")
def export_network_attempts(default_export) -> list:
    """Socket connections attempted while ``default_export`` ran (each one was refused)."""
    return NETWORK_ATTEMPTS


@pytest.fixture(scope="session")
def ear210() -> Path:
    """../shared/data/ear210 beside the repository, or a skip naming the missing path."""
    if not (EAR210 / "val_coco.json").is_file():
        pytest.skip(f"real ear data not present at {EAR210} (only in the project workspace)")
    return EAR210
