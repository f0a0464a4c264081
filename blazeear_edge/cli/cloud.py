"""``blazeear-edge cloud``: the ST Edge AI Developer Cloud (parsing and printing only).

The logic lives in :mod:`blazeear_edge.cloud`; results are read back with
:func:`blazeear_edge.streports.read_st_report`.
"""

from __future__ import annotations

import argparse

from ..cloud import DEFAULT_BASE_URL, DEFAULT_BOARD, ENV_PASSWORD, ENV_USER, SSO_URL

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
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="give up after S seconds (default 600)")

    p = actions.add_parser("benchmark", parents=[common],
                           help="compile, flash and time a model on a board of ST's farm",
                           description="Upload the model, benchmark it on a board (STM32N6: target "
                           "stm32n6, Neural-ART profile 'default', epoch controller on), poll the "
                           "states with a progress display, and save ST's result JSON as "
                           "st_benchmark_<board>.json next to the export (`bench --st-report` reads it).")
    p.add_argument("target", metavar="EXPORT_DIR|MODEL",
                   help="an export directory (its *_int8.tflite is sent) or a model file")
    p.add_argument("--board", default=DEFAULT_BOARD, help=f"board name (default {DEFAULT_BOARD})")
    p.add_argument("--timeout", type=float, default=900.0, metavar="S",
                   help="give up waiting after S seconds (default 900)")
    p.add_argument("--core-version", metavar="V", help="ST Edge AI Core version (default: the service's)")
    p.add_argument("--out-dir", metavar="DIR", help="where to save the result (default: next to the model)")


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


def _progress(desc: str):
    from tqdm import tqdm

    from ..cloud.client import state_progress

    bar = tqdm(total=100, desc=desc, unit="%", bar_format="{desc}{percentage:3.0f}%|{bar}| {elapsed}",
               leave=False, dynamic_ncols=True)

    def on_state(doc: dict) -> None:
        state = str(doc.get("state") or "").lower()
        percent = state_progress(doc) if state != "error" else None
        if percent is not None:
            bar.n = round(percent, 1)
        bar.set_description(f"{desc}: {state or '?'}", refresh=False)
        bar.refresh()

    return bar, on_state


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..cloud.auth import get_credentials
    from ..cloud.client import DevCloudClient, resolve_model, result_filename, save_result
    from ..streports import read_st_report

    client = DevCloudClient(args.base_url, sso_url=args.sso_url, dry_run=args.dry_run,
                            poll_interval=args.poll_interval)
    if args.dry_run:
        print("# dry run: nothing is sent; the token and the password are shown as <redacted>\n")
    action = args.cloud_action

    if action == "login":
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

    if action == "logout":
        if args.dry_run:
            print(f"# would delete the token of {client.base_url} from {client.store.path}")
            return 0
        removed = client.store.delete(client.base_url)
        print(f"forgot the token of {client.base_url}" if removed else
              f"no token cached for {client.base_url}")
        return 0

    if action == "boards":
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

    model, out_dir = resolve_model(args.model if action in ("upload", "analyze") else args.target)

    if action == "upload":
        name = client.upload_model(model)
        if not args.dry_run:
            print(f"uploaded {model} as {name} to {client.base_url}")
        return 0

    if action == "analyze":
        bar, on_state = (None, None) if args.dry_run else _progress("analyze")
        try:
            doc = client.analyze(model, version=args.core_version, timeout=args.timeout,
                                 on_state=on_state)
        finally:
            if bar is not None:
                bar.close()
        if doc is None:
            return 0
        path = save_result(doc, out_dir, Path(model).stem, kind="analyze")
        print(f"saved {path}")
        print(_summary(read_st_report(path)))
        return 0

    # benchmark
    out_dir = Path(args.out_dir) if args.out_dir else out_dir
    print(f"model: {model}")
    board = client.check_board(args.board)
    bar, on_state = (None, None) if args.dry_run else _progress(f"benchmark on {board}")
    try:
        doc = client.benchmark(model, board, timeout=args.timeout, version=args.core_version,
                               check_board=False, on_state=on_state)
    finally:
        if bar is not None:
            bar.close()
    if doc is None:
        print(f"# the result would be saved as {out_dir / result_filename(board)}")
        return 0
    path = save_result(doc, out_dir, board)
    print(f"saved {path}")
    print(_summary(read_st_report(path)))
    return 0
