/* Internal declarations shared by the core's source files. Not installed. */
#ifndef NUMABIND_INTERNAL_H
#define NUMABIND_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>

#include "numabind/numabind.h"

#define NMB_HIDDEN __attribute__((visibility("hidden")))

/* ---- errors (error.c) ---- */

/* Records a printf-style detail for nmb_last_error() and returns `err`
 * (a negative errno), so failing paths read `return nmb__fail(-EINVAL, ...)`. */
NMB_HIDDEN int nmb__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, for a bad value of environment variable `variable` (a string
 * with static storage), which nmb_last_error_variable() then returns. */
NMB_HIDDEN int nmb__fail_env(const char *variable, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
NMB_HIDDEN void nmb__clear_error(void);

/* ---- an arena that owns every string and array of one topology ---- */

typedef struct nmb_arena {
    struct nmb_arena_block *head;
} nmb_arena_t;

NMB_HIDDEN void *nmb__arena_alloc(nmb_arena_t *arena, size_t size);   /* zeroed */
NMB_HIDDEN char *nmb__arena_strdup(nmb_arena_t *arena, const char *s);
NMB_HIDDEN void nmb__arena_free(nmb_arena_t *arena);
/* Moves every block of `from` into `into` (from is left empty). */
NMB_HIDDEN void nmb__arena_take(nmb_arena_t *into, nmb_arena_t *from);

/* ---- files below the root (fs.c) ---- */

typedef struct nmb_fs {
    char root[PATH_MAX];   /* "" for the live host, else the real path of the fixture root */
    size_t root_len;
    int root_fd;           /* the root, opened once (-1 on the live host: paths are absolute) */
    int record;
    char **files;
    int num_files, cap_files;
    /* A directory entered (nmb__fs_enter): paths below at_path open
     * relative to at_fd, walking only what lies below it. */
    int at_fd;
    size_t at_len;
    char at_path[PATH_MAX];
    /* The last link directory and the last resolved path known to hold no
     * symbolic link from the root down (nmb__fs_resolve), and whether
     * openat2 is unavailable. */
    size_t verified_len, resolved_len;
    char verified[PATH_MAX], resolved[PATH_MAX];
    int no_openat2;
} nmb_fs_t;

/* Sets up reading below `fsroot` (NULL or "/" : the live host). -ENOENT when
 * the root does not exist. */
NMB_HIDDEN int nmb__fs_init(nmb_fs_t *fs, const char *fsroot, int record);
NMB_HIDDEN void nmb__fs_free(nmb_fs_t *fs);
NMB_HIDDEN int nmb__fs_live(const nmb_fs_t *fs);
/* Reads a whole small file (path absolute, as on the live host) into buf,
 * NUL-terminated, trailing white space kept. Returns its length or -errno;
 * -EOVERFLOW when the file does not fit in len - 1 bytes (never cut short). */
NMB_HIDDEN int nmb__fs_read(nmb_fs_t *fs, const char *path, char *buf, size_t len);
/* Convenience forms of nmb__fs_read; -EINVAL (detail names file and value)
 * when the content does not parse. */
NMB_HIDDEN int nmb__fs_read_long(nmb_fs_t *fs, const char *path, long *out);
NMB_HIDDEN int nmb__fs_read_hex(nmb_fs_t *fs, const char *path, unsigned long *out);
NMB_HIDDEN int nmb__fs_read_list(nmb_fs_t *fs, const char *path, nmb_bitmap_t *out);
/* The kernel's hex mask form ("ff,00000000"), for files that have no list
 * form on older kernels or in captures. */
NMB_HIDDEN int nmb__fs_read_mask(nmb_fs_t *fs, const char *path, nmb_bitmap_t *out);
/* `path` (a buffer of `len` bytes) names a list file; where it is missing,
 * the hex mask `mask` in the same directory is read instead and `path`
 * rewritten to name it, so that errors name the file read. Older kernels
 * (POWER9 on 4.14: cache shared_cpu_map only) and capture tools write only
 * the mask. -ENOENT when neither exists. */
NMB_HIDDEN int nmb__fs_read_list_or_mask(nmb_fs_t *fs, char *path, size_t len, const char *mask,
                                         nmb_bitmap_t *out);
/* Room for any CPU/node list or /proc/self/status of an 8192-CPU machine. */
#define NMB_LIST_MAX (64 * 1024)
/* Resolves every link of `path` inside the root; writes the resolved path,
 * below the root and starting with '/', to out. Returns 0 or -errno. */
NMB_HIDDEN int nmb__fs_realpath(nmb_fs_t *fs, const char *path, char *out, size_t len);
/* The same, and where `dir_fd` is not NULL an O_PATH descriptor of what it
 * resolved to (or -1 where the slow path was taken), for nmb__fs_enter.
 * Where only `path`'s last component is a link whose target (relative)
 * leads to a path without links, that takes one readlink and one openat2
 * (RESOLVE_NO_SYMLINKS, and RESOLVE_BENEATH under a root); anything else
 * (links further down, absolute targets, no openat2) goes through
 * realpath(), with the same results and errors. */
NMB_HIDDEN int nmb__fs_resolve(nmb_fs_t *fs, const char *path, char *out, size_t len, int *dir_fd);
/* Where `link` is a link with a relative target in a directory that holds
 * no link from the root down (checked once, with openat2): that target
 * joined to the directory as text, into `joined`. -1 otherwise, and when
 * recording or without openat2. Nothing past the directory is checked:
 * the path is the link's resolution only if no component of it is a link,
 * which nmb__fs_resolve_read has the kernel check. */
NMB_HIDDEN int nmb__fs_link_target(nmb_fs_t *fs, const char *link, char *joined, size_t len);
/* nmb__fs_resolve of `link` into out, then nmb__fs_read of file `name` in
 * it, where it can in one openat2 of the file in the link's target
 * (`target`, from nmb__fs_link_target, or NULL to read it here) that
 * refuses a link anywhere on the way: the file's length, or the error of
 * whichever step failed, as the two calls give it. `checked` (may be NULL)
 * is set to 1 when that openat2 opened it: then `out` and every directory
 * above it hold no link from the root down. */
NMB_HIDDEN int nmb__fs_resolve_read(nmb_fs_t *fs, const char *link, const char *target, char *out, size_t len,
                                    const char *name, char *buf, size_t buflen, int *checked);
/* Paths below directory `path` are opened relative to `fd` (taken over;
 * -1: `path` is opened here) until nmb__fs_leave or the next enter. Only
 * cuts the kernel's path walk: what is read, and every error, is unchanged. */
NMB_HIDDEN void nmb__fs_enter(nmb_fs_t *fs, const char *path, int fd);
NMB_HIDDEN void nmb__fs_leave(nmb_fs_t *fs);
/* Lists a directory's entries (no "." / ".."), sorted by name. *names is
 * malloc'd, each name too: free with nmb__fs_free_names. Returns the count
 * or -errno. */
NMB_HIDDEN int nmb__fs_list(nmb_fs_t *fs, const char *path, char ***names);
NMB_HIDDEN void nmb__fs_free_names(char **names, int count);
NMB_HIDDEN int nmb__fs_exists(nmb_fs_t *fs, const char *path);
/* When no detail was recorded for `err`, names the file whose read last
 * failed with it: one place makes every bare file error name its file. */
NMB_HIDDEN void nmb__fs_describe(const nmb_fs_t *fs, int err);
/* An error kept while other reads go on (each moves nmb_last_error() on),
 * to be given after them: the read by the CPU thread, a NIC's device
 * before the ports of the NICs ahead of it, a PCI function before the
 * bridges passed over ahead of it. nmb__keep_error takes `err` (0: none)
 * and its detail, naming the failed file where nothing named it yet, in
 * the thread that failed; nmb__kept_error makes it the calling thread's
 * error again and returns it (0 where none was kept). */
typedef struct {
    int err;
    char detail[1024];
} nmb_kept_error_t;
NMB_HIDDEN void nmb__keep_error(nmb_kept_error_t *k, const nmb_fs_t *fs, int err);
NMB_HIDDEN int nmb__kept_error(const nmb_kept_error_t *k);

/* ---- parsers of sysfs values (parse.c); every one is a fuzz target ---- */

/* "dddd:bb:dd.f" (a 4+ hex-digit domain) → parts; 0 or -EINVAL. */
NMB_HIDDEN int nmb__parse_pci_address(const char *text, unsigned *domain, unsigned *bus,
                                      unsigned *dev, unsigned *fn);
/* "pciDDDD:BB" host-bridge directory name → 1 when it is one, 0 otherwise. */
NMB_HIDDEN int nmb__is_host_bridge_name(const char *name);
/* "4: ACTIVE" → 4; -EINVAL when no leading number. */
NMB_HIDDEN int nmb__parse_state(const char *text);
/* "400 Gb/sec (4X NDR)" → 400.0; "2.5 Gb/sec" → 2.5; -1 when malformed. */
NMB_HIDDEN double nmb__parse_rate_gbps(const char *text);
/* "32.0 GT/s PCIe" → 32.0; "Unknown" or malformed → 0. */
NMB_HIDDEN double nmb__parse_link_speed(const char *text);
/* "InfiniBand" / "Ethernet" → enum nmb_link_layer. */
NMB_HIDDEN int nmb__parse_link_layer(const char *text);
/* Finds "Key:\tvalue" in a /proc status text; copies value (trimmed) into
 * out. Returns 0 or -ENOENT. */
NMB_HIDDEN int nmb__status_field(const char *status, const char *key, char *out, size_t len);
/* Kernel "Node N MemTotal:  123 kB" line of a node meminfo → bytes; -1 when absent. */
NMB_HIDDEN long long nmb__parse_meminfo_total(const char *text);
/* Trims trailing white space in place; returns s. */
NMB_HIDDEN char *nmb__rstrip(char *s);

/* CUDA_VISIBLE_DEVICES: resolves `text` against `num` GPUs (in CUDA order)
 * whose UUIDs are `uuids` (entries may be NULL when unknown). Writes up to
 * `num` indices into `order` and returns how many, or -EINVAL with a detail
 * quoting the entry that names no GPU. */
NMB_HIDDEN int nmb__parse_cuda_visible(const char *text, const char *const *uuids, int num,
                                       int *order);

/* ---- optional libraries loaded at run time ---- */

/* Calls fn(ctx, "dddd:bb:dd.f", "GPU-uuid") for every GPU NVML knows.
 * Returns the count, or a negative errno when NVML is absent or fails. */
NMB_HIDDEN int nmb__nvml_uuids(void (*fn)(void *ctx, const char *address, const char *uuid),
                               void *ctx);

/* Port attributes of RDMA device `name`, port `port`, from libibverbs.
 * Returns 0, -ENOENT when libibverbs is absent or does not list the device. */
typedef struct nmb_verbs_port {
    int state, phys_state, link_layer;
} nmb_verbs_port_t;
typedef struct nmb_verbs nmb_verbs_t;
NMB_HIDDEN nmb_verbs_t *nmb__verbs_open(void);     /* NULL when libibverbs is absent */
NMB_HIDDEN int nmb__verbs_query(nmb_verbs_t *v, const char *name, int port, nmb_verbs_port_t *out);
NMB_HIDDEN void nmb__verbs_close(nmb_verbs_t *v);

/* ---- system calls apply.c makes, replaceable by the C tests to inject a
 * failure at a chosen step (the kernel offers no way to make them fail on
 * demand). ---- */
#include <sched.h>
typedef struct nmb_sys {
    int (*setaffinity)(pid_t, size_t, const cpu_set_t *);
    int (*getaffinity)(pid_t, size_t, cpu_set_t *);
    long (*set_mempolicy)(int, const unsigned long *, unsigned long);
    long (*get_mempolicy)(int *, unsigned long *, unsigned long, void *, unsigned);
} nmb_sys_t;
NMB_HIDDEN extern nmb_sys_t nmb__sys;

/* ---- the topology (topology.c and its readers) ---- */

struct nmb_topology {
    nmb_arena_t arena;
    nmb_fs_t fs;
    const char *fsroot;
    unsigned flags; /* nmb_topology_create's */

    int num_nodes;
    nmb_node_t *nodes;
    int num_cpus;
    nmb_cpu_t *cpus;
    int num_cores;
    nmb_core_t *cores;
    int num_l3;
    nmb_cache_t *l3;
    nmb_bitmap_t online, allowed_cpus, allowed_mems;
    nmb_bitmap_t affinity;   /* the calling thread's, now (allowed_cpus: what it may widen to) */
    int allowed_source;      /* enum nmb_allowed_source: where allowed_cpus came from */

    int num_pci;
    nmb_pci_function_t *pci;
    int num_host_bridges;
    nmb_host_bridge_t *host_bridges;
    /* NMB_TOPOLOGY_PLAN_ONLY: 1 for the functions whose numa_node and local
     * CPUs were not read (not a GPU, not yet found to be an RDMA NIC); NULL
     * when every function's were. */
    unsigned char *pci_unlocated;

    int num_all_gpus;
    nmb_gpu_t *all_gpus;
    int num_accessible_gpus; /* all_gpus this process can open (topo_gpu.c) */
    int num_gpus;
    nmb_gpu_t *gpus;
    /* NVML's NVLinks (NMB_TOPOLOGY_NVLINK, live host): direct links between
     * all_gpus i and j at [i * num_all_gpus + j], and each GPU's links to
     * NVSwitches; NULL when not read. */
    int *nvlinks;
    int *nvswitch_links;

    int num_nics;
    nmb_nic_t *nics;
};

/* The online CPUs and the NUMA nodes; then (nmb__read_cpus) every online
 * CPU's package, die, core and L3, which reads nothing but cpu/cpuN and
 * sets only the cpus, cores and l3 arrays (so it may run in a thread of
 * its own while the rest is read: topology.c). */
NMB_HIDDEN int nmb__read_nodes(nmb_topology_t *t);
/* The RDMA devices' ports, read ahead of the NICs by whichever of the CPU
 * thread and the calling thread is free first (topology.c): the devices
 * are listed before the thread starts, and each thread claims the next
 * unread device until none is left. An entry whose ports failed stays
 * unread: the NIC read reads it again, in NIC order, and fails there. */
typedef struct {
    nmb_nic_port_t *ports;
    int num_ports;
    int read; /* 1 once its ports were read without error */
} nmb_ports_ahead_entry_t;
typedef struct {
    char **names; /* the devices, sorted; NULL where the listing failed */
    int num;
    nmb_ports_ahead_entry_t *nics; /* nics[i]: names[i]'s ports */
    int next; /* the next entry to claim (atomic) */
} nmb_ports_ahead_t;
/* Lists /sys/class/infiniband into `a` (empty where that fails: the NIC
 * read lists it again and says why). */
NMB_HIDDEN void nmb__ports_ahead_list(nmb_topology_t *t, nmb_ports_ahead_t *a);
/* Claims and reads entries until none is left; any thread, `t` its own. */
NMB_HIDDEN void nmb__ports_ahead_read(nmb_topology_t *t, nmb_ports_ahead_t *a);
NMB_HIDDEN void nmb__ports_ahead_free(nmb_ports_ahead_t *a);
NMB_HIDDEN int nmb__read_cpus(nmb_topology_t *t);
NMB_HIDDEN int nmb__read_allowed(nmb_topology_t *t);
NMB_HIDDEN int nmb__read_pci(nmb_topology_t *t, unsigned flags);
/* Reads numa_node (and with_cpus its local CPUs) of PCI function `index`
 * where NMB_TOPOLOGY_PLAN_ONLY left them out; 0 when read already. */
NMB_HIDDEN int nmb__pci_read_locality(nmb_topology_t *t, int index, int with_cpus);
/* An NVIDIA display controller (VGA or 3D): a GPU. */
NMB_HIDDEN int nmb__is_gpu_function(const nmb_pci_function_t *f);
NMB_HIDDEN int nmb__read_gpus(nmb_topology_t *t, unsigned flags);
/* The RDMA NICs, in two steps so that topology.c's CPU thread can read
 * their ports meanwhile. nmb__read_nics_begin takes the devices `ahead`
 * listed (NULL, or a listing that failed: it lists /sys/class/infiniband
 * itself) and reads each device's PCI function, NUMA node and netdev, up
 * to the first that fails, whose error it keeps; nmb__read_nics_end reads
 * the ports of the NICs before that one (those `ahead` read are taken) and
 * then returns the kept error: the error a read NIC by NIC gives.
 * nmb__read_nics_free after either; `ahead` outlives all three. */
typedef struct {
    char **names;                  /* listed here; NULL when `ahead`'s are used */
    const nmb_ports_ahead_t *ahead;
    int num;      /* devices listed */
    int devices;  /* of them, read before the failure */
    nmb_kept_error_t failed; /* 0 when none */
} nmb_nic_read_t;
NMB_HIDDEN int nmb__read_nics_begin(nmb_topology_t *t, nmb_nic_read_t *r, const nmb_ports_ahead_t *ahead);
NMB_HIDDEN int nmb__read_nics_end(nmb_topology_t *t, nmb_nic_read_t *r);
NMB_HIDDEN void nmb__read_nics_free(nmb_nic_read_t *r);
/* nvml.c: every NVLink NVML reports up: fn(ctx, the GPU's address, the
 * remote end's address, or NULL for an NVSwitch). -ENOENT without NVML. */
NMB_HIDDEN int nmb__nvml_links(void (*fn)(void *ctx, const char *address, const char *remote), void *ctx);
/* Distance class between two PCI functions (indices). */
NMB_HIDDEN int nmb__pci_distance(const nmb_topology_t *t, int a, int b);

/* ---- the plan (plan.c, and its parts plan_cpus.c, plan_nics.c, plan_env.c) ---- */

struct nmb_plan {
    nmb_arena_t arena;
    int num_ranks;
    nmb_rank_plan_t *ranks;
    const char *note;       /* why there are no ranks, or NULL */
    const char *node_hcas;  /* the node's compute NICs, "name:port,..." in PCI order, or NULL */
    int hca_list_taken;     /* a node-wide NVSHMEM_HCA_LIST gave the candidates */
    int override_env;       /* the options' override_env (nmb_plan_override_rank re-exports) */
};

/* The kernel's list form of `s` in buf, or "(empty)". Returns buf's text. */
NMB_HIDDEN const char *nmb__fmt_list(const nmb_bitmap_t *s, char *buf, size_t len);
/* Adds a fallback's reason to a rank's note ("first; second"). 0 or -ENOMEM. */
NMB_HIDDEN int nmb__plan_note(nmb_arena_t *arena, nmb_rank_plan_t *r, const char *why);
/* plan.c: the NUMA nodes a local_cpulist touches (none when it is empty or
 * every online CPU); and, for visible GPU `gpu` with numa_node -1 whose
 * local_cpulist spans several nodes, that list (its nodes in `nodes`), else
 * NULL. */
NMB_HIDDEN void nmb__local_cpus_nodes(const nmb_topology_t *t, const nmb_bitmap_t *local, nmb_bitmap_t *nodes);
NMB_HIDDEN const nmb_bitmap_t *nmb__gpu_span(const nmb_topology_t *t, int gpu, nmb_bitmap_t *nodes);
/* plan_cpus.c: every rank's CPUs (ranks[].numa_node set). */
NMB_HIDDEN int nmb__plan_cpus(const nmb_topology_t *t, const nmb_plan_options_t *o, nmb_plan_t *plan);
/* plan_nics.c: a NIC's first ACTIVE InfiniBand or Ethernet port, or NULL. */
NMB_HIDDEN const nmb_nic_port_t *nmb__usable_port(const nmb_nic_t *nic);
/* plan_nics.c: every rank's NIC, equally close NICs and the node's compute
 * NICs (plan->node_hcas); -EINVAL for a bad NVSHMEM_HCA_LIST. */
NMB_HIDDEN int nmb__plan_nics(const nmb_topology_t *t, const nmb_plan_options_t *o, nmb_plan_t *plan);
/* plan_env.c: rank r's NIC variables. */
NMB_HIDDEN int nmb__plan_env(nmb_plan_t *plan, const nmb_plan_options_t *o, nmb_rank_plan_t *r);

#endif /* NUMABIND_INTERNAL_H */
