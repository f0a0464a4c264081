"""HTTP plumbing of the Developer Cloud client: sessions, retries, dry-run records.

The contract, and why:

* **Only GETs are retried on an answer** (HTTP 500/502/503/504, and read errors).  A POST is never
  sent twice: a gateway that answers 504 after the service accepted a benchmark would otherwise
  start a second job on ST's board farm; a replayed login callback spends the one-time code (a
  misleading "bad credentials"), and a replayed refresh spends a rotating refresh token.
  ST's own client (``stm32ai_dc``) likewise retries only its GETs (``send_get`` mounts a
  ``Retry``; ``send_post`` is a bare ``requests.post``).
* **Connection errors before the request was sent** (refused, DNS, connect timeout) are retried for
  every method: nothing reached the service, so nothing can run twice.  urllib3 counts those as
  ``connect`` errors whatever the method, and a POST's read errors are never retried.
* :func:`failed_before_sending` tells a caller which of the two a ``requests`` exception was, so a
  POST that fails *after* it may have reached the service can say so instead of guessing.
* The login pages get their own session (:func:`make_login_session`) that looks like ST's client's:
  its browser User-Agent and ``requests``' default ``Accept: */*``, no JSON ``Accept`` header.
* Proxies and CA bundles come from the environment, as ``requests`` reads them (``HTTPS_PROXY``,
  ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``); nothing here overrides them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (ConnectTimeoutError, MaxRetryError, NameResolutionError,
                                NewConnectionError)
from urllib3.util.retry import Retry

from .. import __version__

#: HTTP statuses after which a GET is retried with backoff.
RETRY_STATUSES = (500, 502, 503, 504)
#: The only methods retried after an answer or a read error.
RETRY_METHODS = frozenset({"GET", "HEAD"})
#: The User-Agent ST's client sends to the SSO pages (``login_service.py``), verbatim.
ST_LOGIN_USER_AGENT = "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv59.0) Gecko/20100101"
REDACTED = "<redacted>"
SECRET_FIELDS = frozenset({"password", "refresh_token", "access_token", "code"})


def _retry(retries: int, backoff: float) -> Retry:
    return Retry(total=retries, connect=retries, read=retries, status=retries, other=0,
                 backoff_factor=backoff, backoff_max=30, status_forcelist=RETRY_STATUSES,
                 allowed_methods=RETRY_METHODS, raise_on_status=False, raise_on_redirect=False,
                 respect_retry_after_header=True)


def _mounted(retries: int, backoff: float) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=_retry(retries, backoff))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def make_session(retries: int = 3, backoff: float = 0.5) -> requests.Session:
    """The API session: ``Accept: application/json`` like ST's ``send_get``/``send_post``;
    GETs retried on 5xx and read errors, every method on connection errors before sending."""
    session = _mounted(retries, backoff)
    session.headers.update({"Accept": "application/json",
                            "User-Agent": f"blazeear-edge/{__version__} {requests.utils.default_user_agent()}"})
    return session


def make_login_session(retries: int = 3, backoff: float = 0.5) -> requests.Session:
    """The session for ST's SSO pages and the login callback, headed like ST's client's."""
    session = _mounted(retries, backoff)
    session.headers.update({"User-Agent": ST_LOGIN_USER_AGENT})
    return session


def make_plain_session(retries: int = 3, backoff: float = 0.5) -> requests.Session:
    """A session with ``requests``' default headers (ST refreshes tokens with one)."""
    return _mounted(retries, backoff)


def failed_before_sending(exc: BaseException) -> bool:
    """True when ``exc`` (from ``requests``) proves the request never reached the server:
    refused connection, unknown host, connect timeout, proxy or TLS handshake failure.  A read
    timeout or a connection dropped mid-exchange returns False: the server may have acted."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError,
                        requests.exceptions.SSLError, requests.exceptions.InvalidURL)):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and \
            not isinstance(exc, requests.exceptions.ReadTimeout):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        return isinstance(reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError))
    return False


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


def redact_form(data: Mapping[str, Any]) -> dict:
    return {k: (REDACTED if k in SECRET_FIELDS else v) for k, v in data.items()}


def record(prepared: requests.PreparedRequest, *, json_body=None, data=None, files=None,
           note: str | None = None) -> RecordedRequest:
    """A :class:`RecordedRequest` of a prepared request; the body as ``requests`` sends it."""
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
        parts += [f"multipart/form-data part {k!r}: {v}" for k, v in redact_form(data or {}).items()]
        body = "\n".join(parts)
    elif data:
        body = urlencode(redact_form(data))
        if "args" in data:  # show the JSON inside the form field readably
            body += "\n# args = " + json.dumps(json.loads(data["args"]), indent=2).replace("\n", "\n# ")
    return RecordedRequest(prepared.method, prepared.url, headers, body, note)


def one_line(text: Any, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def server_message(resp: requests.Response) -> str:
    """The service's own words about a failed call (``message``, ``error``...), on one line."""
    try:
        doc = resp.json()
    except ValueError:
        return one_line(resp.text, 200) if resp.text else ""
    if isinstance(doc, dict):
        for key in ("message", "error_description", "error", "errors", "detail"):
            if doc.get(key):
                return one_line(doc[key], 200)
    return ""
