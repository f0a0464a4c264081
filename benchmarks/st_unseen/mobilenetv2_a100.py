"""mobilenetv2_a100_256_128 (ST's ReID model, ``mobilenetv2_a100_256_128_fft_int8.tflite``).

Source: STMicroelectronics/stm32ai-modelzoo-services ``re_identification/tf/src/models/
mobilenetv2.py`` (read from the giuuuug/RTSE copy): ``MobileNetV2(include_top=False,
pooling="avg", alpha=1.0)`` on a 256x128x3 input; the Dense identity classifier is dropped at
deployment, so the model ends at the 1280-d pooled embedding. Quantised with the TFLite
converter (full integer, per-channel).
"""

from __future__ import annotations

try:
    from . import _common
except ImportError:  # run as a script
    import _common

NAME = "mobilenetv2_a100_256_128"
FILE = NAME + ".tflite"
SOURCE = ("stm32ai-modelzoo-services re_identification/tf/src/models/mobilenetv2.py "
          "(keras MobileNetV2 a1.0, avg pool, head dropped)")


def keras_model():
    import tensorflow as tf

    return tf.keras.applications.MobileNetV2(input_shape=(256, 128, 3), alpha=1.0,
                                             include_top=False, weights=None, pooling="avg")


def build(path):
    _common.tflite_int8(keras_model(), path)


if __name__ == "__main__":
    p, s = _common.cached(FILE, build, force=True)
    print(p, f"{s:.1f} s")
