"""What ``export`` does, decided in one object: :class:`ExportConfig`. Every key is documented
where it is declared and checked when the object is made, by field name; the CLI options are
these fields with dashes (a test holds the two together)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ..errors import BlazeEarError
from ..postprocess import DEFAULT_MAX_CANDIDATES, NMS_KINDS
from ..quantize import CALIBRATION_METHODS, INPUT_TYPES
from ..quantize.qat import QAT_DEFAULT
from ..quantize.rounding import ROUNDING_METHODS
from ..stapp import ST_APP_SCORE_RANGE

Format = Literal["onnx", "tflite"]
Outputs = Literal["split", "concat"]
OnnxLayout = Literal["nchw", "anchors"]
ChannelPad = Literal["auto", "pad", "concat", "conv"]
FORMATS: tuple = get_args(Format)


@dataclass
class ExportConfig:
    """Everything ``export`` does is decided here; the CLI options are these fields with dashes
    (``calib_count`` is ``--calib-count``). Values are checked when the object is made."""

    weights: str = "mediapipe"  #: checkpoint: 'mediapipe' or a path (see weights.load_model)
    anchors: str | None = None  #: unit | ear | FILE.npy; None = the checkpoint's default
    int8: bool = False  #: also write per-channel int8 artifacts
    calib: str | None = None  #: calibration source: folder, CSV, COCO json, .npz; None = builtin
    calib_count: int = 200  #: images used for calibration
    #: activation calibration: movavg | minmax | percentile | entropy (the int8 TFLite does
    #: movavg, minmax and percentile itself; entropy falls back to minmax, recorded per format).
    #: None = movavg, or percentile with st_app (measured better on close-up faces at ST's 0.8)
    calib_method: str | None = None
    #: int8 weights: adaround (per layer, learn whether each weight rounds up or down so the
    #: layer's output stays closest to the fp32 model's on the calibration images; no labels)
    #: | nearest (plain rounding). Both int8 artifacts get the same integers (quantize.rounding).
    #: None = adaround (st_app too: it pays at ST's 0.8 threshold, docs/st-app.md)
    weight_rounding: str | None = None
    rounding_iterations: int = 2000  #: AdaRound iterations per layer
    bias_correction: bool = False  #: fold each conv's int8-vs-fp32 mean output shift into its bias
    #: quantisation-aware fine-tuning steps after the rounding (0 = off; --thorough: QAT_THOROUGH):
    #: the weights are trained through a simulation of the int8 graphs, distilled from the fp32
    #: model on the calibration images, no labels (quantize.qat). None = QAT_DEFAULT after
    #: AdaRound, 0 with round-to-nearest
    qat_steps: int | None = None
    #: clip the score logits to [-s, s] in the graph, which is also their int8 range unless
    #: score_range sets one (None: no clip). Not the decode's sigmoid pre-clip
    #: (DecodeConfig.score_clip).
    logit_saturation: float | None = 16.0
    equalize: bool = True  #: cross-layer equalisation of depthwise -> pointwise pairs
    crop_boxes: bool = False  #: add crops around labelled boxes (CSV / COCO sources)
    images_root: str | None = None  #: where CSV / COCO image paths are relative to
    seed: int = 0  #: sampling seed (deterministic calibration)
    formats: tuple = FORMATS  #: any of onnx, tflite
    outputs: str = "split"  #: split (4 head outputs, default) | concat (MediaPipe's 2)
    onnx_layout: str = "nchw"  #: ONNX split outputs: nchw (raw head maps, no Transpose) | anchors
    channel_pad: str = "auto"  #: auto | pad | concat | conv (skip-path channel widening)
    input_type: str = "float32"  #: int8 TFLite input: float32 | uint8 | int8
    opset: int = 17  #: ONNX opset (ST supports 7..20)
    out: str | None = None  #: output folder; default exports/<model name>
    verify_count: int = 32  #: held-out images for verification figures
    score_thresh: float = 0.5  #: decode threshold recorded in the manifest
    iou_thresh: float = 0.3  #: NMS IoU threshold recorded in the manifest
    nms: str = "weighted"  #: weighted (MediaPipe) | hard
    #: decode candidate cap recorded in the manifest (top-K by score before NMS; 0 = none)
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    progress: bool = True  #: progress bars and step lines on stderr
    verbose: bool = False  #: show TensorFlow / onnx2tf's own output
    strict: bool = False  #: fail (nothing written) when the linter finds an error in an artifact
    #: int8 TFLite takes raw camera bytes exactly: uint8 input, scale 1/255, zero point 0, with
    #: x = 2 y - 1 folded into the stem (stapp.fold_camera_input); needs input_type uint8
    camera_input: bool = False
    #: int8 TFLite output order: converter (as the TF Lite converter writes it) | st (ST's own
    #: BlazeFace: 512x16, 512x1, 384x1, 384x16, what index-binding apps read)
    output_order: str = "converter"
    #: int8 range (lo, hi) of the score outputs; None = +-logit_saturation (the default; with
    #: st_app: stapp.ST_APP_SCORE_RANGE, 0.039 logit per step; see int8_score_range)
    score_range: tuple | None = None
    #: ST FaceDetection drop-in: camera_input + output_order st + the st-app decode profile,
    #: and an st_app/ folder to copy into ST's application (see blazeear_edge.stapp)
    st_app: bool = False

    def __post_init__(self):
        if self.weight_rounding is None:
            self.weight_rounding = "adaround"
        if self.qat_steps is None:
            self.qat_steps = QAT_DEFAULT if self.weight_rounding == "adaround" else 0
        if self.calib_method is None:
            self.calib_method = "percentile" if self.st_app else "movavg"
        self.formats = tuple(self.formats)
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise BlazeEarError(f"formats: unknown value(s) {', '.join(bad) or '(empty)'}; "
                                f"choose from {', '.join(FORMATS)}")
        for name, choices in (("calib_method", CALIBRATION_METHODS), ("input_type", INPUT_TYPES),
                              ("weight_rounding", ROUNDING_METHODS),
                              ("outputs", get_args(Outputs)), ("onnx_layout",
                                                               get_args(OnnxLayout)),
                              ("channel_pad", get_args(ChannelPad)), ("nms", NMS_KINDS)):
            if getattr(self, name) not in choices:
                raise BlazeEarError(f"{name} must be one of {', '.join(choices)}, got "
                                    f"{getattr(self, name)!r}")
        for name, lo in (("calib_count", 1), ("verify_count", 1), ("opset", 7),
                         ("rounding_iterations", 1), ("qat_steps", 0),
                         ("max_candidates", 0)):
            if getattr(self, name) < lo:
                raise BlazeEarError(f"{name} must be at least {lo}, got {getattr(self, name)}")
        if not 0.0 < self.score_thresh < 1.0 or not 0.0 < self.iou_thresh < 1.0:
            raise BlazeEarError("score_thresh and iou_thresh must lie strictly between 0 and 1")
        self._check_st_app()
        if self.logit_saturation is not None and not self.logit_saturation > 0:
            raise BlazeEarError(f"logit_saturation must be positive (or None: no clip), got "
                                f"{self.logit_saturation}")

    def int8_score_range(self) -> tuple | None:
        """The int8 range of the score outputs in both int8 artifacts: ``score_range`` if given,
        else the in-graph clip +-logit_saturation; None (calibrated like any other output) with
        neither. -4,6 against +-16 as the default was measured on real photos and not adopted
        (docs/int8.md, "Measured, not adopted")."""
        if self.score_range is not None:
            return tuple(self.score_range)
        sat = self.logit_saturation
        return (-sat, sat) if sat else None

    def _check_st_app(self):
        if self.st_app:
            self.camera_input, self.output_order, self.input_type = True, "st", "uint8"
            if self.score_range is None:
                self.score_range = ST_APP_SCORE_RANGE
        if self.output_order not in ("converter", "st"):
            raise BlazeEarError(f"output_order must be converter or st, got {self.output_order!r}")
        if self.camera_input and self.input_type != "uint8":
            raise BlazeEarError("camera_input needs input_type uint8 (camera bytes in, scale "
                                f"1/255, zero point 0), got input_type {self.input_type!r}")
        if (self.camera_input or self.st_app or self.output_order == "st") and (
                not self.int8 or "tflite" not in self.formats or self.outputs != "split"):
            raise BlazeEarError("camera_input / output_order st / st_app apply to the int8 "
                                "TFLite with split outputs: add --int8 and keep tflite and "
                                "--outputs split")
        if self.score_range is not None:
            lo, hi = (float(v) for v in self.score_range)
            if not lo < 0.0 < hi:
                raise BlazeEarError(f"score_range must be (lo, hi) with lo < 0 < hi, got "
                                    f"{self.score_range}")
            self.score_range = (lo, hi)
