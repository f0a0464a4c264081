"""osnet_a025_256_128 (ST's ReID model, ``osnet_a025_256_128_tfs_int8.tflite``).

Source: STMicroelectronics/stm32ai-modelzoo-services ``re_identification/tf/src/models/osnet.py``
(read from the giuuuug/RTSE copy), rewritten here layer for layer with alpha 0.25 (channels 16,
64, 96, 128), input 256x128x3. ST's deployed file ends at the 128-d pooled embedding (its
``stai_reid.h`` output is (1, 128)), so the Dense classifier is dropped. The channel gate shares
its two 1x1 convs across the four branches, as in ST's code. Quantised with the TFLite converter.
"""

from __future__ import annotations

try:
    from . import _common
except ImportError:  # run as a script
    import _common

NAME = "osnet_a025_256_128"
FILE = NAME + ".tflite"
SOURCE = ("stm32ai-modelzoo-services re_identification/tf/src/models/osnet.py "
          "(alpha 0.25, head dropped)")
CHANNELS = (16, 64, 96, 128)


def keras_model():
    import tensorflow as tf

    L = tf.keras.layers

    def conv_bn(x, out, k=1, stride=1, padding="valid", relu=True):
        x = L.Conv2D(out, k, strides=stride, padding=padding, use_bias=False)(x)
        x = L.BatchNormalization()(x)
        return L.ReLU()(x) if relu else x

    def light3x3(x, out):
        x = L.Conv2D(out, 1, use_bias=False)(x)
        x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        return L.ReLU()(x)

    def os_block(x, cin, cout):
        mid = cout // 4
        y = conv_bn(x, mid)
        branches = []
        for depth in (1, 2, 3, 4):
            b = y
            for _ in range(depth):
                b = light3x3(b, mid)
            branches.append(b)
        gap = L.GlobalAveragePooling2D(keepdims=True)
        fc1 = L.Conv2D(mid // 16, 1, use_bias=True)
        fc2 = L.Conv2D(mid, 1, use_bias=True)
        gated = [b * L.Activation("sigmoid")(fc2(L.ReLU()(fc1(gap(b))))) for b in branches]
        g = gated[0] + gated[1] + gated[2] + gated[3]
        out = conv_bn(g, cout, relu=False)
        res = conv_bn(x, cout, relu=False) if cin != cout else x
        return L.ReLU()(out + res)

    inp = tf.keras.Input((256, 128, 3))
    x = conv_bn(inp, CHANNELS[0], 7, stride=2, padding="same")
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    for i in range(3):
        x = os_block(x, CHANNELS[i], CHANNELS[i + 1])
        x = os_block(x, CHANNELS[i + 1], CHANNELS[i + 1])
        if i < 2:
            x = conv_bn(x, CHANNELS[i + 1])
            x = L.AveragePooling2D(2, strides=2)(x)
    x = conv_bn(x, CHANNELS[3])
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, x, name="osnet")


def build(path):
    _common.tflite_int8(keras_model(), path)


if __name__ == "__main__":
    p, s = _common.cached(FILE, build, force=True)
    print(p, f"{s:.1f} s")
