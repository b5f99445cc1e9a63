"""``numabind gather``: capture what the library reads, replay it elsewhere.

The capture runs as a real subprocess (the installed console script); the
replay is ``numabind.gather.extract`` into a temporary directory and
``numabind.topology(dir)``, which must describe the captured machine exactly.
"""
from __future__ import annotations

import os
import posixpath
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import numabind
import reference as ref
import sysfs_tree as st
from conftest import describe
from numabind.gather import extract

SCRIPT = str(Path(sys.executable).parent / "numabind")


def gather(out: Path, fsroot: Path | None = None, cmd: list[str] | None = None,
           extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
    if fsroot is not None:
        env["NUMABIND_FSROOT"] = str(fsroot)
    env.update(extra_env or {})
    p = subprocess.run([*(cmd or [SCRIPT]), "gather", str(out)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert p.stdout.startswith(f"wrote {out}:"), p.stdout
    assert out.is_file()
    return p


def check_archive(archive: Path) -> list[tarfile.TarInfo]:
    """No absolute names, nothing climbing out of the root, every link
    relative and resolving inside the tree, only files/dirs/symlinks."""
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
    assert members
    for m in members:
        name = m.name
        assert not name.startswith("/"), name
        norm = posixpath.normpath(name)
        assert norm != ".." and not norm.startswith("../") and ".." not in name.split("/"), name
        assert m.isfile() or m.isdir() or m.issym(), (name, m.type)
        if m.issym():
            assert not m.linkname.startswith("/"), (name, m.linkname)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(norm), m.linkname))
            assert target != ".." and not target.startswith("../"), (name, m.linkname)
    return members


def check_tree_inside(root: Path) -> None:
    real = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                assert not os.path.isabs(os.readlink(p)), p
                resolved = os.path.realpath(p)
                assert os.path.commonpath([real, resolved]) == real, (p, resolved)


def strip(d: dict, *, live: bool) -> dict:
    d = dict(d)
    d.pop("fsroot")
    if live:
        d.pop("live")
        # the live read asks the kernel; a replay can only read the files
        d.pop("allowed_source")
        d["nics"] = [{k: v for k, v in n.items() if k != "source"} for n in d["nics"]]
    return d


def test_gather_live_host_replays(tree, tmp_path):
    out = tmp_path / "host.tar.gz"
    gather(out)
    members = check_archive(out)
    names = {m.name for m in members}
    assert "sys/devices/system/cpu/online" in names
    dest = tree.scratch("replay")
    extract(out, dest)
    check_tree_inside(dest)
    # /proc/self is a link to the gathering process's pid: it must resolve
    assert (dest / "proc/self/status").is_file()
    assert "Cpus_allowed_list:" in (dest / "proc/self/status").read_text()
    live = numabind.topology()
    replay = numabind.topology(dest)
    assert replay.live is False and live.live is True
    assert os.path.realpath(replay.fsroot) == os.path.realpath(dest)
    assert strip(replay.to_dict(), live=True) == strip(live.to_dict(), live=True)
    assert replay.allowed_source in ("cgroup", "affinity")   # proc/self/status was captured


def test_gather_by_a_narrowed_process_replays_what_it_may_widen_to(tree, tmp_path):
    # A gathering process bound to one CPU (a launcher's binding): the replay
    # must plan from the cpuset as the live read does, not from that one CPU,
    # so the cgroup files that say it are captured too.
    out = tmp_path / "narrow.tar.gz"
    code = ("import os, sys; from numabind.gather import gather; "
            "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); gather(sys.argv[1])")
    p = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    dest = tree.scratch("replay-narrow")
    extract(out, dest)
    replay = numabind.topology(dest)
    start = sorted(os.sched_getaffinity(0))
    assert list(replay.affinity_cpus) == [start[0]]
    assert list(replay.allowed_cpus) == list(numabind.topology().allowed_cpus)
    assert set(start) <= set(replay.allowed_cpus)


def test_gather_python_m(tree, tmp_path):
    """`python -m numabind gather` is the same command."""
    out = tmp_path / "m.tar.gz"
    gather(out, cmd=[sys.executable, "-m", "numabind"])
    check_archive(out)
    dest = tree.scratch("replay")
    extract(out, dest)
    assert strip(numabind.topology(dest).to_dict(), live=True) == \
        strip(numabind.topology().to_dict(), live=True)


AZURE_UUIDS = {g["bdf"]: f"GPU-{i:08x}-aaaa-bbbb-cccc-{g['bdf'][:4]}00000000"
               for i, g in enumerate(ref.gpus(st.load("azure-nd96isr-h100-v5")))}


@pytest.mark.parametrize("name, options", [
    ("dgx-h100", {}),
    ("azure-nd96isr-h100-v5", {"gpu_uuids": AZURE_UUIDS}),
    ("synthetic", {"gpu_uuids": {"0000:03:00.0": "GPU-11111111-2222-3333-4444-555555555555",
                                 "0001:00:00.0": "GPU-66666666-7777-8888-9999-000000000000"},
                   "soft_roce": {"rxe0": "eno2"}, "offline_cpus": "5",
                   "cgroup_cpus": "1-3", "numa_override": {"0000:81:00.0": -1}}),
], ids=["dgx-h100", "azure-uuids", "synthetic-everything"])
def test_gather_fixture_replays(tree, tmp_path, name, options):
    desc = describe(name)
    root = tree(desc, **options)
    out = tmp_path / f"{name}.tar.gz"
    gather(out, fsroot=root)
    check_archive(out)
    dest = tree.scratch("replay")
    extract(out, dest)
    check_tree_inside(dest)
    original = numabind.topology(root)
    replay = numabind.topology(dest)
    assert strip(replay.to_dict(), live=False) == strip(original.to_dict(), live=False)
    # and both are the described machine
    assert [(g.pci_address, g.numa_node) for g in replay.all_gpus] == [
        (g["bdf"], None if g["bdf"] in options.get("numa_override", {}) else g["numa"])
        for g in ref.gpus(desc)]
    want = ref.class_matrix(desc)
    for g in replay.gpus:
        for n in ref.nics(desc):
            if g.numa_node is not None:
                assert replay.distance(g, n["name"]).name == want[g.pci_address][n["name"]]
    uuids = options.get("gpu_uuids", {})
    assert {g.pci_address: g.uuid for g in replay.all_gpus if g.uuid} == uuids
    if uuids:
        with tarfile.open(out, "r:gz") as tar:
            text = tar.extractfile("numabind/gpu-uuids").read().decode()
        assert sorted(text.splitlines()) == sorted(f"{b} {u}" for b, u in uuids.items())


def test_gathered_uuids_drive_cuda_visible_devices(tree, tmp_path, monkeypatch):
    root = tree("azure-nd96isr-h100-v5", gpu_uuids=AZURE_UUIDS)
    out = tmp_path / "azure.tar.gz"
    gather(out, fsroot=root)
    dest = tree.scratch("replay")
    extract(out, dest)
    bdfs = [g["bdf"] for g in ref.gpus(st.load("azure-nd96isr-h100-v5"))]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{AZURE_UUIDS[bdfs[5]][:12]},{AZURE_UUIDS[bdfs[2]]}")
    topo = numabind.topology(dest)
    assert [g.pci_address for g in topo.gpus] == [bdfs[5], bdfs[2]]


def test_gather_under_cuda_visible_devices_keeps_every_gpu(tree, tmp_path):
    """The capture is of the machine, not of one process's view of it."""
    out = tmp_path / "dgx.tar.gz"
    gather(out, fsroot=tree("dgx-h100"), extra_env={"CUDA_VISIBLE_DEVICES": "5"})
    dest = tree.scratch("replay")
    extract(out, dest)
    topo = numabind.topology(dest)
    assert [g.pci_address for g in topo.gpus] == [g["bdf"] for g in ref.gpus(st.load("dgx-h100"))]


def test_gather_fixture_with_absolute_links(tree, tmp_path):
    """A tree made by another tool may use absolute links inside itself; the
    library reads it, so gather must capture it as a self-contained tree."""
    desc = describe("synthetic")
    root = tree.private(desc)
    for link in (root / "sys/bus/pci/devices").iterdir():
        target = os.path.realpath(link)
        link.unlink()
        os.symlink(target, link)
    original = numabind.topology(root)
    out = tmp_path / "abs.tar.gz"
    gather(out, fsroot=root)
    check_archive(out)
    dest = tree.scratch("replay")
    extract(out, dest)
    assert strip(numabind.topology(dest).to_dict(), live=False) == \
        strip(original.to_dict(), live=False)


def test_gather_to_unwritable_path(tmp_path):
    out = tmp_path / "no-such-dir" / "out.tar.gz"
    env = {k: v for k, v in os.environ.items() if k not in ("NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES")}
    p = subprocess.run([SCRIPT, "gather", str(out)], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 74, (p.returncode, p.stderr)      # EX_IOERR: the output could not be written
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stderr == f"numabind: error: cannot write {out}: No such file or directory\n", p.stderr


def test_gather_under_mig_cuda_visible_devices(tree, tmp_path):
    out = tmp_path / "mig.tar.gz"
    gather(out, fsroot=tree("h100x4-flat-vm"),
           extra_env={"CUDA_VISIBLE_DEVICES": "MIG-5e1f0a2b-1111-2222-3333-444455556666"})
    dest = tree.scratch("replay")
    extract(out, dest)
    assert len(numabind.topology(dest).gpus) == 4
