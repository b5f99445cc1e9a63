"""What a newcomer, and a numactl, hwloc-bind or nvidia-smi user, reaches for
first: --fsroot and --example on every verb, exec --dry-run, the overrides
(--gpu, --cpus, --mem-nodes, --nic), status, and --help with examples and
defaults. The installed ``numabind`` command, run as a real subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sysfs_tree as st

NUMABIND = str(Path(sys.executable).parent / "numabind")
VERBS = ("show", "plan", "env", "exec", "status")


def run(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("NUMABIND_FSROOT", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    return subprocess.run([NUMABIND, *args], capture_output=True, text=True, env={**base, **(env or {})},
                          timeout=120, **kw)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # One unpacked copy of the bundled machines for the whole module.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize("verb", ["show", "plan", "env"])
def test_fsroot_reads_the_tree_as_numabind_fsroot_does(verb, tree):
    root = str(tree("dgx-h100"))
    extra = ["--local-rank", "3"] if verb == "env" else []
    flag = run(verb, "--fsroot", root, *extra)
    var = run(verb, *extra, env={"NUMABIND_FSROOT": root})
    assert flag.returncode == var.returncode == 0, flag.stderr
    assert flag.stdout == var.stdout


@pytest.mark.parametrize("verb", ["show", "plan", "env"])
def test_example_is_the_bundled_machine(verb, tree):
    extra = ["--local-rank", "3"] if verb == "env" else []
    ex = run(verb, "--example", "dgx-h100", *extra)
    want = run(verb, "--fsroot", str(tree("dgx-h100")), *extra)
    assert ex.returncode == 0, ex.stderr
    if verb == "show":   # the header names the root, which differs; everything under it is the same
        assert ex.stdout.split("\n", 1)[1] == want.stdout.split("\n", 1)[1]
    else:
        assert ex.stdout == want.stdout


def test_example_list_names_every_bundled_machine():
    p = run("show", "--example", "list")
    assert p.returncode == 0
    for name in st.MACHINES:
        assert f"\n{name} " in p.stdout
    assert "Mooncake#2039" in p.stdout      # where the DGX description comes from


def test_a_bad_example_or_both_machines_is_a_usage_error(tree):
    p = run("plan", "--example", "dgx-a100")
    assert p.returncode == 2 and "no bundled machine 'dgx-a100'; choose from" in p.stderr
    p = run("plan", "--example", "dgx-h100", "--fsroot", str(tree("dgx-h100")))
    assert p.returncode == 2 and "--fsroot and --example both name the machine" in p.stderr
    p = run("show", "--fsroot", "")
    assert p.returncode == 2 and "--fsroot: the directory's name is empty" in p.stderr


def test_dry_run_prints_what_exec_would_do_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    p = run("exec", "--dry-run", "--local-rank", "3", "--example", "dgx-h100", "--", "touch", str(marker))
    assert p.returncode == 0, p.stderr
    assert not marker.exists()
    lines = p.stdout.splitlines()
    assert lines[0] == ("local rank 3 (from argument): GPU 3 0000:61:00.0, node 0, CPUs 42-55,154-167, "
                        "memory preferred 0, NIC mlx5_5:1 (PIX)")
    assert "export NVSHMEM_HCA_LIST=mlx5_5:1" in lines and "export EP_NIC_NAME=mlx5_5" in lines
    assert lines[-1] == f"exec touch {marker}"
    # The process that would pin is this one: nothing changed in it either.
    assert run("exec", "--dry-run", "--local-rank", "3", "--example", "dgx-h100", "--", "true").returncode == 0


def test_dry_run_keeps_and_quotes_as_exec_would():
    p = run("exec", "--dry-run", "--example", "dgx-h100", "--", "python", "-c", "print('a b')",
            env={"LOCAL_RANK": "5", "NCCL_IB_HCA": "mlx5_0"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("local rank 5 (from LOCAL_RANK): GPU 5 ")
    assert "keeping NCCL_IB_HCA=mlx5_0 from the environment" in p.stdout
    assert "exec python -c 'print('\"'\"'a b'\"'\"')'" in p.stdout


def test_overrides_replace_the_rank_and_are_checked():
    p = run("plan", "--example", "dgx-h100", "--local-rank", "5", "--cpus", "0-3", "--nic", "mlx5_3",
            "--mem-nodes", "0-1", "--mem", "interleave", "--json")
    assert p.returncode == 0, p.stderr
    (r,) = json.loads(p.stdout)["ranks"]
    assert (r["cpus"], r["mem_policy"], r["mem_nodes"], r["hca"], r["distance"]) == (
        [0, 1, 2, 3], "interleave", [0, 1], "mlx5_3", "SYS")
    assert r["env"]["NVSHMEM_HCA_LIST"] == "mlx5_3:1"
    p = run("plan", "--example", "dgx-h100", "--local-rank", "2", "--gpu", "7", "--json")
    (r,) = json.loads(p.stdout)["ranks"]
    assert (r["gpu"], r["gpu_pci"], r["hca"]) == (7, "0000:df:00.0", "mlx5_11")
    for args, message in [
        (["--cpus", "300"], "CPUs 300 are not allowed to this process (allowed CPUs 0-223)"),
        (["--cpus", "0-x"], "cpus '0-x' is not a list such as 0-3,8"),
        (["--mem-nodes", "0-1"], "the preferred memory policy takes one node, not 0-1"),
        (["--mem-nodes", "5", "--mem", "bind"], "memory nodes 5 are not allowed to this process"),
        (["--nic", "mlx5_99"], "no RDMA NIC named 'mlx5_99' on this node (mlx5_0, mlx5_1,"),
        (["--nic", "mlx5_0:2"], "mlx5_0 has no port 2"),
        (["--gpu", "8"], "GPU 8 is not a visible GPU (8 visible)"),
    ]:
        p = run("plan", "--example", "dgx-h100", "--local-rank", "1", *args)
        assert p.returncode in (1, 2) and message in p.stderr, (args, p.stderr)
        assert "Traceback" not in p.stderr
    p = run("plan", "--example", "dgx-h100", "--cpus", "0-3")
    assert p.returncode == 2 and "--cpus is one rank's: name the rank with --local-rank R" in p.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_an_example_and_shows_defaults(verb):
    p = run(verb, "--help")
    assert p.returncode == 0
    assert "\nexamples:\n  numabind " in p.stdout or "\nexamples:\n  torchrun " in p.stdout or \
        "\nexamples:\n  eval " in p.stdout
    assert "--fsroot DIR" in p.stdout and "--example NAME" in p.stdout
    if verb != "show":
        assert "(default: exclusive)" in p.stdout and "(default: preferred)" in p.stdout
        assert "(default: 0)" in p.stdout        # --reserve-cores


def test_status_of_a_process_numabind_exec_started(tree):
    root = str(tree(json.loads((Path(__file__).parent / "fixtures/plain-2cpu-2gpu.json").read_text())))
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    child = subprocess.Popen([NUMABIND, "exec", "--fsroot", root, "--", "sleep", "30"],
                             env={**os.environ, "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    try:
        for _ in range(500):
            if Path(f"/proc/{child.pid}/comm").read_text().strip() == "sleep":
                break
            time.sleep(0.01)
        p = run("status", "--pid", str(child.pid), "--fsroot", root)
        j = run("status", "--pid", str(child.pid), "--fsroot", root, "--json")
    finally:
        child.kill()
        child.wait()
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"pid {child.pid} (sleep), local rank 1 (from LOCAL_RANK)")
    assert "matches the plan" in p.stdout
    assert json.loads(j.stdout)["differs"] == []


def test_status_names_a_missing_process():
    p = run("status", "--pid", "4194305")
    assert p.returncode == 2 and "--pid 4194305: no such process" in p.stderr
