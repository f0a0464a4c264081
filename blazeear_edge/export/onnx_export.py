"""PyTorch -> ONNX: static 1x3x128x128, raw head outputs, BatchNorm folded, simplified, checked.

Graph clean-ups after onnxsim, each for an ST Edge AI Core rule (see ``../shared/docs/st-edge-ai.md``):

* spatial zero Pads are fused into the following Conv's ``pads`` (onnxsim does this);
* a Pad's zero ``constant_value`` input is dropped (ST fails on a scalar initializer there:
  "missing shape or size for value=Pad_*_constant_value"); the ONNX default is 0;
* Constant nodes become initializers (ST and the quantiser handle initializers best).
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import BlazeEarError
from ..model import CHANNEL_PAD_MODES, OUTPUT_NAMES, HeadMaps, MediaPipeLayout

OPSET_RANGE = (11, 20)  # ST supports 7..20; torch's exporter needs >= 11 for this graph
INPUT_NAME = "input"
CONCAT_NAMES = ("regressors", "classificators")


def output_names(outputs: str) -> tuple:
    return OUTPUT_NAMES if outputs == "split" else CONCAT_NAMES


def _drop_zero_pad_values(m) -> int:
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    values[n.output[0]] = numpy_helper.to_array(a.t)
    count = 0
    for n in m.graph.node:
        if n.op_type == "Pad" and len(n.input) >= 3 and n.input[2]:
            v = values.get(n.input[2])
            if v is not None and np.size(v) == 1 and float(np.asarray(v).reshape(())) == 0.0:
                del n.input[2]
                count += 1
    return count


def _constants_to_initializers(m) -> int:
    keep, count = [], 0
    for n in m.graph.node:
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            t = copy.deepcopy(n.attribute[0].t)
            t.name = n.output[0]
            m.graph.initializer.append(t)
            count += 1
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return count


def _remove_unused_initializers(m) -> None:
    used = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
    keep = [i for i in m.graph.initializer if i.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)


def export_onnx(model, path: str | os.PathLike | None = None, *, opset: int = 17,
                outputs: str = "split", channel_pad: str = "pad", layout: str = "anchors"):
    """Export a folded BlazeEar to ONNX and return the checked ``onnx.ModelProto``.

    ``outputs``: ``split`` (four head outputs) or ``concat`` (MediaPipe's two tensors).
    ``channel_pad``: ``pad``, ``concat`` or ``conv`` (numerically identical skip widening).
    ``layout`` (split outputs only): ``anchors`` ends each head in Transpose + Reshape to
    (1, anchors, C); ``nchw`` returns the raw head maps (1, A * C, H, W) with no Transpose, which
    ST's documented mapping keeps on the NPU.
    """
    import onnx
    import onnxsim
    import torch

    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        raise BlazeEarError(f"opset (--opset) must be within {OPSET_RANGE[0]}..{OPSET_RANGE[1]} "
                            f"(ST Edge AI Core supports ONNX opsets 7..20), got {opset}")
    if outputs not in ("split", "concat"):
        raise BlazeEarError(f"outputs (--outputs) must be split or concat, not {outputs!r}")
    if channel_pad not in CHANNEL_PAD_MODES:
        raise BlazeEarError(f"channel_pad (--channel-pad) must be one of {CHANNEL_PAD_MODES} or auto")
    if getattr(model, "batchnorm", False):
        raise ValueError("fold BatchNorm before export (weights.load_model(..., fold=True))")
    net = copy.deepcopy(model).eval().set_channel_pad_mode(channel_pad)
    if layout not in ("anchors", "nchw"):
        raise BlazeEarError(f"onnx_layout (--onnx-layout) must be anchors or nchw, not {layout!r}")
    if outputs == "concat":
        net = MediaPipeLayout(net)
    elif layout == "nchw":
        net = HeadMaps(net)
    x = torch.zeros(1, 3, 128, 128)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), buf, input_names=[INPUT_NAME],
                          output_names=list(output_names(outputs)), opset_version=opset,
                          dynamo=False, do_constant_folding=True)
    m = onnx.load_from_string(buf.getvalue())
    m, ok = onnxsim.simplify(m)
    if not ok:
        raise BlazeEarError("onnxsim could not validate the simplified model")
    _drop_zero_pad_values(m)
    _constants_to_initializers(m)
    _remove_unused_initializers(m)
    m.producer_name = "blazeear-edge"
    onnx.checker.check_model(m, full_check=True)
    if path is not None:
        onnx.save(m, str(path))
    return m


def op_counts(m) -> dict:
    from collections import Counter

    return dict(Counter(n.op_type for n in m.graph.node))


def load_onnx(path: str | os.PathLike):
    import onnx

    p = Path(path)
    if not p.is_file():
        raise BlazeEarError(f"ONNX model not found: {p}")
    try:
        return onnx.load(str(p))
    except Exception as exc:  # noqa: BLE001
        raise BlazeEarError(f"{p}: not a readable ONNX model ({exc})") from None
