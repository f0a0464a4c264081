"""Camera-like built-in calibration frames, composed from images shipped in installed packages.

Why: the built-in set used to be the scikit-image sample photos plus LFW's 25x25 grey face crops
upscaled to fill the whole 128x128 input. No camera delivers frames like that: a real frame is a
colour scene, letterboxed from 4:3 / 16:9, with zero to a few faces covering a tenth to a half of
its width, with sensor noise and varying exposure. Int8 activation ranges and AdaRound's layer
statistics calibrated on the crops do not match what the model sees on a device.

Method (deterministic, no download; ``COMPOSITES`` frames):

1. background: a random crop (50-100% of each side) of a bundled scikit-image photo (coffee,
   chelsea, rocket, camera, brick, grass, gravel, clock, coins, text; grey ones made RGB),
   reshaped to a 4:3, 3:4 or 16:9 frame whose long side is 640 pixels;
2. faces: 0 (20%), 1 (60%) or 2 (20%) LFW face crops (only the ones not in the built-in
   hold-out, so verification stays on images calibration never saw), each scaled to 8-50% of
   the frame width (log-uniform), tinted with a skin tone (LFW is grey; tone and strength drawn
   per face), pasted with a feathered elliptical mask;
3. camera: exposure x0.7-1.3, contrast x0.8-1.2, Gaussian sensor noise (sigma 1-5 levels) and,
   in half the frames, a light blur.

The frames then go through the same letterbox + ``x / 127.5 - 1`` as every other source. The
astronaut photo is not used (it is in the hold-out).
"""

from __future__ import annotations

import numpy as np

#: camera-like frames added to the built-in calibration set
COMPOSITES = 120
SCENES = ("coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel", "clock", "coins",
          "text")
FRAME_LONG_SIDE = 640
ASPECTS = (4 / 3, 3 / 4, 16 / 9)
#: skin tones (RGB multipliers of a grey level), from light to dark
SKIN_TONES = np.array([[1.00, 0.84, 0.74], [1.00, 0.80, 0.66], [0.95, 0.72, 0.56],
                       [0.80, 0.58, 0.44], [0.60, 0.42, 0.32]], np.float32)


def _scene(rng, scenes):
    import cv2

    img = scenes[int(rng.integers(len(scenes)))]
    h, w = img.shape[:2]
    aspect = ASPECTS[int(rng.integers(len(ASPECTS)))]
    ch, cw = int(h * rng.uniform(0.5, 1.0)), int(w * rng.uniform(0.5, 1.0))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = img[y0:y0 + ch, x0:x0 + cw]
    fw, fh = ((FRAME_LONG_SIDE, int(FRAME_LONG_SIDE / aspect)) if aspect >= 1
              else (int(FRAME_LONG_SIDE * aspect), FRAME_LONG_SIDE))
    return cv2.resize(crop, (fw, fh), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def _paste_face(frame, face, rng):
    import cv2

    fh, fw = frame.shape[:2]
    size = int(np.exp(rng.uniform(np.log(0.08), np.log(0.5))) * fw)
    size = max(8, min(size, fh - 2, fw - 2))
    g = cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)
    tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))] * rng.uniform(0.9, 1.1, 3)
    strength = rng.uniform(0.6, 1.0)
    rgb = g[..., None] * (strength * tone + (1 - strength))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.sqrt(((xx - size / 2) / (size * 0.46)) ** 2 + ((yy - size / 2) / (size * 0.5)) ** 2)
    alpha = np.clip((1.0 - r) / 0.15, 0.0, 1.0)[..., None]
    y0 = int(rng.integers(0, fh - size + 1))
    x0 = int(rng.integers(0, fw - size + 1))
    roi = frame[y0:y0 + size, x0:x0 + size]
    frame[y0:y0 + size, x0:x0 + size] = alpha * rgb + (1 - alpha) * roi


def _camera(frame, rng):
    import cv2

    mean = frame.mean()
    frame = (frame - mean) * rng.uniform(0.8, 1.2) + mean * rng.uniform(0.7, 1.3)
    if rng.random() < 0.5:
        frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.5, 1.2))
    frame = frame + rng.normal(0.0, rng.uniform(1.0, 5.0), frame.shape)
    return np.clip(np.round(frame), 0, 255).astype(np.uint8)


def composite_frames(faces: list[np.ndarray], scenes: list[np.ndarray], count: int = COMPOSITES,
                     seed: int = 1234) -> list[np.ndarray]:
    """``count`` camera-like RGB uint8 frames: ``faces`` (grey crops, float in [0, 1] or uint8)
    pasted onto crops of ``scenes`` (RGB uint8); see the module docstring."""
    rng = np.random.default_rng(seed)
    faces = [np.asarray(f, np.float32) * (255.0 if np.asarray(f).max() <= 1.0 else 1.0)
             for f in faces]
    out = []
    for _ in range(count):
        frame = _scene(rng, scenes)
        n = int(rng.choice([0, 1, 2], p=[0.2, 0.6, 0.2]))
        for _ in range(n):
            _paste_face(frame, faces[int(rng.integers(len(faces)))], rng)
        out.append(_camera(frame, rng))
    return out


def composite_samples(samples) -> list:
    """Composites built from the scikit-image samples already listed in ``samples`` (faces
    outside the built-in hold-out only) -> ``Sample`` objects named ``composite[i]``."""
    from skimage import data

    from . import Sample, builtin_holdout
    from ..preprocess import as_rgb

    held = {s.name for s in builtin_holdout(samples)}
    faces = [s.array[..., 0] for s in samples
             if s.name.startswith("skimage:lfw_subset[") and s.name.endswith(":face")
             and s.name not in held]
    scenes = []
    for name in SCENES:
        fn = getattr(data, name, None)
        try:
            scenes.append(as_rgb(fn()))
        except Exception:  # noqa: BLE001 - a sample that would need a download
            continue
    if not faces or not scenes:
        return []
    return [Sample(f"composite[{i}]", array=f)
            for i, f in enumerate(composite_frames(faces, scenes))]


# ---------------------------------------------------------------------------------------------
# portrait frames: the large-face half of the domain, from real colour photos of faces
# ---------------------------------------------------------------------------------------------
#: real face photos shipped in installed packages, with the face box (x0, y0, x1, y1, pixels of
#: the photo; the fp32 MediaPipe model's own detection, rounded). Calibration uses the first two;
#: the astronaut stays in the built-in hold-out (export's verification), so the large-face check
#: runs on a face calibration never saw.
PORTRAIT_SOURCES = {
    "grace_hopper": ("matplotlib", (166, 143, 366, 343)),  # mpl-data/sample_data, 512 x 600
    "camera": ("skimage", (180, 121, 264, 205)),  # the cameraman, 512 x 512, grey
    "astronaut": ("skimage", (178, 81, 272, 175)),  # 512 x 512
}
CALIB_PORTRAIT_SOURCES = ("grace_hopper", "camera")
#: portrait frames in the built-in calibration set / in the built-in hold-out
PORTRAITS = 120
HOLDOUT_PORTRAITS = 16
#: face width as a fraction of the frame's long side, log-uniform (real portraits: 0.13-0.5 of
#: the letterboxed input; selfies and door cameras up to about 0.8)
PORTRAIT_FACE = (0.10, 0.80)
#: frames holding 1, 2 or 3 faces (a second or third face is a pasted head, 10-35% wide)
PORTRAIT_FACES_P = (0.7, 0.2, 0.1)


def portrait_source(name: str) -> np.ndarray:
    """One of :data:`PORTRAIT_SOURCES` as RGB uint8 (read from its installed package)."""
    from ..preprocess import as_rgb

    if name == "grace_hopper":
        import matplotlib.cbook as cbook
        import matplotlib.image as mimage

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            return as_rgb(mimage.imread(f, format="jpg"))
    from skimage import data

    return as_rgb(getattr(data, name)())


def _frame_size(rng, aspects=ASPECTS + (1.0,)):
    aspect = aspects[int(rng.integers(len(aspects)))]
    return ((FRAME_LONG_SIDE, int(FRAME_LONG_SIDE / aspect)) if aspect >= 1
            else (int(FRAME_LONG_SIDE * aspect), FRAME_LONG_SIDE))


def _place(src, box, frame, width_px, rng, cx=None, cy=None, feather=False):
    """Warp ``src`` so its face box is ``width_px`` wide, rotated a little, maybe mirrored,
    centred at (cx, cy) (random when None) over ``frame``: the whole photo, or (``feather``)
    only an elliptical head region around the box with a soft edge."""
    import cv2

    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = box
    bw = x1 - x0
    s = width_px / bw
    half = width_px / 2
    if cx is None:
        cx = rng.uniform(min(half, fw / 2), max(fw - half, fw / 2))
        cy = rng.uniform(min(half, fh / 2), max(fh - half, fh / 2))
    ang = rng.uniform(-12.0, 12.0)
    M = cv2.getRotationMatrix2D(((x0 + x1) / 2, (y0 + y1) / 2), ang, s)
    M[:, 2] += np.array([cx, cy]) - np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    img = src[:, ::-1] if rng.random() < 0.5 else src
    if img is not src:  # mirror the box with the photo
        w = src.shape[1]
        M = cv2.getRotationMatrix2D(((2 * w - x0 - x1) / 2, (y0 + y1) / 2), ang, s)
        M[:, 2] += np.array([cx, cy]) - np.array([(2 * w - x0 - x1) / 2, (y0 + y1) / 2])
    gain = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    warped = cv2.warpAffine(img.astype(np.float32) * gain, M, (fw, fh), flags=cv2.INTER_AREA
                            if s < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=(-1, -1, -1))
    inside = warped[..., 0] >= 0
    if feather:
        yy, xx = np.mgrid[0:fh, 0:fw].astype(np.float32)
        r = np.sqrt(((xx - cx) / (width_px * 0.8)) ** 2 + ((yy - cy) / (width_px * 1.0)) ** 2)
        alpha = np.clip((1.0 - r) / 0.2, 0.0, 1.0) * inside
    else:
        alpha = inside.astype(np.float32)
    a = alpha[..., None]
    frame[:] = a * np.clip(warped, 0, 255) + (1 - a) * frame


def portrait_frames(sources: list, scenes: list[np.ndarray], count: int, seed: int,
                    widths=None) -> list[np.ndarray]:
    """``count`` camera-like RGB uint8 frames of real faces from ``sources`` ((RGB, box) pairs)
    over crops of ``scenes``: the main face's width log-uniform over :data:`PORTRAIT_FACE` of
    the frame's long side (or the given ``widths``), sometimes one or two more heads, then the
    same camera model as the composites."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        fw, fh = _frame_size(rng)
        import cv2

        frame = cv2.resize(_scene(rng, scenes), (fw, fh)).astype(np.float32)
        lo, hi = PORTRAIT_FACE
        f = float(widths[i]) if widths is not None else float(
            np.exp(rng.uniform(np.log(lo), np.log(hi))))
        width = min(f * max(fw, fh), 0.95 * min(fw, fh))
        src, box = sources[int(rng.integers(len(sources)))]
        _place(src, box, frame, width, rng)
        for _ in range(int(rng.choice([0, 1, 2], p=PORTRAIT_FACES_P))):
            src, box = sources[int(rng.integers(len(sources)))]
            _place(src, box, frame, rng.uniform(0.10, 0.35) * max(fw, fh), rng, feather=True)
        out.append(_camera(frame, rng))
    return out


def portrait_samples(holdout: bool = False) -> list:
    """The portrait frames of the built-in calibration set (``portrait[i]``, from
    :data:`CALIB_PORTRAIT_SOURCES`) or, with ``holdout``, of the built-in hold-out
    (``holdout-portrait[i]``, the astronaut only, face widths spread evenly over
    :data:`PORTRAIT_FACE`)."""
    from skimage import data

    from . import Sample
    from ..preprocess import as_rgb

    scenes = []
    for name in SCENES:
        try:
            scenes.append(as_rgb(getattr(data, name)()))
        except Exception:  # noqa: BLE001 - a sample that would need a download
            continue
    names = ("astronaut",) if holdout else CALIB_PORTRAIT_SOURCES
    sources = []
    for n in names:
        try:
            sources.append((portrait_source(n), PORTRAIT_SOURCES[n][1]))
        except Exception:  # noqa: BLE001 - a package without its sample data
            continue
    if not sources or not scenes:
        return []
    if holdout:
        widths = np.geomspace(*PORTRAIT_FACE, HOLDOUT_PORTRAITS)
        frames = portrait_frames(sources, scenes, HOLDOUT_PORTRAITS, 4321, widths)
        return [Sample(f"holdout-portrait[{i}]", array=f) for i, f in enumerate(frames)]
    return [Sample(f"portrait[{i}]", array=f)
            for i, f in enumerate(portrait_frames(sources, scenes, PORTRAITS, 2468))]
