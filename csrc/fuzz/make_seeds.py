#!/usr/bin/env python3
"""Writes the seed corpora in csrc/fuzz/corpus/<target>/ (committed; rerun
after changing a seed list here). Seeds are what real machines and launchers
produce, plus the malformed values the C tests already name, so the fuzzers
start from every branch the readers have.

    python3 csrc/fuzz/make_seeds.py
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"

CPULIST = ["0-3,8,10-11\n", "0-55,112-167\n", "\n", "", "8191\n", "0\n", "0-8191\n", "0,2,4,6\n", "1,\n",
           " 0-3 \n", "3-1", "8192", "1,,2", "a", "1-", "0-1,4-5", "2-3,6-7", "96-191,288-383\n",
           ",".join(str(c) for c in range(0, 4096, 2)) + "\n", "99999999999999999999"]

CPUMASK = ["00000000,000000ff\n", "ff,ffffffff\n", "3\n", "0xf0", "1,00000000", "1,2", "123456789",
           ",".join(["ffffffff"] * 7) + "\n", ",".join(["00000000"] * 255 + ["00000001"]) + "\n",
           "80000000," + ",".join(["00000000"] * 255) + "\n", ",ff", "xyz", "", "0x", "ff,", "ff,,ff",
           "000000015,0", "00ff00ff,ff00ff00,0000ffff\n"]

STATUS = ("Name:\tpython3\nUmask:\t0022\nState:\tR (running)\nThreads:\t1\n"
          "Cpus_allowed:\tff,ffffffff\nCpus_allowed_list:\t0-39\n"
          "Mems_allowed:\t00000000,00000003\nMems_allowed_list:\t0-1\nvoluntary_ctxt_switches:\t12\n")
MEMINFO = ("Node 0 MemTotal:       65843396 kB\nNode 0 MemFree:        61234567 kB\n"
           "Node 0 HugePages_Total:     0\n")
SYSFS_VALUES = ["4: ACTIVE\n", "5: LinkUp\n", "1: DOWN\n", "3: Disabled\n", "400 Gb/sec (4X NDR)\n",
                "2.5 Gb/sec (1X SDR)\n", "100 Mb/sec\n", "10 Gb/sec (1X QDR)\n", "32.0 GT/s PCIe\n",
                "Unknown\n", "2.5 GT/s PCIe\n", "InfiniBand\n", "Ethernet\n", "Unspecified\n", MEMINFO,
                STATUS, "0000:1b:00.0", "10000:e0:1f.7", "pci0000:15", "pci10000:e0", "ACTIVE", "fast"]

UUIDS = "GPU-0a1b2c3d-1111-2222-3333-444455556666"


def cvd(num: int, known: int, value: str) -> bytes:
    return bytes([num, known & 0xff, known >> 8]) + value.encode()


CUDA_VISIBLE = [cvd(8, 0xffff, "0,1,2,3"), cvd(8, 0, "3,2,1,0"), cvd(4, 0x000f, "GPU-0a1b2c3d"),
                cvd(4, 0x000f, UUIDS + ",1"), cvd(8, 0xffff, "MIG-0a1b2c3d-1111-2222-3333-444455556666"),
                cvd(8, 0xffff, ""), cvd(4, 0xffff, "7"), cvd(4, 0xffff, "-1"), cvd(4, 0xffff, "0,,1"),
                cvd(16, 0xffff, "GPU-a"), cvd(16, 0xffff, "GPU-1,GPU-10"), cvd(2, 0, "GPU-0a1b2c3d"),
                cvd(8, 0xffff, " 2 , 0 "), cvd(8, 0xffff, "0,0"), cvd(1, 1, "0,1")]

LAUNCHER = [
    "LOCAL_RANK=3\nLOCAL_WORLD_SIZE=8\n",
    "OMPI_COMM_WORLD_LOCAL_RANK=1\nOMPI_COMM_WORLD_LOCAL_SIZE=4\n",
    "MPI_LOCALRANKID=0\nMPI_LOCALNRANKS=2\n",
    "PMI_LOCAL_RANK=5\nPMI_LOCAL_SIZE=8\n",
    "SLURM_LOCALID=1\nSLURM_NODEID=1\nSLURM_STEP_TASKS_PER_NODE=4(x2),3\n",
    "SLURM_LOCALID=2\nSLURM_TASKS_PER_NODE=8(x3)\n",
    "SLURM_LOCALID=0\nSLURM_NTASKS_PER_NODE=8\n",
    "SLURM_LOCALID=0\nSLURM_NODEID=0\nSLURM_TASKS_PER_NODE=1\nOMPI_COMM_WORLD_LOCAL_RANK=2\n"
    "OMPI_COMM_WORLD_LOCAL_SIZE=4\n",
    "LOCAL_RANK=5\nLOCAL_WORLD_SIZE=8\nSLURM_LOCALID=0\nSLURM_STEP_TASKS_PER_NODE=1\n",
    "LOCAL_RANK=-1\n", "LOCAL_RANK=abc\n", "LOCAL_RANK=4\nLOCAL_WORLD_SIZE=4\n",
    "LOCAL_RANK=1(x2)\n", "MPI_LOCALNRANKS=3\nSLURM_NTASKS_PER_NODE=2\n",
    "SLURM_LOCALID=1\nSLURM_NODEID=3\nSLURM_STEP_TASKS_PER_NODE=4(x2),3\n",
    "SLURM_LOCALID=0\nSLURM_STEP_TASKS_PER_NODE=2(x99999999999)\n",
    "SLURM_LOCALID=0\nSLURM_NODEID=x\nSLURM_TASKS_PER_NODE=2,4\n",
    "LOCAL_WORLD_SIZE=0\n", "",
]

ENV_PLAN = [
    "", "CUDA_VISIBLE_DEVICES=3,0\nNCCL_IB_HCA=mlx5_9\nNUMABIND_OPTIONS=node,bind,2,0,0\n",
    "NVSHMEM_HCA_LIST=mlx5_0:1,mlx5_1:1\nNUMABIND_OPTIONS=exclusive,preferred,0,0,1\n",
    "UCX_NET_DEVICES=all\nNVSHMEM_ENABLE_NIC_PE_MAPPING=0\n",
    "CUDA_VISIBLE_DEVICES=GPU-0a1b2c3d\n", "CUDA_VISIBLE_DEVICES=MIG-0a1b2c3d\n",
    "CUDA_VISIBLE_DEVICES=\n", "CUDA_VISIBLE_DEVICES=9\n",
    "NUMABIND_FSROOT=tree/sys\n", "NUMABIND_FSROOT=missing\n", "NUMABIND_FSROOT=\n",
    "NUMABIND_OPTIONS=core-complex,interleave,5,1,0\n", "NUMABIND_OPTIONS=none,local,1,0,0\n",
    "NUMABIND_OPTIONS=socket,fast\n",
    # a node-wide NVSHMEM_HCA_LIST taken as the candidates, an exclusion, an
    # entry naming no NIC; EP_NIC_NAME kept
    "NVSHMEM_HCA_LIST=mlx5_0:1,mlx5_2:1\n", "NVSHMEM_HCA_LIST=^mlx5_0\n",
    "NVSHMEM_HCA_LIST=mlx5_0:1,mlx5_9\nNUMABIND_OPTIONS=exclusive,bind,4,0,0\n", "EP_NIC_NAME=mlx5_0\n",
]


def rec(op: int, path: str, payload: bytes | str = b"") -> bytes:
    p = path.encode()
    data = payload.encode() if isinstance(payload, str) else payload
    return bytes([op, len(p)]) + p + bytes([len(data)]) + data


BDF_GPU = "sys/bus/pci/devices/0000:03:00.0"
SYSFS_TREE = [
    rec(0, "0000:03:00.0/numa_node", "-1\n"), rec(3, "0000:03:00.0/numa_node"),
    rec(0, "0000:81:00.0/numa_node", "x\n"), rec(0, "node/node0/distance", "10 2"),
    rec(0, "node/node1/distance", "10 21 31 41\n"), rec(2, "node/node0/distance", b"\x03"),
    rec(0, "system/cpu/online", "\n"), rec(3, "system/cpu/online"), rec(0, "system/node/online", "0-1,3,9\n"),
    rec(0, "cpu0/topology/core_cpus_list", "0-"), rec(0, "cpu1/cache/index3/level", "three\n"),
    rec(0, "0000:06:00.0/local_cpulist", "0-3,8\n"), rec(3, "0000:06:00.0/local_cpulist") +
    rec(0, "0000:06:00.0/local_cpus", "f0\n"), rec(0, "0000:07:00.0/class", "0x03020\n"),
    rec(0, "0000:07:00.0/vendor", "zz\n"), rec(0, "mlx5_0/ports/1/state", "ACTIVE\n"),
    rec(0, "mlx5_0/ports/1/rate", "fast\n"), rec(0, "mlx5_0/ports/2/link_layer", "Omni-Path\n"),
    rec(0, "proc/self/status", "Name:\tx\nCpus_allowed_list:\t\nMems_allowed_list:\t0\n"),
    rec(2, "proc/self/status", b"\x40"), rec(0, "sys/fs/cgroup/job/cpuset.cpus.effective", "9-12\n"),
    rec(0, "proc/self/cgroup", "0::/missing\n"), rec(0, "numabind/gpu-uuids", "0000:03:00.0 NOT-A-UUID\n"),
    rec(4, BDF_GPU), rec(6, BDF_GPU), rec(5, "0000:06:00.0/numa_node"),
    rec(3, "sys/bus/pci/devices/0000:00:05.0"), rec(4, "infiniband/mlx5_0/device"),
    rec(3, "infiniband/rxe0/parent") + rec(3, "ports/1/gid_attrs/ndevs/0"),
    rec(0, "0000:81:00.0/max_link_speed", "Unknown\n"), rec(1, "node/node3/cpulist", "1\n"),
    rec(7, "", "4,0") + rec(0, "0000:c0:00.0/numa_node", "1\n"), rec(7, "", "GPU-9f8e7d6c"),
    rec(0, "node/node0/cpulist", "0-1,4-5,2\n") + rec(0, "node/node1/cpulist", "2-3,6\n"),
    rec(0, "system/cpu/online", "0-8191\n"), b"",
    # Files older kernels and capture tools write only as masks, or not at all
    # (issue 15): the _list files deleted, so that the mask readers run.
    rec(3, "cpu0/cache/index3/shared_cpu_list"),
    rec(3, "cpu0/cache/index3/shared_cpu_list") + rec(0, "cpu0/cache/index3/shared_cpu_map", "zz,1\n"),
    rec(3, "cpu2/cache/index3/shared_cpu_list") + rec(0, "cpu2/cache/index3/shared_cpu_map", "1,00000000\n"),
    rec(3, "cpu1/topology/core_cpus_list") + rec(3, "cpu1/topology/thread_siblings_list") +
    rec(3, "cpu1/topology/core_cpus"),
    rec(3, "cpu0/topology/core_cpus_list") + rec(3, "cpu0/topology/thread_siblings_list") +
    rec(0, "cpu0/topology/core_cpus", "ffffffff,ffffffff,1\n"),
    rec(0, "cpu0/topology/physical_package_id", "-1\n") + rec(3, "cpu0/topology/package_cpus_list") +
    rec(0, "cpu0/topology/package_cpus", "3\n"),
    rec(0, "cpu2/topology/physical_package_id", "-1\n") + rec(3, "cpu2/topology/package_cpus_list") +
    rec(3, "cpu2/topology/package_cpus") + rec(3, "cpu2/topology/core_siblings_list") +
    rec(0, "cpu2/topology/core_siblings", ",\n"),
    rec(3, "system/cpu/online") + rec(0, "cpu3/online", "0\n"),
    rec(3, "system/cpu/online") + rec(0, "cpu5/online", "yes\n"),
    rec(3, "node/node1/cpulist") + rec(0, "node/node1/cpumap", "c,0000000c\n"),
    rec(3, "node/node1/cpulist") + rec(3, "node/node1/cpumap"),
    rec(0, "node/node1/cpulist", "0-7\n"), rec(0, "cpu0/cache/index3/shared_cpu_list", "4\n"),
    rec(3, "proc/self/status"),
    rec(3, "proc/self/status") + rec(0, "sys/fs/cgroup/job/cpuset.cpus.effective", "3\n"),
]

SETS = {"cpulist": CPULIST, "cpumask": CPUMASK, "sysfs_values": SYSFS_VALUES, "cuda_visible": CUDA_VISIBLE,
        "launcher_env": LAUNCHER, "env_plan": ENV_PLAN, "sysfs_tree": SYSFS_TREE}


def main() -> None:
    for target, seeds in SETS.items():
        d = CORPUS / target
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for s in seeds:
            data = s.encode() if isinstance(s, str) else s
            # libFuzzer's own naming: the SHA-1 of the content
            (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
        print(f"{target}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
