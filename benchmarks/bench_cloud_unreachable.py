"""How long ``blazeear-edge cloud`` takes to give up on a host that refuses connections.

This used to be a wall-clock assert in ``tests/test_cloud.py`` (< 3 s with 2 retries, < 10 s from
the command line); speed belongs here.  A closed port on 127.0.0.1 is the host: nothing leaves
the machine.  For each repeat the script times

* ``bare``: one ``socket.create_connection`` to the closed port (the floor: one refusal), and
* ``client``: :meth:`DevCloudClient.boards` with the command line's defaults (3 connect retries,
  exponential backoff 0.5 s) until its one-line "cannot reach" error,

and prints the medians and their difference (the time spent in backoff sleeps, which is what a
user waits).  A refused POST is retried the same way: nothing was sent.

    python benchmarks/bench_cloud_unreachable.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import cpu_name  # noqa: E402

from blazeear_edge.cloud.client import DevCloudClient  # noqa: E402
from blazeear_edge.errors import BlazeEarError  # noqa: E402


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    port = closed_port()
    url = f"http://127.0.0.1:{port}/"
    bare, client_s = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError:
            pass
        bare.append(time.perf_counter() - t)
        client = DevCloudClient(url, token="tok")
        t = time.perf_counter()
        try:
            client.boards()
        except BlazeEarError:
            pass
        client_s.append(time.perf_counter() - t)
    b, c = statistics.median(bare), statistics.median(client_s)
    print(f"CPU: {cpu_name()}; {args.repeats} repeats, medians")
    print(f"bare refusal        {b * 1e3:9.3f} ms")
    print(f"client (3 retries)  {c * 1e3:9.3f} ms   (+{(c - b):.2f} s of backoff)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
