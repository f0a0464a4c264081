"""Where each operator runs on the STM32N6 (NPU hardware, hybrid DMA, Cortex-M55 software), the
epoch estimate, a scalar cost, and the footprint (MACs, parameters, weight bytes, peak activations).

Placement (``../shared/docs/st-edge-ai.md``, "Mapping on the NPU"):

* ``hw``: int8 Conv/depthwise/1x1, Gemm/MatMul with a constant second input, Relu/Clip/LeakyRelu/
  PRelu/HardSwish/Sigmoid/Tanh, Add/Sub/Mul/Max/Min with unidirectional broadcast, Concat, pooling,
  spatial Pad, nearest Resize, requantisation. Reshape-like operators are memory views: they never
  open an epoch of their own.
* ``hybrid`` (CPU-launched DMA): Transpose of an activation (one epoch); a channel-axis Pad is a
  DMA transpose, the pad on the NPU, and a DMA transpose back: ``hybrid, hw, hybrid``.
* ``sw``: every float operator, Softmax, Gather, non-nearest Resize, ReduceSum, InstanceNorm,
  Softplus, DepthToSpace, operators the tables do not know, and unsupported operators.

Epoch estimate: walk the operators in execution order (the file's topological order); a maximal run
of consecutive hardware work is one hardware epoch; every hybrid and every software step is an epoch
of its own. On ST's BlazeFace-128 (11 channel pads, everything else in hardware) this gives
12 hardware runs between the pads + 11 pads = 23 hw and 2 x 11 = 22 hybrid epochs: ST's published
45. ST's compiler may split long hardware runs further (memory, chaining), so ``hw`` is a lower
bound.

The float input's QuantizeLinear and the DequantizeLinear of float outputs are absorbed when
stedgeai is run with integer I/O types (``--input-data-type uint8|int8 --output-data-type int8``, as
ST's own BlazeFace compile and this project's ``stedgeai_command``); with ``float_io=True`` each
counts as one software epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .graph import FLOAT_DTYPES, Graph, Node

#: Cost weights, in "hardware epochs" (about 30 us each on ST's BlazeFace: 45 epochs and 31 M MACs
#: in 4.48 ms). A hybrid epoch (CPU-launched DMA transpose) costs about 5 of them; a software
#: epoch at least 20 (a float layer on the Cortex-M55 usually costs far more); and 3 M MACs on the
#: NPU (about 100 GMAC/s effective) about one. ST's BlazeFace scores 23 + 5*22 + 31/3 = 143,
#: i.e. about 4.3 ms at 30 us. It ranks alternatives; it is not a latency prediction.
HYBRID_WEIGHT = 5.0
SW_WEIGHT = 20.0
MACC_PER_COST_UNIT = 3.0e6

UNITS = ("hw", "hybrid", "sw")

SHAPE_KINDS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
HW_KINDS = frozenset({
    "Conv", "Gemm", "MatMul", "Relu", "Clip", "LeakyRelu", "PRelu", "HardSwish", "Sigmoid",
    "Tanh", "Add", "Sub", "Mul", "Max", "Min", "Concat", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "Pad", "Resize", "Upsample", "QuantizeLinear",
    "ReduceMean", "ReduceMax",
})
#: documented software operators (ST reports them as "-SW-" epochs)
#: (non-nearest Resize, non-spatial reductions and MatMul of two activations are decided in place())
SW_KINDS = frozenset({"Softmax", "LogSoftmax", "Gather", "ReduceSum", "InstanceNormalization",
                      "Softplus", "DepthToSpace"})
#: not supported at all by ST Edge AI Core (post-processing and control flow)
UNSUPPORTED_KINDS = frozenset({"NonMaxSuppression", "TopK", "NonZero", "If", "Loop", "ScatterND",
                               "Expand", "Tile", "GatherND", "Range", "Custom", "Where"})
QOPERATOR_OPS = frozenset({"QGemm", "QAttention", "QEmbedLayerNormalization", "QLinearConv",
                           "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearConcat",
                           "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearLeakyRelu",
                           "QLinearSigmoid", "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere",
                           "QLinearRelu"})
DYNAMIC_QUANT_OPS = frozenset({"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger",
                               "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
                               "DynamicQuantizeLSTM"})
PARAM_KINDS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "PRelu",
                         "BatchNormalization", "InstanceNormalization", "LayerNormalization",
                         "Add", "Sub", "Mul", "Div", "Max", "Min"})
_INT_DTYPES = frozenset({"int8", "uint8", "int16", "uint16", "int4", "uint4"})


@dataclass
class Placement:
    node: str
    op: str
    unit: str  #: "hw" | "hybrid" | "sw"
    epochs: tuple = ()  #: epoch steps this operator adds, in order (e.g. hybrid, hw, hybrid)
    reason: str = ""  #: why it is not plain hardware ("channel-pad", "float", "io", ...)
    kind: str = ""
    #: the reason the operator would have once quantised (for a float operator: "channel-pad",
    #: "software-op", ...; otherwise the same as ``reason``)
    intrinsic: str = ""


@dataclass
class Mapping:
    ops: list = field(default_factory=list)  #: one Placement per operator, in execution order
    epochs: dict = field(default_factory=lambda: {"hw": 0, "hybrid": 0, "sw": 0})
    macc: int = 0
    float_io: bool = False  #: the estimate assumed float I/O types (boundary Q/DQ in software)
    assume_int8: bool = False  #: float operators were placed as if quantised

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
                "ops": [{"node": p.node, "op": p.op, "unit": p.unit} for p in self.ops]}


# ---------------------------------------------------------------------------------------------
# operator predicates shared with the rules
# ---------------------------------------------------------------------------------------------
def is_float_node(g: Graph, n: Node) -> bool:
    """True when an activation input of the operator is a float tensor."""
    return any(t.dtype in FLOAT_DTYPES for t in g.activation_inputs(n))


def is_int_node(g: Graph, n: Node) -> bool:
    acts = g.activation_inputs(n)
    return bool(acts) and all(t.dtype in _INT_DTYPES for t in acts)


def channel_pad_amount(g: Graph, n: Node) -> int:
    """Channels added by a Pad on the channel axis of a 4-D tensor (0 when spatial or unknown)."""
    if n.kind != "Pad":
        return 0
    pairs = n.attrs.get("pad_pairs")
    if not pairs or len(pairs) != 4:
        return 0
    ax = g.channel_axis(4)
    return int(sum(pairs[ax]))


def _reaches_graph_input(g: Graph, name: str) -> bool:
    seen = 0
    while name not in g.inputs and seen < 64:
        p = g.producer.get(name)
        if p is None or p.kind not in SHAPE_KINDS:
            return False
        name, seen = p.inputs[0], seen + 1
    return name in g.inputs


def _reaches_graph_output_only(g: Graph, name: str, depth: int = 0) -> bool:
    """True when ``name`` is a graph output or only feeds reshape-like operators ending in them."""
    cons = g.consumers.get(name, [])
    if not cons:
        return name in g.outputs
    if depth > 64:
        return False
    return all(c.kind in SHAPE_KINDS and all(_reaches_graph_output_only(g, o, depth + 1)
                                               for o in c.outputs if o) for c in cons)


def is_boundary_quantize(g: Graph, n: Node) -> bool:
    """The float input's QuantizeLinear (or one of its reshape-only descendants)."""
    if n.kind != "QuantizeLinear" or not n.inputs:
        return False
    t = g.tensor(n.inputs[0])
    return bool(t is not None and t.dtype in FLOAT_DTYPES
                and _reaches_graph_input(g, n.inputs[0]))


def is_boundary_dequantize(g: Graph, n: Node) -> bool:
    if n.kind != "DequantizeLinear" or not n.outputs:
        return False
    return _reaches_graph_output_only(g, n.outputs[0])


def is_tail_or_head(g: Graph, n: Node) -> bool:
    """The operator's input comes from a graph input, or its output only feeds graph outputs,
    through reshape-like operators and I/O conversions only."""
    if not n.inputs or not n.outputs:
        return False
    name = n.inputs[0]
    seen = 0
    while seen < 64:
        if name in g.inputs:
            return True
        p = g.producer.get(name)
        if p is None or p.kind not in SHAPE_KINDS | {"QuantizeLinear", "DequantizeLinear"}:
            break
        name, seen = p.inputs[0], seen + 1

    def tail(name, depth=0):
        if depth > 64:
            return False
        cons = g.consumers.get(name, [])
        if not cons:
            return name in g.outputs
        return all(c.kind in SHAPE_KINDS | {"QuantizeLinear", "DequantizeLinear"}
                   and all(tail(o, depth + 1) for o in c.outputs if o) for c in cons)

    return tail(n.outputs[0])


def bidirectional_broadcast(g: Graph, n: Node) -> bool:
    """Elementwise operator where neither input has the output's shape (both are broadcast)."""
    if n.kind not in ("Add", "Sub", "Mul", "Max", "Min", "Div") or not n.outputs:
        return False
    out = g.tensor(n.outputs[0])
    if out is None or not out.static:
        return False
    shapes = []
    for i in n.inputs:
        t = g.tensor(i)
        if t is None or t.shape is None:
            return False
        shapes.append(tuple(t.shape))
    return len(shapes) >= 2 and all(int(np.prod(s or (1,))) != int(np.prod(out.shape or (1,)))
                                    for s in shapes)


def _spatial_reduce(g: Graph, n: Node) -> bool:
    axes = n.attrs.get("reduce_axes")
    return axes == ((2, 3) if g.layout == "NCHW" else (1, 2))


def qoperator_base(op: str) -> str | None:
    if op in QOPERATOR_OPS:
        if op == "QGemm":
            return "Gemm"
        return op[len("QLinear"):] if op.startswith("QLinear") else op[1:]
    return None


# ---------------------------------------------------------------------------------------------
# placement
# ---------------------------------------------------------------------------------------------
def place(g: Graph, n: Node, float_io: bool = False, assume_int8: bool = False) -> Placement:
    """Hardware, hybrid or software for one operator, with its epoch steps and the reason.

    ``assume_int8``: place a float operator where it would run once quantised (to compare rewrites
    of a float model before quantising it).
    """
    k = n.kind
    base = qoperator_base(n.op)
    if base is not None:
        k = base

    def P(unit, epochs, reason="", intrinsic=None):
        return Placement(n.name, n.op, unit, tuple(epochs), reason, k,
                         reason if intrinsic is None else intrinsic)

    if k in SHAPE_KINDS:
        return P("sw" if is_float_node(g, n) and not assume_int8 else "hw", (), "view")
    if k == "QuantizeLinear":
        if is_boundary_quantize(g, n):
            return P("sw", ("sw",), "io") if float_io else P("hw", (), "io")
        return P("sw", ("sw",), "float") if is_float_node(g, n) else P("hw", ("hw",))
    if k == "DequantizeLinear":
        if is_boundary_dequantize(g, n):
            return P("sw", ("sw",), "io") if float_io else P("hw", (), "io")
        return P("sw", ("sw",), "float")
    if k in UNSUPPORTED_KINDS and not (k == "Where" and not _dynamic_where(g, n)):
        return P("sw", ("sw",), "unsupported")
    if n.op in DYNAMIC_QUANT_OPS:
        return P("sw", ("sw",), "unsupported")
    unit, epochs, reason = _place_quantised(g, n, k)
    if base is None and is_float_node(g, n) and not assume_int8:
        return P("sw", ("sw",), "float", intrinsic=reason)
    return P(unit, epochs, reason)


def _place_quantised(g: Graph, n: Node, k: str) -> tuple:
    """(unit, epoch steps, reason) of an operator once its tensors are int8."""
    if k == "Pad":
        if channel_pad_amount(g, n) > 0:
            return "hybrid", ("hybrid", "hw", "hybrid"), "channel-pad"
        return "hw", ("hw",), ""
    if k == "Transpose":
        if not g.activation_inputs(n):
            return "hw", (), "view"
        return "hybrid", ("hybrid",), "transpose"
    if k in ("Resize", "Upsample"):
        if str(n.attrs.get("resize_mode", "nearest")) == "nearest":
            return "hw", ("hw",), ""
        return "sw", ("sw",), "software-op"
    if k in ("Gemm", "MatMul"):
        if len(n.inputs) > 1 and g.is_const(n.inputs[1]):
            return "hw", ("hw",), ""
        return "sw", ("sw",), "software-op"
    if k in ("ReduceMean", "ReduceMax"):
        if _spatial_reduce(g, n):
            return "hw", ("hw",), ""
        return "sw", ("sw",), "software-op"
    if bidirectional_broadcast(g, n):
        return "sw", ("sw",), "broadcast"
    if k in HW_KINDS:
        return "hw", ("hw",), ""
    if k in SW_KINDS:
        return "sw", ("sw",), "software-op"
    return "sw", ("sw",), "unknown-op"


def _dynamic_where(g: Graph, n: Node) -> bool:
    return bool(n.inputs) and not g.is_const(n.inputs[0])


def estimate(g: Graph, float_io: bool = False, assume_int8: bool = False) -> Mapping:
    """Place every operator and group the steps into epochs (see the module docstring)."""
    m = Mapping(float_io=float_io, assume_int8=assume_int8)
    in_hw_run = False
    for n in g.nodes:
        p = place(g, n, float_io, assume_int8)
        m.ops.append(p)
        for step in p.epochs:
            if step == "hw":
                if not in_hw_run:
                    m.epochs["hw"] += 1
                in_hw_run = True
            else:
                m.epochs[step] += 1
                in_hw_run = False
    m.macc = count_macc(g)
    return m


# ---------------------------------------------------------------------------------------------
# footprint
# ---------------------------------------------------------------------------------------------
def _numel_of_shape(shape) -> int | None:
    if shape is None or any((not isinstance(d, (int, np.integer))) or d < 0 for d in shape):
        return None
    return int(np.prod(shape, dtype=np.int64))


def node_macc(g: Graph, n: Node) -> int:
    """Multiply-accumulates of one convolution / matrix product (0 for everything else)."""
    k = qoperator_base(n.op) or n.kind
    if k not in ("Conv", "ConvTranspose", "Gemm", "MatMul") or len(n.inputs) < 2:
        return 0
    if n.op.startswith("QLinear"):  # x, x_scale, x_zp, w, ...
        x_name, w_name = n.inputs[0], (n.inputs[3] if len(n.inputs) > 3 else "")
    else:
        x_name, w_name = n.inputs[0], n.inputs[1]
    x, w = g.tensor(x_name), g.tensor(w_name)
    out = g.tensor(n.outputs[0]) if n.outputs else None
    wn = _numel_of_shape(w.shape) if w is not None else None
    on = _numel_of_shape(out.shape) if out is not None else None
    if k == "Conv":
        if wn is None or on is None or not w.shape:
            return 0
        cout = w.shape[-1] if (g.format == "tflite" and n.attrs.get("depthwise")) else w.shape[0]
        return int(on * wn // max(int(cout), 1))
    if k == "ConvTranspose":
        xn = _numel_of_shape(x.shape) if x is not None else None
        if wn is None or xn is None or not w.shape:
            return 0
        cin = w.shape[-1] if g.format == "tflite" else w.shape[0]
        return int(xn * wn // max(int(cin), 1))
    # Gemm / MatMul / FullyConnected: out elements x reduction length
    if on is None:
        return 0
    if x is not None and x.shape and isinstance(x.shape[-1], (int, np.integer)) \
            and x.shape[-1] > 0 and not (k == "Gemm" and n.attrs.get("transA")):
        return int(on * x.shape[-1])
    if wn is not None and out.shape:
        return int(on * wn // max(int(out.shape[-1]), 1))
    return 0


def count_macc(g: Graph) -> int:
    return int(sum(node_macc(g, n) for n in g.nodes))


def _data_const(t) -> bool:
    """A constant that is stored as model data (not a shape, axis, index or padding list)."""
    if t is None or not t.const:
        return False
    if t.dtype in ("int32", "int64", "bool", "string") and t.quant is None:
        return False
    return True


def count_params_and_weights(g: Graph) -> tuple[int, int]:
    """(parameters, weight bytes).

    Parameters: elements of the constant operands of parametrised operators (convolutions, matrix
    products, PRelu, normalisations, and constant operands of Add/Sub/Mul/Div/Max/Min), counted
    per use (a bias that onnxsim shares between two convolutions counts twice, as in the network).
    Weight bytes: every stored data constant once (parameters plus, e.g., a Concat's zero block) at
    its stored type; shape/axis/index constants and quantisation scales are not counted.
    """
    params = 0
    weights: dict[str, int] = {}
    for n in g.nodes:
        k = qoperator_base(n.op) or n.kind
        data_inputs = n.inputs
        if n.kind in ("QuantizeLinear", "DequantizeLinear"):
            data_inputs = n.inputs[:1]  # not the scale / zero point
        elif n.op in ("QLinearConv", "QLinearMatMul"):
            data_inputs = [n.inputs[j] for j in (3, 8) if j < len(n.inputs)]
        elif n.op.startswith("QLinear") or n.op == "QGemm":
            data_inputs = []
        for i in data_inputs:
            t = g.tensor(i)
            if not _data_const(t):
                continue
            nb = t.nbytes
            if nb is None:
                continue
            weights[i] = nb
            if k in PARAM_KINDS:
                params += t.numel or 0
    return int(params), int(sum(weights.values()))


def activations_peak_bytes(g: Graph) -> int:
    """Peak of live activation bytes over the execution order.

    A tensor lives from its producer (graph inputs: from the start) to its last consumer (graph
    outputs: to the end); while an operator runs, its inputs and outputs are live. No in-place
    reuse is assumed, so reshapes count twice; ST's allocator may do better.
    """
    last: dict[str, int] = {}
    end = len(g.nodes)
    for idx, n in enumerate(g.nodes):
        for i in n.inputs:
            if i and not g.is_const(i):
                last[i] = idx
    for o in g.outputs:
        last[o] = end

    def size(name):
        t = g.tensor(name)
        return (t.nbytes or 0) if t is not None else 0

    live = {i: size(i) for i in g.inputs}
    peak = sum(live.values())
    for idx, n in enumerate(g.nodes):
        for o in n.outputs:
            if o and not g.is_const(o):
                live[o] = size(o)
        peak = max(peak, sum(live.values()))
        for name in [k for k in live if last.get(k, -1) <= idx]:
            del live[name]
    return int(peak)
