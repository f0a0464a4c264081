"""hand_landmark_full_224 (ST's ``033_hand_landmark_full_quant_pc_uf_handl.tflite``).

Source: MediaPipe's float ``hand_landmark_full.tflite`` (fp16 weights), from the ``mediapipe``
0.10.14 wheel (``mediapipe/modules/hand_landmark/``; later wheels no longer ship it). The wheel is
not fetched here: give the .tflite with ``HAND_LANDMARK_TFLITE`` (default
``/tmp/mp/hand_landmark_full.tflite``; ``pip download --no-deps mediapipe==0.10.14`` and unzip).
Its graph (31 CONV_2D, 16 DEPTHWISE_CONV_2D, 9 ADD, MEAN, 4 FULLY_CONNECTED, 2 LOGISTIC; every
op in it) is rebuilt op for op in Keras with MediaPipe's own weights (fp16 -> float32), then
quantised with the TFLite converter like ST's file: per channel, uint8 input, float32 outputs
("pc_uf"), the four outputs in the file's order.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    from . import _common
except ImportError:  # run as a script
    import _common

NAME = "hand_landmark_full_224"
FILE = NAME + ".tflite"
SOURCE = "MediaPipe hand_landmark_full.tflite (mediapipe 0.10.14 wheel), rebuilt op for op in Keras"
FLOAT_TFLITE = Path(os.environ.get("HAND_LANDMARK_TFLITE", "/tmp/mp/hand_landmark_full.tflite"))
_ACT = {0: None, 1: "relu", 3: "relu6"}


def keras_model(float_path: Path = FLOAT_TFLITE):
    import numpy as np
    import tensorflow as tf
    import tflite

    L = tf.keras.layers
    buf = float_path.read_bytes()
    m = tflite.Model.GetRootAsModel(buf, 0)
    g = m.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def data(t):
        """A constant tensor's values (fp16 or fp32 buffer)."""
        ten = g.Tensors(t)
        raw = m.Buffers(ten.Buffer()).DataAsNumpy()
        dtype = {0: np.float32, 1: np.float16, 2: np.int32}[ten.Type()]
        return np.frombuffer(raw.tobytes(), dtype).astype(np.float32).reshape(ten.ShapeAsNumpy())

    def options(op, cls):
        o = op.BuiltinOptions()
        x = cls()
        x.Init(o.Bytes, o.Pos)
        return x

    inp_t = g.Inputs(0)
    inp = tf.keras.Input(tuple(int(d) for d in g.Tensors(inp_t).ShapeAsNumpy()[1:]))
    alias = {}  # DEQUANTIZE output -> fp16 constant tensor
    val = {inp_t: inp}
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        oc = m.OperatorCodes(op.OpcodeIndex())
        kind = names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]
        ins = [alias.get(int(t), int(t)) for t in op.InputsAsNumpy()]
        out = int(op.OutputsAsNumpy()[0])
        if kind == "DEQUANTIZE":
            alias[out] = ins[0]
            continue
        x = val[ins[0]]
        if kind == "CONV_2D":
            o = options(op, tflite.Conv2DOptions)
            w, b = data(ins[1]), data(ins[2])  # (out, kh, kw, in)
            layer = L.Conv2D(w.shape[0], w.shape[1:3], strides=o.StrideH(),
                             padding="same" if o.Padding() == 0 else "valid",
                             dilation_rate=o.DilationHFactor(),
                             activation=_ACT[o.FusedActivationFunction()])
            y = layer(x)
            layer.set_weights([w.transpose(1, 2, 3, 0), b])
        elif kind == "DEPTHWISE_CONV_2D":
            o = options(op, tflite.DepthwiseConv2DOptions)
            w, b = data(ins[1]), data(ins[2])  # (1, kh, kw, c * multiplier)
            layer = L.DepthwiseConv2D(w.shape[1:3], strides=o.StrideH(),
                                      padding="same" if o.Padding() == 0 else "valid",
                                      depth_multiplier=o.DepthMultiplier(),
                                      dilation_rate=o.DilationHFactor(),
                                      activation=_ACT[o.FusedActivationFunction()])
            y = layer(x)
            layer.set_weights([w.reshape(w.shape[1], w.shape[2], -1, o.DepthMultiplier()), b])
        elif kind == "ADD":
            o = options(op, tflite.AddOptions)
            y = L.Add()([x, val[ins[1]]])
            if _ACT[o.FusedActivationFunction()]:
                y = L.Activation(_ACT[o.FusedActivationFunction()])(y)
        elif kind == "MEAN":
            y = L.GlobalAveragePooling2D()(x)
        elif kind == "FULLY_CONNECTED":
            o = options(op, tflite.FullyConnectedOptions)
            w, b = data(ins[1]), data(ins[2])  # (out, in)
            layer = L.Dense(w.shape[0], activation=_ACT[o.FusedActivationFunction()])
            y = layer(x)
            layer.set_weights([w.T, b])
        elif kind == "LOGISTIC":
            y = L.Activation("sigmoid")(x)
        else:
            raise NotImplementedError(f"{float_path.name}: operator {kind} has no rebuild")
        val[out] = y
    outs = [val[g.Outputs(i)] for i in range(g.OutputsLength())]
    return tf.keras.Model(inp, outs, name="hand_landmark_full")


def build(path):
    _common.tflite_int8(keras_model(), path, io=("uint8", "float32"))


if __name__ == "__main__":
    p, s = _common.cached(FILE, build, force=True)
    print(p, f"{s:.1f} s")
