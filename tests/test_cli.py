"""The installed ``numabind`` command, run as a real subprocess.

Both entry points are exercised: ``python -m numabind`` and the console script
installed next to the interpreter.  Expected values come from the machine
descriptions through tests/reference.py, never from numabind itself.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import reference as ref
import sysfs_tree as st
from conftest import Machine

MODULE = [sys.executable, "-m", "numabind"]
SCRIPT = [str(Path(sys.executable).parent / "numabind")]
INVOCATIONS = pytest.mark.parametrize("cmd", [MODULE, SCRIPT], ids=["python-m", "script"])


def run(cmd: list[str], *args: str, env: dict[str, str] | None = None, **kw):
    """Runs the CLI with a clean environment plus ``env``."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
    base.update(env or {})
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=base,
                          timeout=60, **kw)


def no_traceback(p) -> None:
    assert "Traceback" not in p.stderr, p.stderr
    assert "Exception ignored" not in p.stderr, p.stderr


def node_cpus(desc: dict, numa: int | None) -> str:
    if numa is None:
        return st.format_cpulist(c for n in ref.nodes(desc) for c in n["cpus"])
    return st.format_cpulist(next(n["cpus"] for n in ref.nodes(desc) if n["id"] == numa))


def test_console_script_installed():
    assert os.access(SCRIPT[0], os.X_OK), SCRIPT[0]


@INVOCATIONS
def test_version(cmd):
    p = run(cmd, "--version")
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"numabind {metadata.version('numabind')}\n"
    assert re.fullmatch(r"numabind \d+\.\d+\.\d+\S*\n", p.stdout)


@INVOCATIONS
def test_show_live_host(cmd):
    p = run(cmd, "show")
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    assert p.stderr == ""
    out = p.stdout
    assert "topology of this host" in out.splitlines()[0]
    # this host (the CI/dev machine) has neither NVIDIA GPUs nor RDMA devices
    pci = "/sys/bus/pci/devices"
    nvidia = [a for a in (os.listdir(pci) if os.path.isdir(pci) else [])
              if Path(pci, a, "vendor").read_text().strip() == "0x10de"]
    ib = "/sys/class/infiniband"
    if nvidia or (os.path.isdir(ib) and os.listdir(ib)):
        pytest.skip("this host has GPUs or RDMA NICs")
    assert re.search(r"^No NVIDIA GPU found\.$", out, re.M), out
    assert re.search(r"^No RDMA NIC found", out, re.M), out
    allowed = st.format_cpulist(os.sched_getaffinity(0))
    assert re.search(rf"^Allowed CPUs: {re.escape(allowed)}\s", out, re.M), out
    assert "Legend" not in out


def test_show_fixture_matrix(described):
    check_show(SCRIPT, described)


def test_show_fixture_matrix_python_m(tree):
    check_show(MODULE, Machine("dgx-h100", st.load("dgx-h100"), tree("dgx-h100")))


def check_show(cmd, described):
    desc = described.desc
    p = run(cmd, "show", env={"NUMABIND_FSROOT": str(described.root)})
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    lines = p.stdout.splitlines()
    assert lines[0].endswith(f"topology of {os.path.realpath(described.root)}")
    gs, ns = ref.gpus(desc), ref.nics(desc)
    mat = ref.class_matrix(desc)
    if not gs:
        assert "No NVIDIA GPU found." in lines
    else:
        header = next(line for line in lines
                      if re.search(r"\sCPU Affinity\s+NUMA Affinity$", line))
        assert header.split() == [n["name"] for n in ns] + ["CPU", "Affinity", "NUMA", "Affinity"]
        rows = [line.split() for line in lines if re.match(r"GPU\d+\s", line)]
        assert [r[0] for r in rows] == [f"GPU{i}" for i in range(len(gs))]
        for row, g in zip(rows, gs):
            assert row[1:1 + len(ns)] == [mat[g["bdf"]][n["name"]] for n in ns], g["bdf"]
            assert row[1 + len(ns):] == [node_cpus(desc, g["numa"]),
                                         "N/A" if g["numa"] is None else str(g["numa"])], g["bdf"]
        for i, g in enumerate(gs):
            assert f"GPU{i}: {g['bdf']}" in lines
    if not ns:
        assert any(line.startswith("No RDMA NIC found") for line in lines)
    else:
        for n in ns:
            rows = [line for line in lines if line.split()[:2] == [n["name"], n["bdf"]]]
            assert len(rows) == n["ports"], n["name"]
            for port, row in enumerate(rows, 1):
                tok = row.split()
                assert tok[1:7] == [n["bdf"], "N/A" if n["numa"] is None else str(n["numa"]),
                                    n["netdev"], str(port), n["state"], n["link_layer"]], row
                assert float(tok[7]) == n["rate_gbps"] and tok[8] == "Gb/sec", row
    for n in ref.nodes(desc):
        row = next(line.split() for line in lines if line.split()[:1] == [str(n["id"])])
        assert row[1] == (st.format_cpulist(n["cpus"]) if n["cpus"] else "(no")
    a = ref.allowed(desc)
    assert (f"Allowed CPUs: {st.format_cpulist(a['cpus'])} (proc/self/status: no cgroup cpuset)   "
            f"allowed memory nodes: {st.format_cpulist(a['mems'])}") in lines
    assert ("Legend:" in lines) == bool(gs and ns)


@pytest.mark.parametrize("options, says", [
    ({"no_proc_status": True}, "Allowed CPUs: 0-7 (every online CPU: no proc/self/status in the tree)   "
                               "allowed memory nodes: 0-1,3"),
    ({"no_proc_status": True, "cgroup_cpus": "2-3"}, "Allowed CPUs: 2-3 (cgroup cpuset)   "
                                                     "allowed memory nodes: 0,3"),
], ids=["online", "cgroup"])
def test_show_says_where_the_allowed_cpus_came_from(tree, synthetic, options, says):
    p = run(MODULE, "show", env={"NUMABIND_FSROOT": str(tree(synthetic, **options))})
    assert p.returncode == 0, p.stderr
    assert says in p.stdout.splitlines(), p.stdout


def test_show_json(described):
    desc = described.desc
    p = run(MODULE, "show", "--json", env={"NUMABIND_FSROOT": str(described.root)})
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    d = json.loads(p.stdout)
    gs, ns = ref.gpus(desc), ref.nics(desc)
    assert [g["pci_address"] for g in d["gpus"]] == [g["bdf"] for g in gs]
    for got, want in zip(d["gpus"], gs):
        assert "numa_node" in got and got["numa_node"] == want["numa"], want["bdf"]
        assert got["distances"] == {n["name"]: ref.distance_class(desc, want["bdf"], n["name"])
                                    for n in ns}, want["bdf"]
    assert [(n["name"], n["pci_address"], n["numa_node"]) for n in d["nics"]] == \
        [(n["name"], n["bdf"], n["numa"]) for n in ns]
    assert [n["id"] for n in d["nodes"]] == [n["id"] for n in ref.nodes(desc)]
    assert d["allowed_cpus"] == ref.allowed(desc)["cpus"]
    assert d["live"] is False
    assert d["fsroot"] == os.path.realpath(described.root)


def test_show_json_visible_subset(tree):
    desc = st.load("dgx-h100")
    p = run(MODULE, "show", "--json",
            env={"NUMABIND_FSROOT": str(tree("dgx-h100")), "CUDA_VISIBLE_DEVICES": "6,2"})
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    gs = ref.gpus(desc)
    assert [(g["index"], g["physical_index"], g["pci_address"]) for g in d["gpus"]] == \
        [(0, 6, gs[6]["bdf"]), (1, 2, gs[2]["bdf"])]
    assert len(d["all_gpus"]) == 8
    mat = ref.class_matrix(desc)
    assert [g["distances"] for g in d["gpus"]] == [mat[gs[6]["bdf"]], mat[gs[2]["bdf"]]]


def test_show_text_hidden_gpus(tree):
    p = run(MODULE, "show", env={"NUMABIND_FSROOT": str(tree("dgx-h100")),
                                 "CUDA_VISIBLE_DEVICES": "3"})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    gs = ref.gpus(st.load("dgx-h100"))
    assert f"GPU0: {gs[3]['bdf']}" in lines
    assert not any(line.startswith("GPU1") for line in lines)
    assert "(7 more GPU(s) hidden by CUDA_VISIBLE_DEVICES)" in lines


@pytest.mark.parametrize("cvd, entry", [
    ("0,9", "9"),
    ("GPU-0123abcd", "GPU-0123abcd"),
    ("MIG-GPU-0123abcd-0000-1111-2222-333344445555/1/0",
     "MIG-GPU-0123abcd-0000-1111-2222-333344445555/1/0"),
    ("1,nonsense", "nonsense"),
])
def test_bad_cuda_visible_devices(tree, cvd, entry):
    check_bad_cvd(tree, SCRIPT, ("show",), cvd, entry)


@INVOCATIONS
def test_bad_cuda_visible_devices_json(tree, cmd):
    check_bad_cvd(tree, cmd, ("show", "--json"), "3,8", "8")


def check_bad_cvd(tree, cmd, args, cvd, entry):
    p = run(cmd, *args, env={"NUMABIND_FSROOT": str(tree("dgx-h100")),
                                "CUDA_VISIBLE_DEVICES": cvd})
    assert p.returncode == 1, (p.stdout, p.stderr)
    no_traceback(p)
    assert p.stdout == ""
    assert p.stderr.startswith("numabind: error:"), p.stderr
    assert f"'{entry}'" in p.stderr or f'"{entry}"' in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_missing_fsroot(tmp_path):
    missing = tmp_path / "nowhere"
    p = run(SCRIPT, "show", env={"NUMABIND_FSROOT": str(missing)})
    assert p.returncode == 1
    no_traceback(p)
    assert str(missing) in p.stderr
    assert p.stdout == ""


def test_usage_errors():
    p = run(SCRIPT)
    assert p.returncode == 2
    assert "usage: numabind" in p.stderr
    no_traceback(p)
    p = run(SCRIPT, "frobnicate")
    assert p.returncode == 2
    no_traceback(p)


def test_closed_stdout_is_quiet(tree):
    """`numabind show --json | head -1`: a reader that goes away is no error."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["NUMABIND_FSROOT"] = str(tree("dgx-h100"))
    proc = subprocess.Popen([*SCRIPT, "show", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=60)
    assert first == b"{\n"
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert rc == 0, err
