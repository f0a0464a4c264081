"""Drop-in for ST's STM32N6-GettingStarted-FaceDetection application (``export --st-app``).

ST's application feeds raw camera bytes into the network, binds the four int8 outputs (v1.0.0 by
index, v1.1.0 by size) and decodes them with ST's ``lib_vision_models_pp`` BlazeFace
post-processing at confidence 0.8, IoU 0.5, hard NMS, at most 3 faces. This module holds
everything specific to that application, written from the documented facts (issue 15,
``docs/st-app.md``), never from ST's code (SLA0044):

* :func:`fold_camera_input`: the model with ``x = 2 y - 1`` folded into the stem, so it takes
  ``y = p / 255`` and a uint8 input of scale 1/255, zero point 0 is exact for camera bytes p. The
  stem's border padding becomes 0.5 (= x 0), which keeps the fold exact in float.
* :data:`ST_OUTPUT_ORDER` and :func:`reorder_tflite_outputs`: the int8 TFLite's outputs in the
  order of ST's own BlazeFace (512x16, 512x1, 384x1, 384x16), which index-binding apps assume.
* :data:`ST_APP_DECODE`: the decode profile, with ST's int8 pre-filter rounding
  (``DecodeConfig.st_prefilter``) and :func:`prefilter_warnings` when it costs a score level.
* :func:`st_reference_decode`: a re-implementation of ST's post-processing *from its documented
  behaviour* (binding, pre-filter, sigmoid, anchor decode, hard NMS, cap), used to measure what the
  board would display for each app binding. It is not ST's library.
* :func:`write_st_app_package`: the folder a user copies into ST's application.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import numpy as np

from .errors import BlazeEarError
from .postprocess import DecodeConfig, OutputSpec, st_prefilter_level

#: ST's application settings (app_config.h of the FaceDetection app).
ST_APP_DECODE = DecodeConfig(score_thresh=0.8, iou_thresh=0.5, nms="hard", max_detections=3,
                             st_prefilter=True)
#: int8 range of the score outputs for --st-app: 0.0392 logit per step (<= 0.04, ST's own model
#: has 0.0369), zero point -26 so ST's truncated pre-filter loses no level at 0.8, logit 6
#: (score 0.9975) far above the most confident face measured (2.4 on ear210). Measured against
#: +-16 on ear210: equal-score ties at 0.8 in 0 images instead of 2 (benchmarks/README.md).
ST_APP_SCORE_RANGE = (-4.0, 6.0)
#: The tag of ST's application the package's README names (binds outputs by size).
ST_APP_TAG = "v1.1.0"
#: Output order of ST's own BlazeFace TFLite (what app v1.0.0 binds by index).
ST_OUTPUT_ORDER = ("regressors_16x16", "scores_16x16", "scores_8x8", "regressors_8x8")
ST_OUTPUT_SHAPES = ((1, 512, 16), (1, 512, 1), (1, 384, 1), (1, 384, 16))
#: the board profile / memory pool of ST's app for the STM32N6570-DK (names as in ST's app;
#: check them against your checkout's Model/ folder)
ST_BOARD = "STM32N6570-DK"
ST_NEURAL_ART_PROFILE = "default@user_neuralart_STM32N6570-DK.json"


# ---------------------------------------------------------------------------------------------
# 1. camera input
# ---------------------------------------------------------------------------------------------
def fold_camera_input(model):
    """A copy of ``model`` taking ``y = p / 255`` instead of ``x = p / 127.5 - 1 = 2 y - 1``.

    The stem conv ``W * pad0(x) + b`` becomes ``(2 W) * pad(y, 0.5) + (b - sum W)``: inside the
    image ``2 W y - W = W x``; on the border the padded 0.5 gives ``2 W 0.5 - W = 0``, which is
    what the zero-padded x contributed. Exact in float (tests check it against the original).
    """
    import torch

    m = copy.deepcopy(model)
    conv = m.backbone1[0]
    with torch.no_grad():
        w = conv.weight.detach().clone()
        conv.bias.copy_(conv.bias - w.sum(dim=(1, 2, 3)))
        conv.weight.copy_(w * 2.0)
    m.stem_pad_value = 0.5
    return m.eval()


def calibration_to_camera(nhwc: np.ndarray) -> np.ndarray:
    """Calibration images x in [-1, 1] -> y = (x + 1) / 2 in [0, 1] (the folded model's input)."""
    return ((np.asarray(nhwc, np.float32) + np.float32(1.0)) * np.float32(0.5)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# 2. output order
# ---------------------------------------------------------------------------------------------
def reorder_tflite_outputs(blob: bytes, shapes=ST_OUTPUT_SHAPES) -> bytes:
    """Rewrite a TFLite flatbuffer so its outputs come in ``shapes`` order (subgraph outputs and
    the serving signature). Only the output list changes; tensors and ops are untouched."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.convert_bytearray_to_object(bytearray(blob))
    sub = model.subgraphs[0]
    outs = [int(i) for i in sub.outputs]
    by_shape = {tuple(int(v) for v in sub.tensors[i].shape): i for i in outs}
    if len(by_shape) != len(outs) or set(by_shape) != set(map(tuple, shapes)):
        raise BlazeEarError(f"TFLite outputs {sorted(by_shape)} cannot be put in ST's order "
                            f"{list(shapes)} (split outputs needed)")
    new = [by_shape[tuple(s)] for s in shapes]
    sub.outputs = np.array(new, dtype=np.int32)
    for sig in model.signatureDefs or []:
        if sig.subgraphIndex == 0 and sig.outputs:
            pos = {int(t.tensorIndex): t for t in sig.outputs}
            if set(pos) == set(new):
                sig.outputs = [pos[i] for i in new]
    return bytes(fu.convert_object_to_bytearray(model))


def st_app_record(cfg, art) -> dict:
    """The manifest's ``st_app`` entry: the camera / output-order / score-range choices of an
    export (``cfg``: ExportConfig) and what its int8 TFLite (``art``: ArtifactEntry) really has."""
    return {
        "camera_input": cfg.camera_input,
        "input_mapping": ("uint8 camera byte p is the input (scale 1/255, zero point 0); the "
                          "float model sees y = p / 255, x = 2 y - 1 folded into the stem, "
                          "stem border padded with 0.5" if cfg.camera_input else
                          "q = clip(round((p / 127.5 - 1) / scale) + zero_point)"),
        "output_order": cfg.output_order,
        "outputs": [[n, list(s)] for n, s in output_order(art.outputs)],
        "score_range": list(cfg.score_range) if cfg.score_range else None,
        "score_step_logit": {o.spec.name: float(o.spec.scale) for o in art.outputs
                             if o.spec.kind == "scores"},
        "package": "st_app" if cfg.st_app else None}


def output_order(outputs) -> list[tuple[str, tuple]]:
    """(name, shape) of an artifact's outputs in file order (manifest OutputEntry list)."""
    return [(o.spec.name, tuple(o.spec.shape or ())) for o in outputs]


# ---------------------------------------------------------------------------------------------
# 3. decode profile
# ---------------------------------------------------------------------------------------------
def prefilter_warnings(cfg: DecodeConfig, specs) -> list[str]:
    """A warning per integer score tensor where ST's truncated pre-filter drops a level that the
    exact threshold keeps (``q > T`` rejects a q whose score is >= the threshold)."""
    out = []
    for s in specs:
        if s.kind != "scores" or s.dtype not in ("int8", "uint8"):
            continue
        lost = lost_levels(cfg.score_thresh, s)
        if lost:
            out.append(f"{s.name}: at threshold {cfg.score_thresh} ST's pre-filter "
                       f"q > {st_prefilter_level(cfg.score_thresh, s.scale, s.zero_point, s.dtype)}"
                       f" drops {len(lost)} score level(s) (q = {', '.join(map(str, lost))}, "
                       f"score {_score(lost[0], s):.4f}) that pass the threshold")
    return out


def _score(q: int, s: OutputSpec) -> float:
    x = np.float32(q - s.zero_point) * np.float32(s.scale)
    return float(1.0 / (1.0 + np.exp(-np.float64(x))))


def lost_levels(thresh: float, s: OutputSpec) -> list[int]:
    """Integer levels of score tensor ``s`` whose score is >= ``thresh`` but which ST's
    pre-filter rejects."""
    info = np.iinfo(np.dtype(s.dtype))
    level = st_prefilter_level(thresh, s.scale, s.zero_point, s.dtype)
    return [q for q in range(info.min, min(level, info.max) + 1)
            if np.float32(_score(q, s)) >= np.float32(thresh)]


def score_step(spec: OutputSpec) -> float:
    """Logit per int8 step of a score output."""
    return float(spec.scale)


# ---------------------------------------------------------------------------------------------
# ST's post-processing, re-implemented from its documented behaviour (not ST's code)
# ---------------------------------------------------------------------------------------------
def st_reference_decode(buffers: list[np.ndarray], quant: list[tuple[float, int]],
                        anchors: np.ndarray, binding: str, cfg: DecodeConfig = ST_APP_DECODE,
                        tie: str = "anchor") -> np.ndarray:
    """What ST's app shows for the int8 output buffers in the network's order: (n, 5) rows
    (score, x0, y0, x1, y1), best first, normalised to the 128 input.

    Written from the documented behaviour, independently of :mod:`.postprocess`: bind the buffers
    (``index``, app v1.0.0: buffer 0 is read as the 512x16 boxes, 1 as the 512x1 scores, 2 as the
    384x1 scores, 3 as the 384x16 boxes; ``size``, v1.1.0: by element count), keep
    ``q > (int8)trunc(logit(t) / scale + zp)``, dequantise, sigmoid, decode against the anchors,
    sort by score (``tie`` ``anchor``: equal scores by anchor index, the documented order;
    ``reverse``: the opposite, to show what an unstable sort may do), hard NMS (IoU > threshold
    suppresses), at most ``max_detections``. Raises :class:`BlazeEarError` when a buffer is too
    small for its role (a read past its end on the board).
    """
    if binding not in ("index", "size"):
        raise ValueError("binding must be 'index' or 'size'")
    bufs = [np.asarray(b).reshape(-1) for b in buffers]
    if binding == "index":
        roles = list(range(4))
    else:
        roles = [next(i for i, b in enumerate(bufs) if b.size == int(np.prod(s)))
                 for s in ST_OUTPUT_SHAPES]
    t = np.float32(cfg.score_thresh)
    scores, rows, base = [], [], {"16x16": 0, "8x8": 512}
    for role, i in enumerate(roles):
        name, shape = ST_OUTPUT_ORDER[role], ST_OUTPUT_SHAPES[role]
        n = int(np.prod(shape))
        if bufs[i].size < n:
            raise BlazeEarError(f"buffer {i} ({bufs[i].size} values) read as {name} {shape}: "
                                "read past its end")
        q = bufs[i][:n].astype(np.int32)
        scale, zp = np.float32(quant[i][0]), int(quant[i][1])
        if name.startswith("scores"):
            level = int(np.trunc(np.float32(np.log(t / (np.float32(1) - t))) / scale
                                 + np.float32(zp)))
            for a in np.flatnonzero(q > max(min(level, 127), -129)):
                x = np.float32(q[a] - zp) * scale
                s = np.float32(1.0 / (1.0 + np.exp(-np.float64(x))))
                if s >= t:
                    scores.append((s, base[name.split("_")[1]] + int(a)))
        else:
            rows.append((base[name.split("_")[1]],
                         (q.reshape(-1, 16) - zp).astype(np.float32) * scale))
    reg = dict(rows)
    dets = []
    for s, a in scores:
        start = 512 if a >= 512 else 0
        r = reg[start][a - start]
        ax, ay, aw, ah = (np.float32(v) for v in anchors[a])
        xc = r[0] / np.float32(128) * aw + ax
        yc = r[1] / np.float32(128) * ah + ay
        w = r[2] / np.float32(128) * aw
        h = r[3] / np.float32(128) * ah
        half = np.float32(0.5)
        dets.append((s, a, np.array([xc - w * half, yc - h * half, xc + w * half,
                                     yc + h * half], np.float32)))
    sign = 1 if tie == "anchor" else -1
    dets.sort(key=lambda d: (-float(d[0]), sign * d[1]))
    kept = []
    for s, a, box in dets:
        if len(kept) >= (cfg.max_detections or len(dets)):
            break
        if all(_iou(box, k[1]) <= np.float32(cfg.iou_thresh) for k in kept):
            kept.append((s, box))
    return np.array([[s, *b] for s, b in kept], np.float32).reshape(-1, 5)


def _iou(a: np.ndarray, b: np.ndarray) -> np.float32:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return np.float32(0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else np.float32(0)


# ---------------------------------------------------------------------------------------------
# 4. the package for ST's application
# ---------------------------------------------------------------------------------------------
def stedgeai_st_app_command(tflite_name: str) -> str:
    """``stedgeai generate`` as ST's app script runs it: ST's board profile (which names the
    memory pools and, as every ST app profile does, enables the epoch controller), integer I/O."""
    return (f"stedgeai generate --model {tflite_name} --target stm32n6 "
            f"--st-neural-art {ST_NEURAL_ART_PROFILE} --input-data-type uint8 "
            f"--output-data-type int8")


def app_config_values(man, key: str = "int8_tflite") -> dict:
    """The ``app_config.h`` values of ST's app that must match this export's manifest."""
    art = man.artifact(key)
    cfg = man.decode_config()
    order = output_order(art.outputs)
    if [n for n, _ in order] != list(ST_OUTPUT_ORDER):
        raise BlazeEarError(f"{art.path}: outputs {[n for n, _ in order]} are not in ST's order "
                            f"{list(ST_OUTPUT_ORDER)}; export with --st-app")
    return {
        "POSTPROCESS_TYPE": "POSTPROCESS_FD_BLAZEFACE_UI",
        "AI_FD_BLAZEFACE_PP_NB_KEYPOINTS": 6,
        "AI_FD_BLAZEFACE_PP_NB_CLASSES": 1,
        "AI_FD_BLAZEFACE_PP_IMG_SIZE": 128,
        "AI_FD_BLAZEFACE_PP_OUT_0_NB_BOXES": 512,
        "AI_FD_BLAZEFACE_PP_OUT_1_NB_BOXES": 384,
        "AI_FD_BLAZEFACE_PP_MAX_BOXES_LIMIT": int(cfg.max_detections),
        "AI_FD_BLAZEFACE_PP_CONF_THRESHOLD": float(cfg.score_thresh),
        "AI_FD_BLAZEFACE_PP_IOU_THRESHOLD": float(cfg.iou_thresh),
    }


def _app_config_h(values: dict, man) -> str:
    lines = ["/* app_config.h values for ST's STM32N6-GettingStarted-FaceDetection, generated by",
             f" * blazeear-edge from {man.name} (manifest decode profile). Replace the matching",
             " * #define lines of Inc/app_config.h with these; keep the rest of ST's file. */", ""]
    for k, v in values.items():
        if isinstance(v, float):
            lines.append(f"#define {k} ({v:g}f)")
        elif isinstance(v, int):
            lines.append(f"#define {k} ({v})")
        else:
            lines.append(f"#define {k} {v}")
    return "\n".join(lines) + "\n"


def _readme(man, tflite: str, command: str) -> str:
    art = man.artifact("int8_tflite")
    outs = ", ".join(f"{i}: {n} {list(s)}" for i, (n, s) in enumerate(output_order(art.outputs)))
    cfg = man.decode_config()
    return f"""# {man.name} for ST's STM32N6 FaceDetection application

Written by `blazeear-edge export --st-app`. Files: `{tflite}` (the int8 TFLite), `app_config.h`
(the values to put into ST's `Inc/app_config.h`), `generate.txt` (the `stedgeai` line).

The network takes the camera's bytes as they are: uint8 input, scale 1/255, zero point 0
(p / 255, with `x = 2 y - 1` folded into the first convolution). Outputs, in ST's model's order
(app v1.0.0 binds them by index, v1.1.0 by size): {outs}.
Decode: confidence {cfg.score_thresh}, IoU {cfg.iou_thresh}, {cfg.nms} NMS, at most
{cfg.max_detections} detections, ST's int8 pre-filter rounding (`parity`, `evaluate` and `harness`
on this export show on the host what the board displays).

## Steps

1. `git clone --branch {ST_APP_TAG} https://github.com/STMicroelectronics/STM32N6-GettingStarted-FaceDetection`
   (v1.0.0 works too: the output order above is the one it binds by index).
2. Copy `{tflite}` into the application's `Model/` folder.
3. Generate the network with ST Edge AI Core (ST's `Model/generate-n6-model*.sh` does this; point
   it at `{tflite}`, or run the line from `generate.txt` in `Model/`, where ST's board profile
   `user_neuralart_{ST_BOARD}.json` and its memory-pool file live):

       {command}

   then copy the generated `network.c` / weights as ST's script does.
4. Replace the `POSTPROCESS_TYPE` and `AI_FD_BLAZEFACE_PP_*` lines of `Inc/app_config.h` with
   `app_config.h` from this folder.
5. Build the application (STM32CubeIDE or `make` in ST's project folder) and flash the
   {ST_BOARD} as ST's README describes (sign the binary, then program weights and firmware with
   STM32CubeProgrammer).

ST's application and post-processing library are ST's, under ST's SLA0044 licence: nothing of them
is included here.
"""


def write_st_app_package(man, out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``st_app/`` (TFLite, generate line, app_config.h, README) beside the manifest;
    files are written to a temporary folder first and renamed into place."""
    art = man.artifact("int8_tflite")
    out = Path(out_dir) if out_dir else Path(man.root) / "st_app"
    values = app_config_values(man)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        shutil.copyfile(Path(man.root) / art.path, tmp / art.path)
        command = stedgeai_st_app_command(art.path)
        (tmp / "generate.txt").write_text(command + "\n")
        (tmp / "app_config.h").write_text(_app_config_h(values, man))
        (tmp / "README.md").write_text(_readme(man, art.path, command))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
