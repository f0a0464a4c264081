"""Read the "device log": the detection lines the C post-processing prints (host runner, QEMU
Cortex-M55 runner, or the STM32N6570-DK over its UART). Format (version 1; one record per line,
``key=value`` tokens after the record type; other lines, and any text before the ``blazeear``
token on a line, are ignored)::

    blazeear begin version=1 model=NAME nms=weighted score_thresh=F iou_thresh=F max_detections=N max_candidates=N frames=N
    blazeear frame index=I name=NAME dets=N space=input|image [letterbox=W,H,NW,NH,PX,PY,S] [KEY=INT ...]
    blazeear det frame=I i=K anchor=A score=F box=F,F,F,F keypoints=F,F,...   (12 values)
    blazeear error frame=I code=C
    blazeear end frames=N status=S [KEY=INT ...]

``F`` is a float32: a C99 hexadecimal float (``0x1.8p-1``, exact) or a decimal number.
``space=input``: coordinates normalised to the 128x128 network input; ``space=image``: pixels of
the original image after undoing the letterbox given in the same line. Extra integer keys on the
frame line (``prefiltered``, ``candidates``, ``ticks``, ``ticks_decode``, ``ticks_nms``) and the
end line (``calib_instr``, ``calib_ticks``) are kept in ``fields``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BlazeEarError
from ..postprocess import Detections
from ..preprocess import Letterbox

TAG = "blazeear"
VERSION = 1


@dataclass
class DeviceFrame:
    index: int
    name: str
    detections: Detections
    anchors: np.ndarray  # anchor index of each detection's top box (-1 when not logged)
    space: str = "input"  # "input" (normalised) or "image" (pixels)
    letterbox: Letterbox | None = None
    fields: dict = field(default_factory=dict)  # other frame-line keys (ints where numeric)
    error: int | None = None  # the C status code when the frame failed

    @property
    def ticks(self) -> int | None:
        return self.fields.get("ticks")


@dataclass
class DeviceLog:
    source: str
    header: dict
    frames: list
    end: dict | None  # None when the log stops before its "end" line

    @property
    def complete(self) -> bool:
        return self.end is not None

    @property
    def status(self) -> int | None:
        return None if self.end is None else self.end.get("status")

    def by_name(self) -> dict:
        return {f.name: f for f in self.frames}

    def instructions_per_tick(self) -> float | None:
        """From the M55 runner's calibration loop (QEMU -icount: instructions, not cycles)."""
        e = self.end or {}
        if e.get("calib_ticks"):
            return e["calib_instr"] / e["calib_ticks"]
        return None

    def instructions(self, frame: DeviceFrame, key: str = "ticks") -> float | None:
        ipt = self.instructions_per_tick()
        v = frame.fields.get(key)
        return None if ipt is None or v is None else v * ipt


def _float(tok: str, where: str) -> np.float32:
    try:
        t = tok.strip()
        v = float.fromhex(t) if "0x" in t.lower() else float(t)
    except ValueError:
        raise BlazeEarError(f"{where}: {tok!r} is not a number") from None
    return np.float32(v)


def _floats(tok: str, n: int, where: str) -> list:
    parts = tok.split(",")
    if len(parts) != n:
        raise BlazeEarError(f"{where}: expected {n} comma-separated values, got {len(parts)}")
    return [_float(p, where) for p in parts]


def _int(tok: str, where: str) -> int:
    try:
        return int(tok)
    except ValueError:
        raise BlazeEarError(f"{where}: {tok!r} is not an integer") from None


def _value(tok: str):
    try:
        return int(tok)
    except ValueError:
        return tok


class _Pending:
    def __init__(self, index, name, count, space, lb, fields, where):
        self.index, self.name, self.count, self.space = index, name, count, space
        self.lb, self.fields, self.where = lb, fields, where
        self.scores, self.boxes, self.kps, self.anchors = [], [], [], []

    def finish(self) -> DeviceFrame:
        if len(self.scores) != self.count:
            raise BlazeEarError(f"{self.where}: frame {self.index} announces {self.count} "
                                f"detection(s) but the log has {len(self.scores)}")
        n = self.count
        det = Detections(np.asarray(self.boxes, np.float32).reshape(n, 4),
                         np.asarray(self.kps, np.float32).reshape(n, 6, 2),
                         np.asarray(self.scores, np.float32).reshape(n))
        return DeviceFrame(self.index, self.name, det, np.asarray(self.anchors, np.int64),
                           self.space, self.lb, self.fields)


def parse_device_log(text: str, source: str = "device log") -> DeviceLog:
    """Parse device-log text (see the module docstring); one-line errors name the line."""
    header: dict = {}
    frames: list[DeviceFrame] = []
    end = None
    pending: _Pending | None = None
    seen = 0

    def close():
        nonlocal pending
        if pending is not None:
            frames.append(pending.finish())
            pending = None

    for lineno, line in enumerate(text.splitlines(), 1):
        toks = line.split()
        if TAG not in toks:
            continue
        toks = toks[toks.index(TAG) + 1:]
        if not toks:
            continue
        where = f"{source}:{lineno}"
        rec, kv = toks[0], {}
        for t in toks[1:]:
            k, eq, v = t.partition("=")
            if not eq:
                raise BlazeEarError(f"{where}: expected key=value, got {t!r}")
            kv[k] = v
        seen += 1
        if rec == "begin":
            close()
            version = _int(kv.get("version", "1"), where)
            if version != VERSION:
                raise BlazeEarError(f"{where}: device-log version {version}; this reader knows "
                                    f"version {VERSION}")
            header = {k: _value(v) for k, v in kv.items()}
            for k in ("score_thresh", "iou_thresh"):
                if k in kv:
                    header[k] = float(_float(kv[k], where))
        elif rec == "frame":
            close()
            missing = [k for k in ("index", "dets") if k not in kv]
            if missing:
                raise BlazeEarError(f"{where}: frame line without {', '.join(missing)}")
            space = kv.get("space", "input")
            if space not in ("input", "image"):
                raise BlazeEarError(f"{where}: space must be input or image, got {space!r}")
            lb = None
            if "letterbox" in kv:
                vals = [_int(v, where) for v in kv["letterbox"].split(",")]
                if len(vals) != 7:
                    raise BlazeEarError(f"{where}: letterbox needs 7 integers "
                                        f"(width,height,new_w,new_h,pad_x,pad_y,size)")
                lb = Letterbox(*vals)
            if space == "image" and lb is None:
                raise BlazeEarError(f"{where}: space=image without its letterbox")
            count = _int(kv["dets"], where)
            if count < 0:
                raise BlazeEarError(f"{where}: negative detection count")
            extra = {k: _value(v) for k, v in kv.items()
                     if k not in ("index", "name", "dets", "space", "letterbox")}
            pending = _Pending(_int(kv["index"], where), kv.get("name", ""), count, space, lb,
                               extra, where)
        elif rec == "det":
            if pending is None:
                raise BlazeEarError(f"{where}: det line outside a frame")
            if "frame" in kv and _int(kv["frame"], where) != pending.index:
                raise BlazeEarError(f"{where}: det of frame {kv['frame']} inside frame "
                                    f"{pending.index}")
            if "i" in kv and _int(kv["i"], where) != len(pending.scores):
                raise BlazeEarError(f"{where}: det i={kv['i']} out of order "
                                    f"(expected {len(pending.scores)})")
            for k in ("score", "box", "keypoints"):
                if k not in kv:
                    raise BlazeEarError(f"{where}: det line without {k}")
            pending.scores.append(_float(kv["score"], where))
            pending.boxes.append(_floats(kv["box"], 4, where))
            pending.kps.append(_floats(kv["keypoints"], 12, where))
            pending.anchors.append(_int(kv.get("anchor", "-1"), where))
        elif rec == "error":
            close()
            idx = _int(kv.get("frame", "-1"), where)
            frames.append(DeviceFrame(idx, kv.get("name", ""), Detections(),
                                      np.zeros(0, np.int64), error=_int(kv.get("code", "0"),
                                                                        where)))
        elif rec == "end":
            close()
            end = {k: _value(v) for k, v in kv.items()}
        # unknown record types: ignored (a newer writer may add some)
    close()
    if not seen:
        raise BlazeEarError(f"{source}: no device-log lines (lines with '{TAG} begin|frame|det|"
                            f"end ...')")
    return DeviceLog(source, header, frames, end)


def read_device_log(path: str | os.PathLike) -> DeviceLog:
    """Read a device log file (host runner, QEMU, or a UART capture from the board)."""
    p = Path(path)
    if not p.is_file():
        raise BlazeEarError(f"device log not found: {p}")
    try:
        text = p.read_text(errors="replace")
    except OSError as exc:
        raise BlazeEarError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return parse_device_log(text, str(p))
