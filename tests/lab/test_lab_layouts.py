"""The lab runner's layouts and QEMU command line, checked on the host
without booting anything (part of the default `pytest tests` run)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "lab"))
import lab
from layouts import LAYOUTS

KERNEL = lab.Kernel("v", Path("/k/vmlinux"), Path("/k/initramfs.cpio"))


def devices(args: list[str]) -> list[dict[str, str]]:
    """Every -device as {"driver": ..., key: value}."""
    out = []
    for flag, val in zip(args, args[1:]):
        if flag == "-device":
            driver, *opts = val.split(",")
            out.append({"driver": driver, **dict(o.split("=", 1) for o in opts)})
    return out


def test_the_issue_s_layouts_exist():
    """2 and 4 nodes, with and without SMT, a CPU-less node, a switch, NICs
    on expander bridges of different nodes."""
    assert {(len(lay.nodes), lay.threads) for lay in LAYOUTS.values()} == {(2, 1), (2, 2), (4, 1), (4, 2)}
    for lay in LAYOUTS.values():
        assert any(port.switch for pxb in lay.pxbs for port in pxb.ports)
        assert len({pxb.node for pxb, _, _ in lay.devices("nic")}) >= 2
    assert all(any(not n.cores for n in lay.nodes) for lay in LAYOUTS.values() if len(lay.nodes) == 4)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_json_is_consistent(name):
    lay = LAYOUTS[name]
    lay.validate()
    j = lay.to_json()
    assert sum(len(n["cpus"]) for n in j["nodes"]) == lay.num_cpus == len(j["cpus"])
    for r in j["ranks"]:
        node = next(n for n in j["nodes"] if n["id"] == r["node"])
        assert set(r["cpus"]) <= set(node["cpus"]) and node["has_cpus"]
    for c in j["cpus"]:
        assert len(c["siblings"]) == lay.threads and c["cpu"] in c["siblings"]
    assert len({n["mac"] for n in j["nics"]}) == len(j["nics"])


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_qemu_args_carry_the_layout(name):
    lay = LAYOUTS[name]
    args = lab.qemu_args(lay, KERNEL, Path("/run/x"), "tcg")
    smp = args[args.index("-smp") + 1]
    assert smp == f"{lay.num_cpus},sockets={lay.sockets},cores={lay.cores},threads={lay.threads}"
    numa = [args[i + 1] for i, a in enumerate(args) if a == "-numa" and args[i + 1].startswith("node,")]
    for n, opt in zip(lay.nodes, numa):
        assert opt.startswith(f"node,nodeid={n.id},memdev=mem{n.id}")
        assert ("cpus=" in opt) == bool(n.cores), opt   # a CPU-less node has memory only
    devs = devices(args)
    # QEMU plugs a device without bus= into the last pxb, which takes bridges only.
    assert all("bus" in d for d in devs)
    pxbs = [d for d in devs if d["driver"] == "pxb-pcie"]
    assert [(int(d["bus_nr"]), int(d["numa_node"])) for d in pxbs] == [(p.bus_nr, p.node) for p in lay.pxbs]
    assert len([d for d in devs if d["driver"] == "pci-testdev"]) == len(lay.devices("gpu"))
    nics = [d for d in devs if d["driver"] in ("virtio-net-pci", "e1000e")]
    assert sorted(d["mac"] for d in nics) == sorted(lay.nic_mac(i) for i in range(len(lay.devices("nic"))))
    switched = sum(len(port.devices) for pxb in lay.pxbs for port in pxb.ports if port.switch)
    assert len([d for d in devs if d["driver"] == "xio3130-downstream"]) == switched
    chassis = [d["chassis"] for d in devs if "chassis" in d]
    assert len(chassis) == len(set(chassis))
    assert "readonly=on" in args[args.index("-fsdev") + 1]   # the host's root, read-only
    assert "-netdev" in args and not any(a.startswith("user") for a in args)  # no host network


def test_tcg_cpu_reports_its_threads():
    """TCG's default AMD "max" CPU cannot describe SMT (no topoext)."""
    args = lab.qemu_args(LAYOUTS["2node-smt"], KERNEL, Path("/run/x"), "tcg")
    assert args[args.index("-cpu") + 1] == "max,vendor=GenuineIntel"
    assert args[args.index("-cpu") + 1 - 3:][:2] == ["-accel", "tcg,thread=single"]   # docs/lab.md "Frozen guests"


def test_a_plain_pytest_run_collects_no_guest_or_boot_test():
    env = {k: v for k, v in os.environ.items() if k not in ("NUMABIND_LAB_LAYOUT", "NUMABIND_LAB_BOOT")}
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          str(REPO / "tests" / "lab")], capture_output=True, text=True, env=env, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    collected = [line for line in out.stdout.splitlines() if "::" in line]
    assert collected and all("test_lab_layouts.py" in line for line in collected), out.stdout
