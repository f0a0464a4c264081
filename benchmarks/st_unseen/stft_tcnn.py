"""stft_tcnn_medium_257x40 (ST's ``stft_tcnn_int8_static_40.onnx``, speech enhancement).

Source: STMicroelectronics/stm32ai-modelzoo-services ``speech_enhancement/src/models/
stft_tcnn.py`` (read from the wyb217 copy), rewritten here in PyTorch as ST's is, with the
configuration of ST's training README: ``n_blocks: 2, num_layers: 3, in_channels: 257,
tcn_latent_dim: 512, init_dilation: 2`` (dilations 1, 2, 4 per block), kernel 3, ReLU, input
(1, 257, 40). Mask activation Sigmoid (the README example says tanh; ST's compiled network.c
ends in a software Sigmoid after the output DequantizeLinear, so the Sigmoid is left float
here too). Exported to ONNX, quantised with ONNX Runtime QDQ.
"""

from __future__ import annotations

try:
    from . import _common
except ImportError:  # run as a script
    import _common

NAME = "stft_tcnn_medium_257x40"
FILE = NAME + ".onnx"
SOURCE = ("stm32ai-modelzoo-services speech_enhancement/src/models/stft_tcnn.py "
          "(2 blocks x 3 layers, 257/512, dilation 2^i, sigmoid)")
IN_CH, LATENT, N_BLOCKS, N_LAYERS, KERNEL, DILATION, FRAMES = 257, 512, 2, 3, 3, 2, 40


def torch_model():
    from torch import nn

    class ResBlock(nn.Module):
        def __init__(self, dilation):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv1d(IN_CH, LATENT, 1), nn.BatchNorm1d(LATENT), nn.ReLU(),
                nn.Conv1d(LATENT, LATENT, KERNEL, padding=dilation, dilation=dilation,
                          groups=LATENT, bias=False),
                nn.BatchNorm1d(LATENT), nn.ReLU(),
                nn.Conv1d(LATENT, IN_CH, 1, bias=False))

        def forward(self, x):
            return self.net(x) + x

    blocks = [ResBlock(DILATION ** i) for _ in range(N_BLOCKS) for i in range(N_LAYERS)]
    return nn.Sequential(*blocks, nn.Sigmoid())


def build(path):
    import torch

    float_path = path.with_name(path.name + ".float.onnx")
    _common.torch_to_onnx(torch_model(), torch.zeros(1, IN_CH, FRAMES), float_path)
    _common.onnx_qdq(float_path, path, exclude_ops=("Sigmoid",))
    float_path.unlink()


if __name__ == "__main__":
    p, s = _common.cached(FILE, build, force=True)
    print(p, f"{s:.1f} s")
