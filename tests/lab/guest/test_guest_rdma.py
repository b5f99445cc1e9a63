"""Soft-RoCE (rdma_rxe) NICs through libibverbs: the devices libibverbs
lists are the ones numabind finds, numabind took their port attributes from
libibverbs, and each is tied to the NUMA node of the NIC it rides on. The
verbs device and the NIC are matched through the node GUID libibverbs
reports (rxe derives it from the NIC's MAC), not through numabind."""
from __future__ import annotations

import ctypes
import re
import subprocess

import numabind


def ibv_device_names() -> list[str]:
    lib = ctypes.CDLL("libibverbs.so.1")
    lib.ibv_get_device_list.restype = ctypes.POINTER(ctypes.c_void_p)
    lib.ibv_get_device_list.argtypes = [ctypes.POINTER(ctypes.c_int)]
    lib.ibv_get_device_name.restype = ctypes.c_char_p
    lib.ibv_get_device_name.argtypes = [ctypes.c_void_p]
    lib.ibv_free_device_list.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    n = ctypes.c_int()
    devs = lib.ibv_get_device_list(ctypes.byref(n))
    assert devs, "ibv_get_device_list failed"
    names = sorted(lib.ibv_get_device_name(devs[i]).decode() for i in range(n.value))
    lib.ibv_free_device_list(devs)
    return names


def ibv_devinfo() -> dict[str, dict]:
    """`ibv_devinfo` (rdma-core's own tool): node GUID, port state, link layer."""
    out = subprocess.run(["ibv_devinfo"], check=True, capture_output=True, text=True, timeout=120).stdout
    devs: dict[str, dict] = {}
    for block in re.split(r"(?m)^hca_id:\s*", out)[1:]:
        name = block.split()[0]
        devs[name] = {
            "guid": re.search(r"node_guid:\s*(\S+)", block).group(1),
            "state": re.search(r"state:\s*(\S+)", block).group(1),
            "link_layer": re.search(r"link_layer:\s*(\S+)", block).group(1),
        }
    return devs


def mac_of_guid(guid: str) -> str:
    """EUI-64 5054:00ff:fe4e:4200 -> MAC 52:54:00:4e:42:00."""
    b = bytes.fromhex(guid.replace(":", ""))
    assert b[3:5] == b"\xff\xfe", guid
    return ":".join(f"{x:02x}" for x in (b[0] ^ 0x02, b[1], b[2], b[5], b[6], b[7]))


def test_libibverbs_lists_every_soft_roce_nic(layout):
    assert ibv_device_names() == sorted(n["name"] for n in layout["nics"])


def test_each_verbs_device_is_tied_to_its_nics_node(layout):
    by_mac = {n["mac"]: n for n in layout["nics"]}
    topo = numabind.topology()
    info = ibv_devinfo()
    assert sorted(info) == sorted(n.name for n in topo.nics)
    for name, dev in info.items():
        want = by_mac[mac_of_guid(dev["guid"])]
        assert want["name"] == name
        assert (dev["state"], dev["link_layer"]) == ("PORT_ACTIVE", "Ethernet")
        nic = topo.nic(name)
        assert nic.numa_node == want["node"], name
        assert nic.virtual and nic.source == "verbs", nic
        assert [(p.state, p.link_layer) for p in nic.ports] == [("ACTIVE", "Ethernet")]


def test_without_verbs_the_same_nics_from_sysfs(layout):
    """numabind's sysfs path agrees with its libibverbs path."""
    via_verbs = numabind.topology()
    via_sysfs = numabind.topology(verbs=False)
    assert [n.source for n in via_sysfs.nics] == ["sysfs"] * len(layout["nics"])
    assert [(n.name, n.numa_node, n.pci_address, n.netdev) for n in via_sysfs.nics] == \
        [(n.name, n.numa_node, n.pci_address, n.netdev) for n in via_verbs.nics]
    assert [[(p.state, p.link_layer) for p in n.ports] for n in via_sysfs.nics] == \
        [[(p.state, p.link_layer) for p in n.ports] for n in via_verbs.nics]
