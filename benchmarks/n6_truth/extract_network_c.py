"""Extract the compiler's per-epoch cycle estimates from ST's generated ``network.c`` files into
``network_c_epochs.json`` (committed beside this script).

``python benchmarks/n6_truth/extract_network_c.py``: run once where the repositories below were
fetched as git snapshots (``/work/.mirror/<owner>+<name>/repo``, ``$N6_MIRRORS``); the JSON it
writes is the committed ground truth and names, for every network, the repository, the commit and
the path of the file it was read from. What is read, per entry of the epoch-block table
``LL_ATON_EpochBlockItems_<name>()``:

* ``flags`` (``EpochBlock_Flags_blob|pure_hw`` = an epoch-controller blob; ``pure_hw`` alone = a
  plain hardware epoch; ``hybrid``; ``pure_sw``);
* ``epoch_num`` .. ``last_epoch_num`` and ``estimated_npu_cycles`` / ``estimated_tot_cycles``
  (under ``#ifdef LL_ATON_EB_DBG_INFO``);
* the ``/* kind=<op> node=<name> */`` comments of the epoch's start/end functions (the operators
  the CPU runs for hybrid and software epochs, and those of plain hw epochs without EC).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

MIRRORS = Path(os.environ.get("N6_MIRRORS", "/work/.mirror"))
OUT = Path(__file__).with_name("network_c_epochs.json")

#: (name, repo, path, model file it compiles: in ../shared/data, or None)
SOURCES = [
    ("blazeface_front_128", "STMicroelectronics/STM32N6-GettingStarted-FaceDetection",
     "Model/STM32N6570-DK/network.c", "st-n6-compiles/blazeface_front_128.tflite"),
    ("blazeface_front_128@2.2", "STMicroelectronics/x-cube-n6-ai-face-landmarks",
     "Model/face_detector.c", "st-n6-compiles/blazeface_front_128.tflite"),
    ("face_landmarks_v1_192", "STMicroelectronics/x-cube-n6-ai-face-landmarks",
     "Model/face_landmark.c", "st-n6-compiles/face_landmarks_v1_192.onnx"),
    ("st_yolo_x_nano_480", "STMicroelectronics/STM32N6-GettingStarted-ObjectDetection",
     "Model/STM32N6570-DK/network.c", "st-n6-compiles/st_yolo_x_nano_480.tflite"),
    ("tiny_yolo_v2_224", "STMicroelectronics/STM32N6-GettingStarted-ObjectDetection",
     "Model/NUCLEO-N657X0-Q/network.c", None),
    ("efficientnet_v2B1_240", "STMicroelectronics/STM32N6-GettingStarted-ImageClassification",
     "Model/STM32N6570-DK/network.c", None),
    ("mobilenet_v1_0.25_96", "STMicroelectronics/STM32N6-GettingStarted-ImageClassification",
     "Model/NUCLEO-N657X0-Q/network.c", "st-n6-compiles/mobilenet_v1_0.25_96.tflite"),
    ("st_movenet_lightning_heatmaps_192", "STMicroelectronics/STM32N6-GettingStarted-PoseEstimation",
     "Model/STM32N6570-DK/network.c", "st-n6-compiles/st_movenet_lightning_heatmaps_192.tflite"),
    ("deeplab_v3_mobilenetv2_05_16_320",
     "STMicroelectronics/STM32N6-GettingStarted-SemanticSegmentation",
     "Model/STM32N6570-DK/network.c", None),
    ("yamnet_1024_64x96", "STMicroelectronics/STM32N6-GettingStarted-Audio",
     "Projects/X-CUBE-AI/models/network.c.aed", "st-n6-compiles/yamnet_1024_64x96.onnx"),
    ("stft_tcnn_medium_257x40", "STMicroelectronics/STM32N6-GettingStarted-Audio",
     "Projects/X-CUBE-AI/models/network.c.se", None),
    ("palm_detection_full_192", "STMicroelectronics/x-cube-n6-ai-hand-landmarks",
     "Model/palm_detector.c", "st-n6-compiles/palm_detection_full_192.tflite"),
    ("hand_landmark_full_224", "STMicroelectronics/x-cube-n6-ai-hand-landmarks",
     "Model/hand_landmark.c", "third-party-n6/hand_landmark_full_224.tflite"),
    ("osnet_a025_256_128", "STMicroelectronics/STM32N6-GettingStarted-ReID",
     "Model/STM32N6570-DK/reid.c", None),
    ("tiny_yolo_v2_224@3.0", "STMicroelectronics/STM32N6-GettingStarted-ReID",
     "Model/STM32N6570-DK/od.c", None),
    ("st_yolo_x_nano_480@3.0", "STMicroelectronics/STM32N6-GettingStarted-ReID",
     "Model/STM32N6570-DK/network.c", "st-n6-compiles/st_yolo_x_nano_480.tflite"),
    ("mobilenetv2_a100_256_128", "STMicroelectronics/STM32N6-GettingStarted-ReID",
     "Model/NUCLEO-N657X0-Q/reid.c", None),
    ("yolov8_face_320", "JJtan2002/x-cube-n6-ai-hand-landmarks",
     "Model/st_ai_output/yolo_detector.c", "third-party-n6/yolov8_face_320.tflite"),
    ("face_landmark_192", "JJtan2002/x-cube-n6-ai-hand-landmarks",
     "Model/st_ai_output/face_landmark.c", "third-party-n6/face_landmark_192.tflite"),
    ("yolov8n_pothole_480", "minchoCoin/stm32n6-pothole-detection",
     "STM32N6570-DK model/network.c", "third-party-n6/yolov8n_pothole_480.tflite"),
]

_ITEM = re.compile(r"\{\s*(\.start_epoch_block.*?)\n    \}", re.S)
_FIELD = re.compile(r"\.(\w+)\s*=\s*([^,\n]+),")
_FUNC = re.compile(r"^static void LL_ATON_(?:Start|End)_EpochBlock_(\d+)\(", re.M)
_KIND = re.compile(r"/\* kind=(\w+) node=(\S+) \*/")


def _git(repo_dir: Path, *args) -> str:
    return subprocess.run(["git", "-C", str(repo_dir), *args], check=True,
                           capture_output=True, text=True).stdout


def parse(text: str) -> dict:
    head = {k: (re.search(rf'{k}\s+"([^"]+)"', text) or [None, None])[1]
            for k in ("GIT_BRANCH", "GIT_DESCRIPTION")}
    ec = "--enable-epoch-controller = true" in text
    kinds: dict[int, list] = {}
    funcs = list(_FUNC.finditer(text))
    for i, m in enumerate(funcs):
        end = funcs[i + 1].start() if i + 1 < len(funcs) else len(text)
        body = text[m.end():end]
        cut = body.find("LL_ATON_EpochBlockItems_")
        body = body if cut < 0 else body[:cut]
        kinds.setdefault(int(m.group(1)), []).extend(
            f"{k}:{n}" for k, n in _KIND.findall(body))
    arr = text[text.index("ll_atonn_rt_epoch_block_array[]"):]
    blocks = []
    for m in _ITEM.finditer(arr):
        f = dict(_FIELD.findall(m.group(1)))
        flags = f.get("flags", "")
        if "EpochBlock_Flags_last_eb" in flags and "epoch_num" not in f:
            continue
        if "blob" in flags:
            kind = "blob"
        elif "pure_sw" in flags:
            kind = "sw"
        elif "hybrid" in flags:
            kind = "hybrid"
        elif "pure_hw" in flags:
            kind = "hw"
        else:
            continue
        first, last = int(f.get("epoch_num", 0)), int(f.get("last_epoch_num", 0))
        ops = sorted({k.split(":")[0] for e in range(first, last + 1) for k in kinds.get(e, [])})
        nodes = [k for e in range(first, last + 1) for k in kinds.get(e, [])]
        blocks.append({"kind": kind, "epoch_num": first, "last_epoch_num": last,
                       "npu_cycles": int(f.get("estimated_npu_cycles", 0)),
                       "tot_cycles": int(f.get("estimated_tot_cycles", 0)),
                       "ops": ops, "nodes": nodes[:8]})
    return {"git_branch": head["GIT_BRANCH"], "git_description": head["GIT_DESCRIPTION"],
            "epoch_controller": ec, "blocks": blocks}


def main() -> None:
    out = []
    for name, repo, path, model in SOURCES:
        d = MIRRORS / repo.replace("/", "+") / "repo"
        commit = _git(d, "rev-parse", "HEAD").strip()
        text = _git(d, "show", f"HEAD:{path}")
        rec = {"name": name, "repo": repo, "commit": commit, "path": path,
               "model_file": model, **parse(text)}
        b = rec["blocks"]
        rec["total_tot_cycles"] = sum(x["tot_cycles"] for x in b)
        out.append(rec)
        print(f"{name:36s} {rec['git_branch']!s:10s} EC={rec['epoch_controller']!s:5s} "
              f"blocks={len(b):3d} tot={rec['total_tot_cycles']:>12,}")
    OUT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
