#!/usr/bin/env python3
"""Do two builds read the same topology? Dumps ``numabind.topology(root).to_dict()``
(or the error raised) for every machine of tests/machines and tests/fixtures,
each written by tests/sysfs_tree.py as it is and as the documented fallbacks
leave it (mask-only files, kernels before 5.3, package id -1, no cpu/online,
offline CPUs, no proc/self/status, the driver's procfs), trees whose links
or files are odd (ODD: links that leave the root, loop, dangle or are
absolute, copied directories, links on the way, a FIFO), plus the live host;
then compares two dumps. Run the dump with each build's Python:

    OLD/.venv/bin/python benchmarks/cpu/same_topology.py dump /tmp/trees /tmp/old.json
    NEW/.venv/bin/python benchmarks/cpu/same_topology.py dump /tmp/trees /tmp/new.json
    python3 benchmarks/cpu/same_topology.py compare /tmp/old.json /tmp/new.json

The trees are written once into the directory (the first dump) and read by
both, so that the roots, which the dicts hold, are the same. Exit 1 when the
dumps differ, naming each tree and key that does.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

VARIANTS: dict[str, dict] = {
    "plain": {},
    "mask-only": {"mask_only": ("shared_cpu", "thread_siblings", "core_siblings", "core_cpus",
                                "package_cpus", "die_cpus")},
    "pre-5.3": {"pre_5_3_topology": True},
    "pre-5.3-masks": {"pre_5_3_topology": True, "mask_only": ("shared_cpu", "thread_siblings", "core_siblings")},
    "unknown-package": {"unknown_package_id": True},
    "unknown-package-pre-5.3": {"unknown_package_id": True, "pre_5_3_topology": True},
    "unknown-package-masks": {"unknown_package_id": True, "mask_only": ("package_cpus", "core_siblings")},
    "no-cpu-online": {"no_cpu_online": True},
    "no-cpu-online-offline-1": {"no_cpu_online": True, "offline_cpus": "1"},
    "offline-1": {"offline_cpus": "1"},
    "offline-1-kept-in-node": {"offline_cpus": "1", "keep_offline_in_node": True},
    "no-proc-status": {"no_proc_status": True},
    "no-proc-status-cgroup": {"no_proc_status": True, "cgroup_cpus": "0"},
    "driver-procfs": {"driver_procfs": True},
}


# Trees whose links or files are odd, made from the plain-2cpu-2gpu fixture:
# the results (errors included, with their messages) must not change either.
PCI = "sys/bus/pci/devices"
GPU0 = f"{PCI}/0000:00:03.0"


def _relink(link: str, target: str):
    def edit(root: Path) -> None:
        (root / link).unlink()
        (root / link).symlink_to(target)
    return edit


def _copied_function(root: Path) -> None:
    """A function's directory copied in place of its link (a tree made with cp -rL)."""
    import shutil
    real = (root / GPU0).resolve()
    (root / GPU0).unlink()
    shutil.copytree(real, root / GPU0, symlinks=True)


def _bus_dir_a_link(root: Path) -> None:
    """sys/bus/pci itself a link to a copy elsewhere in the root."""
    (root / "sys/bus/pci").rename(root / "sys/bus/pci.real")
    (root / "sys/bus/pci").symlink_to("pci.real")


def _device_dir_via_link(root: Path) -> None:
    """An intermediate directory on the way to a function is a link."""
    real = root / "sys/devices/pci0000:00"
    real.rename(root / "sys/devices/pci0000:00.real")
    real.symlink_to("pci0000:00.real")


def _fifo_attribute(root: Path) -> None:
    import os
    attr = (root / GPU0).resolve() / "numa_node"
    attr.unlink()
    os.mkfifo(attr)


def _ib_device_dangling(root: Path) -> None:
    dev = (root / "sys/class/infiniband/mlx5_0").resolve() / "device"
    dev.unlink()
    dev.symlink_to("../../../0000:00:99.0")


def _ib_device_absolute(root: Path) -> None:
    dev = (root / "sys/class/infiniband/mlx5_0").resolve() / "device"
    dev.unlink()
    dev.symlink_to("/sys/devices/pci0000:00/0000:00:06.0")


ODD = {
    "link-escapes-root": _relink(GPU0, "../../../../../../../../../../../../sys/devices/pci0000:00"),
    "link-absolute": _relink(GPU0, "/sys/devices/pci0000:00/0000:00:03.0"),
    "link-loop": _relink(GPU0, "0000:00:03.0"),
    "link-dangling": _relink(GPU0, "../../../devices/pci0000:00/0000:00:77.0"),
    "link-to-link": _relink(GPU0, "0000:00:04.0"),
    "link-dotted": _relink(GPU0, ".././../devices/./pci0000:00//0000:00:03.0/"),
    "function-copied": _copied_function,
    "bus-dir-a-link": _bus_dir_a_link,
    "device-dir-via-link": _device_dir_via_link,
    "fifo-attribute": _fifo_attribute,
    "ib-device-dangling": _ib_device_dangling,
    "ib-device-absolute": _ib_device_absolute,
}


def machines() -> list[Path]:
    return sorted((REPO / "tests/machines").glob("*.json")) + sorted((REPO / "tests/fixtures").glob("*.json"))


def dump(trees: Path, out: Path) -> int:
    import numabind
    import sysfs_tree

    result: dict[str, object] = {}
    for desc_path in machines():
        desc = json.loads(desc_path.read_text())
        for variant, options in VARIANTS.items():
            root = trees / f"{desc_path.stem}--{variant}"
            name = root.name
            if not root.exists():
                try:
                    sysfs_tree.write_tree(desc, root, **options)
                except (ValueError, KeyError) as e:   # an option this machine cannot take
                    root.mkdir(parents=True)
                    (root / "SKIPPED").write_text(str(e))
            if (root / "SKIPPED").exists():
                continue
            try:
                result[name] = numabind.topology(root).to_dict()
            except Exception as e:  # noqa: BLE001 - the error is the result
                result[name] = {"error": type(e).__name__, "message": str(e)}
    base = json.loads((REPO / "tests/fixtures/plain-2cpu-2gpu.json").read_text())
    for variant, edit in ODD.items():
        root = trees / f"plain-2cpu-2gpu--{variant}"
        if not root.exists():
            sysfs_tree.write_tree(base, root, driver_procfs=True)
            edit(root)
        try:
            result[root.name] = numabind.topology(root).to_dict()
        except Exception as e:  # noqa: BLE001 - the error is the result
            result[root.name] = {"error": type(e).__name__, "message": str(e)}
    result["live"] = numabind.topology().to_dict()
    out.write_text(json.dumps(result, indent=1, sort_keys=True))
    print(f"{len(result)} trees read into {out}")
    return 0


def compare(a: Path, b: Path) -> int:
    old, new = json.loads(a.read_text()), json.loads(b.read_text())
    bad = 0
    for name in sorted(set(old) | set(new)):
        x, y = old.get(name), new.get(name)
        if x == y:
            continue
        bad += 1
        keys = sorted(k for k in set(x or {}) | set(y or {}) if (x or {}).get(k) != (y or {}).get(k))
        print(f"DIFFERS {name}: {', '.join(keys)}")
    print(f"{len(set(old) | set(new)) - bad} of {len(set(old) | set(new))} topologies identical")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "dump":
        return dump(Path(argv[1]), Path(argv[2]))
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
