"""bench: one row per artifact with host numbers measured here, device numbers only from ST's files.

References: the export's own ``manifest.json`` read directly as JSON (SQNR, parity, sizes,
hashes), the artifact files on disk (sizes), and ST sample outputs written here from the
documented fields (docs/st-edge-ai.md) whose numbers are computed by hand below.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from blazeear_edge.bench import (BenchRow, ST_REFERENCE, assign_st_reports, markdown_table,
                                 run_bench)
from blazeear_edge.manifest import load_manifest

KIB = 1024
RUNS = 3
HOST = ("size_bytes", "runtime", "host_ms_median", "host_ms_p90")
DEVICE = ("dev_inference_ms", "dev_internal_ram_bytes", "dev_external_ram_bytes",
          "dev_external_flash_bytes", "dev_weights_bytes", "dev_epochs_total", "dev_epochs_hw",
          "dev_epochs_hybrid", "dev_epochs_sw", "dev_tool_version", "dev_board", "dev_source")

# A device build of our int8 TFLite, deliberately different from ST's published row.
DEV_MS = 3.91
NPU3_USED, NPU4_USED = 400 * KIB, 64 * KIB  # internal RAM = 464 KiB = 475136 bytes
FLASH_USED = 200_000  # weights in the octo-SPI flash


def c_info_doc() -> dict:
    """A ``network_c_info.json`` with the documented fields (graphs[0].exec_time,
    memory_footprint, memory_pools with addresses; internal when below 0x60000000)."""
    def pool(pid, name, address, size, used, rights="ACC_WRITE"):
        return {"id": pid, "name": name, "address": hex(address), "size_bytes": size,
                "used_size_bytes": used, "rights": rights, "subpools": [],
                "buffers": [1] if used else []}

    return {
        "environment": {"tools": [{"name": "ST Edge AI Core",
                                   "version": {"major": 3, "minor": 0, "micro": 0}}]},
        "graphs": [{"nodes": [{"name": "conv_0", "id": 1, "macc": 0}],
                    "exec_time": {"cycles": 3128000, "duration_ms": DEV_MS}}],
        "memory_footprint": {"weights": FLASH_USED, "activations": NPU3_USED + NPU4_USED,
                             "io": [0, 0]},
        "memory_pools": [pool(1, "npuRAM3", 0x34200000, 458752, NPU3_USED),
                         pool(2, "npuRAM4", 0x34270000, 458752, NPU4_USED),
                         pool(3, "cpuRAM2", 0x34100000, 1048576, 0),
                         pool(4, "hyperRAM", 0x90000000, 33554432, 0),
                         pool(5, "octoFlash", 0x71000000, 117440512, FLASH_USED,
                              rights="ACC_READ")],
    }


def report_text(model_file: str) -> str:
    """A ``network_generate_report.txt`` in ST Edge AI Core 3.x's layout: epochs 40 = 22 HW +
    16 hybrid + 2 SW."""
    return f"""ST Edge AI Core v3.0.0-20426 123672867
Parameters            : generate --target stm32n6 --st-neural-art default@user_neuralart.json -m {model_file}

Epochs details
------------------------------------------------------------------------------------
Total number of epochs                               40
>> pure software (SW) epochs                          2
>> hybrid epochs (using both software and hardware)  16
>> pure hardware (HW or EC) epochs                   22  (implemented in 1 epoch controller blobs/meta epochs)
"""


def _manifest(export: Path) -> dict:
    return json.loads((export / "manifest.json").read_text())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def plain(default_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_plain")
    return run_bench(default_export, runs=RUNS, out_dir=out, progress=False), out


@pytest.fixture(scope="module")
def st_files(default_export, tmp_path_factory):
    d = tmp_path_factory.mktemp("st")
    man = _manifest(default_export)
    cinfo = d / "network_c_info.json"
    cinfo.write_text(json.dumps(c_info_doc()))
    report = d / "network_generate_report.txt"
    report.write_text(report_text(man["artifacts"]["int8_tflite"]["path"]))
    return cinfo, report


def test_rows_host_columns_and_manifest_figures(plain, default_export):
    res, _ = plain
    man = _manifest(default_export)
    assert [r.artifact for r in res.rows] == ["fp32_onnx", "int8_onnx", "fp32_tflite",
                                              "int8_tflite"]
    for row in res.rows:
        a = man["artifacts"][row.artifact]
        path = default_export / a["path"]
        for col in HOST:
            assert getattr(row, col) is not None, (row.artifact, col)
        assert row.size_bytes == path.stat().st_size
        assert 0 < row.host_ms_median <= row.host_ms_p90 < 10_000
        assert row.runtime.startswith("onnxruntime" if a["format"] == "onnx" else "litert")
        assert row.params is not None
        for col in DEVICE:  # no ST report given: nothing invented
            assert getattr(row, col) is None, (row.artifact, col)
        if _sha(path) != a["sha256"]:  # the manifest's figures were measured on another file
            assert row.status == "modified since export"
            assert row.sqnr_db is None and row.det_matched is None
            continue
        assert row.status == "ok"
        v = a["verification"]
        if a["precision"] == "int8":
            assert row.sqnr_db == min(x for x in v["sqnr_db"].values() if x is not None)
            d = v["detections"]
            assert (row.det_matched, row.det_ref, row.det_extra) == (d["matched"], d["ref"],
                                                                     d["extra"])
        else:
            assert row.fp32_max_scaled_err == v["max_scaled_err"]


def test_reference_row_is_published_not_measured(plain):
    res, _ = plain
    ref = res.reference
    assert ref.status == "published, not measured here"
    assert ref.dev_inference_ms == 4.48
    assert ref.dev_internal_ram_bytes == 528 * KIB
    assert round(ref.dev_weights_bytes / KIB, 2) == 105.98
    assert ref.dev_tool_version == "3.0.0" and ref.dev_board == "STM32N6570-DK"
    assert all(getattr(ref, c) is None for c in HOST)  # nothing of it was run here
    table = res.markdown()
    assert "published, not measured here" in table and "| 4.48 |" in table


def _cells(line: str) -> int:
    return line.replace("\\|", "").count("|") - 1


def test_files_written_and_valid(plain):
    import matplotlib.image as mpimg

    res, out = plain
    names = {p.name for p in out.iterdir()}
    assert {"bench.md", "bench.csv", "bench.json", "bench_accuracy_latency.png",
            "bench_quant_error.png"} <= names
    assert not [n for n in names if ".tmp" in n]  # atomic writes leave no temporary files
    for png in ("bench_accuracy_latency.png", "bench_quant_error.png"):
        raw = (out / png).read_bytes()
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(out / png)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    # Markdown: header, separator and 5 rows, every line with the same number of cells
    md = (out / "bench.md").read_text()
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(table) == 2 + 5
    counts = {_cells(ln) for ln in table}
    assert len(counts) == 1
    header = [c.strip() for c in table[0].strip("|").split("|")]
    for col in ("artifact", "status", "size KiB", "params", "MMAC", "host ms median",
                "host ms p90", "SQNR dB", "det. parity", "N6 ms", "N6 int. RAM KiB",
                "N6 ext. flash KiB", "N6 epochs HW/hyb/SW", "ST Edge AI"):
        assert col in header
    assert "mAP@0.5" not in header  # only with --data
    # CSV: one column per BenchRow field, 4 artifacts + the reference
    rows = list(csv.DictReader((out / "bench.csv").open()))
    assert len(rows) == 5
    assert list(rows[0]) == list(BenchRow.__dataclass_fields__)
    assert rows[-1]["status"] == "published, not measured here"
    assert all(r["dev_inference_ms"] == "" for r in rows[:4])
    doc = json.loads((out / "bench.json").read_text())
    assert doc["schema"] == "blazeear-edge/bench/1" and doc["runs"] == RUNS
    assert len(doc["rows"]) == 4 and doc["reference"]["dev_inference_ms"] == 4.48


def test_device_columns_from_st_files(default_export, st_files, tmp_path):
    cinfo, report = st_files
    res = run_bench(default_export, st_reports=[f"int8_tflite={cinfo}", report], runs=RUNS,
                    out_dir=tmp_path, progress=False)
    by = {r.artifact: r for r in res.rows}
    r = by["int8_tflite"]
    assert r.dev_inference_ms == pytest.approx(DEV_MS)
    assert r.dev_internal_ram_bytes == 475136  # 400 KiB + 64 KiB of NPU RAM
    assert r.dev_external_flash_bytes == FLASH_USED
    assert r.dev_external_ram_bytes == 0
    assert r.dev_weights_bytes == FLASH_USED
    assert (r.dev_epochs_total, r.dev_epochs_hw, r.dev_epochs_hybrid, r.dev_epochs_sw) == \
        (40, 22, 16, 2)  # from the text report; the c_info has no epoch summary
    assert r.dev_tool_version == "3.0.0"
    assert str(cinfo) in r.dev_source and str(report) in r.dev_source
    for key in ("fp32_onnx", "int8_onnx", "fp32_tflite"):
        assert all(getattr(by[key], c) is None for c in DEVICE), key
    line = next(ln for ln in res.markdown().splitlines() if ln.startswith("| int8 TFLite"))
    assert "| 3.91 | 464.0 | 195.3 | 195.31 | 22/16/2 | 3.0.0 |" in line
    assert res.reference.dev_inference_ms == ST_REFERENCE["inference_ms"]  # untouched


def test_report_goes_to_the_artifact_it_names(default_export, tmp_path):
    man = load_manifest(default_export)
    onnx_name = man.artifact("int8_onnx").path
    named = tmp_path / "network_analyze_report.txt"
    named.write_text(report_text(onnx_name))
    unnamed = tmp_path / "other_report.txt"
    unnamed.write_text(report_text("some_model.tflite"))
    got = assign_st_reports([named, unnamed], man)
    assert [r["source"] for r in got["int8_onnx"]] == [str(named)]
    assert [r["source"] for r in got["int8_tflite"]] == [str(unnamed)]  # ST's N6 flow's model


def test_markdown_table_escapes_and_keeps_columns():
    rows = [BenchRow("x", "odd | label", status="failed: a|b"), BenchRow("y", "plain")]
    lines = markdown_table(rows).splitlines()
    assert len({_cells(ln) for ln in lines}) == 1


def test_cli_prints_table(run_cli, default_export, st_files, tmp_path):
    cinfo, _ = st_files
    r = run_cli("bench", default_export, "--runs", RUNS, "--out", tmp_path, "--quiet",
                "--st-report", cinfo)
    assert r.code == 0, r.err
    assert r.out.splitlines()[2].startswith("| artifact | status |")
    assert (tmp_path / "bench.md").is_file()
    assert "| 3.91 |" in r.out  # c_info without a KEY= goes to the int8 TFLite


@pytest.mark.parametrize("args, needle", [
    (("{missing}",), "no export manifest"),
    (("{export}", "--runs", "0"), "--runs"),
    (("{export}", "--st-report", "int9_tflite={cinfo}"), "int9_tflite"),
    (("{export}", "--st-report", "{missing}/c_info.json"), "no such ST report"),
    (("{export}", "--data", "{missing}/val.json"), "no such --data"),
])
def test_cli_bad_input_exit_2_one_line(run_cli, default_export, st_files, tmp_path, args,
                                       needle):
    cinfo, _ = st_files
    fill = {"missing": tmp_path / "nope", "export": default_export, "cinfo": cinfo}
    r = run_cli("bench", *[a.format(**fill) for a in args], "--out", tmp_path / "o", "--quiet")
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.err
    assert not (tmp_path / "o").exists()  # nothing written for bad input


def test_predicted_n6_column_is_lints_prediction(plain, default_export):
    """The "predicted N6 ms" column is lint's latency model on each artifact (with the
    manifest's stedgeai line), shown beside ST's published BlazeFace row."""
    from blazeear_edge.lint import lint_model

    res, _ = plain
    man = _manifest(default_export)
    by = {r.artifact: r for r in res.rows}
    for key, row in by.items():
        d = lint_model(default_export / man["artifacts"][key]["path"]).to_dict()
        assert row.pred_n6_ms == d["inference_ms"]
        assert [row.pred_n6_ms_lo, row.pred_n6_ms_hi] == d["inference_ms_band"]
        assert row.pred_n6_ms_lo < row.pred_n6_ms < row.pred_n6_ms_hi
    # an all-software float graph on the M55 cannot beat the same network on the NPU
    assert by["int8_tflite"].pred_n6_ms < by["fp32_tflite"].pred_n6_ms
    assert res.reference.pred_n6_ms is None  # ST's row: published figures only
    table = res.markdown()
    assert "predicted N6 ms" in table and f"{by['int8_tflite'].pred_n6_ms:.2f} (" in table
