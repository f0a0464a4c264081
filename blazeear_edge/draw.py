"""Pictures of detections: boxes, scores and numbered keypoints drawn with OpenCV."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .postprocess import Detections

_KP_COLOURS = [(255, 64, 64), (64, 160, 255), (255, 210, 0), (200, 0, 255), (0, 220, 120),
               (255, 128, 0)]


def draw_detections(image: np.ndarray, det: Detections, colour=(0, 255, 0),
                    label: str = "") -> np.ndarray:
    """Return an RGB copy of ``image`` with boxes, scores and keypoints 0..5 drawn."""
    import cv2

    img = np.ascontiguousarray(image.copy())
    scale = max(img.shape[:2]) / 512.0
    th = max(1, int(round(2 * scale)))
    fs = max(0.4, 0.5 * scale)
    for box, kps, s in zip(det.boxes, det.keypoints, det.scores):
        x0, y0, x1, y1 = [int(round(float(v))) for v in box]
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, th, cv2.LINE_AA)
        cv2.putText(img, f"{s:.2f}", (x0, max(0, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, fs, colour,
                    th, cv2.LINE_AA)
        for k, (x, y) in enumerate(kps):
            c = _KP_COLOURS[k % len(_KP_COLOURS)]
            p = (int(round(float(x))), int(round(float(y))))
            cv2.circle(img, p, max(2, th + 1), c, -1, cv2.LINE_AA)
            cv2.putText(img, str(k), (p[0] + th + 2, p[1] - th), cv2.FONT_HERSHEY_SIMPLEX,
                        fs * 0.8, c, max(1, th - 1), cv2.LINE_AA)
    if label:
        cv2.putText(img, label, (6, int(20 * max(1.0, scale))), cv2.FONT_HERSHEY_SIMPLEX, fs,
                    (255, 255, 255), th, cv2.LINE_AA)
    return img


def save_png(image_rgb: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an RGB image as PNG atomically (temporary file, then rename)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    os.replace(tmp, path)
    return path
