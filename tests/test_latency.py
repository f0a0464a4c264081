"""The N6 latency model (``blazeear_edge/lint/latency.py``): physical lower bounds, the per-epoch
shares of ST's own compiler estimates (``network.c`` ``LL_ATON_EB_DBG_INFO``, committed as
``benchmarks/n6_truth/network_c_epochs.json``), and where users see it: the lint JSON keys, the
text block, the ``--plot`` timeline and the bench column. No timing assertion: speed targets
live in ``benchmarks/n6_latency.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from blazeear_edge.bench import BenchRow, markdown_table
from blazeear_edge.lint import lint_model, read_model
from blazeear_edge.lint import latency as L
from blazeear_edge.lint.footprint import count_macc

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
NETC = ROOT / "benchmarks" / "n6_truth" / "network_c_epochs.json"


def _qdq_conv_model(cin=16, cout=32, hw=32, k=3, n_layers=1) -> onnx.ModelProto:
    """A QDQ int8 chain of ``n_layers`` convs (random weights), float in / float out."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []

    def q(name, x):
        s, z = f"{name}_s", f"{name}_z"
        inits.extend([numpy_helper.from_array(np.array(0.02, np.float32), s),
                      numpy_helper.from_array(np.array(0, np.int8), z)])
        nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [f"{name}_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", s, z], [f"{name}_dq"]))
        return f"{name}_dq"

    x = q("in", "x")
    c = cin
    for i in range(n_layers):
        w = rng.integers(-100, 100, (cout, c, k, k)).astype(np.int8)
        inits += [numpy_helper.from_array(w, f"w{i}"),
                  numpy_helper.from_array(np.full(cout, 0.01, np.float32), f"w{i}_s"),
                  numpy_helper.from_array(np.zeros(cout, np.int8), f"w{i}_z")]
        nodes.append(helper.make_node("DequantizeLinear", [f"w{i}", f"w{i}_s", f"w{i}_z"],
                                      [f"w{i}_dq"], axis=0))
        nodes.append(helper.make_node("Conv", [x, f"w{i}_dq"], [f"y{i}"], pads=[1, 1, 1, 1]))
        x = q(f"y{i}", f"y{i}")
        c = cout
    nodes.append(helper.make_node("Identity", [x], ["out"]))
    g = helper.make_graph(nodes, "chain",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT,
                                                         [1, cout, hw, hw])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return onnx.shape_inference.infer_shapes(m)


def test_prediction_respects_the_documented_hardware_bounds():
    """No layer can beat the NPU's peak MAC rate (600 GOPS) nor stream its weights faster than
    the fitted flash rate, which must lie in the documented 167..400 MB/s of the octo flash."""
    assert 0.167e9 * 0.9 <= L.FLASH_BW <= 0.4e9 * 1.1
    m = _qdq_conv_model(cin=64, cout=256, hw=28, n_layers=3)
    rep = lint_model(m)
    lat = rep.latency
    g = read_model(m)
    macc = count_macc(g)
    assert macc == 28 * 28 * 256 * 9 * (64 + 256 + 256)  # out pixels x Cout x k*k x Cin
    assert lat.inference_ms / 1e3 >= macc / (L.PEAK_MAC_PER_CYCLE * L.NPU_HZ)
    assert lat.inference_ms / 1e3 >= rep.weights_bytes / L.FLASH_BW
    hw = [e for e in lat.epochs if e.unit == "hw"]
    assert len(hw) == rep.mapping.epochs["hw"] == 1
    assert hw[0].macc == macc


def test_more_weights_take_longer_and_fill_the_flash_not_the_ram():
    small = lint_model(_qdq_conv_model(cin=32, cout=32, hw=16)).latency
    big = lint_model(_qdq_conv_model(cin=256, cout=512, hw=4)).latency
    assert big.weights_flash_bytes > 10 * small.weights_flash_bytes
    assert big.inference_ms > small.inference_ms
    assert big.internal_ram_bytes < 2 * 16 * 16 * 256  # the activations, not the weights


def test_external_ram_only_beyond_the_internal_pools():
    lat = lint_model(_qdq_conv_model(cin=16, cout=16, hw=32)).latency
    assert lat.external_ram_bytes == 0
    assert lat.memory()["activations"].startswith("npuRAM")
    assert L.INTERNAL_RAM_BYTES == (4 * 448 + 1024) * 1024  # the board's .mpool pools


def test_lint_json_keys_and_text():
    rep = lint_model(_qdq_conv_model())
    d = rep.to_dict()
    for k in ("inference_ms", "inference_ms_band", "latency"):
        assert k in d
    lo, hi = d["inference_ms_band"]
    assert lo < d["inference_ms"] < hi
    lat = d["latency"]
    total = sum(e["ms"] for e in lat["epochs"]) + lat["overhead_ms"]
    assert total == pytest.approx(d["inference_ms"], abs=2e-3)
    assert {e["unit"] for e in lat["epochs"]} <= {"hw", "hybrid", "sw"}
    assert set(lat["memory"]) >= {"internal_ram_bytes", "external_ram_bytes",
                                  "weights_flash_bytes"}
    assert "1000 MHz" in lat["clocks"] and "800 MHz" in lat["clocks"]
    text = rep.format_text()
    assert "predicted N6 inference:" in text and "internal RAM" in text


def test_plot_is_written_and_bad_path_is_one_line(tmp_path, run_cli):
    model = tmp_path / "m.onnx"
    onnx.save(_qdq_conv_model(), model)
    png = tmp_path / "t.png"
    r = run_cli("lint", str(model), "--plot", str(png))
    assert r.code == 0, r.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp*"))
    r = run_cli("lint", str(model), "--plot", str(tmp_path / "no" / "t.png"))
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1 and "t.png" in r.err


def test_bench_has_a_predicted_n6_column():
    row = BenchRow(artifact="int8_tflite", label="int8 TFLite", pred_n6_ms=1.234,
                   pred_n6_ms_lo=0.95, pred_n6_ms_hi=1.6)
    ref = BenchRow(artifact="st_reference", label="ST", dev_inference_ms=4.48)
    table = markdown_table([row, ref])
    head, _, r1, r2 = table.splitlines()
    cols = [c.strip() for c in head.strip("|").split("|")]
    i = cols.index("predicted N6 ms")
    assert [c.strip() for c in r1.strip("|").split("|")][i] == "1.23 (0.95-1.60)"
    assert [c.strip() for c in r2.strip("|").split("|")][i] == ""
    assert "4.48" in r2


def _netc(name):
    if not NETC.is_file():
        pytest.skip(f"{NETC} missing")
    recs = {r["name"]: r for r in json.loads(NETC.read_text())}
    return recs[name]


@pytest.mark.parametrize("name", ["blazeface_front_128", "st_yolo_x_nano_480@3.0"])
def test_epoch_shares_follow_st_compiler_estimates(name):
    """On ST's own compiles whose network.c carries cycle estimates and whose model file is
    shipped, lint's epochs line up block for block with ST's, and the predicted share of every
    large epoch (>= 5 % of the compiler's total) is within 10 percentage points of it."""
    rec = _netc(name)
    path = SHARED / rec["model_file"]
    if not path.is_file():
        pytest.skip(f"model file not found at {path}")
    rep = lint_model(path, input_data_type="uint8", output_data_type="int8", use_manifest=False)
    lat = rep.latency
    st_units = ["hw" if b["kind"] == "blob" else b["kind"] for b in rec["blocks"]]
    assert [e.unit for e in lat.epochs] == st_units
    tot_c = rec["total_tot_cycles"]
    tot = sum(e.ms for e in lat.epochs)
    big = [(b["tot_cycles"] / tot_c, e.ms / tot) for b, e in zip(rec["blocks"], lat.epochs)
           if b["tot_cycles"] >= 0.05 * tot_c]
    assert big
    for st_share, ours in big:
        assert abs(st_share - ours) <= 0.10, (st_share, ours)
