"""A client for the ST Edge AI Developer Cloud REST API.

The Developer Cloud compiles a model with ST Edge AI Core and runs it on a real board in ST's farm
(here: the STM32N6570-DK), so device numbers can be had without owning the board.  The client talks
to the same endpoints as ST's own Python client (``stm32ai_dc`` in stm32ai-modelzoo-services):

* login: ST's SSO authorisation-code flow (:mod:`.auth`), the token cached with 0600 permissions in
  ``$XDG_CONFIG_HOME/blazeear-edge/token.json`` and refreshed when expired;
* ``api/file/files/models`` (upload), ``api/benchmark/boards``, ``api/benchmark/api`` (OpenAPI),
  ``api/benchmark/benchmark/{board}`` (start, then poll the states until ``done`` or ``error``),
  ``api/{version}/stm32ai/analyze`` and ``assets/versions.json`` (:mod:`.client`), with the
  request bodies of ST's client (:mod:`.protocol`), retrying only GETs (:mod:`.http`): a POST is
  never sent twice, so a gateway's 504 cannot start a second job;
* the jobs started, remembered by id so a run is resumed or fetched later (:mod:`.jobs`).

Public API::

    from blazeear_edge.cloud import DevCloudClient, resolve_model, save_result
    client = DevCloudClient()                      # token from the cache (refreshed if needed)
    model, out_dir = resolve_model("exports/blazeface_front")
    result = client.benchmark(model, board="STM32N6570-DK", timeout=2500)
    path = save_result(result, out_dir, "STM32N6570-DK")   # st_benchmark_STM32N6570-DK.json

This module keeps only constants at import time so ``blazeear-edge --help`` stays fast; the
client and login code (which import ``requests``) load on first use.
"""

from __future__ import annotations

import importlib

#: ST Edge AI Developer Cloud (older clients used https://stm32ai-cs.st.com/).
DEFAULT_BASE_URL = "https://stedgeai-dc.st.com/"
#: ST's single sign-on host and the OAuth2 client id of the Developer Cloud.
SSO_URL = "https://sso.st.com"
CLIENT_ID = "oidc_prod_client_app_stm32ai"
#: The board the project targets.
DEFAULT_BOARD = "STM32N6570-DK"
#: Benchmark states, in the order the service goes through them (then ``done`` or ``error``).
BENCHMARK_STATES = ("in_queue", "waiting_for_build", "generating_sources", "copying_sources",
                    "loading_sources", "building", "flashing", "validation", "done")
#: Default waits in seconds: ST's model zoo gives a board benchmark 2500 s; analyze needs no board.
BENCHMARK_TIMEOUT = 2500.0
ANALYZE_TIMEOUT = 600.0
#: Environment variables read for non-interactive login (never written anywhere).
ENV_USER = "STEDGEAI_USER"
ENV_PASSWORD = "STEDGEAI_PASSWORD"

_LAZY = {
    "DevCloudClient": ".client",
    "RecordedRequest": ".client",
    "resolve_model": ".client",
    "save_result": ".client",
    "result_filename": ".client",
    "benchmark_args": ".protocol",
    "benchmark_body": ".protocol",
    "resolve_version": ".protocol",
    "JobStore": ".jobs",
    "Token": ".auth",
    "TokenStore": ".auth",
    "token_path": ".auth",
    "get_credentials": ".auth",
}

__all__ = ["DEFAULT_BASE_URL", "SSO_URL", "CLIENT_ID", "DEFAULT_BOARD", "BENCHMARK_STATES",
           "BENCHMARK_TIMEOUT", "ANALYZE_TIMEOUT", "ENV_USER", "ENV_PASSWORD", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
