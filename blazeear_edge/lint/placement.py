"""Where each operator runs on the STM32N6 (NPU hardware, hybrid DMA, Cortex-M55 software), as
the epoch steps it adds, and the placement rule that decided it, with that rule's evidence.

Every rule is in :data:`PLACEMENT_RULES` with its source: the ST repository and generated file that
show it (``../shared/docs/st-n6-compiles.md`` read those files; ``../shared/docs/st-edge-ai.md``
for the documentation rules). A rule whose exact condition ST's builds do not pin down gives the
operator an ``alt`` placement as well: the estimate then reports a range, not a guess.

The placement depends on the stedgeai options (:class:`~.options.StedgeaiOptions`): the model's
input QuantizeLinear is absorbed unless ``--input-data-type float32``; an output's
DequantizeLinear is one software epoch unless an integer ``--output-data-type`` is asked for, and
a Concat that feeds such a float output becomes a hybrid ``LL_ATON_LIB_Concat``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import FLOAT_DTYPES, Graph, Node
from .options import StedgeaiOptions

SHAPE_KINDS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
HW_KINDS = frozenset({
    "Conv", "Gemm", "MatMul", "Relu", "Clip", "LeakyRelu", "PRelu", "HardSwish", "Sigmoid",
    "Tanh", "Add", "Sub", "Mul", "Max", "Min", "Concat", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "Pad", "Resize", "Upsample", "QuantizeLinear",
    "ReduceMean", "ReduceMax", "Neg",
})
#: operators that carry the work of a hardware epoch (for the count without epoch controller)
COMPUTE_KINDS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool",
                           "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax"})
#: documented software operators (ST reports them as "-SW-" epochs)
SW_KINDS = frozenset({"Softmax", "LogSoftmax", "Gather", "ReduceSum", "InstanceNormalization",
                      "Softplus"})
#: DMA data movement launched by the CPU: hybrid epochs
HYBRID_KINDS = frozenset({"DepthToSpace", "SpaceToDepth"})
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
_INT_DTYPES = frozenset({"int8", "uint8", "int16", "uint16", "int4", "uint4"})
#: a channel-doubling Pad's leading transpose ran in hw up to this spatial width (palm and
#: face_landmarks: width 24 and 12 in hw, width 48 a hybrid DMA transpose in both)
DOUBLING_PAD_HW_TRANSPOSE_MAX_WIDTH = 24

_FD = "STM32N6-GettingStarted-FaceDetection Model/STM32N6570-DK/network.c"
_OD = "STM32N6-GettingStarted-ObjectDetection Model/STM32N6570-DK/network.c"
_SEG = "STM32N6-GettingStarted-SemanticSegmentation Model/STM32N6570-DK/network.c"
_AUD = "STM32N6-GettingStarted-Audio Projects/X-CUBE-AI/models/network.c.aed, network.c.se"
_FL = "x-cube-n6-ai-face-landmarks Model/face_landmark.c"
_HL = "x-cube-n6-ai-hand-landmarks Model/palm_detector.c"
_REID = "STM32N6-GettingStarted-ReID Model/STM32N6570-DK/network.c (OSNet)"
_IC = "STM32N6-GettingStarted-ImageClassification Model/NUCLEO-N657X0-Q/network.c"
_PE = "STM32N6-GettingStarted-PoseEstimation Model/STM32N6570-DK/network.c"
_Y8F = "JJtan2002/x-cube-n6-ai-hand-landmarks Model/st_ai_output/yolo_detector.c (ST 2.2)"
_Y8P = "minchoCoin/stm32n6-pothole-detection \"STM32N6570-DK model/network.c\" (ST 2.2)"

#: placement rule id -> (what it places, evidence). docs/lint.md prints this table.
PLACEMENT_RULES: dict[str, tuple[str, str]] = {
    "hw": ("int8 Conv / depthwise / 1x1, Gemm/MatMul with a constant operand, activations, "
           "elementwise with unidirectional broadcast, Concat, pooling, spatial Pad, Neg: one "
           "hardware step", f"[ST] {_FD}; Neg: {_FL} (20 Neg, none in software)"),
    "view": ("Reshape / Flatten / Squeeze / Unsqueeze / Identity, a constant Transpose: "
             "memory views, no epoch", f"[ST] {_FD} (4 RESHAPE, no epoch)"),
    "input-quantize": ("the model input's QuantizeLinear: absorbed (ST makes the input buffer "
                       "integer) unless --input-data-type float32, then 1 sw",
                       f"[ST] {_AUD} (no --input-data-type, INT8 input buffer)"),
    "output-dequantize": ("a float output's DequantizeLinear: 1 sw unless --output-data-type "
                          "int8|uint8 (default: the type the model file stores)",
                          f"[ST] {_OD}, {_IC}, {_PE}, {_HL}, {_FL}, {_AUD} "
                          "(ll_sw_forward_dequantizelinear)"),
    "output-convert": ("an integer output compiled with --output-data-type float32: 1 sw "
                       "conversion added", "[ST] as output-dequantize (same software kernel)"),
    "input-convert": ("an integer input compiled with --input-data-type float32: 1 sw "
                      "conversion added", "[ST] the input QuantizeLinear kernel runs in software"),
    "head-transpose": ("a Transpose (or reshape) between a float model input and its "
                       "QuantizeLinear: moves int8 data, so hybrid, not a float operator",
                       f"[ST] {_AUD} (yamnet: input Transpose = LL_ATON_LIB_DMA_Transpose)"),
    "transpose": ("Transpose of an activation: 1 hybrid DMA epoch",
                  f"[ST] {_FD} (LL_ATON_LIB_DMA_Transpose); {_AUD}"),
    "channel-pad": ("Pad on the channel axis adding fewer channels than it has: hybrid "
                    "transpose, the pad in hw, hybrid transpose back (exactly 2 hybrid)",
                    f"[ST] {_FD}: 11 pads of +4..+8 channels, 22 hybrid Transposes"),
    "channel-pad-doubling": ("Pad that (at least) doubles the channels: 0 to 2 hybrid "
                             "(range 0..2). Estimate: the transpose before it is hybrid when "
                             f"the tensor is wider than {DOUBLING_PAD_HW_TRANSPOSE_MAX_WIDTH} "
                             "(in hw at widths 24 and 12); the transpose after it is hybrid in "
                             "a channels-last (TFLite) file, absent in a channels-first (ONNX) "
                             "one. Fits 6 of 6 doubling pads; the after-rule cannot be told "
                             "apart from the compiler version (2.1 vs 2.2)",
                             f"[ST] {_HL}: pads at width 48/24/12 cost 2/1/1 hybrid (transpose "
                             f"before the first only, after all three); {_FL}: width 48/24/12 "
                             "cost 1/0/0 (Transpose_82 before the first; Pad_*_pad_kern in hw)"),
    "resize-nearest-x2": ("nearest Resize x2: an NPU expansion (hw) + 1 hybrid DepthToSpace",
                          f"[ST] {_OD}: 2 of 2 (Resize_*_resize_NN_to_expansion_dts)"),
    "resize-nearest": ("nearest Resize by another factor: hardware (not seen in ST's builds)",
                       "[ST] st-edge-ai.md mapping table"),
    "dilated-conv": ("Conv with dilation > 1 (depthwise too): hybrid SpaceToDepth + hw + hybrid "
                     "DepthToSpace", f"[ST] {_SEG}: 3 ASPP convs, 6 hybrid; {_AUD} (stft: 4 "
                     "dilated depthwise, 8 hybrid)"),
    "depth-space": ("DepthToSpace / SpaceToDepth: 1 hybrid DMA epoch (not software)",
                    f"[ST] {_OD}, {_SEG}, {_FL}, {_AUD}: LL_ATON_LIB_DMA_*, hybrid flag"),
    "whole-input-conv": ("strided Conv whose kernel covers its whole input: hybrid SpaceToDepth, "
                         "then a 1x1 conv in hw", f"[ST] {_FL} (3x3 stride 3 on 3x3)"),
    "concat-float-output": ("Concat feeding a float output (its software DequantizeLinear): "
                            "hybrid LL_ATON_LIB_Concat; in hw with integer outputs. A Concat "
                            "whose last axis is 1 counts hw, range up to hybrid",
                            f"[ST] {_OD}: 3 of 3 hybrid with float out, 0 with int8 out; {_HL}: "
                            "1 of 2"),
    "concat-unequal-channels": ("Concat along the channel axis of 4-D tensors whose inputs "
                                "have different channel counts, inside the graph: hybrid "
                                "LL_ATON_LIB_Concat. Equal channel counts stay in hw (in place)",
                                f"[ST] {_Y8F} and {_Y8P}: 7 of 7 each (4 neck concats 256+128, "
                                "128+64, 64+128, 128+256 and 3 head concats 64+nc) hybrid; the "
                                "9 equal-channel concats (C2f, SPPF) in hw in both, as the 10 of "
                                f"yolo_x ({_OD}); yolo_x's 12+3+3 output concats with int8 "
                                "outputs (3.0 build) in hw"),
    "concat-rank3-rows": ("Concat of rank-3 tensors along axis 1 (not the last axis) with a last "
                          "axis wider than 1: hybrid LL_ATON_LIB_Concat. Along the last axis: hw",
                          f"[ST] {_Y8F}, {_Y8P}: the final (1,4,A)+(1,nc,A) concat hybrid (int8 "
                          "output), the anchor concat along the last axis in hw; "
                          f"{_HL}: the (1,N,18) concat hybrid, the (1,N,1) one in hw"),
    "slice-channels": ("Slice / Split of a 4-D tensor along the channel axis only: no epoch "
                       "(a view of the producer's buffer)",
                       f"[ST] {_Y8F}, {_Y8P}: the 16 STRIDED_SLICE of the C2f splits, no epoch "
                       "of their own"),
    "slice-dma": ("Slice / Split along another axis (rank-3 head tensors, spatial slices): one "
                  "hybrid LL_ATON_LIB_DMA_Outputs_Slice_SplitLike epoch per output. Spatial "
                  "4-D slices are not seen: range down to no epoch",
                  f"[ST] {_Y8F}, {_Y8P}: 4 of 4 (box/class split, the two halves of the "
                  "distances), hybrid"),
    "layout-transpose": ("a TFLite Transpose NHWC -> NCHW (perm 0,3,1,2) that only feeds "
                         "Reshapes: no epoch (ST's own channel-first import folds it; range up "
                         "to 1 hybrid)",
                         f"[ST] {_Y8F}, {_Y8P}: 3 of 3 head transposes before the anchor "
                         "reshape have no epoch; the DFL transpose (0,1,3,2) is the one hybrid "
                         "Transpose"),
    "div-by-constant": ("Div by a constant: a Mul by its reciprocal, in hw (a Div of two "
                        "activations is software)",
                        f"blazeear-edge: the same dist2bbox '/ 2' exported to TFLite as MUL runs "
                        f"inside an EC blob in [ST] {_Y8F} and {_Y8P}"),
    "conv-single-element": ("Conv whose input has one element: software "
                            "(ll_sw_forward_conv_integer)", f"[ST] {_REID}: 16 of 16"),
    "software-op": ("Softmax, Gather, non-nearest Resize, ReduceSum, InstanceNorm, Softplus, "
                    "MatMul/Gemm of two activations, non-spatial reductions: software",
                    f"[ST] {_IC}, {_AUD} (Softmax); {_PE}, {_HL}, {_SEG} (bilinear Resize); "
                    "st-edge-ai.md mapping table"),
    "float": ("float operator (not quantised): software", f"[ST] {_AUD} (float Softmax after the "
              "output DequantizeLinear)"),
    "broadcast": ("elementwise with bidirectional broadcast: software",
                  "[ST] st-edge-ai.md: unidirectional broadcast only in hardware"),
    "unsupported": ("operator ST Edge AI does not support: counted as software",
                    "[users] st-edge-ai.md"),
    "unknown-op": ("operator in none of these tables: assumed software", "blazeear-edge"),
}


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
    rule: str = "hw"  #: the :data:`PLACEMENT_RULES` entry that decided it
    #: the other possible epoch steps (a tuple of step tuples) when the rule's exact condition
    #: is unknown (None: certain)
    alt: tuple | None = None


def alternatives(p: Placement) -> list:
    """The other possible epoch steps of an uncertain placement (empty when certain)."""
    return list(p.alt or ())


# ---------------------------------------------------------------------------------------------
# operator predicates (shared with the rules)
# ---------------------------------------------------------------------------------------------
def is_float_node(g: Graph, n: Node) -> bool:
    """True when an activation input of the operator is a float tensor."""
    return any(t.dtype in FLOAT_DTYPES for t in g.activation_inputs(n))


def is_int_node(g: Graph, n: Node) -> bool:
    acts = g.activation_inputs(n)
    return bool(acts) and all(t.dtype in _INT_DTYPES for t in acts)


def _shape(g: Graph, name: str):
    t = g.tensor(name)
    return tuple(t.shape) if t is not None and t.shape is not None else None


def channel_pad_amount(g: Graph, n: Node) -> int:
    """Channels added by a Pad on the channel axis of a 4-D tensor (0 when spatial or unknown)."""
    if n.kind != "Pad":
        return 0
    pairs = n.attrs.get("pad_pairs")
    if not pairs or len(pairs) != 4:
        return 0
    ax = g.channel_axis(4)
    try:
        return int(sum(pairs[ax]))
    except (TypeError, ValueError):
        return 0


def _channels_in(g: Graph, n: Node) -> int | None:
    s = _shape(g, n.inputs[0]) if n.inputs else None
    if s is None or len(s) != 4:
        return None
    c = s[g.channel_axis(4)]
    return int(c) if isinstance(c, (int, np.integer)) and c > 0 else None


def _walk_up(g: Graph, name: str, through: frozenset) -> str:
    seen = 0
    while name not in g.inputs and seen < 64:
        p = g.producer.get(name)
        if p is None or p.kind not in through or not p.inputs:
            break
        name, seen = p.inputs[0], seen + 1
    return name


def _reaches_graph_input(g: Graph, name: str, through=SHAPE_KINDS) -> bool:
    return _walk_up(g, name, through) in g.inputs


def _only_feeds(g: Graph, name: str, through: frozenset, ends, depth: int = 0) -> bool:
    """Every path from ``name`` goes through ``through`` operators to an ``ends(node)`` operator
    or to a graph output."""
    cons = g.consumers.get(name, [])
    if not cons:
        return name in g.outputs
    if depth > 64:
        return False
    return all(ends(c) or (c.kind in through and all(_only_feeds(g, o, through, ends, depth + 1)
                                                     for o in c.outputs if o))
               for c in cons)


def _reaches_graph_output_only(g: Graph, name: str) -> bool:
    return _only_feeds(g, name, SHAPE_KINDS, lambda c: False)


_HEAD_KINDS = SHAPE_KINDS | {"Transpose"}


def is_boundary_quantize(g: Graph, n: Node) -> bool:
    """The float input's QuantizeLinear (through reshapes and transposes)."""
    if n.kind != "QuantizeLinear" or not n.inputs:
        return False
    t = g.tensor(n.inputs[0])
    return bool(t is not None and t.dtype in FLOAT_DTYPES
                and _reaches_graph_input(g, n.inputs[0], _HEAD_KINDS))


def is_boundary_dequantize(g: Graph, n: Node) -> bool:
    if n.kind != "DequantizeLinear" or not n.outputs:
        return False
    return _reaches_graph_output_only(g, n.outputs[0])


def _is_head_mover(g: Graph, n: Node) -> bool:
    """A float reshape/transpose between the model input and its (absorbed) QuantizeLinear."""
    if n.kind not in _HEAD_KINDS or not n.inputs or not n.outputs:
        return False
    return (_reaches_graph_input(g, n.inputs[0], _HEAD_KINDS)
            and _only_feeds(g, n.outputs[0], _HEAD_KINDS, lambda c: c.kind == "QuantizeLinear")
            and bool(g.consumers.get(n.outputs[0])))


def is_tail_or_head(g: Graph, n: Node) -> bool:
    """The operator's input comes from a graph input, or its output only feeds graph outputs,
    through reshape-like operators and I/O conversions only."""
    if not n.inputs or not n.outputs:
        return False
    io = SHAPE_KINDS | {"QuantizeLinear", "DequantizeLinear"}
    if _reaches_graph_input(g, n.inputs[0], io):
        return True
    return _only_feeds(g, n.outputs[0], io, lambda c: False)


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
        if t is None or t.shape is None or not t.static:
            return False
        shapes.append(tuple(t.shape))
    return len(shapes) >= 2 and all(int(np.prod(s or (1,))) != int(np.prod(out.shape or (1,)))
                                    for s in shapes)


def _spatial_reduce(g: Graph, n: Node) -> bool:
    axes = n.attrs.get("reduce_axes")
    return axes == ((2, 3) if g.layout == "NCHW" else (1, 2))


def _spatial(g: Graph, shape) -> tuple | None:
    if shape is None or len(shape) != 4:
        return None
    return tuple(shape[2:4]) if g.layout == "NCHW" else tuple(shape[1:3])


def qoperator_base(op: str) -> str | None:
    if op in QOPERATOR_OPS:
        if op == "QGemm":
            return "Gemm"
        return op[len("QLinear"):] if op.startswith("QLinear") else op[1:]
    return None


def output_is_float(g: Graph, n: Node, opts: StedgeaiOptions) -> bool:
    """The operator's output only reaches float model outputs (software DequantizeLinear)."""
    if opts.output_data_type in ("int8", "uint8") or not n.outputs:
        return False
    return _only_feeds(g, n.outputs[0], SHAPE_KINDS,
                       lambda c: c.kind == "DequantizeLinear" and is_boundary_dequantize(g, c)) \
        and bool(g.consumers.get(n.outputs[0]))


# ---------------------------------------------------------------------------------------------
# placement
# ---------------------------------------------------------------------------------------------
def place(g: Graph, n: Node, opts: StedgeaiOptions | None = None,
          assume_int8: bool = False) -> Placement:
    """Hardware, hybrid or software for one operator, with its epoch steps, the reason and the
    placement rule. ``assume_int8``: place a float operator where it would run once quantised."""
    opts = opts or StedgeaiOptions()
    k = n.kind
    base = qoperator_base(n.op)
    if base is not None:
        k = base

    def P(unit, epochs, reason="", intrinsic=None, rule="hw", alt=None):
        return Placement(n.name, n.op, unit, tuple(epochs), reason, k,
                         reason if intrinsic is None else intrinsic, rule, alt)

    if k == "QuantizeLinear":
        if is_boundary_quantize(g, n):
            if opts.float_input:
                return P("sw", ("sw",), "io", rule="input-quantize")
            return P("hw", (), "io", rule="input-quantize")
        if is_float_node(g, n):
            return P("sw", ("sw",), "float", rule="float")
        return P("hw", ("hw",))
    if k == "DequantizeLinear":
        if is_boundary_dequantize(g, n):
            if opts.output_data_type in ("int8", "uint8"):
                return P("hw", (), "io", rule="output-dequantize")
            return P("sw", ("sw",), "io", rule="output-dequantize")
        return P("sw", ("sw",), "float", rule="float")
    if _is_head_mover(g, n) and not opts.float_input:
        if k == "Transpose":
            return P("hybrid", ("hybrid",), "transpose", rule="head-transpose")
        return P("hw", (), "view", rule="view")
    if k in SHAPE_KINDS:
        return P("sw" if is_float_node(g, n) and not assume_int8 else "hw", (), "view",
                 rule="view")
    if k in UNSUPPORTED_KINDS and not (k == "Where" and not _dynamic_where(g, n)):
        return P("sw", ("sw",), "unsupported", rule="unsupported")
    if n.op in DYNAMIC_QUANT_OPS:
        return P("sw", ("sw",), "unsupported", rule="unsupported")
    unit, epochs, reason, rule, alt = place_quantised(g, n, k, opts)
    if base is None and is_float_node(g, n) and not assume_int8:
        return P("sw", ("sw",), "float", intrinsic=reason, rule="float")
    return P(unit, epochs, reason, rule=rule, alt=alt)


def place_quantised(g: Graph, n: Node, k: str, opts: StedgeaiOptions) -> tuple:
    """(unit, epoch steps, reason, rule, alternative steps) of an operator once it is int8."""
    if k == "Pad":
        c = channel_pad_amount(g, n)
        if c > 0:
            cin = _channels_in(g, n)
            steps = ("hybrid", "hw", "hybrid")
            if cin is not None and c < cin:
                return "hybrid", steps, "channel-pad", "channel-pad", None
            return _doubling_pad(g, n)
        return "hw", ("hw",), "", "hw", None
    if k == "Transpose":
        if not g.activation_inputs(n):
            return "hw", (), "view", "view", None
        if _is_layout_transpose(g, n):
            return "hw", (), "view", "layout-transpose", (("hybrid",),)
        return "hybrid", ("hybrid",), "transpose", "transpose", None
    if k in ("Slice", "Split"):
        return _place_slice(g, n)
    if k in HYBRID_KINDS:
        return "hybrid", ("hybrid",), "", "depth-space", None
    if k in ("Resize", "Upsample"):
        if str(n.attrs.get("resize_mode", "nearest")) != "nearest":
            return "sw", ("sw",), "software-op", "software-op", None
        si = _spatial(g, _shape(g, n.inputs[0]) if n.inputs else None)
        so = _spatial(g, _shape(g, n.outputs[0]) if n.outputs else None)
        if si and so and all(isinstance(v, (int, np.integer)) and v > 0 for v in si + so) \
                and so == (2 * si[0], 2 * si[1]):
            return "hybrid", ("hw", "hybrid"), "", "resize-nearest-x2", None
        return "hw", ("hw",), "", "resize-nearest", None
    if k == "Conv":
        return _place_conv(g, n)
    if k in ("Gemm", "MatMul"):
        if len(n.inputs) > 1 and g.is_const(n.inputs[1]):
            return "hw", ("hw",), "", "hw", None
        return "sw", ("sw",), "software-op", "software-op", None
    if k in ("ReduceMean", "ReduceMax"):
        if _spatial_reduce(g, n):
            return "hw", ("hw",), "", "hw", None
        return "sw", ("sw",), "software-op", "software-op", None
    if k == "Concat" and output_is_float(g, n, opts):
        out = _shape(g, n.outputs[0])
        if out and out[-1] == 1:  # a column: palm's score Concat stayed in hw, 1 datum
            return "hw", ("hw",), "", "concat-float-output", (("hybrid",),)
        return "hybrid", ("hybrid",), "", "concat-float-output", None
    if k == "Concat":
        rule = _concat_dma(g, n, opts)
        if rule:
            return "hybrid", ("hybrid",), "", rule, None
    if bidirectional_broadcast(g, n):
        return "sw", ("sw",), "broadcast", "broadcast", None
    if k == "Div":
        if len(n.inputs) > 1 and g.is_const(n.inputs[1]):
            return "hw", ("hw",), "", "div-by-constant", None
        return "sw", ("sw",), "software-op", "software-op", None
    if k in HW_KINDS:
        return "hw", ("hw",), "", "hw", None
    if k in SW_KINDS:
        return "sw", ("sw",), "software-op", "software-op", None
    return "sw", ("sw",), "unknown-op", "unknown-op", None


def _doubling_pad(g: Graph, n: Node) -> tuple:
    """A Pad that (at least) doubles the channels: the estimate of the ``channel-pad-doubling``
    rule (a leading hybrid transpose on wide tensors, a trailing one in channels-last files),
    with the range 0..2 hybrid as alternatives."""
    x = _shape(g, n.inputs[0]) if n.inputs else None
    sp = _spatial(g, x)
    width = sp[1] if sp and isinstance(sp[1], (int, np.integer)) and sp[1] > 0 else None
    before = width is None or width > DOUBLING_PAD_HW_TRANSPOSE_MAX_WIDTH
    after = g.layout == "NHWC"
    steps = (("hybrid",) if before else ()) + ("hw",) + (("hybrid",) if after else ())
    alts = tuple(a for a in (("hw",), ("hybrid", "hw", "hybrid")) if a != steps)
    unit = "hybrid" if "hybrid" in steps else "hw"
    return unit, steps, "channel-pad", "channel-pad-doubling", alts


def _place_conv(g: Graph, n: Node) -> tuple:
    x = g.tensor(n.inputs[0]) if n.inputs else None
    if x is not None and x.numel == 1:
        return "sw", ("sw",), "software-op", "conv-single-element", None
    dil = n.attrs.get("dilation") or ()
    if any(int(d) > 1 for d in dil):
        return "hybrid", ("hybrid", "hw", "hybrid"), "", "dilated-conv", None
    kern = tuple(n.attrs.get("kernel") or ())
    strides = tuple(n.attrs.get("strides") or ())
    si = _spatial(g, x.shape if x is not None else None)
    if len(kern) == 2 and si is not None and tuple(int(v) for v in si) == kern \
            and max(kern) > 1 and strides and max(strides) > 1:
        return "hybrid", ("hybrid", "hw"), "", "whole-input-conv", None
    return "hw", ("hw",), "", "hw", None


def _dynamic_where(g: Graph, n: Node) -> bool:
    return bool(n.inputs) and not g.is_const(n.inputs[0])


def _act_input(g: Graph, n: Node):
    """The first non-constant input tensor with a known shape (TFLite SPLIT has its axis first)."""
    for t in g.activation_inputs(n):
        if t.shape is not None:
            return t
    return None


def _cut_axes(g: Graph, n: Node) -> set | None:
    """Axes along which a Slice / Split cuts its input (None when the shapes are unknown)."""
    x = _act_input(g, n)
    if x is None:
        return None
    axes = set()
    for o in n.outputs:
        t = g.tensor(o)
        if t is None or t.shape is None or len(t.shape) != len(x.shape):
            return None
        axes |= {i for i, (a, b) in enumerate(zip(x.shape, t.shape)) if a != b}
    return axes


def _place_slice(g: Graph, n: Node) -> tuple:
    """``slice-channels`` (a view) or ``slice-dma`` (one hybrid DMA epoch per output)."""
    x = _act_input(g, n)
    if x is None:
        return "hw", (), "view", "view", None
    axes = _cut_axes(g, n)
    rank = len(x.shape)
    if axes is not None and not axes:
        return "hw", (), "view", "view", None  # copies the whole tensor
    if rank == 4 and axes == {g.channel_axis(4)}:
        return "hw", (), "view", "slice-channels", None
    outs = max(1, len([o for o in n.outputs if o]))
    steps = ("hybrid",) * outs
    alt = ((),) if rank == 4 else None  # spatial 4-D slices: not seen in ST's builds
    return "hybrid", steps, "", "slice-dma", alt


def _is_layout_transpose(g: Graph, n: Node) -> bool:
    """TFLite (NHWC) Transpose with perm (0, 3, 1, 2) whose output only feeds Reshapes."""
    if g.layout != "NHWC" or tuple(n.attrs.get("perm") or ()) != (0, 3, 1, 2) or not n.outputs:
        return False
    cons = g.consumers.get(n.outputs[0], [])
    return bool(cons) and all(c.kind in ("Reshape", "Flatten", "Squeeze") for c in cons)


def _concat_dma(g: Graph, n: Node, opts: StedgeaiOptions) -> str | None:
    """The rule that makes a (non-float-output) Concat a hybrid LL_ATON_LIB_Concat, or None."""
    if not n.outputs:
        return None
    out = _shape(g, n.outputs[0])
    acts = [t for t in g.activation_inputs(n)]
    if out is None or len(acts) < 2 or any(t.shape is None or len(t.shape) != len(out)
                                           for t in acts):
        return None
    axis = n.attrs.get("axis_norm")
    if len(out) == 4 and axis == g.channel_axis(4):
        io = SHAPE_KINDS | {"QuantizeLinear", "DequantizeLinear"}
        if len({int(t.shape[axis]) for t in acts}) > 1 and not _only_feeds(
                g, n.outputs[0], io, lambda c: False):
            return "concat-unequal-channels"
        return None
    if len(out) == 3 and axis == 1 and isinstance(out[2], (int, np.integer)) and out[2] > 1:
        return "concat-rank3-rows"
    return None
