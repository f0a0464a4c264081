"""ST's published STM32N6570-DK figures for the networks the latency corpus rebuilds or ships.

Every row is copied from the "Reference NPU memory footprint" and "Reference NPU inference time"
tables of an stm32ai-modelzoo README (``STMicroelectronics/stm32ai-modelzoo``, path and commit
below): board STM32N6570-DK, execution engine NPU/MCU, "input / output allocated option",
ST's board at NPU 1000 MHz / CPU 800 MHz (the yamnet README states "800MhZ/1000MhZ"; the
getting-started applications' ``SystemClock_Config`` sets the same overdrive clocks).

Fields: ``ms`` inference time, ``int_kib`` / ``ext_kib`` internal / external RAM (KiB), ``w_kib``
weights flash (KiB), ``st`` STEdgeAI Core version, ``src`` README path, ``commit``, ``model``: how
the network is obtained here (``keras:<name>`` rebuilt by ``benchmarks/n6_corpus/build_keras.py``,
``shared:<path>`` a file under ``../shared/data``, ``unseen:<module>`` a builder of
``benchmarks/st_unseen``), ``note`` any difference between ST's file and ours.
"""

ZOO = "STMicroelectronics/stm32ai-modelzoo"
C6F = "6f10965e6a40e2a28abd9c181f43cac4de4111c5"
C7F = "7f3764d58ef8c7bca36116c4d6c12434d2682af7"
MNV2 = "image_classification/mobilenetv2/README.md"
MNV1 = "image_classification/mobilenetv1/README.md"
EFF = "image_classification/efficientnetv2/README.md"
FDM = "image_classification/fdmobilenet/README.md"
_EFF_NOTE = "ST's file is an ONNX QDQ export; rebuilt here as a TFLite int8 of the same Keras net"


def _r(name, ms, int_kib, ext_kib, w_kib, st, src, commit, model, note=""):
    return dict(name=name, ms=ms, int_kib=int_kib, ext_kib=ext_kib, w_kib=w_kib, st=st,
                src=src, commit=commit, model=model, note=note)


ROWS = [
    _r("mnv2_0.35_128_c101", 3.33, 240, 0, 715.67, "2.0.0", MNV2, C6F, "keras:mnv2_0.35_128_c101",
       "food-101"),
    _r("mnv2_0.35_224_c101", 6.12, 980, 0, 730.7, "2.0.0", MNV2, C6F, "keras:mnv2_0.35_224_c101",
       "food-101"),
    _r("mnv2_1.0_224_c101", 18.08, 2058, 0, 3110.05, "2.0.0", MNV2, C6F,
       "keras:mnv2_1.0_224_c101", "food-101"),
    _r("mnv2_0.35_128_c2", 2.99, 240, 0, 589.45, "2.0.0", MNV2, C6F, "keras:mnv2_0.35_128_c2",
       "person (2 classes); the time table says 224x224x3, the file and the footprint table "
       "128x128"),
    _r("mnv2_0.35_128_c1000", 6.35, 240, 0, 1840.94, "2.0.0", MNV2, C6F,
       "keras:mnv2_0.35_128_c1000", "ImageNet"),
    _r("mnv2_0.35_224_c1000", 9.14, 980, 0, 1855.97, "2.0.0", MNV2, C6F,
       "keras:mnv2_0.35_224_c1000", "ImageNet"),
    _r("mnv2_1.0_224_c1000", 21.08, 2058, 0, 4235.31, "2.0.0", MNV2, C6F,
       "keras:mnv2_1.0_224_c1000", "ImageNet"),
    _r("mnv2_1.4_224_c1000", 35.34, 2361, 0, 7315.69, "2.0.0", MNV2, C6F,
       "keras:mnv2_1.4_224_c1000", "ImageNet"),
    _r("mnv1_0.25_224_c101", 2.83, 588, 0, 321.66, "2.0.0", MNV1, C6F, "keras:mnv1_0.25_224_c101",
       "food-101"),
    _r("mnv1_0.5_224_c101", 6.06, 588, 0, 1025.63, "2.0.0", MNV1, C6F, "keras:mnv1_0.5_224_c101",
       "food-101"),
    _r("mnv1_1.0_224_c101", 16.94, 1568, 0, 3649.97, "2.0.0", MNV1, C6F,
       "keras:mnv1_1.0_224_c101", "food-101"),
    _r("mnv1_0.25_224_c1000", 3.57, 588, 0, 549.88, "2.0.0", MNV1, C6F,
       "keras:mnv1_0.25_224_c1000", "ImageNet"),
    _r("mnv1_0.5_224_c1000", 7.38, 588, 0, 1478.58, "2.0.0", MNV1, C6F,
       "keras:mnv1_0.5_224_c1000", "ImageNet"),
    _r("mnv1_1.0_224_c1000", 19.41, 1568, 0, 4552.42, "2.0.0", MNV1, C6F,
       "keras:mnv1_1.0_224_c1000", "ImageNet"),
    _r("effv2_B0_224_c101", 54.32, 1834.44, 0, 7553.77, "2.0.0", EFF, C6F,
       "keras:effv2_B0_224_c101", _EFF_NOTE),
    _r("effv2_B1_240_c101", 73.89, 2589.97, 0, 8924.78, "2.0.0", EFF, C6F,
       "keras:effv2_B1_240_c101", _EFF_NOTE),
    _r("effv2_B2_260_c101", 146.01, 2629.56, 528.12, 11212.75, "2.0.0", EFF, C6F,
       "keras:effv2_B2_260_c101", _EFF_NOTE),
    _r("effv2_B0_224_c1000", 57.5, 1834.44, 0, 8680.39, "2.0.0", EFF, C6F,
       "keras:effv2_B0_224_c1000", _EFF_NOTE),
    _r("effv2_B1_240_c1000", 77.25, 2589.97, 0, 10051.7, "2.0.0", EFF, C6F,
       "keras:effv2_B1_240_c1000", _EFF_NOTE),
    _r("effv2_B2_260_c1000", 148.78, 2629.56, 528.12, 12451.77, "2.0.0", EFF, C6F,
       "keras:effv2_B2_260_c1000", _EFF_NOTE),
    _r("fdmnv1_0.25_224_c101", 1.46, 294, 0, 209.92, "2.0.0", FDM, C6F,
       "keras:fdmnv1_0.25_224_c101", "FD-MobileNet written from the paper's Table 1 (ST's own "
       "definition not copied)"),
    _r("fdmnv1_0.25_128_c101", 0.93, 96, 0, 209.92, "2.0.0", FDM, C6F,
       "keras:fdmnv1_0.25_128_c101", "as above"),
    _r("sqnv11_0_128_c101", 3.82, 240.25, 0, 753.38, "3.0.0",
       "image_classification/squeezenetv11/README.md", C7F, "keras:sqnv11_0_128_c101",
       "food-101; SqueezeNet v1.1 written from forresti/SqueezeNet's prototxt"),
    _r("sqnv11_0_224_c101", 7.97, 803.52, 0, 753.38, "3.0.0",
       "image_classification/squeezenetv11/README.md", C7F, "keras:sqnv11_0_224_c101",
       "as above"),
    _r("blazeface_front_128", 4.48, 528, 0, 106.13, "3.0.0",
       "face_detection/facedetect_front/README.md", C7F,
       "shared:st-n6-compiles/blazeface_front_128.tflite", "the same .tflite ST ships"),
    _r("yamnet_1024_64x96", 9.88, 144, 0, 3497.24, "2.0.0", "audio_event_detection/yamnet/README.md",
       C6F, "shared:st-n6-compiles/yamnet_1024_64x96.onnx",
       "ESC-10 yamnet-1024; the README's other table gives 11.949 ms (1 CPU + 1 NPU)"),
    _r("st_movenet_lightning_heatmaps_192", 18.44, 1674, 0, 3036.17, "2.0.0",
       "pose_estimation/movenet/README.md", C6F,
       "shared:st-n6-compiles/st_movenet_lightning_heatmaps_192.tflite", "the same .tflite"),
    _r("hand_landmark_full_224", 20.75, 1739.5, 0, 3283.38, "3.0.0",
       "pose_estimation/handlandmarks/README.md", C7F,
       "shared:third-party-n6/hand_landmark_full_224.tflite",
       "MediaPipe hand landmark full; our file is the copy a third-party app compiled"),
    _r("osnet_a025_256_128", 3.53, 480, 0, 404.94, "3.0.0", "re_identification/osnet/README.md",
       C7F, "unseen:osnet_a025",
       "rebuilt without ST's classifier head (ST's zoo file: 404.94 KiB weights)"),
]

#: rows excluded, and why
EXCLUDED = {
    "head_landmarks (pose_estimation/headlandmarks/README.md)":
        "its row repeats the hand-landmarks figures (224x224, 1739.5 KiB) for a 192x192 model",
    "efficientnet_v2S_384": "the README says its deployment is not supported yet",
    "resnet50_v2": "the README's N6 cells are empty",
    "ST FdMobileNet v1, yolo / ssd / yunet / deeplab families": "ST's own definitions, not "
        "rebuilt in the time of this benchmark",
}
