"""Pre-processing: centred letterbox to 128x128 keeping the aspect ratio, values in [-1, 1].

This is MediaPipe's pre-processing: the border is black (0 in uint8, -1 after ``x / 127.5 - 1``).
:class:`Letterbox` maps detections (normalised to the 128x128 input) back to image pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import BlazeEarError

INPUT_SIZE = 128
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Letterbox:
    """Where the resized image sits inside the 128x128 input.

    ``new_w x new_h`` is the resized image, placed at ``(pad_x, pad_y)`` (integers, in input
    pixels). A normalised input coordinate ``u`` maps to the image as
    ``x = (u * 128 - pad_x) / (new_w / width)`` (float32, that order: the C harness repeats it).
    """

    width: int
    height: int
    new_w: int
    new_h: int
    pad_x: int
    pad_y: int
    size: int = INPUT_SIZE

    @classmethod
    def for_image(cls, width: int, height: int, size: int = INPUT_SIZE) -> "Letterbox":
        scale = min(size / width, size / height)
        new_w = max(1, min(size, int(round(width * scale))))
        new_h = max(1, min(size, int(round(height * scale))))
        return cls(width, height, new_w, new_h, (size - new_w) // 2, (size - new_h) // 2, size)

    @cached_property
    def pad_scale(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The float32 operands of :meth:`to_image` for a row of 8 (x, y) points, for the
        decode's letterbox removal: (size (0-d), (pad_x, pad_y) * 8, (new_w / width,
        new_h / height) * 8)."""
        f = np.float32
        return (np.array(self.size, np.float32),
                np.tile(np.array([self.pad_x, self.pad_y], np.float32), 8),
                np.tile(np.array([f(self.new_w) / f(self.width), f(self.new_h) / f(self.height)],
                                 np.float32), 8))

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Map (..., 2) normalised input coordinates to original-image pixels (float32)."""
        xy = np.asarray(xy, dtype=np.float32)
        f = np.float32
        sx = f(self.new_w) / f(self.width)
        sy = f(self.new_h) / f(self.height)
        out = np.empty_like(xy)
        out[..., 0] = (xy[..., 0] * f(self.size) - f(self.pad_x)) / sx
        out[..., 1] = (xy[..., 1] * f(self.size) - f(self.pad_y)) / sy
        return out

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); one-line error when it cannot be read."""
    import cv2

    path = Path(path)
    if not path.exists():
        raise BlazeEarError(f"image not found: {path}")
    if path.is_dir():
        raise BlazeEarError(f"{path}: is a directory, not an image")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise BlazeEarError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Accept grey (H, W), RGB (H, W, 3) or RGBA; uint8 or float in [0, 1]."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise BlazeEarError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), "
                            f"got {img.shape}")
    img = img[..., :3]
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating) and img.max(initial=0) <= 1.0:
            img = img * 255.0
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def letterbox(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and centre on a black ``size x size`` canvas (uint8 RGB)."""
    import cv2

    img = as_rgb(image)
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise BlazeEarError("image has zero size")
    lb = Letterbox.for_image(w, h, size)
    interp = cv2.INTER_AREA if (lb.new_w < w or lb.new_h < h) else cv2.INTER_LINEAR
    resized = cv2.resize(img, (lb.new_w, lb.new_h), interpolation=interp)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[lb.pad_y:lb.pad_y + lb.new_h, lb.pad_x:lb.pad_x + lb.new_w] = resized
    return canvas, lb


def normalize(img128: np.ndarray, layout: str = "NCHW") -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float32 batch of one in [-1, 1] (``x / 127.5 - 1``)."""
    x = img128.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    if layout == "NCHW":
        x = x.transpose(2, 0, 1)
    elif layout != "NHWC":
        raise ValueError(f"layout must be NCHW or NHWC, not {layout!r}")
    return np.ascontiguousarray(x[None])


#: The camera-exact int8 input (``export --camera-input``, ST's own BlazeFace does the same): a
#: uint8 tensor with scale 1/255 and zero point 0, so a camera byte ``p`` *is* the quantised input
#: and the network's float input is ``y = p / 255`` (the ``x = 2 y - 1`` is folded into the stem,
#: see :func:`blazeear_edge.stapp.fold_camera_input`).
CAMERA_INPUT = {"dtype": "uint8", "scale": 1.0 / 255.0, "zero_point": 0}


def is_camera_input(dtype, scale: float, zero_point: int) -> bool:
    """True for the camera-exact input quantisation (:data:`CAMERA_INPUT`)."""
    return (np.dtype(dtype) == np.uint8 and int(zero_point) == 0
            and np.float32(scale) == np.float32(CAMERA_INPUT["scale"]))


def quantize_values(x: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    """Host pre-processed values ``x = p / 127.5 - 1`` -> a quantised network input.

    The one byte -> value mapping of the project (host runtimes, parity, harness vectors and the
    C input table all call this). For the camera-exact input the result is the camera byte
    ``p = round((x + 1) * 127.5)`` itself (exact for every p in float32: tests check all 256);
    for any other integer input it is ``clip(round(x / scale) + zero_point)``.
    """
    info = np.iinfo(dtype)
    x = np.asarray(x, np.float32)
    if is_camera_input(dtype, scale, zero_point):
        q = np.round((x.astype(np.float64) + 1.0) * 127.5)
    else:
        q = np.round(x / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def pixels_to_input(p: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    """Camera bytes (uint8 RGB) -> the quantised network input, through :func:`normalize`'s
    ``x = p / 127.5 - 1`` and :func:`quantize_values`: what a board must feed."""
    x = np.asarray(p, np.float32) / np.float32(127.5) - np.float32(1.0)
    return quantize_values(x, dtype, scale, zero_point)


def preprocess(image: np.ndarray, layout: str = "NCHW") -> tuple[np.ndarray, Letterbox]:
    """An RGB image -> ((1, 3, 128, 128) or (1, 128, 128, 3) float32, :class:`Letterbox`)."""
    canvas, lb = letterbox(image)
    return normalize(canvas, layout), lb


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files below ``folder`` (recursive), sorted, by extension."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and p.suffix.lower() in IMAGE_EXTENSIONS)
