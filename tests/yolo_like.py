"""A small YOLOv8-style detector built offline, for the linter's YOLO-family tests.

``ultralytics`` cannot be installed cleanly next to this project's CPU torch (its torchvision
dependency has no matching CPU build on PyPI), so this module rebuilds the operators an
Ultralytics YOLOv8 export emits, with the same PyTorch code paths as
``ultralytics/nn/modules`` (``Conv`` = Conv2d + BN + SiLU, ``C2f`` = ``chunk(2, 1)`` + bottlenecks
+ ``cat``, ``SPPF`` = 3 MaxPool 5x5 + ``cat``, ``nn.Upsample(scale_factor=2, mode="nearest")`` +
``Concat`` in the neck, ``Detect`` in export mode: per-scale ``cat(cv2, cv3)``, ``view`` +
``cat`` over scales, ``split((4 * reg_max, nc), 1)``, ``DFL`` = ``view`` + ``transpose(2, 1)`` +
``softmax(1)`` + 1x1 conv with ``arange`` weights, ``dist2bbox`` = ``chunk`` + Sub/Add/Div + ``cat``,
``* strides``, ``cat((dbox, cls.sigmoid()), 1)``). The widths follow YOLOv8n's ratios (the
neck concatenates unequal channel counts, the heads 64 + nc), at 64x64 input and small widths
so export and quantisation take a few seconds. ``psa=True`` adds YOLO11's C2PSA attention block
(``Attention``: qkv conv, ``view`` + ``split``, two MatMul of activations, ``softmax``,
depthwise positional conv) after the SPPF.

``export_onnx`` exports it as Ultralytics' ``format="onnx"`` does (TorchScript exporter, opset
17, onnxsim); ``quantize_qdq`` applies onnxruntime's ``quantize_static`` in QDQ format with ST's
settings (QInt8 / QInt8, per-channel, symmetric weights), as a user does after exporting.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

REG_MAX = 16
NC = 2
SIZE = 64
STRIDES = (8, 16, 32)


def _build(nc: int = NC, psa: bool = False):
    import torch
    from torch import nn

    class Conv(nn.Module):
        def __init__(self, c1, c2, k=1, s=1):
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
            self.bn = nn.BatchNorm2d(c2)
            self.act = nn.SiLU()

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))

    class Bottleneck(nn.Module):
        def __init__(self, c, shortcut=True):
            super().__init__()
            self.cv1, self.cv2 = Conv(c, c, 3), Conv(c, c, 3)
            self.add = shortcut

        def forward(self, x):
            y = self.cv2(self.cv1(x))
            return x + y if self.add else y

    class C2f(nn.Module):
        def __init__(self, c1, c2, n=1, shortcut=False):
            super().__init__()
            self.c = c2 // 2
            self.cv1 = Conv(c1, 2 * self.c, 1)
            self.cv2 = Conv((2 + n) * self.c, c2, 1)
            self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

        def forward(self, x):
            y = list(self.cv1(x).chunk(2, 1))
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, c1, c2, k=5):
            super().__init__()
            c_ = c1 // 2
            self.cv1, self.cv2 = Conv(c1, c_, 1), Conv(c_ * 4, c2, 1)
            self.m = nn.MaxPool2d(k, 1, k // 2)

        def forward(self, x):
            y = [self.cv1(x)]
            y.extend(self.m(y[-1]) for _ in range(3))
            return self.cv2(torch.cat(y, 1))

    class DFL(nn.Module):
        def __init__(self, c1=REG_MAX):
            super().__init__()
            self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
            self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
            self.c1 = c1

        def forward(self, x):
            b, _, a = x.shape
            return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)

    class Detect(nn.Module):
        def __init__(self, ch):
            super().__init__()
            self.nc, self.no = nc, nc + 4 * REG_MAX
            c2, c3 = max(16, ch[0] // 4, 4 * REG_MAX), max(ch[0], min(nc, 100))
            self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3),
                                                   nn.Conv2d(c2, 4 * REG_MAX, 1)) for x in ch)
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3),
                                                   nn.Conv2d(c3, nc, 1)) for x in ch)
            self.dfl = DFL(REG_MAX)
            pts, st = [], []
            for s in STRIDES:  # make_anchors(grid_cell_offset=0.5)
                n = SIZE // s
                sy, sx = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5,
                                        indexing="ij")
                pts.append(torch.stack((sx, sy), -1).view(-1, 2))
                st.append(torch.full((n * n, 1), float(s)))
            self.register_buffer("anchors", torch.cat(pts).transpose(0, 1))
            self.register_buffer("strides", torch.cat(st).transpose(0, 1))

        def forward(self, x):
            for i in range(len(x)):
                x[i] = torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1)
            shape = x[0].shape
            x_cat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
            box, cls = x_cat.split((REG_MAX * 4, self.nc), 1)
            lt, rb = self.dfl(box).chunk(2, 1)  # dist2bbox(xywh=True, dim=1)
            anchor = self.anchors.unsqueeze(0)
            x1y1, x2y2 = anchor - lt, anchor + rb
            dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * self.strides
            return torch.cat((dbox, cls.sigmoid()), 1)

    class Attention(nn.Module):  # ultralytics.nn.modules.block.Attention (YOLO11's C2PSA)
        def __init__(self, dim, num_heads=1, attn_ratio=0.5):
            super().__init__()
            self.num_heads, self.head_dim = num_heads, dim // num_heads
            self.key_dim = int(self.head_dim * attn_ratio)
            self.scale = self.key_dim ** -0.5
            h = dim + self.key_dim * num_heads * 2
            self.qkv, self.proj = Conv(dim, h, 1), Conv(dim, dim, 1)
            self.pe = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1, groups=dim), nn.BatchNorm2d(dim))

        def forward(self, x):
            b, c, h, w = x.shape
            n = h * w
            q, k, v = self.qkv(x).view(b, self.num_heads, self.key_dim * 2 + self.head_dim,
                                       n).split([self.key_dim, self.key_dim, self.head_dim], 2)
            attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)
            x = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
            return self.proj(x)

    class C2PSA(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c // 2
            self.cv1, self.cv2 = Conv(c, 2 * self.c, 1), Conv(2 * self.c, c, 1)
            self.attn = Attention(self.c, num_heads=max(1, self.c // 64))
            self.ffn = nn.Sequential(Conv(self.c, self.c * 2, 1), Conv(self.c * 2, self.c, 1))

        def forward(self, x):
            a, b = self.cv1(x).split((self.c, self.c), 1)
            b = b + self.attn(b)
            b = b + self.ffn(b)
            return self.cv2(torch.cat((a, b), 1))

    class YoloLike(nn.Module):
        """YOLOv8n's topology (backbone 0-9, neck 10-21, Detect 22) at small widths."""

        def __init__(self):
            super().__init__()
            w = (8, 16, 32, 64)  # YOLOv8n: 16, 32, 64, 128, 256 (here one stage less deep)
            self.b0 = Conv(3, w[0], 3, 2)
            self.b1 = Conv(w[0], w[1], 3, 2)
            self.b2 = C2f(w[1], w[1], 1, True)
            self.b3 = Conv(w[1], w[2], 3, 2)           # P3/8
            self.b4 = C2f(w[2], w[2], 2, True)
            self.b5 = Conv(w[2], w[3], 3, 2)           # P4/16
            self.b6 = C2f(w[3], w[3], 2, True)
            self.b7 = Conv(w[3], 2 * w[3], 3, 2)       # P5/32
            self.b8 = C2f(2 * w[3], 2 * w[3], 1, True)
            self.b9 = SPPF(2 * w[3], 2 * w[3])
            self.b10 = C2PSA(2 * w[3]) if psa else nn.Identity()  # YOLO11: C2PSA after SPPF
            self.up = nn.Upsample(None, 2, "nearest")
            self.h12 = C2f(3 * w[3], w[3], 1)         # cat(up(P5) 128, P4 64): unequal
            self.h15 = C2f(w[3] + w[2], w[2], 1)      # cat(up 64, P3 32)
            self.h16 = Conv(w[2], w[2], 3, 2)
            self.h18 = C2f(w[2] + w[3], w[3], 1)      # cat(32, 64)
            self.h19 = Conv(w[3], w[3], 3, 2)
            self.h21 = C2f(w[3] + 2 * w[3], 2 * w[3], 1)
            self.detect = Detect((w[2], w[3], 2 * w[3]))

        def forward(self, x):
            x = self.b2(self.b1(self.b0(x)))
            p3 = self.b4(self.b3(x))
            p4 = self.b6(self.b5(p3))
            p5 = self.b10(self.b9(self.b8(self.b7(p4))))
            h12 = self.h12(torch.cat((self.up(p5), p4), 1))
            h15 = self.h15(torch.cat((self.up(h12), p3), 1))
            h18 = self.h18(torch.cat((self.h16(h15), h12), 1))
            h21 = self.h21(torch.cat((self.h19(h18), p5), 1))
            return self.detect([h15, h18, h21])

    torch.manual_seed(0)
    net = YoloLike().eval()
    net.psa = psa
    for m in net.modules():  # non-trivial BN statistics, as a trained model has
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net


def export_onnx(path: Path, opset: int = 17, psa: bool = False) -> Path:
    """The fp32 ONNX as Ultralytics' exporter writes it (TorchScript exporter, onnxsim).
    ``psa``: add YOLO11's C2PSA attention block after the SPPF."""
    import onnx
    import onnxsim
    import torch

    net = _build(psa=psa)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, SIZE, SIZE),), buf, input_names=["images"],
                          output_names=["output0"], opset_version=opset, dynamo=False,
                          do_constant_folding=True)
    m = onnx.load_from_string(buf.getvalue())
    m, ok = onnxsim.simplify(m)
    assert ok
    onnx.save(m, str(path))
    return path


def quantize_qdq(src: Path, dst: Path, n_calib: int = 4) -> Path:
    """onnxruntime ``quantize_static``, QDQ, ST's settings, on random calibration images."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.data = [{"images": rng.uniform(0, 1, (1, 3, SIZE, SIZE)).astype(np.float32)}
                         for _ in range(n_calib)]

        def get_next(self):
            return self.data.pop() if self.data else None

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
    return dst


def export_tflite_int8(src: Path, out_dir: Path, n_calib: int = 4) -> Path:
    """Full-integer TFLite (uint8 in, int8 out, per-channel weights) through onnx2tf and the TF
    Lite converter, the route Ultralytics' ``format="tflite", int8=True`` takes (onnx2tf, then
    the converter with a representative dataset), offline (the project's own wrappers)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from blazeear_edge.export.tflite_export import onnx_to_tflite
    from blazeear_edge.quantize import quantize_tflite

    rng = np.random.default_rng(0)
    calib = rng.uniform(0, 1, (n_calib, SIZE, SIZE, 3)).astype(np.float32)
    saved, _ = onnx_to_tflite(src, out_dir, calib)
    path = out_dir / "yolo_like_int8.tflite"
    path.write_bytes(quantize_tflite(saved, calib, input_type="uint8", method="minmax"))
    return path
