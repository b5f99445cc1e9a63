#!/usr/bin/env python3
"""Do two builds read the same topology? Dumps ``numabind.topology(root).to_dict()``
(or the error raised) for every machine of tests/machines and tests/fixtures,
each written by tests/sysfs_tree.py as it is and as the documented fallbacks
leave it (mask-only files, kernels before 5.3, package id -1, no cpu/online,
offline CPUs, no proc/self/status, the driver's procfs), plus the live host;
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
