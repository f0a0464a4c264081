"""TFLite -> :class:`~.graph.Graph`, straight from the flatbuffer (the ``tflite`` schema package).

TensorFlow is not imported: reading a BlazeFace-sized file takes a few milliseconds. Only the main
subgraph (index 0) is read; control-flow bodies are flagged by the ``If``/``Loop`` rule anyway.
A ``DEQUANTIZE`` of a constant (float16 or int8 weights stored compressed) is folded into a constant
that keeps the stored type, so float16 weights stay visible as float16.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import BlazeEarError
from .graph import Graph, Node, Quant, Tensor

#: TFLite TensorType -> numpy-style dtype name
_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
           7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
           13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16"}
_NP = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8,
       "int64": np.int64, "bool": np.bool_, "int16": np.int16, "int8": np.int8,
       "float64": np.float64, "uint64": np.uint64, "uint32": np.uint32, "uint16": np.uint16}

#: TFLite builtin operator -> ONNX-vocabulary kind (anything absent keeps its TFLite name)
KINDS = {
    "ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div", "MAXIMUM": "Max", "MINIMUM": "Min",
    "CONV_2D": "Conv", "DEPTHWISE_CONV_2D": "Conv", "TRANSPOSE_CONV": "ConvTranspose",
    "FULLY_CONNECTED": "Gemm", "BATCH_MATMUL": "MatMul", "RELU": "Relu", "RELU6": "Clip",
    "RELU_N1_TO_1": "Clip", "RELU_0_TO_1": "Clip", "LEAKY_RELU": "LeakyRelu", "PRELU": "PRelu",
    "HARD_SWISH": "HardSwish", "LOGISTIC": "Sigmoid", "TANH": "Tanh",
    "CONCATENATION": "Concat", "RESHAPE": "Reshape", "SQUEEZE": "Squeeze",
    "EXPAND_DIMS": "Unsqueeze", "MAX_POOL_2D": "MaxPool", "AVERAGE_POOL_2D": "AveragePool",
    "L2_POOL_2D": "LpPool", "MEAN": "ReduceMean", "SUM": "ReduceSum", "REDUCE_MAX": "ReduceMax",
    "PAD": "Pad", "PADV2": "Pad", "MIRROR_PAD": "Pad", "QUANTIZE": "QuantizeLinear",
    "DEQUANTIZE": "DequantizeLinear", "TRANSPOSE": "Transpose", "SOFTMAX": "Softmax",
    "LOG_SOFTMAX": "LogSoftmax", "GATHER": "Gather", "GATHER_ND": "GatherND",
    "RESIZE_BILINEAR": "Resize", "RESIZE_NEAREST_NEIGHBOR": "Resize",
    "DEPTH_TO_SPACE": "DepthToSpace", "SPACE_TO_DEPTH": "SpaceToDepth",
    "STRIDED_SLICE": "Slice", "SLICE": "Slice", "SPLIT": "Split", "SPLIT_V": "Split",
    "TILE": "Tile", "BROADCAST_TO": "Expand", "WHERE": "NonZero", "SELECT": "Where",
    "SELECT_V2": "Where", "NON_MAX_SUPPRESSION_V4": "NonMaxSuppression",
    "NON_MAX_SUPPRESSION_V5": "NonMaxSuppression", "TOPK_V2": "TopK", "IF": "If",
    "WHILE": "Loop", "SCATTER_ND": "ScatterND", "RANGE": "Range", "EXP": "Exp", "LOG": "Log",
    "SQRT": "Sqrt", "RSQRT": "Rsqrt", "POW": "Pow", "ABS": "Abs", "NEG": "Neg", "CAST": "Cast",
    "ARG_MAX": "ArgMax", "ARG_MIN": "ArgMin", "GELU": "Gelu", "SHAPE": "Shape",
    "SQUARED_DIFFERENCE": "SquaredDifference", "L2_NORMALIZATION": "LpNormalization",
}


def _builtin_names() -> dict:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items()
            if not k.startswith("_") and isinstance(v, int)}


def _short(name: str, limit: int = 48) -> str:
    """TFLite tensor names are ';'-joined op paths: keep the first one, bounded."""
    s = name.split(";")[0]
    return s if len(s) <= limit else "..." + s[-(limit - 3):]


def _options(op, cls_name: str):
    import tflite

    tab = op.BuiltinOptions()
    if tab is None:
        return None
    opt = getattr(tflite, cls_name)()
    opt.Init(tab.Bytes, tab.Pos)
    return opt


def read_tflite(path: str | os.PathLike) -> Graph:
    """Read a ``.tflite`` file into a :class:`Graph` (NHWC layout)."""
    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise BlazeEarError(f"{path}: not a readable TFLite model (no TFL3 identifier)")
    try:
        return _parse(data, str(path))
    except BlazeEarError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt flatbuffer
        raise BlazeEarError(f"{path}: not a readable TFLite model (truncated or corrupt "
                            f"flatbuffer: {str(exc).splitlines()[0] if str(exc) else ''})") \
            from None


def _buffer(model, data: bytes, index: int) -> np.ndarray | None:
    if index <= 0 or index >= model.BuffersLength():
        return None
    buf = model.Buffers(index)
    if buf is None:
        return None
    off, size = int(buf.Offset()), int(buf.Size())
    if off > 1 and size > 0:  # large models keep buffers after the flatbuffer
        if off + size > len(data):
            raise ValueError(f"buffer {index} lies beyond the end of the file")
        return np.frombuffer(data, np.uint8, size, off)
    if buf.DataLength() == 0:
        return None
    return buf.DataAsNumpy()


def _parse(data: bytes, label: str) -> Graph:
    import tflite

    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise BlazeEarError(f"{label}: not a readable TFLite model (no subgraph)")
    g = model.Subgraphs(0)
    names = _builtin_names()
    tensors: dict[str, Tensor] = {}
    tname: list[str] = []
    symbolic: dict[str, list] = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        name = (t.Name() or b"").decode(errors="replace") or f"tensor_{i}"
        if name in tensors:
            name = f"{name}#{i}"
        tname.append(name)
        dtype = _DTYPES.get(t.Type(), "unknown")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if t.ShapeSignatureLength():
            sig = [int(d) for d in t.ShapeSignatureAsNumpy()]
            dyn = [(ax, "?") for ax, d in enumerate(sig) if d < 0]
            if dyn:
                symbolic[name] = dyn
                shape = tuple(-1 if (d < 0 and ax != 0) else s
                              for ax, (d, s) in enumerate(zip(sig, shape or sig)))
                if shape and sig[0] < 0:
                    shape = (1,) + shape[1:]
        raw = _buffer(model, data, t.Buffer())
        arr = None
        if raw is not None and dtype in _NP:
            arr = np.frombuffer(raw.tobytes(), _NP[dtype])
            if shape and int(np.prod(shape)) == arr.size:
                arr = arr.reshape(shape)
        elif raw is not None and dtype == "int4":
            arr = np.frombuffer(raw.tobytes(), np.uint8)
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            scale = q.ScaleAsNumpy().astype(np.float32)
            zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(scale.size, np.int64)
            quant = Quant(scale, np.asarray(zp, np.int64),
                          int(q.QuantizedDimension()) if scale.size > 1 else None)
        tensors[name] = Tensor(name, dtype, shape, const=raw is not None, data=arr, quant=quant)

    def tn(idx):
        return tname[idx] if 0 <= idx < len(tname) else ""

    nodes: list[Node] = []
    unknown_codes = []
    for j in range(g.OperatorsLength()):
        op = g.Operators(j)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == 32:  # CUSTOM
            opname = (oc.CustomCode() or b"CUSTOM").decode(errors="replace")
            kind = "Custom"
        elif code in names:
            opname = names[code]
            kind = KINDS.get(opname, opname)
        else:
            opname = kind = f"BUILTIN_{code}"
            unknown_codes.append(code)
        ins = [tn(int(i)) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [tn(int(i)) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
        label_out = _short(outs[0]) if outs and outs[0] else ""
        node = Node(label_out or f"{opname}_{j}", opname, kind, ins, outs,
                    {"index": j, "version": int(oc.Version())})
        _tflite_attrs(node, op, tensors)
        nodes.append(node)

    # DEQUANTIZE of a constant (compressed weights): consumers read the stored constant directly
    alias, kept = {}, []
    for n in nodes:
        src = tensors.get(n.inputs[0]) if n.kind == "DequantizeLinear" and n.inputs else None
        if src is not None and src.const and n.outputs:
            src.origin = "dq"
            alias[n.outputs[0]] = n.inputs[0]
            continue
        kept.append(n)
    for n in kept:
        n.inputs = [alias.get(i, i) for i in n.inputs]
    inputs = [tn(int(i)) for i in g.InputsAsNumpy()] if g.InputsLength() else []
    outputs = [alias.get(tn(int(i)), tn(int(i))) for i in g.OutputsAsNumpy()] \
        if g.OutputsLength() else []
    return Graph(label, "tflite", "NHWC", kept, tensors, inputs, outputs, None,
                 notes={"symbolic_dims": symbolic, "unknown_builtin_codes": unknown_codes,
                        "schema_version": int(model.Version()),
                        "subgraphs": int(model.SubgraphsLength())})


def _tflite_attrs(node: Node, op, tensors: dict) -> None:
    a = node.attrs
    name = node.op

    def const(i):
        if i >= len(node.inputs):
            return None
        t = tensors.get(node.inputs[i])
        return None if t is None or not t.const else t.data

    if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
        w = tensors.get(node.inputs[1]) if len(node.inputs) > 1 else None
        if w is not None and w.shape and len(w.shape) == 4:
            a["kernel"] = (int(w.shape[1]), int(w.shape[2]))
        cls = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
               "TRANSPOSE_CONV": "TransposeConvOptions"}[name]
        opt = _options(op, cls)
        a["strides"] = (int(opt.StrideH()), int(opt.StrideW())) if opt is not None else (1, 1)
        a["depthwise"] = name == "DEPTHWISE_CONV_2D"
        if opt is not None and name != "TRANSPOSE_CONV":
            a["dilation"] = (int(opt.DilationHFactor()), int(opt.DilationWFactor()))
        if name == "TRANSPOSE_CONV":  # inputs: output_shape, weights, input[, bias]
            node.inputs = [node.inputs[2], node.inputs[1]] + node.inputs[3:] + [node.inputs[0]]
    elif name in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D"):
        opt = _options(op, "Pool2DOptions")
        if opt is not None:
            a["kernel"] = (int(opt.FilterHeight()), int(opt.FilterWidth()))
            a["strides"] = (int(opt.StrideH()), int(opt.StrideW()))
    elif name in ("PAD", "PADV2", "MIRROR_PAD"):
        p = const(1)
        if p is not None:
            a["pad_pairs"] = [tuple(int(v) for v in row) for row in np.asarray(p).reshape(-1, 2)]
        a["pad_mode"] = "constant" if name != "MIRROR_PAD" else "reflect"
        a["constant_value_input"] = ""
    elif name == "TRANSPOSE":
        p = const(1)
        a["perm"] = tuple(int(v) for v in np.asarray(p).reshape(-1)) if p is not None else ()
    elif name == "CONCATENATION":
        opt = _options(op, "ConcatenationOptions")
        x = tensors.get(node.outputs[0]) if node.outputs else None
        axis = int(opt.Axis()) if opt is not None else 0
        rank = len(x.shape) if x is not None and x.shape else None
        a["axis_norm"] = axis % rank if rank else axis
    elif name == "RESIZE_BILINEAR":
        a["resize_mode"] = "linear"
    elif name == "RESIZE_NEAREST_NEIGHBOR":
        a["resize_mode"] = "nearest"
    elif name in ("MEAN", "REDUCE_MAX"):
        ax = const(1)
        if ax is not None:
            a["reduce_axes"] = tuple(sorted(int(v) % 4 for v in np.asarray(ax).reshape(-1)))
