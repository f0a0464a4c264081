"""Image sources for everyone: calibration, export verification, parity, evaluate, the harness.
Every set is pre-processed exactly as at inference.

* :func:`build_calibration`: the calibration set (``export --int8``, ``calib``);
* :func:`verification_images`: export's hold-out (built-in, or a seeded part of ``--calib``
  that calibration then leaves out);
* :func:`evaluation_images`: what ``parity`` and ``harness`` run on (built-in hold-out, or the
  first N of a folder / image / CSV / COCO json).

Sources (``resolve_source``):

* ``builtin`` (default): images bundled in installed packages (scikit-image's LFW face crops and
  sample photos) so ``export --int8`` works on a fresh machine with no data. It is a generic face
  set: calibrate on your own images for a real deployment.
* a folder of images (recursive; jpg, png, bmp, webp, tif);
* a BlazeEar CSV (``image_path,x1,y1,w,h[,...]`` in pixels, top-left + size; a header row is
  allowed; paths relative to ``--images-root`` or the CSV's folder);
* a COCO json (``images[].file_name`` relative to ``--images-root``, the json's folder or its
  ``images/`` sub-folder; ``annotations[].bbox`` = [x, y, w, h]).

Every sample goes through :func:`blazeear_edge.preprocess.letterbox` + ``x / 127.5 - 1``. With
``crop_boxes`` a labelled image also contributes a crop around each box (box enlarged 1.5-3x, picked
with the seed) so small ears are represented at the scale the detector sees them.
Unreadable files are skipped and counted; no readable image at all is an error.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BlazeEarError
from ..preprocess import IMAGE_EXTENSIONS, as_rgb, letterbox, list_images, normalize

PREPROCESSING = {"letterbox": 128, "layout": "RGB", "formula": "x / 127.5 - 1",
                 "border": -1.0, "resize": "cv2 INTER_AREA (down) / INTER_LINEAR (up)"}


@dataclass
class Sample:
    """One image to load: a file (optionally a crop box in pixels) or an in-memory array."""

    name: str
    path: Path | None = None
    array: np.ndarray | None = None
    boxes: list = field(default_factory=list)  # [[x, y, w, h], ...] in pixels


@dataclass
class ImageSet:
    """Pre-processed images + provenance."""

    nchw: np.ndarray  # (N, 3, 128, 128) float32
    names: list
    provenance: dict
    originals: list = field(default_factory=list)  # (H, W, 3) uint8 when kept
    letterboxes: list = field(default_factory=list)

    @property
    def nhwc(self) -> np.ndarray:
        return np.ascontiguousarray(self.nchw.transpose(0, 2, 3, 1))

    def __len__(self) -> int:
        return int(self.nchw.shape[0])


# ---------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------
def builtin_samples(composites: bool = True) -> list[Sample]:
    """Images that ship inside installed packages: scikit-image photos + LFW crops, and (with
    ``composites``) camera-like frames composed from them (:mod:`.composite`)."""
    from skimage import data

    out = []
    for name in ("astronaut", "coffee", "chelsea", "camera", "cat", "rocket", "immunohistochemistry",
                 "motorcycle_left", "hubble_deep_field", "coins"):
        fn = getattr(data, name, None)
        if fn is None:
            continue
        try:
            arr = fn()
        except Exception:  # noqa: BLE001 - an optional sample that needs a download
            continue
        if isinstance(arr, tuple):
            arr = arr[0]
        out.append(Sample(f"skimage:{name}", array=as_rgb(arr)))
    lfw = data.lfw_subset()  # 200 x 25 x 25 float in [0, 1]: 100 faces then 100 non-faces
    for i, crop in enumerate(lfw):
        kind = "face" if i < 100 else "nonface"
        out.append(Sample(f"skimage:lfw_subset[{i}]:{kind}", array=as_rgb(crop)))
    if composites:
        from .composite import composite_samples, portrait_samples

        out += composite_samples(out)
        out += portrait_samples()
        out += portrait_samples(holdout=True)
    return out


def folder_samples(folder: Path) -> list[Sample]:
    files = list_images(folder)
    if not files:
        raise BlazeEarError(f"{folder}: no images found (looked for "
                            f"{', '.join(IMAGE_EXTENSIONS)} recursively)")
    return [Sample(str(p), path=p) for p in files]


def _resolve_image(name: str, roots: list[Path]) -> Path:
    p = Path(name)
    if p.is_absolute():
        return p
    for r in roots:
        if (r / p).exists():
            return r / p
    return roots[0] / p


def csv_samples(path: Path, images_root: Path | None = None) -> list[Sample]:
    roots = [images_root] if images_root else [path.parent, path.parent / "images"]
    by_image: dict[str, Sample] = {}
    try:
        with open(path, newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                if not row or row[0].startswith("#"):
                    continue
                try:
                    x, y, w, h = (float(v) for v in row[1:5])
                except (ValueError, IndexError):
                    if i == 0:
                        continue  # header
                    raise BlazeEarError(f"{path}: line {i + 1}: expected image_path,x1,y1,w,h")
                s = by_image.setdefault(row[0], Sample(row[0],
                                                       path=_resolve_image(row[0], roots)))
                if w > 0 and h > 0:
                    s.boxes.append([x, y, w, h])
    except (OSError, UnicodeDecodeError) as exc:
        raise BlazeEarError(f"{path}: not a readable CSV ({exc})") from None
    if not by_image:
        raise BlazeEarError(f"{path}: no rows with image_path,x1,y1,w,h")
    return list(by_image.values())


def coco_samples(path: Path, images_root: Path | None = None) -> list[Sample]:
    try:
        d = json.loads(Path(path).read_text())
        images = d["images"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BlazeEarError(f"{path}: not a COCO json with an 'images' list ({exc})") from None
    roots = [images_root] if images_root else [path.parent, path.parent / "images"]
    by_id = {}
    for im in images:
        s = Sample(im["file_name"], path=_resolve_image(im["file_name"], roots))
        by_id[im["id"]] = s
    for a in d.get("annotations", []):
        s = by_id.get(a.get("image_id"))
        if s is not None and a.get("bbox") and a["bbox"][2] > 0 and a["bbox"][3] > 0:
            s.boxes.append([float(v) for v in a["bbox"]])
    if not by_id:
        raise BlazeEarError(f"{path}: the COCO json lists no images")
    return list(by_id.values())


def resolve_source(src: str | os.PathLike | None, images_root=None) -> tuple[str, list[Sample]]:
    """``src`` -> (kind, samples). kind is builtin, folder, csv or coco."""
    if src is None or str(src) == "builtin":
        return "builtin", builtin_samples()
    p = Path(src)
    root = Path(images_root) if images_root else None
    if root is not None and not root.is_dir():
        raise BlazeEarError(f"--images-root {root}: not a directory")
    if not p.exists():
        raise BlazeEarError(f"calibration source not found: {p}")
    if p.is_dir():
        return "folder", folder_samples(p)
    if p.suffix.lower() == ".csv":
        return "csv", csv_samples(p, root)
    if p.suffix.lower() == ".json":
        return "coco", coco_samples(p, root)
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        return "folder", [Sample(str(p), path=p)]
    raise BlazeEarError(f"{p}: unknown calibration source (a folder of images, a .csv, a COCO "
                        ".json, or 'builtin')")


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------
def _read(sample: Sample):
    """-> (RGB uint8, sha256) or (None, reason)."""
    if sample.array is not None:
        a = sample.array
        return a, hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
    import cv2

    try:
        data = np.fromfile(str(sample.path), dtype=np.uint8)
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        return None, "not a decodable image"
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), hashlib.sha256(data.tobytes()).hexdigest()


def _crop(img: np.ndarray, box, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    x, y, bw, bh = box
    f = rng.uniform(1.5, 3.0)
    side = max(bw, bh) * f
    cx = x + bw / 2 + rng.uniform(-0.25, 0.25) * bw
    cy = y + bh / 2 + rng.uniform(-0.25, 0.25) * bh
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return img
    return img[y0:y1, x0:x1]


def load_images(samples: list[Sample], *, count: int | None = None, seed: int = 0,
                crop_boxes: bool = False, shuffle: bool = True, keep_originals: bool = False,
                source: str = "", kind: str = "", progress: bool = True,
                desc: str = "loading images") -> ImageSet:
    """Pick up to ``count`` samples (deterministic with ``seed``), load and pre-process them."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(samples)) if shuffle else np.arange(len(samples))
    xs, names, files, originals, lbs = [], [], [], [], []
    skipped = []
    target = count if count else len(samples)
    bar = tqdm(total=target, desc=desc, unit="img", disable=not progress, leave=False)
    for i in order:
        if len(xs) >= target:
            break
        s = samples[int(i)]
        img, info = _read(s)
        if img is None:
            skipped.append({"file": s.name, "reason": info})
            continue
        views = [(s.name, img)]
        if crop_boxes and s.boxes:
            views += [(f"{s.name}#crop{j}", _crop(img, b, rng)) for j, b in enumerate(s.boxes)]
        for name, v in views:
            if len(xs) >= target:
                break
            canvas, lb = letterbox(v)
            xs.append(normalize(canvas, "NCHW")[0])
            names.append(name)
            lbs.append(lb)
            if keep_originals:
                originals.append(v)
            bar.update(1)
        files.append({"file": s.name, "sha256": info})
    bar.close()
    if not xs:
        what = f"{len(samples)} candidate file(s)" if samples else "no candidate files"
        reason = f"; first problem: {skipped[0]['file']}: {skipped[0]['reason']}" if skipped else ""
        raise BlazeEarError(f"{source or 'image source'}: no readable images ({what}{reason})")
    prov = {
        "source": source or kind, "kind": kind, "default_used": kind == "builtin",
        "count_requested": count, "count_used": len(xs), "candidates": len(samples),
        "skipped": len(skipped), "skipped_files": skipped[:20], "seed": seed,
        "crop_boxes": crop_boxes, "preprocessing": PREPROCESSING, "files": files,
    }
    if kind == "builtin":
        prov["note"] = ("built-in generic face images from scikit-image; calibrate on your own "
                        "images (--calib DIR|CSV|COCO) for a real deployment")
    return ImageSet(np.stack(xs).astype(np.float32), names, prov, originals, lbs)


def builtin_holdout(samples: list[Sample]) -> list[Sample]:
    """The built-in verification images, never used for calibration: the astronaut photo, every
    fifth LFW crop (20 faces, 20 non-faces) and the hold-out portrait frames (the astronaut's
    face from a tenth of the frame to filling it, one to three faces: the 8x8 head's half of
    the domain; :func:`.composite.portrait_samples`)."""
    out = [s for s in samples if s.name == "skimage:astronaut"]
    out += [s for s in samples if s.name.startswith("skimage:lfw_subset[")
            and int(s.name.split("[")[1].split("]")[0]) % 5 == 4]
    out += [s for s in samples if s.name.startswith("holdout-portrait[")]
    return out


#: shares of the built-in calibration set by kind of image (drawn per kind, seeded), so a
#: smaller --calib-count keeps the whole domain: real-face portrait frames (large faces, the 8x8
#: head), scene composites (small faces, the 16x16 head), LFW crops, the scikit-image photos
BUILTIN_SHARES = (("portrait[", 0.4), ("composite[", 0.35), ("skimage:lfw_subset[", 0.2),
                  ("skimage:", 0.05))


def _builtin_kind(name: str) -> str:
    return next((p for p, _ in BUILTIN_SHARES if name.startswith(p)), "skimage:")


def builtin_draw(samples: list[Sample], count: int, seed: int) -> list[Sample]:
    """``count`` of the built-in ``samples`` in the :data:`BUILTIN_SHARES` proportions (a kind
    with too few images gives its rest to the others), shuffled with ``seed``."""
    rng = np.random.default_rng(seed)
    by = {p: [s for s in samples if _builtin_kind(s.name) == p] for p, _ in BUILTIN_SHARES}
    want = {p: int(round(share * count)) for p, share in BUILTIN_SHARES}
    picked = []
    for p, _ in BUILTIN_SHARES:
        pool = by[p]
        picked += [pool[int(i)] for i in rng.permutation(len(pool))[:want[p]]]
    rest = [s for s in samples if s not in picked]
    picked += [rest[int(i)] for i in rng.permutation(len(rest))[:max(0, count - len(picked))]]
    return [picked[int(i)] for i in rng.permutation(len(picked))]


def build_calibration(src=None, count: int = 200, *, seed: int = 0, crop_boxes: bool = False,
                      images_root=None, progress: bool = True, exclude=()) -> ImageSet:
    """The calibration set used by ``export --int8`` and ``calib``.

    ``exclude``: sample names kept out (the verification images). The built-in source always
    keeps :func:`builtin_holdout` out, so its figures are measured on images it was not
    calibrated on.
    """
    if count is not None and count <= 0:
        raise BlazeEarError(f"--calib-count must be positive, got {count}")
    if src is not None and str(src).endswith(".npz"):
        return load_npz(src)
    kind, samples = resolve_source(src, images_root)
    excluded = set(exclude)
    if kind == "builtin":
        excluded |= {s.name for s in builtin_holdout(samples)}
    samples = [s for s in samples if s.name not in excluded] or samples
    if kind == "builtin" and count:
        samples = builtin_draw(samples, count, seed)
    return load_images(samples, count=count, seed=seed, crop_boxes=crop_boxes,
                       source=str(src or "builtin"), kind=kind, progress=progress,
                       desc="calibration images")


def save_npz(imageset: ImageSet, path: str | os.PathLike) -> Path:
    """Write ``nchw`` (ONNX Runtime), ``nhwc`` (TFLite, ST ``--valinput``), ``names`` and the
    provenance (JSON string) atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    if not path.parent.exists():
        raise BlazeEarError(f"{path.parent}: output folder does not exist")
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, nchw=imageset.nchw, nhwc=imageset.nhwc,
                        names=np.asarray(imageset.names),
                        provenance=np.asarray(json.dumps(imageset.provenance)))
    os.replace(tmp, path)
    return path


def load_npz(path: str | os.PathLike) -> ImageSet:
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        nchw = z["nchw"].astype(np.float32)
        prov = json.loads(str(z["provenance"])) if "provenance" in z else {}
        names = [str(n) for n in z["names"]] if "names" in z else []
    except (OSError, ValueError, KeyError) as exc:
        raise BlazeEarError(f"{path}: not a calibration .npz written by blazeear-edge "
                            f"({exc})") from None
    if nchw.ndim != 4 or nchw.shape[1:] != (3, 128, 128) or len(nchw) == 0:
        raise BlazeEarError(f"{path}: 'nchw' must be (N>0, 3, 128, 128), got {nchw.shape}")
    return ImageSet(nchw, names, prov)


def evaluation_images(images=None, count: int | None = None, images_root=None,
                      keep_originals: bool = False, desc: str = "images"):
    """``images`` None/'builtin' -> the built-in hold-out (astronaut + 40 LFW crops, never used
    for calibration); else a folder, image file, BlazeEar CSV or COCO json (first ``count``).
    Returns (ImageSet, a description of the source)."""
    if count is not None and count <= 0:
        raise BlazeEarError(f"count (--count) must be positive, got {count}")
    kind, samples = resolve_source(images, images_root)
    if kind == "builtin":
        samples = builtin_holdout(samples)
    src = str(images or "builtin")
    ims = load_images(samples, count=count, shuffle=False, keep_originals=keep_originals,
                      source=src, kind=kind, progress=False, desc=desc)
    what = ("built-in hold-out (astronaut + LFW crops, not used for calibration)"
            if kind == "builtin" else f"{kind} {src}")
    return ims, what


#: what the built-in verification images are (recorded in the manifest, printed by export)
BUILTIN_HOLDOUT_NOTE = (
    "built-in hold-out, not used for calibration: the astronaut photo, 16 camera-like frames "
    "of her face from a tenth of the frame to filling it (one to three faces), and 40 upscaled "
    "25x25 grey LFW crops. One real face is not your camera: int8 losses on real photos (extra or "
    "missed detections) can stay invisible here; check on your own frames with "
    "'blazeear-edge parity EXPORT --images DIR' or calibrate with --calib DIR, which holds "
    "out part of your images for this check")


def verification_images(calib=None, images_root=None, *, calib_count: int = 200,
                        verify_count: int = 32, seed: int = 0, progress: bool = False):
    """Export's verification images: the built-in hold-out, or a seeded part of the user's
    calibration source that calibration then leaves out (when the source has enough images).
    Returns (ImageSet, names held out of calibration)."""
    src = calib if calib and not str(calib).endswith(".npz") else None
    kind, samples = resolve_source(src, images_root)
    if kind == "builtin":
        held, note = builtin_holdout(samples), BUILTIN_HOLDOUT_NOTE
    elif len(samples) >= calib_count + 8 or len(samples) >= 2 * verify_count:
        rng = np.random.default_rng(seed + 1)
        idx = rng.permutation(len(samples))[:min(verify_count, len(samples) // 4)]
        held, note = [samples[int(i)] for i in idx], "held out from calibration"
    else:
        held, note = samples, "overlaps the calibration set (too few images to hold some out)"
    vs = load_images(held, count=verify_count if kind != "builtin" else None,
                     seed=seed + 1, source=str(src or "builtin"), kind=kind,
                     progress=progress, desc="verification images")
    vs.provenance["note"] = note
    vs.provenance["names"] = vs.names
    vs.provenance.pop("files", None)
    vs.provenance.pop("skipped_files", None)
    return vs, ({s.name for s in held} if "held out" in note else set())
