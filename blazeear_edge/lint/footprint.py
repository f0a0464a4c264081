"""Footprint of a model on the STM32N6: MACs, parameters, the weight bytes ST writes to flash, and
activation memory (a liveness lower bound, and an estimate of the RAM pools ST will use).

What the figures are, measured against 12 real ST Edge AI compiles (``../shared/docs/
st-n6-compiles.md``, "Footprint against ST"; 7 of them with their model files in
``../shared/data/st-n6-compiles/truth.json``):

* **weights**: every stored data constant at its stored type (int8 weights, int32 biases, PRelu
  slopes, a Concat's zero block). That is the payload of ST's flash image
  (``network_data.xSPI2.bin`` / ``*_data.hex``); ST's image was 0.96-1.31x of it over the 12
  compiles (ST Edge AI 4.0 branch on BlazeFace: 1.005x), and 1.43x for the same BlazeFace file
  compiled by 2.2 (154,440 B against 108,520 B): 2.x builds add a layout overhead that depends on
  the compiler version. ``WEIGHTS_ST_BAND`` spans 0.96-1.44x.
* **activations**: the peak of live activation bytes in execution order, with no in-place reuse.
  ST's RAM pools (the sum of the used ``npuRAM*``/``cpuRAM*`` pools, I/O buffers included) were
  0.959-2.42x of it, with a median of 1.3x: the peak is a lower bound (to 4%), and the RAM-pool
  estimate is ``RAM_POOL_FACTOR`` x the peak, with that band.

**The flash image by compiler version** (:func:`st_weight_image_bytes`, ``ST_IMAGE_RULES``).
``LintReport.weights_bytes`` is the payload above unless the compile's ST Edge AI version is
known to be 2.x, where the image is laid out differently. Read from ST's generated code
(``LL_ATON_Input_Buffers_Info_*``: every ``is_param = 1`` buffer with its xSPI2 offsets):

* ``STMicroelectronics/x-cube-n6-ai-face-landmarks`` ``Model/face_detector.c`` @bc424814
  (ST Edge AI 2.2, atonn-v1.1.1-14; BlazeFace front, the same .tflite as truth.json's 4.0-branch
  compile): the 154,440 B pool is the int8 kernels, the 5x5 stem split into two ``submask``
  buffers (same bytes), 11 ``pad_kern`` vectors (264 B) and 38 B of alignment, and **no conv
  bias buffer**; the thirteen 3x3 depthwise kernels with C % 8 == 0 are stored
  ``*_weights_inflated_*`` with shape (C, 8, 3, 3), i.e. 8x their bytes, the three with C = 28,
  36, 42 as (C, 1, 3, 3). Payload - biases + 7 x those kernels + pad kernels = 154,386 B.
* same repo ``Model/face_landmark.c`` @bc424814 (2.2, the ONNX face_landmarks_v1_192 of
  truth.json): no bias buffers either, and all eighteen 3x3 depthwise kernels (C = 16..128,
  stride 1 and 2) inflated to (C, 4, 3, 3): 4x, not 8x.
* ``JJtan2002/x-cube-n6-ai-hand-landmarks`` ``Model/hand_landmark.c`` / ``palm_detector.c``
  @9d6e0cbf (2.1, atonn-v1.1.0-31; palm is truth.json's compile, pool 1.07 MB): 5x5 depthwise
  kernels are split into (C, 1, 3, 5) + (C, 1, 2, 5) ``submask`` buffers, not inflated.
* ``STMicroelectronics/STM32N6-GettingStarted-PoseEstimation`` ``Model/NUCLEO-N657X0-Q/network.c``
  @83ccda1b (4.0 branch, movenet 192): inflation there is per layer (e.g. (192, 2, 3, 3),
  (576, 2, 3, 3)), so no rule is applied to 3.x/4.x, whose BlazeFace image is the payload
  (1.005x).

**Per-channel requantisation tables, every version** (:func:`st_channel_table_bytes`,
``ST_CHANNEL_TABLE_*``). A convolution (depthwise included) with more than 512 output channels
gets two extra parameter buffers, ``<conv>_mul_scale_*`` and ``<conv>_off_bias_*``: 16-bit
fixed-point (``DataType_FXP``, ``nbits = 16``) tensors of shape (1, 1, W_out, C_out), i.e. one
scale and one offset per output channel repeated along the output width, 4 x W_out x C_out bytes
per convolution. Read from:

* ``STMicroelectronics/STM32N6-GettingStarted-PoseEstimation`` ``Model/NUCLEO-N657X0-Q/network.c``
  @83ccda1b (4.0 branch, movenet 192): 26 such buffers, 321,024 B, on the 13 convolutions with
  C_out = 576 (W 12, and 6 after the stride-2 depthwise), 960 (W 6) and 1280 (W 6); none on its
  384-channel layers or on anything smaller. Movenet's ST Edge AI 2.1 image (truth.json,
  3,065,857 B) is the 2.x rule above plus the same 321,024 B to 577 B (0.02 %).
* ``STMicroelectronics/x-cube-n6-ai-face-landmarks`` ``Model/face_landmark.c`` @bc424814 (2.2):
  ``Conv2D_387_mul_scale_342`` / ``_off_bias_347``, (936, 1, 1) FXP16, 1,872 B each, on the
  linear 936-channel output convolution (so not only after ReLU6); none on its <= 128-channel
  layers.

No table was seen at C_out <= 384 and one always was at C_out >= 576; 385..512 is not observed
(yamnet's 512-channel layers would tell), and the linter takes the conservative side (> 512).
An older pre-release differs: ``JJtan2002/x-cube-n6-ai-hand-landmarks`` ``Model/hand_landmark.c``
@5cfe4c1a (STAI-2.0-RC1) has (C, 1, 1) ``mul_scale`` (FXP16) + ``off_bias`` (FXP32) on every
convolution, 40 channels up; that scheme is not modelled.
"""

from __future__ import annotations

import math

import numpy as np

from .graph import Graph, Node
from .placement import qoperator_base

#: ST's flash image / the linter's weight bytes: min and max over the compiles of the doc
WEIGHTS_ST_BAND = (0.96, 1.44)
#: the same with the compile's 2.x version given (the 2.x image rule applied): ST / lint over the
#: six shipped 2.x compiles was 0.996-1.068 (yamnet 1.068) and 1.00-1.05 on the rebuilt deeplab,
#: stft and hand_landmark (benchmarks/lint_vs_st.py, lint_unseen.py)
WEIGHTS_ST_BAND_2X = (0.99, 1.08)
#: ST's used RAM pools / the linter's activation peak: median, and min / max over the 12 compiles
RAM_POOL_FACTOR = 1.3
RAM_POOL_BAND = (0.95, 2.42)

PARAM_KINDS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "PRelu",
                         "BatchNormalization", "InstanceNormalization", "LayerNormalization",
                         "Add", "Sub", "Mul", "Div", "Max", "Min"})


#: ST Edge AI 2.x flash-image rules: (major version, model format) -> depthwise inflation
#: factor (3x3 depthwise kernels with C % factor == 0 are stored factor x; conv biases are not in
#: the image). TFLite: face_detector.c (2.2) shows 8; mobilenet_v1 and st_yolo_x (2.1) then land
#: within 0.2 % of ST's image. ONNX: face_landmark.c (2.2) shows 4. See the module docstring.
ST_IMAGE_RULES = {(2, "tflite"): 8, (2, "onnx"): 4}

#: Per-channel requantisation tables (every version, see the module docstring): a convolution with
#: more than this many output channels stores a mul_scale and an off_bias table of
#: ``ST_CHANNEL_TABLE_BYTES`` x W_out x C_out bytes each (FXP16). Seen: none at <= 384
#: channels, always at >= 576 (movenet network.c 4.0, face_landmark.c 2.2).
ST_CHANNEL_TABLE_MAX_PLAIN = 512
ST_CHANNEL_TABLE_BYTES = 2


def _major(version: str | None) -> int | None:
    """Major ST Edge AI version of ``version`` ("x.y"), None when not given."""
    from .options import parse_version

    v = parse_version(version) if version else None
    return v[0] if v else None


def st_channel_table_bytes(g: Graph) -> int:
    """Bytes of ST's per-channel ``mul_scale`` / ``off_bias`` tables (module docstring): for every
    convolution with more than ``ST_CHANNEL_TABLE_MAX_PLAIN`` output channels, two FXP16 tensors of
    W_out x C_out values (W_out the output width; 1 for a 1 x 1 output)."""
    total = 0
    for n in g.nodes:
        if (qoperator_base(n.op) or n.kind) != "Conv" or not n.outputs:
            continue
        y = g.tensor(n.outputs[0])
        if y is None or not y.shape or len(y.shape) != 4 or _numel_of_shape(y.shape) is None:
            continue
        c, w = y.shape[g.channel_axis(4)], y.shape[-1 if g.layout == "NCHW" else 2]
        if c > ST_CHANNEL_TABLE_MAX_PLAIN:
            total += 2 * ST_CHANNEL_TABLE_BYTES * int(w) * int(c)
    return int(total)


def st_weight_image_bytes(g: Graph, payload: int, version: str | None) -> int:
    """ST's flash image for the compile's ST Edge AI ``version`` ("x.y"; None: not known).

    Every version: the payload plus the per-channel tables of :func:`st_channel_table_bytes`
    (seen in 2.1, 2.2 and 4.0-branch builds). 2.x (``ST_IMAGE_RULES``) also drops the int32 conv
    biases and adds (factor - 1) x the bytes of every 3x3 depthwise kernel whose channel count the
    factor divides. No other version rule was read from ST's code.
    """
    tables = st_channel_table_bytes(g)
    factor = ST_IMAGE_RULES.get((_major(version), g.format))
    if factor is None:
        return int(payload + tables)
    biases: dict[str, int] = {}
    extra: dict[str, int] = {}
    for n in g.nodes:
        if n.kind != "Conv" or len(n.inputs) < 2:
            continue
        b = g.tensor(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
        if b is not None and b.const and b.dtype == "int32" and b.nbytes:
            biases[n.inputs[2]] = b.nbytes
        w = g.tensor(n.inputs[1])  # 3x3 depthwise kernels whose channels the factor divides
        c = (w.shape[3 if g.format == "tflite" else 0]
             if w is not None and w.const and w.shape and len(w.shape) == 4 else 0)
        if (c and n.attrs.get("depthwise") and n.attrs.get("kernel") == (3, 3)
                and c % factor == 0 and w.nbytes):
            extra[n.inputs[1]] = (factor - 1) * w.nbytes
    return int(payload - sum(biases.values()) + sum(extra.values()) + tables)


def weights_band(version: str | None) -> tuple[float, float]:
    """ST's image / lint's weight figure, observed band, for a compile of ``version``."""
    return WEIGHTS_ST_BAND_2X if _major(version) == 2 else WEIGHTS_ST_BAND


def footprint_dict(weights_bytes: int, act_peak: int, version: str | None = None) -> dict:
    """The ``footprint`` block of the JSON report: each figure with what it is."""
    lo, hi = weights_band(version)
    rlo, rhi = RAM_POOL_BAND
    return {
        "weights_bytes": int(weights_bytes),
        "weights_st_image_band_bytes": [int(math.floor(lo * weights_bytes)),
                                        int(math.ceil(hi * weights_bytes))],
        "activations_lower_bound_bytes": int(act_peak),
        "ram_pools_estimate_bytes": int(round(RAM_POOL_FACTOR * act_peak)),
        "ram_pools_band_bytes": [int(math.floor(rlo * act_peak)), int(math.ceil(rhi * act_peak))],
    }
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
