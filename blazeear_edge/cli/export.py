"""``blazeear-edge export``: ONNX + TFLite (fp32, and per-channel int8 with --int8), verified."""

from __future__ import annotations

HELP = "export to ONNX and TFLite (fp32; per-channel int8 with --int8), verify, write a manifest"


def add_arguments(p):
    from ..postprocess import DEFAULT_MAX_CANDIDATES, NMS_KINDS
    from ..quantize import CALIBRATION_METHODS, INPUT_TYPES
    from ..quantize.qat import QAT_DEFAULT, QAT_THOROUGH
    from ..quantize.rounding import ROUNDING_METHODS

    p.add_argument("--weights", default="mediapipe",
                   help="checkpoint: 'mediapipe' (default, bundled), .pth or .tflite")
    p.add_argument("--anchors", default=None, help="unit | ear | FILE.npy (default: per checkpoint)")
    p.add_argument("--int8", action="store_true",
                   help="also write per-channel int8 ONNX (QDQ) and TFLite, calibrated")
    p.add_argument("--calib", default=None, metavar="SRC",
                   help="calibration images: a folder, a BlazeEar CSV, a COCO json or a .npz "
                        "from 'calib' (default: built-in scikit-image faces)")
    p.add_argument("--calib-count", type=int, default=200, help="calibration images (default 200)")
    p.add_argument("--calib-method", default=None,
                   choices=CALIBRATION_METHODS,
                   help="activation calibration (default movavg: MinMax with moving average; "
                        "with --st-app percentile, the 99.999th percentile of |x|, measured "
                        "better on close-up faces)")
    p.add_argument("--weight-rounding", default=None, choices=ROUNDING_METHODS,
                   help="how int8 weights are rounded: adaround (default) learns, per layer, "
                        "whether each weight rounds up or down so the layer's output stays "
                        "closest to the float model's on your calibration images (no labels); "
                        "nearest = plain rounding (faster, less accurate)")
    p.add_argument("--rounding-iterations", type=int, default=2000, metavar="N",
                   help="AdaRound optimisation steps per layer (default 2000)")
    p.add_argument("--qat-steps", type=int, default=None, metavar="N",
                   help="after rounding, fine-tune the weights for N steps through a simulation "
                        "of the int8 model, copying the float model's outputs on your "
                        "calibration images (no labels; about 0.25 s per step on 2 cores; "
                        f"default {QAT_DEFAULT} with AdaRound, about 40 s; 0 = off)")
    p.add_argument("--thorough", action="store_true",
                   help=f"slower, more careful int8: --qat-steps {QAT_THOROUGH} (a few minutes, "
                        "with a progress bar and an ETA)")
    p.add_argument("--bias-correction", action="store_true",
                   help="after rounding, shift each layer's bias so its average output on the "
                        "calibration images equals the float model's (measured: worse on real "
                        "photos for the default model; see docs/int8.md)")
    p.add_argument("--logit-saturation", "--score-clip", dest="logit_saturation", type=float,
                   default=16.0, metavar="S",
                   help="clip the score logits to [-S, S] inside the graph, which is also their "
                        "int8 range unless --score-range sets one, so outlier logits do not set "
                        "it (default 16; 0 = off). --score-clip is the old name")
    p.add_argument("--no-equalize", action="store_true",
                   help="skip cross-layer equalisation of the depthwise -> pointwise pairs "
                        "(exact in float; improves int8)")
    p.add_argument("--crop-boxes", action="store_true",
                   help="add crops around labelled boxes (CSV/COCO) so small ears are represented")
    p.add_argument("--images-root", default=None, help="root for CSV / COCO image paths")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--formats", default="onnx,tflite", help="comma list of onnx, tflite")
    p.add_argument("--outputs", default="split", choices=["split", "concat"],
                   help="split: 4 head outputs (default, better int8); concat: MediaPipe's 2")
    p.add_argument("--onnx-layout", default="nchw", choices=["nchw", "anchors"],
                   help="ONNX split outputs: nchw = the raw head maps, no Transpose in the graph "
                        "(default, NPU-friendly); anchors = (1, anchors, C) like TFLite")
    p.add_argument("--channel-pad", default="auto", choices=["auto", "pad", "concat", "conv"],
                   help="skip-path channel widening: auto (cheapest per the linter), pad, "
                        "concat (zeros) or conv (1x1 identity)")
    p.add_argument("--input-type", default="float32", choices=INPUT_TYPES,
                   help="int8 TFLite input type (default float32: a QUANTIZE at the input)")
    p.add_argument("--camera-input", action="store_true",
                   help="int8 TFLite takes raw camera bytes exactly (uint8, scale 1/255, zero "
                        "point 0; x = 2y - 1 folded into the stem); implies --input-type uint8")
    p.add_argument("--output-order", default="converter", choices=["converter", "st"],
                   help="int8 TFLite output order: converter (default) or st (ST's BlazeFace: "
                        "512x16, 512x1, 384x1, 384x16, for apps that bind outputs by index)")
    p.add_argument("--score-range", default=None, metavar="LO,HI",
                   help="int8 range of the score outputs in logits, in both int8 files "
                        "(default: +-logit-saturation, 0.1255 logit per step; with --st-app -4,6: "
                        "0.039 logit per step)")
    p.add_argument("--st-app", action="store_true",
                   help="drop-in for ST's STM32N6 FaceDetection app: --camera-input, "
                        "--output-order st, --score-range -4,6, decode profile st-app (0.8, IoU "
                        "0.5, hard NMS, 3 boxes, ST's int8 pre-filter) and an st_app/ folder to "
                        "copy (needs --int8)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--score-thresh", type=float, default=0.5, help="decode threshold to record")
    p.add_argument("--iou-thresh", type=float, default=0.3, help="NMS IoU threshold to record")
    p.add_argument("--nms", default="weighted", choices=NMS_KINDS,
                   help="non-maximum suppression to record (default weighted, as MediaPipe)")
    p.add_argument("--max-candidates", type=int, default=DEFAULT_MAX_CANDIDATES, metavar="K",
                   help="decode candidate cap to record: the K best-scoring boxes enter NMS "
                        f"(default {DEFAULT_MAX_CANDIDATES}, never reached on real frames; bounds "
                        "the M55 worst case; 0 = no cap)")
    p.add_argument("--out", default=None, help="output folder (default exports/<model name>)")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1, nothing written) when the linter finds an error")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's and onnx2tf's own output")


def run(args) -> int:
    import os

    from ..quantize.qat import QAT_DEFAULT, QAT_THOROUGH

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ..export import ExportConfig, export, format_summary

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    from ..errors import BlazeEarError

    score_range = None
    if args.score_range:
        try:
            score_range = tuple(float(v) for v in args.score_range.split(","))
        except ValueError:
            score_range = ()
        if len(score_range) != 2:
            raise BlazeEarError(f"--score-range must be LO,HI (two numbers), got "
                                f"{args.score_range!r}")
    cfg = ExportConfig(weights=args.weights, anchors=args.anchors, int8=args.int8,
                       calib=args.calib, calib_count=args.calib_count,
                       calib_method=args.calib_method,
                       weight_rounding=args.weight_rounding,
                       rounding_iterations=args.rounding_iterations,
                       bias_correction=args.bias_correction,
                       qat_steps=QAT_THOROUGH if args.thorough and args.qat_steps is None
                       else args.qat_steps,
                       logit_saturation=args.logit_saturation or None,
                       equalize=not args.no_equalize, crop_boxes=args.crop_boxes,
                       images_root=args.images_root, seed=args.seed, formats=formats,
                       outputs=args.outputs, onnx_layout=args.onnx_layout,
                       channel_pad=args.channel_pad,
                       input_type="uint8" if (args.camera_input or args.st_app)
                       else args.input_type, opset=args.opset, out=args.out,
                       score_thresh=args.score_thresh, iou_thresh=args.iou_thresh,
                       nms=args.nms, max_candidates=args.max_candidates,
                       progress=not args.quiet, verbose=args.verbose, strict=args.strict,
                       camera_input=args.camera_input or args.st_app,
                       output_order=args.output_order, score_range=score_range,
                       st_app=args.st_app)
    res = export(cfg)
    print(format_summary(res))
    return 0
