"""Keep native libraries' start-up chatter (TensorFlow's absl logs, converter prints) off the
user's terminal while a step runs; show it only if the step fails."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def quiet_native_output(enabled: bool = True):
    """Redirect file descriptors 1 and 2 to a temporary file for the block.

    On an exception the captured text's last lines are written to stderr before it propagates.
    """
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if failed:
                tmp.seek(0)
                tail = tmp.read().decode(errors="replace").strip().splitlines()[-15:]
                if tail:
                    print("\n".join(tail), file=sys.stderr)
