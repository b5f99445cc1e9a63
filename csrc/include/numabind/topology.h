/* numabind: the topology of one machine, read from sysfs, libnuma,
 * libibverbs and NVML.
 *
 *   nmb_topology_t *topo;
 *   int err = nmb_topology_create(&topo, NULL, 0);   // this host
 *   if (err < 0) fprintf(stderr, "%s: %s\n", nmb_strerror(err), nmb_last_error());
 *   for (int g = 0; g < nmb_topology_num_gpus(topo); g++) ...
 *   nmb_topology_destroy(topo);
 *
 * Every file is read below one root: `fsroot` when given, else the
 * environment's NUMABIND_FSROOT, else "/". Under a root other than "/", NVML
 * and libibverbs are not consulted (they would describe the real host), the
 * process's allowed sets come from <root>/proc/self/status and the cgroup
 * files below the root, and GPU UUIDs from <root>/numabind/gpu-uuids when
 * that file exists.
 *
 * A topology is immutable once created. Every pointer an accessor returns
 * stays valid until nmb_topology_destroy(). Indices are positions in the
 * topology's own lists; `id` fields are the kernel's numbers.
 */
#ifndef NUMABIND_TOPOLOGY_H
#define NUMABIND_TOPOLOGY_H

#include "numabind/bitmap.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nmb_topology nmb_topology_t;

/* Flags for nmb_topology_create. */
enum {
    /* Keep the list of every path read (nmb_topology_num_files), so that a
     * machine can be captured and replayed (numabind gather). */
    NMB_TOPOLOGY_RECORD_FILES = 1u << 0,
    /* Do not load NVML / libibverbs even on the real host. */
    NMB_TOPOLOGY_NO_NVML = 1u << 1,
    NMB_TOPOLOGY_NO_VERBS = 1u << 2,
    /* Ignore CUDA_VISIBLE_DEVICES and which GPUs the process can open: every
     * GPU visible, in PCI order (the machine rather than one process's view
     * of it, as numabind gather captures it). */
    NMB_TOPOLOGY_ALL_GPUS = 1u << 3,
    /* On the live host, ask NVML which GPUs NVLink joins (nmb_topology_gpu_link):
     * nvmlInit costs tens of milliseconds, so only `numabind show` asks. */
    NMB_TOPOLOGY_NVLINK = 1u << 4,
    /* Read only what a plan reads (pin_rank and the numabind command's
     * plan, env and exec do): no core_id (-1), no PCI link (link_width -1,
     * link_speed_gts 0), numa_node only for GPUs and RDMA NICs and
     * local_cpus only for GPUs (-1 / empty for every other function and
     * host bridge), no vendor, device or class (0) of a function other
     * functions sit below (a bridge; is_bridge 1), no NIC port phys_state
     * (0) and no netdev of a PCI NIC (NULL). Plans are the same as from a
     * full read; what `numabind show` prints is not. */
    NMB_TOPOLOGY_PLAN_ONLY = 1u << 5,
};

/* Reads the machine. Returns 0 and a handle to free with
 * nmb_topology_destroy(), or:
 *   -ENOENT  the root or a file every Linux has (node/online, cpu/online) is missing
 *   -EINVAL  a malformed value, or CUDA_VISIBLE_DEVICES names no GPU
 *            (nmb_last_error() quotes it)
 *   -ENOMEM, -EIO, -ELOOP as the system reports them. */
NMB_EXPORT int nmb_topology_create(nmb_topology_t **out, const char *fsroot, unsigned flags);
/* Frees a topology; NULL is a no-op. */
NMB_EXPORT void nmb_topology_destroy(nmb_topology_t *topo);

/* The root the topology was read below ("/" for the live host). */
NMB_EXPORT const char *nmb_topology_fsroot(const nmb_topology_t *topo);
/* 1 when read from the live host (root "/"), 0 under a fixture root. */
NMB_EXPORT int nmb_topology_is_live(const nmb_topology_t *topo);

/* ---- NUMA nodes ---------------------------------------------------------- */

typedef struct nmb_node {
    int id;                   /* kernel node number */
    int has_cpus;             /* 0 for CPU-less nodes (GPU memory on Grace machines) */
    uint64_t mem_total_bytes; /* MemTotal of the node, 0 when unknown */
    nmb_bitmap_t cpus;        /* online CPUs of the node */
    const int *distances;     /* num_nodes entries, by node index (SLIT, 10 = local) */
} nmb_node_t;

NMB_EXPORT int nmb_topology_num_nodes(const nmb_topology_t *topo);
NMB_EXPORT const nmb_node_t *nmb_topology_node(const nmb_topology_t *topo, int index);
/* The index of node `id`, or -ENOENT. */
NMB_EXPORT int nmb_topology_node_index(const nmb_topology_t *topo, int id);

/* ---- CPUs ---------------------------------------------------------------- */

typedef struct nmb_cpu {
    int id;      /* kernel CPU number */
    int node;    /* node id, -1 when no node lists it */
    int package; /* physical_package_id */
    int die;     /* die_id, 0 when absent */
    int core_id; /* the kernel's core_id (unique within a package only) */
    int core;    /* index into the topology's cores (SMT siblings share it) */
    int l3;      /* index into the topology's L3 domains, -1 when none */
} nmb_cpu_t;

/* A physical core: its SMT siblings. */
typedef struct nmb_core {
    int package;
    int node;
    nmb_bitmap_t cpus;
} nmb_core_t;

/* A last-level (L3) cache domain. */
typedef struct nmb_cache {
    int level;
    nmb_bitmap_t cpus;
} nmb_cache_t;

/* Online CPUs, in id order. */
NMB_EXPORT int nmb_topology_num_cpus(const nmb_topology_t *topo);
NMB_EXPORT const nmb_cpu_t *nmb_topology_cpu(const nmb_topology_t *topo, int index);
/* The index of CPU `id`, or -ENOENT (offline or absent). */
NMB_EXPORT int nmb_topology_cpu_index(const nmb_topology_t *topo, int id);
NMB_EXPORT int nmb_topology_num_cores(const nmb_topology_t *topo);
NMB_EXPORT const nmb_core_t *nmb_topology_core(const nmb_topology_t *topo, int index);
NMB_EXPORT int nmb_topology_num_l3(const nmb_topology_t *topo);
NMB_EXPORT const nmb_cache_t *nmb_topology_l3(const nmb_topology_t *topo, int index);

NMB_EXPORT const nmb_bitmap_t *nmb_topology_online_cpus(const nmb_topology_t *topo);
/* What the process may use, and so what plans are made from: the online
 * CPUs of its cpuset, which is what it may widen its affinity to, not the
 * affinity itself. So a rank that a launcher bound already (mpirun, srun
 * --cpu-bind, taskset, an outer numabind exec) plans from the same set as an
 * unbound one. On the live host the kernel says (a short-lived thread asks
 * sched_setaffinity for every online CPU and reads back what the cpuset
 * granted); where it refuses, and under a root, the cgroup's files: v2
 * cpuset.cpus.effective of the process's group or the nearest ancestor that
 * has one, else v1's /sys/fs/cgroup/cpuset/<group>/cpuset.effective_cpus
 * (cpuset.cpus); the affinity where none is readable or the one read does
 * not hold it. Memory nodes: Mems_allowed of /proc/self/status, within the
 * cgroup's cpuset.mems. Under a root, <root>/proc/self/status's
 * Cpus_allowed_list stands for the affinity; a tree without
 * <root>/proc/self/status (hwloc-gather-topology saves none) takes the
 * cgroup's cpuset where it has one, else every online CPU, and its memory
 * nodes from the cgroup's cpuset.mems, else every node
 * (nmb_topology_allowed_source says which). */
NMB_EXPORT const nmb_bitmap_t *nmb_topology_allowed_cpus(const nmb_topology_t *topo);
/* The calling thread's CPU affinity when the topology was read (under a
 * root: Cpus_allowed_list), online CPUs only; within the allowed CPUs. */
NMB_EXPORT const nmb_bitmap_t *nmb_topology_affinity_cpus(const nmb_topology_t *topo);
NMB_EXPORT const nmb_bitmap_t *nmb_topology_allowed_mems(const nmb_topology_t *topo);

/* Where the allowed CPUs came from. */
typedef enum nmb_allowed_source {
    NMB_ALLOWED_KERNEL = 1,   /* live host: the cpuset as the kernel granted it */
    NMB_ALLOWED_CGROUP = 2,   /* the cgroup's cpuset files (v2 or v1) */
    NMB_ALLOWED_AFFINITY = 3, /* no cpuset readable: the affinity (under a root,
                                 proc/self/status Cpus_allowed_list) */
    NMB_ALLOWED_ONLINE = 4,   /* under a root with neither proc/self/status nor a
                                 cgroup cpuset: every online CPU, which plans
                                 then say in every rank's note */
} nmb_allowed_source_t;

/* The enum nmb_allowed_source value of `topo`, or -EINVAL for NULL. */
NMB_EXPORT int nmb_topology_allowed_source(const nmb_topology_t *topo);
/* "kernel", "cgroup", "affinity", "online"; "?" for anything else. Static
 * storage. */
NMB_EXPORT const char *nmb_allowed_source_name(int source);

/* ---- PCI ----------------------------------------------------------------- */

/* A host bridge (root complex): the "pciDDDD:BB" directory in sysfs. Under
 * Hyper-V every passed-through function has one of its own. */
typedef struct nmb_host_bridge {
    const char *name; /* "pci0000:15" */
    const char *path; /* sysfs path below the root, "/sys/devices/pci0000:15" */
    int numa_node;    /* of its functions; -1 when unknown */
} nmb_host_bridge_t;

typedef struct nmb_pci_function {
    const char *address;     /* "dddd:bb:dd.f" */
    const char *path;        /* sysfs path below the root */
    unsigned domain, bus, dev, fn;
    unsigned vendor, device; /* 0x10de, 0x2330 */
    unsigned class_code;     /* 0x030200 */
    int numa_node;           /* -1 when the kernel does not know; never guessed */
    int parent;              /* index of the upstream bridge function, -1 under the host bridge */
    int host_bridge;         /* index into host bridges */
    int depth;               /* functions between it and its host bridge */
    int is_bridge;           /* class 0x0604xx */
    int link_width;          /* max_link_width, -1 when unknown */
    double link_speed_gts;   /* max_link_speed in GT/s, 0 when unknown */
    nmb_bitmap_t local_cpus; /* local_cpulist */
} nmb_pci_function_t;

/* Every PCI function, sorted by address. */
NMB_EXPORT int nmb_topology_num_pci(const nmb_topology_t *topo);
NMB_EXPORT const nmb_pci_function_t *nmb_topology_pci(const nmb_topology_t *topo, int index);
/* The index of the function at `address` ("dddd:bb:dd.f"), or -ENOENT. */
NMB_EXPORT int nmb_topology_pci_index(const nmb_topology_t *topo, const char *address);
NMB_EXPORT int nmb_topology_num_host_bridges(const nmb_topology_t *topo);
NMB_EXPORT const nmb_host_bridge_t *nmb_topology_host_bridge(const nmb_topology_t *topo, int index);

/* ---- GPUs ---------------------------------------------------------------- */

typedef struct nmb_gpu {
    int index;           /* CUDA ordinal among the visible GPUs */
    int physical_index;  /* position among all the machine's GPUs (PCI order) */
    int pci;             /* index into PCI functions */
    const char *address; /* "dddd:bb:dd.f" */
    int numa_node;       /* -1 when unknown */
    const char *uuid;    /* "GPU-..." from NVML, NULL when unknown */
    int accessible;      /* 1 when this process can open it (see nmb_topology_num_gpus) */
    int minor;           /* N of its /dev/nvidiaN from the driver's procfs, -1 when unknown */
} nmb_gpu_t;

/* The GPUs CUDA will show this process: the NVIDIA display/3D controllers
 * it can open, in CUDA's order (PCI address order; identical GPUs are ordered
 * so by CUDA's fastest-first rule too), filtered and ordered by
 * CUDA_VISIBLE_DEVICES (indices, or GPU-<uuid> prefixes).
 *
 * "Can open": inside a container made by libnvidia-container (Docker --gpus,
 * the Kubernetes NVIDIA device plugin, enroot/pyxis) sysfs shows every GPU of
 * the machine but the driver's /proc/driver/nvidia/gpus lists only the
 * container's, and only their /dev/nvidia<minor> nodes exist: a GPU is
 * accessible when that directory lists it and its node exists. Where the
 * directory is absent every GPU is accessible; where no listed GPU has a
 * node yet, nodes decide nothing. Under a root, <root>/proc/driver/nvidia/gpus
 * and <root>/dev/nvidia<minor> (any file) are read the same way. */
NMB_EXPORT int nmb_topology_num_gpus(const nmb_topology_t *topo);
NMB_EXPORT const nmb_gpu_t *nmb_topology_gpu(const nmb_topology_t *topo, int index);
/* Every NVIDIA GPU of the machine, visible or not, accessible or not, in PCI
 * order. With NMB_TOPOLOGY_ALL_GPUS every one is accessible and visible. */
NMB_EXPORT int nmb_topology_num_all_gpus(const nmb_topology_t *topo);
NMB_EXPORT const nmb_gpu_t *nmb_topology_all_gpu(const nmb_topology_t *topo, int index);

/* ---- RDMA NICs ----------------------------------------------------------- */

enum nmb_link_layer {
    NMB_LINK_UNSPECIFIED = 0,
    NMB_LINK_INFINIBAND = 1,
    NMB_LINK_ETHERNET = 2,
};

/* Port states as libibverbs numbers them (enum ibv_port_state). */
enum nmb_port_state {
    NMB_PORT_NOP = 0,
    NMB_PORT_DOWN = 1,
    NMB_PORT_INIT = 2,
    NMB_PORT_ARMED = 3,
    NMB_PORT_ACTIVE = 4,
    NMB_PORT_ACTIVE_DEFER = 5,
};

typedef struct nmb_nic_port {
    int port;            /* 1-based */
    int state;           /* enum nmb_port_state */
    int phys_state;      /* 5 = LinkUp */
    int link_layer;      /* enum nmb_link_layer */
    double rate_gbps;    /* 0 when unknown */
    const char *rate;    /* as sysfs prints it, "400 Gb/sec (4X NDR)" */
} nmb_nic_port_t;

typedef struct nmb_nic {
    const char *name;    /* "mlx5_0", "rxe0" */
    int pci;             /* index into PCI functions, -1 when none */
    const char *address; /* "dddd:bb:dd.f", NULL when none */
    int numa_node;       /* the PCI function's, -1 when unknown */
    const char *netdev;  /* first netdev on the device, NULL when none */
    int is_virtual;      /* soft-RoCE / siw: tied to PCI through its netdev */
    int from_verbs;      /* 1 when libibverbs listed it and gave the port attributes */
    int num_ports;
    const nmb_nic_port_t *ports;
} nmb_nic_t;

/* Every device of /sys/class/infiniband, sorted by PCI address (devices
 * with none last, by name). */
NMB_EXPORT int nmb_topology_num_nics(const nmb_topology_t *topo);
NMB_EXPORT const nmb_nic_t *nmb_topology_nic(const nmb_topology_t *topo, int index);
/* The index of NIC `name`, or -ENOENT. */
NMB_EXPORT int nmb_topology_nic_index(const nmb_topology_t *topo, const char *name);

/* ---- GPU-NIC distance ---------------------------------------------------- */

/* The classes `nvidia-smi topo -m` prints, closest first. */
typedef enum nmb_distance {
    NMB_DIST_PIX = 1,  /* at most one PCIe switch between them */
    NMB_DIST_PXB = 2,  /* several PCIe bridges, no host bridge */
    NMB_DIST_PHB = 3,  /* through one host bridge */
    NMB_DIST_NODE = 4, /* between host bridges of one NUMA node */
    NMB_DIST_SYS = 5,  /* across NUMA nodes, or locality unknown */
} nmb_distance_t;

/* The class between visible GPU `gpu` and NIC `nic` (indices), or -EINVAL
 * for an index out of range. */
NMB_EXPORT int nmb_topology_distance(const nmb_topology_t *topo, int gpu, int nic);
/* The PCI class between visible GPUs `a` and `b` (NMB_DIST_*), or -EINVAL. */
NMB_EXPORT int nmb_topology_gpu_distance(const nmb_topology_t *topo, int a, int b);
/* NVLinks between visible GPUs `a` and `b`, as `nvidia-smi topo -m` counts
 * them (NV#): links joining the two directly, else, where both reach
 * NVSwitches, the fewer of their switch links; 0 when none. -ENODATA when
 * not known: no NMB_TOPOLOGY_NVLINK, under a root, or NVML absent; -EINVAL
 * for an index out of range. */
NMB_EXPORT int nmb_topology_gpu_link(const nmb_topology_t *topo, int a, int b);
/* "PIX", ..., "SYS"; "?" for anything else. Static storage. */
NMB_EXPORT const char *nmb_distance_name(int distance);

/* ---- Capture ------------------------------------------------------------- */

/* With NMB_TOPOLOGY_RECORD_FILES: every path read, listed or resolved, below
 * the root and starting with '/', in the order first touched. */
NMB_EXPORT int nmb_topology_num_files(const nmb_topology_t *topo);
NMB_EXPORT const char *nmb_topology_file(const nmb_topology_t *topo, int index);

#ifdef __cplusplus
}
#endif

#endif /* NUMABIND_TOPOLOGY_H */
