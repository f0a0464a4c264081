"""deeplab_v3_mobilenetv2_05_16_320 (ST's ``deeplab_v3_mobilenetv2_05_16_320_fft_qdq_int8.onnx``).

Source: STMicroelectronics/stm32ai-modelzoo-services ``semantic_segmentation/src/models/
deeplabv3.py`` (read from the wyb217 copy): Keras ``MobileNetV2(alpha=0.5)`` cut at
``block_13_expand_relu`` (output stride 16, 20x20x288), ASPP with 256 filters, dilations
20 // 5 * (1, 2, 3) = 4, 8, 12, image pooling (mean, 1x1 conv, bilinear x20), concat, 1x1 conv,
1x1 conv to 2 classes (ST's app: "not_person", "person"), bilinear x16. ASPP version v2
(dilated depthwise + pointwise): ST's flash image (982,769 B) fits v2 (~0.9 M params), not v1
(~2.7 M). ST converts Keras to ONNX with tf2onnx (``inputs_as_nchw``) and quantises with ONNX
Runtime QDQ; there is no tf2onnx here, so the same graph is written in PyTorch (NCHW), with
Keras's padding (stride-2 convs padded (0, 1) bottom/right; onnxsim folds those pads into the
convs, so the graph has no Pad node).
"""

from __future__ import annotations

try:
    from . import _common
except ImportError:  # run as a script
    import _common

NAME = "deeplab_v3_mobilenetv2_05_16_320"
FILE = NAME + ".onnx"
SOURCE = ("stm32ai-modelzoo-services semantic_segmentation/src/models/deeplabv3.py "
          "(MobileNetV2 a0.5 to block_13_expand_relu, ASPP v2, 2 classes), in PyTorch")
ALPHA, SIZE, CLASSES, ASPP_FILTERS = 0.5, 320, 2, 256
#: keras.applications.MobileNetV2 inverted residual blocks: (filters, stride, expansion)
BLOCKS = ((16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6),
          (64, 1, 6), (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6))


def _divisible(v, d=8):
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


def torch_model():
    import torch
    from torch import nn
    import torch.nn.functional as F

    def cbr(cin, cout, k=1, stride=1, pad=0, groups=1, dilation=1, act=nn.ReLU6):
        layers = [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups,
                            bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)

    class Block(nn.Module):
        def __init__(self, cin, filters, stride, expansion, cut=False):
            super().__init__()
            out = _divisible(filters * ALPHA)
            mid = cin * expansion
            self.expand = cbr(cin, mid) if expansion != 1 else None
            self.cut = cut  # stop after the expand ReLU6 (block_13_expand_relu)
            if not cut:
                dw = [nn.ZeroPad2d((0, 1, 0, 1))] if stride == 2 else []
                self.dw = nn.Sequential(*dw, cbr(mid, mid, 3, stride, 0 if stride == 2 else 1,
                                                 groups=mid))
                self.project = cbr(mid, out, act=None)
            self.residual = stride == 1 and cin == out

        def forward(self, x):
            y = self.expand(x) if self.expand is not None else x
            if self.cut:
                return y
            y = self.project(self.dw(y))
            return x + y if self.residual else y

    class DeepLab(nn.Module):
        def __init__(self):
            super().__init__()
            c = _divisible(32 * ALPHA)
            self.stem = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), cbr(3, c, 3, 2))
            blocks = []
            for i, (f, s, e) in enumerate(BLOCKS):
                blocks.append(Block(c, f, s, e, cut=i == 13))
                c = _divisible(f * ALPHA) if i < 13 else c * e
            self.backbone = nn.Sequential(*blocks)
            feat = SIZE // 16
            rates = [feat // 5 * k for k in (1, 2, 3)]
            relu = nn.ReLU
            self.x1 = cbr(c, ASPP_FILTERS, act=relu)
            self.atrous = nn.ModuleList(
                nn.Sequential(cbr(c, c, 3, 1, r, groups=c, dilation=r, act=relu),
                              cbr(c, ASPP_FILTERS, act=relu)) for r in rates)
            self.pool = nn.Sequential(nn.Conv2d(c, ASPP_FILTERS, 1), nn.BatchNorm2d(ASPP_FILTERS),
                                      relu())
            self.merge = cbr(5 * ASPP_FILTERS, ASPP_FILTERS, act=relu)
            self.classifier = nn.Conv2d(ASPP_FILTERS, CLASSES, 1)
            self.feat = feat

        def forward(self, x):
            x = self.backbone(self.stem(x))
            p = self.pool(x.mean((2, 3), keepdim=True))
            p = F.interpolate(p, size=(self.feat, self.feat), mode="bilinear", align_corners=False)
            x = torch.cat([self.x1(x)] + [a(x) for a in self.atrous] + [p], 1)
            x = self.classifier(self.merge(x))
            return F.interpolate(x, scale_factor=16, mode="bilinear", align_corners=False)

    return DeepLab()


def build(path):
    import torch

    float_path = path.with_name(path.name + ".float.onnx")
    _common.torch_to_onnx(torch_model(), torch.zeros(1, 3, SIZE, SIZE), float_path)
    _common.onnx_qdq(float_path, path)
    float_path.unlink()


if __name__ == "__main__":
    p, s = _common.cached(FILE, build, force=True)
    print(p, f"{s:.1f} s")
