"""Write the harness tree, build it for the host (gcc) and the Cortex-M55 (arm-none-eabi-gcc),
run it (natively, and under QEMU's mps3-an547 board model) and return the device log text.

The compiler flags live here only: :func:`write_tree` writes the same commands into the
Makefile it leaves beside the sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import BlazeEarError

APT_LINE = "apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"

#: The portable library + the device-log writer + the vector runner (all targets).
COMMON_SOURCES = ("blazeear_pp.c", "blazeear_log.c", "blazeear_runner.c")
COMMON_HEADERS = ("blazeear_pp.h", "blazeear_log.h", "blazeear_runner.h", "blazeear_vectors.h")
M55_FILES = ("startup.c", "syscalls.c", "main.c", "semihost.h", "an547.ld")
#: Read-only data in the M55 image (SRAM, 4 MiB) holds about 15 KiB per vector.
MAX_M55_VECTORS = 200
BOARD_FILES = ("app_main.c", "board_stm32n6570dk.c", "README.md", "stai_stub/stai.h",
               "stai_stub/stai_network.h", "stai_stub/stai_stub.c")

HOST_CFLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
               "-O2"]
SANITIZE_FLAGS = ["-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer"]
#: -fno-tree-vectorize: Helium (MVE) vector float instructions flush subnormals to zero (checked
#: under QEMU: 2e-38f * 0.5f gives 0 in a q register, the subnormal in a scalar one), which
#: would break bit-exactness there; scalar FPU instructions are IEEE like NumPy's.
M55_CFLAGS = ["-std=c99", "-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-ffp-contract=off",
              "-fno-tree-vectorize", "-O2", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
              "-fdata-sections"]
M55_LDFLAGS = ["--specs=nano.specs", "-nostartfiles", "-Wl,--gc-sections"]
QEMU_ARGS = ["-M", "mps3-an547", "-nographic", "-monitor", "none", "-serial", "none",
             "-semihosting", "-icount", "shift=0"]


def firmware_dir() -> Path:
    """The C sources: ``blazeear_edge/harness/firmware`` in a wheel (and, through a symlink, in
    the repository), else the repository's top-level ``firmware_harness/``."""
    try:
        cand = Path(str(resources.files("blazeear_edge.harness") / "firmware"))
        if (cand / "blazeear_pp.c").is_file():
            return cand
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        pass
    repo = Path(__file__).resolve().parents[2] / "firmware_harness"
    if (repo / "blazeear_pp.c").is_file():
        return repo
    raise BlazeEarError("the C sources of the firmware harness are missing from this "
                        "installation (expected blazeear_edge/harness/firmware/)")


# ---------------------------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------------------------
@dataclass
class Tools:
    cc: str | None
    arm_cc: str | None
    qemu: str | None
    newlib: bool

    def missing(self, target: str) -> list[str]:
        out = []
        if target == "host" and not self.cc:
            out.append("gcc (apt-get install -y gcc)")
        if target == "m55":
            if not self.arm_cc:
                out.append("arm-none-eabi-gcc")
            elif not self.newlib:
                out.append("newlib for arm-none-eabi")
            if not self.qemu:
                out.append("qemu-system-arm")
        return out


def find_tools() -> Tools:
    """gcc, arm-none-eabi-gcc (+ its newlib) and qemu-system-arm, from PATH or the environment
    variables ``BLAZEEAR_CC``, ``BLAZEEAR_ARM_CC``, ``BLAZEEAR_QEMU``."""
    cc = shutil.which(os.environ.get("BLAZEEAR_CC", "gcc"))
    arm = shutil.which(os.environ.get("BLAZEEAR_ARM_CC", "arm-none-eabi-gcc"))
    qemu = shutil.which(os.environ.get("BLAZEEAR_QEMU", "qemu-system-arm"))
    newlib = False
    if arm:
        try:
            r = subprocess.run([arm, "-mcpu=cortex-m55", "-mfloat-abi=hard", "-mthumb",
                                "-print-file-name=libc_nano.a"], capture_output=True, text=True,
                               timeout=30)
            newlib = os.path.isabs(r.stdout.strip()) and Path(r.stdout.strip()).is_file()
        except (OSError, subprocess.SubprocessError):
            newlib = False
    return Tools(cc, arm, qemu, newlib)


def require(tools: Tools, target: str) -> None:
    miss = tools.missing(target)
    if miss:
        what = ", ".join(miss)
        hint = APT_LINE if target == "m55" else "apt-get install -y gcc"
        raise BlazeEarError(f"{what} not found for the {target} build: {hint}")


# ---------------------------------------------------------------------------------------------
# tree + Makefile
# ---------------------------------------------------------------------------------------------
def write_tree(out_dir: str | os.PathLike, model_h: str, vectors_c: str) -> Path:
    """Copy the C sources into ``out_dir`` and add the generated files and a Makefile::

        out_dir/  Makefile  README.md  src/ (library, log, runner, generated model + vectors)
                  host/main.c  m55/ (start-up, syscalls, linker script, main)  board/ (skeleton)
    """
    out = Path(out_dir)
    fw = firmware_dir()
    (out / "src").mkdir(parents=True, exist_ok=True)
    for name in COMMON_SOURCES + COMMON_HEADERS:
        shutil.copyfile(fw / name, out / "src" / name)
    (out / "host").mkdir(exist_ok=True)
    shutil.copyfile(fw / "host" / "main.c", out / "host" / "main.c")
    (out / "m55").mkdir(exist_ok=True)
    for name in M55_FILES:
        shutil.copyfile(fw / "m55" / name, out / "m55" / name)
    for name in BOARD_FILES:
        src = fw / "board" / name
        if src.is_file():
            dst = out / "board" / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    if (fw / "README.md").is_file():
        shutil.copyfile(fw / "README.md", out / "README.md")
    (out / "src" / "blazeear_model.h").write_text(model_h)
    (out / "src" / "blazeear_vectors.c").write_text(vectors_c)
    (out / "Makefile").write_text(makefile())
    return out


def _host_sources() -> list[str]:
    return [f"src/{s}" for s in COMMON_SOURCES] + ["src/blazeear_vectors.c", "host/main.c"]


def _m55_sources() -> list[str]:
    return ([f"src/{s}" for s in COMMON_SOURCES] +
            ["src/blazeear_vectors.c", "m55/main.c", "m55/startup.c", "m55/syscalls.c"])


def host_command(cc: str, sanitize: bool, defines: tuple = ()) -> list[str]:
    flags = HOST_CFLAGS + (SANITIZE_FLAGS if sanitize else []) + [f"-D{d}" for d in defines]
    exe = "build/host/harness_asan" if sanitize else "build/host/harness"
    return [cc, *flags, "-Isrc", *_host_sources(), "-lm", "-o", exe]


def m55_command(arm_cc: str) -> list[str]:
    return [arm_cc, *M55_CFLAGS, "-Isrc", "-Im55", *_m55_sources(), *M55_LDFLAGS,
            "-Tm55/an547.ld", "-Wl,-Map=build/m55/harness.map", "-lm",
            "-o", "build/m55/harness.elf"]


def board_stub_command(cc: str) -> list[str]:
    """The board skeleton (board/app_main.c) against the stai stand-in, for the host."""
    return [cc, *HOST_CFLAGS, *SANITIZE_FLAGS, "-Isrc", "-Iboard/stai_stub", "board/app_main.c",
            "board/stai_stub/stai_stub.c", "src/blazeear_pp.c", "src/blazeear_log.c",
            "src/blazeear_vectors.c", "-lm", "-o", "build/board/board_stub"]


def qemu_command(qemu: str, elf: str) -> list[str]:
    return [qemu, *QEMU_ARGS, "-kernel", elf]


def makefile() -> str:
    def line(cmd):
        return " ".join(cmd)
    return "\n".join([
        "# Generated by `blazeear-edge harness`: the same commands it runs.",
        "# make host | host-asan | m55 | board-stub | run-host | run-m55 | clean",
        "CC ?= gcc", "ARM_CC ?= arm-none-eabi-gcc", "QEMU ?= qemu-system-arm", "",
        ".PHONY: all host host-asan m55 board-stub run-host run-m55 clean",
        "all: host m55", "",
        "host: build/host/harness",
        "host-asan: build/host/harness_asan",
        "m55: build/m55/harness.elf", "",
        "SRC := $(wildcard src/*.c src/*.h host/*.c m55/*)", "",
        "build/host/harness: $(SRC)", "\tmkdir -p build/host",
        "\t" + line(host_command("$(CC)", False)), "",
        "build/host/harness_asan: $(SRC)", "\tmkdir -p build/host",
        "\t" + line(host_command("$(CC)", True)), "",
        "build/m55/harness.elf: $(SRC)", "\tmkdir -p build/m55",
        "\t" + line(m55_command("$(ARM_CC)")), "",
        "board-stub: build/board/board_stub",
        "build/board/board_stub: $(SRC) $(wildcard board/*.c board/stai_stub/*)",
        "\tmkdir -p build/board",
        "\t" + line(board_stub_command("$(CC)")), "",
        "run-host: build/host/harness_asan",
        "\t./build/host/harness_asan > device_host.log", "",
        "run-m55: build/m55/harness.elf",
        "\ttimeout 120 " + line(qemu_command("$(QEMU)", "build/m55/harness.elf"))
        + " > device_m55.log", "",
        "clean:", "\trm -rf build device_host.log device_m55.log", ""])


# ---------------------------------------------------------------------------------------------
# build + run
# ---------------------------------------------------------------------------------------------
def _run(cmd: list[str], cwd: Path, what: str, timeout: float, env=None):
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired:
        raise BlazeEarError(f"{what}: no result within {timeout:.0f} s", exit_code=1) from None
    except OSError as exc:
        raise BlazeEarError(f"{what}: cannot run {cmd[0]} ({exc.strerror or exc})") from None
    return r


def _first_error(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if "error" in ln.lower()]
    return (errs or lines or ["(no output)"])[0].strip()[:300]


def build_host(tree: str | os.PathLike, sanitize: bool = True, tools: Tools | None = None,
               defines: tuple = ()) -> Path:
    """Build the host runner; ``defines`` are extra ``NAME=VALUE`` macros (e.g.
    ``BLAZEEAR_PP_MAX_CANDIDATES=64``)."""
    tree = Path(tree)
    tools = tools or find_tools()
    require(tools, "host")
    (tree / "build" / "host").mkdir(parents=True, exist_ok=True)
    cmd = host_command(tools.cc, sanitize, tuple(defines))
    r = _run(cmd, tree, "host build", 300)
    if r.returncode != 0:
        (tree / "build" / "host" / "build.log").write_text(r.stdout + r.stderr)
        raise BlazeEarError(f"host build failed ({tree / 'build/host/build.log'}): "
                            f"{_first_error(r.stderr)}", exit_code=1)
    return tree / cmd[-1]


def build_m55(tree: str | os.PathLike, tools: Tools | None = None) -> Path:
    tree = Path(tree)
    tools = tools or find_tools()
    require(tools, "m55")
    (tree / "build" / "m55").mkdir(parents=True, exist_ok=True)
    cmd = m55_command(tools.arm_cc)
    r = _run(cmd, tree, "M55 build", 300)
    if r.returncode != 0:
        (tree / "build" / "m55" / "build.log").write_text(r.stdout + r.stderr)
        raise BlazeEarError(f"Cortex-M55 build failed ({tree / 'build/m55/build.log'}): "
                            f"{_first_error(r.stderr)}", exit_code=1)
    return tree / "build" / "m55" / "harness.elf"


def run_host(exe: str | os.PathLike, timeout: float = 120) -> str:
    """Run the host harness; returns its device log (stdout)."""
    exe = Path(exe)
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    r = _run([str(exe.resolve())], exe.parent, "host run", timeout, env=env)
    if r.stderr.strip():  # sanitizer reports
        raise BlazeEarError(f"host harness wrote to stderr (status {r.returncode}): "
                            f"{_first_error(r.stderr)}", exit_code=1)
    if r.returncode not in (0, 1):  # 1: a frame failed; its error line is in the log
        raise BlazeEarError(f"host harness exited with status {r.returncode}: "
                            f"{_first_error(r.stdout)}", exit_code=1)
    return r.stdout


def run_m55(elf: str | os.PathLike, timeout: float = 120, tools: Tools | None = None) -> str:
    """Run the M55 harness under QEMU (mps3-an547, -icount shift=0); returns its device log."""
    elf = Path(elf)
    tools = tools or find_tools()
    require(tools, "m55")
    r = _run(qemu_command(tools.qemu, str(elf.resolve())), elf.parent, "QEMU mps3-an547 run",
             timeout)
    if r.returncode not in (0, 1):  # 1: a frame failed (logged); 3: a fault handler ran
        raise BlazeEarError(f"the Cortex-M55 harness under QEMU exited with status "
                            f"{r.returncode}: {_first_error(r.stderr or r.stdout)}", exit_code=1)
    return r.stdout


def build_board_stub(tree: str | os.PathLike, tools: Tools | None = None) -> Path:
    """Compile board/app_main.c against the stai stand-in (host, sanitizers): keeps the board
    skeleton compiling; running it plays the test vectors back as network outputs."""
    tree = Path(tree)
    tools = tools or find_tools()
    require(tools, "host")
    (tree / "build" / "board").mkdir(parents=True, exist_ok=True)
    cmd = board_stub_command(tools.cc)
    r = _run(cmd, tree, "board skeleton build", 300)
    if r.returncode != 0:
        (tree / "build" / "board" / "build.log").write_text(r.stdout + r.stderr)
        raise BlazeEarError(f"board skeleton build failed: {_first_error(r.stderr)}",
                            exit_code=1)
    return tree / cmd[-1]
