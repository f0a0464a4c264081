"""ONNX -> TensorFlow SavedModel + float32 TFLite through onnx2tf, fully offline.

onnx2tf's ``convert()`` fetches a sample-image ``.npy`` from the internet for its own output
check whenever the model has one 4-D image input (``download_test_image_data``), even when given
calibration data. We hand it our calibration images instead, for the duration of the call, and make
any other network use inside the call fail loudly. The int8 TFLite is then made from the SavedModel
with the TF Lite converter (see :mod:`blazeear_edge.quantize`), which is the converter backend we
pin for int8.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
from pathlib import Path

import numpy as np

from ..errors import BlazeEarError


@contextlib.contextmanager
def no_network():
    """Fail any socket connection attempted inside the block (loopback included)."""
    real = socket.socket.connect

    def refuse(self, address):  # noqa: ARG001
        raise ConnectionRefusedError(f"blazeear-edge: network use refused during export "
                                     f"(tried {address})")

    socket.socket.connect = refuse
    try:
        yield
    finally:
        socket.socket.connect = real


@contextlib.contextmanager
def onnx2tf_sample_data(calib_nhwc: np.ndarray):
    """Make onnx2tf use our images where it would download its own."""
    import onnx2tf.onnx2tf as o2t

    data = np.ascontiguousarray(calib_nhwc[:20], dtype=np.float32)
    real = o2t.download_test_image_data
    o2t.download_test_image_data = lambda: data
    try:
        yield
    finally:
        o2t.download_test_image_data = real


def onnx_to_tflite(onnx_path: str | os.PathLike, out_dir: str | os.PathLike,
                   calib_nhwc: np.ndarray, verbose: bool = False) -> tuple[Path, Path]:
    """Convert with onnx2tf; returns (saved_model_dir, float32 .tflite path)."""
    import onnx2tf

    out_dir = Path(out_dir)
    sink = io.StringIO()
    try:
        quiet = contextlib.redirect_stdout(sink) if not verbose else contextlib.nullcontext()
        with no_network(), onnx2tf_sample_data(calib_nhwc), quiet:
            onnx2tf.convert(input_onnx_file_path=str(onnx_path),
                            output_folder_path=str(out_dir), non_verbose=not verbose,
                            verbosity="error" if not verbose else "info",
                            copy_onnx_input_output_names_to_tflite=True)
    except SystemExit as exc:  # onnx2tf calls sys.exit on conversion errors
        tail = "\n".join(sink.getvalue().strip().splitlines()[-3:])
        raise BlazeEarError(f"onnx2tf failed on {onnx_path} (exit {exc.code}): {tail}") from None
    floats = sorted(out_dir.glob("*_float32.tflite"))
    if not floats:
        raise BlazeEarError(f"onnx2tf wrote no float32 TFLite into {out_dir}")
    return out_dir, floats[0]
