"""``blazeear-edge cloud``: the ST Edge AI Developer Cloud (parsing and printing only).

The logic lives in :mod:`blazeear_edge.cloud`; results are read back with
:func:`blazeear_edge.streports.read_st_report`.  A job's id is printed as soon as the service
names it and remembered (:mod:`blazeear_edge.cloud.jobs`); ``cloud status ID``, ``cloud result
ID`` and ``--resume ID`` save and print a result exactly as the command that started the job.
"""

from __future__ import annotations

import argparse

from ..cloud import (ANALYZE_TIMEOUT, BENCHMARK_TIMEOUT, DEFAULT_BASE_URL, DEFAULT_BOARD,
                     ENV_PASSWORD, ENV_USER, SSO_URL)
from ..errors import BlazeEarError

HELP = ("ST Edge AI Developer Cloud: log in, list boards, upload, analyze, and benchmark a model "
        f"on a remote {DEFAULT_BOARD}")


def _add_common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options accepted before or after the action (``cloud --dry-run benchmark X`` or
    ``cloud benchmark X --dry-run``)."""
    def d(value):
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--base-url", metavar="URL", default=d(DEFAULT_BASE_URL),
                        help=f"Developer Cloud host (default {DEFAULT_BASE_URL}; older accounts: "
                             "https://stm32ai-cs.st.com/)")
    parser.add_argument("--sso-url", metavar="URL", default=d(SSO_URL),
                        help=f"ST's single sign-on host used by login (default {SSO_URL})")
    parser.add_argument("--user", metavar="NAME", default=d(None),
                        help=f"ST account for login (password prompted; or set {ENV_USER} and "
                             f"{ENV_PASSWORD})")
    parser.add_argument("--dry-run", action="store_true", default=d(False),
                        help="print the exact HTTP requests (token and password redacted) and "
                             "send nothing")
    parser.add_argument("--poll-interval", type=float, metavar="S", default=d(2.0),
                        help="seconds between state polls (default 2, as ST's client)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, suppress=True)
    actions = parser.add_subparsers(dest="cloud_action", metavar="ACTION")
    actions.required = True

    actions.add_parser("login", parents=[common], help="log in through ST's SSO and cache the token",
                       description="Log in with ST's SSO (authorisation-code flow). The password is "
                       "prompted (or read from $STEDGEAI_PASSWORD) and never stored; the token is "
                       "cached with mode 0600 in $XDG_CONFIG_HOME/blazeear-edge/token.json.")
    actions.add_parser("logout", parents=[common], help="forget the cached token of this host")
    actions.add_parser("boards", parents=[common], help="list the boards of ST's benchmark farm")

    p = actions.add_parser("upload", parents=[common], help="upload a model file to your account")
    p.add_argument("model", metavar="MODEL", help="model file, or an export directory (its int8 TFLite)")

    p = actions.add_parser("analyze", parents=[common],
                           help="run `stedgeai analyze` on the service (target stm32n6)")
    p.add_argument("model", metavar="MODEL", help="model file, or an export directory (its int8 TFLite)")
    p.add_argument("--core-version", metavar="V", help="ST Edge AI Core version (default: the latest "
                   "the service lists in assets/versions.json)")
    p.add_argument("--timeout", type=float, default=ANALYZE_TIMEOUT, metavar="S",
                   help=f"stop waiting after S seconds (default {ANALYZE_TIMEOUT:g}); the run goes on")
    p.add_argument("--resume", metavar="ID", help="wait for the analyze run ID started earlier "
                   "instead of starting a new one")

    p = actions.add_parser("benchmark", parents=[common],
                           help="compile, flash and time a model on a board of ST's farm",
                           description="Upload the model, benchmark it on a board (STM32N6: target "
                           "stm32n6, Neural-ART profile 'default', epoch controller on), print the "
                           "job id, poll the states with a progress line, and save ST's result JSON "
                           "as st_benchmark_<board>.json next to the export (`bench --st-report` "
                           "reads it). The start request is never sent twice.")
    p.add_argument("target", metavar="EXPORT_DIR|MODEL",
                   help="an export directory (its *_int8.tflite is sent) or a model file")
    p.add_argument("--board", default=DEFAULT_BOARD, help=f"board name (default {DEFAULT_BOARD})")
    p.add_argument("--timeout", type=float, default=BENCHMARK_TIMEOUT, metavar="S",
                   help=f"stop waiting after S seconds (default {BENCHMARK_TIMEOUT:g}, as ST's model "
                        "zoo); the job goes on at ST: fetch it with `cloud result ID`")
    p.add_argument("--core-version", metavar="V", help="ST Edge AI Core version (default: the latest "
                   "the service lists in assets/versions.json)")
    p.add_argument("--out-dir", metavar="DIR", help="where to save the result (default: next to the model)")
    p.add_argument("--resume", metavar="ID", help="wait for the benchmark ID started earlier "
                   "instead of starting a new one")

    for name, text in (("status", "show the state of a benchmark or analyze job by id; save and "
                                  "print its result when finished"),
                       ("result", "wait for a benchmark or analyze job by id, then save and print "
                                  "its result as the command that started it would")):
        p = actions.add_parser(name, parents=[common], help=text, description=text + ". Jobs "
                               "started by this tool are remembered in $XDG_CONFIG_HOME/blazeear-edge/"
                               "jobs.json; for others give --kind, --board, --core-version, --out-dir.")
        p.add_argument("job_id", metavar="ID", help="the benchmark id or analyze run id")
        p.add_argument("--kind", choices=("benchmark", "analyze"),
                       help="job kind (default: as remembered, else benchmark)")
        p.add_argument("--board", help=f"board of a benchmark (default: as remembered, else {DEFAULT_BOARD})")
        p.add_argument("--core-version", metavar="V",
                       help="Developer Cloud version of an analyze run (part of its URL)")
        p.add_argument("--out-dir", metavar="DIR",
                       help="where to save the result (default: as remembered, else here)")
        if name == "result":
            p.add_argument("--timeout", type=float, default=BENCHMARK_TIMEOUT, metavar="S",
                           help=f"stop waiting after S seconds (default {BENCHMARK_TIMEOUT:g})")


def _fmt_bytes(n) -> str:
    return "n/a" if n is None else f"{n / 1024:.2f} KiB"


def _summary(report: dict) -> str:
    ms = report.get("inference_ms")
    parts = [f"inference {ms:.3f} ms" if ms is not None else "inference n/a",
             f"internal RAM {_fmt_bytes(report.get('internal_ram_bytes'))}",
             f"external RAM {_fmt_bytes(report.get('external_ram_bytes'))}",
             f"weights {_fmt_bytes(report.get('weights_bytes'))}",
             f"external flash {_fmt_bytes(report.get('external_flash_bytes'))}"]
    if report.get("epochs_total") is not None:
        hw, sw = report.get("epochs_hw"), report.get("epochs_sw")
        parts.append(f"epochs {report['epochs_total']} (HW {'n/a' if hw is None else hw}, "
                     f"SW {'n/a' if sw is None else sw})")
    parts.append(f"ST Edge AI Core {report.get('tool_version') or 'n/a'}")
    return " | ".join(parts)


class _Progress:
    """The progress line: the service's state and percent, drawn from the first poll on (so the
    job id printed before it stays readable)."""

    def __init__(self, desc: str, enabled: bool = True):
        self.desc, self.enabled, self.bar = desc, enabled, None

    def __call__(self, doc: dict) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        from ..cloud.client import state_progress
        if self.bar is None:
            self.bar = tqdm(total=100, desc=self.desc, unit="%", leave=False, dynamic_ncols=True,
                            bar_format="{desc}{percentage:3.0f}%|{bar}| {elapsed}")
        state = str(doc.get("state") or "").lower()
        percent = state_progress(doc) if state != "error" else None
        if percent is not None:
            self.bar.n = round(percent, 1)
        self.bar.set_description(f"{self.desc}: {state or '?'}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _started(store, model, out_dir):
    """``on_started``: print the job id at once and remember the job (for status/result)."""
    def on_started(job: dict) -> None:
        if job["id"] in ("BENCHMARK_ID", "RUNTIME_ID"):  # dry-run placeholders
            return
        store.add({**job, "model": str(model), "out_dir": str(out_dir)})
        print(f"{job['kind']} id {job['id']} (ST Edge AI Core {job['version']}); if this command "
              f"stops, fetch the result with `blazeear-edge cloud result {job['id']}`", flush=True)
    return on_started


def _finish(doc: dict, job: dict) -> int:
    """Save the result where, and as, the command that started the job does; print it."""
    from pathlib import Path

    from ..cloud.client import save_result
    from ..streports import read_st_report

    out_dir = Path(job.get("out_dir") or ".")
    if job["kind"] == "analyze":
        stem = Path(job.get("model_name") or job.get("model") or f"run_{job['id']}").stem
        path = save_result(doc, out_dir, stem, kind="analyze")
    else:
        path = save_result(doc, out_dir, job.get("board") or DEFAULT_BOARD)
    print(f"saved {path}")
    print(_summary(read_st_report(path)))
    return 0


def _find_job(client, args, kind: str | None = None) -> dict:
    """The job ``args.job_id`` (or ``--resume``): remembered, else from the command line."""
    from ..cloud.jobs import JobStore

    job_id = getattr(args, "resume", None) or args.job_id
    job = dict(JobStore().find(job_id, client.base_url) or {})
    job.setdefault("id", job_id)
    job.setdefault("base_url", client.base_url)
    kind = kind or getattr(args, "kind", None)
    if kind and job.get("kind") not in (None, kind):
        raise BlazeEarError(f"job {job_id} is a {job['kind']} run, not {kind}")
    job["kind"] = kind or job.get("kind") or "benchmark"
    for key, value in (("board", getattr(args, "board", None)),
                       ("out_dir", getattr(args, "out_dir", None)),
                       ("version", getattr(args, "core_version", None))):
        if value:
            job[key] = value
    job.setdefault("board", DEFAULT_BOARD)
    if job["kind"] == "analyze" and not job.get("version"):
        job["version"] = client.core_version(None)  # the run's URL holds the version
    return job


def _wait_job(client, job: dict, timeout: float, dry_run: bool) -> dict | None:
    from ..cloud.client import with_request

    progress = _Progress(f"{job['kind']} {job['id']}", enabled=not dry_run)
    try:
        if job["kind"] == "analyze":
            doc = client.wait_analyze(job["id"], job["version"], timeout=timeout, on_state=progress)
        else:
            doc = client.wait_benchmark(job["id"], board=job["board"], timeout=timeout,
                                        on_state=progress)
    finally:
        progress.close()
    return with_request(doc, job)


def _status(client, job: dict) -> int:
    from ..cloud.client import state_progress, with_request

    if job["kind"] == "analyze":
        doc = client.analyze_status(job["id"], job["version"])
        finished = doc is not None and doc.get("result") is not None
    else:
        doc = client.benchmark_status(job["id"])
        finished = doc is not None and str(doc.get("state", "")).lower() == "done"
    if doc is None:  # dry-run
        return 0
    state = str(doc.get("state") or "?").lower()
    if finished:
        return _finish(with_request(doc, job), job)
    if state == "error":
        raise BlazeEarError(f"{job['kind']} {job['id']} ended in error: "
                            f"{' '.join(str(doc.get('message') or 'ST gave no message').split())}")
    percent = state_progress(doc)
    print(f"{job['kind']} {job['id']}: {state}" + ("" if percent is None else f" ({percent:.0f}%)")
          + f"; not finished: `blazeear-edge cloud result {job['id']}` waits for it")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..cloud.client import DevCloudClient, resolve_model, result_filename
    from ..cloud.jobs import JobStore

    client = DevCloudClient(args.base_url, sso_url=args.sso_url, dry_run=args.dry_run,
                            poll_interval=args.poll_interval)
    if args.dry_run:
        print("# dry run: nothing is sent; the token and the password are shown as <redacted>\n")
    action = args.cloud_action

    if action == "login":
        return _login(client, args)
    if action == "logout":
        if args.dry_run:
            print(f"# would delete the token of {client.base_url} from {client.store.path}")
            return 0
        removed = client.store.delete(client.base_url)
        print(f"forgot the token of {client.base_url}" if removed else
              f"no token cached for {client.base_url}")
        return 0
    if action == "boards":
        return _boards(client, args)
    if action == "status":
        return _status(client, _find_job(client, args))
    if action == "result":
        job = _find_job(client, args)
        doc = _wait_job(client, job, args.timeout, args.dry_run)
        return 0 if doc is None else _finish(doc, job)

    model, out_dir = resolve_model(args.model if action in ("upload", "analyze") else args.target)
    if action == "upload":
        name = client.upload_model(model)
        if not args.dry_run:
            print(f"uploaded {model} as {name} to {client.base_url}")
        return 0

    out_dir = Path(getattr(args, "out_dir", None) or out_dir)
    if args.resume:  # the job exists: wait for it, save like the command that started it
        job = _find_job(client, args, kind=action)
        job.setdefault("out_dir", str(out_dir))
        job.setdefault("model_name", Path(model).name)
        doc = _wait_job(client, job, args.timeout, args.dry_run)
        return 0 if doc is None else _finish(doc, job)

    print(f"model: {model}")
    on_started = _started(JobStore(), model, out_dir)
    if action == "analyze":
        progress = _Progress("analyze", enabled=not args.dry_run)
        try:
            doc = client.analyze(model, version=args.core_version, timeout=args.timeout,
                                 on_state=progress, on_started=on_started)
        finally:
            progress.close()
    else:
        board = client.check_board(args.board)
        progress = _Progress(f"benchmark on {board}", enabled=not args.dry_run)
        try:
            doc = client.benchmark(model, board, timeout=args.timeout, version=args.core_version,
                                   check_board=False, on_state=progress, on_started=on_started)
        finally:
            progress.close()
    if doc is None:
        name = result_filename(Path(model).stem, "analyze") if action == "analyze" else \
            result_filename(board)
        print(f"# the result would be saved as {out_dir / name}")
        return 0
    return _finish(doc, {**doc["request"], "out_dir": str(out_dir)})


def _login(client, args) -> int:
    from ..cloud.auth import get_credentials

    if args.dry_run:
        import os
        user = args.user or os.environ.get(ENV_USER) or "USER"
        client.login(user, "not-sent")
        return 0
    user, password = get_credentials(args.user)
    token = client.login(user, password)
    import time
    until = (time.strftime(", valid until %Y-%m-%d %H:%M", time.localtime(token.expires_at))
             if token.expires_at else "")
    print(f"logged in to {client.base_url} as {user}; token cached in {client.store.path} "
          f"(mode 0600{until})")
    return 0


def _boards(client, args) -> int:
    boards = client.boards()
    if args.dry_run:
        return 0
    rows = [(str(b.get("name", "")), str(b.get("deviceCpu", "")), str(b.get("flashSize", "")),
             str(b.get("boardCount", ""))) for b in sorted(boards, key=lambda b: str(b.get("name")))]
    header = ("board", "cpu", "flash", "count")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
