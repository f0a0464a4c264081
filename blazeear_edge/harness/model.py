"""What the C harness needs from an export: int8 output specs, anchors, decode, input quantisation.

:func:`harness_model` reads it from a :class:`~blazeear_edge.manifest.Manifest` (or a manifest
dict plus an anchor table), and :func:`model_header` writes it as ``blazeear_model.h``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import BlazeEarError
from ..manifest import Manifest
from ..postprocess import NUM_ANCHORS, NUM_COORDS, DecodeConfig, OutputSpec

#: int8 artifacts in order of preference (ST Edge AI compiles the TFLite one).
INT8_ARTIFACTS = ("int8_tflite", "int8_onnx")
C_DTYPES = {"int8": ("BLAZEEAR_PP_INT8", "int8_t", np.int8),
            "uint8": ("BLAZEEAR_PP_UINT8", "uint8_t", np.uint8)}


@dataclass
class HarnessModel:
    """Everything constant the C post-processing is configured with."""

    name: str
    artifact: str
    specs: list  # OutputSpec, int8/uint8, in the network's output order
    anchors: np.ndarray  # (896, 4) float32
    config: DecodeConfig
    input: dict = field(default_factory=dict)  # the artifact's input entry (dtype/scale/zp)
    source: str = ""  # where it came from (for the generated header's comment)

    @property
    def layout(self) -> str:
        return "split" if len(self.specs) == 4 else ("concat" if len(self.specs) == 2 else
                                                    f"{len(self.specs)} tensors")


def _int8_spec(o: dict, where: str) -> OutputSpec:
    """An artifact output dict -> an integer OutputSpec (a float ONNX output behind a
    DequantizeLinear uses that DequantizeLinear's scale and zero point)."""
    spec = OutputSpec.from_dict(o)
    if spec.dtype not in C_DTYPES:
        q = o.get("quantization")
        if isinstance(q, dict) and q.get("dtype", "int8") in C_DTYPES:
            spec = OutputSpec(spec.name, spec.kind, spec.anchor_start, spec.anchor_count,
                              q.get("dtype", "int8"), float(q["scale"]), int(q["zero_point"]),
                              spec.shape, spec.layout)
        else:
            raise BlazeEarError(f"{where}: output {spec.name} is {spec.dtype}, not int8/uint8 "
                                f"(the C harness takes the int8 outputs of an int8 export)")
    if spec.kind not in ("regressors", "scores"):
        raise BlazeEarError(f"{where}: output {spec.name} has unknown kind {spec.kind!r}")
    if not (np.isfinite(spec.scale) and spec.scale > 0):
        raise BlazeEarError(f"{where}: output {spec.name} has scale {spec.scale}, "
                            f"must be positive")
    info = np.iinfo(C_DTYPES[spec.dtype][2])
    if not info.min <= spec.zero_point <= info.max:
        raise BlazeEarError(f"{where}: output {spec.name} zero point {spec.zero_point} is "
                            f"outside {spec.dtype}")
    return spec


def _check_coverage(specs, where: str) -> None:
    for kind in ("regressors", "scores"):
        seen = np.zeros(NUM_ANCHORS, int)
        for s in specs:
            if s.kind == kind:
                if s.anchor_start < 0 or s.anchor_start + s.anchor_count > NUM_ANCHORS:
                    raise BlazeEarError(f"{where}: output {s.name} covers anchors outside "
                                        f"0..{NUM_ANCHORS - 1}")
                seen[s.anchor_start:s.anchor_start + s.anchor_count] += 1
        if not (seen == 1).all():
            raise BlazeEarError(f"{where}: the {kind} outputs do not cover each of the "
                                f"{NUM_ANCHORS} anchors exactly once")
    if not 2 <= len(specs) <= 8:
        raise BlazeEarError(f"{where}: {len(specs)} outputs; the C harness takes 2 to 8")


def harness_model(manifest, artifact: str | None = None, anchors=None,
                  config: DecodeConfig | None = None) -> HarnessModel:
    """Resolve the C harness's model from an export manifest.

    ``manifest``: a :class:`~blazeear_edge.manifest.Manifest`, or a manifest dict (then pass
    ``anchors``, an (896, 4) table, unless the dict's ``anchors`` entry holds the table itself).
    ``artifact``: which artifact's outputs (default: ``int8_tflite``, else ``int8_onnx``, else
    the first artifact whose outputs are integer).  ``config`` overrides the manifest's decode.
    """
    if isinstance(manifest, Manifest):
        data, where = manifest.data, str(manifest.root / "manifest.json")
        if anchors is None:
            anchors = manifest.anchors()
    elif isinstance(manifest, dict):
        data, where = manifest, "manifest"
        if anchors is None and isinstance(data.get("anchors"), (list, np.ndarray)):
            anchors = data["anchors"]
    else:
        raise TypeError("manifest must be a Manifest or a dict")
    arts = data.get("artifacts") or {}
    if artifact is None:
        artifact = next((k for k in INT8_ARTIFACTS if k in arts), None)
        if artifact is None:
            artifact = next((k for k, a in arts.items()
                             if any(o.get("dtype") in C_DTYPES for o in a.get("outputs", []))),
                            None)
        if artifact is None:
            raise BlazeEarError(f"{where}: no int8 artifact (has: {', '.join(arts) or 'none'}); "
                                f"export with --int8 first")
    if artifact not in arts:
        raise BlazeEarError(f"{where}: no artifact '{artifact}' (has: {', '.join(arts) or 'none'})")
    art = arts[artifact]
    outs = art.get("outputs") or []
    if not outs:
        raise BlazeEarError(f"{where}: artifact {artifact} lists no outputs")
    specs = [_int8_spec(o, f"{where} [{artifact}]") for o in outs]
    _check_coverage(specs, f"{where} [{artifact}]")
    if anchors is None:
        raise BlazeEarError(f"{where}: no anchor table given")
    table = np.asarray(anchors, dtype=np.float32)
    if table.shape != (NUM_ANCHORS, 4) or not np.isfinite(table).all():
        raise BlazeEarError(f"{where}: the anchor table must be finite (896, 4), "
                            f"got {table.shape}")
    if config is None:
        config = DecodeConfig.from_dict(data.get("decode") or {})
    return HarnessModel(str(data.get("name") or "model"), artifact, specs, table, config,
                        dict(art.get("input") or {}), where)


# ---------------------------------------------------------------------------------------------
# C text
# ---------------------------------------------------------------------------------------------
def cfloat(v) -> str:
    """A float32 as an exact C99 hexadecimal float literal (with its decimal value in mind)."""
    f = float(np.float32(v))
    if not np.isfinite(f):
        raise BlazeEarError(f"cannot write the non-finite value {v} into the C harness")
    mant, exp = f.hex().split("p")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    return f"{mant}p{exp}f"


def c_ident(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
    return s if s and not s[0].isdigit() else f"T_{s}"


def c_string(s: str) -> str:
    """A safe C string literal (and log token): no spaces, quotes or '='; at most the last 80
    characters (the informative end of a file path)."""
    return '"' + re.sub(r'[^A-Za-z0-9_.:+\-/\[\]#@]', "_", s)[-80:] + '"'


def config_initializer(cfg: DecodeConfig) -> str:
    nms = "BLAZEEAR_PP_NMS_HARD" if cfg.nms == "hard" else "BLAZEEAR_PP_NMS_WEIGHTED"
    return (f"{{{cfloat(cfg.score_thresh)}, {cfloat(cfg.iou_thresh)}, {cfloat(cfg.score_clip)}, "
            f"{nms}, {int(cfg.max_detections)}, {cfloat(cfg.x_scale)}, {cfloat(cfg.y_scale)}, "
            f"{cfloat(cfg.w_scale)}, {cfloat(cfg.h_scale)}, {int(cfg.max_candidates)}, "
            f"{int(bool(cfg.st_prefilter))}}}")


def input_lut(inp: dict) -> tuple[str, np.ndarray] | None:
    """Camera pixel p (0..255) -> the quantised input (``preprocess.pixels_to_input``: q = p for
    the camera-exact input, else clip(round((p/127.5 - 1)/s) + zp)), for an int8/uint8 model
    input; None for a float input."""
    dtype = str(inp.get("dtype", "float32"))
    if dtype not in C_DTYPES or "scale" not in inp:
        return None
    from ..preprocess import pixels_to_input  # the one byte -> value mapping

    q = pixels_to_input(np.arange(256, dtype=np.uint8), C_DTYPES[dtype][2],
                        float(inp["scale"]), int(inp.get("zero_point", 0))).astype(np.int64)
    return dtype, q


def model_header(model: HarnessModel) -> str:
    """``blazeear_model.h``: tensors, anchors, decode and input quantisation of one export."""
    cfg = model.config
    lines = [
        f"/* blazeear_model.h: generated by `blazeear-edge harness` from {model.source}",
        f" * (artifact {model.artifact}, {model.layout} outputs). Do not edit; regenerate.",
        " * Include it in exactly one .c file: it defines static tables. */",
        "#ifndef BLAZEEAR_MODEL_H",
        "#define BLAZEEAR_MODEL_H",
        "",
        "#include <stdint.h>",
        "",
        '#include "blazeear_pp.h"',
        "",
        f"#define BLAZEEAR_MODEL_NAME {c_string(model.name)}",
        f"#define BLAZEEAR_MODEL_ARTIFACT {c_string(model.artifact)}",
        f"#define BLAZEEAR_NUM_OUTPUTS {len(model.specs)}",
        "",
        "/* Output tensors in the network's output order: buffer i of the runtime (stai output",
        " * i on the STM32N6) goes to outputs[i] of blazeear_pp_run(). */",
    ]
    for i, s in enumerate(model.specs):
        lines.append(f"#define BLAZEEAR_OUTPUT_{c_ident(s.name)} {i}")
    n = len(model.specs)
    lines += ["", f"static const blazeear_pp_tensor_t blazeear_model_tensors[{n}] = {{"]
    for i, s in enumerate(model.specs):
        kind = "BLAZEEAR_PP_REGRESSORS" if s.kind == "regressors" else "BLAZEEAR_PP_SCORES"
        shape = tuple(s.shape) if s.shape else (1, s.anchor_count,
                                                NUM_COORDS if s.kind == "regressors" else 1)
        lines.append(f"    /* {i}: {s.name} {shape}, {s.dtype}, scale {float(s.scale)!r}, "
                     f"zero point {s.zero_point} */")
        lines.append(f"    {{{kind}, {C_DTYPES[s.dtype][0]}, {s.anchor_start}, {s.anchor_count}, "
                     f"{cfloat(s.scale)}, {int(s.zero_point)}}},")
    lines += ["};", "",
              "/* Anchors (x_center, y_center, w, h), normalised to the 128x128 input. */",
              f"static const float blazeear_model_anchors[{NUM_ANCHORS}][4] = {{"]
    for a in model.anchors:
        lines.append("    {" + ", ".join(cfloat(v) for v in a) + "},")
    lines += ["};", "",
              f"/* decode: score_thresh {cfg.score_thresh}, iou_thresh {cfg.iou_thresh}, "
              f"nms {cfg.nms}, score_clip {cfg.score_clip}, max_detections "
              f"{cfg.max_detections} (0 = no cap), max_candidates {cfg.max_candidates} (top-K "
              f"by score entering NMS; 0 = no cap), scales {cfg.x_scale}/{cfg.y_scale}/"
              f"{cfg.w_scale}/{cfg.h_scale} */",
              "/* The candidate cap (config.max_candidates): compile blazeear_pp.c with",
              " * -DBLAZEEAR_PP_MAX_CANDIDATES=<this> (when not 0) to size its RAM to the cap. */",
              f"#define BLAZEEAR_MODEL_MAX_CANDIDATES {int(cfg.max_candidates)}",
              "static const blazeear_pp_model_t blazeear_model = {",
              f"    blazeear_model_tensors, {len(model.specs)}, blazeear_model_anchors,",
              f"    {config_initializer(cfg)}}};", ""]
    # input quantisation (camera pixels -> network input)
    inp = model.input
    shape = [int(v) for v in inp.get("shape", [1, 128, 128, 3])]
    layout = str(inp.get("layout", "NHWC"))
    lines += ["/* Network input: RGB letterboxed to 128x128 (MediaPipe), x = p / 127.5 - 1 for a "
              "camera pixel p. */",
              f"#define BLAZEEAR_INPUT_SHAPE_N {shape[0] if shape else 1}",
              "#define BLAZEEAR_INPUT_SIZE 128",
              "#define BLAZEEAR_INPUT_CHANNELS 3",
              f"#define BLAZEEAR_INPUT_LAYOUT {c_string(layout.split()[0])}"]
    lut = input_lut(inp)
    if lut is None:
        lines += [f"#define BLAZEEAR_INPUT_DTYPE {c_string(str(inp.get('dtype', 'float32')))}",
                  "#define BLAZEEAR_INPUT_IS_FLOAT 1",
                  "/* float input: feed x = p / 127.5f - 1.0f (the network quantises it). */"]
    else:
        dtype, q = lut
        off = q - np.arange(256)
        lines += [f"#define BLAZEEAR_INPUT_DTYPE {c_string(dtype)}",
                  "#define BLAZEEAR_INPUT_IS_FLOAT 0",
                  f"#define BLAZEEAR_INPUT_SCALE {cfloat(inp['scale'])}",
                  f"#define BLAZEEAR_INPUT_ZERO_POINT {int(inp.get('zero_point', 0))}"]
        if (off == off[0]).all():
            lines.append(f"/* q = p + {int(off[0])} exactly: no table needed on the camera path */")
            lines.append(f"#define BLAZEEAR_INPUT_PIXEL_OFFSET {int(off[0])}")
        lines.append("/* camera pixel p (0..255) -> quantised input q = clip(round((p / 127.5 - 1)"
                     " / scale) + zero_point) */")
        lines.append(f"static const {C_DTYPES[dtype][1]} blazeear_input_lut[256] = {{")
        for i in range(0, 256, 16):
            lines.append("    " + ", ".join(str(int(v)) for v in q[i:i + 16]) + ",")
        lines.append("};")
    lines += ["", "#endif /* BLAZEEAR_MODEL_H */", ""]
    return "\n".join(lines)
