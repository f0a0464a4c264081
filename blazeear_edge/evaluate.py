"""Accuracy per runtime and format: COCO mAP@0.5 and mAP@[.5:.95] with pycocotools.

:func:`evaluate` runs every runtime of an export (PyTorch fp32 when the weights are found, ONNX
fp32 / int8, TFLite fp32 / int8) or a single model file (``.onnx``, ``.tflite``, a PyTorch
checkpoint or ``mediapipe``) on labelled images, decodes with the manifest's NumPy decode at a
low score threshold (0.05 by default, so the precision-recall curve is traced beyond the
deployment threshold), maps the detections back to original image pixels through each image's
letterbox (boxes clipped to the image), and scores them with pycocotools' ``COCOeval`` (one
class, ``maxDets`` 100).  The table puts float next to int8 and ONNX next to TFLite, so a gap
such as the one ST's users hit (published accuracy matched the ONNX int8 model, not the TFLite
int8 one: stm32ai-modelzoo issue #63) is visible.

Ground truth: a COCO json (``images``, ``annotations[].bbox`` = [x, y, w, h] in pixels) or a
BlazeEar CSV (``image_path,x1,y1,w,h[,...]``, top-left + size in pixels).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .calib_data import ImageSet, Sample, coco_samples, csv_samples, load_images
from .errors import BlazeEarError
from .manifest import MANIFEST_FILE, load_manifest
from .postprocess import DecodeConfig, Detections, decode_outputs
from .runtimes import export_runtimes, model_file_runtime
from .textfmt import progress_printer, text_table

#: default decode threshold for evaluation (the deployment threshold, 0.5, would cut the
#: precision-recall curve short); --score-thresh changes it.
EVAL_SCORE_THRESH = 0.05
#: images pre-processed and run per chunk (bounds memory on large sets)
CHUNK = 64


# ---------------------------------------------------------------------------------------------
# ground truth
# ---------------------------------------------------------------------------------------------
@dataclass
class GroundTruth:
    """A one-class COCO dataset (dict) and where each image file is."""

    coco: dict  # images, annotations, categories (one category)
    paths: dict  # image id -> Path
    source: str
    kind: str  # coco | csv
    category: str
    category_id: int
    dropped: int = 0  # annotations of other categories or without area

    @property
    def image_ids(self) -> list:
        return [im["id"] for im in self.coco["images"]]

    @property
    def boxes(self) -> int:
        return len(self.coco["annotations"])


def load_ground_truth(path: str | os.PathLike, images_root=None,
                      category: str | None = None) -> GroundTruth:
    """A COCO json or a BlazeEar CSV -> :class:`GroundTruth` (one category)."""

    p = Path(path)
    if not p.is_file():
        raise BlazeEarError(f"ground truth not found: {p}")
    root = Path(images_root) if images_root else None
    if root is not None and not root.is_dir():
        raise BlazeEarError(f"--images-root {root}: not a directory")
    if p.suffix.lower() == ".csv":
        samples = csv_samples(p, root)
        images, anns, paths = [], [], {}
        for i, s in enumerate(samples, start=1):
            images.append({"id": i, "file_name": s.name})
            paths[i] = s.path
            for b in s.boxes:
                anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1,
                             "bbox": [float(v) for v in b], "area": float(b[2] * b[3]),
                             "iscrowd": 0})
        name = category or "object"
        coco = {"images": images, "annotations": anns,
                "categories": [{"id": 1, "name": name}]}
        return GroundTruth(coco, paths, str(p), "csv", name, 1)
    if p.suffix.lower() != ".json":
        raise BlazeEarError(f"{p}: ground truth must be a COCO .json or a BlazeEar .csv")
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise BlazeEarError(f"{p}: not a readable COCO json ({exc})") from None
    if not isinstance(d, dict) or not isinstance(d.get("images"), list):
        raise BlazeEarError(f"{p}: not a COCO json (no 'images' list)")
    cats = d.get("categories") or []
    if category is not None:
        hit = [c for c in cats if c.get("name") == category or str(c.get("id")) == category]
        if not hit:
            raise BlazeEarError(f"{p}: no category {category!r} (has: "
                                f"{', '.join(str(c.get('name')) for c in cats) or 'none'})")
        cat = hit[0]
    elif len(cats) == 1:
        cat = cats[0]
    elif not cats:
        cat = {"id": 1, "name": "object"}
    else:
        raise BlazeEarError(f"{p}: {len(cats)} categories; choose one with --category "
                            f"({', '.join(str(c.get('name')) for c in cats)})")
    samples = coco_samples(p, root)  # resolves file names the way calib does
    by_file = {}
    for s in samples:
        by_file.setdefault(s.name, s.path)
    images, paths, seen = [], {}, set()
    for im in d["images"]:
        if "id" not in im or "file_name" not in im:
            raise BlazeEarError(f"{p}: an image entry without 'id' or 'file_name'")
        if im["id"] in seen:
            raise BlazeEarError(f"{p}: image id {im['id']} appears twice")
        seen.add(im["id"])
        images.append({k: im[k] for k in ("id", "file_name", "width", "height") if k in im})
        paths[im["id"]] = by_file[im["file_name"]]
    anns, dropped = [], 0
    for a in d.get("annotations", []):
        bb = a.get("bbox")
        keep = (a.get("category_id", cat["id"]) == cat["id"] and a.get("image_id") in seen
                and bb is not None and len(bb) == 4 and bb[2] > 0 and bb[3] > 0)
        if not keep:
            dropped += 1
            continue
        anns.append({"id": len(anns) + 1, "image_id": a["image_id"], "category_id": 1,
                     "bbox": [float(v) for v in bb],
                     "area": float(a.get("area") or bb[2] * bb[3]),
                     "iscrowd": int(a.get("iscrowd", 0))})
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": str(cat.get("name", "object"))}]}
    return GroundTruth(coco, paths, str(p), "coco", str(cat.get("name", "object")), 1, dropped)


# ---------------------------------------------------------------------------------------------
# COCO metrics (pycocotools)
# ---------------------------------------------------------------------------------------------
@dataclass
class APResult:
    ap50: float  # AP at IoU 0.5 (COCO 101-point interpolation)
    ap: float  # AP averaged over IoU 0.50:0.05:0.95
    ar100: float  # recall averaged over IoU 0.50:0.95, 100 detections per image
    precision50: np.ndarray  # (101,) interpolated precision at IoU 0.5 per recall threshold
    recall_thresholds: np.ndarray  # (101,) 0, 0.01, ..., 1
    gt: int
    detections: int


def coco_metrics(gt: dict, dets: Sequence[dict], image_ids: Sequence | None = None) -> APResult:
    """pycocotools ``COCOeval`` (bbox) of ``dets`` (``image_id``, ``bbox`` [x, y, w, h],
    ``score``; ``category_id`` defaults to the ground truth's first category) against the COCO
    dict ``gt``, over ``image_ids`` (default: every image of ``gt``)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rec = np.linspace(0.0, 1.0, 101)
    cat = gt["categories"][0]["id"]
    ids = list(image_ids) if image_ids is not None else [im["id"] for im in gt["images"]]
    idset = set(ids)
    n_gt = sum(1 for a in gt["annotations"] if a["image_id"] in idset and not a.get("iscrowd"))
    if n_gt == 0:
        raise BlazeEarError("no ground-truth boxes on the evaluated images")
    res = [{"image_id": d["image_id"], "category_id": d.get("category_id", cat),
            "bbox": [float(v) for v in d["bbox"]], "score": float(d["score"])}
           for d in dets if d["image_id"] in idset]
    if not res:
        return APResult(0.0, 0.0, 0.0, np.zeros(101), rec, n_gt, 0)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(res)
        ev = COCOeval(cg, cd, "bbox")
        ev.params.imgIds = ids
        ev.params.catIds = [cat]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = np.asarray(ev.eval["precision"][0, :, 0, 0, -1], np.float64)  # IoU .5, all, 100
    prec = np.where(prec < 0, 0.0, prec)
    s = ev.stats
    return APResult(max(0.0, float(s[1])), max(0.0, float(s[0])), max(0.0, float(s[8])), prec,
                    np.asarray(ev.params.recThrs, np.float64), n_gt, len(res))


def to_coco_dets(det: Detections, image_id, width: int, height: int) -> list[dict]:
    """Detections in image pixels -> COCO results, boxes clipped to the image."""
    out = []
    for b, s in zip(det.boxes, det.scores):
        x0 = min(max(float(b[0]), 0.0), float(width))
        y0 = min(max(float(b[1]), 0.0), float(height))
        x1 = min(max(float(b[2]), 0.0), float(width))
        y1 = min(max(float(b[3]), 0.0), float(height))
        out.append({"image_id": image_id, "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(s)})
    return out


# ---------------------------------------------------------------------------------------------
# what to run
# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
@dataclass
class RuntimeEval:
    key: str
    label: str
    fmt: str
    precision: str
    metrics: APResult | None = None
    seconds: float = 0.0
    images: int = 0
    error: str = ""

    @property
    def ms_per_image(self) -> float | None:
        return 1000.0 * self.seconds / self.images if self.images else None

    def to_dict(self) -> dict:
        m = self.metrics
        return {"key": self.key, "label": self.label, "format": self.fmt,
                "precision": self.precision,
                "ap50": None if m is None else round(m.ap50, 6),
                "ap": None if m is None else round(m.ap, 6),
                "ar100": None if m is None else round(m.ar100, 6),
                "detections": None if m is None else m.detections,
                "ms_per_image": None if self.ms_per_image is None else
                round(self.ms_per_image, 3),
                "pr_iou50": None if m is None else
                {"recall": [round(float(v), 2) for v in m.recall_thresholds],
                 "precision": [round(float(v), 5) for v in m.precision50]},
                "error": self.error or None}


@dataclass
class EvalReport:
    target: str
    model: str
    data: str
    data_kind: str
    category: str
    images: int
    gt_boxes: int
    score_thresh: float
    decode: dict
    rows: list = field(default_factory=list)  # RuntimeEval
    skipped: list = field(default_factory=list)  # unreadable images
    notes: list = field(default_factory=list)
    plot: str | None = None

    def row(self, key: str) -> RuntimeEval | None:
        return next((r for r in self.rows if r.key == key), None)

    def reference_of(self, r: RuntimeEval) -> RuntimeEval | None:
        """int8 -> fp32 of the same format; fp32 artifact -> PyTorch."""
        if r.key.startswith("int8_"):
            return self.row("fp32_" + r.key[5:])
        if r.key.startswith("fp32_"):
            return self.row("pytorch")
        return None

    def to_dict(self) -> dict:
        return {"schema": "blazeear-edge/evaluate/1", "target": self.target,
                "model": self.model, "data": self.data, "data_kind": self.data_kind,
                "category": self.category, "images": self.images, "gt_boxes": self.gt_boxes,
                "score_thresh": self.score_thresh, "decode": self.decode,
                "coordinates": "original image pixels (letterbox undone, boxes clipped)",
                "evaluator": "pycocotools COCOeval bbox, one class, maxDets 100",
                "runtimes": [r.to_dict() for r in self.rows],
                "skipped_images": self.skipped, "notes": list(self.notes), "plot": self.plot}

    def format_text(self) -> str:
        return format_eval(self)


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
def _what_to_run(target, runtimes, weights, anchors, score_thresh):
    """(runtimes, anchor table, decode config, model name, notes) for an export folder or one
    model file."""
    t = Path(target)
    if t.is_dir() or t.name == MANIFEST_FILE:
        manifest = load_manifest(t)
        rts, notes = export_runtimes(manifest, runtimes, weights=weights)
        # no candidate cap: at the low evaluation threshold real frames have up to ~290
        # candidates, and AP must rank every one of them (the cap is for the device)
        return (rts, manifest.anchors(),
                manifest.decode_config(score_thresh=score_thresh, max_candidates=0),
                manifest.name, notes)
    if runtimes:
        raise BlazeEarError("--runtimes applies to an export folder, not a model file")
    rt, table, name = model_file_runtime(str(target), anchors)
    return [rt], table, DecodeConfig(score_thresh=score_thresh, max_candidates=0), name, []


def evaluate(target: str | os.PathLike, data: str | os.PathLike, images_root=None,
             runtimes: Sequence[str] | None = None, score_thresh: float = EVAL_SCORE_THRESH,
             count: int | None = None, anchors: str | None = None, category: str | None = None,
             plot: str | os.PathLike | None = None, weights=None,
             progress=None) -> EvalReport:
    """Evaluate an export folder (every runtime, or ``runtimes``) or one model file on ``data``.

    ``score_thresh``: decode threshold (default 0.05); ``count``: the first N images;
    ``anchors``: for a single model file (unit | ear | FILE.npy); ``category``: the COCO
    category to score when the json has several; ``plot``: write the precision-recall PNG here.
    """
    say = progress_printer(progress)
    if not 0.0 <= score_thresh <= 1.0:
        raise BlazeEarError(f"score_thresh (--score-thresh) must be within [0, 1], got {score_thresh}")
    if count is not None and count <= 0:
        raise BlazeEarError(f"count (--count) must be positive, got {count}")
    gt = load_ground_truth(data, images_root, category)
    rts, table, cfg, name, notes = _what_to_run(target, runtimes, weights, anchors, score_thresh)
    if not rts:
        raise BlazeEarError(f"{target}: nothing to run ({'; '.join(notes) or 'no runtimes'})")

    ids = gt.image_ids[:count] if count else gt.image_ids
    rows = [RuntimeEval(r.key, r.label, r.fmt, r.precision) for r in rts]
    dets: dict = {r.key: [] for r in rts}
    done, skipped = [], []
    say(f"evaluating {', '.join(r.label for r in rts)} on {len(ids)} image(s) of "
        f"{Path(gt.source).name} ...")

    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        samples = [Sample(str(i), path=gt.paths[i]) for i in chunk]
        try:
            ims = load_images(samples, shuffle=False, source=gt.source, kind=gt.kind,
                              progress=False)
        except BlazeEarError:
            skipped += [{"file": str(gt.paths[i]), "reason": "unreadable"} for i in chunk]
            continue
        by_name = {str(i): i for i in chunk}
        img_ids = [by_name[n] for n in ims.names]
        reasons = {s["file"]: s["reason"] for s in ims.provenance.get("skipped_files", [])}
        skipped += [{"file": str(gt.paths[i]), "reason": reasons.get(str(i), "unreadable")}
                    for i in chunk if i not in set(img_ids)]
        done += img_ids
        for rt, row in zip(rts, rows):
            if row.error:
                continue
            if not row.images:  # warm-up (first-call set-up) outside the timing
                try:
                    rt.run(ImageSet(ims.nchw[:1], ims.names[:1], {}))
                except (BlazeEarError, ValueError):
                    pass
            t0 = time.perf_counter()
            try:
                raw = rt.run(ims)
                for r, lb, iid in zip(raw, ims.letterboxes, img_ids):
                    d = decode_outputs(r, table, cfg, rt.specs, letterbox=lb)
                    dets[rt.key] += to_coco_dets(d, iid, lb.width, lb.height)
            except (BlazeEarError, ValueError) as exc:
                row.error = f"cannot run or decode: {str(exc).splitlines()[0]}"
                continue
            row.seconds += time.perf_counter() - t0
            row.images += len(img_ids)
        say(f"  {len(done)}/{len(ids)} images")
    if not done:
        raise BlazeEarError(f"{gt.source}: none of the {len(ids)} image(s) could be read "
                            f"(first: {gt.paths[ids[0]] if ids else '-'})")
    for row in rows:
        if not row.error:
            row.metrics = coco_metrics(gt.coco, dets[row.key], done)
    n_gt = sum(1 for a in gt.coco["annotations"] if a["image_id"] in set(done))
    if gt.dropped:
        notes.append(f"{gt.dropped} annotation(s) of other categories or without area left out")
    rep = EvalReport(str(target), name, gt.source, gt.kind, gt.category, len(done), n_gt,
                     score_thresh, cfg.to_dict(), rows, skipped, notes)
    if plot is not None:
        rep.plot = str(plot_pr(rep, plot))
    return rep


def evaluate_artifact(export_dir: str | os.PathLike, artifact: str, data, images_root=None,
                      progress=None, score_thresh: float = EVAL_SCORE_THRESH) -> dict:
    """One runtime of an export (``pytorch`` or a manifest artifact key) on ``data`` -> a dict
    with ``ap50`` (= ``map50``: one class), ``ap``, ``ar100``, ``images``, ``gt_boxes``
    (used by ``bench --data``)."""
    rep = evaluate(export_dir, data, images_root=images_root, runtimes=[artifact],
                   score_thresh=score_thresh, progress=progress)
    row = rep.row(artifact)
    if row is None or row.metrics is None:
        why = row.error if row is not None else "; ".join(rep.notes) or "not run"
        raise BlazeEarError(f"{export_dir}: {artifact} could not be evaluated ({why})")
    m = row.metrics
    return {"artifact": artifact, "ap50": m.ap50, "map50": m.ap50, "ap": m.ap,
            "ar100": m.ar100, "images": rep.images, "gt_boxes": rep.gt_boxes,
            "data": rep.data, "score_thresh": rep.score_thresh}


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------
def plot_pr(rep: EvalReport, path: str | os.PathLike) -> Path:
    """Precision-recall curves at IoU 0.5 (COCO interpolation), one line per runtime."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.parent and not path.parent.exists():
        raise BlazeEarError(f"{path.parent}: folder for the plot does not exist")
    styles = {"fp32": "-", "int8": "--"}
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    drawn = [r for r in rep.rows if r.metrics is not None]
    for k, r in enumerate(drawn):
        m = r.metrics
        # up to the highest recall reached (COCO leaves precision 0 beyond it)
        reached = np.flatnonzero(m.precision50 > 0)
        n = int(reached[-1]) + 1 if reached.size else 0
        # earlier rows drawn wider so identical curves (fp32 runtimes) stay visible
        ax.plot(m.recall_thresholds[:n], m.precision50[:n], styles.get(r.precision, "-"),
                label=f"{r.label}  AP50 {m.ap50:.3f}  AP {m.ap:.3f}",
                linewidth=max(1.2, 3.4 - 0.6 * k), drawstyle="steps-post")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (interpolated)")
    ax.set_title(f"{rep.model} on {Path(rep.data).name}: {rep.images} images, {rep.gt_boxes} "
                 f"'{rep.category}' boxes\nIoU 0.5, score >= {rep.score_thresh:g}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _signed(v: float) -> str:
    return f"{v:+.3f}"


def format_eval(rep: EvalReport) -> str:

    L = [f"evaluate {rep.model} ({rep.target}) on {Path(rep.data).name} ({rep.data_kind}, "
         f"category '{rep.category}'): {rep.images} image(s), {rep.gt_boxes} box(es)",
         f"decode: score >= {rep.score_thresh:g}, {rep.decode.get('nms')} NMS IoU "
         f"{rep.decode.get('iou_thresh'):g}, "
         + (f"candidate cap {rep.decode['max_candidates']}" if rep.decode.get("max_candidates")
            else "no candidate cap (AP ranks every candidate; parity reports the board's cap)")
         + "; boxes in original image pixels; pycocotools "
         f"COCOeval (one class, maxDets 100)", ""]
    head = ["runtime", "format", "precision", "AP50", "AP[.5:.95]", "AR@100", "dAP50",
            "dAP", "vs", "detections", "ms/img"]
    rows = []
    for r in rep.rows:
        if r.metrics is None:
            rows.append([r.label, r.fmt, r.precision, "-", "-", "-", "-", "-", "-", "-",
                         f"ERROR: {r.error}"])
            continue
        m = r.metrics
        ref = rep.reference_of(r)
        ok = ref is not None and ref.metrics is not None
        rows.append([r.label, r.fmt, r.precision, f"{m.ap50:.3f}", f"{m.ap:.3f}",
                     f"{m.ar100:.3f}", _signed(m.ap50 - ref.metrics.ap50) if ok else "-",
                     _signed(m.ap - ref.metrics.ap) if ok else "-", ref.label if ok else "-",
                     str(m.detections),
                     f"{r.ms_per_image:.2f}" if r.ms_per_image is not None else "-"])
    L += text_table(head, rows, {3, 4, 5, 6, 7, 9, 10})
    on, tf = rep.row("int8_onnx"), rep.row("int8_tflite")
    if on and tf and on.metrics and tf.metrics:
        L.append("")
        L.append(f"int8 ONNX vs int8 TFLite: AP50 {on.metrics.ap50:.3f} vs {tf.metrics.ap50:.3f}"
                 f" (TFLite - ONNX {_signed(tf.metrics.ap50 - on.metrics.ap50)}), AP "
                 f"{on.metrics.ap:.3f} vs {tf.metrics.ap:.3f} "
                 f"({_signed(tf.metrics.ap - on.metrics.ap)})")
    if rep.skipped:
        L.append(f"skipped {len(rep.skipped)} unreadable image(s), first: "
                 f"{rep.skipped[0]['file']} ({rep.skipped[0]['reason']})")
    for n in rep.notes:
        L.append(f"note: {n}")
    if rep.plot:
        L.append(f"precision-recall plot: {rep.plot}")
    return "\n".join(L)


__all__ = ["APResult", "EVAL_SCORE_THRESH", "EvalReport", "GroundTruth", "RuntimeEval",
           "coco_metrics", "evaluate", "evaluate_artifact", "format_eval", "load_ground_truth",
           "model_file_runtime", "plot_pr", "to_coco_dets"]
