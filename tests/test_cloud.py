"""The Developer Cloud client against a fake Developer Cloud on 127.0.0.1.

The fake server (``http.server`` in a thread, random port) implements the endpoints ST's own
client uses: the SSO login page and redirects, ``login/callback`` and ``login/refresh``,
``files/models``, ``benchmark/boards``, ``benchmark/{board}`` with its state sequence, the
analyze run, and ``assets/versions.json``.  No traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from blazeear_edge.cli import main
from blazeear_edge.cloud import BENCHMARK_STATES
from blazeear_edge.cloud.auth import Token, TokenStore, token_path
from blazeear_edge.cloud.client import DevCloudClient, resolve_model
from blazeear_edge.errors import BlazeEarError
from blazeear_edge.streports import read_st_report

USER, PASSWORD = "ada@example.com", "correct horse"
KIB = 1024

C_INFO = {
    "environment": {"tools": [{"name": "ST Edge AI Core", "version": {"major": 3, "minor": 0, "micro": 0}}]},
    "graphs": [{"exec_time": {"cycles": 3584000, "duration_ms": 4.48},
                "nodes": [{"name": "conv", "id": 1, "macc": 0}]}],
    "memory_footprint": {"weights": 108524, "activations": 528 * KIB, "io": [0, 0]},
    "memory_pools": [
        {"id": 1, "name": "npuRAM3", "address": str(0x34200000), "used_size_bytes": 416 * KIB,
         "rights": "ACC_WRITE", "subpools": [], "buffers": [1]},
        {"id": 2, "name": "npuRAM4", "address": str(0x34270000), "used_size_bytes": 112 * KIB,
         "rights": "ACC_WRITE", "subpools": [], "buffers": [2]},
        {"id": 3, "name": "octoFlash", "address": str(0x71000000), "used_size_bytes": 108524,
         "rights": "ACC_READ", "subpools": [], "buffers": [3]},
    ],
}


class FakeCloud:
    """State shared by the handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.valid_tokens = {"tok-1"}
        self.refresh_tokens = {"ref-1": "tok-2"}
        self.fail_503: dict[str, int] = {}
        self.fail_after_accept: dict[str, int] = {}   # path -> how many times to act, then 5xx
        self.after_accept_status = 504
        self.delay_after_accept: dict[str, float] = {}  # path -> seconds to stall after acting
        self.openapi: dict | None = None                 # None: api/benchmark/api answers 404
        self.tokens_sent: list[tuple[str, str]] = []     # (path, bearer token) of each call
        self.headers: dict[str, dict] = {}               # path -> headers of its last request
        self.forms: dict[str, dict] = {}                 # path -> last url-encoded form
        self.benchmark_end = "done"
        self.error_message = "INTERNAL ERROR: Unknown dimensions: CH"
        self.uploads: dict[str, bytes] = {}
        self.benchmark_bodies: list[dict] = []
        self.analyze_args: list[dict] = []
        self.polls = 0
        self.url = ""

    def hits(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p == path)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    @property
    def cloud(self) -> FakeCloud:
        return self.server.cloud

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, doc=None, headers=None, text=None, ctype="application/json"):
        body = (json.dumps(doc) if text is None else text).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in self.cloud.valid_tokens:
            return True
        self._send(401, {"message": "jwt expired"})
        return False

    def _handle(self, method):
        url = urlparse(self.path)
        path = url.path
        body = self._body() if method == "POST" else b""
        cloud = self.cloud
        with cloud.lock:
            cloud.requests.append((method, path))
            cloud.headers[path] = dict(self.headers)
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                cloud.tokens_sent.append((path, auth[7:]))
            if cloud.fail_503.get(path, 0) > 0:
                cloud.fail_503[path] -= 1
                return self._send(503, {"message": "busy"})
        form = {k: v[0] for k, v in parse_qs(body.decode("latin-1")).items()} \
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded") else {}
        if form:
            cloud.forms[path] = form
        real_send = self._send
        if cloud.fail_after_accept.get(path, 0) > 0:  # act on the request, then answer a 5xx
            cloud.fail_after_accept[path] -= 1
            self._send = lambda code, doc=None, **kw: real_send(  # type: ignore[method-assign]
                cloud.after_accept_status, {"message": "Gateway Timeout"})
        if cloud.delay_after_accept.get(path):  # act on the request, then stall past the timeout
            delay = cloud.delay_after_accept[path]

            def stalled(*a, **kw):
                time.sleep(delay)
                try:
                    real_send(*a, **kw)
                except OSError:  # the client hung up
                    pass
            self._send = stalled  # type: ignore[method-assign]

        # --- SSO -------------------------------------------------------------------------
        if path == "/sso/as/authorization.oauth2" and method == "GET":
            q = parse_qs(url.query)
            assert q["client_id"] == ["oidc_prod_client_app_stm32ai"]
            assert q["redirect_uri"] == [cloud.url + "callback"]
            return self._send(200, text=(
                '<html><body><form id="login" method="post" action="/sso/cas/login?service=dc&amp;x=1">'
                '<input type="text" name="username"/><input type="password" name="password"/>'
                '<input type="hidden" name="lt" value="LT-42"/>'
                '<input type="hidden" name="execution" value="e1s1"/>'
                '<input type="hidden" name="_csrf" value="c5"/></form></body></html>'), ctype="text/html")
        if path == "/sso/cas/login" and method == "POST":
            assert form.get("lt") == "LT-42" and form.get("_eventId") == "Login"
            if form.get("username") != USER or form.get("password") != PASSWORD:
                return self._send(200, ctype="text/html", text=(
                    "<p>You have provided the wrong password. You have 3 attempts left after which "
                    "your account password will expire.</p>"))
            return self._send(302, {}, headers={"Location": "/sso/as/resume"})
        if path == "/sso/as/resume":
            return self._send(302, {}, headers={"Location": cloud.url + "callback?code=CODE-7"})
        if path == "/callback":
            raise AssertionError("the client must not follow the final redirect")
        if path == "/api/user_service/login/callback" and method == "POST":
            if form.get("code") != "CODE-7" or form.get("redirect_url") != cloud.url + "callback":
                return self._send(401, {"message": "invalid code"})
            return self._send(200, {"access_token": "tok-1", "refresh_token": "ref-1",
                                    "expires_at": time.time() + 3600})
        if path == "/api/user_service/login/refresh" and method == "POST":
            new = cloud.refresh_tokens.get(form.get("refresh_token", ""))
            if new is None:
                return self._send(401, {"message": "invalid refresh token"})
            cloud.valid_tokens.add(new)
            return self._send(200, {"access_token": new, "expires_at": time.time() + 3600})

        # --- service ---------------------------------------------------------------------
        if path == "/assets/versions.json":
            return self._send(200, [{"version": "2.2.0", "isLatest": False,
                                     "platform": {"stm32": "10.1.0"}},
                                    {"version": "3.0.0", "isLatest": True,
                                     "platform": {"stm32": "10.2.0"}}])
        if path == "/api/benchmark/api" and method == "GET":
            if cloud.openapi is None:
                return self._send(404, {"message": "no openapi"})
            return self._send(200, cloud.openapi)
        if not self._authorized():
            return None
        if path == "/api/benchmark/boards":
            return self._send(200, {"STM32N6570-DK": {"boardCount": 4, "flashSize": "128 MB",
                                                      "deviceCpu": "Cortex-M55", "deviceId": "0x486"},
                                    "B-U585I-IOT02A": {"boardCount": 2, "flashSize": "2 MB",
                                                       "deviceCpu": "Cortex-M33", "deviceId": "0x482"}})
        if path == "/api/file/files/models" and method == "POST":
            ctype = self.headers.get("Content-Type", "")
            assert ctype.startswith("multipart/form-data")
            head, _, rest = body.partition(b"\r\n\r\n")
            assert b'name="file"' in head
            name = head.split(b'filename="')[1].split(b'"')[0].decode()
            boundary = ctype.split("boundary=")[1].encode()
            cloud.uploads[name] = rest.rsplit(b"\r\n--" + boundary, 1)[0]
            return self._send(200, {"upload": True})
        if path == "/api/file/files/models" and method == "GET":
            return self._send(200, [{"name": n} for n in cloud.uploads])
        if path.startswith("/api/benchmark/benchmark/") and method == "POST":
            board = path.rsplit("/", 1)[1]
            if board != "stm32n6570-dk":
                return self._send(404, {"message": "no such queue"})
            doc = json.loads(body)
            with cloud.lock:
                cloud.benchmark_bodies.append(doc)
                bid = f"bench-{len(cloud.benchmark_bodies)}"
            return self._send(200, {"benchmarkId": bid, "model": doc.get("model"), "args": doc})
        if path.startswith("/api/benchmark/benchmark/bench-") and method == "GET":
            with cloud.lock:
                i = cloud.polls
                cloud.polls += 1
            states = list(BENCHMARK_STATES[:-1])
            if i < len(states):
                return self._send(200, {"state": states[i], "step": i + 1, "totalStep": len(states) + 1,
                                        "progress": 50})
            if cloud.benchmark_end == "error":
                return self._send(200, {"state": "error", "board": "STM32N6570-DK",
                                        "message": cloud.error_message})
            return self._send(200, {"state": "done", "board": "STM32N6570-DK",
                                    "benchmark": {"info": C_INFO, "graph": {}, "report": {}},
                                    "memoryMapping": {"useExternalRam": False, "useExternalFlash": True}})
        if path in ("/api/3.0.0/stm32ai/analyze", "/api/2.2.0/stm32ai/analyze") and method == "POST":
            fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            cloud.analyze_args.append(json.loads(fields["args"]))
            return self._send(200, {"runtimeId": "run-9"})
        if path in ("/api/3.0.0/stm32ai/run/run-9", "/api/2.2.0/stm32ai/run/run-9"):
            with cloud.lock:
                i = cloud.polls
                cloud.polls += 1
            if i < 2:
                return self._send(200, {"state": "running"})
            return self._send(200, {"state": "done", "result": {"info": C_INFO, "report": {}, "graph": {}}})
        return self._send(404, {"message": f"no route {method} {path}"})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")


@pytest.fixture
def cloud():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.cloud = FakeCloud()
    server.cloud.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.cloud
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("STEDGEAI_USER", raising=False)
    monkeypatch.delenv("STEDGEAI_PASSWORD", raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return home


def cached(cloud, access="tok-1", refresh="ref-1", expires_in=3600.0):
    TokenStore().save(cloud.url, Token(access, refresh, time.time() + expires_in))


def cli(cloud, *args):
    return main(["cloud", "--base-url", cloud.url, "--sso-url", cloud.url + "sso",
                 "--poll-interval", "0.01", *args])


@pytest.fixture
def export_dir(tmp_path):
    d = tmp_path / "exports" / "blazeface_front"
    d.mkdir(parents=True)
    (d / "blazeface_front_int8.tflite").write_bytes(b"TFL3" + bytes(range(256)) * 4)
    (d / "blazeface_front_fp32.tflite").write_bytes(b"TFL3fp32")
    (d / "manifest.json").write_text(json.dumps({"artifacts": {
        "tflite_fp32": {"path": "blazeface_front_fp32.tflite"},
        "tflite_int8": {"path": "blazeface_front_int8.tflite", "sha256": "..."}}}))
    return d


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("blazeear-edge cloud: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    return errors[0]


# --------------------------------------------------------------------------------------------


def test_login_caches_token_0600_and_never_the_password(cloud, monkeypatch):
    monkeypatch.setenv("STEDGEAI_PASSWORD", PASSWORD)
    assert cli(cloud, "login", "--user", USER) == 0
    path = token_path()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert "tok-1" in text and PASSWORD not in text and USER not in text
    assert cloud.hits("/api/user_service/login/callback") == 1
    assert cloud.hits("/callback") == 0


def test_login_bad_credentials(cloud, capsys, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt: "wrong password")
    assert cli(cloud, "login", "--user", USER) == 2
    assert "bad credentials" in one_line_error(capsys)
    assert not token_path().exists()


def test_full_benchmark_flow_saves_result(cloud, export_dir, capsys):
    cached(cloud)
    assert cli(cloud, "benchmark", str(export_dir), "--board", "stm32n6570-dk") == 0
    saved = export_dir / "st_benchmark_STM32N6570-DK.json"
    assert saved.is_file()
    body = cloud.benchmark_bodies[0]
    assert body["model"] == "blazeface_front_int8.tflite"
    assert body["target"] == "stm32n6" and body["stNeuralArt"] == "default"
    assert body["atonnOptions"] == {"enable-epoch-controller": True}
    assert cloud.uploads["blazeface_front_int8.tflite"] == \
        (export_dir / "blazeface_front_int8.tflite").read_bytes()
    assert cloud.polls == len(BENCHMARK_STATES)
    r = read_st_report(saved)
    assert r["inference_ms"] == pytest.approx(4.48)
    assert r["internal_ram_bytes"] == 528 * KIB
    assert r["external_flash_bytes"] == 108524
    out = capsys.readouterr().out
    assert "inference 4.480 ms" in out and "internal RAM 528.00 KiB" in out


def test_benchmark_error_exits_2_with_st_message(cloud, tmp_path, capsys):
    cached(cloud)
    cloud.error_message = "INTERNAL ERROR: Unknown dimensions: CH\n(see the log)"
    cloud.benchmark_end = "error"
    model = tmp_path / "m_int8.tflite"
    model.write_bytes(b"TFL3")
    assert cli(cloud, "benchmark", str(model)) == 2
    line = one_line_error(capsys)
    assert "ended in error: INTERNAL ERROR: Unknown dimensions: CH (see the log)" in line
    assert not (tmp_path / "st_benchmark_STM32N6570-DK.json").exists()


def test_unknown_board(cloud, tmp_path, capsys):
    cached(cloud)
    model = tmp_path / "m_int8.tflite"
    model.write_bytes(b"TFL3")
    assert cli(cloud, "benchmark", str(model), "--board", "NUCLEO-N657X0-Q") == 2
    line = one_line_error(capsys)
    assert "unknown board 'NUCLEO-N657X0-Q'" in line and "STM32N6570-DK" in line
    assert cloud.uploads == {}


def test_401_refresh_refused_says_token_expired(cloud, capsys):
    cached(cloud, access="tok-old", refresh="ref-revoked")  # not expired locally, rejected by ST
    assert cli(cloud, "boards") == 2
    assert "token expired" in one_line_error(capsys)
    assert cloud.hits("/api/user_service/login/refresh") == 1


def test_401_without_refresh_token(cloud, capsys):
    cached(cloud, access="tok-old", refresh=None)
    assert cli(cloud, "boards") == 2
    line = one_line_error(capsys)
    assert "no refresh token" in line and "cloud login" in line


def test_not_logged_in(cloud, capsys):
    assert cli(cloud, "boards") == 2
    assert "not logged in" in one_line_error(capsys)
    assert cloud.requests == []


def test_login_from_env_when_no_token(cloud, monkeypatch, capsys):
    monkeypatch.setenv("STEDGEAI_USER", USER)
    monkeypatch.setenv("STEDGEAI_PASSWORD", PASSWORD)
    assert cli(cloud, "boards") == 0
    assert "STM32N6570-DK" in capsys.readouterr().out
    assert stat.S_IMODE(os.stat(token_path()).st_mode) == 0o600


def test_503_twice_then_200_is_retried(cloud):
    cached(cloud)
    cloud.fail_503["/api/benchmark/boards"] = 2
    client = DevCloudClient(cloud.url, retries=3, backoff=0.01)
    names = {b["name"] for b in client.boards()}
    assert names == {"STM32N6570-DK", "B-U585I-IOT02A"}
    assert cloud.hits("/api/benchmark/boards") == 3


def test_503_beyond_retries_is_one_line(cloud):
    cached(cloud)
    cloud.fail_503["/api/benchmark/boards"] = 10
    client = DevCloudClient(cloud.url, retries=2, backoff=0.01)
    with pytest.raises(BlazeEarError, match="HTTP 503: busy"):
        client.boards()
    assert cloud.hits("/api/benchmark/boards") == 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_port_is_one_line(capsys):
    url = f"http://127.0.0.1:{_closed_port()}/"
    client = DevCloudClient(url, token="tok", retries=2, backoff=0.01, timeout=(1, 1))
    with pytest.raises(BlazeEarError, match=r"cannot reach http://127\.0\.0\.1:\d+ \(Connection refused\)"):
        client.boards()
    # Nothing was sent, so even a POST that starts a job is an ordinary "cannot reach".
    with pytest.raises(BlazeEarError, match=r"cannot reach .*Connection refused"):
        client.start_benchmark("m_int8.tflite", "STM32N6570-DK", "3.0.0")
    # The command line: same one-line message, exit 2.
    TokenStore().save(url, Token("tok", "ref", time.time() + 3600))
    assert main(["cloud", "--base-url", url, "boards"]) == 2
    assert "cannot reach" in one_line_error(capsys)


def test_dry_run_prints_requests_without_secrets_and_sends_nothing(cloud, export_dir, capsys, monkeypatch):
    cached(cloud, access="secret-token-123", refresh="secret-refresh-456")
    monkeypatch.setenv("STEDGEAI_PASSWORD", "hunter2-password")
    assert cli(cloud, "benchmark", str(export_dir), "--dry-run") == 0
    assert cli(cloud, "--dry-run", "login", "--user", USER) == 0
    assert cli(cloud, "analyze", str(export_dir), "--dry-run") == 0
    out = capsys.readouterr().out
    assert cloud.requests == []                                  # nothing sent
    for secret in ("secret-token-123", "secret-refresh-456", "hunter2-password"):
        assert secret not in out
    assert f"GET {cloud.url}api/benchmark/boards" in out
    assert f"POST {cloud.url}api/file/files/models" in out
    assert f"POST {cloud.url}api/benchmark/benchmark/stm32n6570-dk" in out
    assert f"GET {cloud.url}api/benchmark/benchmark/BENCHMARK_ID" in out
    assert "Authorization: Bearer <redacted>" in out
    assert '"stNeuralArt": "default"' in out and '"enable-epoch-controller": true' in out
    assert "'blazeface_front_int8.tflite'" in out
    assert "password=%3Credacted%3E" in out and f"GET {cloud.url}sso/as/authorization.oauth2?" in out
    assert f"GET {cloud.url}assets/versions.json" in out
    assert not (export_dir / "st_benchmark_STM32N6570-DK.json").exists()


def test_expired_token_is_refreshed_and_saved_0600(cloud, capsys):
    # The fake still accepts tok-1, so only the client's own expiry check can trigger the refresh:
    # an expired token must never be sent, not merely be healed by a 401.
    cached(cloud, access="tok-1", refresh="ref-1", expires_in=-10)
    assert cli(cloud, "boards") == 0
    assert "STM32N6570-DK" in capsys.readouterr().out
    assert cloud.hits("/api/user_service/login/refresh") == 1
    assert cloud.requests[0] == ("POST", "/api/user_service/login/refresh")  # before any call
    assert cloud.tokens_sent == [("/api/benchmark/boards", "tok-2")]        # tok-1 never sent
    assert TokenStore().load(cloud.url).access_token == "tok-2"
    assert TokenStore().load(cloud.url).refresh_token == "ref-1"  # kept when not renewed
    assert stat.S_IMODE(os.stat(token_path()).st_mode) == 0o600


def test_analyze_uses_latest_version_and_saves(cloud, export_dir):
    cached(cloud)
    assert cli(cloud, "analyze", str(export_dir)) == 0
    assert cloud.hits("/assets/versions.json") == 1
    assert cloud.analyze_args[0]["model"] == "blazeface_front_int8.tflite"
    saved = export_dir / "st_analyze_blazeface_front_int8.json"
    assert read_st_report(saved)["weights_bytes"] == 108524


def test_resolve_model(tmp_path, export_dir):
    assert resolve_model(export_dir) == (export_dir / "blazeface_front_int8.tflite", export_dir)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "x_int8.tflite").write_bytes(b"x")
    assert resolve_model(bare)[0] == bare / "x_int8.tflite"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x_fp32.tflite").write_bytes(b"x")
    with pytest.raises(BlazeEarError, match=r"no int8 TFLite model \(\*_int8\.tflite\)"):
        resolve_model(empty)
    with pytest.raises(BlazeEarError, match="no such model file"):
        resolve_model(tmp_path / "nope")


# --------------------------------------------------------------------------------------------
# Issue 14: ST's protocol, one job per command, resume by id.

#: The benchmark body ST's client sends for ST's N6 request, transcribed from stm32ai_dc
#: (``CliParameters`` defaults that are not None, ``target``/``stNeuralArt`` of the N6 request,
#: ``atonnOptions`` dumped with dashed names, ``version`` and ``model``).
ST_N6_BENCHMARK_BODY = {
    "version": "3.0.0", "verbosity": 1, "allocateInputs": True, "allocateOutputs": True,
    "target": "stm32n6", "series": "stm32f4", "splitWeights": False, "noCFiles": False,
    "stNeuralArt": "default", "useCloud": False, "includeLibraryForIde": "gcc",
    "atonnOptions": {"enable-epoch-controller": True}, "model": "blazeface_front_int8.tflite",
}
START = "/api/benchmark/benchmark/stm32n6570-dk"
LEGACY_OPENAPI = {"paths": {"/benchmark/{queue}": {"post": {"requestBody": {"content": {
    "application/json": {"schema": {"properties": {"model": {"type": "string"},
                                                   "args": {"type": "string"}}}}}}}}}}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_after_acceptance_starts_exactly_one_job(cloud, export_dir, capsys, status):
    cached(cloud)
    cloud.fail_after_accept[START] = 1
    cloud.after_accept_status = status
    assert cli(cloud, "benchmark", str(export_dir)) == 2
    line = one_line_error(capsys)
    assert f"HTTP {status}" in line and "may have started" in line and "NOT sent again" in line
    assert "blazeear-edge cloud result ID" in line
    assert len(cloud.benchmark_bodies) == 1 and cloud.hits(START) == 1
    assert not (export_dir / "st_benchmark_STM32N6570-DK.json").exists()


def test_read_timeout_after_acceptance_is_not_resent(cloud, tmp_path):
    cached(cloud)
    cloud.delay_after_accept[START] = 1.0
    model = tmp_path / "m_int8.tflite"
    model.write_bytes(b"TFL3")
    client = DevCloudClient(cloud.url, timeout=(2, 0.2), backoff=0.01)
    with pytest.raises(BlazeEarError, match="ReadTimeout .*may have started.*NOT sent again"):
        client.benchmark(model, "STM32N6570-DK")
    assert len(cloud.benchmark_bodies) == 1 and cloud.hits(START) == 1


def test_5xx_after_analyze_acceptance_starts_one_run(cloud, export_dir, capsys):
    cached(cloud)
    cloud.fail_after_accept["/api/3.0.0/stm32ai/analyze"] = 1
    assert cli(cloud, "analyze", str(export_dir)) == 2
    assert "may have started" in one_line_error(capsys)
    assert len(cloud.analyze_args) == 1


@pytest.mark.parametrize("path", ["/api/file/files/models", "/api/user_service/login/refresh"])
def test_other_posts_are_never_resent(cloud, tmp_path, path):
    cached(cloud, expires_in=-10)  # forces a refresh first
    cloud.fail_503[path] = 1
    model = tmp_path / "m_int8.tflite"
    model.write_bytes(b"TFL3")
    client = DevCloudClient(cloud.url, backoff=0.01)
    with pytest.raises(BlazeEarError, match="HTTP 503"):
        client.upload_model(model)
    assert cloud.hits(path) == 1


def test_login_callback_is_never_resent(cloud, monkeypatch, capsys):
    monkeypatch.setenv("STEDGEAI_PASSWORD", PASSWORD)
    cloud.fail_503["/api/user_service/login/callback"] = 1
    assert cli(cloud, "login", "--user", USER) == 2
    line = one_line_error(capsys)
    assert "HTTP 503" in line and "bad credentials" not in line
    assert cloud.hits("/api/user_service/login/callback") == 1


def test_retried_poll_get_succeeds_with_one_job(cloud, tmp_path):
    cached(cloud)
    cloud.fail_503["/api/benchmark/benchmark/bench-1"] = 2
    cloud.fail_503["/assets/versions.json"] = 1
    model = tmp_path / "m_int8.tflite"
    model.write_bytes(b"TFL3")
    client = DevCloudClient(cloud.url, retries=3, backoff=0.01, poll_interval=0.01)
    doc = client.benchmark(model, "STM32N6570-DK")
    assert doc["state"] == "done" and doc["request"]["id"] == "bench-1"
    assert len(cloud.benchmark_bodies) == 1
    assert cloud.hits("/api/benchmark/benchmark/bench-1") == len(BENCHMARK_STATES) + 2


def test_request_bodies_carry_st_fields(cloud, export_dir):
    cached(cloud)
    assert cli(cloud, "benchmark", str(export_dir)) == 0
    assert cloud.benchmark_bodies == [ST_N6_BENCHMARK_BODY]
    assert cloud.hits("/api/benchmark/api") == 1           # the OpenAPI chose the (flat) shape
    assert cloud.headers[START]["Content-Type"] == "application/json"
    saved = json.loads((export_dir / "st_benchmark_STM32N6570-DK.json").read_text())
    assert saved["request"]["version"] == "3.0.0" and saved["request"]["id"] == "bench-1"
    assert read_st_report(export_dir / "st_benchmark_STM32N6570-DK.json")["requested_version"] == "3.0.0"
    # analyze: the same fields in the form field ``args`` (+ statsType), the version in the URL
    assert cli(cloud, "analyze", str(export_dir)) == 0
    expected = {k: v for k, v in ST_N6_BENCHMARK_BODY.items() if k != "version"}
    assert cloud.analyze_args == [{**expected, "statsType": None}]
    assert cloud.headers["/api/3.0.0/stm32ai/analyze"]["Content-Type"] == \
        "application/x-www-form-urlencoded"


def test_core_version_is_resolved_from_versions_json(cloud, export_dir, capsys):
    cached(cloud)
    assert cli(cloud, "benchmark", str(export_dir), "--core-version", "2.2.0") == 0
    assert cli(cloud, "benchmark", str(export_dir), "--core-version", "10.2.0") == 0  # stm32 name
    assert [b["version"] for b in cloud.benchmark_bodies] == ["2.2.0", "3.0.0"]
    assert cli(cloud, "analyze", str(export_dir), "--core-version", "2.2.0") == 0
    assert cloud.hits("/api/2.2.0/stm32ai/analyze") == 1
    capsys.readouterr()
    assert cli(cloud, "benchmark", str(export_dir), "--core-version", "9.9.9") == 2
    line = one_line_error(capsys)
    assert "9.9.9" in line and "2.2.0, 3.0.0" in line
    assert len(cloud.benchmark_bodies) == 2 and cloud.hits("/api/file/files/models") == 6


def test_openapi_legacy_shape_sends_model_and_args(cloud, export_dir):
    cached(cloud)
    cloud.openapi = LEGACY_OPENAPI
    assert cli(cloud, "benchmark", str(export_dir)) == 0
    body = cloud.benchmark_bodies[0]
    assert set(body) == {"model", "args"} and body["model"] == "blazeface_front_int8.tflite"
    expected = {k: v for k, v in ST_N6_BENCHMARK_BODY.items() if k != "model"}
    assert json.loads(body["args"]) == expected
    # An OpenAPI that declares the flat fields gets the flat body.
    cloud.openapi = json.loads(json.dumps(LEGACY_OPENAPI).replace('"args"', '"version"'))
    assert cli(cloud, "benchmark", str(export_dir)) == 0
    assert cloud.benchmark_bodies[1] == ST_N6_BENCHMARK_BODY


def test_login_pages_look_like_st_client_and_post_four_fields(cloud, monkeypatch):
    monkeypatch.setenv("STEDGEAI_PASSWORD", PASSWORD)
    assert cli(cloud, "login", "--user", USER) == 0
    assert cloud.forms["/sso/cas/login"] == {"username": USER, "password": PASSWORD,
                                             "_eventId": "Login", "lt": "LT-42"}
    st_agent = "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv59.0) Gecko/20100101"
    for path in ("/sso/as/authorization.oauth2", "/sso/cas/login", "/sso/as/resume",
                 "/api/user_service/login/callback"):
        assert cloud.headers[path]["Accept"] == "*/*", path
        assert cloud.headers[path]["User-Agent"] == st_agent, path
        assert "Authorization" not in cloud.headers[path]
    assert cli(cloud, "boards") == 0
    assert cloud.headers["/api/benchmark/boards"]["Accept"] == "application/json"


def test_refresh_on_401_is_distinct_from_refresh_on_expiry(cloud, capsys):
    # Locally valid, rejected by the service: sent once, refreshed after the 401, sent again.
    cached(cloud, access="tok-old", refresh="ref-1")
    assert cli(cloud, "boards") == 0
    assert cloud.tokens_sent == [("/api/benchmark/boards", "tok-old"), ("/api/benchmark/boards", "tok-2")]
    assert cloud.hits("/api/user_service/login/refresh") == 1


def test_token_expired_boundaries():
    now = 1_000_000.0
    assert Token("a", expires_at=now + 61).expired(now=now) is False
    assert Token("a", expires_at=now + 59).expired(now=now) is True   # inside the 60 s margin
    assert Token("a", expires_at=now - 1).expired(now=now, margin=0) is True
    assert Token("a", expires_at=None).expired(now=now) is False


def test_status_after_timeout_returns_the_finished_result(cloud, export_dir, tmp_path, capsys):
    cached(cloud)
    # The reference: an uninterrupted run of the same model, in another folder.
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    (ref_dir / "blazeface_front_int8.tflite").write_bytes((export_dir / "blazeface_front_int8.tflite").read_bytes())
    assert cli(cloud, "benchmark", str(ref_dir)) == 0
    ref_out = capsys.readouterr().out.splitlines()
    cloud.polls = 0
    # Times out at the first poll: one job, its id printed before the wait and named in the error.
    assert cli(cloud, "benchmark", str(export_dir), "--timeout", "0") == 2
    captured = capsys.readouterr()
    assert "benchmark id bench-2" in captured.out
    line = [ln for ln in captured.err.splitlines() if ln.startswith("blazeear-edge cloud: error:")][0]
    assert "still 'in_queue'" in line and "cloud result bench-2" in line
    saved = export_dir / "st_benchmark_STM32N6570-DK.json"
    assert not saved.exists()
    # Still running: status says so and saves nothing.
    assert cli(cloud, "status", "bench-2") == 0
    assert "bench-2: waiting_for_build" in capsys.readouterr().out and not saved.exists()
    # Finished at ST: status saves and prints what the original command would have.
    cloud.polls = len(BENCHMARK_STATES)
    assert cli(cloud, "status", "bench-2") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"saved {saved}", ref_out[-1]]
    assert len(cloud.benchmark_bodies) == 2                    # status started nothing
    doc, ref = json.loads(saved.read_text()), json.loads((ref_dir / saved.name).read_text())
    assert doc["request"]["id"] == "bench-2" and doc["request"]["body"] == ref["request"]["body"]
    assert {k: v for k, v in doc.items() if k != "request"} == \
        {k: v for k, v in ref.items() if k != "request"}


def test_result_and_resume_wait_for_the_job(cloud, export_dir, capsys):
    cached(cloud)
    assert cli(cloud, "benchmark", str(export_dir), "--timeout", "0") == 2
    saved = export_dir / "st_benchmark_STM32N6570-DK.json"
    assert cli(cloud, "result", "bench-1") == 0
    assert f"saved {saved}" in capsys.readouterr().out
    saved.unlink()
    cloud.polls = 0
    assert cli(cloud, "benchmark", str(export_dir), "--resume", "bench-1") == 0
    assert saved.is_file() and len(cloud.benchmark_bodies) == 1
    assert cloud.hits("/api/file/files/models") == 2  # upload + list, only for the first command
    # An analyze run, resumed by id from the job list (its version is part of the URL).
    cloud.polls = 0
    assert cli(cloud, "analyze", str(export_dir), "--timeout", "0") == 2
    assert cli(cloud, "result", "run-9") == 0
    assert "saved " + str(export_dir / "st_analyze_blazeface_front_int8.json") in capsys.readouterr().out
    assert len(cloud.analyze_args) == 1


def test_status_of_a_job_not_remembered_uses_the_command_line(cloud, tmp_path, capsys):
    cached(cloud)
    cloud.polls = len(BENCHMARK_STATES)
    out_dir = tmp_path / "elsewhere"
    assert cli(cloud, "status", "bench-7", "--out-dir", str(out_dir)) == 0
    doc = json.loads((out_dir / "st_benchmark_STM32N6570-DK.json").read_text())
    assert doc["state"] == "done" and doc["request"]["id"] == "bench-7"
    cloud.benchmark_end, cloud.polls = "error", len(BENCHMARK_STATES) - 1
    assert cli(cloud, "status", "bench-7") == 2
    assert "bench-7 ended in error: INTERNAL ERROR" in one_line_error(capsys)


def test_requested_version_stands_in_for_a_missing_tool_version(tmp_path):
    from blazeear_edge.streports import parse_st_json

    info = {k: v for k, v in C_INFO.items() if k != "environment"}
    doc = {"state": "done", "benchmark": {"info": info}, "request": {"version": "2.2.0"}}
    r = parse_st_json(doc)
    assert r["tool_version"] == "2.2.0" and r["requested_version"] == "2.2.0"
    r = parse_st_json({**doc, "benchmark": {"info": C_INFO}})  # the service's own word wins
    assert r["tool_version"] == "3.0.0" and r["requested_version"] == "2.2.0"
    assert parse_st_json({"state": "done", "benchmark": {"info": info}})["tool_version"] is None


def test_proxy_and_ca_bundle_come_from_the_environment(monkeypatch, tmp_path):
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    client = DevCloudClient()
    for session in (client.session, client.login_session, client.refresh_session):
        settings = session.merge_environment_settings("https://stedgeai-dc.st.com/api/benchmark/boards",
                                                      {}, None, None, None)
        assert settings["verify"] == str(bundle)
        assert settings["proxies"].get("https") == "http://proxy.invalid:3128"
