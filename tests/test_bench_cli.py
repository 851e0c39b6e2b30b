"""``python -m smpc_bench --quick``: the table's JSON schema, figures against theory, bad input."""

import json
import subprocess
import sys

import pytest

from smpc.mpc import registry


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, "-m", "smpc_bench", "--quick", "--repeat", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for png in ("fedavg.png", "overhead.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    overhead = json.loads((out / "overhead.json").read_text()), (out / "overhead.md").read_text()
    return json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text(), done.stdout, overhead


def test_json_has_machine_stamp_and_rows(quick_results):
    document, markdown, stdout, _ = quick_results
    assert document["mode"] == "quick"
    for key in ("cpu", "cores", "numpy", "numba", "blas"):
        assert key in document["machine"]
    names = [row["name"] for row in document["rows"]]
    assert any("smpc.ring.matmul" in n for n in names)
    assert any("2-party additive" in n for n in names) and any("3-party additive" in n for n in names)
    for row in document["rows"]:
        assert set(row["seconds"]) == {"median", "min", "max"}
        assert row["seconds"]["min"] <= row["seconds"]["median"] <= row["seconds"]["max"]
    assert "| case |" in markdown and "smpc.ring.matmul" in stdout


def test_figures_match_theory_and_bounds(quick_results):
    document, _, _, _ = quick_results
    for row in document["rows"]:
        if row["group"] == "ring matmul" and "smpc.ring" in row["name"]:
            assert row["exact"] is True
        if "offline_seconds" in row and "dealer_bytes" in row:
            assert row["bytes_per_party"] == row["bytes_theory"]
            assert row["dealer_bytes"] == row["dealer_bytes_theory"]
            assert row["rounds"] == row["rounds_theory"]
            assert row["max_error"] <= row["error_bound"]


def test_transport_rows_move_the_same_bytes(quick_results):
    document, _, _, _ = quick_results
    rows = [row for row in document["rows"] if row["group"] == "transports"]
    assert [r["name"].split(" over ")[1] for r in rows] == ["threads", "TCP with a session secret",
                                                              "TCP with mutual TLS"]
    assert rows[0]["ratio"] == 1.0
    for row in rows:
        assert row["bytes_per_party"] == row["bytes_theory"] and row["rounds"] == row["rounds_theory"]
        assert row["within_bound"] and row["max_error"] <= row["error_bound"]


def test_network_rows_add_latency_not_bytes(quick_results):
    document, _, _, _ = quick_results
    rows = [row for row in document["rows"] if row["group"] == "networks"]
    setups = registry.bench_setups(group="networks")
    assert len(setups) > len(registry.bench_setups())  # FSS comparisons join this group
    assert len(rows) == 2 * 3 * len(setups)  # ReLU and matmul, loopback / LAN / WAN
    labels = {registry.get(name).label: registry.get(name) for name, _ in setups}
    for row in rows:
        assert row["bytes_per_party"] == row["bytes_theory"] and row["within_bound"]
        assert row["rounds"] == row["rounds_theory"]
        (spec,) = [spec for label, spec in labels.items() if f"party {label}," in row["name"]]
        assert ("online_seconds" in row) == spec.kind(None).preprocessing  # ahead where the source allows it
        if "WAN" in row["name"]:  # every round waits at least half a round trip
            assert row["latency_floor_seconds"] == row["rounds"] * 0.02
            assert row["seconds"]["min"] >= row["latency_floor_seconds"]
            if "online_seconds" in row:
                assert row["online_seconds"]["min"] >= row["latency_floor_seconds"]
        if "loopback" in row["name"]:
            assert row["network_seconds"] == 0 and row["ratio"] == 1.0


def test_resnet_and_training_rows(quick_results):
    document, markdown, _, _ = quick_results
    groups = {}
    for row in document["rows"]:
        groups.setdefault(row["group"], []).append(row)
    for group in ("ResNet-18 inference", "private training"):
        rows = groups[group]
        assert "plaintext" in rows[0]["name"] and rows[0]["ratio"] == 1.0
        private = [row for row in rows if "party" in row["name"]]
        expected = ["2-party additive", "3-party aby3"] + (["2-party spdz2k"] if group.startswith("ResNet") else [])
        assert [next((e for e in expected if e in r["name"]), None) for r in private] == expected
        for row in private:
            assert row["bytes_per_party"] == row["bytes_theory"]  # the forward pass (or epoch) to the byte
            assert row["rounds"] == row["rounds_theory"]
            assert row["within_bound"] and row["max_error"] <= row["error_bound"]
    assert "offline_seconds" in groups["ResNet-18 inference"][-1]
    assert "ResNet-18, 1x3x32x32" in markdown


def test_paillier_rows_compare_with_phe_and_the_trusted_dealer(quick_results):
    document, _, _, _ = quick_results
    rows = [row for row in document["rows"] if row["group"].startswith("Paillier")]
    fresh = ["phe, fresh key"] * 3  # --quick encrypts 1, 8 and 50 values on fresh keys
    assert [row["ratio_to"] for row in rows] == ["phe per value"] * 3 + fresh + ["trusted dealer"] * 2
    for row in rows:
        assert row["seconds"]["median"] > 0 and row["ratio"] > 0
    assert [row["values"] for row in rows[3:6]] == [1, 8, 50]
    assert all(row["seconds_per_triple"] > 0 and row["offline_bytes"] > 0 for row in rows[6:])


def test_unknown_flag_is_refused():
    done = subprocess.run([sys.executable, "-m", "smpc_bench", "--fast"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unrecognized arguments: --fast" in done.stderr


def test_unwritable_output_folder_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = subprocess.run([sys.executable, "-m", "smpc_bench", "--quick", "--out", str(blocker / "sub")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "cannot create output folder" in done.stderr


def test_repeat_must_be_positive():
    done = subprocess.run([sys.executable, "-m", "smpc_bench", "--repeat", "0"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "--repeat must be at least 1" in done.stderr


def test_aggregation_and_fedavg_rows(quick_results):
    document, _, _, _ = quick_results
    rows = [row for row in document["rows"] if row["group"] == "gradient aggregation"]
    assert [("plaintext" in r["name"], "DP" in r["name"], "servers" in r["name"], "secure" in r["name"])
            for r in rows] == [(True, False, False, False), (False, True, False, False)] + \
        [(False, False, True, False)] * 2 + [(False, False, False, True)] * 3
    for row in rows[2:4]:  # two and three servers: one opening round, one ring vector on the wire
        assert row["rounds"] == row["rounds_theory"] == 1 and row["bytes_per_party"] == row["bytes_theory"]
    for row in rows[1:]:
        assert row["within_bound"] and row["max_error"] <= row["error_bound"] and row["bytes_per_client"] > 0
    runs = [row for row in document["rows"] if row["group"] == "private FedAvg"]
    assert len(runs) == 2 and all(row["plot"] == "fedavg.png" for row in runs)
    assert runs[0]["epsilon_per_round"] == [0.0] * len(runs[0]["accuracy_per_round"])
    epsilons = runs[1]["epsilon_per_round"]
    assert epsilons == sorted(epsilons) and epsilons[0] > 0


BENCHED = [name for name, _ in registry.bench_setups()]  # additive and aby3
PROTOCOLS = [name for name, _ in registry.bench_setups(group="overhead")]  # ... and spdz2k, in the table only
COLUMNS = {"matmul": ["plaintext", "dp", *PROTOCOLS], "resnet18": ["plaintext", "dp", *PROTOCOLS],
           "aggregation": ["plaintext", "dp", *BENCHED, "secagg"]}  # spdz2k aggregates no outside inputs yet


def test_overhead_table_schema_and_error_bounds(quick_results):
    _, _, stdout, (document, markdown) = quick_results
    assert document["schema"] == "smpc.overhead/1" and document["mode"] == "quick"
    for key in ("cpu", "cores", "numpy", "numba", "blas"):
        assert document["machine"][key]
    assert set(document["columns"]) == {"plaintext", "dp", *PROTOCOLS, "secagg"}
    assert [entry["operation"] for entry in document["rows"]] == list(COLUMNS)
    for entry in document["rows"]:
        cells = entry["cells"]
        assert sorted(cells) == sorted(COLUMNS[entry["operation"]]), entry["operation"]
        assert set(entry["quoted_pysyft"]) == {"plaintext", "dp", "mpc"}
        assert cells["plaintext"]["ratio"] == 1.0
        for column, cell in cells.items():
            spread = cell["seconds"]
            assert 0 < spread["min"] <= spread["median"] <= spread["max"]
            assert cell["ratio"] == spread["median"] / cells["plaintext"]["seconds"]["median"]
            assert cell["within_bound"] is True and 0 <= cell["max_error"] <= cell["error_bound"], (entry, column)
            if column in (*PROTOCOLS, "secagg"):
                assert cell["error_bound"] > 0
                assert cell["rounds"] == cell["rounds_theory"]
                assert {"median", "min", "max"} == set(cell["offline_seconds"]) == set(cell["online_seconds"])
                assert cell.get("bytes_per_party", cell.get("bytes_per_client", 0)) > 0
            if column == "dp":
                assert cell["epsilon"] == 1.0 and cell["delta"] == 1e-5 and cell["sigma"] > 0 and cell["protects"]
    assert "PySyft" in markdown and "| operation |" in markdown and document["machine"]["cpu"] in markdown
    assert "The overhead table" in stdout and "Reference: PyTorch" in stdout and "Reference: PyTorch" in markdown
    assert "spdz2k" in PROTOCOLS and "spdz2k" not in BENCHED
    for entry in document["rows"]:
        for column in (*PROTOCOLS, "secagg"):
            assert column not in entry["cells"] or entry["cells"][column]["phases"]


def test_sizes_that_do_not_fit_are_refused_before_allocating():
    done = subprocess.run([sys.executable, "-m", "smpc_bench", "--quick", "--matmul", "3000000"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "matmul at these sizes needs about" in done.stderr and "GiB available" in done.stderr


def test_size_flags_below_their_minimum_are_refused():
    done = subprocess.run([sys.executable, "-m", "smpc_bench", "--quick", "--image", "8"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "--image must be at least 32, got 8" in done.stderr


def test_memory_estimates_grow_with_the_sizes():
    from smpc_bench.cli import CASES, SIZES
    from smpc_bench.memory import check_fits, estimate_bytes

    quick, full = estimate_bytes(SIZES["quick"]), estimate_bytes(SIZES["full"])
    assert all(0 < quick[case] <= full[case] for case in quick)
    check_fits(SIZES["full"], available=24 * 2**30)  # the development machine runs --full
    overhead_cases = [label for label, _, in_table in CASES if in_table]
    with pytest.raises(MemoryError, match="comparisons and non-linear functions"):
        check_fits(SIZES["full"], available=8 * 2**30)
    check_fits(SIZES["full"], available=8 * 2**30, cases=overhead_cases)  # --only-overhead fits in 8 GiB
    assert set(estimate_bytes(SIZES["full"])) <= {label for label, _, _ in CASES}
    with pytest.raises(MemoryError, match="ResNet-18 inference at these sizes needs about"):
        check_fits(dict(SIZES["full"], image=4096), available=24 * 2**30)


def test_only_overhead_measures_the_table_and_draws_progress(tmp_path):
    done = subprocess.run([sys.executable, "-m", "smpc_bench", "--quick", "--only-overhead", "--repeat", "1",
                           "--out", str(tmp_path), "--progress", "always", "--parameters", "2000", "--clients", "8"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3/3" in done.stderr and "gradient aggregation" in done.stderr  # the progress bar
    document = json.loads((tmp_path / "overhead.json").read_text())
    assert document["sizes"]["parameters"] == 2000 and document["sizes"]["clients"] == 8
    assert [len(entry["cells"]) for entry in document["rows"]] == [5, 5, 5]  # spdz2k: matmul and ResNet-18 only
    groups = {row["group"] for row in json.loads((tmp_path / "bench.json").read_text())["rows"]}
    assert groups == {"fixed-point matmul", "ResNet-18 inference", "gradient aggregation"}
    assert not (tmp_path / "fedavg.png").exists() and (tmp_path / "overhead.png").exists()


def test_imported_model_rows(quick_results):
    document, markdown, _, _ = quick_results
    rows = [row for row in document["rows"] if row["group"] == "imported models"]
    try:
        import torch  # noqa: F401
    except ImportError:  # the bench runs without PyTorch and says so
        assert len(rows) == 1 and "skipped" in rows[0]["name"] and rows[0]["skipped"]
        return
    mobilenet, resnet18, resnet50 = rows
    assert "MobileNetV2-like" in mobilenet["name"] and "1x3x32x32, 2-party additive" in mobilenet["name"]
    assert "ResNet-18 via from_torch vs built-in" in resnet18["name"] and resnet18["ratio_to"] == "built-in"
    assert "ResNet-50-sized" in resnet50["name"] and "no private run" in resnet50["name"]
    for row in (mobilenet, resnet18):
        for key in ("seconds", "offline_seconds", "online_seconds", "forward_seconds", "conversion_seconds"):
            assert set(row[key]) == {"median", "min", "max"} and row[key]["median"] > 0, key
        assert row["bytes_per_party"] == row["bytes_theory"] and row["rounds"] == row["rounds_theory"]
        assert row["argmax_agrees"] is True and row["within_bound"] is True
        assert 0 <= row["max_error"] <= row["error_bound"] <= 2e-2
    # the same weights, the same protocol: the imported ResNet-18 moves what the built-in one does, to the byte
    assert resnet18["bytes_per_party"] == resnet18["builtin_bytes_per_party"]
    assert resnet18["rounds"] == resnet18["builtin_rounds"]
    assert resnet18["ratio"] == resnet18["seconds"]["median"] / resnet18["builtin_seconds"]["median"]
    assert resnet18["builtin_max_error"] <= resnet18["error_bound"]
    assert resnet50["seconds"]["median"] > 0 and resnet50["seconds_without_verify"]["median"] > 0
    assert resnet50["parameters"] > 25_000_000 and resnet50["within_target"] == (resnet50["seconds"]["median"] < 5)
    assert "MobileNetV2-like" in markdown


def test_imported_models_are_skipped_without_torch(monkeypatch):
    from smpc_bench import import_rows
    from smpc_bench.cli import table

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    rows = import_rows.import_rows(32, 1)
    assert [row["group"] for row in rows] == ["imported models"] and "PyTorch is not installed" in rows[0]["skipped"]
    assert table(rows)[1][1] == "skipped"


def test_flower_rows_set_smpc_beside_flowers_secaggplus(quick_results):
    document, markdown, _, _ = quick_results
    rows = [row for row in document["rows"] if row["group"] == "federated learning on Flower"]
    assert len(rows) == 2 and "smpc secure aggregation on Flower" in rows[0]["name"] and "SecAgg+" in rows[1]["name"]
    assert rows[0]["max_error"] <= rows[0]["error_bound"] and rows[0]["ratio_to"] == "Flower SecAgg+"
    assert all(row["seconds"]["median"] > 0 and row["cold_seconds"] > 0 for row in rows)
    assert "SecAgg+ workflow, warm round" in markdown


def test_flower_rows_are_skipped_with_a_note_without_flower(monkeypatch):
    from smpc_bench import flower_rows

    monkeypatch.setattr(flower_rows.importlib.util, "find_spec", lambda name: None)
    (row,) = flower_rows.flower_rows(3, 10, 1, 2)
    assert "skipped" in row and "flwr is not installed" in row["skipped"] and row["seconds"]["median"] == 0.0
