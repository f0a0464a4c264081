"""Rebuild ST model zoo networks offline: Keras applications with ``weights=None``, quantised int8
by the TF Lite converter on random representative data, exactly as the zoo's files are built
(uint8 input, float32 output: the zoo READMEs' "Network inputs / outputs"). Weight values do not
change the NPU time; shapes, classes and I/O types do.

``python benchmarks/n6_corpus/build_keras.py NAME [NAME ...]`` builds into ``$N6_CORPUS_CACHE``
(default ``benchmarks/.cache/n6``, gitignored); a model already built is skipped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CACHE = Path(os.environ.get("N6_CORPUS_CACHE",
                            Path(__file__).resolve().parents[1] / ".cache" / "n6"))


def parse(name: str):
    """``mnv2_0.35_128_c101`` -> ("mnv2", 0.35, 128, 101); ``effv2_B0_224_c1000`` -> ("effv2",
    "B0", 224, 1000)."""
    fam, a, res, c = name.split("_")
    return fam, (a if fam == "effv2" else float(a)), int(res), int(c[1:])


def keras_model(name: str):
    import tensorflow as tf

    fam, a, res, classes = parse(name)
    shape = (res, res, 3)
    app = tf.keras.applications
    # batch 1 fixed, as ST's files: a free batch makes the converter add SHAPE / STRIDED_SLICE /
    # PACK ops for the classifier's Reshape, which ST's zoo files do not have
    inp = tf.keras.Input(shape, batch_size=1)
    if fam == "mnv1":
        return app.MobileNet(input_tensor=inp, alpha=a, weights=None, classes=classes)
    if fam == "mnv2":
        return app.MobileNetV2(input_tensor=inp, alpha=a, weights=None, classes=classes)
    if fam == "effv2":
        fn = getattr(app, f"EfficientNetV2{a}")
        return fn(input_tensor=inp, weights=None, classes=classes, include_preprocessing=False)
    if fam == "fdmnv1":
        return fd_mobilenet(shape, a, classes)
    if fam == "sqnv11":
        return squeezenet_v11(shape, classes)
    raise ValueError(name)


def squeezenet_v11(shape, classes):
    """SqueezeNet v1.1 (forresti/SqueezeNet, ``SqueezeNet_v1.1/train_val.prototxt``): 3x3/2 conv
    64, max-pools after conv1, fire3 and fire5, fire modules (squeeze, expand 1x1 + 3x3), 1x1
    classifier conv, global average pooling."""
    import tensorflow as tf

    L = tf.keras.layers

    def fire(x, s, e):
        x = L.Conv2D(s, 1, activation="relu")(x)
        return L.Concatenate()([L.Conv2D(e, 1, activation="relu")(x),
                                L.Conv2D(e, 3, padding="same", activation="relu")(x)])

    x = inp = L.Input(shape, batch_size=1)
    x = L.Conv2D(64, 3, 2, activation="relu")(x)
    x = L.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 16, 64), 16, 64)
    x = L.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 32, 128), 32, 128)
    x = L.MaxPooling2D(3, 2)(x)
    for s, e in ((48, 192), (48, 192), (64, 256), (64, 256)):
        x = fire(x, s, e)
    x = L.Conv2D(classes, 1, activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Softmax()(x))


def fd_mobilenet(shape, alpha, classes):
    """FD-MobileNet (Qin et al. 2018, arXiv:1802.03750, Table 1): a 3x3/2 conv, then depthwise
    separable blocks (stride, filters) below, global pooling and the classifier; ``alpha`` scales
    every width, as in ST's ``fdmobilenet`` model zoo family."""
    import tensorflow as tf

    L = tf.keras.layers
    blocks = [(2, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512),
              (1, 512), (1, 512), (1, 1024)]
    x = inp = L.Input(shape, batch_size=1)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(int(32 * alpha), 3, 2, "same",
                                                  use_bias=False)(x)))
    for s, f in blocks:
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, s, "same", use_bias=False)(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(int(f * alpha), 1, use_bias=False)(x)))
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(classes, activation="softmax")(x)
    return tf.keras.Model(inp, x)


def build(name: str) -> Path:
    out = CACHE / f"{name}.tflite"
    if out.is_file():
        return out
    import numpy as np
    import tensorflow as tf

    model = keras_model(name)
    res = model.input_shape[1]
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(2):
            yield [rng.uniform(0, 255, (1, res, res, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.float32
    data = conv.convert()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.rename(out)
    return out


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    for n in sys.argv[1:]:
        try:
            print(n, build(n), flush=True)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next
            print(n, "FAILED", type(exc).__name__, str(exc)[:200], flush=True)
