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
* Compute. ST Edge AI "ST Neural-ART NPU concepts" (stm32ai-cs.st.com embedded docs): the N6's
  Neural-ART 14 has four convolutional accelerators (CA); ST's headline figure for it, "up to
  600 GOPS" at up to 1 GHz (as quoted on community.st.com, feedback-forum thread 840435; the
  datasheet summary gives NPU 1 GHz, M55 800 MHz), is 300 int8 MAC per NPU cycle over the four
  CAs (``PEAK_MAC_PER_CYCLE``). How much of it a layer gets is not documented: fitted
  (``EFF_CONV``, ``EFF_DW``, below). Weight prefetch overlapping compute: the Politecnico di
  Milano N6 deployment notes (giacomocolosio02.github.io/stm32n6-docs, results chapter).
* Memories and their bandwidth: ST's own memory-pool description of the board, the ``.mpool``
  file its compiler plans with (same repository, ``Model/my_mpools/stm32n6-app2_STM32N6570-DK.mpool``):
  npuRAM3..6 4 x 448 KiB, ``byteWidth 8``, ``freqRatio 1.25`` (8 B x 800 MHz = 6.4 GB/s per
  bank); cpuRAM2 (AXISRAM2) 1024 KiB, 8 B, ratio 2.5 (3.2 GB/s); hyperRAM (xSPI1 PSRAM) 2 B,
  ratio 5 (400 MB/s); octoFlash (xSPI2) 1 B, ratio 6 (167 MB/s as the compiler plans it; the
  flash is read in OPI DTR at 200 MHz, 400 MB/s raw: main.c above). ``INTERNAL_RAM_BYTES`` =
  4 x 448 + 1024 KiB; ``ACT_BW_PEAK``, ``PSRAM_BW``, ``FLASH_BW`` = 400 MB/s (the raw OPI DTR
  rate, not fitted). The weights stream from the flash through the NPU's AXI ports while the CAs
  compute (RM0486 ch. 20 "Neural-ART accelerator": stream engines on two AXI master ports), so a
  layer takes the longest of its compute, its activation traffic and its weight stream.
* Epochs. ``../shared/docs/st-n6-compiles.md``: with the epoch controller a run of hw epochs is
  one blob the NPU sequences by itself; hybrid epochs are CPU-launched DMA moves
  (``LL_ATON_LIB_DMA_Transpose`` ...); software epochs run on the M55 (``ll_sw_forward_*``).
  The compiler's own estimate of a hybrid transpose in ST's generated ``network.c``
  (``LL_ATON_EB_DBG_INFO``, BlazeFace, FaceDetection @45faf18) is one NPU cycle per byte moved:
  ``HYBRID_BYTES_PER_S`` = 1 GB/s. Scheduler hw epochs inside a blob: ``NON_EC_FACTOR`` x the
  compute operators (mapping.py, from the blob spans of 12 compiles).

Fitted (no document gives them), by ``benchmarks/n6_latency.py`` on the declared training subset
of its corpus, held-out error reported apart (``benchmarks/README.md``): ``EFF_CONV``, ``EFF_DW``,
``ACT_BW`` (the effective activation stream rate), ``T_HW_EPOCH``, ``T_HYBRID``, ``T_SW``,
``SW_CYCLES_PER_ELEM``, ``T_INFERENCE``, and the internal-RAM factor ``RAM_FACTOR``.
``TIME_BAND`` is the held-out error (median, 90th percentile of |error|); the band printed is the
90th percentile.
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
ACT_BW_PEAK = 6.4e9  #: one npuRAM bank (.mpool: 8 B x 800 MHz); the fitted ACT_BW stays below
PSRAM_BW = 0.4e9
HYBRID_BYTES_PER_S = 1.0e9
NPU_RAM_BYTES = 4 * 448 * 1024
CPU_RAM2_BYTES = 1024 * 1024
INTERNAL_RAM_BYTES = NPU_RAM_BYTES + CPU_RAM2_BYTES
CLOCKS = "NPU 1000 MHz, CPU 800 MHz (STM32N6570-DK overdrive, as ST's published figures)"

# -- fitted (``benchmarks/n6_latency.py --fit``, on its declared TRAINING rows: 9 models) -----
#: effective activation traffic of the stream engines, B/s: fitted 1.01 GB/s, i.e. about one byte
#: per NPU cycle -- the same rate the compiler itself charges a DMA move in network.c (1 cycle per
#: byte, above); the .mpool's 6.4 GB/s per npuRAM bank is the ceiling
ACT_BW = 1.01e9
EFF_CONV = 0.126  #: fraction of the 300 MAC/cycle peak a standard / pointwise conv or FC gets
EFF_DW = 0.33  #: the same for a depthwise conv (its traffic usually dominates anyway)
#: weight stream from the octo-SPI flash, B/s: the documented raw rate (OPI DTR, 200 MHz x 1 B x
#: 2), not fitted. Check on the held-out pairs that differ only by the classifier (101 vs 1000
#: classes): ST's published times give 316-384 MB/s for the extra weights.
FLASH_BW = 0.4e9
T_HW_EPOCH = 0.0  #: s per scheduler hw epoch: fitted to 0 (below resolution with the EC)
T_HYBRID = 0.0  #: s per hybrid epoch beyond its bytes: fitted to 0 (bytes at 1 B/cycle suffice)
T_SW = 115e-6  #: s per software epoch (CPU wake-up, cache maintenance, kernel set-up): fitted
SW_CYCLES_PER_ELEM = 1.0  #: M55 cycles per element of a software kernel: fitted (lower bound)
T_INFERENCE = 0.0  #: s per inference (runtime start): fitted to 0
#: ST's internal + external RAM / :func:`working_set`: median over the training rows (1.4);
#: observed 0.96..2.0 over the corpus, so RAM is the weakest figure (benchmarks/README.md)
RAM_FACTOR = 1.4
#: |predicted / ST - 1| on the 20 held-out corpus rows: (median, 90th percentile)
TIME_BAND = (0.117, 0.385)
FIT_SOURCE = ("benchmarks/n6_latency.py: 9 training + 20 held-out ST model-zoo rows "
              "(benchmarks/README.md)")

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
    by_op: dict = field(default_factory=dict)  #: operator (file vocabulary) -> ms in this epoch

    def to_dict(self) -> dict:
        return {"index": self.index, "unit": self.unit, "ms": round(self.ms, 4),
                "ops": list(self.ops), "macc": int(self.macc),
                "scheduler_epochs": int(self.scheduler_epochs),
                "by_op_ms": {k: round(v, 4) for k, v in self.by_op.items()}}


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


def hw_op_seconds(g: Graph, node, act_bw: float | None = None, p=None) -> tuple[float, int]:
    """(seconds, MACs) of one operator on the NPU: the longest of its compute, its activation
    traffic and its weight stream."""
    p = p or params()
    act_bw = act_bw or p["ACT_BW"]
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


PARAM_NAMES = ("ACT_BW", "EFF_CONV", "EFF_DW", "FLASH_BW", "T_HW_EPOCH", "T_HYBRID", "T_SW",
               "SW_CYCLES_PER_ELEM", "T_INFERENCE", "RAM_FACTOR")


def predict(g: Graph, mapping: Mapping, weights_bytes: int, p: dict | None = None) -> Latency:
    """Per-epoch and total time, and the memory placement (module docstring)."""
    p = p or params()
    lat = Latency(weights_flash_bytes=int(weights_bytes))
    ram = int(round(p["RAM_FACTOR"] * working_set(g)))
    lat.internal_ram_bytes = min(ram, INTERNAL_RAM_BYTES)
    lat.external_ram_bytes = max(0, ram - INTERNAL_RAM_BYTES)
    spill = lat.external_ram_bytes / ram if ram else 0.0
    bw = p.get("ACT_BW", ACT_BW)
    act_bw = 1.0 / ((1 - spill) / bw + spill / PSRAM_BW)
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
                    cur.by_op[pl.op] = cur.by_op.get(pl.op, 0.0) + 1e3 * s
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
            lat.epochs.append(EpochTime(len(lat.epochs), step, ms, [label], by_op={label: ms}))
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


def by_op(lat: Latency) -> list[tuple[str, str, float]]:
    """[(operator, unit, ms)] summed over the epochs, largest first."""
    acc: dict = {}
    for e in lat.epochs:
        for op, ms in e.by_op.items():
            acc[(op, e.unit)] = acc.get((op, e.unit), 0.0) + ms
    return sorted(((op, u, ms) for (op, u), ms in acc.items()), key=lambda r: -r[2])


def plot_timeline(lat: Latency, path, title: str = "") -> None:
    """Epoch timeline PNG: one bar per epoch (coloured hw / hybrid / sw) with its predicted time
    and operators, and beside it the time by operator type. Written to a temporary file, then
    renamed."""
    import os
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = {"hw": "#2b8cbe", "hybrid": "#fdae61", "sw": "#d7191c"}
    n = len(lat.epochs)
    width = max(9.0, min(0.32 * n + 6, 24))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(width, 5.2),
                                  gridspec_kw={"width_ratios": [max(2.0, min(n / 6, 5.0)), 1.6]})
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
    ax.legend(handles=[Patch(color=c, label=k) for k, c in colours.items()], fontsize=8,
              loc="upper right")
    if n <= 40:
        ax.set_xticks(xs)
        ax.tick_params(axis="x", labelsize=6)
    rows = by_op(lat)[:12][::-1]
    ax2.barh(range(len(rows)), [r[2] for r in rows], color=[colours[r[1]] for r in rows],
             edgecolor="black", lw=0.3)
    ax2.set_yticks(range(len(rows)))
    ax2.set_yticklabels([textwrap.shorten(r[0], 28) for r in rows], fontsize=7)
    for i, r in enumerate(rows):
        ax2.text(r[2], i, f" {_fmt_ms(r[2])}", va="center", fontsize=7)
    ax2.set_xlabel("predicted time by operator (ms)")
    ax2.set_xlim(0, (max(r[2] for r in rows) if rows else 1.0) * 1.3)
    lo, hi = lat.band_ms
    u = lat.by_unit()
    head = (f"predicted {_fmt_ms(lat.inference_ms)} ms (band {_fmt_ms(lo)}..{_fmt_ms(hi)}) on "
            f"STM32N6570-DK, NPU 1 GHz / CPU 800 MHz: hw {_fmt_ms(u['hw'])}, hybrid "
            f"{_fmt_ms(u['hybrid'])}, sw {_fmt_ms(u['sw'])} ms in {n} epochs")
    fig.suptitle((title + "\n" if title else "") + textwrap.fill(head, int(width * 14)),
                 fontsize=9)
    fig.tight_layout()
    path = os.fspath(path)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


__all__ = ["Latency", "EpochTime", "predict", "by_op", "working_set", "format_lines", "plot_timeline",
           "CLOCKS", "TIME_BAND", "PARAM_NAMES", "params"]
