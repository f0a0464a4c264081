"""Quantisation-aware fine-tuning distilled from the fp32 model (label-free, opt-in).

What it fixes: after AdaRound the int8 *weights* are nearly lossless, but the int8 *activations*
still move scores near the decision threshold, so int8 emits detections fp32 does not (precision
about 0.87 against fp32 on real photos, docs/int8.md). Rounding cannot see that error: it is made
by the activation grids downstream. Fine-tuning the float weights through a model that rounds
exactly where the exported int8 graphs round lets the weights absorb it.

The simulated graph (:class:`FakeQuantModel`) quantises at the tensors where onnxruntime's QDQ
export and the TF Lite converter both put a QuantizeLinear / an int8 tensor (checked against the
int8 ONNX by a test):

* the input, with the export's fixed input range;
* every convolution weight, per output channel, symmetric, ``scale = max|w| / 127``, integers in
  [-127, 127] (the grid both quantisers recompute, see :mod:`.rounding`);
* the stem's ReLU output (the conv before it is fused), each block's depthwise and pointwise
  outputs, and each block's output after Add + ReLU (fused);
* the four head outputs: scores with the export's fixed score range, regressors calibrated.

Activation ranges are not learned: the exported artifacts recalibrate them on the final weights
with the mean of per-image minima/maxima (``movavg``), so the simulation uses exactly that
statistic, recomputed on the calibration images (weights on the grid, activations float, as the
quantisers see the model) every ``refresh`` steps. Asymmetric int8: ``scale = (hi - lo) / 255``,
``zero point = round(-128 - lo / scale)`` with ``lo <= 0 <= hi`` (onnxruntime's formula).

Training: Adam on every conv weight and bias, cosine learning-rate decay, batches of the
calibration images with label-free augmentation (flip, scale/shift, brightness/contrast); the
teacher is the fp32 model on the same augmented batch. Loss: the KL divergence between the
teacher's and the student's per-anchor face probabilities (it weighs anchors near the decision
threshold, where a flip is an extra or a missed detection) plus the squared regressor error on
the anchors the teacher scores >= ``RELEVANT``. Gradients pass the rounding straight through
(the straight-through estimator of ``torch.fake_quantize_*``, zero outside the int8 range).
At the end every weight is rounded to its grid (:func:`.rounding.to_grid`), so the quantisers
reproduce the integers bit for bit, as after AdaRound.

Why by hand: AIMET's ``aimet-torch`` QAT and PyTorch's own ``torch.ao`` QAT simulate their own
quantisation schemes (fused conv+bn observers, their own range learning) and export their own
scales; neither reproduces the two converters' moving-average ranges, and the learned integers
must reach the TFLite artifact through float weights on the grid. The simulation above is small
(``torch.fake_quantize_per_tensor_affine`` / ``_per_channel_affine`` do the rounding) and is
checked against the int8 ONNX artifact's own quantisation parameters.
"""

from __future__ import annotations

import copy
import math
import sys
import time

import numpy as np

from ..errors import BlazeEarError
from ..postprocess import SPLIT_OUTPUTS
from .rounding import QMAX, PreparedWeights, from_grid, to_grid, weight_scales

#: anchors whose teacher probability reaches this count in the regressor loss
RELEVANT = 0.1
#: weight of the regressor loss (pixels^2 of the 128x128 input) against the score KL (nats)
REG_WEIGHT = 0.002
BATCH = 16
LR = 1e-4
REFRESH = 50  #: steps between two re-estimations of the activation ranges
#: fine-tuning steps of the default ``export --int8`` (after AdaRound): the fewest measured that
#: bring built-in-calibration face AP50 on real photos within 0.02 of fp32 (docs/int8.md)
QAT_DEFAULT = 150
QAT_THOROUGH = 600  #: fine-tuning steps of ``export --thorough``


# ---------------------------------------------------------------------------------------------
# the simulated int8 graph
# ---------------------------------------------------------------------------------------------
def activation_qparams(lo: float, hi: float) -> tuple[float, int]:
    """onnxruntime's asymmetric int8 (scale, zero point) for the range (lo, hi)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo <= 0:
        return 1.0, 0
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return scale, zp


def quant_points(model) -> list[str]:
    """Names of the modules whose output the int8 graphs quantise, in execution order
    (``""`` is the model input; the four head outputs are handled separately)."""
    from ..model import BlazeBlock

    names = [""]
    mods = dict(model.named_modules())
    if "backbone1.1" in mods:  # the stem's ReLU (its conv is fused into it)
        names.append("backbone1.1")
    for n, m in model.named_modules():
        if isinstance(m, BlazeBlock):
            if not hasattr(m, "convs"):
                raise BlazeEarError("quantisation-aware fine-tuning needs the folded model "
                                    "(BatchNorm folded into the convolutions)")
            names += [f"{n}.convs.0", f"{n}.convs.1", n]
    return names


class FakeQuantModel:
    """A model whose forward pass rounds where the int8 artifacts round (see module doc).

    ``mode``: ``"float"`` (the plain model), ``"observe"`` (weights on the grid, activations
    float, per-image minima/maxima recorded) or ``"quant"`` (weights and activations rounded).
    """

    def __init__(self, model, score_range=(-16.0, 16.0), input_range=(-1.0, 1.0)):
        import torch

        self.model = model
        self.score_range = (float(score_range[0]), float(score_range[1]))
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.points = quant_points(model)
        self.mode = "quant"
        self.ranges: dict[str, tuple[float, float]] = {}
        self._obs: dict[str, list] = {}
        self.convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        self._hooks = []
        mods = dict(model.named_modules())
        for name in self.points[1:]:
            self._hooks.append(mods[name].register_forward_hook(self._hook(name)))
        self._orig = {}

    # -- rounding ------------------------------------------------------------------------------
    def _act(self, name, x):
        import torch

        if self.mode == "observe":
            flat = x.detach().reshape(x.shape[0], -1)
            self._obs.setdefault(name, []).append(
                torch.stack([flat.min(1).values, flat.max(1).values], 1))
            return x
        if self.mode != "quant":
            return x
        scale, zp = activation_qparams(*self.ranges[name])
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, -128, 127)

    def _hook(self, name):
        def hook(mod, inp, out):
            return self._act(name, out)
        return hook

    def _weights_on_grid(self):
        """Swap every conv weight for its fake-quantised version (straight-through)."""
        import torch

        self._orig = {}
        for conv in self.convs:
            w = conv.weight
            s = torch.from_numpy(weight_scales(w.detach().numpy()))
            zp = torch.zeros(w.shape[0], dtype=torch.int32)
            wq = torch.fake_quantize_per_channel_affine(w, s, zp, 0, -QMAX, QMAX)
            self._orig[conv] = w
            del conv.weight
            conv.weight = wq  # a plain tensor attribute for this forward pass

    def _restore(self):
        for conv, w in self._orig.items():
            del conv.weight
            conv.weight = w
        self._orig = {}

    def __call__(self, x):
        import torch

        if self.mode == "float":
            return self.model(x)
        if self.mode == "quant":
            s, z = activation_qparams(*self.input_range)
            x = torch.fake_quantize_per_tensor_affine(x, s, z, -128, 127)
        self._weights_on_grid()
        try:
            out = list(self.model(x))
        finally:
            self._restore()
        for k, spec in enumerate(SPLIT_OUTPUTS):
            name = spec.name
            if spec.kind == "scores":
                lo, hi = self.score_range
                out[k] = out[k].clamp(lo, hi)
                if self.mode == "quant":
                    sc, zp = activation_qparams(lo, hi)
                    out[k] = torch.fake_quantize_per_tensor_affine(out[k], sc, zp, -128, 127)
            else:
                out[k] = self._act(name, out[k])
        return tuple(out)

    def calibrate(self, nchw: np.ndarray, chunk: int = 16) -> None:
        """Activation ranges as the quantisers compute them on the current weights: the mean
        over images of each tensor's per-image minimum and maximum."""
        import torch

        mode, self.mode, self._obs = self.mode, "observe", {}
        try:
            with torch.no_grad():
                for i in range(0, len(nchw), chunk):
                    self(torch.from_numpy(np.ascontiguousarray(nchw[i:i + chunk])))
        finally:
            self.mode = mode
        for name, parts in self._obs.items():
            mm = torch.cat(parts).double().mean(0)
            self.ranges[name] = (float(mm[0]), float(mm[1]))
        self._obs = {}

    def remove(self):
        for h in self._hooks:
            h.remove()
        self._hooks = []


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def augment(x, gen):
    """Label-free augmentation of a (N, 3, H, W) batch in [-1, 1]: horizontal flip, scale
    0.75-1.33 and shift up to 15% (outside filled with 0, the letterbox grey), brightness and
    contrast. The teacher sees the same images, so no label is needed."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    s = torch.exp((torch.rand(n, generator=gen) * 2 - 1) * math.log(4 / 3))
    t = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.15
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / s
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    a = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.3
    b = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.2
    return (x * a + b).clamp(-1, 1)


def distill_loss(student, teacher, score_range):
    """(KL of the per-anchor face probabilities, regressor squared error on relevant anchors),
    both summed over anchors and averaged over the batch."""
    import torch
    import torch.nn.functional as F

    kl, reg = 0.0, 0.0
    lo, hi = score_range
    n = teacher[0].shape[0]
    for r_s, c_s, r_t, c_t in ((student[0], student[1], teacher[0], teacher[1]),
                               (student[2], student[3], teacher[2], teacher[3])):
        t = c_t.clamp(lo, hi)
        p = torch.sigmoid(t)
        # KL(p || q) for Bernoulli p (teacher) and q (student), from logits
        kl = kl + (F.binary_cross_entropy_with_logits(c_s, p, reduction="sum")
                   - F.binary_cross_entropy_with_logits(t, p, reduction="sum"))
        keep = p * (p >= RELEVANT).to(r_s.dtype)  # weighted by the teacher's confidence
        reg = reg + (((r_s - r_t) ** 2) * keep).sum()
    return kl / n, reg / n


def finetune(teacher_model, student_model, calib_nchw: np.ndarray, steps: int,
             score_range=(-16.0, 16.0), input_range=(-1.0, 1.0), lr: float = LR,
             batch: int = BATCH, refresh: int = REFRESH, seed: int = 0,
             extra_nchw: np.ndarray | None = None, augmentation: bool = True,
             progress: bool = True) -> PreparedWeights:
    """Fine-tune a copy of ``student_model`` (weights on the grid, e.g. after AdaRound) through
    the simulated int8 graph, distilled from ``teacher_model`` (fp32) on the unlabeled
    ``calib_nchw`` images; returns the copy with every conv weight on its int8 grid.

    The activation ranges always come from ``calib_nchw`` (what the quantisers will see);
    ``extra_nchw`` (optional, unlabeled) only adds images to distil on."""
    if steps <= 0:
        raise BlazeEarError(f"--qat-steps must be positive, got {steps}")
    calib = np.asarray(calib_nchw, np.float32)
    if len(calib) == 0:
        raise BlazeEarError("the calibration set is empty")
    # torch's own thread count (OMP_NUM_THREADS): alone on 2 cores 0.23 s/step with two threads,
    # 0.41 s with one; but two processes side by side need OMP_NUM_THREADS=1 each (1.9 s/step
    # each with two threads: they contend)
    return _finetune(teacher_model, student_model, calib, steps, score_range, input_range,
                     lr, batch, refresh, seed, extra_nchw, augmentation, progress,
                     time.perf_counter())


def _finetune(teacher_model, student_model, calib, steps, score_range, input_range, lr, batch,
              refresh, seed, extra_nchw, augmentation, progress, t0):
    import torch
    from tqdm import tqdm

    teacher = copy.deepcopy(teacher_model).eval()
    student = copy.deepcopy(student_model).eval()  # eval: no dropout/BN; gradients still flow
    for m in (teacher, student):
        m.set_output_clip(None, None)  # the simulation clips the scores itself
    for p in teacher.parameters():
        p.requires_grad_(False)
    fq = FakeQuantModel(student, score_range, input_range)
    params = [p for m in student.modules() if isinstance(m, torch.nn.Conv2d)
              for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    gen = torch.Generator().manual_seed(seed)
    train = calib if extra_nchw is None or not len(extra_nchw) else np.concatenate(
        [calib, np.asarray(extra_nchw, np.float32)])
    data = torch.from_numpy(calib)
    pool = torch.from_numpy(train)
    before = _evaluate(fq, teacher, data, score_range)
    history = []
    bar = tqdm(range(steps), desc="int8 fine-tuning", unit="step", disable=not progress,
               leave=False, file=sys.stderr)
    try:
        for k in bar:
            if k % refresh == 0:
                fq.calibrate(calib)
            idx = torch.randint(0, len(pool), (min(batch, len(pool)),), generator=gen)
            x = augment(pool[idx], gen) if augmentation else pool[idx]
            with torch.no_grad():
                t_out = teacher(x)
            kl, reg = distill_loss(fq(x), t_out, score_range)
            loss = kl + REG_WEIGHT * reg
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if k % 10 == 0 or k == steps - 1:
                history.append((k, float(kl.detach()), float(reg.detach())))
                bar.set_postfix(kl=f"{history[-1][1]:.3f}", reg=f"{history[-1][2]:.1f}")
    finally:
        bar.close()
    with torch.no_grad():
        for conv in fq.convs:
            w = conv.weight.detach().numpy().astype(np.float32)
            conv.weight.copy_(torch.from_numpy(from_grid(*to_grid(w))))
    fq.calibrate(calib)
    after = _evaluate(fq, teacher, data, score_range)
    fq.remove()
    for p in student.parameters():
        p.requires_grad_(False)
    student.set_output_clip(*(student_model.score_clip, student_model.regressor_clip))
    report = {"method": "qat", "steps": int(steps), "lr": lr, "batch": int(batch),
              "augmentation": bool(augmentation),
              "images": int(len(calib)), "extra_images": int(len(train) - len(calib)),
              "seconds": round(time.perf_counter() - t0, 2),
              "loss": "KL(face probability) + %g x p x regressor px^2 (teacher p >= %g)"
                      % (REG_WEIGHT, RELEVANT),
              "simulated_on_calibration": {"before": before, "after": after},
              "history": [{"step": s, "kl": round(a, 5), "reg": round(b, 3)}
                          for s, a, b in history[:: max(1, len(history) // 20)]]}
    return PreparedWeights(student, report)


def _evaluate(fq, teacher, data, score_range) -> dict:
    """Distillation loss of the simulated int8 model on the (unaugmented) calibration images."""
    import torch

    if not fq.ranges:
        fq.calibrate(data.numpy())
    kl_t, reg_t, n = 0.0, 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), 32):
            x = data[i:i + 32]
            kl, reg = distill_loss(fq(x), teacher(x), score_range)
            kl_t += float(kl) * len(x)
            reg_t += float(reg) * len(x)
            n += len(x)
    return {"kl": round(kl_t / n, 5), "reg_px2": round(reg_t / n, 3)}
