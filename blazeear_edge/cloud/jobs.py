"""The jobs started on the Developer Cloud, remembered so a run can be resumed by its id.

A benchmark on ST's farm can wait in a queue longer than anyone's patience; the job goes on at ST
after ``blazeear-edge cloud benchmark`` stops waiting.  As soon as the service names a job, the
command writes what is needed to fetch its result later - kind, host, board, ST Edge AI Core
version, model, where the result belongs - to ``$XDG_CONFIG_HOME/blazeear-edge/jobs.json``
(next to the token cache; atomic write, mode 0600), and prints the id.  ``cloud status ID``,
``cloud result ID`` and ``--resume ID`` read it back and save the result exactly where, and as,
the original command would have.  An id not found here (one read off ST's web page) still works:
the missing fields come from the command line.  The file keeps the last :data:`MAX_JOBS` jobs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Mapping

from ..errors import BlazeEarError
from .auth import token_path, write_private_json

MAX_JOBS = 50


def jobs_path(env: Mapping[str, str] | None = None) -> Path:
    return token_path(env).with_name("jobs.json")


class JobStore:
    """``{"jobs": [{"id", "kind", "base_url", "board", "version", "model", "model_name",
    "out_dir", "started_at"}, ...]}``, newest last."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else jobs_path()

    def _read(self) -> list[dict]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, json.JSONDecodeError):
            raise BlazeEarError(f"{self.path}: unreadable job list; delete it (the jobs go on "
                                "at ST, pass --kind/--board/--out-dir to `cloud status`)") from None
        jobs = doc.get("jobs") if isinstance(doc, dict) else None
        return [j for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []

    def find(self, job_id: str, base_url: str | None = None) -> dict | None:
        for job in reversed(self._read()):
            if str(job.get("id")) == str(job_id) and (base_url is None or job.get("base_url") == base_url):
                return job
        return None

    def add(self, job: dict) -> Path:
        job = {**job, "started_at": job.get("started_at") or time.time()}
        jobs = [j for j in self._read()
                if not (j.get("id") == job["id"] and j.get("base_url") == job.get("base_url"))]
        jobs.append(job)
        return self._write({"jobs": jobs[-MAX_JOBS:]})

    def _write(self, doc: dict) -> Path:
        return write_private_json(self.path, doc, ".jobs-")
