"""Run the PyTorch model on images and decode: the host reference for "what the model means"."""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    #: with a candidate cap: the same outputs decoded without it when the cap bound, else None
    uncapped: Detections | None = None
    max_candidates: int = 0

    def to_dict(self) -> dict:
        d = {"image": self.image, "width": self.width, "height": self.height,
             "detections": self.detections.to_list()}
        if self.max_candidates:
            d["candidate_cap"] = self.cap_dict()
        return d

    def cap_dict(self) -> dict:
        """What the candidate cap did on this image (only with a cap)."""
        from .capreport import frame_difference

        det = self.detections
        out = {"max_candidates": self.max_candidates, "candidates": int(det.candidates),
               "dropped": int(det.cap_dropped), "bound": det.cap_dropped > 0}
        if self.uncapped is not None:
            lost, moved = frame_difference(det, self.uncapped)
            out.update(detections_uncapped=len(self.uncapped), detections_lost=lost,
                       detections_moved=moved)
        return out


#: The host's decode: the model's full decode, no candidate cap (the cap is the board's, in the
#: export manifest; ask for one with ``DecodeConfig(max_candidates=K)``).
HOST_DECODE = DecodeConfig(max_candidates=0)


class Detector:
    """A loaded model + anchors + decode parameters. ``detector(image)`` -> :class:`Detections`.

    The default decode is :data:`HOST_DECODE` (no candidate cap)."""

    def __init__(self, weights: str = "mediapipe", anchors: str | None = None,
                 config: DecodeConfig | None = None):
        from .weights import load_model

        self.model = load_model(weights)
        self.info = self.model.info
        self.anchors: Anchors = resolve_anchors(anchors, self.info.default_anchors)
        self.config = config or HOST_DECODE

    def raw_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """(1, 3, 128, 128) float32 in [-1, 1] -> the four raw head outputs as NumPy."""
        import torch

        with torch.no_grad():
            outs = self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return [o.numpy() for o in outs]

    def __call__(self, image: np.ndarray) -> tuple[Detections, Letterbox]:
        det, lb, _ = self.detect_image(image)
        return det, lb

    def detect_image(self, image: np.ndarray):
        """(detections, letterbox, the uncapped decode when the candidate cap bound else None)."""
        x, lb = preprocess(image, "NCHW")
        raw = self.raw_outputs(x)
        det = decode_outputs(raw, self.anchors.table, self.config, letterbox=lb)
        free = None
        if det.cap_dropped > 0:
            free = decode_outputs(raw, self.anchors.table,
                                  replace(self.config, max_candidates=0), letterbox=lb)
        return det, lb, free

    def detect_file(self, path) -> ImageResult:
        from .preprocess import load_image

        img = load_image(path)
        det, lb, free = self.detect_image(img)
        return ImageResult(str(path), img.shape[1], img.shape[0], det, lb, free,
                           int(self.config.max_candidates))
