"""Parity on the host: does every runtime of an export say what the PyTorch model says?

:func:`run_parity` runs every runtime an export has (PyTorch fp32 when the weights are found,
ONNX Runtime fp32 / int8, TFLite fp32 / int8) on the same pre-processed images, decodes every
runtime's raw outputs with the same manifest-driven NumPy decode, and compares each runtime with
the fp32 reference:

* raw outputs, per output tensor: max and mean absolute error and SQNR over all anchors, and
  max error and SQNR over the *relevant* anchors (reference score >= 0.05, the anchors the
  decode can keep; background anchors reach logits and offsets in the thousands that int8
  saturates without changing any detection);
* detections (greedy one-to-one matching at IoU >= 0.5): match rate, mean IoU, max score delta,
  max keypoint error in pixels of the 128 input, missing and extra detections.

Two more checks define "reproduces the on-device output":

* the C post-processing (:mod:`blazeear_edge.harness`, built for the host) fed with each int8
  artifact's outputs equals the NumPy decode of the same outputs (same count and order, boxes
  within 1e-5);
* with ``device_log``: what a board printed (the harness's log format) equals the NumPy decode
  of the int8 outputs of the same images.

and one consistency check: the manifest describes its artifacts (output order, names, shapes,
dtypes, scales and zero points read back from the ONNX graph / TFLite interpreter).

The measuring and judging is :mod:`blazeear_edge.compare` (the same engine export's verification
and bench use: one verdict per artifact everywhere); the runtimes are
:mod:`blazeear_edge.runtimes`. A runtime fails when one of its precision's
:class:`~blazeear_edge.compare.Tolerance` limits is exceeded; the failure message names the
runtime and the tensor (or "detections"). The C checks report "not available" only when a
compiler is missing, never "passed".
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from . import harness
from . import noise_floor as noise_floor_mod
from .calib_data import evaluation_images
from .capreport import cap_stats
from .compare import (FP32_DEFAULT, INT8_DEFAULT, RELEVANT_SCORE, CheckResult, RuntimeResult,
                      TensorStats, Tolerance, Tolerances, compare_runtime, fmt_db,
                      load_tolerances, tensor_stats)
from .draw import draw_detections, save_png
from .errors import BlazeEarError
from .textfmt import progress_printer, text_table
from .manifest import load_manifest
from .metrics import MatchStats
from .postprocess import Detections, decode_outputs
from .quantize import onnx_output_quantization
from .runtimes import (RUNTIME_KEYS, RUNTIME_LABELS, Runtime, export_runtimes, onnx_session,
                       tflite_interpreter)
from .weights import sha256_file


def load_parity_images(images=None, count: int | None = None, images_root=None,
                       keep_originals: bool = False):
    """The images parity runs on (see :func:`blazeear_edge.calib_data.evaluation_images`)."""
    return evaluation_images(images, count, images_root, keep_originals, "parity images")


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------
@dataclass
class ParityReport:
    export_dir: str
    model: str
    images: int
    image_source: str
    reference: str
    tolerances: Tolerances
    runtimes: list = field(default_factory=list)  # RuntimeResult
    checks: list = field(default_factory=list)  # CheckResult
    notes: list = field(default_factory=list)
    drawn: list = field(default_factory=list)  # PNG paths

    @property
    def failures(self) -> list[str]:
        out = []
        for c in self.checks:
            out += c.failures
        for r in self.runtimes:
            if r.error:
                out.append(f"{r.label}: {r.error}")
            out += r.failures
        return out

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def alerts(self) -> list[str]:
        """Differences no verdict may hide (a large change at the deployed threshold, a
        candidate cap that changes a runtime's output): shown whatever the verdict."""
        return [a for r in self.runtimes for a in r.alerts]

    def to_dict(self) -> dict:
        return {"schema": "blazeear-edge/parity/1", "export_dir": self.export_dir,
                "model": self.model, "images": self.images, "image_source": self.image_source,
                "reference": self.reference, "relevant_score": RELEVANT_SCORE,
                "tolerances": self.tolerances.to_dict(), "ok": self.ok,
                "failures": self.failures, "alerts": self.alerts,
                "runtimes": [r.to_dict() for r in self.runtimes],
                "checks": [c.to_dict() for c in self.checks], "notes": list(self.notes),
                "drawn": [str(p) for p in self.drawn]}

    def format_text(self) -> str:
        return format_report(self)


# ---------------------------------------------------------------------------------------------
# manifest vs artifacts
# ---------------------------------------------------------------------------------------------
def check_manifest(manifest, runtimes: Sequence[Runtime]) -> CheckResult:
    """The manifest's output list (order, names, shapes, dtypes, scales, zero points) and input
    quantisation against what each artifact really has."""
    problems, warnings, n_out = [], [], 0
    for rt in runtimes:
        if rt.path is None:
            continue
        art = manifest.artifact(rt.key)
        who = f"{rt.label} ({rt.key})"
        n_out += len(art.outputs)
        if art.sha256 and sha256_file(rt.path) != art.sha256:
            warnings.append(f"{who}: {rt.path.name} changed since the export (sha256 differs "
                            f"from the manifest)")
        check = _check_onnx_artifact if rt.fmt == "onnx" else _check_tflite_artifact
        problems += check(rt, art, who)
    n_art = sum(1 for r in runtimes if r.path is not None)
    detail = (f"{n_art} artifact(s), {n_out} outputs: order, names, shapes, dtypes, scales, "
              f"zero points")
    data = {"warnings": warnings} if warnings else {}
    if problems:
        return CheckResult("manifest describes the artifacts", "FAILED",
                           f"{len(problems)} mismatch(es)", problems, data)
    return CheckResult("manifest describes the artifacts", "passed", detail, [], data)


def _quant_differs(q: dict | None, scale: float, zp: int) -> bool:
    return q is None or int(q["zero_point"]) != int(zp) or not np.isclose(
        q["scale"], scale, rtol=1e-6, atol=0)


def _check_onnx_artifact(rt: Runtime, art, who: str) -> list[str]:
    problems = []
    model_outs = [(o.name, [d if isinstance(d, int) else None for d in o.shape])
                  for o in onnx_session(rt.path).get_outputs()]
    quant = onnx_output_quantization(rt.path) if rt.precision == "int8" else {}
    if len(model_outs) != len(art.outputs):
        problems.append(f"{who}: the manifest lists {len(art.outputs)} outputs, the model has "
                        f"{len(model_outs)}")
    for i, (o, (name, shape)) in enumerate(zip(art.outputs, model_outs)):
        if o.spec.name != name:
            problems.append(f"{who}: output #{i}: the manifest says '{o.spec.name}', the "
                            f"model's output #{i} is '{name}' (wrong output order in the "
                            f"manifest)")
            continue
        if list(o.spec.shape) != shape and None not in shape:
            problems.append(f"{who}: output {name}: manifest shape {list(o.spec.shape)}, model "
                            f"{shape}")
        if name in quant and _quant_differs(o.quantization, *quant[name]):
            q = o.quantization or {}
            problems.append(f"{who}: output {name}: manifest scale {q.get('scale')} / zero "
                            f"point {q.get('zero_point')}, the model's DequantizeLinear has "
                            f"{quant[name][0]:.9g} / {quant[name][1]}")
    return problems


def _check_tflite_artifact(rt: Runtime, art, who: str) -> list[str]:
    problems = []
    it = tflite_interpreter(rt.path)
    details = it.get_output_details()
    if len(details) != len(art.outputs):
        problems.append(f"{who}: the manifest lists {len(art.outputs)} outputs, the model has "
                        f"{len(details)}")
    for i, (o, d) in enumerate(zip(art.outputs, details)):
        name, shape = o.spec.name, [int(v) for v in d["shape"]]
        if (o.tensor_name is not None and o.tensor_name != d["name"]) or \
                list(o.spec.shape) != shape:
            problems.append(f"{who}: output #{i}: the manifest says '{name}' (tensor "
                            f"{o.tensor_name}, {tuple(o.spec.shape)}), the model's output #{i} "
                            f"is tensor {d['name']} {tuple(shape)} (wrong output order in the "
                            f"manifest)")
            continue
        dtype = np.dtype(d["dtype"]).name
        if o.spec.dtype != dtype:
            problems.append(f"{who}: output {name}: manifest dtype {o.spec.dtype}, model "
                            f"{dtype}")
        elif dtype != "float32":
            s, z = d["quantization"]
            if _quant_differs({"scale": o.spec.scale, "zero_point": o.spec.zero_point}, s, z) \
                    or _quant_differs(o.quantization, s, z):
                problems.append(f"{who}: output {name}: manifest scale {o.spec.scale:.9g} / "
                                f"zero point {o.spec.zero_point}, the model has {s:.9g} / {z}")
    d_in, inp = it.get_input_details()[0], art.input
    in_dtype = np.dtype(d_in["dtype"]).name
    if inp.dtype != in_dtype:
        problems.append(f"{who}: input: manifest dtype {inp.dtype}, model {in_dtype}")
    elif in_dtype != "float32":
        s, z = d_in["quantization"]
        if inp.scale is None or _quant_differs({"scale": inp.scale,
                                                "zero_point": inp.zero_point or 0}, s, z):
            problems.append(f"{who}: input: manifest scale {inp.scale} / zero point "
                            f"{inp.zero_point}, the model has {s} / {z}")
    return problems


# ---------------------------------------------------------------------------------------------
# C decode and device log
# ---------------------------------------------------------------------------------------------
def check_c_decode(manifest, key: str, label: str, raw: list[dict], imageset) -> CheckResult:
    """Build the C post-processing for the host, feed it this artifact's int8 outputs and compare
    with the NumPy decode of the same outputs (same count and order, boxes within 1e-5)."""
    name = f"C decode == NumPy decode ({label})"
    tools = harness.find_tools()
    if not tools.cc:
        return CheckResult(name, "not available",
                           "C harness: not available (no gcc: apt-get install -y gcc)")
    hm = harness.harness_model(manifest, artifact=key)
    vecs = harness.make_vectors(hm, harness.integer_outputs(hm, raw), names=imageset.names,
                                letterboxes=imageset.letterboxes, source=key)
    with tempfile.TemporaryDirectory(prefix="blazeear-parity-c-") as td:
        try:
            rep = harness.run_harness(hm, vecs, td, targets=("host",), tools=tools)
        except BlazeEarError as exc:  # a build or run failure of the C code is a failed check
            return CheckResult(name, "FAILED", str(exc).splitlines()[0],
                               [f"{name}: {str(exc).splitlines()[0]}"])
    rs = rep.results["host"]
    frames = [r for r in rs if r.index >= 0 and r.name != "?"]
    bad = [r for r in rs if not r.match]
    box, score = rep.max_errors("host")
    exact = rep.bit_exact("host")
    dets = sum(len(v.expected) for v in vecs)
    data = {"frames": len(frames), "matching": sum(r.match for r in frames),
            "detections": dets, "bit_exact": exact, "max_box_err": box,
            "max_score_err": score, "tolerance_box": harness.BOX_TOL}
    if bad:
        fails = [f"{name}: frame {r.name}: {r.problem}" for r in bad[:10]]
        if len(bad) > 10:
            fails.append(f"{name}: ... {len(bad) - 10} more frame(s) differ")
        return CheckResult(name, "FAILED", f"{len(bad)}/{len(frames)} frames differ", fails,
                           data)
    how = "bit-exact" if exact else f"max box err {box:.1e}, max score err {score:.1e}"
    return CheckResult(name, "passed",
                       f"{len(frames)}/{len(frames)} frames, {dets} detections: same count and "
                       f"order, {how} (host gcc, ASan+UBSan)", [], data)


def check_device_log(manifest, path, runtimes: dict, raws: dict, imageset) -> CheckResult:
    """Each frame of a device log whose name is one of the images against the NumPy decode of the
    int8 artifact's outputs for that image (in the space the frame was printed in)."""
    name = "device log == NumPy decode"
    log = harness.read_device_log(path)
    hm = harness.harness_model(manifest)
    key = hm.artifact
    if key not in raws:
        return CheckResult(name, "FAILED", f"{key} was not run",
                           [f"{name}: the int8 artifact {key} was not run on the host"])
    name = f"device log == NumPy decode ({runtimes[key].label})"
    # the names the harness prints for these images (sanitised, unique)
    logged = harness.logged_names([_Named(n) for n in imageset.names])
    by_name = {n: i for i, n in enumerate(logged)}
    compared, fails, worst_box, worst_score = 0, [], 0.0, 0.0
    ignored = []
    cfg = hm.config
    for fr in log.frames:
        i = by_name.get(fr.name)
        if i is None:
            ignored.append(fr.name)
            continue
        if fr.error is not None:
            fails.append(f"{name}: frame {fr.name}: the board reported error code {fr.error}")
            continue
        ints = harness.integer_outputs(hm, [raws[key][i]])[0]
        lb = imageset.letterboxes[i] if fr.space == "image" else None
        if lb is not None and fr.letterbox is not None and fr.letterbox != lb:
            fails.append(f"{name}: frame {fr.name}: letterbox {fr.letterbox} differs from the "
                         f"host's {lb}")
            continue
        expected = decode_outputs(ints, hm.anchors, cfg, hm.specs, letterbox=lb)
        be, se, _, ok, problem = harness.compare_frame(expected, fr.detections)
        compared += 1
        if not ok:
            fails.append(f"{name}: frame {fr.name}: {problem}")
        else:
            worst_box, worst_score = max(worst_box, be), max(worst_score, se)
    if not compared and not fails:
        return CheckResult(name, "FAILED", "no frame of the log is one of these images",
                           [f"{name}: {path}: none of its {len(log.frames)} frame(s) is one of "
                            f"the {len(imageset)} images (run the board on the same --images "
                            f"and --count)"])
    data = {"log": str(path), "frames_compared": compared, "frames_ignored": len(ignored),
            "max_box_err": worst_box, "max_score_err": worst_score}
    if log.end is None:
        fails.append(f"{name}: {path}: the log has no end line (the run was cut short)")
    if fails:
        return CheckResult(name, "FAILED", f"{len(fails)} problem(s) in {compared} frame(s)",
                           fails, data)
    extra = f"; {len(ignored)} other frame(s) ignored" if ignored else ""
    return CheckResult(name, "passed", f"{compared} frame(s) equal (max box err "
                       f"{worst_box:.1e}, max score err {worst_score:.1e}){extra}", [], data)


@dataclass
class _Named:
    name: str


# ---------------------------------------------------------------------------------------------
# pictures
# ---------------------------------------------------------------------------------------------
def _badness(m: MatchStats) -> float:
    iou_loss = (1.0 - m.mean_iou) if m.matched else 0.0
    return float(m.missing + m.extra + iou_loss + m.max_score_delta)


def draw_worst(report: ParityReport, imageset, ref_dets: list, dets: dict, out_dir,
               count: int = 8) -> list[Path]:
    """Side-by-side PNGs (reference | int8) of the ``count`` worst images of each int8 runtime."""
    import cv2


    out = Path(out_dir)
    written = []
    for res in report.runtimes:
        if res.precision != "int8" or res.key not in dets or not res.per_image:
            continue
        order = sorted(range(len(res.per_image)), key=lambda i: -_badness(res.per_image[i]))
        for rank, i in enumerate([i for i in order if _badness(res.per_image[i]) > 0][:count]):
            img = imageset.originals[i]
            h, w = img.shape[:2]
            f = max(1.0, 384.0 / max(h, w))
            big = cv2.resize(img, (int(round(w * f)), int(round(h * f))),
                             interpolation=cv2.INTER_CUBIC) if f > 1 else img

            def scaled(d: Detections) -> Detections:
                return Detections(d.boxes * f, d.keypoints * f, d.scores)

            m = res.per_image[i]
            left = _titled(draw_detections(big, scaled(ref_dets[i]), (0, 255, 0)),
                           f"{report.reference}: {len(ref_dets[i])} det")
            iou = f", IoU {m.mean_iou:.2f}" if m.matched else ""
            right = _titled(draw_detections(big, scaled(dets[res.key][i]), (255, 140, 0)),
                            f"{res.label}: {m.test} det ({m.missing} missing, {m.extra} "
                            f"extra{iou})")
            sep = np.full((left.shape[0], 6, 3), 255, np.uint8)
            safe = "".join(c if c.isalnum() or c in "-_." else "_"
                           for c in imageset.names[i])[-60:]
            written.append(save_png(np.concatenate([left, sep, right], 1),
                                    out / f"{res.key}_{rank + 1:02d}_{safe}.png"))
    return written


def _titled(img: np.ndarray, title: str) -> np.ndarray:
    """``img`` under a black band holding ``title`` (white text)."""
    import cv2

    band = np.zeros((30, img.shape[1], 3), np.uint8)
    fs = 0.5
    while fs > 0.3 and cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)[0][0] > \
            img.shape[1] - 8:
        fs -= 0.05
    cv2.putText(band, title, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.concatenate([band, img], 0)


# ---------------------------------------------------------------------------------------------
# the whole run
# ---------------------------------------------------------------------------------------------
def run_parity(export_dir: str | os.PathLike, images=None, count: int | None = None,
               tolerances: Tolerances | None = None, device_log=None, draw_dir=None,
               images_root=None, weights=None, c_check: bool = True,
               draw_count: int = 8, runtimes: Sequence[str] | None = None,
               progress=None, noise_floor: bool = True) -> ParityReport:
    """Run every runtime of the export on the same images and compare (see the module doc).

    ``images``: None for the built-in hold-out, or a folder / image / CSV / COCO json;
    ``count``: use the first N; ``tolerances``: :class:`Tolerances` (default: the documented
    ones); ``device_log``: a board's log to compare; ``draw_dir``: write side-by-side PNGs of the
    worst images there; ``weights``: the PyTorch checkpoint when the manifest's path moved;
    ``c_check``: build and run the C decode on the host; ``runtimes``: compare only these
    (keys of :data:`RUNTIME_KEYS`; the PyTorch reference is always added); ``progress``: a
    callable taking one status line, True (lines to stderr), or None; ``noise_floor``: also
    state each int8 artifact's error as the equivalent camera noise of the fp32 reference
    (:mod:`blazeear_edge.noise_floor`).
    """
    say = progress_printer(progress)
    tol = tolerances or Tolerances()
    manifest = load_manifest(export_dir)
    anchors = manifest.anchors()
    cfg = manifest.decode_config()
    imageset, img_desc = load_parity_images(images, count, images_root,
                                            keep_originals=draw_dir is not None)
    keys = None if runtimes is None else ["pytorch"] + [k for k in runtimes if k != "pytorch"]
    runtimes, notes = export_runtimes(manifest, keys, weights=weights)
    if not runtimes:
        raise BlazeEarError(f"{manifest.root}: no runtime could be run")
    ref_rt = runtimes[0]
    if ref_rt.precision != "fp32":
        raise BlazeEarError(f"{manifest.root}: no fp32 reference (PyTorch weights or an fp32 "
                            f"artifact) for the int8 artifacts to be compared with")
    if ref_rt.key != "pytorch":
        notes.append(f"reference: {ref_rt.label} (the PyTorch weights are not available)")
    report = ParityReport(str(manifest.root), manifest.name, len(imageset), img_desc,
                          ref_rt.label, tol, notes=notes)

    raws, dets = {}, {}
    for rt in runtimes:
        res = RuntimeResult(rt.key, rt.label, rt.precision, rt.fmt,
                            str(rt.path) if rt.path else rt.note, reference=rt is ref_rt,
                            reference_label="" if rt is ref_rt else ref_rt.label)
        report.runtimes.append(res)
        say(f"running {rt.label} on {len(imageset)} image(s) ...")
        t0 = time.perf_counter()
        try:
            raw = rt.run(imageset)
            d = [decode_outputs(r, anchors, cfg, rt.specs) for r in raw]
        except (BlazeEarError, ValueError) as exc:
            res.error = f"cannot run or decode: {str(exc).splitlines()[0]}"
            continue
        res.seconds = time.perf_counter() - t0
        raws[rt.key], dets[rt.key] = raw, d
        res.detections, res.images = sum(len(x) for x in d), len(d)
        if rt is not ref_rt:
            compare_runtime(res, raws[ref_rt.key], ref_rt.specs, raw, rt.specs, anchors, cfg,
                            tol.for_precision(rt.precision), dets[ref_rt.key], d,
                            names=imageset.names)
        elif cfg.max_candidates:  # the model's own outputs through the board's cap
            _, cap = cap_stats(raw, anchors, cfg, rt.specs, d, imageset.names)
            res.cap = cap.to_dict()
            if cap.changed:
                res.alerts.append(f"{rt.label} (reference): {cap.sentence()}")

    if noise_floor and ref_rt.key in raws:
        say(f"measuring {ref_rt.label} under camera-level pixel noise (the int8 yardstick) ...")
        from .calib_data import ImageSet

        noise_floor_mod.attach(
            report.runtimes, lambda x: ref_rt.run(ImageSet(x, imageset.names, {})),
            imageset.nchw, raws[ref_rt.key], dets[ref_rt.key], ref_rt.specs, anchors, cfg)
    labels = {rt.key: rt for rt in runtimes}
    report.checks += _device_checks(manifest, runtimes, raws, imageset, keys, c_check,
                                    device_log, say)
    report.checks.append(check_candidate_cap(cfg, report.runtimes))
    if draw_dir is not None and ref_rt.key in dets:
        ref_px = [decode_outputs(r, anchors, cfg, ref_rt.specs, letterbox=lb)
                  for r, lb in zip(raws[ref_rt.key], imageset.letterboxes)]
        px = {k: [decode_outputs(r, anchors, cfg, labels[k].specs, letterbox=lb)
                  for r, lb in zip(raws[k], imageset.letterboxes)]
              for k in raws if labels[k].precision == "int8"}
        report.drawn = draw_worst(report, imageset, ref_px, px, draw_dir, draw_count)
    return report


CAP_CHECK = "candidate cap never changes the output"


def check_candidate_cap(cfg, results: Sequence[RuntimeResult]) -> CheckResult:
    """The board's candidate cap (``decode.max_candidates``) against the uncapped decode of the
    same outputs, per runtime: the frames on which it bound, and those on which it changed the
    output (a difference between the board and the model; status WARNING, not a failure)."""
    k = int(cfg.max_candidates)
    if not k:
        return CheckResult(CAP_CHECK, "passed", "no candidate cap in the manifest's decode "
                           "(max_candidates 0): every decode is the full one")
    data = {r.key: r.cap for r in results if r.cap}
    bound = {r.label: r.cap for r in results if r.cap.get("frames_bound")}
    changed = {lab: c for lab, c in bound.items() if c.get("frames_changed")}
    most = max((c.get("most_candidates", 0) for c in data.values()), default=0)
    if not bound:
        frames = max((c.get("frames", 0) for c in data.values()), default=0)
        return CheckResult(CAP_CHECK, "passed", f"K={k} never bound ({frames} frame(s) per "
                           f"runtime, at most {most} candidates on a frame)", [], data)
    parts = []
    for lab, c in bound.items():
        t = (f"{lab}: bound on {c['frames_bound']}/{c['frames']} frame(s), "
             f"{c['candidates_dropped']} candidate(s) dropped")
        if c.get("frames_changed"):
            t += (f", output changed on {c['frames_changed']} ({c['detections']} detections vs "
                  f"{c['detections_uncapped']} uncapped: {c['detections_lost']} lost, "
                  f"{c['detections_moved']} moved; e.g. {', '.join(c['bound_frames'][:3])})")
        parts.append(t)
    return CheckResult(CAP_CHECK, "WARNING" if changed else "passed",
                       f"K={k}: " + "; ".join(parts), [], data)


def _device_checks(manifest, runtimes, raws, imageset, keys, c_check, device_log,
                   say) -> list[CheckResult]:
    """The manifest check, the C decode per int8 artifact and the device log."""
    out = [check_manifest(manifest, runtimes)]
    labels = {rt.key: rt for rt in runtimes}
    for key in ("int8_tflite", "int8_onnx"):
        if key not in manifest.artifacts or (keys is not None and key not in keys):
            continue
        name = f"C decode == NumPy decode ({RUNTIME_LABELS[key]})"
        if key not in raws:
            out.append(CheckResult(name, "not run", f"{RUNTIME_LABELS[key]} did not run"))
        elif not c_check:
            out.append(CheckResult(name, "not run", "skipped (--no-c)"))
        else:
            say(f"building the C post-processing for the host and feeding it "
                f"{RUNTIME_LABELS[key]} ...")
            out.append(check_c_decode(manifest, key, RUNTIME_LABELS[key], raws[key], imageset))
    if not any(k in manifest.artifacts for k in ("int8_tflite", "int8_onnx")):
        out.append(CheckResult("C decode == NumPy decode", "not run",
                               "the export has no int8 artifact"))
    if device_log is not None:
        out.append(check_device_log(manifest, device_log, labels, raws, imageset))
    else:
        out.append(CheckResult("device log == NumPy decode", "not run",
                               "give --device-log FILE (a board's UART capture)"))
    return out


# ---------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------
def _fmt_e(v) -> str:
    if v is None:
        return "-"
    return "0" if v == 0 else f"{v:.2e}"


def _size_and_noise_lines(rep: ParityReport) -> list[str]:
    """The per-box-width table and the noise-floor table of the int8 runtimes."""
    L = []
    measured = [r for r in rep.runtimes if not r.reference and not r.error and r.by_size]
    int8 = [r for r in measured if r.precision == "int8"]
    if int8:
        rows = []
        for r in int8:
            for b in r.by_size:
                rows.append([r.label, b["width"], str(b["ref"]), str(b["matched"]),
                             "-" if b["recall"] is None else f"{b['recall']:.3f}",
                             "-" if b["mean_iou"] is None else f"{b['mean_iou']:.4f}"])
        L.append("detections by reference box width (fraction of the 128 input; large faces "
                 "are the 8x8 head's)")
        L += text_table(["runtime", "box width", "ref", "matched", "recall", "mean IoU"], rows,
                        {2, 3, 4, 5})
        L.append("")
    with_noise = [r for r in int8 if r.noise_equivalent]
    if with_noise:
        labels = {k: lab for k, lab, _ in noise_floor_mod.FIGURES}
        rows = []
        for r in with_noise:
            ne = r.noise_equivalent
            by = ne["by_figure"]
            rows.append([r.label, noise_floor_mod.fmt_level(ne)] + [
                f"> ±{ne['beyond']}" if by[k] is None else f"±{by[k]}" for k in labels])
        L.append(f"int8 in camera noise: the smallest ±k levels (of 255) of pixel noise under "
                 f"which {rep.reference} disturbs its own detections as much as the int8 "
                 f"artifact does")
        L += text_table(["runtime", "equivalent noise"] + [f"by {v}" for v in labels.values()],
                        rows)
        ladder = with_noise[0].noise_equivalent.get("ladder", {})
        if ladder:
            L.append("  fp32 under noise: " + "; ".join(
                f"±{k}: recall {d['recall']:.3f}, precision {d['precision']:.3f}, IoU "
                f"{(d['mean_iou'] or float('nan')):.3f}, SQNR "
                f"{fmt_db(d['worst_sqnr_db'])} dB" for k, d in ladder.items()))
        L.append("")
    return L


def format_report(rep: ParityReport) -> str:
    L = [f"parity of {rep.model} ({rep.export_dir}) on {rep.images} image(s): {rep.image_source}",
         f"reference: {rep.reference}; relevant anchors: reference score >= {RELEVANT_SCORE}", ""]
    # raw outputs
    rows = []
    for r in rep.runtimes:
        if r.reference or r.error:
            continue
        tol = rep.tolerances.for_precision(r.precision)
        for t in r.tensors:
            v = t.sqnr_db_relevant
            bad = v is not None and not v >= tol.min_sqnr_db
            warn = v is not None and not bad and v < tol.warn_sqnr_db
            rows.append([r.label, t.name, _fmt_e(t.max_abs_err), _fmt_e(t.mean_abs_err),
                         fmt_db(t.sqnr_db), _fmt_e(t.max_abs_err_relevant),
                         fmt_db(v), f">= {tol.min_sqnr_db:g}",
                         "FAIL" if bad else (f"ok (< {tol.warn_sqnr_db:g}: warn)" if warn
                                             else "ok")])
    L.append("raw outputs vs reference (all anchors | relevant anchors)")
    L += text_table(["runtime", "tensor", "max |err|", "mean |err|", "SQNR dB",
                     "max |err| rel", "SQNR dB rel", "tolerance", "result"], rows,
                    {2, 3, 4, 5, 6})
    L.append("")
    # detections
    rows, conf_at = [], {}
    for r in rep.runtimes:
        if r.error:
            rows.append([r.label] + ["-"] * 10 + [r.status])
            continue
        if r.reference:
            rows.append([r.label, str(r.detections)] + ["-"] * 9 + ["reference"])
            continue
        m, c = r.match, r.confident
        conf_at[r.precision] = c["score"]
        rows.append([r.label, str(m.ref), str(m.test), str(m.matched), str(m.missing),
                     str(m.extra), str(c["missing"]), str(c["extra"]),
                     f"{m.mean_iou:.4f}" if m.matched else "-", f"{m.max_score_delta:.2e}"
                     if m.max_score_delta else "0", f"{m.max_keypoint_err_px:.3f}",
                     "FAIL" if any(": detections:" in f for f in r.failures) else "ok"])
    L.append("detections vs reference (greedy one-to-one matching at IoU >= 0.5)")
    L += text_table(["runtime", "ref", "test", "matched", "missing", "extra", "conf. missing",
                     "conf. extra", "mean IoU", "max |d score|", "max kp err px", "result"],
                    rows, set(range(1, 11)))
    if conf_at:
        L.append("conf.: only detections scoring >= " + ", ".join(
            f"{v:.2f} ({k})" for k, v in conf_at.items()) + " (threshold + score_margin); the "
            "missing/extra tolerances count these")
    L.append("")
    L += _size_and_noise_lines(rep)
    # tolerances
    rows = [[f.name, f"{getattr(rep.tolerances.fp32, f.name):g}",
             f"{getattr(rep.tolerances.int8, f.name):g}"] for f in fields(Tolerance)]
    L.append("tolerances")
    L += text_table(["limit", "fp32", "int8"], rows, {1, 2})
    L.append("")
    # checks
    rows = [[c.name, c.status, c.detail] for c in rep.checks]
    L.append("on-device checks")
    L += text_table(["check", "result", "detail"], rows)
    for c in rep.checks:
        for wmsg in c.data.get("warnings", []):
            L.append(f"  warning: {wmsg}")
    L.append("")
    for n in rep.notes:
        L.append(f"note: {n}")
    if rep.drawn:
        L.append(f"pictures: {len(rep.drawn)} side-by-side PNG(s) in "
                 f"{Path(rep.drawn[0]).parent}")
    alerts = rep.alerts
    if alerts:
        L.append(f"WARNING: {len(alerts)} difference(s) the verdict does not count")
        L += [f"  - {a}" for a in alerts]
    fails = rep.failures
    if fails:
        L.append(f"FAIL: {len(fails)} problem(s)")
        L += [f"  - {f}" for f in fails]
    else:
        L.append("PASS: every runtime within its tolerances" + (
            "" if all(c.status in ("passed", "WARNING") for c in rep.checks) else
            "; some on-device checks were not run or not available (see above)")
            + (f"; {len(alerts)} warning(s) above" if alerts else ""))
    return "\n".join(L)


__all__ = ["FP32_DEFAULT", "INT8_DEFAULT", "RELEVANT_SCORE", "RUNTIME_KEYS", "RUNTIME_LABELS",
           "CheckResult", "ParityReport", "Runtime", "RuntimeResult", "TensorStats", "Tolerance",
           "Tolerances", "check_c_decode", "check_candidate_cap", "check_device_log",
           "check_manifest", "draw_worst",
           "export_runtimes", "format_report", "load_parity_images", "load_tolerances",
           "progress_printer", "run_parity", "tensor_stats", "text_table"]
