"""ONNX -> :class:`~.graph.Graph`: shape inference, constants, and QDQ folding.

Shape arithmetic is folded first (``_fold_model``): an export that was not simplified computes
its Slice ends and Reshape targets at run time (``Shape -> Gather -> Add/Div -> Concat``, as
``torch.onnx.export`` writes ``chunk`` and ``view``); every compiler, ST's included, folds these
on static shapes, and so does the reader, with onnx's reference evaluator.

QDQ folding (see :mod:`.graph`): an operator is *QDQ-wrapped* when every non-constant input comes
from a ``DequantizeLinear`` and every consumed output goes only to ``QuantizeLinear`` nodes. The
pairs around wrapped operators are removed and their tensors become int8 with the quantisation
parameters; ``DequantizeLinear`` of a constant becomes an int8 constant. What is left of Q/DQ is
real: the float input's QuantizeLinear, and a DequantizeLinear feeding a float output or a float
operator.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import BlazeEarError
from .graph import Graph, Node, Quant, Tensor

_Q, _DQ = "QuantizeLinear", "DequantizeLinear"
#: operators whose constant operands are data (weights): float ones mean a float operator
_DATA_OPERAND_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "PRelu", "Add", "Sub",
                               "Mul", "Div", "Max", "Min", "Concat", "BatchNormalization",
                               "InstanceNormalization", "LayerNormalization"})


def _dtype_name(elem_type: int) -> str:
    from onnx import TensorProto, helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
    except Exception:  # noqa: BLE001 - float8, int4, bfloat16, undefined
        try:
            return TensorProto.DataType.Name(elem_type).lower()
        except ValueError:
            return "unknown"


def _s(v) -> str:
    """A name as text: protobuf hands over strings that are not valid UTF-8 as bytes."""
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)


def _value_info_shape(vi):
    """(dtype, shape, symbolic) of a ValueInfoProto; shape dims -1 when not a fixed value."""
    tt = vi.type.tensor_type
    dtype = _dtype_name(tt.elem_type) if tt.elem_type else "unknown"
    if not tt.HasField("shape"):
        return dtype, None, []
    shape, symbolic = [], []
    for axis, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value >= 0:
            shape.append(int(d.dim_value))
        else:
            shape.append(-1)
            symbolic.append((axis, d.dim_param or "?"))
    return dtype, tuple(shape), symbolic


def load_onnx_model(path: Path):
    import onnx

    try:
        m = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf errors, missing external data, ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BlazeEarError(f"{path}: not a readable ONNX model ({msg})") from None
    if m.ir_version <= 0 or not m.HasField("graph") or (not m.graph.node and not m.graph.output):
        raise BlazeEarError(f"{path}: not a readable ONNX model (no graph in the file)")
    return m


def _infer(model):
    """A copy of ``model`` with a symbolic batch fixed to 1 and shapes inferred (best effort)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name for i in m.graph.initializer}
    for vi in m.graph.input:
        if vi.name in inits or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    try:
        if m.ByteSize() < 1_800_000_000:
            return onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - inference is a help, not a requirement
        pass
    return m


def _constant_node_value(node):
    from onnx import numpy_helper

    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name == "value_float":
            return np.array(a.f, np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), np.float32)
        if a.name == "value_int":
            return np.array(a.i, np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), np.int64)
    return None


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        try:
            v = helper.get_attribute_value(a)
        except Exception:  # noqa: BLE001
            continue
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        elif isinstance(v, list):
            v = [x.decode(errors="replace") if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def read_onnx(source, path: str | os.PathLike | None = None) -> Graph:
    """Read an ONNX file or an in-memory ``onnx.ModelProto`` into a :class:`Graph`."""
    import onnx
    from onnx import numpy_helper

    if isinstance(source, onnx.ModelProto):
        model = source
        label = str(path) if path else f"<onnx {model.graph.name or 'model'}>"
        if not model.HasField("graph"):
            raise BlazeEarError(f"{label}: ONNX ModelProto without a graph")
    else:
        label = str(source)
        model = load_onnx_model(Path(source))
    opset = None
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            opset = int(o.version)
    try:
        model, inferred = _fold_model(model, opset)
    except Exception:  # noqa: BLE001 - folding is a help: read the file as it is
        inferred = _infer(model)
    g0, gi = model.graph, inferred.graph

    tensors: dict[str, Tensor] = {}
    symbolic: dict[str, list] = {}
    for vi in list(gi.value_info) + list(gi.input) + list(gi.output):
        dtype, shape, _ = _value_info_shape(vi)
        tensors[vi.name] = Tensor(vi.name, dtype, shape)
    for vi in list(g0.input) + list(g0.output):  # symbolic dims as the file declares them
        _, _, sym = _value_info_shape(vi)
        if sym:
            symbolic[vi.name] = sym
    const_values: dict[str, np.ndarray] = {}
    for init in g0.initializer:
        try:
            const_values[init.name] = numpy_helper.to_array(init)
        except Exception as exc:  # noqa: BLE001
            raise BlazeEarError(f"{label}: initializer {init.name!r} unreadable ({exc})") from None
    raw_nodes = []
    for n in g0.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.output) == 1:
            v = _constant_node_value(n)
            if v is not None:
                const_values[n.output[0]] = v
                continue
        raw_nodes.append(n)
    for name, v in const_values.items():
        v = np.asarray(v)
        tensors[name] = Tensor(name, v.dtype.name, tuple(int(d) for d in v.shape), const=True,
                               data=v)

    init_names = {i.name for i in g0.initializer}
    inputs = [vi.name for vi in g0.input if vi.name not in init_names]
    outputs = [vi.name for vi in g0.output]
    out_set = set(outputs)

    producer = {o: n for n in raw_nodes for o in n.output if o}
    consumers: dict[str, list] = {}
    for n in raw_nodes:
        for i in n.input:
            if i:
                consumers.setdefault(i, []).append(n)

    # constants derived by Q/DQ of constants (weights), in file order
    const = set(const_values)
    for n in raw_nodes:
        if n.op_type in (_Q, _DQ) and n.input and n.input[0] in const:
            const.add(n.output[0])

    def is_dq_act(name):
        p = producer.get(name)
        return p is not None and p.op_type == _DQ and p.input[0] not in const

    def wrapped(n) -> bool:
        if n.op_type in (_Q, _DQ):
            return False
        act = [i for i in n.input if i and i not in const]
        if not act or not all(is_dq_act(i) for i in act):
            return False
        if n.op_type in _DATA_OPERAND_OPS and any(
                i in const_values and np.asarray(const_values[i]).dtype.kind == "f"
                for i in n.input[1:] if i):
            return False  # float weights between Q/DQ (an operator excluded from quantisation)
        used = [o for o in n.output if o and (o in out_set or consumers.get(o))]
        if not used:
            return False
        return all(o not in out_set and all(c.op_type == _Q for c in consumers[o]) for o in used)

    wrapped_ids = {id(n) for n in raw_nodes if wrapped(n)}
    alias: dict[str, str] = {}

    def resolve(name):
        seen = 0
        while name in alias and seen < 10_000:
            name, seen = alias[name], seen + 1
        return name

    def qparams(n):
        scale = const_values.get(n.input[1]) if len(n.input) > 1 else None
        if scale is None and len(n.input) > 1 and n.input[1] in tensors:
            scale = tensors[n.input[1]].data
        zp = None
        if len(n.input) > 2 and n.input[2]:
            zp = const_values.get(n.input[2])
            if zp is None and n.input[2] in tensors:
                zp = tensors[n.input[2]].data
        a = _attrs(n)
        if zp is not None:
            qdtype = np.asarray(zp).dtype.name
        elif n.op_type == _Q:
            qdtype = {3: "int8", 2: "uint8", 5: "int16", 4: "uint16"}.get(
                a.get("output_dtype", 0), "uint8")
        else:
            qdtype = "unknown"
        scale = np.atleast_1d(np.asarray(scale if scale is not None else [np.nan], np.float32))
        zp_arr = np.atleast_1d(np.asarray(zp if zp is not None else [0]))
        axis = int(a.get("axis", 1)) if scale.size > 1 else None
        return Quant(scale.reshape(-1), zp_arr.reshape(-1), axis), qdtype

    nodes: list[Node] = []
    for idx, n in enumerate(raw_nodes):
        name = n.name or f"{n.op_type}_{idx}"
        if n.op_type in (_Q, _DQ) and len(n.input) >= 2:
            quant, qdtype = qparams(n)
            x = resolve(n.input[0])
            y = n.output[0]
            if n.input[0] in const:
                src = tensors.get(x)
                data = src.data if src is not None else None
                if n.op_type == _DQ:
                    dtype = src.dtype if src is not None else qdtype
                    tensors[y] = Tensor(y, dtype, src.shape if src else None, const=True,
                                        data=data, quant=quant, origin="dq")
                else:
                    q = None
                    if data is not None and np.all(np.isfinite(quant.scale)):
                        q = np.round(np.asarray(data, np.float64) / _bcast(quant, data)) \
                            + _bcast_zp(quant, data)
                        info = np.iinfo(qdtype) if qdtype in ("int8", "uint8", "int16",
                                                             "uint16") else None
                        if info is not None:
                            q = np.clip(q, info.min, info.max)
                        q = q.astype(qdtype if info is not None else np.int64)
                    tensors[y] = Tensor(y, qdtype, src.shape if src else None, const=True,
                                        data=q, quant=quant)
                continue
            if n.op_type == _Q:
                p = producer.get(n.input[0])
                if p is not None and id(p) in wrapped_ids:
                    alias[y] = x
                    t = tensors.setdefault(x, Tensor(x, qdtype))
                    t.dtype, t.quant = qdtype, quant
                    continue
                shape = tensors[x].shape if x in tensors else None
                tensors[y] = Tensor(y, qdtype, shape, quant=quant)
            else:  # DequantizeLinear of an activation
                t = tensors.setdefault(x, Tensor(x, qdtype))
                if t.quant is None:
                    t.quant = quant
                if t.dtype in ("unknown", "float32") and qdtype != "unknown":
                    t.dtype = qdtype
                cons = consumers.get(y, [])
                if y not in out_set and cons and all(id(c) in wrapped_ids for c in cons):
                    continue  # every consumer reads the int8 tensor directly
            nodes.append(Node(_s(name), _s(n.op_type), _s(n.op_type),
                              [_s(x)] + [_s(resolve(i)) for i in n.input[1:]],
                              [_s(o) for o in n.output], _attrs(n), _s(n.domain)))
            continue
        is_wrapped = id(n) in wrapped_ids
        ins = []
        for i in n.input:
            if is_wrapped and i and is_dq_act(i):
                i = producer[i].input[0]
            ins.append(resolve(i) if i else "")
        ins += [resolve(i) for i in _outer_scope_inputs(n) if i not in ins]
        nodes.append(Node(_s(name), _s(n.op_type), _s(n.op_type), [_s(i) for i in ins],
                          [_s(o) for o in n.output], _attrs(n), _s(n.domain)))

    outputs = [_s(resolve(o)) for o in outputs]
    inputs = [_s(i) for i in inputs]
    for nd in nodes:
        for o in nd.inputs + nd.outputs:
            if o and o not in tensors:
                tensors[o] = Tensor(o, "unknown")
    g = Graph(label, "onnx", "NCHW", nodes, tensors, inputs, outputs, opset,
              notes={"symbolic_dims": symbolic,
                     "ir_version": int(model.ir_version),
                     "opsets": {o.domain or "ai.onnx": int(o.version) for o in model.opset_import},
                     "removed_qdq": len(raw_nodes) - len(nodes)})
    for nd in nodes:
        _canonical_attrs(nd, g)
    return g


#: operators whose output is a constant when every input is (shape arithmetic of an unsimplified
#: export: Shape -> Gather -> Add/Div -> Unsqueeze/Concat -> the ends of a Slice or a Reshape)
_FOLDABLE = frozenset({"Gather", "Unsqueeze", "Squeeze", "Concat", "Add", "Sub", "Mul", "Div",
                       "Cast", "Slice", "Reshape", "Identity", "Floor", "Ceil", "Range", "Equal",
                       "Where", "ConstantOfShape", "Expand", "ReduceProd", "Max", "Min", "Neg",
                       "Abs", "Mod", "Less", "Greater", "Not", "And", "Or", "Transpose"})
#: a folded constant stays small (shape vectors), so the weights are never copied around
_FOLD_MAX_ELEMENTS = 1024


def _fold_nodes(nodes, consts: dict, shapes: dict, opset: int | None) -> tuple[list, dict]:
    """One pass: (the nodes kept, {tensor: folded constant}). A ``Shape`` of a tensor whose
    shape is static, and a :data:`_FOLDABLE` operator whose inputs are all small constants,
    are evaluated by onnx's reference implementation; a node that cannot be is kept."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    kept, folded = [], {}
    for n in nodes:
        if n.domain not in ("", "ai.onnx") or len(n.output) != 1 or not n.output[0]:
            kept.append(n)
            continue
        out = n.output[0]
        if n.op_type == "Shape" and n.input and shapes.get(n.input[0]) is not None:
            a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
            shp = shapes[n.input[0]]
            val = np.array(shp, np.int64)[slice(int(a.get("start", 0)),
                                                int(a["end"]) if "end" in a else None)]
            consts[out] = folded[out] = val
            continue
        ins = [i for i in n.input if i]
        if n.op_type in _FOLDABLE and ins and all(i in consts for i in ins) and all(
                np.size(consts[i]) <= _FOLD_MAX_ELEMENTS for i in ins):
            try:
                feeds = {i: np.asarray(consts[i]) for i in ins}
                vi = [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(
                    feeds[i].dtype), feeds[i].shape) for i in ins]
                node = helper.make_node(n.op_type, list(n.input), [out], **{
                    x.name: helper.get_attribute_value(x) for x in n.attribute})
                g = helper.make_graph([node], "fold", vi, [helper.make_value_info(
                    out, helper.TypeProto())])
                m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset or 17)])
                val = np.asarray(ReferenceEvaluator(m).run(None, feeds)[0])
            except Exception:  # noqa: BLE001 - not foldable here: keep the node
                kept.append(n)
                continue
            if val.size <= _FOLD_MAX_ELEMENTS:
                consts[out] = folded[out] = val
                continue
        kept.append(n)
    return kept, folded


def _static_shapes(inferred) -> dict:
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + \
            list(inferred.graph.output):
        _, shape, _ = _value_info_shape(vi)
        if shape is not None and all(d >= 0 for d in shape):
            out[vi.name] = shape
    return out


def _fold_model(model, opset: int | None, max_passes: int = 8):
    """(model, its shape-inferred copy) with the shape arithmetic of an unsimplified export
    folded into initializers, as any compiler does before mapping (and onnxsim / onnxslim on
    export): ``Shape -> Gather -> Add/Div -> Unsqueeze/Concat`` feeding a Slice or a Reshape.
    Shapes are inferred again after each pass, since folded ends make more shapes static.
    A model with nothing to fold is returned unchanged (one shape inference, as before)."""
    from onnx import numpy_helper

    inferred = _infer(model)
    out = model
    for _ in range(max_passes):
        consts = {}
        for init in out.graph.initializer:
            if np.prod(init.dims, dtype=np.int64) <= _FOLD_MAX_ELEMENTS:
                try:
                    consts[init.name] = numpy_helper.to_array(init)
                except Exception:  # noqa: BLE001 - read (and reported) later
                    pass
        for n in out.graph.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.output) == 1:
                v = _constant_node_value(n)
                if v is not None and np.size(v) <= _FOLD_MAX_ELEMENTS:
                    consts[n.output[0]] = np.asarray(v)
        nodes = [n for n in out.graph.node if not (n.op_type == "Constant"
                                                   and n.output and n.output[0] in consts)]
        _, folded = _fold_nodes(nodes, consts, _static_shapes(inferred), opset)
        graph_outputs = {o.name for o in out.graph.output}
        folded = {k: v for k, v in folded.items() if k not in graph_outputs}
        if not folded:
            break
        if out is model:
            import onnx

            out = onnx.ModelProto()
            out.CopyFrom(model)
        remaining = [n for n in out.graph.node
                     if not (n.output and n.output[0] in folded)]
        del out.graph.node[:]
        out.graph.node.extend(remaining)
        for name, val in folded.items():
            out.graph.initializer.append(numpy_helper.from_array(np.asarray(val), name))
        inferred = _infer(out)
    return out, inferred


def _outer_scope_inputs(node) -> list:
    """Names a node's subgraphs (If / Loop / Scan bodies) read from the enclosing graph."""
    from onnx import AttributeProto

    graphs = []
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            graphs.append(a.g)
        elif a.type == AttributeProto.GRAPHS:
            graphs.extend(a.graphs)
    out: list = []
    for sg in graphs:
        local = {i.name for i in sg.input} | {i.name for i in sg.initializer}
        local |= {o for n in sg.node for o in n.output}
        for n in sg.node:
            for i in list(n.input) + _outer_scope_inputs(n):
                if i and i not in local and i not in out:
                    out.append(i)
    return out


def _bcast(quant: Quant, data) -> np.ndarray:
    s = np.asarray(quant.scale, np.float64)
    if s.size == 1 or quant.axis is None:
        return s.reshape(()) if s.size == 1 else s
    shape = [1] * np.ndim(data)
    shape[quant.axis] = -1
    return s.reshape(shape)


def _bcast_zp(quant: Quant, data) -> np.ndarray:
    z = np.asarray(quant.zero_point, np.float64)
    if z.size == 1 or quant.axis is None:
        return z.reshape(()) if z.size == 1 else z
    shape = [1] * np.ndim(data)
    shape[quant.axis] = -1
    return z.reshape(shape)


def _ints(v):
    return None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]


def _canonical_attrs(nd: Node, g: Graph) -> None:
    """Fill the format-neutral attributes the rules and the mapping read."""
    a = nd.attrs
    k = nd.kind
    x = g.tensor(nd.inputs[0]) if nd.inputs else None
    rank = len(x.shape) if x is not None and x.shape is not None else None
    if k in ("Conv", "ConvTranspose") and len(nd.inputs) > 1:
        w = g.tensor(nd.inputs[1])
        wshape = w.shape if w is not None else None
        kernel = a.get("kernel_shape") or (list(wshape[2:]) if wshape else None)
        a["kernel"] = tuple(int(v) for v in kernel) if kernel else None
        a["strides"] = tuple(a.get("strides") or [1] * len(a["kernel"] or []))
        group = int(a.get("group", 1))
        a["depthwise"] = bool(k == "Conv" and group > 1 and wshape is not None
                              and len(wshape) >= 2 and wshape[1] == 1)
        a["dilation"] = tuple(int(v) for v in (a.get("dilations") or ()))
    elif k in ("MaxPool", "AveragePool", "LpPool"):
        a["kernel"] = tuple(int(v) for v in a.get("kernel_shape", []))
        a["strides"] = tuple(a.get("strides") or [1] * len(a["kernel"]))
    elif k == "Pad":
        pads = a.get("pads") if (g.opset or 0) < 11 else g.const_value(
            nd.inputs[1] if len(nd.inputs) > 1 else "")
        pads = _ints(pads)
        axes = _ints(g.const_value(nd.inputs[3])) if len(nd.inputs) > 3 and nd.inputs[3] else None
        if pads is not None:
            n = len(pads) // 2
            pairs = list(zip(pads[:n], pads[n:]))
            if axes is not None and rank is not None:
                full = [(0, 0)] * rank
                for ax, p in zip(axes, pairs):
                    full[ax % rank] = p
                pairs = full
            a["pad_pairs"] = pairs
        a["pad_mode"] = a.get("mode", "constant")
        a["constant_value_input"] = nd.inputs[2] if len(nd.inputs) > 2 else ""
    elif k == "Transpose":
        a["perm"] = tuple(a.get("perm") or (range(rank)[::-1] if rank else ()))
    elif k == "Concat":
        axis = int(a.get("axis", 0))
        a["axis_norm"] = axis % rank if rank else axis
    elif k in ("Resize", "Upsample"):
        a["resize_mode"] = a.get("mode", "nearest")
    elif k == "Slice":
        if (g.opset or 0) < 10:
            a["ends_values"] = a.get("ends")
        elif len(nd.inputs) > 2:
            a["ends_values"] = _ints(g.const_value(nd.inputs[2]))
    elif k in ("ReduceMean", "ReduceMax") and rank == 4:
        axes = a.get("axes")
        if axes is None and len(nd.inputs) > 1 and nd.inputs[1]:
            axes = _ints(g.const_value(nd.inputs[1]))
        a["reduce_axes"] = tuple(sorted(int(v) % 4 for v in axes)) if axes else None
