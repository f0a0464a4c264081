"""REST client of the ST Edge AI Developer Cloud.

:class:`DevCloudClient` speaks the protocol of ST's own client (``stm32ai_dc``): the same paths,
methods, form or JSON bodies and field names (:mod:`.protocol`), on a session that retries only
what is safe to retry (:mod:`.http`: GETs, and connection errors before a request was sent).
Every failure a user can act on becomes a one-line :class:`~blazeear_edge.errors.BlazeEarError`:
bad credentials, an expired token that cannot be refreshed, an unknown board, a benchmark that
ends in ``error`` (with ST's message), a network that does not answer - and a POST that fails
after it may have reached the service, which is never sent again: the error says a job may be
running and how to look it up (``blazeear-edge cloud status ID``), so a 504 from a gateway cannot
start a second job on ST's board farm.

A job's id is handed to ``on_started`` as soon as the service names it, so the command line can
print it and remember it (:mod:`.jobs`); a run that outlives ``--timeout`` is fetched later by id
(:meth:`DevCloudClient.benchmark_status`, :meth:`DevCloudClient.analyze_status`).

With ``dry_run=True`` nothing is sent: each request is built exactly as it would be (method, URL,
headers, body), recorded in :attr:`DevCloudClient.recorded` and printed, with the bearer token and
the password replaced by ``<redacted>``.  Values only the service could supply (a benchmark id, the
latest tool version) appear as upper-case placeholders.

Endpoints (relative to the base URL, as ST's own client uses them):

=====================================  ===========================================================
``GET  assets/versions.json``          tool versions (``version``, ``isLatest``); no token needed
``GET  api/benchmark/boards``          boards of ST's farm, keyed by name
``POST api/file/files/models``         upload a model (multipart field ``file``) -> ``{upload}``
``GET  api/file/files/models``         the account's models (the upload is checked there)
``GET  api/benchmark/api``             the benchmark service's OpenAPI: flat or legacy body
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
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urljoin

import requests

from ..errors import BlazeEarError
from . import (ANALYZE_TIMEOUT, BENCHMARK_STATES, BENCHMARK_TIMEOUT, DEFAULT_BASE_URL, DEFAULT_BOARD,
               SSO_URL)
from .auth import (CALLBACK_PATH, Token, TokenStore, authorize_request, callback_url,
                   env_credentials, refresh_token, sso_login, unreachable_error)
from .http import (RecordedRequest, failed_before_sending, make_login_session, make_plain_session,
                   make_session, one_line, record, redact_form, server_message)
from .protocol import FLAT, analyze_args, benchmark_args, benchmark_body, body_shape, resolve_version

#: (connect, read) timeouts in seconds for ordinary calls and for model uploads.
TIMEOUT = (10.0, 60.0)
UPLOAD_TIMEOUT = (10.0, 300.0)
#: Placeholders printed in dry-run for values only the service knows.
PH_BENCHMARK_ID = "BENCHMARK_ID"
PH_RUNTIME_ID = "RUNTIME_ID"
PH_VERSION = "VERSION"

__all__ = ["DevCloudClient", "RecordedRequest", "benchmark_args", "resolve_model", "save_result",
           "result_filename", "state_progress", "BENCHMARK_TIMEOUT", "ANALYZE_TIMEOUT"]


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


def _maybe_started(job: str, url: str, reason: str, base_url: str) -> BlazeEarError:
    """The error for a POST that failed after it may have reached the service."""
    return BlazeEarError(
        f"{job}: {reason} from {url} after the request was sent, so the job may have started at "
        f"ST; it was NOT sent again. Look it up in your history on {base_url} and fetch it with "
        "`blazeear-edge cloud result ID`; start a new run only if no job is listed")


def with_request(doc: dict | None, job: Mapping) -> dict | None:
    """The service's result with what was asked (``request``: id, board, version, body...)."""
    return None if doc is None else {**doc, "request": dict(job)}


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
        self.login_session = make_login_session(retries, backoff)
        self.refresh_session = make_plain_session(retries, backoff)
        self.env = os.environ if env is None else env
        self._token = Token(token) if isinstance(token, str) else token
        self.recorded: list[RecordedRequest] = []

    # -- transport --------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if re.match(r"^https?://", path) else urljoin(self.base_url, path)

    def _dry(self, method: str, url: str, *, session: requests.Session | None = None, headers=None,
             params=None, json_body=None, data=None, files=None, note=None) -> None:
        if isinstance(data, Mapping):  # secrets never enter the printed body (nor its length)
            data = redact_form(data)
        prepared = (session or self.session).prepare_request(requests.Request(
            method, url, headers=headers, params=params, json=json_body, data=data,
            files=dict(files) if files else None))
        rec = record(prepared, json_body=json_body, data=data, files=files, note=note)
        self.recorded.append(rec)
        self.printer(str(rec))

    def _send(self, method: str, path: str, *, auth: bool = True, params=None, json_body=None,
              data=None, files=None, timeout=None, note=None,
              job: str | None = None) -> requests.Response | None:
        """One call.  A 401 is healed by one token refresh and the call made again (the service
        refused it, so nothing ran).  ``job`` names what a POST starts: when it fails after it
        may have reached the service (HTTP 5xx, read timeout, dropped connection) the error says
        a job may be running instead of letting anyone start it again."""
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
                if method != "GET" and not failed_before_sending(exc):
                    if job:
                        raise _maybe_started(job, url, type(exc).__name__, self.base_url) from None
                    raise BlazeEarError(f"{method} {url}: {type(exc).__name__} after the request "
                                        "was sent; it was not sent again") from None
                raise unreachable_error(url, exc) from None
            if job and resp.status_code >= 500:
                message = server_message(resp)
                raise _maybe_started(job, url, f"HTTP {resp.status_code}"
                                     + (f" ({message})" if message else ""), self.base_url)
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
            message = server_message(resp)
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
        new = refresh_token(self.refresh_session, self.base_url, token, timeout=self.timeout)
        self.store.save(self.base_url, new)
        return new

    def access_token(self) -> str:
        """The bearer token, from the cache; refreshed first when expired (never sent expired)."""
        token = self._current_token()
        if token.expired():
            token = self._token = self._refresh(token)
        return token.access_token

    def login(self, user: str, password: str) -> Token | None:
        """ST's SSO authorisation-code flow; the token is cached, the password is not."""
        if self.dry_run:
            url, params = authorize_request(self.base_url, self.sso_url)
            self._dry("GET", url, session=self.login_session, params=params,
                      note="redirects followed to ST's login page")
            self._dry("POST", "https://LOGIN-FORM-ACTION.invalid/", session=self.login_session,
                      data={"username": user, "password": password, "_eventId": "Login", "lt": "LT"},
                      note="URL and lt come from the login form; redirects are then "
                           f"followed by hand until {callback_url(self.base_url)}?code=...")
            self._dry("POST", self.url(CALLBACK_PATH), session=self.login_session,
                      data={"redirect_url": callback_url(self.base_url), "code": "CODE-FROM-REDIRECT"},
                      note="answers {access_token, refresh_token, expires_at}")
            return None
        token = sso_login(self.login_session, self.base_url, user, password, sso_url=self.sso_url,
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

    def core_version(self, requested: str | None = None) -> str:
        """The Developer Cloud version of ST Edge AI Core to use (:func:`.protocol.resolve_version`:
        ``requested`` if the service offers it, else the one marked ``isLatest``)."""
        versions = self.versions()
        if self.dry_run:
            return requested or PH_VERSION
        return resolve_version(versions, requested, source=self.url("assets/versions.json"))

    def latest_version(self) -> str:
        return self.core_version(None)

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
        """Upload a model file (multipart field ``file``, named as on disk, like ST's
        ``open(path, 'rb')``); returns its name on the service."""
        path = Path(path)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise BlazeEarError(f"{path}: cannot read ({exc.strerror or exc})") from None
        resp = self._send("POST", "api/file/files/models", files={"file": (path.name, content)},
                          timeout=self.upload_timeout)
        if resp is None:
            return path.name
        doc = self._json(resp, f"upload of {path.name}")
        if not (isinstance(doc, dict) and doc.get("upload") is True):
            raise BlazeEarError(f"upload of {path.name}: the Developer Cloud did not confirm it "
                                f"({one_line(doc, 200)})")
        return path.name

    def check_uploaded(self, name: str) -> None:
        """ST's client checks the model is listed before it starts a job on it."""
        models = self.list_models()
        if self.dry_run:
            return
        if name not in {str(m.get("name")) for m in models if isinstance(m, dict)}:
            raise BlazeEarError(f"upload of {name}: the Developer Cloud does not list it among "
                                "your models")

    def benchmark_shape(self) -> str:
        """The body shape the benchmark service's OpenAPI asks for (flat when it cannot tell,
        as ST's client)."""
        try:
            resp = self._send("GET", "api/benchmark/api", auth=False,
                              note="OpenAPI: a start body of only {model, args} means the legacy shape")
        except BlazeEarError:
            return FLAT
        if resp is None or resp.status_code != 200:
            return FLAT
        try:
            return body_shape(resp.json()) or FLAT
        except ValueError:
            return FLAT

    def start_benchmark(self, model_name: str, board: str, version: str | None,
                        shape: str = FLAT) -> tuple[str, dict]:
        """POST the benchmark once; returns (benchmarkId, the body sent)."""
        body = benchmark_body(model_name, board, version, shape)
        what = f"benchmark of {model_name} on {board}"
        note = (f"{PH_VERSION} = the version marked isLatest in assets/versions.json; sent once, "
                "never retried" if version == PH_VERSION else None)
        resp = self._send("POST", f"api/benchmark/benchmark/{board.lower()}", json_body=body,
                          note=note, job=what)
        if resp is None:
            return PH_BENCHMARK_ID, body
        if resp.status_code == 404:
            raise BlazeEarError(f"unknown board {board!r}: {resp.url} not found (HTTP 404)")
        doc = self._json(resp, what)
        if not isinstance(doc, dict) or not doc.get("benchmarkId"):
            raise BlazeEarError(f"{what}: no benchmarkId in the answer ({one_line(doc, 200)})")
        return str(doc["benchmarkId"]), body

    def benchmark_status(self, benchmark_id: str) -> dict | None:
        """One look at a benchmark (any time, by id): the service's state JSON."""
        return self._state(f"api/benchmark/benchmark/{benchmark_id}", f"benchmark {benchmark_id}",
                           "until the state is done or error")

    def wait_benchmark(self, benchmark_id: str, *, board: str = DEFAULT_BOARD,
                       timeout: float = BENCHMARK_TIMEOUT,
                       on_state: Callable[[dict], Any] | None = None) -> dict | None:
        """Poll until ``done`` (returns the final JSON) or ``error`` (raises with ST's message)."""
        return self._wait(lambda: self.benchmark_status(benchmark_id), lambda doc: _state(doc) == "done",
                          f"benchmark {benchmark_id} on {board}", benchmark_id, timeout, on_state)

    def _wait(self, poll: Callable[[], dict | None], finished: Callable[[dict], bool], what: str,
              job_id: str, timeout: float, on_state) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            doc = poll()
            if doc is None:  # dry-run
                return None
            if on_state is not None:
                on_state(doc)
            if finished(doc):
                return doc
            if _state(doc) == "error":
                message = doc.get("message") or doc.get("error") or "ST gave no message"
                raise BlazeEarError(f"{what} ended in error: {one_line(message)}")
            now = time.monotonic()
            if now >= deadline:
                raise BlazeEarError(f"{what} still '{_state(doc) or '?'}' after {timeout:g} s; it goes "
                                    f"on at ST: fetch the result later with `blazeear-edge cloud "
                                    f"result {job_id}` (or raise --timeout)")
            time.sleep(max(0.0, min(self.poll_interval, deadline - now)))

    def benchmark(self, model: str | Path, board: str = DEFAULT_BOARD, *,
                  timeout: float = BENCHMARK_TIMEOUT, version: str | None = None,
                  check_board: bool = True, on_state: Callable[[dict], Any] | None = None,
                  on_started: Callable[[dict], Any] | None = None) -> dict | None:
        """Upload ``model``, benchmark it on ``board`` and return the final result JSON with a
        ``request`` entry (``None`` in dry-run).  ``version``: ``--core-version`` (default the
        latest).  ``on_started(job)`` gets the job (id, board, version, body) once it exists."""
        if check_board:
            board = self.check_board(board)
        version = self.core_version(version)
        name = self.upload_model(model)
        self.check_uploaded(name)
        shape = self.benchmark_shape()
        bid, body = self.start_benchmark(name, board, version, shape)
        job = {"kind": "benchmark", "id": bid, "base_url": self.base_url, "board": board,
               "version": version, "model_name": name, "body_shape": shape, "body": body}
        if on_started is not None:
            on_started(job)
        return with_request(self.wait_benchmark(bid, board=board, timeout=timeout, on_state=on_state), job)

    def start_analyze(self, model_name: str, board: str, version: str) -> tuple[str, dict]:
        """POST analyze once (form field ``args``); returns (runtimeId, the args sent)."""
        args = analyze_args(model_name, board)
        note = (f"{PH_VERSION} = the version marked isLatest in assets/versions.json"
                if version == PH_VERSION else None)
        what = f"analyze of {model_name}"
        resp = self._send("POST", f"api/{version}/stm32ai/analyze", data={"args": json.dumps(args)},
                          note=note, job=what)
        if resp is None:
            return PH_RUNTIME_ID, args
        doc = self._json(resp, what)
        if not isinstance(doc, dict) or not doc.get("runtimeId"):
            message = (doc.get("error") or doc.get("message")) if isinstance(doc, dict) else doc
            raise BlazeEarError(f"{what}: the service did not start it ({one_line(message or doc, 200)})")
        return str(doc["runtimeId"]), args

    def analyze_status(self, run_id: str, version: str) -> dict | None:
        """One look at an analyze run (by id; the version is part of its URL)."""
        return self._state(f"api/{version}/stm32ai/run/{run_id}", f"analyze run {run_id}",
                           "until a result or an error")

    def _state(self, path: str, what: str, until: str) -> dict | None:
        """One GET of a job's state: its JSON object, or None when the service has no answer yet."""
        resp = self._send("GET", path, note=f"polled every {self.poll_interval:g} s {until}")
        if resp is None:
            return None
        doc = self._json(resp, what)
        if not isinstance(doc, dict):
            raise BlazeEarError(f"{what}: unexpected answer ({one_line(doc, 200)})")
        return doc

    def wait_analyze(self, run_id: str, version: str, *, timeout: float = ANALYZE_TIMEOUT,
                     on_state: Callable[[dict], Any] | None = None, what: str | None = None) -> dict | None:
        return self._wait(lambda: self.analyze_status(run_id, version),
                          lambda doc: doc.get("result") is not None, what or f"analyze run {run_id}",
                          run_id, timeout, on_state)

    def analyze(self, model: str | Path, *, board: str = DEFAULT_BOARD, version: str | None = None,
                timeout: float = ANALYZE_TIMEOUT, on_state: Callable[[dict], Any] | None = None,
                on_started: Callable[[dict], Any] | None = None) -> dict | None:
        """``stedgeai analyze`` on the service (no board involved); returns the final run JSON
        with a ``request`` entry."""
        version = self.core_version(version)
        name = self.upload_model(model)
        self.check_uploaded(name)
        run_id, args = self.start_analyze(name, board, version)
        job = {"kind": "analyze", "id": run_id, "base_url": self.base_url, "board": board,
               "version": version, "model_name": name, "body": args}
        if on_started is not None:
            on_started(job)
        doc = self.wait_analyze(run_id, version, timeout=timeout, on_state=on_state,
                                what=f"analyze of {name} (run {run_id})")
        return with_request(doc, job)


def _state(doc: Mapping) -> str:
    return str(doc.get("state", "")).lower()


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
