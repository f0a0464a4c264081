"""The epoch estimate and the cost: operator placements (:mod:`.placement`) grouped into the epochs
ST Edge AI's scheduler makes, for the compile the stedgeai options describe.

The model, from 12 real STM32N6 compiles (``../shared/docs/st-n6-compiles.md``):

* Walk the operators in execution order (the file's topological order). Every hybrid and every
  software step is an epoch of its own.
* **With the epoch controller** (ST's application default): a maximal run of consecutive hardware
  steps is one EC blob, counted as one hardware epoch. This was exact on every EC build checked
  (BlazeFace 23 blobs, mobilenetv2 1 blob for 54 scheduler epochs, efficientnet 1 for 280).
  Trailing empty 24-byte blobs that some 2.1 builds add are not counted (they do no work).
* **Without it** (``--no-epoch-controller``), every hardware epoch is its own block. Across the
  compiles, scheduler hardware epochs per compute operator (Conv / depthwise / FC / pool / mean)
  were 1.0-1.4 for plain CNNs (median about 1.2) and up to 2.8 for PReLU-heavy graphs; the estimate
  is ``round(1.2 x compute operators)`` with the range ``1.0x .. 1.4x`` (``NON_EC_FACTOR``).
* Rules whose exact condition is unknown (doubling channel pads, a Concat of 1-wide columns before
  a float output) give alternative placements: the estimate counts the placement the evidence
  points to (for doubling pads, the one that matches ST's palm and face_landmarks builds) and
  ``epochs_range`` spans every uncertain operator at its fewest and at its most non-hardware
  steps. Scheduling can move independent non-hardware epochs together, so expect +-1-2 blobs in EC
  mode when several are independent.

On ST's BlazeFace-128 (11 channel pads, everything else in hardware, integer I/O) this gives
12 hardware runs between the pads + 11 pads = 23 hw and 2 x 11 = 22 hybrid epochs: ST's 45.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .footprint import count_macc
from .graph import Graph
from .options import StedgeaiOptions
from .placement import (COMPUTE_KINDS, DYNAMIC_QUANT_OPS, QOPERATOR_OPS,  # noqa: F401 - re-export
                        UNSUPPORTED_KINDS, Placement, alternatives, bidirectional_broadcast,
                        channel_pad_amount, is_boundary_dequantize, is_boundary_quantize,
                        is_float_node, is_int_node, is_tail_or_head, place, qoperator_base)

#: Cost weights, in "hardware epochs" (about 30 us each on ST's BlazeFace: 45 epochs and 31 M MACs
#: in 4.48 ms). A hybrid epoch (CPU-launched DMA transpose) costs about 5 of them; a software
#: epoch at least 20 (a float layer on the Cortex-M55 usually costs far more); and 3 M MACs on the
#: NPU (about 100 GMAC/s effective) about one. ST's BlazeFace scores 23 + 5*22 + 31/3 = 143,
#: i.e. about 4.3 ms at 30 us. It ranks alternatives; it is not a latency prediction.
HYBRID_WEIGHT = 5.0
SW_WEIGHT = 20.0
MACC_PER_COST_UNIT = 3.0e6
#: scheduler hw epochs per compute operator without the epoch controller: estimate, low, high
NON_EC_FACTOR = (1.2, 1.0, 1.4)

UNITS = ("hw", "hybrid", "sw")


@dataclass
class Mapping:
    ops: list = field(default_factory=list)  #: one Placement per operator, in execution order
    epochs: dict = field(default_factory=lambda: {"hw": 0, "hybrid": 0, "sw": 0})
    #: [low, high] per kind: the span of the uncertain rules (equal to ``epochs`` when exact)
    epochs_range: dict = field(default_factory=lambda: {"hw": [0, 0], "hybrid": [0, 0],
                                                        "sw": [0, 0]})
    macc: int = 0
    options: StedgeaiOptions = field(default_factory=StedgeaiOptions)
    assume_int8: bool = False  #: float operators were placed as if quantised

    @property
    def float_io(self) -> bool:
        """Both ends compiled as float32 (the old ``--float-io`` mode)."""
        return self.options.float_input and self.options.output_data_type == "float32"

    @property
    def exact(self) -> bool:
        """No uncertain rule fired: the range is a single point."""
        return all(lo == hi for lo, hi in self.epochs_range.values())

    @property
    def total_epochs(self) -> int:
        return sum(self.epochs.values())

    @property
    def cost(self) -> float:
        """hw + 5 x hybrid + 20 x sw epochs + MACs / 3 M (see HYBRID_WEIGHT and friends)."""
        e = self.epochs
        return float(e["hw"] + HYBRID_WEIGHT * e["hybrid"] + SW_WEIGHT * e["sw"]
                     + self.macc / MACC_PER_COST_UNIT)

    def by_op(self) -> list[tuple]:
        """[(op, unit, count, epoch steps per op)] in order of first appearance."""
        rows: dict = {}
        for p in self.ops:
            key = (p.op, p.unit, p.epochs)
            rows[key] = rows.get(key, 0) + 1
        return [(op, unit, n, steps) for (op, unit, steps), n in rows.items()]

    def to_dict(self) -> dict:
        return {"epochs": dict(self.epochs),
                "epochs_range": {k: list(v) for k, v in self.epochs_range.items()},
                "exact": self.exact,
                "mode": self.options.to_dict(),
                "ops": [{"node": p.node, "op": p.op, "unit": p.unit, "rule": p.rule}
                        for p in self.ops]}


def _io_conversions(g: Graph, opts: StedgeaiOptions) -> tuple[list, list]:
    """Software conversions stedgeai adds when a float type is asked for at an integer end."""
    def conv(name, rule):
        return Placement(name, "(conversion)", "sw", ("sw",), "io", "Conversion", "io", rule)

    head, tail = [], []
    if opts.input_data_type == "float32":
        for i in g.inputs:
            t = g.tensor(i)
            if t is not None and t.dtype in ("int8", "uint8"):
                head.append(conv(i, "input-convert"))
    if opts.output_data_type == "float32":
        for o in g.outputs:
            t = g.tensor(o)
            if t is not None and t.dtype in ("int8", "uint8"):
                tail.append(conv(o, "output-convert"))
    return head, tail


def _count(steps_per_op: list, ec: bool, compute: list) -> dict:
    """Epochs by kind from each operator's steps (``compute``: the op is a compute operator)."""
    e = {"hw": 0, "hybrid": 0, "sw": 0}
    in_run, n_compute = False, 0
    for steps, is_compute in zip(steps_per_op, compute):
        for s in steps:
            if s == "hw":
                if not in_run:
                    e["hw"] += 1
                in_run = True
                n_compute += int(is_compute)
            else:
                e[s] += 1
                in_run = False
    e["compute"] = n_compute
    return e


def estimate(g: Graph, options: StedgeaiOptions | None = None,
             assume_int8: bool = False) -> Mapping:
    """Place every operator and group the steps into epochs (see the module docstring)."""
    opts = options or StedgeaiOptions()
    m = Mapping(options=opts, assume_int8=assume_int8)
    head, tail = _io_conversions(g, opts)
    m.ops = head + [place(g, n, opts, assume_int8) for n in g.nodes] + tail
    compute = [p.kind in COMPUTE_KINDS for p in m.ops]
    point = _count([p.epochs for p in m.ops], opts.epoch_controller, compute)

    def extreme(pick):  # every uncertain operator at its fewest (or most) non-hw steps
        return [pick([p.epochs] + alternatives(p), key=lambda s: sum(x != "hw" for x in s))
                for p in m.ops]

    low = _count(extreme(min), opts.epoch_controller, compute)
    high = _count(extreme(max), opts.epoch_controller, compute)
    runs = (point, low, high)
    if not opts.epoch_controller:
        est, lo, hi = NON_EC_FACTOR
        for r in runs:
            c = r["compute"]
            r["hw_range"] = (max(r["hw"], c if lo == 1.0 else math.floor(lo * c)),
                             max(r["hw"], math.ceil(hi * c)))
            r["hw"] = max(r["hw"], int(round(est * c)))
    for k in UNITS:
        m.epochs[k] = point[k]
        vals = [r[k] for r in runs] + [v for r in runs for v in r.get("hw_range", ())
                                       if k == "hw"]
        m.epochs_range[k] = [min(vals), max(vals)]
    m.macc = count_macc(g)
    return m


__all__ = ["Mapping", "Placement", "estimate", "place", "HYBRID_WEIGHT", "SW_WEIGHT",
           "MACC_PER_COST_UNIT", "NON_EC_FACTOR", "UNITS", "channel_pad_amount", "is_float_node",
           "is_int_node", "is_tail_or_head", "bidirectional_broadcast", "is_boundary_quantize",
           "is_boundary_dequantize", "qoperator_base"]
