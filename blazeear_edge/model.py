"""BlazeEar: the BlazeFace "front" (short-range) topology, 128x128 RGB in, 896 anchors out.

Two variants share one class:

* folded (``batchnorm=False``): conv biases, no BatchNorm. MediaPipe's TFLite weights,
  BlazeFace-PyTorch ``.pth`` and BlazeEar v1 checkpoints load into it. This is what gets exported.
* trainable BatchNorm (``batchnorm=True``): each BlazeBlock is ``dw_conv -> bn1 -> pw_conv -> bn2``
  with bias-free convs (BlazeEar v2 key layout). :func:`fold_batchnorm` turns it into the folded
  variant.

State-dict keys follow BlazeFace-PyTorch (``backbone1.0`` stem conv, ``backbone1.2..12`` and
``backbone2.0..4`` blocks) with BlazeEar's split regressor heads (``regressor_8_box`` 88->8,
``regressor_8_kp`` 88->24, ``regressor_16_box`` 96->24, ``regressor_16_kp`` 96->72).

``forward`` returns the four raw head outputs, post-processing removed::

    regressors_16x16 (1, 512, 16), scores_16x16 (1, 512, 1),
    regressors_8x8   (1, 384, 16), scores_8x8   (1, 384, 1)

Anchor index = (row * W + col) * A + a, which is the MediaPipe order; :func:`to_mediapipe_layout`
concatenates them into ``(1, 896, 16)`` + ``(1, 896, 1)``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

#: (in, out, stride) of every BlazeBlock, in order.
BACKBONE1 = [(24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2),
             (48, 56, 1), (56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1)]
BACKBONE2 = [(88, 96, 2), (96, 96, 1), (96, 96, 1), (96, 96, 1), (96, 96, 1)]

#: Output names, in the order ``forward`` returns them. The export manifest records them.
OUTPUT_NAMES = ("regressors_16x16", "scores_16x16", "regressors_8x8", "scores_8x8")

#: Anchors per cell and grid size of the two heads.
HEADS = {"16x16": {"grid": 16, "anchors_per_cell": 2, "channels": 88},
         "8x8": {"grid": 8, "anchors_per_cell": 6, "channels": 96}}

NUM_ANCHORS = 896
NUM_COORDS = 16
NUM_KEYPOINTS = 6
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                  "left_ear_tragion")

#: Channel-padding implementations (the exporter picks one; all are numerically identical).
CHANNEL_PAD_MODES = ("pad", "concat", "conv")


class BlazeBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1, identity or 2x2 max-pool skip, channel zero-padding, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 batchnorm: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.channel_pad = out_channels - in_channels
        self.batchnorm = batchnorm
        #: how the skip path is widened: "pad" (channel-axis Pad), "concat" (Concat with a zero
        #: constant) or "conv" (a 1x1 conv with identity/zero weights). Set by the exporter.
        self.channel_pad_mode = "pad"
        padding = 0 if stride == 2 else 1
        if batchnorm:
            self.dw_conv = nn.Conv2d(in_channels, in_channels, 3, stride, padding,
                                     groups=in_channels, bias=False)
            self.bn1 = nn.BatchNorm2d(in_channels)
            self.pw_conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)
        else:
            self.convs = nn.Sequential(
                nn.Conv2d(in_channels, in_channels, 3, stride, padding, groups=in_channels,
                          bias=True),
                nn.Conv2d(in_channels, out_channels, 1, bias=True),
            )

    def _convs(self, h: torch.Tensor) -> torch.Tensor:
        if self.batchnorm:
            return self.bn2(self.pw_conv(self.bn1(self.dw_conv(h))))
        return self.convs(h)

    def _widen(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_pad <= 0:
            return x
        mode = self.channel_pad_mode
        if mode == "pad":
            return F.pad(x, (0, 0, 0, 0, 0, self.channel_pad), "constant", 0.0)
        if mode == "concat":
            n, _, h, w = x.shape
            return torch.cat([x, x.new_zeros((n, self.channel_pad, h, w))], dim=1)
        if mode == "conv":
            eye = torch.cat([torch.eye(self.in_channels, dtype=x.dtype, device=x.device),
                             torch.zeros(self.channel_pad, self.in_channels, dtype=x.dtype,
                                         device=x.device)])
            return F.conv2d(x, eye.reshape(self.out_channels, self.in_channels, 1, 1))
        raise ValueError(f"unknown channel_pad_mode {mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            # TFLite SAME for a 3x3 stride-2 conv on an even size: 0 before, 1 after.
            h = F.pad(x, (0, 1, 0, 1), "constant", 0.0)
            x = F.max_pool2d(x, kernel_size=2, stride=2)
        else:
            h = x
        return F.relu(self._convs(h) + self._widen(x))


class BlazeEar(nn.Module):
    """BlazeFace front topology with BlazeEar's split box / keypoint regressor heads."""

    def __init__(self, batchnorm: bool = False):
        super().__init__()
        self.batchnorm = batchnorm
        self.backbone1 = nn.Sequential(
            nn.Conv2d(3, 24, kernel_size=5, stride=2, padding=0, bias=True),
            nn.ReLU(inplace=False),
            *[BlazeBlock(i, o, s, batchnorm) for i, o, s in BACKBONE1],
        )
        self.backbone2 = nn.Sequential(*[BlazeBlock(i, o, s, batchnorm) for i, o, s in BACKBONE2])
        self.classifier_8 = nn.Conv2d(88, 2, 1, bias=True)
        self.classifier_16 = nn.Conv2d(96, 6, 1, bias=True)
        self.regressor_8_box = nn.Conv2d(88, 2 * 4, 1, bias=True)
        self.regressor_8_kp = nn.Conv2d(88, 2 * 12, 1, bias=True)
        self.regressor_16_box = nn.Conv2d(96, 6 * 4, 1, bias=True)
        self.regressor_16_kp = nn.Conv2d(96, 6 * 12, 1, bias=True)
        #: optional saturation of the head outputs (export only): logits to +-score_clip and
        #: regressors to +-regressor_clip. It bounds the int8 output ranges, which otherwise
        #: are set by meaningless outliers of background anchors (logits below -1000).
        self.score_clip: float | None = None
        self.regressor_clip: float | None = None
        #: value of the stem's border padding: 0.0 for inputs x in [-1, 1]; 0.5 once the
        #: camera-input fold (stapp.fold_camera_input) makes the input y = (x + 1) / 2
        self.stem_pad_value: float = 0.0

    def set_output_clip(self, score: float | None = None, regressor: float | None = None):
        """Saturate head outputs (exported as Clip). None leaves an output unbounded."""
        self.score_clip = score
        self.regressor_clip = regressor
        return self

    # -- configuration -------------------------------------------------------------------------
    def set_channel_pad_mode(self, mode: str) -> "BlazeEar":
        """Choose how skip paths are widened: ``pad``, ``concat`` or ``conv`` (same numbers)."""
        if mode not in CHANNEL_PAD_MODES:
            raise ValueError(f"channel pad mode must be one of {CHANNEL_PAD_MODES}, not {mode!r}")
        for m in self.modules():
            if isinstance(m, BlazeBlock):
                m.channel_pad_mode = mode
        return self

    # -- forward -------------------------------------------------------------------------------
    @staticmethod
    def _regressor_conv(x: torch.Tensor, box: nn.Conv2d, kp: nn.Conv2d, anchors: int):
        """One 1x1 conv whose 16 channels per anchor are box (4) then keypoints (12).

        The weights of the split heads are interleaved back into MediaPipe's single regressor, so
        the exported graph has one convolution per head (constant-folded on export).
        """
        c = x.shape[1]
        w = torch.cat([box.weight.view(anchors, 4, c), kp.weight.view(anchors, 12, c)], dim=1)
        b = torch.cat([box.bias.view(anchors, 4), kp.bias.view(anchors, 12)], dim=1)
        return F.conv2d(x, w.reshape(anchors * 16, c, 1, 1), b.reshape(anchors * 16))

    def feature_maps(self, x: torch.Tensor):
        """The four head outputs as NCHW maps: (1,32,16,16), (1,2,16,16), (1,96,8,8), (1,6,8,8)."""
        # TFLite SAME for the 5x5 stride-2 stem
        x = F.pad(x, (1, 2, 1, 2), "constant", getattr(self, "stem_pad_value", 0.0))
        x = self.backbone1(x)
        h = self.backbone2(x)
        r16 = self._regressor_conv(x, self.regressor_8_box, self.regressor_8_kp, 2)
        c16 = self.classifier_8(x)
        r8 = self._regressor_conv(h, self.regressor_16_box, self.regressor_16_kp, 6)
        c8 = self.classifier_16(h)
        if self.score_clip is not None:
            c16 = torch.clamp(c16, -self.score_clip, self.score_clip)
            c8 = torch.clamp(c8, -self.score_clip, self.score_clip)
        if self.regressor_clip is not None:
            r16 = torch.clamp(r16, -self.regressor_clip, self.regressor_clip)
            r8 = torch.clamp(r8, -self.regressor_clip, self.regressor_clip)
        return r16, c16, r8, c8

    def forward(self, x: torch.Tensor):
        r16, c16, r8, c8 = self.feature_maps(x)
        n = x.shape[0]
        return (
            r16.permute(0, 2, 3, 1).reshape(n, 512, 16),
            c16.permute(0, 2, 3, 1).reshape(n, 512, 1),
            r8.permute(0, 2, 3, 1).reshape(n, 384, 16),
            c8.permute(0, 2, 3, 1).reshape(n, 384, 1),
        )


class MediaPipeLayout(nn.Module):
    """Wraps a BlazeEar so it returns MediaPipe's two tensors: (1,896,16) and (1,896,1)."""

    def __init__(self, model: BlazeEar):
        super().__init__()
        self.model = model

    def forward(self, x):
        return to_mediapipe_layout(self.model(x))


class HeadMaps(nn.Module):
    """Wraps a BlazeEar so it returns the four raw NCHW head maps, (1,32,16,16), (1,2,16,16),
    (1,96,8,8), (1,6,8,8): no Transpose or Reshape after the last convolutions (the ONNX export;
    the decode reorders them, see ``postprocess.to_anchor_major``)."""

    def __init__(self, model: BlazeEar):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.feature_maps(x)


def to_mediapipe_layout(outputs):
    """Join the four head outputs into (N, 896, 16) regressors and (N, 896, 1) scores.

    Works on torch tensors and NumPy arrays alike (16x16 anchors first, then 8x8).
    """
    r16, c16, r8, c8 = outputs
    if isinstance(r16, torch.Tensor):
        return torch.cat([r16, r8], dim=1), torch.cat([c16, c8], dim=1)
    import numpy as np

    return np.concatenate([r16, r8], axis=1), np.concatenate([c16, c8], axis=1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _fold(conv_w: torch.Tensor, conv_b: torch.Tensor | None, bn: nn.BatchNorm2d):
    std = torch.sqrt(bn.running_var + bn.eps)
    scale = bn.weight / std
    w = conv_w * scale.reshape(-1, *([1] * (conv_w.dim() - 1)))
    b0 = conv_b if conv_b is not None else torch.zeros_like(bn.running_mean)
    b = (b0 - bn.running_mean) * scale + bn.bias
    return w, b


@torch.no_grad()
def fold_batchnorm(model: BlazeEar) -> BlazeEar:
    """Return a folded (no BatchNorm) copy of ``model`` with the same eval-mode outputs."""
    if not model.batchnorm:
        return copy.deepcopy(model)
    folded = BlazeEar(batchnorm=False)
    src = model.state_dict()
    dst = folded.state_dict()
    for k in dst:
        if k in src and src[k].shape == dst[k].shape:
            dst[k] = src[k].clone()
    blocks_src = [m for m in model.modules() if isinstance(m, BlazeBlock)]
    blocks_dst = [m for m in folded.modules() if isinstance(m, BlazeBlock)]
    folded.load_state_dict(dst)
    folded.set_output_clip(model.score_clip, model.regressor_clip)
    for bs, bd in zip(blocks_src, blocks_dst):
        w1, b1 = _fold(bs.dw_conv.weight, None, bs.bn1)
        w2, b2 = _fold(bs.pw_conv.weight, None, bs.bn2)
        bd.convs[0].weight.copy_(w1)
        bd.convs[0].bias.copy_(b1)
        bd.convs[1].weight.copy_(w2)
        bd.convs[1].bias.copy_(b2)
        bd.channel_pad_mode = bs.channel_pad_mode
    return folded.eval()
