"""REST client of the ST Edge AI Developer Cloud.

:class:`DevCloudClient` wraps one :class:`requests.Session` with timeouts and urllib3 retries
(exponential backoff on connection errors and on HTTP 500/502/503/504).  Every failure a user can
act on becomes a one-line :class:`~blazeear_edge.errors.BlazeEarError`: bad credentials, an expired
token that cannot be refreshed, an unknown board, a benchmark that ends in ``error`` (with ST's
message), a network that does not answer.

With ``dry_run=True`` nothing is sent: each request is built exactly as it would be (method, URL,
headers, body), recorded in :attr:`DevCloudClient.recorded` and printed, with the bearer token and
the password replaced by ``<redacted>``.  Values only the service could supply (a benchmark id, the
latest tool version) appear as upper-case placeholders.

Endpoints (relative to the base URL, as ST's own client uses them):

=====================================  ===========================================================
``GET  assets/versions.json``          tool versions (``version``, ``isLatest``); no token needed
``GET  api/benchmark/boards``          boards of ST's farm, keyed by name
``POST api/file/files/models``         upload a model (multipart field ``file``) -> ``{upload}``
``POST api/benchmark/benchmark/{b}``   start a benchmark on board ``b`` (lower case) -> ``benchmarkId``
``GET  api/benchmark/benchmark/{id}``  its state: in_queue ... validation, then done or error
``POST api/{v}/stm32ai/analyze``       form field ``args`` (JSON) -> ``runtimeId``
``GET  api/{v}/stm32ai/run/{id}``      analyze state and, when finished, ``result``
=====================================  ===========================================================
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlencode, urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .. import __version__
from ..errors import BlazeEarError
from . import BENCHMARK_STATES, DEFAULT_BASE_URL, DEFAULT_BOARD, SSO_URL
from .auth import (Token, TokenStore, authorize_request, callback_url, env_credentials,
                   refresh_token, sso_login, unreachable_error, CALLBACK_PATH)

#: (connect, read) timeouts in seconds for ordinary calls and for model uploads.
TIMEOUT = (10.0, 60.0)
UPLOAD_TIMEOUT = (10.0, 300.0)
#: HTTP statuses retried with backoff.
RETRY_STATUSES = (500, 502, 503, 504)
REDACTED = "<redacted>"
#: Placeholders printed in dry-run for values only the service knows.
PH_BENCHMARK_ID = "BENCHMARK_ID"
PH_RUNTIME_ID = "RUNTIME_ID"
PH_VERSION = "VERSION"

_SECRET_FIELDS = {"password", "refresh_token", "access_token", "code"}


def make_session(retries: int = 3, backoff: float = 0.5) -> requests.Session:
    """A session that retries connection errors and 5xx answers with exponential backoff."""
    retry = Retry(total=retries, connect=retries, read=0, status=retries, other=0,
                  backoff_factor=backoff, backoff_max=30, status_forcelist=RETRY_STATUSES,
                  allowed_methods=None, raise_on_status=False, raise_on_redirect=False,
                  respect_retry_after_header=True)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"Accept": "application/json",
                            "User-Agent": f"Mozilla/5.0 (compatible; blazeear-edge/{__version__})"})
    return session


@dataclass
class RecordedRequest:
    """One HTTP request as it would be sent, secrets redacted (dry-run)."""

    method: str
    url: str
    headers: dict = field(default_factory=dict)
    body: str | None = None
    note: str | None = None

    def __str__(self) -> str:
        lines = [f"{self.method} {self.url}"]
        lines += [f"    {k}: {v}" for k, v in self.headers.items()]
        if self.body is not None:
            lines += ["", *("    " + line for line in self.body.splitlines())]
        if self.note:
            lines.append(f"    # {self.note}")
        return "\n".join(lines) + "\n"


def _redact_form(data: Mapping[str, Any]) -> dict:
    return {k: (REDACTED if k in _SECRET_FIELDS else v) for k, v in data.items()}


def _record(prepared: requests.PreparedRequest, *, json_body=None, data=None, files=None,
            note: str | None = None) -> RecordedRequest:
    headers = {}
    for key, value in prepared.headers.items():
        if key.lower() == "authorization":
            value = f"Bearer {REDACTED}"
        elif key.lower() in ("cookie", "proxy-authorization"):
            value = REDACTED
        headers[key] = value
    body = None
    if json_body is not None:  # the exact bytes requests sends
        raw = prepared.body
        body = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    elif files:
        parts = [f"multipart/form-data part {name!r}: file {spec[0]!r}, {len(spec[1])} bytes"
                 for name, spec in files.items()]
        parts += [f"multipart/form-data part {k!r}: {v}" for k, v in _redact_form(data or {}).items()]
        body = "\n".join(parts)
    elif data:
        body = urlencode(_redact_form(data))
        if "args" in data:  # show the JSON inside the form field readably
            body += "\n# args = " + json.dumps(json.loads(data["args"]), indent=2).replace("\n", "\n# ")
    return RecordedRequest(prepared.method, prepared.url, headers, body, note)


def _one_line(text: Any, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _server_message(resp: requests.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return _one_line(resp.text, 200) if resp.text else ""
    if isinstance(doc, dict):
        for key in ("message", "error_description", "error", "errors", "detail"):
            if doc.get(key):
                return _one_line(doc[key], 200)
    return ""


def benchmark_args(model_name: str, board: str = DEFAULT_BOARD, version: str | None = None) -> dict:
    """The JSON body ST's client sends to start a benchmark.

    For STM32N6 boards: target ``stm32n6``, Neural-ART profile ``"default"`` and the epoch
    controller on (``atonnOptions: {"enable-epoch-controller": true}``), as ST's model zoo does.
    """
    args: dict[str, Any] = {"model": model_name, "verbosity": 1,
                            "allocateInputs": True, "allocateOutputs": True}
    if "STM32N6" in board.upper():
        args.update({"target": "stm32n6", "stNeuralArt": "default",
                     "atonnOptions": {"enable-epoch-controller": True}})
    if version:
        args["version"] = version
    return args


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def result_filename(board: str, kind: str = "benchmark") -> str:
    """``st_benchmark_<board>.json`` (the name ``bench --st-report`` looks for)."""
    return f"st_{kind}_{_safe_name(board)}.json"


def save_result(doc: dict, out_dir: str | Path, board: str, kind: str = "benchmark") -> Path:
    """Write the service's result JSON next to the export, atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / result_filename(board, kind)
    fd, tmp = tempfile.mkstemp(prefix=".st_", suffix=".json", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def resolve_model(target: str | Path) -> tuple[Path, Path]:
    """The model to send and the directory for results.

    ``target`` is a model file, or an export directory: then the int8 TFLite named in its
    ``manifest.json`` (``artifacts``: name -> {"path": ...}) or, without a manifest entry, the one
    ``*_int8.tflite`` file in it.
    """
    target = Path(target)
    if target.is_file():
        return target, target.parent
    if not target.is_dir():
        raise BlazeEarError(f"{target}: no such model file or export directory")
    candidates: list[Path] = []
    manifest = target / "manifest.json"
    if manifest.is_file():
        try:
            artifacts = json.loads(manifest.read_text(encoding="utf-8")).get("artifacts") or {}
        except (OSError, ValueError, AttributeError):
            raise BlazeEarError(f"{manifest}: not a readable export manifest") from None
        if isinstance(artifacts, dict):
            for entry in artifacts.values():
                rel = entry.get("path") if isinstance(entry, dict) else entry
                if isinstance(rel, str) and rel.endswith("_int8.tflite") and (target / rel).is_file():
                    candidates.append(target / rel)
    if not candidates:
        candidates = sorted(target.glob("*_int8.tflite")) or sorted(target.rglob("*_int8.tflite"))
    candidates = list(dict.fromkeys(candidates))
    if not candidates:
        raise BlazeEarError(f"{target}: no int8 TFLite model (*_int8.tflite) in this export; "
                            "export with int8 or pass the .tflite file")
    if len(candidates) > 1:
        names = ", ".join(str(p.relative_to(target)) for p in candidates)
        raise BlazeEarError(f"{target}: several int8 TFLite models ({names}); pass one of them")
    return candidates[0], target


class DevCloudClient:
    """One account on one Developer Cloud host.

    ``token``: use this token instead of the cache.  ``store``: the token cache
    (:class:`~blazeear_edge.cloud.auth.TokenStore`, default in the user's config dir).  ``env``:
    where ``STEDGEAI_USER``/``STEDGEAI_PASSWORD`` are read for a non-interactive login when no
    token is cached.  ``printer`` receives the dry-run requests.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, sso_url: str = SSO_URL,
                 token: Token | str | None = None, store: TokenStore | None = None,
                 dry_run: bool = False, printer: Callable[[str], Any] = print,
                 timeout=TIMEOUT, upload_timeout=UPLOAD_TIMEOUT, retries: int = 3,
                 backoff: float = 0.5, poll_interval: float = 2.0,
                 session: requests.Session | None = None, env: Mapping[str, str] | None = None):
        if not re.match(r"^https?://", base_url or ""):
            raise BlazeEarError(f"--base-url {base_url!r}: expected an http(s):// URL")
        self.base_url = base_url.rstrip("/") + "/"
        self.sso_url = sso_url
        self.store = store if store is not None else TokenStore()
        self.dry_run = dry_run
        self.printer = printer
        self.timeout = timeout
        self.upload_timeout = upload_timeout
        self.poll_interval = poll_interval
        self.session = session if session is not None else make_session(retries, backoff)
        self.env = os.environ if env is None else env
        self._token = Token(token) if isinstance(token, str) else token
        self.recorded: list[RecordedRequest] = []

    # -- transport --------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if re.match(r"^https?://", path) else urljoin(self.base_url, path)

    def _dry(self, method: str, url: str, *, headers=None, params=None, json_body=None, data=None,
             files=None, note=None) -> None:
        if isinstance(data, Mapping):  # secrets never enter the printed body (nor its length)
            data = _redact_form(data)
        prepared = self.session.prepare_request(requests.Request(
            method, url, headers=headers, params=params, json=json_body, data=data,
            files={k: (v[0], v[1], v[2]) for k, v in (files or {}).items()} or None))
        rec = _record(prepared, json_body=json_body, data=data, files=files, note=note)
        self.recorded.append(rec)
        self.printer(str(rec))

    def _send(self, method: str, path: str, *, auth: bool = True, params=None, json_body=None,
              data=None, files=None, timeout=None, note=None) -> requests.Response | None:
        url = self.url(path)
        if self.dry_run:
            headers = {"Authorization": "Bearer dry-run"} if auth else None
            self._dry(method, url, headers=headers, params=params, json_body=json_body, data=data,
                      files=files, note=note)
            return None
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.access_token()}"} if auth else {}
            try:
                resp = self.session.request(method, url, headers=headers, params=params,
                                            json=json_body, data=data, files=files,
                                            timeout=timeout or self.timeout)
            except requests.RequestException as exc:
                raise unreachable_error(url, exc) from None
            if resp.status_code != 401 or not auth:
                return resp
            if attempt == 1:
                # The service says the token is no longer good: renew it once, then retry.
                self._token = self._refresh(self._current_token(), reason="rejected")
                continue
        raise BlazeEarError(f"token rejected by {self.base_url} even after a refresh (HTTP 401): "
                            "run `blazeear-edge cloud login` again")

    def _json(self, resp: requests.Response, what: str) -> Any:
        if resp.status_code >= 400:
            message = _server_message(resp)
            message = f": {message}" if message else ""
            if resp.status_code == 404:
                raise BlazeEarError(f"{what}: {resp.url} not found (HTTP 404){message}")
            raise BlazeEarError(f"{what}: the Developer Cloud answered HTTP {resp.status_code}{message}")
        try:
            return resp.json()
        except ValueError:
            raise BlazeEarError(f"{what}: the answer of {resp.url} is not JSON") from None

    # -- tokens -----------------------------------------------------------------------------

    def _current_token(self) -> Token:
        if self._token is None:
            token = self.store.load(self.base_url)
            if token is None:
                creds = env_credentials(self.env)
                if creds is None:
                    raise BlazeEarError(f"not logged in to {self.base_url}: run `blazeear-edge cloud "
                                        "login --user NAME` (or set STEDGEAI_USER and STEDGEAI_PASSWORD)")
                token = self.login(*creds)
            self._token = token
        return self._token

    def _refresh(self, token: Token, reason: str = "expired") -> Token:
        if not token.refresh_token:
            raise BlazeEarError(f"token {reason} and there is no refresh token: run "
                                "`blazeear-edge cloud login` again")
        new = refresh_token(self.session, self.base_url, token, timeout=self.timeout)
        self.store.save(self.base_url, new)
        return new

    def access_token(self) -> str:
        """The bearer token, from the cache, refreshed when expired."""
        token = self._current_token()
        if token.expired():
            token = self._token = self._refresh(token)
        return token.access_token

    def login(self, user: str, password: str) -> Token | None:
        """ST's SSO authorisation-code flow; the token is cached, the password is not."""
        if self.dry_run:
            url, params = authorize_request(self.base_url, self.sso_url)
            self._dry("GET", url, params=params, note="redirects followed to ST's login page")
            self._dry("POST", "https://LOGIN-FORM-ACTION.invalid/",
                      data={"lt": "LT", "username": user, "password": password, "_eventId": "Login"},
                      note="URL and hidden fields come from the login form; redirects are then "
                           f"followed by hand until {callback_url(self.base_url)}?code=...")
            self._dry("POST", self.url(CALLBACK_PATH),
                      data={"redirect_url": callback_url(self.base_url), "code": "CODE-FROM-REDIRECT"},
                      note="answers {access_token, refresh_token, expires_at}")
            return None
        token = sso_login(self.session, self.base_url, user, password, sso_url=self.sso_url,
                          timeout=self.timeout)
        self.store.save(self.base_url, token)
        self._token = token
        return token

    # -- service calls ----------------------------------------------------------------------

    def versions(self) -> list[dict]:
        resp = self._send("GET", "assets/versions.json", auth=False)
        if resp is None:
            return []
        doc = self._json(resp, "tool versions")
        return doc if isinstance(doc, list) else []

    def latest_version(self) -> str:
        """The ST Edge AI Core version the service marks ``isLatest``."""
        if self.dry_run:
            self.versions()
            return PH_VERSION
        versions = self.versions()
        for entry in versions:
            if isinstance(entry, dict) and entry.get("isLatest"):
                return str(entry["version"])
        if versions and isinstance(versions[-1], dict) and versions[-1].get("version"):
            return str(versions[-1]["version"])
        raise BlazeEarError(f"{self.url('assets/versions.json')} lists no tool version")

    def boards(self) -> list[dict]:
        """Boards of ST's farm: ``[{name, boardCount, flashSize, deviceCpu, deviceId}, ...]``."""
        resp = self._send("GET", "api/benchmark/boards")
        if resp is None:
            return []
        doc = self._json(resp, "board list")
        if isinstance(doc, dict):
            return [{"name": name, **(info if isinstance(info, dict) else {})} for name, info in doc.items()]
        if isinstance(doc, list):
            return [b if isinstance(b, dict) else {"name": str(b)} for b in doc]
        raise BlazeEarError("board list: unexpected answer from the Developer Cloud")

    def check_board(self, board: str) -> str:
        """The board's name as the service spells it; one-line error for an unknown board."""
        boards = self.boards()
        if self.dry_run:
            return board
        names = [str(b.get("name")) for b in boards]
        for name in names:
            if name.lower() == board.lower():
                return name
        raise BlazeEarError(f"unknown board {board!r}: the Developer Cloud offers "
                            f"{', '.join(sorted(names)) or 'no board right now'}")

    def list_models(self) -> list[dict]:
        resp = self._send("GET", "api/file/files/models")
        if resp is None:
            return []
        doc = self._json(resp, "model list")
        return doc if isinstance(doc, list) else []

    def upload_model(self, path: str | Path) -> str:
        """Upload a model file; returns its name on the service (the file name)."""
        path = Path(path)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise BlazeEarError(f"{path}: cannot read ({exc.strerror or exc})") from None
        files = {"file": (path.name, content, "application/octet-stream")}
        resp = self._send("POST", "api/file/files/models", files=files, timeout=self.upload_timeout)
        if resp is None:
            return path.name
        doc = self._json(resp, f"upload of {path.name}")
        if not (isinstance(doc, dict) and doc.get("upload") is True):
            raise BlazeEarError(f"upload of {path.name}: the Developer Cloud did not confirm it "
                                f"({_one_line(doc, 200)})")
        return path.name

    def start_benchmark(self, model_name: str, board: str, version: str | None = None) -> str:
        body = benchmark_args(model_name, board, version)
        resp = self._send("POST", f"api/benchmark/benchmark/{board.lower()}", json_body=body)
        if resp is None:
            return PH_BENCHMARK_ID
        if resp.status_code == 404:
            raise BlazeEarError(f"unknown board {board!r}: {resp.url} not found (HTTP 404)")
        doc = self._json(resp, f"benchmark of {model_name} on {board}")
        if not isinstance(doc, dict) or not doc.get("benchmarkId"):
            raise BlazeEarError(f"benchmark of {model_name} on {board}: no benchmarkId in the answer "
                                f"({_one_line(doc, 200)})")
        return str(doc["benchmarkId"])

    def benchmark_status(self, benchmark_id: str) -> dict | None:
        resp = self._send("GET", f"api/benchmark/benchmark/{benchmark_id}",
                          note=f"polled every {self.poll_interval:g} s until the state is done or error")
        if resp is None:
            return None
        doc = self._json(resp, f"benchmark {benchmark_id}")
        if not isinstance(doc, dict):
            raise BlazeEarError(f"benchmark {benchmark_id}: unexpected answer ({_one_line(doc, 200)})")
        return doc

    def wait_benchmark(self, benchmark_id: str, *, board: str = DEFAULT_BOARD, timeout: float = 900,
                       on_state: Callable[[dict], Any] | None = None) -> dict | None:
        """Poll until ``done`` (returns the final JSON) or ``error`` (raises with ST's message)."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.benchmark_status(benchmark_id)
            if doc is None:  # dry-run
                return None
            state = str(doc.get("state", "")).lower()
            if on_state is not None:
                on_state(doc)
            if state == "done":
                return doc
            if state == "error":
                message = doc.get("message") or doc.get("error") or "ST gave no message"
                raise BlazeEarError(f"benchmark on {board} ended in error: {_one_line(message)}")
            now = time.monotonic()
            if now >= deadline:
                raise BlazeEarError(f"benchmark {benchmark_id} on {board} still '{state or '?'}' after "
                                    f"{timeout:g} s (raise --timeout; the run may still finish)")
            time.sleep(max(0.0, min(self.poll_interval, deadline - now)))

    def benchmark(self, model: str | Path, board: str = DEFAULT_BOARD, *, timeout: float = 900,
                  version: str | None = None, check_board: bool = True,
                  on_state: Callable[[dict], Any] | None = None) -> dict | None:
        """Upload ``model``, benchmark it on ``board`` and return the final result JSON
        (``None`` in dry-run).  ``check_board=False`` skips the board-list check (for a name
        already returned by :meth:`check_board`)."""
        if check_board:
            board = self.check_board(board)
        name = self.upload_model(model)
        bid = self.start_benchmark(name, board, version)
        return self.wait_benchmark(bid, board=board, timeout=timeout, on_state=on_state)

    def analyze(self, model: str | Path, *, board: str = DEFAULT_BOARD, version: str | None = None,
                timeout: float = 600, on_state: Callable[[dict], Any] | None = None) -> dict | None:
        """``stedgeai analyze`` on the service (no board involved); returns the final run JSON."""
        version = version or self.latest_version()
        name = self.upload_model(model)
        args = benchmark_args(name, board)
        note = (f"{PH_VERSION} = the version marked isLatest in assets/versions.json"
                if version == PH_VERSION else None)
        resp = self._send("POST", f"api/{version}/stm32ai/analyze", data={"args": json.dumps(args)},
                          note=note)
        if resp is None:
            run_id = PH_RUNTIME_ID
        else:
            doc = self._json(resp, f"analyze of {name}")
            if not isinstance(doc, dict) or not doc.get("runtimeId"):
                message = doc.get("error") or doc.get("message") if isinstance(doc, dict) else doc
                raise BlazeEarError(f"analyze of {name}: the service did not start it "
                                    f"({_one_line(message or doc, 200)})")
            run_id = str(doc["runtimeId"])
        deadline = time.monotonic() + timeout
        while True:
            resp = self._send("GET", f"api/{version}/stm32ai/run/{run_id}",
                              note=f"polled every {self.poll_interval:g} s until a result or an error")
            if resp is None:
                return None
            doc = self._json(resp, f"analyze run {run_id}")
            state = str(doc.get("state", "")).lower() if isinstance(doc, dict) else ""
            if on_state is not None and isinstance(doc, dict):
                on_state(doc)
            if isinstance(doc, dict) and doc.get("result") is not None:
                return doc
            if state == "error":
                message = doc.get("message") or doc.get("error") or "ST gave no message"
                raise BlazeEarError(f"analyze of {name} ended in error: {_one_line(message)}")
            now = time.monotonic()
            if now >= deadline:
                raise BlazeEarError(f"analyze of {name} still '{state or '?'}' after {timeout:g} s")
            time.sleep(max(0.0, min(self.poll_interval, deadline - now)))


def state_progress(doc: dict) -> float | None:
    """Percent done of a benchmark state JSON (ST's ``step``/``totalStep``/``progress`` when
    given, else the position of ``state`` in :data:`BENCHMARK_STATES`); None when unknown."""
    try:
        step, total = float(doc["step"]), float(doc["totalStep"])
        if total > 0:
            return max(0.0, min(100.0, (step - 1) / total * 100 + float(doc.get("progress", 0)) / total))
    except (KeyError, TypeError, ValueError):
        pass
    state = str(doc.get("state", "")).lower()
    if state in BENCHMARK_STATES:
        return 100.0 * BENCHMARK_STATES.index(state) / (len(BENCHMARK_STATES) - 1)
    return None
