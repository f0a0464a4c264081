"""Label-free weight preparation for int8: AdaRound and bias correction, fp32 model as teacher.

Contract: :func:`prepare_weights` takes the (folded, equalised) float model the export quantises
and unlabeled calibration images, and returns a copy whose every convolution weight already lies
on the per-channel int8 grid that **both** quantisers recompute from it, plus a report. Nothing is
learned that a converter could lose:

* the grid: per output channel, symmetric, zero point 0, ``scale = max|w| / 127``, integers in
  [-127, 127]. That is what onnxruntime's ``quantize_static`` (per_channel, QInt8,
  WeightSymmetric) and the TF Lite converter (full-integer, per-channel) both compute from a float
  kernel. The element that sets ``max|w|`` is pinned at +-127, so the recomputed scale equals
  ours and every other weight ``k * scale`` quantises back to exactly ``k`` (tests check this bit
  for bit on both artifacts). A library that picks its own weight scales (AIMET's
  ``to_onnx_qdq`` scales, pinned in ORT with ``TensorQuantOverrides``) cannot reach the TFLite
  artifact: the TF Lite converter takes no scale overrides and would re-round;
* the activations stay float here; their int8 ranges are calibrated afterwards by the usual
  moving-average MinMax on the prepared model, in both formats.

Levers (each measured on real photos by ``benchmarks/bench_int8.py``):

* ``nearest``: round to nearest (what the quantisers do by themselves; the report says so);
* ``adaround`` (Nagel et al. 2020, "Up or down? Adaptive rounding"): per layer, learn whether each
  weight rounds up or down by minimising the error of the layer's pre-activation output against
  the fp32 model (asymmetric reconstruction: the input comes from the model whose earlier layers
  are already rounded, the target from the fp32 model), with AIMET's defaults (Adam, lr 1e-3,
  regulariser 0.01, beta 20 -> 2, 20% warm start). Layers are rounded in execution order.
  Because every layer here is a convolution (a linear map of its input patches), the squared
  error depends on the inputs only through second moments: ``E|Wq xq - W xf|^2`` =
  ``tr(Wq A Wq') - 2 tr(Wq B W') + tr(W C W')`` with ``A = E[xq xq']``, ``B = E[xq xf']``,
  ``C = E[xf xf']`` over every patch of every calibration image. One pass collects them; each
  iteration then costs a (Cout x D x D) product instead of a forward pass, so 2k iterations over
  all pixels of every calibration image take seconds, not minutes;
* ``bias_correction`` (Nagel et al. 2019, empirical): after rounding, each conv's bias absorbs
  the mean output shift ``E[Wq xq] - E[W xf]`` (per channel, exact from the collected means), so
  the int8-weight model's pre-activation means equal fp32's on the calibration images. With it,
  AdaRound minimises the centred error (the covariances), the part bias correction cannot fix.

Why by hand: the maintained libraries (AIMET ``aimet-onnx``, AMD Quark, NNCF) work on an ONNX graph
and export their own weight scales; the TFLite artifact is converted from the PyTorch model by
onnx2tf and the TF Lite converter, so the rounding has to live in the float weights on the grid
the converter recomputes. See docs/int8.md.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import BlazeEarError

QMAX = 127  #: symmetric int8 weights: integers in [-127, 127] (ORT and TF Lite alike)
ROUNDING_METHODS = ("nearest", "adaround")
#: AdaRound hyper-parameters (AIMET's defaults)
ZETA, GAMMA = 1.1, -0.1
REG_PARAM = 0.01
BETA_RANGE = (20.0, 2.0)
WARM_START = 0.2
LR = 1e-3
#: images used to collect the layer statistics (the first ones of the calibration set)
MAX_IMAGES = 64
CHUNK = 16


@dataclass
class PreparedWeights:
    """The on-grid model and what was done to it."""

    model: object  # a copy of the input model, weights on the int8 grid, biases corrected
    report: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# the grid
# ---------------------------------------------------------------------------------------------
def weight_scales(w: np.ndarray) -> np.ndarray:
    """Per-output-channel (axis 0) symmetric int8 scale, ``max|w| / 127`` in float32 (0 -> 1)."""
    w = np.asarray(w, np.float32)
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    s = (amax / np.float32(QMAX)).astype(np.float32)
    return np.where(s > 0, s, np.float32(1.0)).astype(np.float32)


def to_grid(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Round-to-nearest integers and scales of ``w`` (what the quantisers do by themselves)."""
    s = weight_scales(w)
    q = np.clip(np.round(w / s.reshape(-1, *([1] * (w.ndim - 1)))), -QMAX, QMAX)
    return q.astype(np.int8), s


def from_grid(ints: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Float32 weights ``k * scale`` (per output channel, axis 0) from int8 integers."""
    return (ints.astype(np.float32) * scales.reshape(-1, *([1] * (ints.ndim - 1)))).astype(
        np.float32)


def on_grid_error(w: np.ndarray) -> float:
    """Largest ``|w / scale - round(w / scale)|`` (0 when ``w`` sits on its own int8 grid)."""
    w = np.asarray(w, np.float32)
    s = weight_scales(w).reshape(-1, *([1] * (w.ndim - 1)))
    r = w / s
    return float(np.abs(r - np.round(r)).max())


# ---------------------------------------------------------------------------------------------
# layers and their input statistics
# ---------------------------------------------------------------------------------------------
def conv_layers(model) -> list[tuple[str, str]]:
    """(conv name, name of the module whose input is this conv's input), in execution order.

    The regressor heads are applied through ``F.conv2d`` with their weights interleaved (see
    ``BlazeEar._regressor_conv``); their input is the input of the classifier beside them."""
    import torch

    order: list[str] = []
    names = {m: n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    hooks = [m.register_forward_pre_hook(lambda mod, inp: order.append(names[mod]))
             for m in names]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 128, 128))
    finally:
        for h in hooks:
            h.remove()
    partner = {"regressor_8_box": "classifier_8", "regressor_8_kp": "classifier_8",
               "regressor_16_box": "classifier_16", "regressor_16_kp": "classifier_16"}
    out = [(n, n) for n in order]
    out += [(n, p) for n, p in partner.items() if n in dict(model.named_modules())]
    return out


class _Stop(Exception):
    pass


def _capture(model, module_name: str, x):
    """The input of ``module_name`` for the batch ``x`` (the forward pass stops there)."""
    import torch

    mod = dict(model.named_modules())[module_name]
    got = {}

    def hook(m, inp):
        got["x"] = inp[0].detach()
        raise _Stop

    h = mod.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            model(x)
    except _Stop:
        pass
    finally:
        h.remove()
    return got["x"]


@dataclass
class _Moments:
    """Second moments of conv input patches: per group (1 for a dense conv, C for depthwise)."""

    A: np.ndarray  # (G, D, D) E[xq xq']
    B: np.ndarray  # (G, D, D) E[xq xf']
    C: np.ndarray  # (G, D, D) E[xf xf']
    mq: np.ndarray  # (G, D) E[xq]
    mf: np.ndarray  # (G, D) E[xf]


def _patches(conv, x):
    """(N, G, D, L) patches of ``x`` as ``conv`` sees them (G = groups)."""
    import torch.nn.functional as F

    p = F.unfold(x, conv.kernel_size, dilation=conv.dilation, padding=conv.padding,
                 stride=conv.stride)
    n, _, l = p.shape
    return p.reshape(n, conv.groups, -1, l)


def _moments(fp_model, q_model, conv_name, input_of, conv, calib,
             head_floor: float | None = None) -> _Moments:
    """Input-patch moments of ``conv`` over ``calib``. For a head conv (its input is a
    classifier's) and a ``head_floor``, only the cells where the fp32 classifier's best logit
    exceeds ``head_floor`` count: background cells reach logits of -1000s that the exported
    graph saturates at -clip anyway, and would otherwise dominate the error."""
    import torch

    g = conv.groups
    d = conv.in_channels // g * conv.kernel_size[0] * conv.kernel_size[1]
    acc = [torch.zeros(g, d, d, dtype=torch.float64) for _ in range(3)]
    mq = torch.zeros(g, d, dtype=torch.float64)
    mf = torch.zeros(g, d, dtype=torch.float64)
    count = 0
    for i in range(0, len(calib), CHUNK):
        xb = torch.from_numpy(np.ascontiguousarray(calib[i:i + CHUNK]))
        xf = _capture(fp_model, input_of, xb)
        pf = _patches(conv, xf)
        pq = _patches(conv, _capture(q_model, input_of, xb))
        if head_floor is not None and input_of.startswith("classifier"):
            cls = dict(fp_model.named_modules())[input_of]
            with torch.no_grad():
                keep = (cls(xf).amax(1) > head_floor).reshape(xf.shape[0], 1, 1, -1)
            pf, pq = pf * keep, pq * keep
            count -= int((~keep).sum())
        # (G, D, M) with M = N * L
        pf = pf.permute(1, 2, 0, 3).reshape(g, d, -1)
        pq = pq.permute(1, 2, 0, 3).reshape(g, d, -1)
        acc[0] += torch.bmm(pq, pq.transpose(1, 2)).double()
        acc[1] += torch.bmm(pq, pf.transpose(1, 2)).double()
        acc[2] += torch.bmm(pf, pf.transpose(1, 2)).double()
        mq += pq.sum(2).double()
        mf += pf.sum(2).double()
        count += pf.shape[2]
    count = max(count, 1)
    return _Moments(*(a.numpy() / count for a in acc), mq.numpy() / count, mf.numpy() / count)


# ---------------------------------------------------------------------------------------------
# per-layer optimisation
# ---------------------------------------------------------------------------------------------
def _quadratic(mom: _Moments, w: np.ndarray, centred: bool):
    """(A, W B', const) for :func:`_layer_error`, computed once per layer (``w``: (G, O, D))."""
    A, B, C = mom.A, mom.B, mom.C
    if centred:  # covariances: the error left once bias correction removed the mean shift
        A = A - mom.mq[:, :, None] * mom.mq[:, None, :]
        B = B - mom.mq[:, :, None] * mom.mf[:, None, :]
        C = C - mom.mf[:, :, None] * mom.mf[:, None, :]
    bw = np.matmul(w, np.swapaxes(B, 1, 2))  # (G, O, D): W B'
    const = (np.matmul(w, C) * w).sum(-1)
    return A, bw, const


def _layer_error(wq: np.ndarray, quad) -> np.ndarray:
    """Per output channel expected squared pre-activation error ``E|wq xq - w xf|^2``
    (``wq``: (G, O, D), O output channels per group) -> (G, O)."""
    A, bw, const = quad
    return (np.matmul(wq, A) * wq).sum(-1) - 2 * (wq * bw).sum(-1) + const


def _grouped(w: np.ndarray, groups: int) -> np.ndarray:
    """(O_total, Cin/G, k, k) -> (G, O, D)."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def adaround_layer(w: np.ndarray, mom: _Moments, groups: int, iterations: int,
                   centred: bool) -> tuple[np.ndarray, dict]:
    """AdaRound one conv weight (O, Cin/G, k, k) -> (int8 integers on the grid, stats).

    The loss is quadratic in the soft-rounded weights, so its gradient is written out
    (``2 (Wq A - W B')``) and Adam runs in NumPy: about 20 array operations per iteration."""
    s = weight_scales(w)
    sv = s.reshape(-1, *([1] * (w.ndim - 1)))
    floor = np.floor(w / sv)
    nearest = np.clip(np.round(w / sv), -QMAX, QMAX)
    # pin the element that sets max|w| (and hence the scale both quantisers recompute) at +-127
    flat = np.abs(w.reshape(w.shape[0], -1))
    pin = np.zeros(flat.shape, bool)
    pin[np.arange(flat.shape[0]), flat.argmax(1)] = True
    pin = pin.reshape(w.shape) & (np.abs(w) > 0)

    quad = _quadratic(mom, _grouped(w.astype(np.float64), groups), centred)
    st = _grouped(np.broadcast_to(sv, w.shape).astype(np.float64), groups)
    fl = _grouped(floor, groups)
    lo, hi = -QMAX - fl, QMAX - fl  # h outside these saturates the integer
    rest = (w / sv - floor).clip(0.0, 1.0)
    v = _grouped(-np.log((ZETA - GAMMA) / (rest.clip(1e-4, 1 - 1e-4) - GAMMA) - 1.0), groups)
    v = v.astype(np.float64).copy()
    m1, m2 = np.zeros_like(v), np.zeros_like(v)
    n_out = fl.shape[0] * fl.shape[1]
    warm = int(WARM_START * iterations)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for it in range(iterations):
        sig = 1.0 / (1.0 + np.exp(-v))
        hr = sig * (ZETA - GAMMA) + GAMMA
        h = np.clip(hr, 0.0, 1.0)
        hq = np.clip(h, lo, hi)
        wq = st * (fl + hq)
        # d mean_o(e_o) / d wq, then chain through the clamps and the rectified sigmoid
        g = (2.0 / n_out) * (np.matmul(wq, quad[0]) - quad[1])
        g = g * st * ((h > lo) & (h < hi))
        if it >= warm:
            frac = (it - warm) / max(1, iterations - warm)
            beta = BETA_RANGE[1] + 0.5 * (BETA_RANGE[0] - BETA_RANGE[1]) * (
                1 + math.cos(math.pi * frac))
            u = 2 * h - 1
            g = g - REG_PARAM * beta * np.abs(u) ** (beta - 1) * np.sign(u) * 2
        g = g * ((hr > 0) & (hr < 1)) * (ZETA - GAMMA) * sig * (1 - sig)
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        t = it + 1
        v -= LR * (m1 / (1 - b1 ** t)) / (np.sqrt(m2 / (1 - b2 ** t)) + eps)
    up = (v >= 0).reshape(w.shape)
    ints = np.clip(floor + up, -QMAX, QMAX)
    ints = np.where(pin, np.sign(w) * QMAX, ints)

    def err_of(k):
        return float(_layer_error(_grouped(k * sv, groups).astype(np.float64), quad).sum())

    e_near, e_ada = err_of(nearest), err_of(ints)
    kept = e_ada <= e_near
    if not kept:  # never worse than round-to-nearest on the calibration statistics
        ints = nearest
    return ints.astype(np.int8), {"error_nearest": e_near, "error_adaround": e_ada,
                                  "kept": bool(kept),
                                  "flipped": int((ints != nearest).sum())}


# ---------------------------------------------------------------------------------------------
# the whole model
# ---------------------------------------------------------------------------------------------
def prepare_weights(model, calib_nchw: np.ndarray, method: str = "adaround",
                    iterations: int = 2000, bias_correction: bool = False,
                    progress: bool = True, max_images: int = MAX_IMAGES) -> PreparedWeights:
    """A copy of ``model`` with every conv weight on its int8 grid (see the module docstring).

    ``method``: ``nearest`` or ``adaround`` (``iterations`` per layer); ``bias_correction``:
    fold each conv's mean output shift into its bias. ``calib_nchw``: (N, 3, 128, 128) float32
    images, unlabeled; the first ``max_images`` are used."""
    import torch

    if method not in ROUNDING_METHODS:
        raise BlazeEarError(f"--weight-rounding must be one of {', '.join(ROUNDING_METHODS)}")
    if method == "adaround" and iterations <= 0:
        raise BlazeEarError(f"--rounding-iterations must be positive, got {iterations}")
    calib = np.asarray(calib_nchw, np.float32)[:max_images]
    if len(calib) == 0:
        raise BlazeEarError("the calibration set is empty")
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: threads only contend on a shared machine
    try:
        return _prepare(model, calib, method, iterations, bias_correction, progress, t0)
    finally:
        torch.set_num_threads(threads)


def _prepare(model, calib, method, iterations, bias_correction, progress, t0):
    import torch
    from tqdm import tqdm

    fp = copy.deepcopy(model).eval()
    q = copy.deepcopy(model).eval()
    fp.set_output_clip(None, None)
    q_clip = (q.score_clip, q.regressor_clip)
    head_floor = -float(q.score_clip) if q.score_clip else -16.0
    q.set_output_clip(None, None)
    layers = conv_layers(fp)
    mods = dict(q.named_modules())
    rows = []
    bar = tqdm(layers, desc=f"weights: {method}" + (" + bias correction" if bias_correction
                                                     else ""),
               unit="layer", disable=not progress, leave=False, file=sys.stderr)
    for name, input_of in bar:
        conv = mods[name]
        w = conv.weight.detach().numpy().astype(np.float32)
        need_stats = method == "adaround" or bias_correction
        mom = (_moments(fp, q, name, input_of, conv, calib, head_floor) if need_stats
               else None)
        if method == "adaround":
            ints, st = adaround_layer(w, mom, conv.groups, iterations, bias_correction)
        else:
            ints, _ = to_grid(w)
            st = {}
        wq = from_grid(ints, weight_scales(w))
        row = {"layer": name, "shape": list(w.shape), **st}
        if bias_correction and conv.bias is not None:
            g = conv.groups
            wqg = _grouped(wq.astype(np.float64), g)
            wg = _grouped(w.astype(np.float64), g)
            shift = (np.einsum("god,gd->go", wqg, mom.mq)
                     - np.einsum("god,gd->go", wg, mom.mf)).reshape(-1)
            with torch.no_grad():
                conv.bias -= torch.from_numpy(shift.astype(np.float32))
            row["bias_shift_max"] = float(np.abs(shift).max())
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(wq))
        rows.append(row)
    bar.close()
    q.set_output_clip(*q_clip)
    report = {"method": method, "iterations": iterations if method == "adaround" else 0,
              "bias_correction": bias_correction, "images": int(len(calib)),
              "seconds": round(time.perf_counter() - t0, 2), "layers": rows,
              "grid": "per output channel, symmetric, scale = max|w| / 127, zero point 0"}
    if method == "adaround":
        report["flipped_vs_nearest"] = int(sum(r.get("flipped", 0) for r in rows))
        report["layers_kept_nearest"] = [r["layer"] for r in rows if not r.get("kept", True)]
    return PreparedWeights(q, report)


def weight_overrides(onnx_path) -> dict:
    """ORT ``TensorQuantOverrides`` pinning each Conv weight of ``onnx_path`` to its own
    per-channel grid (axis 0, scale ``max|w| / 127``, zero point 0): a guard that ORT quantises
    the prepared weights on exactly the grid they were prepared for."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(onnx_path))
    inits = {i.name: i for i in m.graph.initializer}
    out = {}
    for n in m.graph.node:
        if n.op_type == "Conv" and n.input[1] in inits:
            w = numpy_helper.to_array(inits[n.input[1]])
            s = weight_scales(w)
            out[n.input[1]] = [{"axis": 0, "scale": np.float32(v), "zero_point": np.int8(0)}
                               for v in s]
    return out
