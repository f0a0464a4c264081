"""Log in to the ST Edge AI Developer Cloud and keep its token.

The login is ST's OAuth2 authorisation-code flow, done the way ST's own Python client
(``stm32ai_dc/backend/cloud/login_service.py``) does it, with a plain HTTP session and no browser:

1. GET ``<sso>/as/authorization.oauth2?response_type=code&client_id=oidc_prod_client_app_stm32ai
   &scope=openid&redirect_uri=<base>callback&response_mode=query`` (following redirects) to reach
   ST's login page;
2. POST the login form found there with exactly the four fields ST's client posts
   (``username``, ``password``, ``_eventId=Login`` and the form's ``lt`` ticket), without
   following redirects;
3. follow the ``Location`` headers by hand until one points to ``<base>callback?code=...``;
4. POST ``{redirect_url, code}`` to ``<base>api/user_service/login/callback``, which answers
   ``{access_token, refresh_token, expires_at}``.

These pages are requested with a session of their own, headed like ST's client's (its browser
User-Agent, ``Accept: */*``; :func:`~blazeear_edge.cloud.http.make_login_session`), never with the
API session's JSON headers.  None of these POSTs is ever re-sent: a replayed callback would spend
the one-time code and a replayed refresh a rotating refresh token.

An expired token is refreshed with POST ``<base>api/user_service/login/refresh`` (form field
``refresh_token``) *before* it is used: an access token past its ``expires_at`` is never sent.

Credentials come from ``--user`` plus a password prompt, or from ``STEDGEAI_USER`` /
``STEDGEAI_PASSWORD``; they are sent to ST's SSO only and never written anywhere.  The token (not
the password) is cached per Developer Cloud host in ``$XDG_CONFIG_HOME/blazeear-edge/token.json``
(``~/.config/blazeear-edge/token.json`` by default), written atomically with mode 0600.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import parse_qs, urljoin, urlparse

from ..errors import BlazeEarError
from . import CLIENT_ID, ENV_PASSWORD, ENV_USER, SSO_URL

#: Relative paths of the user service on the Developer Cloud host.
CALLBACK_PATH = "api/user_service/login/callback"
REFRESH_PATH = "api/user_service/login/refresh"
#: A token is treated as expired this many seconds before its stated expiry.
EXPIRY_MARGIN_S = 60.0

# The messages ST's SSO shows (as matched by ST's own client).
_WRONG_PASSWORD_RE = re.compile(r"You have provided the wrong password\.?(?:\s*You have (\d+) attempts left)?",
                                re.I)
_BLOCKED_RE = re.compile(r"You have exceeded \d+ login attempts", re.I)


def token_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the token cache lives: ``$XDG_CONFIG_HOME/blazeear-edge/token.json``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "blazeear-edge" / "token.json"


def callback_url(base_url: str) -> str:
    """The OAuth2 redirect URI the Developer Cloud registers: ``<base>callback``."""
    return urljoin(base_url, "callback")


def authorize_request(base_url: str, sso_url: str = SSO_URL,
                      client_id: str = CLIENT_ID) -> tuple[str, dict]:
    """URL and query parameters of the SSO authorisation request (step 1)."""
    return (sso_url.rstrip("/") + "/as/authorization.oauth2",
            {"response_type": "code", "client_id": client_id, "scope": "openid",
             "redirect_uri": callback_url(base_url), "response_mode": "query"})


def unreachable_error(url: str, exc: Exception) -> BlazeEarError:
    """The one-line error for a network that does not answer."""
    host = urlparse(url)
    where = f"{host.scheme}://{host.netloc}" if host.netloc else url
    reason = type(exc).__name__
    text = str(exc)
    for hint in ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                 "timed out", "Network is unreachable", "No route to host", "certificate verify failed"):
        if hint.lower() in text.lower():
            reason = hint
            break
    return BlazeEarError(f"cannot reach {where} ({reason}): check the network, a proxy "
                         "(HTTPS_PROXY) or --base-url")


def _interrupted(url: str, exc: Exception, what: str, advice: str) -> BlazeEarError:
    """A failed login step: "cannot reach" when nothing was sent, else say it was not re-sent."""
    from .http import failed_before_sending

    if failed_before_sending(exc):
        return unreachable_error(url, exc)
    return BlazeEarError(f"{what} interrupted ({type(exc).__name__}) after a request was sent; it was "
                         f"not sent again: {advice}")


@dataclass
class Token:
    """An access token of the Developer Cloud and what is needed to renew it."""

    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # seconds since the epoch

    def expired(self, now: float | None = None, margin: float = EXPIRY_MARGIN_S) -> bool:
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at - margin

    @classmethod
    def from_response(cls, doc: Mapping, previous: "Token | None" = None) -> "Token":
        """Build from the JSON of ``login/callback`` or ``login/refresh``."""
        access = doc.get("access_token")
        if not access:
            raise BlazeEarError("the Developer Cloud answered without an access token")
        expires_at = doc.get("expires_at")
        if expires_at is not None:
            expires_at = float(expires_at)
            if expires_at > 1e11:  # milliseconds
                expires_at /= 1000.0
        elif doc.get("expires_in") is not None:
            expires_at = time.time() + float(doc["expires_in"])
        refresh = doc.get("refresh_token") or (previous.refresh_token if previous else None)
        return cls(access_token=str(access), refresh_token=refresh, expires_at=expires_at)


class TokenStore:
    """The token cache: one JSON file, one token per Developer Cloud host, mode 0600."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else token_path()

    def _read(self) -> dict:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError):
            raise BlazeEarError(f"{self.path}: unreadable token cache; delete it and run "
                                "`blazeear-edge cloud login`") from None
        return doc if isinstance(doc, dict) else {}

    def load(self, base_url: str) -> Token | None:
        entry = self._read().get("tokens", {}).get(base_url)
        if not isinstance(entry, dict) or not entry.get("access_token"):
            return None
        return Token(access_token=entry["access_token"], refresh_token=entry.get("refresh_token"),
                     expires_at=entry.get("expires_at"))

    def save(self, base_url: str, token: Token) -> Path:
        doc = self._read()
        doc.setdefault("tokens", {})[base_url] = asdict(token)
        return self._write(doc)

    def delete(self, base_url: str) -> bool:
        """Forget the token of one host; True when there was one."""
        doc = self._read()
        if doc.get("tokens", {}).pop(base_url, None) is None:
            return False
        if doc["tokens"]:
            self._write(doc)
        else:
            self.path.unlink(missing_ok=True)
        return True

    def _write(self, doc: dict) -> Path:
        return write_private_json(self.path, doc, ".token-")


def get_credentials(user: str | None = None, env: Mapping[str, str] | None = None,
                    prompt: Callable[[str], str] | None = None) -> tuple[str, str]:
    """The ST account: ``user`` (from ``--user``) or ``$STEDGEAI_USER``; the password from
    ``$STEDGEAI_PASSWORD`` or a no-echo prompt.  Nothing is stored."""
    env = os.environ if env is None else env
    user = user or env.get(ENV_USER)
    if not user:
        raise BlazeEarError(f"no ST account given: use --user NAME (the password is prompted) or set "
                            f"{ENV_USER} and {ENV_PASSWORD}")
    password = env.get(ENV_PASSWORD)
    if not password:
        try:
            password = (prompt or getpass.getpass)(f"Password for {user} on my.st.com: ")
        except (EOFError, KeyboardInterrupt):
            password = ""
    if not password:
        raise BlazeEarError(f"no password given for {user} (type it at the prompt or set {ENV_PASSWORD})")
    return user, password


def env_credentials(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """Both environment variables set -> (user, password), else None."""
    env = os.environ if env is None else env
    if env.get(ENV_USER) and env.get(ENV_PASSWORD):
        return env[ENV_USER], env[ENV_PASSWORD]
    return None


class _LoginFormParser(HTMLParser):
    """Finds the forms of a page, their action and their input fields."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self._current = {"action": attrs.get("action", ""), "inputs": {}, "password": False}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None:
            kind = attrs.get("type", "text").lower()
            if kind == "password":
                self._current["password"] = True
            if attrs.get("name") and kind in ("hidden",):
                self._current["inputs"][attrs["name"]] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def _login_form(page: str) -> dict | None:
    parser = _LoginFormParser()
    parser.feed(page)
    with_password = [f for f in parser.forms if f["password"]]
    forms = with_password or parser.forms
    return forms[0] if forms else None


def sso_login(session, base_url: str, user: str, password: str, *, sso_url: str = SSO_URL,
              client_id: str = CLIENT_ID, timeout=(10, 60)) -> Token:
    """Run the authorisation-code flow with ``session`` (a :class:`requests.Session`)."""
    import requests

    redirect_uri = callback_url(base_url)
    url, params = authorize_request(base_url, sso_url, client_id)
    try:
        resp = session.get(url, params=params, allow_redirects=True, timeout=timeout)
        if resp.status_code >= 400:
            raise BlazeEarError(f"ST's SSO answered HTTP {resp.status_code} to the authorisation "
                                f"request ({resp.url})")
        form = _login_form(resp.text)
        if form is None:
            raise BlazeEarError(f"no login form on ST's SSO page {resp.url}: the login flow may have "
                                "changed; log in at https://stedgeai-dc.st.com and report this")
        if "lt" not in form["inputs"]:
            raise BlazeEarError(f"no 'lt' field in the login form of {resp.url}: the login flow may "
                                "have changed; log in at https://stedgeai-dc.st.com and report this")
        data = {"username": user, "password": password, "_eventId": "Login",
                "lt": form["inputs"]["lt"]}
        resp = session.post(urljoin(resp.url, form["action"]), data=data, allow_redirects=False,
                            timeout=timeout)
        if resp.status_code == 200 or "Location" not in resp.headers:
            if _BLOCKED_RE.search(resp.text):
                raise BlazeEarError(f"ST account {user} is blocked after too many failed logins: "
                                    "reset the password on my.st.com")
            wrong = _WRONG_PASSWORD_RE.search(resp.text)
            left = f" ({wrong.group(1)} attempts left)" if wrong and wrong.group(1) else ""
            raise BlazeEarError(f"bad credentials: ST's SSO refused the login of {user}{left}")
        location = urljoin(resp.url, resp.headers["Location"])
        for _ in range(20):
            if location.startswith(redirect_uri):
                break
            resp = session.get(location, allow_redirects=False, timeout=timeout)
            if resp.status_code not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
                break
            location = urljoin(resp.url, resp.headers["Location"])
        query = parse_qs(urlparse(location).query)
        if not location.startswith(redirect_uri) or "code" not in query:
            detail = query.get("error_description", query.get("error", ["no authorisation code"]))[0]
            raise BlazeEarError(f"login of {user} failed: ST's SSO did not redirect to {redirect_uri} "
                                f"with a code ({detail})")
        resp = session.post(urljoin(base_url, CALLBACK_PATH),
                            data={"redirect_url": redirect_uri, "code": query["code"][0]},
                            allow_redirects=False, timeout=timeout)
    except requests.RequestException as exc:
        raise _interrupted(url, exc, f"login of {user}", "run `blazeear-edge cloud login` again") from None
    if resp.status_code in (400, 401, 403):
        raise BlazeEarError(f"bad credentials: the Developer Cloud refused the login of {user} "
                            f"(HTTP {resp.status_code})")
    if resp.status_code != 200:
        raise BlazeEarError(f"login of {user} failed: {urljoin(base_url, CALLBACK_PATH)} answered "
                            f"HTTP {resp.status_code}")
    try:
        return Token.from_response(resp.json())
    except ValueError:
        raise BlazeEarError("login failed: the Developer Cloud's answer is not JSON") from None


def refresh_token(session, base_url: str, token: Token, *, timeout=(10, 60)) -> Token:
    """Renew an expired access token with its refresh token."""
    import requests

    if not token.refresh_token:
        raise BlazeEarError("token expired and there is no refresh token: run "
                            "`blazeear-edge cloud login` again")
    url = urljoin(base_url, REFRESH_PATH)
    try:
        resp = session.post(url, data={"refresh_token": token.refresh_token}, timeout=timeout)
    except requests.RequestException as exc:
        raise _interrupted(url, exc, "token refresh", "run the command again, or `blazeear-edge "
                           "cloud login` if ST then refuses the refresh token") from None
    if resp.status_code in (400, 401, 403):
        raise BlazeEarError("token expired and ST refused to refresh it: run "
                            "`blazeear-edge cloud login` again")
    if resp.status_code != 200:
        raise BlazeEarError(f"token refresh failed: {url} answered HTTP {resp.status_code}")
    try:
        doc = resp.json()
    except ValueError:
        raise BlazeEarError("token refresh failed: the answer is not JSON") from None
    if not doc.get("access_token"):
        raise BlazeEarError("token expired and ST refused to refresh it: run "
                            "`blazeear-edge cloud login` again")
    return Token.from_response(doc, previous=token)


def write_private_json(path: Path, doc: dict, prefix: str) -> Path:
    """Atomic write of a private file: a 0600 temporary file in the same (0700) folder, synced,
    then renamed over ``path``; nothing half-written is left on failure."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
