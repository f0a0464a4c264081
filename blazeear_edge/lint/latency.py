"""Predicted inference time and memory placement on the STM32N6570-DK, as ST measures it.

From the graph and the epoch plan ``lint`` builds (:mod:`.mapping`: every operator's hw / hybrid /
sw steps, grouped into EC blobs), predict the time of each epoch and of the whole inference, and
where the activations and the weights live, in ST's model-zoo terms ("Internal RAM", "External
RAM", "Weights Flash"). Figures are for ST's board set-up: **NPU 1000 MHz, Cortex-M55 800 MHz**
(overdrive), weights in the external octo-SPI flash, input/output buffers allocated in the
activation pools ("Measures are done with ... input / output allocated option", every zoo README).

Documented hardware facts used (each with its source):

* Clocks. ``STMicroelectronics/STM32N6-GettingStarted-FaceDetection``
  ``Application/STM32N6570-DK/Src/main.c`` @45faf18 ``SystemClock_Config``: SMPS overdrive, CPU
  (IC1) = PLL1 = 800 MHz, NPU (IC6) = PLL2 = 1000 MHz, AXISRAM3-6 (npuRAM, IC11) 900 MHz, AXI
  400 MHz, XSPI1 (PSRAM) and XSPI2 (weights flash, OPI DTR) kernel clocks 200 MHz.
  ``NPU_HZ``, ``CPU_HZ``.
* Compute. ST Edge AI "ST Neural-ART NPU concepts": Neural-ART 14 has four convolutional
  accelerators (CA); ST's STM32N6 datasheet headline: "up to 600 GOPS" at 1 GHz, i.e. 300
  int8 MAC per NPU cycle over the four CAs (``PEAK_MAC_PER_CYCLE``). How much of it a layer gets
  is not documented: fitted (``EFF_CONV``, ``EFF_DW``, below).
* Memories and their bandwidth: ST's own memory-pool description of the board, the ``.mpool``
  file its compiler plans with (same repository, ``Model/my_mpools/stm32n6-app2_STM32N6570-DK.mpool``):
  npuRAM3..6 4 x 448 KiB, ``byteWidth 8``, ``freqRatio 1.25`` (8 B x 800 MHz = 6.4 GB/s per
  bank); cpuRAM2 (AXISRAM2) 1024 KiB, 8 B, ratio 2.5 (3.2 GB/s); hyperRAM (xSPI1 PSRAM) 2 B,
  ratio 5 (400 MB/s); octoFlash (xSPI2) 1 B, ratio 6 (167 MB/s as the compiler plans it; the
  flash is read in OPI DTR at 200 MHz, 400 MB/s raw: main.c above). ``INTERNAL_RAM_BYTES`` =
  4 x 448 + 1024 KiB; ``ACT_BW``, ``PSRAM_BW``. The weights always stream from the flash through
  the NPU's AXI ports while the CAs compute (RM0486 ch. 20 "Neural-ART accelerator": stream
  engines on two AXI master ports), so a layer takes the longest of its compute, its activation
  traffic and its weight stream; the effective flash rate is fitted (``FLASH_BW``) and checked
  against the documented 167..400 MB/s.
* Epochs. ``../shared/docs/st-n6-compiles.md``: with the epoch controller a run of hw epochs is
  one blob the NPU sequences by itself; hybrid epochs are CPU-launched DMA moves
  (``LL_ATON_LIB_DMA_Transpose`` ...); software epochs run on the M55 (``ll_sw_forward_*``).
  The compiler's own estimate of a hybrid transpose in ST's generated ``network.c``
  (``LL_ATON_EB_DBG_INFO``, BlazeFace, FaceDetection @45faf18) is one NPU cycle per byte moved:
  ``HYBRID_BYTES_PER_S`` = 1 GB/s. Scheduler hw epochs inside a blob: ``NON_EC_FACTOR`` x the
  compute operators (mapping.py, from the blob spans of 12 compiles).

Fitted (no document gives them), by ``benchmarks/n6_latency.py`` on the declared training subset
of its corpus, held-out error reported apart (``benchmarks/README.md``): ``EFF_CONV``, ``EFF_DW``,
``FLASH_BW``, ``T_HW_EPOCH``, ``T_HYBRID``, ``T_SW``, ``T_INFERENCE``, and the internal-RAM model
``RAM_FACTOR``. ``TIME_BAND`` is the held-out error band (90th percentile of |error|).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .footprint import node_macc
from .graph import Graph
from .mapping import NON_EC_FACTOR, Mapping
from .placement import COMPUTE_KINDS

# -- documented ------------------------------------------------------------------------------
NPU_HZ = 1.0e9
CPU_HZ = 0.8e9
PEAK_MAC_PER_CYCLE = 300.0
ACT_BW = 6.4e9
PSRAM_BW = 0.4e9
HYBRID_BYTES_PER_S = 1.0e9
NPU_RAM_BYTES = 4 * 448 * 1024
CPU_RAM2_BYTES = 1024 * 1024
INTERNAL_RAM_BYTES = NPU_RAM_BYTES + CPU_RAM2_BYTES
CLOCKS = "NPU 1000 MHz, CPU 800 MHz (STM32N6570-DK overdrive, as ST's published figures)"

# -- fitted (benchmarks/n6_latency.py --fit; see the module docstring) ------------------------
EFF_CONV = 0.25  #: fraction of the peak MAC rate a standard / pointwise conv or FC gets
EFF_DW = 0.05  #: the same for a depthwise conv (one channel per CA pass)
FLASH_BW = 0.35e9  #: effective weight stream from the octo-SPI flash, B/s
T_HW_EPOCH = 10e-6  #: s per scheduler hw epoch (configuration of units / stream engines)
T_HYBRID = 30e-6  #: s per hybrid epoch beyond its bytes (CPU launch, cache maintenance)
T_SW = 30e-6  #: s per software epoch beyond its elements
SW_CYCLES_PER_ELEM = 20.0  #: M55 cycles per element of a software kernel
T_INFERENCE = 100e-6  #: s per inference (runtime start, input / output cache maintenance)
RAM_FACTOR = 1.0  #: ST's internal RAM / the activation working set (see ``working_set``)
#: |predicted / ST - 1| band: (median, 90th percentile) of the held-out corpus rows
TIME_BAND = (0.15, 0.30)
FIT_SOURCE = "not fitted yet"

#: operators fused into the stream of the operator before them (no memory traffic of their own)
FUSED_KINDS = frozenset({"Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSwish",
                         "Neg", "QuantizeLinear", "Identity", "Dropout", "Reshape", "Flatten",
                         "Squeeze", "Unsqueeze"})


@dataclass
class EpochTime:
    index: int
    unit: str  #: "hw" (an EC blob, or a run of hw epochs without EC) | "hybrid" | "sw"
    ms: float
    ops: list = field(default_factory=list)  #: operator names (file vocabulary), in order
    macc: int = 0
    scheduler_epochs: int = 1

    def to_dict(self) -> dict:
        return {"index": self.index, "unit": self.unit, "ms": round(self.ms, 4),
                "ops": list(self.ops), "macc": int(self.macc),
                "scheduler_epochs": int(self.scheduler_epochs)}


@dataclass
class Latency:
    epochs: list = field(default_factory=list)
    overhead_ms: float = 0.0
    internal_ram_bytes: int = 0
    external_ram_bytes: int = 0
    weights_flash_bytes: int = 0

    @property
    def inference_ms(self) -> float:
        return self.overhead_ms + sum(e.ms for e in self.epochs)

    @property
    def band_ms(self) -> tuple[float, float]:
        """The held-out error band (90th percentile of |error|) around the prediction."""
        t, b = self.inference_ms, TIME_BAND[1]
        return (t / (1 + b), t * (1 + b))

    def by_unit(self) -> dict:
        out = {"hw": 0.0, "hybrid": 0.0, "sw": 0.0}
        for e in self.epochs:
            out[e.unit] += e.ms
        return out

    def memory(self) -> dict:
        ext = self.external_ram_bytes
        return {"internal_ram_bytes": int(self.internal_ram_bytes),
                "external_ram_bytes": int(ext),
                "weights_flash_bytes": int(self.weights_flash_bytes),
                "activations": ("npuRAM3-6 + AXISRAM2 (cpuRAM2) + xSPI1 PSRAM (hyperRAM)" if ext
                                else ("npuRAM3-6" if self.internal_ram_bytes <= NPU_RAM_BYTES
                                      else "npuRAM3-6 + AXISRAM2 (cpuRAM2)")),
                "weights": "external octo-SPI flash (xSPI2), streamed by the NPU"}

    def to_dict(self) -> dict:
        lo, hi = self.band_ms
        return {"inference_ms": round(self.inference_ms, 3),
                "inference_ms_band": [round(lo, 3), round(hi, 3)],
                "band": {"median_abs_error": TIME_BAND[0], "p90_abs_error": TIME_BAND[1],
                         "source": FIT_SOURCE},
                "clocks": CLOCKS,
                "by_unit_ms": {k: round(v, 4) for k, v in self.by_unit().items()},
                "overhead_ms": round(self.overhead_ms, 4),
                "epochs": [e.to_dict() for e in self.epochs],
                "memory": self.memory()}


def _bytes(g: Graph, names) -> int:
    tot = 0
    for n in names:
        t = g.tensor(n)
        if t is not None and not t.const and t.nbytes:
            tot += t.nbytes
    return tot


def _const_bytes(g: Graph, node) -> int:
    tot = 0
    for n in node.inputs:
        t = g.tensor(n)
        if t is not None and t.const and t.nbytes and t.dtype not in ("int64",):
            tot += t.nbytes
    return tot


def _elems(g: Graph, names) -> int:
    tot = 0
    for n in names:
        t = g.tensor(n)
        if t is not None and t.numel:
            tot += t.numel
    return tot


def working_set(g: Graph) -> int:
    """The activation working set ST allocates: the largest input + output of one operator
    (the NPU streams within an epoch; tensors live at epoch boundaries), graph I/O included."""
    best = _bytes(g, g.inputs) + _bytes(g, g.outputs)
    for n in g.nodes:
        if n.kind in FUSED_KINDS:
            continue
        best = max(best, _bytes(g, [i for i in n.inputs if i]) + _bytes(g, n.outputs))
    return int(best)


def hw_op_seconds(g: Graph, node, act_bw: float = ACT_BW, p=None) -> tuple[float, int]:
    """(seconds, MACs) of one operator on the NPU: the longest of its compute, its activation
    traffic and its weight stream."""
    p = p or params()
    macc = node_macc(g, node)
    dw = bool(node.attrs.get("depthwise"))
    eff = p["EFF_DW"] if dw else p["EFF_CONV"]
    t_mac = macc / (PEAK_MAC_PER_CYCLE * eff * NPU_HZ) if macc else 0.0
    traffic = 0 if node.kind in FUSED_KINDS else _bytes(g, [i for i in node.inputs if i]) \
        + _bytes(g, node.outputs)
    t_act = traffic / act_bw
    t_w = _const_bytes(g, node) / p["FLASH_BW"]
    return max(t_mac, t_act, t_w), macc


def params() -> dict:
    return {k: globals()[k] for k in PARAM_NAMES}


PARAM_NAMES = ("EFF_CONV", "EFF_DW", "FLASH_BW", "T_HW_EPOCH", "T_HYBRID", "T_SW",
               "SW_CYCLES_PER_ELEM", "T_INFERENCE", "RAM_FACTOR")


def predict(g: Graph, mapping: Mapping, weights_bytes: int, p: dict | None = None) -> Latency:
    """Per-epoch and total time, and the memory placement (module docstring)."""
    p = p or params()
    lat = Latency(weights_flash_bytes=int(weights_bytes))
    ram = int(round(p["RAM_FACTOR"] * working_set(g)))
    lat.internal_ram_bytes = min(ram, INTERNAL_RAM_BYTES)
    lat.external_ram_bytes = max(0, ram - INTERNAL_RAM_BYTES)
    spill = lat.external_ram_bytes / ram if ram else 0.0
    act_bw = 1.0 / ((1 - spill) / ACT_BW + spill / PSRAM_BW)
    ec = mapping.options.epoch_controller
    by_name = {n.name: n for n in g.nodes}
    cur = None

    def close():
        nonlocal cur
        if cur is not None:
            n_sched = max(1, int(round(NON_EC_FACTOR[0] * cur.scheduler_epochs)))
            cur.scheduler_epochs = n_sched
            cur.ms += 1e3 * n_sched * p["T_HW_EPOCH"] * (1.0 if ec else 3.0)
            lat.epochs.append(cur)
        cur = None

    for pl in mapping.ops:
        node = by_name.get(pl.node) if pl.op != "(conversion)" else None
        n_nonhw = 0
        for step in pl.epochs:
            if step == "hw":
                if cur is None:
                    cur = EpochTime(len(lat.epochs), "hw", 0.0, scheduler_epochs=0)
                if node is not None:
                    s, macc = hw_op_seconds(g, node, act_bw, p)
                    cur.ms += 1e3 * s
                    cur.macc += macc
                    cur.scheduler_epochs += int(pl.kind in COMPUTE_KINDS)
                if not cur.ops or cur.ops[-1] != pl.op:
                    cur.ops.append(pl.op)
                continue
            close()
            if node is None:  # an I/O conversion added by the options
                t = g.tensor(pl.node)
                elems = (t.numel or 0) if t is not None else 0
                nbytes = elems
            else:
                elems = _elems(g, node.outputs)
                b_in = _bytes(g, [i for i in node.inputs if i])
                b_out = _bytes(g, node.outputs)
                # a DMA move reads one tensor: the transpose before a channel pad moves its
                # input, the one after it its output (network.c: 1 cycle per byte of each)
                nbytes = (b_in if n_nonhw == 0 else b_out) if len(pl.epochs) > 1 \
                    else max(b_in, b_out)
            n_nonhw += 1
            label = pl.op if pl.rule in ("hw", "") else f"{pl.op} [{pl.rule}]"
            if step == "hybrid":
                ms = 1e3 * (p["T_HYBRID"] + nbytes / HYBRID_BYTES_PER_S)
            else:
                ms = 1e3 * (p["T_SW"] + elems * p["SW_CYCLES_PER_ELEM"] / CPU_HZ)
            lat.epochs.append(EpochTime(len(lat.epochs), step, ms, [label]))
    close()
    for i, e in enumerate(lat.epochs):
        e.index = i
    lat.overhead_ms = 1e3 * p["T_INFERENCE"]
    return lat


def _fmt_ms(x: float) -> str:
    return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"


def format_lines(lat: Latency, max_epochs: int = 12) -> list[str]:
    """The text block of the lint report."""
    lo, hi = lat.band_ms
    u = lat.by_unit()
    mem = lat.memory()
    lines = [f"predicted N6 inference: {_fmt_ms(lat.inference_ms)} ms (band {_fmt_ms(lo)}.."
             f"{_fmt_ms(hi)} ms, held-out p90 error {TIME_BAND[1]:.0%}; {CLOCKS})",
             f"  hw {_fmt_ms(u['hw'])} ms + hybrid {_fmt_ms(u['hybrid'])} ms + sw "
             f"{_fmt_ms(u['sw'])} ms + runtime {_fmt_ms(lat.overhead_ms)} ms",
             f"  memory (ST's terms): internal RAM {mem['internal_ram_bytes'] / 1024:.0f} KiB, "
             f"external RAM {mem['external_ram_bytes'] / 1024:.0f} KiB, weights flash "
             f"{mem['weights_flash_bytes'] / 1024:.2f} KiB; activations in {mem['activations']}; "
             f"weights in {mem['weights']}"]
    top = sorted(lat.epochs, key=lambda e: -e.ms)[:max_epochs]
    if top:
        lines.append(f"  largest epochs (of {len(lat.epochs)}):")
        for e in sorted(top, key=lambda e: e.index):
            ops = ", ".join(e.ops[:4]) + (" ..." if len(e.ops) > 4 else "")
            share = e.ms / lat.inference_ms if lat.inference_ms else 0.0
            lines.append(f"    #{e.index:<3d} {e.unit:6s} {_fmt_ms(e.ms):>7s} ms {share:6.1%}  "
                         f"{ops}")
    return lines


def plot_timeline(lat: Latency, path, title: str = "") -> None:
    """Epoch timeline PNG: one bar per epoch (coloured hw / hybrid / sw), its predicted time and
    operators. Written to a temporary file, then renamed."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"hw": "#2b8cbe", "hybrid": "#fdae61", "sw": "#d7191c"}
    n = len(lat.epochs)
    fig, ax = plt.subplots(figsize=(max(7.0, min(0.32 * n + 3, 22)), 4.8))
    xs = list(range(n))
    ms = [e.ms for e in lat.epochs]
    ax.bar(xs, ms, color=[colours[e.unit] for e in lat.epochs], edgecolor="black", lw=0.3)
    top = max(ms) if ms else 1.0
    for e in lat.epochs:
        if e.ms >= 0.06 * top or n <= 16:
            label = f"{_fmt_ms(e.ms)}\n" + ",".join(e.ops[:2]) + ("..." if len(e.ops) > 2 else "")
            ax.text(e.index, e.ms + 0.01 * top, label, ha="center", va="bottom", fontsize=6,
                    rotation=90 if n > 16 else 0)
    ax.set_xlabel("epoch (execution order; hw = an epoch-controller blob)")
    ax.set_ylabel("predicted time (ms)")
    ax.set_ylim(0, top * (1.45 if n > 16 else 1.3))
    lo, hi = lat.band_ms
    u = lat.by_unit()
    ax.set_title((title + "\n" if title else "") +
                 f"predicted {_fmt_ms(lat.inference_ms)} ms (band {_fmt_ms(lo)}..{_fmt_ms(hi)}) "
                 f"on STM32N6570-DK, NPU 1 GHz / CPU 800 MHz; hw {_fmt_ms(u['hw'])}, hybrid "
                 f"{_fmt_ms(u['hybrid'])}, sw {_fmt_ms(u['sw'])} ms", fontsize=8)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=k) for k, c in colours.items()], fontsize=8,
              loc="upper right")
    if n <= 40:
        ax.set_xticks(xs)
        ax.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    path = os.fspath(path)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


__all__ = ["Latency", "EpochTime", "predict", "working_set", "format_lines", "plot_timeline",
           "CLOCKS", "TIME_BAND", "PARAM_NAMES", "params"]
