"""Run the PyTorch model on images and decode: the host reference for "what the model means"."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anchors import Anchors, resolve_anchors
from .postprocess import DecodeConfig, Detections, decode_outputs
from .preprocess import Letterbox, preprocess


@dataclass
class ImageResult:
    image: str
    width: int
    height: int
    detections: Detections  # in original-image pixels
    letterbox: Letterbox

    def to_dict(self) -> dict:
        return {"image": self.image, "width": self.width, "height": self.height,
                "detections": self.detections.to_list()}


class Detector:
    """A loaded model + anchors + decode parameters. ``detector(image)`` -> :class:`Detections`."""

    def __init__(self, weights: str = "mediapipe", anchors: str | None = None,
                 config: DecodeConfig | None = None):
        from .weights import load_model

        self.model = load_model(weights)
        self.info = self.model.info
        self.anchors: Anchors = resolve_anchors(anchors, self.info.default_anchors)
        self.config = config or DecodeConfig()

    def raw_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """(1, 3, 128, 128) float32 in [-1, 1] -> the four raw head outputs as NumPy."""
        import torch

        with torch.no_grad():
            outs = self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return [o.numpy() for o in outs]

    def __call__(self, image: np.ndarray) -> tuple[Detections, Letterbox]:
        x, lb = preprocess(image, "NCHW")
        det = decode_outputs(self.raw_outputs(x), self.anchors.table, self.config, letterbox=lb)
        return det, lb

    def detect_file(self, path) -> ImageResult:
        from .preprocess import load_image

        img = load_image(path)
        det, lb = self(img)
        return ImageResult(str(path), img.shape[1], img.shape[0], det, lb)
