"""The rule table and the checks that fire its rules on a :class:`~.graph.Graph`.

One :class:`Rule` per entry of ``../shared/docs/st-edge-ai.md``: id, severity, message, the fix
hint and the source, so a user can judge each one ("[ST]" = ST's documentation, code or builds;
"[users]" = compiler output reported by third parties). ``docs/lint.md`` prints the same table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .graph import Graph, Node
from .placement import (DYNAMIC_QUANT_OPS, QOPERATOR_OPS, UNSUPPORTED_KINDS, Placement,
                        channel_pad_amount, is_float_node, is_int_node, is_tail_or_head)

SEVERITIES = ("error", "warning", "info")
ONNX_OPSETS = (7, 20)
#: Slice ends at or beyond this are "to the end" sentinels (INT64_MAX, INT32_MAX)
SLICE_END_SENTINEL = 2**31 - 1
#: unsupported operators whose failure a source pins down (the rest only "may fail")
CONFIRMED_UNSUPPORTED = frozenset({"NonMaxSuppression", "Custom"})


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    message: str
    hint: str
    source: str


def _r(id, severity, message, hint, source):
    return Rule(id, severity, message, hint, source)


RULES: dict[str, Rule] = {r.id: r for r in [
    # -- errors: the model does not compile (each names the condition and ST's message) --------
    _r("float16", "error", "float16 tensors or weights",
       "store weights as float32 (or int8): no float16 optimisation in the converter",
       "[users] stedgeai: INTERNAL ERROR: 'FLOAT16'"),
    _r("qoperator", "error", "ONNX QOperator node; ST Edge AI Core needs the QDQ format",
       "quantize_static(..., quant_format=QuantFormat.QDQ)",
       "[ST] ONNX quantisation notebook: QDQ (QuantizeLinear/DequantizeLinear pairs)"),
    _r("onnx-uint8", "error", "unsigned 8-bit quantisation (QUInt8) in ONNX",
       "quantise with activation_type=QuantType.QInt8, weight_type=QuantType.QInt8",
       "[users] NOT IMPLEMENTED: Onnx exporting model with quantized unsigned integer format "
       "is not supported"),
    _r("weight-only-quant", "error",
       "weight-only / dynamic-range quantisation (float activations, int8 weights)",
       "full-integer static quantisation with calibration data (ORT quantize_static; TFLite "
       "converter with representative_dataset and TFLITE_BUILTINS_INT8)",
       "[ST] hybrid (float-activation) operators are not supported; [users] NOT IMPLEMENTED: "
       "Unsupported layer types"),
    _r("dynamic-range", "error",
       "TFLite dynamic-range (hybrid) quantisation: int8 weights, float activations; not a "
       "float model, and not an int8 one: ST Edge AI does not run its hybrid operators",
       "convert with full-integer quantisation: converter.optimizations = [Optimize.DEFAULT], a "
       "representative_dataset of real inputs, target_spec.supported_ops = "
       "[TFLITE_BUILTINS_INT8] (blazeear-edge export --int8 does this)",
       "[ST] hybrid (float-activation) operators are not supported; [users] NOT IMPLEMENTED: "
       "Unsupported layer types"),
    _r("quant-scheme", "warning",
       "may fail: quantisation the NPU does not take (weights int8 with zero point 0, "
       "activations int8); ST documents the NPU's scheme, not a compile failure: such "
       "operators may run in software or not compile",
       "per-channel symmetric int8 weights (WeightSymmetric=True), asymmetric int8 activations",
       "[ST] Neural-ART operator-support page: ss/sa per channel (or per tensor); ST's ONNX "
       "quantiser: QInt8/QInt8, WeightSymmetric=True"),
    _r("dynamic-shape", "error", "dynamic or symbolic dimension; only a batch of 1 is allowed",
       "export with static input and output shapes and batch 1",
       "[ST]; [users] NOT IMPLEMENTED: Order of dimensions of input cannot be interpreted"),
    _r("rank-layout", "warning",
       "may fail: tensor that may not map onto the NPU's 4-D layout (rank > 4, or a leading "
       "axis > 1 inside the graph)",
       "keep activations at rank <= 4 with batch 1 (fold extra axes into H or W)",
       "[users] INTERNAL ERROR: Unknown dimensions: CH (or H)"),
    _r("unconnected-output", "error", "operator output connected to nothing",
       "remove the output (onnxsim, or drop MaxPool indices / unused Split parts) or make it "
       "a graph output",
       "[ST] operators with an unconnected output are not supported"),
    _r("opset", "error", "opset or operator version outside what ST Edge AI Core reads",
       "ONNX: export with opset 7..20 (e.g. 17) or onnx.version_converter; TFLite: convert "
       "with TF <= 2.18 builtins",
       "[ST] supported-ops pages: ONNX opsets 7..20 (ONNX 1.15), TFLite schema up to 2.18"),
    _r("unsupported-op", "error",
       "operator ST Edge AI Core does not support (NonMaxSuppression in the graph, a custom "
       "operator)",
       "cut post-processing (NMS, TopK, decode) out of the graph and run it on the host / CPU",
       "[users] NOT IMPLEMENTED: Unsupported layer types: NonMaxSuppression; \"since the "
       "post-processing is inside the model, it is not possible to deploy it on the device\"; "
       "a custom operator is in none of ST's operator lists"),
    _r("pad-constant-value", "error", "Pad with a scalar constant_value initializer",
       "drop the input when it is 0 (the ONNX default) or widen with a Concat of zeros",
       "[users] ST Edge AI Core 4.0.1: missing shape or size for value=Pad_*_constant_value"),
    _r("slice-ends", "warning",
       "may fail: Slice with INT64_MAX or negative ends (reported failing without the model; "
       "the pattern is in most PyTorch exports)",
       "write explicit non-negative ends (the dimension size); onnxsim usually does",
       "[users] TOOL ERROR: Error in computation of shapes"),
    _r("transpose-mid-graph", "warning",
       "Transpose of an activation in the middle of the graph: a hybrid DMA epoch (or none, "
       "when ST folds it into its own layout change)",
       "keep the graph in one layout; move layout changes to the model's input or output",
       "[ST builds] ST compiles activation Transposes as hybrid LL_ATON_LIB_DMA_Transpose "
       "epochs (FaceDetection network.c: 22; third-party yolo_detector.c and pothole "
       "network.c: 1 each, the other 3 folded); [users] \"INTERNAL ERROR: Mismatch in channel "
       "position\" was reported without the failing pattern, so it is not a rule"),
    _r("clip-dq-bounds", "error", "Clip whose min/max come through DequantizeLinear",
       "keep Clip bounds as float initializers (exclude them from quantisation) or use Relu6",
       "[users] INTERNAL ERROR: None has type NoneType"),
    # -- warnings: it compiles, but not (all) on the NPU ---------------------------------------
    _r("channel-pad", "warning",
       "channel-axis Pad: up to 2 hybrid DMA-transpose epochs (the NPU cannot pad channels)",
       "widen with a Concat of zeros (blazeear-edge export --channel-pad concat) or a 1x1 "
       "identity conv (--channel-pad conv)",
       "[ST] ST's own BlazeFace-128 compile: 22 hybrid epochs, two around each of 11 channel "
       "pads; channel-doubling pads cost 0-2 (palm_detector.c 4 for 3, face_landmark.c 1 for 3)"),
    _r("float-model", "warning", "float model: every operator runs in software on the Cortex-M55",
       "quantise to int8 (blazeear-edge export --int8, or ORT quantize_static QDQ per-channel)",
       "[ST] Neural-ART runs int8 only; float operators become software epochs"),
    _r("float-op", "warning", "float operator in a quantised model: runs in software",
       "quantise it too (it has no Q/DQ around it or was excluded from quantisation)",
       "[ST] float operators become software epochs"),
    _r("float-io", "warning",
       "float input/output conversions that run in software (one epoch each)",
       "compile with --output-data-type int8 (and an integer --input-data-type) so the "
       "conversions disappear; dequantise in the host code",
       "[ST] every ST compile with float outputs: one ll_sw_forward_dequantizelinear per output "
       "(ObjectDetection, ImageClassification, PoseEstimation, hand- and face-landmarks, Audio "
       "network.c); BlazeFace with --output-data-type int8: none"),
    _r("per-tensor-weights", "warning",
       "per-tensor weight quantisation where per-channel is available",
       "quantise weights per channel (ORT per_channel=True; the TFLite converter's default)",
       "[ST] recommended scheme: ss/sa per channel"),
    _r("decomposed-kernel", "warning",
       "kernel or pool window the NPU decomposes into several operations",
       "conv kernels up to 3 high and 6 wide at stride 1, pool windows up to 3, run natively",
       "[ST builds, users] kernel height > 3 or width > 6 at stride 1, pool windows > 3 are "
       "decomposed (still hardware)"),
    _r("software-op", "warning", "operator runs in software on the Cortex-M55",
       "replace it or move it out of the graph (sigmoid/softmax/decode in post-processing; "
       "Resize: nearest)",
       "[ST] mapping: Softmax, Gather, non-nearest Resize, ReduceSum, InstanceNorm, Softplus "
       "are software; a Conv on a 1-element input too (ReID OSNet network.c)"),
    _r("transpose", "warning", "Transpose at the model's input/output: a hybrid DMA epoch",
       "reshape in the host code, or let stedgeai place channels "
       "(--inputs-ch-position / --outputs-ch-position)",
       "[ST] mapping: Transpose runs as a hybrid (CPU-launched DMA) epoch"),
    _r("maybe-unsupported-op", "warning",
       "may fail: post-processing or control-flow operator (TopK, NonZero, If, Loop, "
       "ScatterND, Expand, Tile, GatherND, Range, Where on a dynamic condition) that no source "
       "shows ST compiling for the N6; counted as software",
       "cut post-processing (TopK, decode) out of the graph and run it on the host / CPU",
       "[users] st-edge-ai.md lists these with NonMaxSuppression, but the reports name only "
       "NonMaxSuppression; not pinned down, so not an error"),
    _r("broadcast", "warning",
       "elementwise operator with bidirectional broadcast: runs in software",
       "broadcast one operand explicitly (unidirectional broadcast runs in hardware)",
       "[ST] Add/Sub/Mul/Max/Min: unidirectional broadcast only in hardware"),
    _r("unknown-op", "warning", "operator not in the linter's tables: assumed to run in software",
       "check ST's supported-operators page for this operator",
       "blazeear-edge: the operator is in none of the mapping tables (docs/lint.md)"),
    # -- information ---------------------------------------------------------------------------
    _r("batch-symbolic", "info", "symbolic batch dimension, taken as 1",
       "fix the batch to 1 on export for clarity",
       "[ST] a None batch is taken as 1"),
]}


@dataclass
class Finding:
    rule: str
    severity: str
    node: str
    op: str
    message: str
    hint: str
    source: str
    detail: str = ""  #: the finding-specific part of ``message`` (not in the JSON)

    def to_dict(self) -> dict:
        """The JSON form: rule, severity, node, op, message, hint, source."""
        d = asdict(self)
        del d["detail"]
        return d


def finding(rule_id: str, node: Node | None = None, detail: str = "", *, node_name: str = "",
            op: str = "") -> Finding:
    r = RULES[rule_id]
    msg = r.message if not detail else f"{r.message}: {detail}"
    return Finding(r.id, r.severity, node.name if node is not None else node_name,
                   node.op if node is not None else op, msg, r.hint, r.source, detail)


def _examples(names, k=3) -> str:
    names = list(dict.fromkeys(names))
    s = ", ".join(names[:k])
    return s + (f" (+{len(names) - k} more)" if len(names) > k else "")


def _first_user(g: Graph, name: str) -> Node | None:
    cons = g.consumers.get(name)
    return cons[0] if cons else g.producer.get(name)


# ---------------------------------------------------------------------------------------------
# checks: each returns a list of findings
# ---------------------------------------------------------------------------------------------
def check_float16(g: Graph, placements) -> list:
    names = [t.name for t in g.tensors.values() if t.dtype in ("float16", "bfloat16")
             and (t.name in g.consumers or t.name in g.producer or t.name in g.inputs)]
    if not names:
        return []
    return [finding("float16", _first_user(g, names[0]),
                    f"{len(names)} tensor(s), e.g. {_examples(names)}")]


def check_qoperator(g: Graph, placements) -> list:
    return [finding("qoperator", n) for n in g.nodes
            if n.op in QOPERATOR_OPS or str(n.op).startswith("QLinear")]


def check_onnx_uint8(g: Graph, placements) -> list:
    if g.format != "onnx":
        return []
    names = [t.name for t in g.tensors.values() if t.dtype == "uint8" and t.quant is not None]
    names += [n.inputs[2] for n in g.nodes if n.kind in ("QuantizeLinear", "DequantizeLinear")
              and len(n.inputs) > 2 and g.tensor(n.inputs[2]) is not None
              and g.tensor(n.inputs[2]).dtype == "uint8"]
    names += [n.outputs[0] for n in g.nodes if n.op in QOPERATOR_OPS and n.outputs
              and g.tensor(n.outputs[0]) is not None and g.tensor(n.outputs[0]).dtype == "uint8"]
    if not names:
        return []
    return [finding("onnx-uint8", _first_user(g, names[0]),
                    f"{len(set(names))} uint8 tensor(s), e.g. {_examples(names)}")]


def _weight(g: Graph, n: Node):
    if n.kind in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(n.inputs) > 1:
        t = g.tensor(n.inputs[1])
        if t is not None and t.const:
            return t
    return None


def is_dynamic_range_tflite(g: Graph) -> bool:
    """A TFLite model whose operators take float activations and int8 quantised weights."""
    if g.format != "tflite" or any(is_int_node(g, n) for n in g.nodes):
        return False
    return any(is_float_node(g, n) and any(
        g.is_const(i) and g.tensor(i).quant is not None and g.tensor(i).dtype in ("int8", "int4")
        for i in n.inputs[1:]) for n in g.nodes)


def check_weight_only(g: Graph, placements) -> list:
    if is_dynamic_range_tflite(g):
        hyb = [n for n in g.nodes if is_float_node(g, n) and any(
            g.is_const(i) and g.tensor(i).quant is not None for i in n.inputs[1:])]
        return [finding("dynamic-range", node_name="(model)", op="",
                        detail=f"{len(hyb)} operator(s) with int8 weights on float activations, "
                               f"e.g. {_examples([n.name for n in hyb])}")]
    out = []
    for n in g.nodes:
        if n.op in DYNAMIC_QUANT_OPS:
            out.append(finding("weight-only-quant", n, f"{n.op} (dynamic quantisation)"))
            continue
        if n.op in QOPERATOR_OPS or not is_float_node(g, n):
            continue
        qconst = [g.tensor(i) for i in n.inputs if g.is_const(i)]
        qconst = [t for t in qconst if t.quant is not None and t.dtype in ("int8", "uint8",
                                                                            "int4", "int16")]
        if qconst:
            out.append(finding("weight-only-quant", n,
                               f"float input with {qconst[0].dtype} constant {qconst[0].name}"))
    return out


def check_quant_scheme(g: Graph, placements) -> list:
    out = []
    for n in g.nodes:
        w = _weight(g, n)
        if w is None or w.quant is None or w.dtype not in ("int8", "uint8", "int4", "int16"):
            continue
        if w.dtype != "int8" and not (w.dtype == "uint8" and g.format == "onnx"):
            out.append(finding("quant-scheme", n, f"{w.dtype} weights {w.name}"))
        elif np.any(np.asarray(w.quant.zero_point) != 0):
            out.append(finding("quant-scheme", n, f"weights {w.name} have a non-zero zero point "
                                                  "(asymmetric); the NPU needs symmetric"))
    io = set(g.inputs) | set(g.outputs)
    bad = [t.name for t in g.tensors.values()
           if not t.const and t.quant is not None and t.name not in io
           and t.dtype not in ("int8", "int32")
           and not (t.dtype == "uint8" and g.format == "onnx")]  # ONNX uint8: its own rule
    if bad:
        t0 = g.tensor(bad[0])
        out.append(finding("quant-scheme", _first_user(g, bad[0]),
                           f"{t0.dtype} activations, e.g. {_examples(bad)}"))
    return out


def check_shapes(g: Graph, placements) -> list:
    out = []
    sym = g.notes.get("symbolic_dims", {})
    for name in list(g.inputs) + list(g.outputs):
        dims = sym.get(name, [])
        if any(ax == 0 for ax, _ in dims):
            out.append(finding("batch-symbolic", node_name=name, op="input" if name in g.inputs
                               else "output", detail=f"{name}"))
        other = [(ax, lab) for ax, lab in dims if ax != 0]
        if other:
            desc = ", ".join(f"axis {ax} ({lab})" for ax, lab in other)
            out.append(finding("dynamic-shape", node_name=name,
                               op="input" if name in g.inputs else "output",
                               detail=f"{name}: {desc}"))
        t = g.tensor(name)
        if t is not None and t.shape and len(t.shape) >= 2 and not any(ax == 0 for ax, _ in dims) \
                and isinstance(t.shape[0], (int, np.integer)) and t.shape[0] > 1:
            out.append(finding("dynamic-shape", node_name=name,
                               op="input" if name in g.inputs else "output",
                               detail=f"{name}: batch {t.shape[0]}"))
    return out


def check_rank(g: Graph, placements) -> list:
    out = []
    io = set(g.inputs) | set(g.outputs)
    for n in g.nodes:
        for o in n.outputs:
            t = g.tensor(o)
            if t is None or t.const or t.shape is None:
                continue
            if len(t.shape) > 4:
                out.append(finding("rank-layout", n, f"{o} has rank {len(t.shape)} "
                                                      f"{tuple(t.shape)}"))
                break
            if len(t.shape) == 4 and o not in io and isinstance(t.shape[0], (int, np.integer)) \
                    and t.shape[0] > 1:
                out.append(finding("rank-layout", n, f"{o} {tuple(t.shape)}: leading (batch) "
                                                      "axis > 1"))
                break
    return out


def check_unconnected(g: Graph, placements) -> list:
    outs = set(g.outputs)
    out = []
    for n in g.nodes:
        dangling = [o for o in n.outputs if o and o not in outs and o not in g.consumers]
        if dangling:
            out.append(finding("unconnected-output", n, ", ".join(str(d) for d in dangling)))
    return out


def check_opset(g: Graph, placements) -> list:
    out = []
    if g.format == "onnx":
        lo, hi = ONNX_OPSETS
        if g.opset is None or not lo <= g.opset <= hi:
            out.append(finding("opset", node_name="(model)", op="opset",
                               detail=f"opset {g.opset} (supported {lo}..{hi})"))
    for code in g.notes.get("unknown_builtin_codes", []):
        out.append(finding("opset", node_name="(model)", op=f"BUILTIN_{code}",
                           detail=f"builtin operator code {code} is newer than the 2.18 schema"))
    return out


def check_unsupported(g: Graph, placements) -> list:
    out = []
    for n in g.nodes:
        if n.kind not in UNSUPPORTED_KINDS:
            continue
        if n.kind == "Where" and n.inputs and g.is_const(n.inputs[0]):
            continue
        detail = n.op if n.kind != "Where" else "Where on a dynamic condition"
        rule = "unsupported-op" if n.kind in CONFIRMED_UNSUPPORTED else "maybe-unsupported-op"
        out.append(finding(rule, n, detail))
    return out


def check_pad_value(g: Graph, placements) -> list:
    out = []
    if g.format != "onnx":
        return out
    for n in g.nodes:
        cv = n.attrs.get("constant_value_input") if n.kind == "Pad" else ""
        if cv and g.is_const(cv) and np.size(g.tensor(cv).data) <= 1:
            v = np.asarray(g.tensor(cv).data).reshape(-1)
            out.append(finding("pad-constant-value", n,
                               f"{cv} = {v[0] if v.size else '?'}"))
    return out


def check_slice_ends(g: Graph, placements) -> list:
    out = []
    for n in g.nodes:
        if n.kind != "Slice" or g.format != "onnx":
            continue
        ends = n.attrs.get("ends_values")
        if ends and any(e < 0 or e >= SLICE_END_SENTINEL for e in ends):
            out.append(finding("slice-ends", n, f"ends {list(ends)}"))
    return out


def check_transpose(g: Graph, placements) -> list:
    out = []
    folded = {p.node for p in placements if p.rule == "layout-transpose"}
    for n in g.nodes:
        if n.kind != "Transpose" or not g.activation_inputs(n) or n.name in folded:
            continue
        perm = n.attrs.get("perm")
        if is_tail_or_head(g, n):
            out.append(finding("transpose", n, f"perm {list(perm) if perm else '?'}"))
        else:
            out.append(finding("transpose-mid-graph", n, f"perm {list(perm) if perm else '?'}"))
    return out


def check_clip(g: Graph, placements) -> list:
    out = []
    for n in g.nodes:
        if n.kind != "Clip" or n.op != "Clip":
            continue
        for i in n.inputs[1:3]:
            t = g.tensor(i)
            p = g.producer.get(i)
            if (t is not None and t.origin == "dq") or (p is not None
                                                         and p.kind == "DequantizeLinear"):
                out.append(finding("clip-dq-bounds", n, f"bound {i}"))
                break
    return out


def check_weights_per_channel(g: Graph, placements) -> list:
    out = []
    for n in g.nodes:
        w = _weight(g, n)
        if w is None or w.quant is None or w.quant.per_channel or not w.shape:
            continue
        if n.kind in ("Conv", "ConvTranspose"):
            cout = w.shape[-1] if (g.format == "tflite" and n.attrs.get("depthwise")) \
                else w.shape[0]
        else:
            cout = w.shape[0] if g.format == "tflite" else w.shape[-1]
        if cout and cout > 1:
            out.append(finding("per-tensor-weights", n, f"{w.name} ({cout} output channels)"))
    return out


def check_kernels(g: Graph, placements) -> list:
    out = []
    for n in g.nodes:
        kern = n.attrs.get("kernel")
        if not kern or len(kern) != 2:
            continue
        kh, kw = int(kern[0]), int(kern[1])
        strides = tuple(n.attrs.get("strides") or (1, 1))
        if n.kind in ("Conv",) and all(s == 1 for s in strides) and (kh > 3 or kw > 6):
            out.append(finding("decomposed-kernel", n, f"{kh}x{kw} kernel at stride 1"))
        elif n.kind in ("MaxPool", "AveragePool") and (kh > 3 or kw > 3):
            out.append(finding("decomposed-kernel", n, f"{kh}x{kw} pool window"))
    return out


def check_placement(g: Graph, placements: list[Placement]) -> list:
    """Warnings that come from where operators run."""
    out = []
    real = [p for p in placements if p.kind != "Conversion"]  # not the added conversions
    nodes = {id(p): n for p, n in zip(real, g.nodes)}
    quantised = any(is_int_node(g, n) for n in g.nodes)
    compute = [n for n in g.nodes if n.kind not in ("QuantizeLinear", "DequantizeLinear")]
    if not quantised and compute and not is_dynamic_range_tflite(g):
        out.append(finding("float-model", node_name="(model)", op="",
                           detail=f"{len(compute)} operators"))
    io = [p for p in placements if p.reason == "io" and p.unit == "sw"]
    if io:
        ins = [p for p in io if p.rule in ("input-quantize", "input-convert")]
        out.append(finding("float-io", node_name="(model I/O)", op="Q/DQ",
                           detail=f"{len(ins)} input conversion(s), {len(io) - len(ins)} output "
                                  f"conversion(s) in software"))
    for p in placements:
        n = nodes.get(id(p))
        if n is None:  # a conversion stedgeai adds (no node of the model)
            continue
        if p.reason == "float" and quantised:
            out.append(finding("float-op", n))
        why = p.intrinsic  # what stays off the NPU even once quantised
        if why == "channel-pad":
            c = channel_pad_amount(g, n)
            x = g.tensor(n.inputs[0]) if n.inputs else None
            cin = x.shape[g.channel_axis(4)] if x is not None and x.shape and \
                len(x.shape) == 4 else None
            detail = f"{cin} -> {cin + c} channels" if cin else f"+{c} channels"
            out.append(finding("channel-pad", n, detail))
        elif why == "software-op":
            mode = n.attrs.get("resize_mode")
            out.append(finding("software-op", n, f"{mode} Resize" if mode else n.op))
        elif why == "broadcast":
            out.append(finding("broadcast", n))
        elif why == "unknown-op":
            out.append(finding("unknown-op", n, n.op))
    return out


CHECKS = (check_float16, check_qoperator, check_onnx_uint8, check_weight_only, check_quant_scheme,
          check_shapes, check_rank, check_unconnected, check_opset, check_unsupported,
          check_pad_value, check_slice_ends, check_transpose, check_clip,
          check_weights_per_channel, check_kernels, check_placement)


def run_checks(g: Graph, placements: list[Placement]) -> list[Finding]:
    """Every check, findings sorted errors first, then in graph order."""
    order = {n.name: i for i, n in enumerate(g.nodes)}
    findings = []
    for check in CHECKS:
        findings.extend(check(g, placements))
    sev = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: (sev[f.severity], order.get(f.node, -1)))


__all__ = ["RULES", "Rule", "Finding", "run_checks", "SEVERITIES"]
