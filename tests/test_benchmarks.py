"""The benchmark scripts (benchmarks/, docs/benchmarks.md) run and report;
nothing here is timed or compared with a target: only that each script
completes and says what it measured. The GPU scripts run here with their
stand-ins (--fake, a stub nvidia-smi); on a GPU host they run for real by
hand (bash benchmarks/gpu/run_all.sh)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH / "cpu"))

import quality  # noqa: E402

# No apt-get download of hwloc's headers from a test.
ENV = {**os.environ, "NUMABIND_BENCH_NO_DOWNLOAD": "1"}


def _json_line(out: str) -> dict:
    return json.loads(next(line for line in out.splitlines() if line.startswith("JSON "))[5:])


def test_quality_judges_the_expected_answers_right_and_the_recipe_as_documented(tmp_path):
    import sysfs_tree as st

    for name in st.MACHINES:
        desc = st.load(name)
        exp = desc["expected"]["gpus"]
        if not exp:
            continue
        nodes = {n["id"]: set(st.parse_cpulist(n.get("cpus", ""))) for n in desc["cpu"]["nodes"]}
        # A placement built from the answers themselves is right everywhere.
        perfect = [{"cpus": nodes[e["numa"]] if e["numa"] is not None else {0},
                    "mem_nodes": (e["numa"],) if e["numa"] is not None else (), "hca": e["hca"]} for e in exp]
        rows = quality.judge(desc, list(range(len(exp))), perfect)
        assert all(r["node"] and r["cpus"] and r["nic"] for r in rows), name
    # The recipe on a DGX H100: rank 4's CPUs 48-59 straddle the two nodes
    # (node 0 ends at 55), and only rank 0 uses its own NIC.
    desc = st.load("dgx-h100")
    rows = quality.judge(desc, list(range(8)), quality.recipe(desc, list(range(8))))
    assert [r["cpus"] for r in rows] == [True] * 4 + [False] + [True] * 3
    assert [r["nic"] for r in rows] == [True] + [False] * 7
    assert all(r["node"] for r in rows)
    # Second job on GPUs 4-7: rank // 4 is node 0 for all, the GPUs are on node 1.
    rows = quality.judge(desc, [4, 5, 6, 7], quality.recipe(desc, [4, 5, 6, 7]))
    assert not any(r["node"] or r["cpus"] for r in rows)


def test_quality_scores_numabind_on_the_fixtures(tmp_path):
    results = quality.evaluate(tmp_path)
    table = quality.table(results)
    assert "| **all** |" in table
    for e in results:
        if e["ranks"]:
            assert all(r["node"] and r["cpus"] and r["nic"] for r in e["numabind"]), e


def test_run_cpu_quick_writes_every_section(tmp_path):
    p = subprocess.run([sys.executable, str(BENCH / "run_cpu.py"), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, env=ENV, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    md = next(tmp_path.glob("bench-cpu-*.md")).read_text()
    for section in ("## 1. Pin cost", "## 2. Binding with threads alive", "## 3. Whole processes",
                    "## 4. Topology load", "## 5. Placement quality"):
        assert section in md
    res = json.loads(next(tmp_path.glob("bench-cpu-*.json")).read_text())
    assert res["reps"] == 3 and res["machine"]["cpus_online"] >= 1
    if res["c_build"].get("command"):
        assert set(res["threads"]["C"]) == {"1", "10", "100", "1000"}
        # the C core really bound every thread, and the fixture plan really applied
        assert res["threads"]["C"]["1000"]["threads_bound"] == 1000
        assert all(r["applied"] == 1 for r in res["pin"]["raw"]["C host-gpus"])
    assert res["threads"]["Python"]["1000"]["threads_on_rank_cpus"]["pin_rank_warm"] == 1000


def test_show_vs_nvidia_smi_with_a_stub(tmp_path):
    stub = tmp_path / "nvidia-smi"
    stub.write_text("#!/bin/sh\necho stub\n")
    stub.chmod(0o755)
    p = subprocess.run([sys.executable, str(BENCH / "gpu/show_vs_nvidia_smi.py"), "--reps", "2",
                        "--nvidia-smi", str(stub)], capture_output=True, text=True, env=ENV, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Target: `numabind show` at least 3×" in p.stdout      # issue 16's
    # the native command is what is timed, not the Python CLI
    assert f"`numabind` here is `{Path(sys.executable).parent / 'numabind'}`" in p.stdout
    res = _json_line(p.stdout)
    assert set(res["whole_process_ns"]) >= {"nvidia-smi topo -m", "numabind show", "python -m numabind show"}
    assert len(res["whole_process_ns"]["numabind show"]) == 2


def test_copy_bandwidth_fake(tmp_path):
    # This host has no GPU, so no rank to plan: a tree of its CPUs with two made-up GPUs.
    import fixtures

    p = subprocess.run([sys.executable, str(BENCH / "gpu/copy_bandwidth.py"), "--fake", "--mib", "4",
                        "--copies", "2"], capture_output=True, text=True,
                       env={**ENV, "NUMABIND_FSROOT": str(fixtures.host_gpus(tmp_path))}, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    res = _json_line(p.stdout)
    assert res["fake"] and res["gpus"]
    for entry in res["gpus"].values():
        assert entry["per_core"] and {"h2d", "d2h"} <= set(entry)


@pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode != 0,
                    reason="needs PyTorch (torchrun)")
def test_launch_variance_fake(tmp_path):
    # Two ranks on a tree of this host's CPUs with two made-up GPUs: numabind
    # really pins each rank to its half.
    import fixtures

    root = fixtures.host_gpus(tmp_path)
    p = subprocess.run([sys.executable, str(BENCH / "gpu/launch_variance.py"), "--fake", "--nproc", "2",
                        "--rounds", "1", "--iters", "50", "--fsroot", str(root)],
                       capture_output=True, text=True, env=ENV, timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    res = _json_line(p.stdout)
    assert not res["errors"], res["errors"]
    assert set(res["summary"]) == {"none", "numabind"}
    for rank in res["jobs"]["numabind"][0]:
        assert rank["cpus_of_all_threads"] == len(rank["pinned"]["cpus"])
    for rank in res["jobs"]["none"][0]:
        assert rank["pinned"] is None


def test_launch_variance_ranks_default_to_the_visible_gpus(tmp_path, monkeypatch):
    # One rank per GPU numabind sees: a 4-rank job on a one-GPU host failed
    # every round (lent H100, 2026-12-07).
    import fixtures
    sys.path.insert(0, str(BENCH / "gpu"))
    try:
        import launch_variance
    finally:
        sys.path.pop(0)
    root = str(fixtures.host_gpus(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert launch_variance.default_nproc(False, root) == 2
    with pytest.raises(SystemExit, match="sees no GPU"):
        launch_variance.default_nproc(False, str(fixtures.described("plain-2cpu-no-gpu", tmp_path / "nogpu")))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert launch_variance.default_nproc(False, root) == 1
    assert launch_variance.default_nproc(True, root) == 4


def test_run_all_names_every_gpu_script():
    text = (BENCH / "gpu/run_all.sh").read_text()
    for script in ("show_vs_nvidia_smi", "copy_bandwidth", "launch_variance"):
        assert script in text and (BENCH / f"gpu/{script}.py").exists()
