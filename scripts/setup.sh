#!/usr/bin/env bash
# Set up blazeear-edge in ./.venv (idempotent, safe to re-run).
#   bash scripts/setup.sh          Python packages (torch 2.13.0 CPU first, then the package)
#   bash scripts/setup.sh --test   also the test extras and, when run as root with apt-get,
#                                  the Arm cross compiler + QEMU used by the firmware-harness tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)
# this machine's pip configuration lists local indexes that warn for every package: hide that noise
exec 2> >(grep --line-buffered -v "is ignored: it is neither a file nor a directory" >&2)
# torch first and pinned: a looser requirement can pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  echo "[setup] installing torch 2.13.0 (CPU)"
  "${PIP[@]}" "torch==2.13.0"
fi
if [ "${1:-}" = "--test" ]; then
  echo "[setup] installing blazeear-edge with test extras"
  "${PIP[@]}" -e ".[test]"
  if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
      echo "[setup] installing the Arm cross compiler and QEMU (apt)"
      if ! { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm >/dev/null; }; then
        echo "[setup] warning: apt could not install the Arm toolchain / QEMU: the M55 tests will skip"
      fi
    else
      echo "[setup] note: arm-none-eabi-gcc / qemu-system-arm missing and not root: the M55 tests will skip"
    fi
  fi
else
  echo "[setup] installing blazeear-edge"
  "${PIP[@]}" -e .
fi
echo "[setup] done: $(.venv/bin/blazeear-edge --version)"
