/* numabind: plan each local rank's CPUs, memory and NIC, and apply one
 * rank's plan to the calling process.
 *
 *   nmb_plan_options_t opts;
 *   nmb_plan_options_init(&opts);            // exclusive CPUs, preferred memory
 *   nmb_plan_t *plan;
 *   if (nmb_plan_create(&plan, topo, &opts) == 0) {
 *       int rank;
 *       if (nmb_local_rank_from_env(&rank, NULL) == 0)
 *           nmb_plan_apply(plan, rank, NMB_APPLY_EXPORT_ENV, NULL);
 *       nmb_plan_destroy(plan);
 *   }
 *
 * A plan is pure: computed from the topology, the options and the
 * environment's NIC variables alone, so every rank of a node computes the
 * same plan without talking to the others.
 */
#ifndef NUMABIND_PLAN_H
#define NUMABIND_PLAN_H

#include "numabind/topology.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nmb_cpu_policy {
    NMB_CPU_EXCLUSIVE = 0,    /* the GPU node's allowed CPUs split evenly and disjointly
                                 among the ranks on that node, whole cores each */
    NMB_CPU_NODE = 1,         /* every allowed CPU of the GPU's node, shared */
    NMB_CPU_SOCKET = 2,       /* every allowed CPU of the GPU's package(s), shared */
    NMB_CPU_CORE_COMPLEX = 3, /* one L3 domain per rank where there are enough, else exclusive */
    NMB_CPU_NONE = 4,         /* leave CPU affinity alone */
} nmb_cpu_policy_t;

typedef enum nmb_mem_policy {
    NMB_MEM_PREFERRED = 0,  /* MPOL_PREFERRED on the rank's node: falls back, never OOM-kills */
    NMB_MEM_BIND = 1,       /* MPOL_BIND to the rank's node */
    NMB_MEM_INTERLEAVE = 2, /* MPOL_INTERLEAVE over every allowed memory node */
    NMB_MEM_LOCAL = 3,      /* MPOL_LOCAL: the node of the CPU that touches the page */
    NMB_MEM_DEFAULT = 4,    /* leave the memory policy alone (chosen when locality is unknown) */
} nmb_mem_policy_t;

typedef struct nmb_plan_options {
    int cpu_policy;           /* nmb_cpu_policy_t */
    int mem_policy;           /* nmb_mem_policy_t */
    int local_world_size;     /* ranks on this node; 0: one per visible GPU */
    const int *rank_gpus;     /* visible GPU index of each rank (local_world_size entries),
                                 -1 for "visible GPU r" (NULL: every rank r drives GPU r) */
    int reserve_cores;        /* cores per NUMA node held back for the OS and data loaders */
    int override_env;         /* replace NIC variables the user already set */
} nmb_plan_options_t;

/* Fills the defaults: exclusive CPUs, preferred memory, one rank per visible
 * GPU, nothing reserved, user NIC variables kept. */
NMB_EXPORT void nmb_plan_options_init(nmb_plan_options_t *opts);

/* One environment variable a rank exports. */
typedef struct nmb_env_var {
    const char *name;
    const char *value;     /* what numabind would export */
    const char *user;      /* the value already in the environment, NULL when unset */
    int kept;              /* 1: the user's value stays (set and not overridden) */
} nmb_env_var_t;

typedef struct nmb_rank_plan {
    int local_rank;
    int gpu;                  /* visible GPU index (CUDA ordinal), -1 when the node has none */
    const char *gpu_address;  /* NULL without a GPU */
    int numa_node;            /* the rank's CPU node; -1 when locality is unknown */
    nmb_bitmap_t cpus;        /* with NMB_CPU_NONE: the allowed set, left unchanged */
    nmb_bitmap_t mems;
    int cpu_policy, mem_policy;
    const char *nic;          /* NULL when no RDMA NIC serves it */
    int nic_port;             /* 0 when no NIC */
    int distance;             /* nmb_distance_t between GPU and NIC, 0 when either is missing */
    int num_env;
    const nmb_env_var_t *env;
    const char *note;         /* why fallbacks were taken ("; " between them), or NULL: a GPU
                                 without a NUMA node, on a CPU-less node, SMT siblings split,
                                 a node-wide NVSHMEM_HCA_LIST taken as the candidates */
    int num_hcas;             /* every compute NIC as close to the GPU as `nic` under one
                                 PCIe switch (PIX/PXB), `nic` among them; 0 when no NIC */
    const char *const *hcas;  /* "name:port" each, PCI order */
} nmb_rank_plan_t;

typedef struct nmb_plan nmb_plan_t;

/* Plans every local rank. Returns 0 and a plan to free with
 * nmb_plan_destroy(), or -EINVAL (bad options, a rank without a GPU, more
 * ranks than CPUs, an empty intersection with the allowed set, an
 * NVSHMEM_HCA_LIST naming no NIC of this node), with nmb_last_error() naming
 * the value. The plan does not keep `topo`.
 *
 * A node where CUDA would show this process no GPU (none in sysfs,
 * CUDA_VISIBLE_DEVICES='', a container given none, AMD GPUs only) has no
 * rank to place: the plan has 0 ranks and nmb_plan_note() says why. */
NMB_EXPORT int nmb_plan_create(nmb_plan_t **out, const nmb_topology_t *topo,
                               const nmb_plan_options_t *opts);
/* Why the plan has no ranks (static to the plan), or NULL when it has some. */
NMB_EXPORT const char *nmb_plan_note(const nmb_plan_t *plan);
/* Frees a plan; NULL is a no-op. */
NMB_EXPORT void nmb_plan_destroy(nmb_plan_t *plan);
NMB_EXPORT int nmb_plan_num_ranks(const nmb_plan_t *plan);
/* Rank `local_rank`'s plan, or NULL when out of range. Valid until destroy. */
NMB_EXPORT const nmb_rank_plan_t *nmb_plan_rank(const nmb_plan_t *plan, int local_rank);

/* What a person knows and the plan cannot, for one rank: NULL (or -1)
 * keeps the plan's value. */
typedef struct nmb_rank_override {
    const nmb_bitmap_t *cpus; /* the rank's CPUs: non-empty, within the allowed CPUs */
    const nmb_bitmap_t *mems; /* its memory nodes: non-empty, allowed memory nodes */
    int mem_policy;           /* nmb_mem_policy_t for `mems`; -1: the plan's (preferred takes
                                 one node; default and local take none) */
    const char *nic;          /* "mlx5_3" or "mlx5_3:2": an RDMA NIC of this node (port: the
                                 first ACTIVE one when not named); its variables re-exported */
} nmb_rank_override_t;

/* Fills an override that changes nothing. */
NMB_EXPORT void nmb_rank_override_init(nmb_rank_override_t *ov);
/* Replaces rank `local_rank`'s CPUs, memory nodes (and policy) or NIC, after
 * checking each against `topo` (the topology the plan came from): -EINVAL
 * with nmb_last_error() naming the value (CPUs or nodes outside the allowed
 * sets, a NIC this node does not have, a port it lacks) and the plan
 * unchanged. Each replaced value is added to the rank's note ("CPUs 0-7
 * given"); a new NIC gets its distance class, `hcas` = that NIC, and every
 * NIC variable anew and never kept from the environment (NVSHMEM_HCA_LIST,
 * NVSHMEM_ENABLE_NIC_PE_MAPPING, UCX_NET_DEVICES, EP_NIC_NAME), NCCL_IB_HCA
 * the node's as planned. A mem_policy without mems is -EINVAL. Apply the
 * plan afterwards as usual. */
NMB_EXPORT int nmb_plan_override_rank(nmb_plan_t *plan, const nmb_topology_t *topo, int local_rank,
                                      const nmb_rank_override_t *ov);

/* The local rank from the launcher's environment. Each launcher's own
 * pair of variables, the innermost launcher first (a launcher started inside
 * another sets its variables while the outer one's stay inherited: an sbatch
 * script's SLURM_LOCALID=0 reaches every rank of an mpirun in it):
 *
 *   torchrun               LOCAL_RANK                  LOCAL_WORLD_SIZE
 *   Open MPI mpirun        OMPI_COMM_WORLD_LOCAL_RANK  OMPI_COMM_WORLD_LOCAL_SIZE
 *   MPICH/Intel MPI Hydra  MPI_LOCALRANKID             MPI_LOCALNRANKS
 *   HPE Cray PALS mpiexec  PMI_LOCAL_RANK              PMI_LOCAL_SIZE
 *   Slurm srun             SLURM_LOCALID               SLURM_STEP_TASKS_PER_NODE, else
 *                                                      SLURM_TASKS_PER_NODE ("4(x2),3", the
 *                                                      SLURM_NODEID-th count), else
 *                                                      SLURM_NTASKS_PER_NODE
 *
 * The first launcher whose rank variable is set gives the rank; its name
 * goes to *source (static storage) when not NULL. -ENOENT when none is set;
 * -EINVAL, with nmb_last_error() naming the variable and its value, when the
 * value is not a count, is above 1048576 (2^20, every count's limit), or is
 * not below that launcher's own local size. */
NMB_EXPORT int nmb_local_rank_from_env(int *rank, const char **source);
/* The number of local ranks from the same launcher as the rank (the table
 * above), or, when no rank variable is set, from the first launcher whose
 * size is set; *source names the variable read. -ENOENT when that launcher
 * gives no size (another launcher's size describes another job), -EINVAL
 * when a value is malformed, zero or above 1048576. */
NMB_EXPORT int nmb_local_world_size_from_env(int *size, const char **source);

enum {
    NMB_APPLY_EXPORT_ENV = 1u << 0, /* setenv() the rank's NIC variables (not the kept ones) */
    NMB_APPLY_MIGRATE = 1u << 1,    /* move pages already on other nodes to the rank's nodes */
};

typedef struct nmb_apply_report {
    int threads;       /* threads whose affinity was set */
    int scans;         /* passes over /proc/self/task until no new thread appeared */
    int mem_policy_set;
    long pages_migrated; /* -1 when not asked */
} nmb_apply_report_t;

/* Applies `local_rank`'s plan to the calling process: the CPU affinity of
 * every thread (re-scanning /proc/self/task until no new thread appears),
 * the calling thread's memory policy (threads it starts later inherit it),
 * optionally migration and the environment. Everything is read back. On any
 * failure, every thread's previous affinity and the previous memory policy
 * are restored and a negative errno is returned (-EPERM / -EINVAL as the
 * kernel reported, -EIO when a read-back disagrees), with nmb_last_error()
 * naming the step. Acts on the whole process: not reentrant. */
NMB_EXPORT int nmb_plan_apply(const nmb_plan_t *plan, int local_rank, unsigned flags,
                              nmb_apply_report_t *report);

/* The calling thread's memory policy as the kernel holds it: *policy is
 * an NMB_MEM_* value (NMB_MEM_DEFAULT for the process default; the kernel's
 * "preferred many" reads as NMB_MEM_PREFERRED, "weighted interleave" as
 * NMB_MEM_INTERLEAVE) and *nodes its nodes (empty for default and local).
 * -errno with nmb_last_error() when get_mempolicy fails. */
NMB_EXPORT int nmb_mempolicy_get(int *policy, nmb_bitmap_t *nodes);

/* "exclusive", "node", ...; "preferred", "bind", ... Static storage. */
NMB_EXPORT const char *nmb_cpu_policy_name(int policy);
NMB_EXPORT const char *nmb_mem_policy_name(int policy);
/* The policy named `name`, or -EINVAL. */
NMB_EXPORT int nmb_cpu_policy_from_name(const char *name);
NMB_EXPORT int nmb_mem_policy_from_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* NUMABIND_PLAN_H */
