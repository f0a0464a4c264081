"""read_st_report: ST's c_info JSON, text reports and Developer Cloud results -> device numbers.

The sample files are built here from the documented fields (docs/st-edge-ai.md) and the layout of
a real ST Edge AI Core 3.0.0 ``network_generate_report.txt``; the expected numbers are computed by
hand from what is written into them (e.g. 416 KiB + 112 KiB of NPU RAM = 540672 bytes).
"""

from __future__ import annotations

import json

import pytest

from blazeear_edge.errors import BlazeEarError
from blazeear_edge.streports import FIELDS, read_st_report

KIB = 1024
# ST's published BlazeFace-128 compile on STM32N6570-DK (ST Edge AI Core 3.0.0).
NPU3_USED = 416 * KIB
NPU4_USED = 112 * KIB
WEIGHTS = 108524  # 105.98 KiB


def _pool(pid, name, address, size, used, rights="ACC_WRITE", subpools=(), buffers=(1,)):
    return {"id": pid, "name": name, "address": address, "size_bytes": size,
            "used_size_bytes": used, "rights": rights, "subpools": list(subpools),
            "buffers": list(buffers) if used else []}


def c_info(duration_ms=4.48, address_fmt=str, with_exec=True):
    graph = {"nodes": [{"name": "conv_0", "id": 1, "macc": 0}, {"name": "pad_1", "id": 2, "macc": 0}]}
    if with_exec:
        graph["exec_time"] = {"cycles": 3584000, "duration_ms": duration_ms}
    return {
        "environment": {"tools": [{"name": "ST Edge AI Core",
                                   "version": {"major": 3, "minor": 0, "micro": 0, "extra": "20426"}}]},
        "graphs": [graph],
        "memory_footprint": {"weights": WEIGHTS, "activations": NPU3_USED + NPU4_USED, "io": [0, 0],
                             "kernel_flash": None, "kernel_ram": None},
        "memory_pools": [
            _pool(1, "npuRAM6", address_fmt(0x34350000), 458752, 0),
            _pool(2, "npuRAM5", address_fmt(0x342E0000), 458752, 0),
            _pool(3, "npuRAM4", address_fmt(0x34270000), 458752, NPU4_USED),
            _pool(4, "npuRAM3", address_fmt(0x34200000), 458752, NPU3_USED),
            _pool(5, "cpuRAM2", address_fmt(0x34100000), 1048576, 0),
            _pool(8, "hyperRAM", address_fmt(0x90000000), 33554432, 0),
            _pool(9, "octoFlash", address_fmt(0x71000000), 117440512, WEIGHTS, rights="ACC_READ"),
            # A virtual aggregate as ST writes it: its used size must not be counted again.
            _pool(10, "cpuRAM2_npuRAM3_npuRAM4_npuRAM5_npuRAM6", address_fmt(0x34100000), 2883584,
                  2211840, subpools=(5, 4, 3, 2, 1), buffers=()),
        ],
    }


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_c_info_device_numbers(tmp_path):
    r = read_st_report(write(tmp_path, "network_c_info.json", c_info()))
    assert r["kind"] == "c_info"
    assert r["inference_ms"] == pytest.approx(4.48)
    assert r["internal_ram_bytes"] == 540672 == 528 * KIB
    assert r["external_ram_bytes"] == 0
    assert r["external_flash_bytes"] == WEIGHTS
    assert r["weights_bytes"] == WEIGHTS
    assert r["tool_version"] == "3.0.0"
    # c_info carries no epoch summary: left unknown, not guessed.
    assert r["epochs_total"] is None and r["epochs_sw"] is None and r["epochs_hw"] is None
    assert set(FIELDS) <= set(r)


def test_c_info_hex_addresses_and_no_measurement(tmp_path):
    doc = c_info(address_fmt=hex, with_exec=False)
    r = read_st_report(write(tmp_path, "network_c_info.json", doc))
    assert r["inference_ms"] is None  # generate without a board: no time, none invented
    assert r["internal_ram_bytes"] == 540672
    doc = c_info(duration_ms=-1)
    assert read_st_report(write(tmp_path, "c2.json", doc))["inference_ms"] is None


def test_c_info_aggregate_pool_holding_buffers_counts_once(tmp_path):
    doc = c_info()
    for pool in doc["memory_pools"]:
        if pool["id"] in (3, 4):
            pool["used_size_bytes"], pool["buffers"] = 0, []
    agg = doc["memory_pools"][-1]
    agg["used_size_bytes"], agg["buffers"] = 600000, [1, 2]
    r = read_st_report(write(tmp_path, "network_c_info.json", doc))
    assert r["internal_ram_bytes"] == 600000


def test_c_info_without_pools_leaves_memory_unknown(tmp_path):
    doc = c_info()
    del doc["memory_pools"]
    r = read_st_report(write(tmp_path, "network_c_info.json", doc))
    assert r["internal_ram_bytes"] is None and r["external_flash_bytes"] is None
    assert r["weights_bytes"] == WEIGHTS


REPORT_3X = """ST Edge AI Core v3.0.0-20426 123672867
Created date          : 2025-01-20 10:00:00
Parameters            : generate --target stm32n6 --st-neural-art default@user_neuralart.json -m blazeface_front_128_int8.tflite

Model name - blazeface_front_128_int8
------ ------------------------------ ------------------ -------------- ---------- ------------
m_id   layer (original)               oshape             param/size           macc connected to
------ ------------------------------ ------------------ -------------- ---------- ------------
0      input_1 ()                     [b:1,h:128,w:128,c:3]
------ ------------------------------ ------------------ -------------- ---------- ------------
model: macc=0 weights=406,040 activations=-- io=--

Memory usage information  (input/output buffers are included in activations)
------------------------------------------------------------------------------------
\tflexMEM    [0x34000000 - 0x34000000]:          0  B /          0  B  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)
\tcpuRAM2    [0x34100000 - 0x34200000]:          0  B /      1.000 MB  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)
\tnpuRAM3    [0x34200000 - 0x34270000]:    416.000 kB /    448.000 kB  ( 92.86 % used) -- weights:          0  B (  0.00 % used)  activations:    416.000 kB ( 92.86 % used)
\tnpuRAM4    [0x34270000 - 0x342E0000]:    112.000 kB /    448.000 kB  ( 25.00 % used) -- weights:          0  B (  0.00 % used)  activations:    112.000 kB ( 25.00 % used)
\toctoFlash  [0x71000000 - 0x78000000]:    105.980 kB /    112.000 MB  (  0.09 % used) -- weights:    105.980 kB (  0.09 % used)  activations:          0  B (  0.00 % used)
\thyperRAM   [0x90000000 - 0x92000000]:          0  B /     32.000 MB  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)
---
Total:                                           633.980 kB                                  -- weights:    105.980 kB                  activations:    528.000 kB
====================================================================================

Epochs details
------------------------------------------------------------------------------------
Total number of epochs                               45
>> pure software (SW) epochs                          0
>> hybrid epochs (using both software and hardware)  22
>> pure hardware (HW or EC) epochs                   23  (implemented in 1 epoch controller blobs/meta epochs)
---
+----------+--------+---------+
| epoch ID |  Type  | Details |
+----------+--------+---------+
| epoch_1  |   HW   |         |
| epoch_2  | HW/SW  | Pad     |
+----------+--------+---------+
====================================================================================
"""


def test_report_text_3x(tmp_path):
    r = read_st_report(write(tmp_path, "network_generate_report.txt", REPORT_3X))
    assert r["kind"] == "report"
    assert r["tool_version"] == "3.0.0"
    assert r["internal_ram_bytes"] == 540672          # 416 kB + 112 kB, kB = 1024 bytes
    assert r["external_flash_bytes"] == 108524        # round(105.980 * 1024)
    assert r["external_ram_bytes"] == 0
    assert r["weights_bytes"] == 108524                # from the Total line, not the float model's 406,040
    assert (r["epochs_total"], r["epochs_sw"], r["epochs_hybrid"], r["epochs_hw"]) == (45, 0, 22, 23)
    assert r["inference_ms"] is None                   # a compile report holds no board timing
    assert r["sw_ops"] == []


REPORT_OLD = """ST Edge AI Core v2.0.0-20049
Total number of epochs: 5 of which 2 implemented in software
epoch ID   HW/SW/EC Operation (SW only)
epoch 1       HW
epoch 2       EC
epoch 3      -SW-   ( Softmax )
epoch 4       HW
epoch 5      -SW-   ( DepthToSpace )
"""


def test_report_text_old_format_with_listing(tmp_path):
    r = read_st_report(write(tmp_path, "network_analyze_report.txt", REPORT_OLD))
    assert r["tool_version"] == "2.0.0"
    assert (r["epochs_total"], r["epochs_sw"], r["epochs_hw"]) == (5, 2, 3)
    assert r["sw_ops"] == ["Softmax", "DepthToSpace"]
    assert r["internal_ram_bytes"] is None and r["weights_bytes"] is None


def test_report_text_old_format_summary_only_does_not_invent_hw(tmp_path):
    text = "ST Edge AI Core v2.2.0\nTotal number of epochs: 72 of which 2 implemented in software\n" \
           "epoch 38 -SW- ( DepthToSpace )\n"
    r = read_st_report(write(tmp_path, "network_generate_report.txt", text))
    assert (r["epochs_total"], r["epochs_sw"]) == (72, 2)
    assert r["epochs_hw"] is None  # hybrid epochs may hide in the rest: not derived
    assert r["sw_ops"] == ["DepthToSpace"]


def test_cloud_benchmark_result(tmp_path):
    doc = {"state": "done", "board": "STM32N6570-DK",
           "benchmark": {"info": c_info(), "graph": {}, "report": {}},
           "memoryMapping": {"useExternalRam": False, "useExternalFlash": True}}
    r = read_st_report(write(tmp_path, "st_benchmark_STM32N6570-DK.json", doc))
    assert r["kind"] == "cloud" and r["board"] == "STM32N6570-DK"
    assert r["inference_ms"] == pytest.approx(4.48)
    assert r["internal_ram_bytes"] == 540672
    assert r["external_flash_bytes"] == WEIGHTS
    assert r["tool_version"] == "3.0.0"


def test_cloud_result_older_layout(tmp_path):
    doc = {"state": "done",
           "report": {"tools_version": {"major": 2, "minor": 2, "micro": 0}},
           "graph": {"exec_time": {"cycles": 4072000, "duration_ms": 5.09},
                     "memory_footprint": {"weights": WEIGHTS, "activations": 540672}},
           "memoryMapping": {"useExternalRam": False}}
    r = read_st_report(write(tmp_path, "result.json", doc))
    assert r["inference_ms"] == pytest.approx(5.09)
    assert r["weights_bytes"] == WEIGHTS
    assert r["tool_version"] == "2.2.0"
    assert r["external_ram_bytes"] == 0       # the service says external RAM is not used
    assert r["internal_ram_bytes"] is None    # no pool list: unknown


def test_errors_are_one_line(tmp_path):
    with pytest.raises(BlazeEarError, match="no such ST report"):
        read_st_report(tmp_path / "missing.json")
    with pytest.raises(BlazeEarError, match="not valid JSON"):
        read_st_report(write(tmp_path, "bad.json", "{oops"))
    with pytest.raises(BlazeEarError, match="not an ST Edge AI report"):
        read_st_report(write(tmp_path, "notes.txt", "hello\nworld\n"))
    with pytest.raises(BlazeEarError, match="ended in error: INTERNAL ERROR"):
        read_st_report(write(tmp_path, "err.json", {"state": "error", "message": "INTERNAL ERROR: 'FLOAT16'"}))
    with pytest.raises(BlazeEarError, match="neither"):
        read_st_report(write(tmp_path, "other.json", {"foo": 1}))
