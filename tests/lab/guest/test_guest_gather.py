"""`numabind gather` on a multi-NUMA kernel with soft-RoCE devices: the
captured tree replays to the topology read live, nodes, CPU-less node,
PCI tree under the expander bridges and the rxe devices' netdev links
included (only where the port attributes and the allowed sets came from
differs: libibverbs and the kernel live, the captured files in a replay)."""
from __future__ import annotations

import numabind
from numabind.gather import extract, gather


def test_gathered_tree_replays_to_the_live_topology(tmp_path, layout):
    paths = gather(tmp_path / "node.tar.gz")
    assert any("infiniband" in p for p in paths)
    extract(tmp_path / "node.tar.gz", tmp_path / "root")
    live = numabind.topology().to_dict()
    replay = numabind.topology(tmp_path / "root").to_dict()
    assert (live.pop("live"), replay.pop("live")) == (True, False)
    live.pop("fsroot"), replay.pop("fsroot")
    assert [n.pop("source") for n in live["nics"]] == ["verbs"] * len(layout["nics"])
    assert [n.pop("source") for n in replay["nics"]] == ["sysfs"] * len(layout["nics"])
    # Where the allowed sets came from differs by design: the kernel's own
    # answer live, the captured files in a replay; the sets themselves agree.
    assert live.pop("allowed_source") == "kernel"
    assert replay.pop("allowed_source") in ("cgroup", "affinity")
    assert replay == live
    assert len(replay["nodes"]) == len(layout["nodes"]) and len(replay["gpus"]) == len(layout["gpus"])
