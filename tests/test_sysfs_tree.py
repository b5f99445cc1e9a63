"""Tests of the fixture writer (sysfs_tree.py) and the reference (reference.py).

They check the written trees against the kernel's conventions and against the
reference derived from the same description, not against numabind.
"""
from __future__ import annotations

import copy
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference as ref  # noqa: E402
import sysfs_tree as st  # noqa: E402

PCI_ATTRS = ("vendor", "device", "class", "numa_node", "local_cpus", "local_cpulist",
             "max_link_speed", "max_link_width", "current_link_speed",
             "current_link_width", "subsystem_vendor", "subsystem_device", "revision")
MASK_RE = re.compile(r"^[0-9a-f]{1,8}(,[0-9a-f]{8})*$")
LIST_RE = re.compile(r"^(\d+(-\d+)?(,\d+(-\d+)?)*)?$")


def read(root: Path, rel: str) -> str:
    text = (root / rel).read_text()
    assert text.endswith("\n"), f"{rel} lacks the trailing newline"
    return text[:-1]


def mask_bits(mask: str) -> list[int]:
    """Independent parse of the kernel's %*pb (comma-grouped hex, MSB first)."""
    value = int(mask.replace(",", ""), 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


def mask_width(mask: str) -> int:
    """How many bits a %*pb string spans (its leading group may be short)."""
    groups = mask.split(",")
    return 32 * (len(groups) - 1) + 4 * len(groups[0])


def all_functions(desc):
    out = []

    def walk(devs, numa):
        for d in devs or []:
            out.append((d, numa))
            walk(d.get("children"), numa)

    for r in desc["pci"]:
        walk(r["devices"], r["numa"])
    return out


@pytest.fixture(scope="module", params=st.MACHINES)
def machine(request, tmp_path_factory):
    desc = st.load(request.param)
    root = tmp_path_factory.mktemp(request.param)
    st.write_tree(desc, root)
    return desc, root


def test_machines_listed():
    assert st.MACHINES == sorted(st.MACHINES)
    assert {"dgx-h100", "azure-nd96isr-h100-v5", "h100x4-flat-vm",
            "paired-switch-rocev2", "plain-2cpu-no-gpu"} <= set(st.MACHINES)
    assert st.load("dgx-h100") == st.load(st.MACHINES_DIR / "dgx-h100.json")


def test_symlinks_relative_and_inside_root(machine):
    desc, root = machine
    real_root = os.path.realpath(root)
    n = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                continue
            n += 1
            target = os.readlink(p)
            assert not os.path.isabs(target), f"{p} -> {target} is absolute"
            resolved = os.path.realpath(p)
            assert os.path.isdir(resolved), f"{p} -> {target} does not resolve to a dir"
            assert os.path.commonpath([real_root, resolved]) == real_root, f"{p} leaves root"
    assert n > 0


def test_pci_functions_have_all_attributes(machine):
    desc, root = machine
    for dev, numa in all_functions(desc):
        bdf = dev["bdf"]
        link = root / "sys/bus/pci/devices" / bdf
        assert link.is_symlink()
        assert os.readlink(link).startswith("../../../devices/")
        fdir = Path(os.path.realpath(link))
        assert fdir.name == bdf
        for attr in PCI_ATTRS:
            assert (fdir / attr).is_file(), f"{bdf} lacks {attr}"
        rel = str(fdir.relative_to(os.path.realpath(root)))
        assert re.fullmatch(r"0x[0-9a-f]{6}", read(root, f"{rel}/class"))
        assert re.fullmatch(r"0x[0-9a-f]{4}", read(root, f"{rel}/vendor"))
        assert read(root, f"{rel}/vendor") == dev["vendor"]
        assert read(root, f"{rel}/device") == dev["device"]
        assert read(root, f"{rel}/numa_node") == str(numa)
        assert read(root, f"{rel}/max_link_speed") == "32.0 GT/s PCIe"
        assert read(root, f"{rel}/max_link_width") == "16"
        default = {"gpu": "0x030200", "bridge": "0x060400"}.get(dev["kind"])
        if dev["kind"] == "nic":
            default = "0x020700" if dev["link_layer"] == "InfiniBand" else "0x020000"
        assert read(root, f"{rel}/class") == dev.get("class", default)
        # local_cpus and local_cpulist agree; -1 means all online CPUs.
        cpus = ref.cpulist(read(root, f"{rel}/local_cpulist"))
        assert mask_bits(read(root, f"{rel}/local_cpus")) == cpus
        if numa == -1:
            assert cpus == ref.cpulist(read(root, "sys/devices/system/cpu/online"))
        else:
            assert cpus == next(n["cpus"] for n in ref.nodes(desc) if n["id"] == numa)
    # Host bridge directories exist but carry no PCI attributes of their own.
    for r in desc["pci"]:
        hb = root / "sys/devices" / r["root"]
        assert hb.is_dir()
        assert not (hb / "vendor").exists() and not (hb / "numa_node").exists()


def test_pci_nesting_follows_the_tree(machine):
    desc, root = machine

    def walk(devs, parent):
        for d in devs or []:
            here = parent / d["bdf"]
            assert here.is_dir() and not here.is_symlink()
            walk(d.get("children"), here)

    for r in desc["pci"]:
        walk(r["devices"], root / "sys/devices" / r["root"])


def test_infiniband_devices(machine):
    desc, root = machine
    nics = ref.nics(desc)
    cls = root / "sys/class/infiniband"
    present = sorted(p.name for p in cls.iterdir()) if cls.exists() else []
    assert present == sorted(n["name"] for n in nics)
    for n in nics:
        link = cls / n["name"]
        assert os.readlink(link).startswith("../../devices/")
        d = Path(os.path.realpath(link))
        assert os.path.basename(os.path.realpath(d / "device")) == n["bdf"]
        assert os.readlink(d / "device") == f"../../../{n['bdf']}"
        assert (d / "node_type").read_text() == "1: CA\n"
        for p in range(1, n["ports"] + 1):
            port = d / "ports" / str(p)
            num = {"DOWN": 1, "INIT": 2, "ARMED": 3, "ACTIVE": 4}[n["state"]]
            assert (port / "state").read_text() == f"{num}: {n['state']}\n"
            phys = "5: LinkUp" if n["state"] == "ACTIVE" else "3: Disabled"
            assert (port / "phys_state").read_text() == phys + "\n"
            assert (port / "link_layer").read_text() == n["link_layer"] + "\n"
            m = re.match(r"(\d+(?:\.\d+)?) Gb/sec \(\d+X \w+\)$", (port / "rate").read_text())
            assert m and float(m.group(1)) == n["rate_gbps"]
            ndev = port / "gid_attrs/ndevs/0"
            if n["link_layer"] == "Ethernet":
                assert ndev.read_text() == n["netdev"] + "\n"
            else:
                assert not ndev.exists()


def test_netdevs(machine):
    desc, root = machine
    for dev, _ in all_functions(desc):
        if "netdev" not in dev:
            continue
        link = root / "sys/class/net" / dev["netdev"]
        assert os.readlink(link).startswith("../../devices/")
        d = Path(os.path.realpath(link))
        assert d.parent.name == "net" and d.parent.parent.name == dev["bdf"]
        assert os.path.basename(os.path.realpath(d / "device")) == dev["bdf"]
        ib = dev.get("link_layer") == "InfiniBand"
        assert (d / "type").read_text() == ("32\n" if ib else "1\n")
        assert (d / "operstate").read_text() in ("up\n", "down\n")
        addr = (d / "address").read_text().strip()
        assert len(addr.split(":")) == (20 if ib else 6)
    # loopback is there, with no device link
    assert not (root / "sys/class/net/lo/device").exists()


def test_nodes_and_cpumaps(machine):
    desc, root = machine
    base = "sys/devices/system/node"
    ns = ref.nodes(desc)
    ids = [n["id"] for n in ns]
    assert ref.cpulist(read(root, f"{base}/online")) == ids
    assert ref.cpulist(read(root, f"{base}/possible")) == ids
    assert ref.cpulist(read(root, f"{base}/has_cpu")) == [n["id"] for n in ns if n["has_cpus"]]
    assert ref.cpulist(read(root, f"{base}/has_memory")) == [n["id"] for n in ns if n["mem_bytes"]]
    possible = ref.cpulist(read(root, "sys/devices/system/cpu/possible"))
    nr_cpu_ids = possible[-1] + 1
    for n in ns:
        d = f"{base}/node{n['id']}"
        cl = read(root, f"{d}/cpulist")
        assert LIST_RE.match(cl)
        assert ref.cpulist(cl) == n["cpus"]
        cm = read(root, f"{d}/cpumap")
        assert MASK_RE.match(cm)
        assert mask_bits(cm) == n["cpus"]
        assert mask_width(cm) >= nr_cpu_ids > mask_width(cm) - 4
        row = [int(x) for x in read(root, f"{d}/distance").split(" ")]
        assert len(row) == len(ns) and row[ids.index(n["id"])] == 10
        first = read(root, f"{d}/meminfo").splitlines()[0]
        m = re.fullmatch(r"Node (\d+) MemTotal: +(\d+) kB", first)
        assert m and int(m.group(1)) == n["id"] and int(m.group(2)) * 1024 == n["mem_bytes"]


def test_cpu_topology(machine):
    desc, root = machine
    base = root / "sys/devices/system/cpu"
    online = ref.cpulist(read(root, "sys/devices/system/cpu/online"))
    present = ref.cpulist(read(root, "sys/devices/system/cpu/present"))
    assert online == present == sorted(c for n in ref.nodes(desc) for c in n["cpus"])
    socket_of = {c: n.get("socket", 0) for n in desc["cpu"]["nodes"]
                 for c in ref.cpulist(n["cpus"])}
    cores = {}
    for c in online:
        t = base / f"cpu{c}/topology"
        pkg = int((t / "physical_package_id").read_text())
        assert pkg == socket_of[c]
        sib = ref.cpulist((t / "thread_siblings_list").read_text())
        assert c in sib and len(sib) == desc["cpu"].get("threads_per_core", 1)
        assert ref.cpulist((t / "core_cpus_list").read_text()) == sib
        assert mask_bits((t / "thread_siblings").read_text().strip()) == sib
        key = (pkg, int((t / "core_id").read_text()))
        cores.setdefault(key, set()).add(c)
        # index3 is the L3 and index0 the L1d: a reader must look at `level`.
        l3 = base / f"cpu{c}/cache/index3"
        assert (l3 / "level").read_text() == "3\n" and (l3 / "type").read_text() == "Unified\n"
        shared = ref.cpulist((l3 / "shared_cpu_list").read_text())
        assert mask_bits((l3 / "shared_cpu_map").read_text().strip()) == shared
        assert all(socket_of[x] == pkg for x in shared)
        l1 = base / f"cpu{c}/cache/index0"
        assert (l1 / "level").read_text() == "1\n" and (l1 / "type").read_text() == "Data\n"
        assert ref.cpulist((l1 / "shared_cpu_list").read_text()) == sib
    # siblings share a core_id; distinct cores of a package differ
    for key, cpus in cores.items():
        sib = ref.cpulist((base / f"cpu{min(cpus)}/topology/thread_siblings_list").read_text())
        assert sorted(cpus) == sib


def test_proc_self_status(machine):
    desc, root = machine
    status = read(root, "proc/self/status")
    fields = {}
    for line in status.splitlines():
        key, sep, value = line.partition(":\t")
        assert sep, f"line {line!r} is not 'Key:<TAB>value'"
        fields[key] = value
    for key in ("Name", "State", "Pid", "Cpus_allowed", "Cpus_allowed_list",
                "Mems_allowed", "Mems_allowed_list"):
        assert key in fields
    a = ref.allowed(desc)
    assert ref.cpulist(fields["Cpus_allowed_list"]) == a["cpus"]
    assert mask_bits(fields["Cpus_allowed"]) == a["cpus"]
    assert ref.cpulist(fields["Mems_allowed_list"]) == a["mems"]
    assert mask_bits(fields["Mems_allowed"]) == a["mems"]
    assert len(fields["Mems_allowed"].split(",")) == st.MAX_NUMNODES // 32


def test_reference_agrees_with_expected(machine):
    desc, _ = machine
    exp = desc["expected"]["gpus"]
    gs = ref.gpus(desc)
    assert [g["bdf"] for g in gs] == [e["bdf"] for e in exp]
    assert [g["numa"] for g in gs] == [e["numa"] for e in exp]
    names = {n["name"]: n for n in ref.nics(desc)}
    mat = ref.class_matrix(desc)
    for e in exp:
        if e["hca"] is None:
            continue
        # The expected HCA is an ACTIVE NIC as close as any ACTIVE NIC.
        assert names[e["hca"]]["state"] == "ACTIVE"
        best = min(ref.CLASSES.index(c) for n, c in mat[e["bdf"]].items()
                   if names[n]["state"] == "ACTIVE")
        assert ref.CLASSES.index(mat[e["bdf"]][e["hca"]]) == best


def test_reference_docstring_table_matches():
    tables = ref.docstring_tables()
    assert set(tables) == set(st.MACHINES)
    for name in st.MACHINES:
        assert tables[name] == ref.format_matrix(st.load(name)), name


def test_reference_examples():
    dgx = st.load("dgx-h100")
    assert ref.distance_class(dgx, "0000:1b:00.0", "mlx5_0") == "PIX"
    assert ref.distance_class(dgx, "0000:1b:00.0", "mlx5_1") == "PIX"
    assert ref.distance_class(dgx, "0000:1b:00.0", "mlx5_3") == "NODE"
    assert ref.distance_class(dgx, "0000:1b:00.0", "mlx5_6") == "SYS"
    assert ref.cpulist("0-3,8") == [0, 1, 2, 3, 8]
    assert ref.cpulist("\n") == []
    assert ref.cpulist("0-7:2/4") == [0, 1, 4, 5]
    nic = ref.nics(dgx)[0]
    assert nic["name"] == "mlx5_0" and nic["rate_gbps"] == 400.0 and nic["ports"] == 1
    assert ref.gpus(st.load("h100x4-flat-vm"))[0]["numa"] is None


def _synthetic():
    """A small box that has PXB and PHB pairs, a CPU-less node and an unknown numa."""
    return {
        "name": "synthetic",
        "cpu": {"sockets": 1, "threads_per_core": 2, "smt_stride": 4,
                "nodes": [{"id": 0, "cpus": "0-7", "socket": 0, "mem_mib": 1024},
                          {"id": 2, "cpus": "", "mem_mib": 512, "kind": "gpu-memory"}],
                "distances": [[10, 80], [80, 10]]},
        "allowed": {"cpus": "0-7", "mems": "0"},
        "pci": [
            {"root": "pci0000:00", "numa": 0, "devices": [
                {"bdf": "0000:00:01.0", "kind": "bridge", "children": [
                    {"bdf": "0000:01:00.0", "kind": "bridge", "children": [
                        {"bdf": "0000:02:00.0", "kind": "bridge", "children": [
                            {"bdf": "0000:03:00.0", "kind": "bridge", "children": [
                                {"bdf": "0000:04:00.0", "kind": "gpu",
                                 "vendor": "0x10de", "device": "0x2330"}]}]},
                        {"bdf": "0000:02:01.0", "kind": "bridge", "children": [
                            {"bdf": "0000:05:00.0", "kind": "nic", "ibdev": "mlx5_0",
                             "netdev": "eth5", "link_layer": "Ethernet", "state": "ACTIVE",
                             "rate": "200 Gb/sec (4X HDR)", "vendor": "0x15b3",
                             "device": "0x101d", "ports": 2}]}]}]},
                {"bdf": "0000:00:02.0", "kind": "nic", "ibdev": "mlx5_1",
                 "link_layer": "InfiniBand", "state": "INIT", "rate": "100 Gb/sec (4X EDR)",
                 "vendor": "0x15b3", "device": "0x1017"}]},
            {"root": "pci0000:80", "numa": -1, "devices": [
                {"bdf": "0000:80:00.0", "kind": "gpu", "vendor": "0x10de", "device": "0x2330"},
                {"bdf": "0000:80:01.0", "kind": "nic", "ibdev": "mlx5_2", "netdev": "eth9",
                 "link_layer": "Ethernet", "state": "ACTIVE", "rate": "25 Gb/sec (1X EDR)",
                 "vendor": "0x15b3", "device": "0x1017"}]},
        ],
        "expected": {"gpus": []},
    }


def test_reference_pxb_phb_sys():
    d = _synthetic()
    assert ref.distance_class(d, "0000:04:00.0", "mlx5_0") == "PXB"
    assert ref.distance_class(d, "0000:04:00.0", "mlx5_1") == "PHB"
    assert ref.distance_class(d, "0000:04:00.0", "mlx5_2") == "SYS"
    assert ref.distance_class(d, "0000:80:00.0", "mlx5_2") == "PHB"   # same root, numa -1
    assert ref.distance_class(d, "0000:80:00.0", "mlx5_0") == "SYS"


def test_synthetic_tree(tmp_path):
    d = _synthetic()
    st.write_tree(d, tmp_path)
    node = tmp_path / "sys/devices/system/node"
    # CPU-less node: the kernel prints an empty cpulist and an all-zero cpumap
    assert (node / "node2/cpulist").read_text() == "\n"
    assert (node / "node2/cpumap").read_text() == "00\n"          # nr_cpu_ids = 8
    assert (node / "has_cpu").read_text() == "0\n"
    assert (node / "has_memory").read_text() == "0,2\n"
    assert (node / "node0/distance").read_text() == "10 80\n"
    assert (node / "node2/distance").read_text() == "80 10\n"
    assert (node / "node0/cpumap").read_text() == "ff\n"
    t = tmp_path / "sys/devices/system/cpu/cpu5/topology"
    assert (t / "thread_siblings_list").read_text() == "1,5\n"
    assert (t / "thread_siblings").read_text() == "22\n"
    assert (t / "core_id").read_text() == (t.parent.parent / "cpu1/topology/core_id").read_text()
    port2 = tmp_path / "sys/class/infiniband/mlx5_0/ports/2"
    assert (port2 / "state").read_text() == "4: ACTIVE\n"
    assert (tmp_path / "sys/class/infiniband/mlx5_1/ports/1/state").read_text() == "2: INIT\n"
    assert (tmp_path / "sys/class/infiniband/mlx5_1/ports/1/phys_state").read_text() == "3: Disabled\n"
    # numa -1: local_cpulist is every online CPU
    g = tmp_path / "sys/bus/pci/devices/0000:80:00.0"
    assert (g / "numa_node").read_text() == "-1\n"
    assert (g / "local_cpulist").read_text() == "0-7\n"


def test_soft_roce(tmp_path):
    desc = st.load("plain-2cpu-no-gpu")
    st.write_tree(desc, tmp_path, soft_roce={"rxe0": "eth0"})
    link = tmp_path / "sys/class/infiniband/rxe0"
    assert os.readlink(link) == "../../devices/virtual/infiniband/rxe0"
    d = Path(os.path.realpath(link))
    assert not (d / "device").exists() and not (d / "device").is_symlink()
    assert (d / "parent").read_text() == "eth0\n"
    assert (d / "node_type").read_text() == "1: CA\n"
    p = d / "ports/1"
    assert (p / "state").read_text() == "4: ACTIVE\n"
    assert (p / "phys_state").read_text() == "5: LinkUp\n"
    assert (p / "link_layer").read_text() == "Ethernet\n"
    assert (p / "gid_attrs/ndevs/0").read_text() == "eth0\n"
    with pytest.raises(ValueError, match="eth7"):
        st.write_tree(desc, tmp_path / "x", soft_roce={"rxe0": "eth7"})


def test_offline_cpus(tmp_path):
    desc = st.load("dgx-h100")
    st.write_tree(desc, tmp_path, offline_cpus="2,114")
    cpu = tmp_path / "sys/devices/system/cpu"
    assert (cpu / "online").read_text() == "0-1,3-113,115-223\n"
    assert (cpu / "present").read_text() == "0-223\n"
    assert (cpu / "offline").read_text() == "2,114\n"
    assert (cpu / "cpu2").is_dir() and (cpu / "cpu2/online").read_text() == "0\n"
    assert not (cpu / "cpu2/topology").exists() and not (cpu / "cpu2/cache").exists()
    assert (cpu / "cpu3/cache/index3/shared_cpu_list").read_text() == "0-1,3-55,112-113,115-167\n"
    node0 = tmp_path / "sys/devices/system/node/node0/cpulist"
    assert node0.read_text() == "0-1,3-55,112-113,115-167\n"
    st.write_tree(desc, tmp_path / "keep", offline_cpus="2", keep_offline_in_node=True)
    assert (tmp_path / "keep/sys/devices/system/node/node0/cpulist").read_text() == "0-55,112-167\n"
    with pytest.raises(ValueError, match="offline_cpus"):
        st.write_tree(desc, tmp_path / "bad", offline_cpus="500")


def test_other_options(tmp_path):
    desc = st.load("dgx-h100")
    st.write_tree(desc, tmp_path, gpu_uuids={"0000:1b:00.0": "12345678-aaaa-bbbb-cccc-1234567890ab"},
                  cgroup_cpus="0-7", numa_override={"0000:43:00.0": -1}, possible_cpus="0-255")
    assert (tmp_path / "numabind/gpu-uuids").read_text() == \
        "0000:1b:00.0 GPU-12345678-aaaa-bbbb-cccc-1234567890ab\n"
    assert (tmp_path / "proc/self/cgroup").read_text() == "0::/job\n"
    cg = tmp_path / "sys/fs/cgroup/job"
    assert (cg / "cpuset.cpus.effective").read_text() == "0-7\n"
    assert (cg / "cpuset.mems.effective").read_text() == "0-1\n"
    g = tmp_path / "sys/bus/pci/devices/0000:43:00.0"
    assert (g / "numa_node").read_text() == "-1\n"
    assert (g / "local_cpulist").read_text() == "0-223\n"
    assert (tmp_path / "sys/devices/system/cpu/possible").read_text() == "0-255\n"
    assert (g / "local_cpus").read_text().count(",") == 7        # 256 bits
    with pytest.raises(ValueError, match="0000:18:00.0"):
        st.write_tree(desc, tmp_path / "x", gpu_uuids={"0000:18:00.0": "GPU-1234abcd"})


def _mutate(path, key, value):
    """Copy of dgx-h100 with one device field changed; ``path`` indexes devices."""
    d = copy.deepcopy(st.load("dgx-h100"))
    dev = d["pci"][path[0]]["devices"][path[1]]
    for i in path[2:]:
        dev = dev["children"][i]
    dev[key] = value
    return d


@pytest.mark.parametrize("key,value,needle", [
    ("kind", "fpga", "fpga"),
    ("bdf", "0000:15:1.0", "0000:15:1.0"),
    ("bdf", "0000:16:00.0", "0000:16:00.0"),       # duplicate of its own child
    ("bdf", "0000:15:01.8", "0000:15:01.8"),
    ("bdf", "0001:15:01.0", "0001:15:01.0"),       # wrong domain for pci0000:15
])
def test_malformed_description(tmp_path, key, value, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        st.write_tree(_mutate((0, 0), key, value), tmp_path)


def test_malformed_other(tmp_path):
    d = _mutate((0, 0, 0, 0, 0), "state", "UP")
    with pytest.raises(ValueError, match="UP"):
        st.write_tree(d, tmp_path)
    d = copy.deepcopy(st.load("plain-2cpu-no-gpu"))
    d["allowed"]["cpus"] = "0-3"
    with pytest.raises(ValueError, match="0-3"):
        st.write_tree(d, tmp_path)
    with pytest.raises(ValueError):
        st.write_tree(d, "/")


def test_cli(tmp_path):
    out = tmp_path / "tree"
    assert st.main(["plain-2cpu-no-gpu", str(out)]) == 0
    # a second run over the same directory (ctest re-runs) works too
    assert st.main([str(st.MACHINES_DIR / "plain-2cpu-no-gpu.json"), str(out),
                    "--soft-roce", "rxe0=eth0", "--cgroup-cpus", "1"]) == 0
    assert (out / "sys/class/infiniband/rxe0/parent").read_text() == "eth0\n"
    assert (out / "sys/fs/cgroup/job/cpuset.cpus.effective").read_text() == "1\n"
    # --clean drops what an earlier run left
    assert st.main(["plain-2cpu-no-gpu", str(out), "--clean"]) == 0
    assert not (out / "sys/class/infiniband").exists()
    assert (out / "sys/class/net/eth0").is_symlink()
    assert st.main(["plain-2cpu-no-gpu", str(tmp_path / "t2"), "--offline-cpus", "999"]) == 2


# ------------------------------------------------ NVIDIA driver procfs, containers, affinity, cgroup v1

# nv_procfs_read_gpu_info() (open-gpu-kernel-modules kernel-open/nvidia/nv-procfs.c):
# each line's label and the exact blanks/tabs the driver prints after it, in order.
INFO_LABELS = [("Model", "Model: \t\t "), ("IRQ", "IRQ:   \t\t "), ("GPU UUID", "GPU UUID: \t "),
               ("Video BIOS", "Video BIOS: \t "), ("Bus Type", "Bus Type: \t "),
               ("DMA Size", "DMA Size: \t "), ("DMA Mask", "DMA Mask: \t "),
               ("Bus Location", "Bus Location: \t "), ("Device Minor", "Device Minor: \t "),
               ("GPU Firmware", "GPU Firmware: \t "), ("GPU Excluded", "GPU Excluded:\t ")]
UUID_RE = re.compile(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CTL_NODES = {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"}


def gpu_bdfs(desc) -> list[str]:
    """The description's GPUs in PCI address order (domain, bus, device, function)."""
    def key(bdf):
        dom, bus, rest = bdf.split(":")
        dev, fn = rest.split(".")
        return (int(dom, 16), int(bus, 16), int(dev, 16), int(fn, 16))
    return sorted((d["bdf"] for d, _ in all_functions(desc) if d["kind"] == "gpu"), key=key)


def read_information(root: Path, bdf: str) -> dict:
    lines = read(root, f"proc/driver/nvidia/gpus/{bdf}/information").split("\n")
    assert len(lines) == len(INFO_LABELS), lines
    out = {}
    for line, (label, prefix) in zip(lines, INFO_LABELS):
        assert line.startswith(prefix), f"{bdf}: {line!r} does not start with {prefix!r}"
        out[label] = line[len(prefix):]
        assert out[label] and out[label] == out[label].strip(), line
    return out


def dev_nodes(root: Path) -> set[str]:
    d = root / "dev"
    names = set(os.listdir(d)) if d.is_dir() else set()
    for n in names:
        p = d / n
        # a character device stood in for by an EMPTY REGULAR FILE
        assert p.is_file() and not p.is_symlink() and p.stat().st_size == 0, n
    return names


@pytest.mark.parametrize("name", st.MACHINES)
def test_driver_procfs_every_gpu(tmp_path, name):
    desc = st.load(name)
    st.write_tree(desc, tmp_path, driver_procfs=True)
    gpus = gpu_bdfs(desc)
    # the reference (which shares no code with the writer) orders GPUs the same way
    assert [g["bdf"] for g in ref.gpus(desc)] == gpus
    base = tmp_path / "proc/driver/nvidia"
    assert (base / "gpus").is_dir()                       # there even with no GPU
    assert sorted(os.listdir(base / "gpus")) == sorted(gpus)
    uuids = set()
    for minor, bdf in enumerate(gpus):
        info = read_information(tmp_path, bdf)
        assert info["Bus Location"] == bdf                 # == its directory name
        assert info["Device Minor"] == str(minor)          # probe order = PCI order
        assert UUID_RE.fullmatch(info["GPU UUID"]), info["GPU UUID"]
        uuids.add(info["GPU UUID"])
        bits = int(re.fullmatch(r"(\d+) bits", info["DMA Size"]).group(1))
        assert info["DMA Mask"] == hex((1 << bits) - 1)
        assert info["Bus Type"] == "PCIe" and info["GPU Excluded"] == "No"
        assert re.fullmatch(r"\d+", info["IRQ"])
        assert read(tmp_path, f"proc/driver/nvidia/gpus/{bdf}/registry") == 'Binary: ""'
    assert len(uuids) == len(gpus)
    assert dev_nodes(tmp_path) == CTL_NODES | {f"nvidia{i}" for i in range(len(gpus))}
    # sysfs is as without the option: every GPU still there
    for bdf in gpus:
        assert (tmp_path / "sys/bus/pci/devices" / bdf / "vendor").is_file()


def test_driver_procfs_files(tmp_path):
    desc = st.load("dgx-h100")
    given = "12345678-aaaa-bbbb-cccc-1234567890ab"
    st.write_tree(desc, tmp_path / "a", driver_procfs=True, gpu_uuids={"0000:43:00.0": given})
    st.write_tree(desc, tmp_path / "b", driver_procfs=True)
    a, b = tmp_path / "a", tmp_path / "b"
    version = read(a, "proc/driver/nvidia/version").split("\n")
    assert len(version) == 2
    m = re.fullmatch(r"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  "
                     r"(\d+\.\d+\.\d+)  Release Build  \(\S+\)  .+ UTC \d{4}", version[0])
    assert m, version[0]
    assert re.fullmatch(r"GCC version:  gcc version \d+\.\d+\.\d+ .*", version[1])
    params = read(a, "proc/driver/nvidia/params").split("\n")
    for line in params:
        assert re.fullmatch(r'[A-Za-z0-9]+: (\d+|"[^"]*")', line), line
    assert "ModifyDeviceFiles: 1" in params and "DeviceFileMode: 438" in params
    assert params[-1] == 'ExcludedGpus: ""'
    assert read(a, "proc/driver/nvidia/registry") == 'Binary: ""'
    assert (a / "proc/driver/nvidia/warnings/README").is_file()
    info = read_information(a, "0000:43:00.0")
    assert info["GPU UUID"] == "GPU-" + given             # gpu_uuids wins
    assert info["Model"] == "NVIDIA H100 80GB HBM3"        # device 0x2330
    assert info["DMA Size"] == "52 bits" and info["DMA Mask"] == "0xfffffffffffff"
    assert info["GPU Firmware"] == m.group(1)              # GSP firmware = driver version
    # made-up UUIDs are stable across runs and follow the bdf
    other = read_information(a, "0000:1b:00.0")
    assert other == read_information(b, "0000:1b:00.0")
    assert read_information(b, "0000:43:00.0")["GPU UUID"] != "GPU-" + given
    assert (a / "numabind/gpu-uuids").read_text() == f"0000:43:00.0 GPU-{given}\n"


def test_driver_procfs_models(tmp_path):
    # another model; an id the driver does not know reads "Unknown"
    d = _synthetic()
    gpu_a = d["pci"][0]["devices"][0]["children"][0]["children"][0]["children"][0]["children"][0]
    gpu_b = d["pci"][1]["devices"][0]
    assert (gpu_a["bdf"], gpu_b["bdf"]) == ("0000:04:00.0", "0000:80:00.0")
    gpu_a["device"], gpu_b["device"] = "0x2335", "0x1234"
    st.write_tree(d, tmp_path, driver_procfs=True)
    a = read_information(tmp_path, "0000:04:00.0")
    assert a["Model"] == "NVIDIA H200" and a["Device Minor"] == "0"
    b = read_information(tmp_path, "0000:80:00.0")
    assert b["Model"] == "Unknown" and b["Device Minor"] == "1"


def test_no_driver_without_the_option(machine):
    _, root = machine
    assert not (root / "proc/driver").exists() and not (root / "dev").exists()


def test_container_gpus(tmp_path):
    desc = st.load("dgx-h100")
    host = tmp_path / "host"
    st.write_tree(desc, host, driver_procfs=True)
    gpus = gpu_bdfs(desc)
    sel = gpus[4:]                                         # docker --gpus '"device=4,5,6,7"'
    for i, opts in enumerate(({}, {"driver_procfs": True})):   # container_gpus wins
        root = tmp_path / f"c{i}"
        st.write_tree(desc, root, container_gpus=list(reversed(sel)), **opts)
        base = root / "proc/driver/nvidia"
        # the tmpfs holds params, version and registry; gpus/ holds the bind mounts
        assert sorted(os.listdir(base)) == ["gpus", "params", "registry", "version"]
        assert sorted(os.listdir(base / "gpus")) == sel
        for bdf in sel:
            # the same directory as the host's, bind-mounted: host minors 4-7 stay
            assert read(root, f"proc/driver/nvidia/gpus/{bdf}/information") == \
                read(host, f"proc/driver/nvidia/gpus/{bdf}/information")
            assert read_information(root, bdf)["Device Minor"] == str(gpus.index(bdf))
        assert dev_nodes(root) == CTL_NODES | {"nvidia4", "nvidia5", "nvidia6", "nvidia7"}
        # nvc copies params with ModifyDeviceFiles turned off, the rest as is
        host_params = read(host, "proc/driver/nvidia/params")
        assert "ModifyDeviceFiles: 1" in host_params
        assert read(root, "proc/driver/nvidia/params") == \
            host_params.replace("ModifyDeviceFiles: 1", "ModifyDeviceFiles: 0")
        assert read(root, "proc/driver/nvidia/version") == read(host, "proc/driver/nvidia/version")
        # sysfs is not namespaced: every GPU is still there
        assert set(gpus) <= set(os.listdir(root / "sys/bus/pci/devices"))


def test_container_without_gpus(tmp_path):
    st.write_tree(st.load("h100x4-flat-vm"), tmp_path, container_gpus=[])
    base = tmp_path / "proc/driver/nvidia"
    assert sorted(os.listdir(base)) == ["params", "registry", "version"]
    assert dev_nodes(tmp_path) == CTL_NODES


@pytest.mark.parametrize("gpus,needle", [
    (["0000:18:00.0"], "0000:18:00.0"),                    # a NIC
    (["0000:15:01.0"], "0000:15:01.0"),                    # a bridge
    (["0000:ff:00.0"], "0000:ff:00.0"),                    # nothing
    (["0000:1B:00.0"], "0000:1B:00.0"),                    # the kernel prints lower case
    (["0000:1b:00.0", "0000:1b:00.0"], "0000:1b:00.0"),    # twice
    ("0000:1b:00.0", "0000:1b:00.0"),                      # a string, not a list
])
def test_container_gpus_bad(tmp_path, gpus, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        st.write_tree(st.load("dgx-h100"), tmp_path / "x", container_gpus=gpus)
    assert not (tmp_path / "x").exists()                   # refused before writing


def status_fields(root: Path) -> dict:
    return dict(line.split(":\t", 1) for line in read(root, "proc/self/status").split("\n"))


def test_affinity_cpus(tmp_path):
    desc = st.load("dgx-h100")
    st.write_tree(desc, tmp_path / "a", cgroup_cpus="0-55,112-167", affinity_cpus="0-3,112-115")
    f = status_fields(tmp_path / "a")
    assert f["Cpus_allowed_list"] == "0-3,112-115"
    assert mask_bits(f["Cpus_allowed"]) == [0, 1, 2, 3, 112, 113, 114, 115]
    assert mask_width(f["Cpus_allowed"]) == 224
    assert f["Mems_allowed_list"] == "0-1"                 # memory binding unchanged
    cg = tmp_path / "a/sys/fs/cgroup/job"
    assert (cg / "cpuset.cpus.effective").read_text() == "0-55,112-167\n"   # stays wide
    # without a cgroup the description's allowed set is the wider one
    st.write_tree(desc, tmp_path / "b", affinity_cpus="200")
    assert status_fields(tmp_path / "b")["Cpus_allowed_list"] == "200"
    assert ref.allowed(desc)["cpus"] == list(range(224))     # what it would be without
    # with a v1 cpuset
    st.write_tree(desc, tmp_path / "d", cgroup_v1_cpus="56-111", affinity_cpus="60")
    assert status_fields(tmp_path / "d")["Cpus_allowed_list"] == "60"


@pytest.mark.parametrize("opts,needle", [
    ({"affinity_cpus": "500"}, "500"),                                  # not a CPU
    ({"affinity_cpus": "3", "offline_cpus": "3"}, "'3'"),               # offline
    ({"affinity_cpus": "8", "cgroup_cpus": "0-7"}, "'8'"),              # outside the cpuset
    ({"affinity_cpus": "8", "cgroup_v1_cpus": "0-7"}, "'8'"),
    ({"affinity_cpus": ""}, "''"),                                      # empty
    ({"affinity_cpus": "a-b"}, "a-b"),
])
def test_affinity_cpus_bad(tmp_path, opts, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        st.write_tree(st.load("dgx-h100"), tmp_path / "x", **opts)
    assert not (tmp_path / "x").exists()


def test_affinity_outside_allowed(tmp_path):
    d = copy.deepcopy(st.load("dgx-h100"))
    d["allowed"]["cpus"] = "0-7"
    with pytest.raises(ValueError, match="'9'"):
        st.write_tree(d, tmp_path, affinity_cpus="9")


def parse_mountinfo(text: str) -> list[dict]:
    out = []
    for line in text.split("\n"):
        pre, sep, post = line.partition(" - ")
        assert sep, line
        f = pre.split(" ")
        fstype, source, superopts = post.split(" ")
        out.append({"id": f[0], "parent": f[1], "dev": f[2], "root": f[3], "mountpoint": f[4],
                    "opts": f[5], "optional": f[6:], "fstype": fstype, "superopts": superopts})
    return out


def test_cgroup_v1(tmp_path):
    desc = st.load("dgx-h100")
    st.write_tree(desc, tmp_path, cgroup_v1_cpus="56-111,168-223", offline_cpus="60")
    lines = read(tmp_path, "proc/self/cgroup").split("\n")
    entries = [line.split(":", 2) for line in lines]
    ids = [int(e[0]) for e in entries]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids) and ids[-1] == 0
    assert entries[-1][1] == ""                             # 0:: the unified hierarchy
    ctrls = {c for e in entries[:-1] for c in e[1].split(",")}
    assert {"cpuset", "memory", "cpu", "cpuacct", "devices", "name=systemd"} <= ctrls
    cpuset = [e for e in entries if "cpuset" in e[1].split(",")]
    assert len(cpuset) == 1
    path = cpuset[0][2]
    assert re.fullmatch(r"/docker/[0-9a-f]{64}", path), path
    mounts = parse_mountinfo(read(tmp_path, "proc/self/mountinfo"))
    assert len({m["id"] for m in mounts}) == len(mounts)
    peers = [o for m in mounts for o in m["optional"] if o.startswith("shared:")]
    assert len(set(peers)) == len(peers)
    v1 = [m for m in mounts if m["fstype"] == "cgroup"]
    assert {m["mountpoint"] for m in v1} >= {"/sys/fs/cgroup/cpuset", "/sys/fs/cgroup/memory"}
    cs = [m for m in v1 if "cpuset" in m["superopts"].split(",")]
    assert len(cs) == 1 and cs[0]["root"] == "/"
    assert not any(m["mountpoint"] == "/sys/fs/cgroup" and m["fstype"] == "cgroup2" for m in mounts)
    mp = cs[0]["mountpoint"].lstrip("/")
    job = f"{mp}{path}"
    # offline CPU 60 has left the v1 cpuset, as the kernel does on v1
    assert read(tmp_path, f"{job}/cpuset.cpus") == "56-59,61-111,168-223"
    assert read(tmp_path, f"{job}/cpuset.effective_cpus") == "56-59,61-111,168-223"
    assert read(tmp_path, f"{job}/cpuset.mems") == "0-1"
    assert read(tmp_path, f"{job}/cpuset.effective_mems") == "0-1"
    online = read(tmp_path, "sys/devices/system/cpu/online")
    assert read(tmp_path, f"{mp}/cpuset.cpus") == online == "0-59,61-223"
    assert read(tmp_path, f"{mp}/cpuset.effective_cpus") == online
    assert read(tmp_path, f"{mp}/cpuset.mems") == "0-1"
    assert read(tmp_path, f"{mp}/cpuset.effective_mems") == "0-1"
    # hybrid: the unified hierarchy exists but holds no controller
    assert read(tmp_path, f"sys/fs/cgroup/unified{path}/cgroup.controllers") == ""
    assert not (tmp_path / "sys/fs/cgroup/cpuset.cpus.effective").exists()
    # the status line is the process's own affinity, which the kernel keeps inside the cpuset
    assert status_fields(tmp_path)["Cpus_allowed_list"] == "56-59,61-111,168-223"


@pytest.mark.parametrize("opts,needle", [
    ({"cgroup_v1_cpus": "0-3", "cgroup_cpus": "0-7"}, "0-3"),
    ({"cgroup_v1_cpus": "0-300"}, "0-300"),
    ({"cgroup_v1_cpus": "x"}, "'x'"),
    ({"cgroup_v1_cpus": "5", "offline_cpus": "5"}, "'5'"),
])
def test_cgroup_v1_bad(tmp_path, opts, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        st.write_tree(st.load("dgx-h100"), tmp_path / "x", **opts)


def test_cli_new_flags(tmp_path):
    vm = "h100x4-flat-vm"          # GPUs 0000:00:06.0 ... 0000:00:09.0, CPUs 0-63
    out = tmp_path / "tree"
    assert st.main([vm, str(out), "--driver-procfs"]) == 0
    assert len(os.listdir(out / "proc/driver/nvidia/gpus")) == 4
    assert "nvidia3" in dev_nodes(out)
    assert st.main([vm, str(out), "--clean", "--container-gpus",
                    "0000:00:09.0, 0000:00:08.0", "--affinity-cpus", "8-11",
                    "--cgroup-v1-cpus", "8-15"]) == 0
    assert sorted(os.listdir(out / "proc/driver/nvidia/gpus")) == ["0000:00:08.0", "0000:00:09.0"]
    assert dev_nodes(out) == CTL_NODES | {"nvidia2", "nvidia3"}    # --clean dropped the rest
    assert status_fields(out)["Cpus_allowed_list"] == "8-11"
    assert "8:cpuset:/docker/" in read(out, "proc/self/cgroup")
    assert st.main([vm, str(out), "--clean", "--container-gpus", ""]) == 0
    assert not (out / "proc/driver/nvidia/gpus").exists() and dev_nodes(out) == CTL_NODES
    assert st.main([vm, str(out), "--clean"]) == 0
    assert not (out / "dev").exists() and not (out / "proc/driver").exists()
    for bad in (["--container-gpus", "0000:00:06.0,"], ["--affinity-cpus", "999"],
                ["--cgroup-v1-cpus", "1", "--cgroup-cpus", "1"]):
        assert st.main([vm, str(tmp_path / "bad"), *bad]) == 2


# ------------------------------------------------ older kernels and capture tools (issue 15)

CPU = "sys/devices/system/cpu"


def test_mask_only_leaves_out_the_lists_and_keeps_the_masks(tmp_path):
    desc = st.load("dgx-h100")      # 224 CPUs: seven 32-bit groups per mask
    st.write_tree(desc, tmp_path, mask_only=("shared_cpu", "thread_siblings", "core_siblings"))
    for c in (0, 112, 223):
        topo, idx3 = f"{CPU}/cpu{c}/topology", f"{CPU}/cpu{c}/cache/index3"
        for name in ("thread_siblings_list", "core_siblings_list"):
            assert not (tmp_path / topo / name).exists()
        assert not (tmp_path / idx3 / "shared_cpu_list").exists()
        for i in range(3):   # every cache leaf, not only the L3
            assert not (tmp_path / f"{CPU}/cpu{c}/cache/index{i}/shared_cpu_list").exists()
        threads = mask_bits(read(tmp_path, f"{topo}/thread_siblings"))
        assert threads == [c % 112, c % 112 + 112]          # SMT pairs c, c +/- 112
        pkg = mask_bits(read(tmp_path, f"{topo}/core_siblings"))
        assert len(pkg) == 112 and c in pkg
        assert mask_width(read(tmp_path, f"{idx3}/shared_cpu_map")) == 224
        assert c in mask_bits(read(tmp_path, f"{idx3}/shared_cpu_map"))
        # what mask_only does not name keeps its list
        assert (tmp_path / topo / "core_cpus_list").is_file()
        assert (tmp_path / topo / "package_cpus_list").is_file()


def test_pre_5_3_topology(tmp_path):
    st.write_tree(st.load("plain-2cpu-no-gpu"), tmp_path, pre_5_3_topology=True)
    names = sorted(os.listdir(tmp_path / f"{CPU}/cpu0/topology"))
    assert names == ["core_id", "core_siblings", "core_siblings_list", "physical_package_id",
                     "thread_siblings", "thread_siblings_list"]


def test_unknown_package_id(tmp_path):
    st.write_tree(_synthetic(), tmp_path, unknown_package_id=True)   # one socket, CPUs 0-7
    for c in range(8):
        assert read(tmp_path, f"{CPU}/cpu{c}/topology/physical_package_id") == "-1"
    # the package masks still group the CPUs by socket
    assert read(tmp_path, f"{CPU}/cpu0/topology/core_siblings_list") == "0-7"
    assert read(tmp_path, f"{CPU}/cpu7/topology/package_cpus") == "ff"


def test_no_cpu_online(tmp_path):
    st.write_tree(st.load("plain-2cpu-no-gpu"), tmp_path, no_cpu_online=True, offline_cpus="1")
    assert not (tmp_path / f"{CPU}/online").exists()
    assert not (tmp_path / f"{CPU}/cpu0/online").exists()       # x86: cpu0 has none
    assert read(tmp_path, f"{CPU}/cpu1/online") == "0"
    assert read(tmp_path, f"{CPU}/present") == "0-1"
    st.write_tree(st.load("plain-2cpu-no-gpu"), tmp_path / "zero", no_cpu_online=True, offline_cpus="0")
    assert read(tmp_path, f"zero/{CPU}/cpu0/online") == "0"     # an offline cpu0 has one


def test_no_proc_status(tmp_path):
    desc = st.load("plain-2cpu-no-gpu")
    st.write_tree(desc, tmp_path / "a", no_proc_status=True)
    assert not (tmp_path / "a/proc/self/status").exists()
    st.write_tree(desc, tmp_path / "b", no_proc_status=True, cgroup_cpus="1")
    assert not (tmp_path / "b/proc/self/status").exists()
    assert read(tmp_path / "b", "sys/fs/cgroup/job/cpuset.cpus.effective") == "1"
    assert read(tmp_path / "b", "proc/self/cgroup") == "0::/job"


@pytest.mark.parametrize("opts,needle", [
    ({"mask_only": ("shared_cpu_list",)}, "'shared_cpu_list'"),
    ({"mask_only": ("cpulist",)}, "'cpulist'"),
    ({"no_proc_status": True, "affinity_cpus": "0"}, "affinity_cpus '0'"),
])
def test_issue15_options_bad(tmp_path, opts, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        st.write_tree(st.load("plain-2cpu-no-gpu"), tmp_path / "x", **opts)
    assert not (tmp_path / "x").exists()


def test_cli_issue15_flags(tmp_path):
    out = tmp_path / "tree"
    assert st.main(["plain-2cpu-no-gpu", str(out), "--mask-only", "shared_cpu,core_siblings",
                    "--pre-5-3-topology", "--unknown-package-id", "--no-cpu-online", "--no-proc-status"]) == 0
    topo = out / f"{CPU}/cpu1/topology"
    assert sorted(os.listdir(topo)) == ["core_id", "core_siblings", "physical_package_id", "thread_siblings",
                                        "thread_siblings_list"]
    assert read(out, f"{CPU}/cpu1/topology/physical_package_id") == "-1"
    assert not (out / f"{CPU}/online").exists() and not (out / "proc/self/status").exists()
    assert not (out / f"{CPU}/cpu1/cache/index3/shared_cpu_list").exists()
    assert st.main(["plain-2cpu-no-gpu", str(tmp_path / "bad"), "--mask-only", "nonsense"]) == 2


# ------------------------------------------------ conventions of this machine's kernel

def _real(path: str) -> str:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    return Path(path).read_text()


def _real_nr_cpu_ids() -> int:
    return ref.cpulist(_real("/sys/devices/system/cpu/possible"))[-1] + 1


def test_real_node_cpumap_format():
    text = _real("/sys/devices/system/node/node0/cpumap")
    cpus = ref.cpulist(_real("/sys/devices/system/node/node0/cpulist"))
    assert text == st.format_mask(cpus, _real_nr_cpu_ids()) + "\n"


def test_real_cpu_online_format():
    text = _real("/sys/devices/system/cpu/online")
    assert text.endswith("\n") and LIST_RE.match(text[:-1])
    assert text == st.format_cpulist(ref.cpulist(text)) + "\n"


def test_real_proc_status_allowed_lines():
    status = _real("/proc/self/status")
    cl = re.search(r"^Cpus_allowed_list:\t(.*)$", status, re.M)
    cm = re.search(r"^Cpus_allowed:\t(.*)$", status, re.M)
    ml = re.search(r"^Mems_allowed_list:\t(.*)$", status, re.M)
    mm = re.search(r"^Mems_allowed:\t(.*)$", status, re.M)
    if not (cl and cm and ml and mm):
        pytest.skip("no Cpus_allowed/Mems_allowed lines in /proc/self/status")
    cpus = ref.cpulist(cl.group(1))
    assert cl.group(1) == st.format_cpulist(cpus)
    assert cm.group(1) == st.format_mask(cpus, _real_nr_cpu_ids())
    mems = ref.cpulist(ml.group(1))
    assert mm.group(1) == st.format_mask(mems, mask_width(mm.group(1)))


def test_real_meminfo_line_format():
    text = _real("/sys/devices/system/node/node0/meminfo")
    real = text.splitlines()
    ours = st._meminfo(0, 1).splitlines()
    # same labels in the same order, same column layout
    real_labels = [ln.split(":")[0] for ln in real]
    assert [ln.split(":")[0] for ln in ours] == [x for x in real_labels
                                                  if x in {o.split(":")[0] for o in ours}]
    for ln in real:
        m = re.fullmatch(r"Node 0 (\S+:)\s+(\d+)( kB)?", ln)
        assert m, ln
        label, value, kb = m.groups()
        if kb:
            assert ln == f"Node 0 {label:<16}{int(value):>8} kB"
        else:
            assert ln == f"Node 0 {label:<16} {int(value):>5}"


def test_real_pci_conventions():
    base = "/sys/bus/pci/devices"
    if not os.path.isdir(base) or not os.listdir(base):
        pytest.skip("no PCI devices here")
    for bdf in sorted(os.listdir(base)):
        link = os.path.join(base, bdf)
        assert st.BDF_RE.match(bdf)
        assert os.readlink(link).startswith("../../../devices/")
        d = os.path.realpath(link)
        assert re.fullmatch(r"0x[0-9a-f]{6}\n", Path(d, "class").read_text())
        assert re.fullmatch(r"0x[0-9a-f]{4}\n", Path(d, "vendor").read_text())
        assert re.fullmatch(r"-?\d+\n", Path(d, "numa_node").read_text())
        cpus = ref.cpulist(Path(d, "local_cpulist").read_text())
        assert Path(d, "local_cpus").read_text() == st.format_mask(cpus, _real_nr_cpu_ids()) + "\n"
        if Path(d, "max_link_speed").exists():
            speed = Path(d, "max_link_speed").read_text()
            assert re.fullmatch(r"(\d+\.\d GT/s PCIe|Unknown)\n", speed), speed
