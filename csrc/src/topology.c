/* Creating and destroying a topology, and its accessors. */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The per-CPU files (a core's sibling list, and more on older kernels: 112
 * files on a DGX H100) are a third of a read, and nothing else read needs
 * them. On a machine with many CPUs a thread of its own reads them while
 * the calling thread reads the allowed sets, the PCI tree, the GPUs and the
 * NICs' devices; then whichever is free first reads the RDMA ports (4
 * files a port, independent of the rest), claiming one device at a time.
 * The thread works on a copy of the topology with its own
 * directory state and arena (whose blocks join the topology's after) and
 * every signal blocked; the calling thread waits for it on every path.
 * Errors come out as a sequential read gives them: the CPUs' first, and a
 * device whose ports failed ahead is read again by the NIC read, in NIC
 * order (topo_nic.c). Not when recording files (a capture keeps the
 * sequential order), on small machines (the thread would cost more than it
 * saves), for a process bound to one CPU, with NUMABIND_ONE_THREAD set, or
 * where no thread can start: then the CPUs and ports are read here. */
#define CPU_THREAD_MIN_CPUS 32

struct cpu_job {
    nmb_topology_t copy;
    pthread_t thread;
    nmb_kept_error_t failed;
    nmb_ports_ahead_t *ports; /* the caller's; both threads claim from it */
};

static void *cpu_job_run(void *arg)
{
    struct cpu_job *job = arg;
    nmb__keep_error(&job->failed, &job->copy.fs, nmb__read_cpus(&job->copy));
    if (!job->failed.err)
        nmb__ports_ahead_read(&job->copy, job->ports);
    nmb__fs_leave(&job->copy.fs);
    return NULL;
}

/* The job reading the CPUs (and then ports) in a thread, or NULL where
 * they are to be read by the caller. `ports` is listed here when it is. */
static struct cpu_job *cpu_job_start(nmb_topology_t *t, nmb_ports_ahead_t *ports)
{
    if (t->fs.record || nmb_bitmap_count(&t->online) < CPU_THREAD_MIN_CPUS || getenv("NUMABIND_ONE_THREAD"))
        return NULL;
    struct cpu_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->copy = *t;
    job->copy.arena.head = NULL;
    /* The root's descriptor is shared (only ever opened from); a directory
     * entered here is not. */
    job->copy.fs.at_fd = -1;
    job->copy.fs.at_len = 0;
    job->copy.fs.at_path[0] = '\0';
    /* On another CPU than this thread's: left to itself the scheduler may
     * queue the new thread behind this one (seen on a 2-CPU VM: the two
     * then take turns and nothing is saved). A process bound to one CPU
     * reads in order. */
    cpu_set_t mine;
    pthread_attr_t attr;
    int here = sched_getcpu();
    if (here < 0 || here >= CPU_SETSIZE || sched_getaffinity(0, sizeof mine, &mine) < 0 || !CPU_ISSET(here, &mine) ||
        CPU_COUNT(&mine) < 2) {
        free(job);
        return NULL;
    }
    CPU_CLR(here, &mine);
    if (pthread_attr_init(&attr) != 0) {
        free(job);
        return NULL;
    }
    pthread_attr_setaffinity_np(&attr, sizeof mine, &mine);
    nmb__ports_ahead_list(t, ports);
    job->ports = ports;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&job->thread, &attr, cpu_job_run, job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        nmb__ports_ahead_free(ports);
        free(job);
        return NULL;
    }
    return job;
}

/* Waits for the job and takes what it read; its error before `err`. */
static int cpu_job_finish(nmb_topology_t *t, struct cpu_job *job, int err)
{
    pthread_join(job->thread, NULL);
    nmb__arena_take(&t->arena, &job->copy.arena);
    if (job->failed.err) {
        err = nmb__kept_error(&job->failed);
    } else {
        t->num_cpus = job->copy.num_cpus;
        t->cpus = job->copy.cpus;
        t->num_cores = job->copy.num_cores;
        t->cores = job->copy.cores;
        t->num_l3 = job->copy.num_l3;
        t->l3 = job->copy.l3;
    }
    free(job);
    return err;
}

int nmb_topology_create(nmb_topology_t **out, const char *fsroot, unsigned flags)
{
    int err;
    if (!out)
        return nmb__fail(-EINVAL, "nmb_topology_create: out is NULL");
    *out = NULL;
    nmb__clear_error();
    if (!fsroot) {
        fsroot = getenv("NUMABIND_FSROOT");
        if (fsroot && !*fsroot)
            fsroot = NULL;
    }
    nmb_topology_t *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->flags = flags;
    if ((err = nmb__fs_init(&t->fs, fsroot, !!(flags & NMB_TOPOLOGY_RECORD_FILES))) < 0)
        goto fail;
    t->fsroot = nmb__arena_strdup(&t->arena, t->fs.root_len ? t->fs.root : "/");
    if (!t->fsroot) {
        err = -ENOMEM;
        goto fail;
    }
    if ((err = nmb__read_nodes(t)) < 0)
        goto fail;
    nmb_ports_ahead_t ports = {0};
    struct cpu_job *job = cpu_job_start(t, &ports);
    err = job ? 0 : nmb__read_cpus(t);
    if (err >= 0)
        err = nmb__read_allowed(t);
    if (err >= 0)
        err = nmb__read_pci(t, flags);
    if (err >= 0)
        err = nmb__read_gpus(t, flags);
    nmb_nic_read_t nics = {0};
    if (err >= 0)
        err = nmb__read_nics_begin(t, &nics, job ? &ports : NULL);
    if (job) {
        if (err >= 0)
            nmb__ports_ahead_read(t, &ports); /* what the thread has not claimed yet */
        err = cpu_job_finish(t, job, err);
    }
    if (err >= 0)
        err = nmb__read_nics_end(t, &nics);
    nmb__read_nics_free(&nics);
    nmb__ports_ahead_free(&ports);
    if (err < 0)
        goto fail;
    *out = t;
    return 0;
fail:
    nmb__fs_describe(&t->fs, err);
    nmb_topology_destroy(t);
    return err;
}

void nmb_topology_destroy(nmb_topology_t *t)
{
    if (!t)
        return;
    nmb__fs_free(&t->fs);
    nmb__arena_free(&t->arena);
    free(t);
}

const char *nmb_topology_fsroot(const nmb_topology_t *t)
{
    return t ? t->fsroot : NULL;
}

int nmb_topology_is_live(const nmb_topology_t *t)
{
    return t ? nmb__fs_live(&t->fs) : 0;
}

/* Accessors: a count, and an element by index (NULL when out of range). */
#define NMB_COUNT(kind, field)                                                                 \
    int nmb_topology_num_##kind(const nmb_topology_t *t)                                       \
    {                                                                                          \
        return t ? t->field : -EINVAL;                                                         \
    }

NMB_COUNT(nodes, num_nodes)
NMB_COUNT(cpus, num_cpus)
NMB_COUNT(cores, num_cores)
NMB_COUNT(l3, num_l3)
NMB_COUNT(pci, num_pci)
NMB_COUNT(host_bridges, num_host_bridges)
NMB_COUNT(gpus, num_gpus)
NMB_COUNT(all_gpus, num_all_gpus)
NMB_COUNT(nics, num_nics)

#define NMB_ELEMENT(name, type, count_field, array_field)                                      \
    const type *nmb_topology_##name(const nmb_topology_t *t, int index)                         \
    {                                                                                          \
        if (!t || index < 0 || index >= t->count_field)                                        \
            return NULL;                                                                       \
        return &t->array_field[index];                                                         \
    }

NMB_ELEMENT(node, nmb_node_t, num_nodes, nodes)
NMB_ELEMENT(cpu, nmb_cpu_t, num_cpus, cpus)
NMB_ELEMENT(core, nmb_core_t, num_cores, cores)
NMB_ELEMENT(l3, nmb_cache_t, num_l3, l3)
NMB_ELEMENT(pci, nmb_pci_function_t, num_pci, pci)
NMB_ELEMENT(host_bridge, nmb_host_bridge_t, num_host_bridges, host_bridges)
NMB_ELEMENT(gpu, nmb_gpu_t, num_gpus, gpus)
NMB_ELEMENT(all_gpu, nmb_gpu_t, num_all_gpus, all_gpus)
NMB_ELEMENT(nic, nmb_nic_t, num_nics, nics)

int nmb_topology_node_index(const nmb_topology_t *t, int id)
{
    for (int i = 0; t && i < t->num_nodes; i++)
        if (t->nodes[i].id == id)
            return i;
    return -ENOENT;
}

int nmb_topology_cpu_index(const nmb_topology_t *t, int id)
{
    /* CPUs are sorted by id: bisect. */
    int lo = 0, hi = t ? t->num_cpus : 0;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t->cpus[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (t && lo < t->num_cpus && t->cpus[lo].id == id) ? lo : -ENOENT;
}

int nmb_topology_pci_index(const nmb_topology_t *t, const char *address)
{
    unsigned d, b, v, f;
    if (!t || !address || nmb__parse_pci_address(address, &d, &b, &v, &f) < 0)
        return -ENOENT;
    /* Functions are sorted by address: bisect on the packed address. */
    unsigned long long key = (unsigned long long)d << 16 | b << 8 | v << 3 | f;
    int lo = 0, hi = t->num_pci;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        const nmb_pci_function_t *p = &t->pci[mid];
        unsigned long long k = (unsigned long long)p->domain << 16 | p->bus << 8 | p->dev << 3 | p->fn;
        if (k < key)
            lo = mid + 1;
        else if (k > key)
            hi = mid;
        else
            return mid;
    }
    return -ENOENT;
}

int nmb_topology_nic_index(const nmb_topology_t *t, const char *name)
{
    for (int i = 0; t && name && i < t->num_nics; i++)
        if (strcmp(t->nics[i].name, name) == 0)
            return i;
    return -ENOENT;
}

const nmb_bitmap_t *nmb_topology_online_cpus(const nmb_topology_t *t)
{
    return t ? &t->online : NULL;
}

const nmb_bitmap_t *nmb_topology_allowed_cpus(const nmb_topology_t *t)
{
    return t ? &t->allowed_cpus : NULL;
}

const nmb_bitmap_t *nmb_topology_affinity_cpus(const nmb_topology_t *t)
{
    return t ? &t->affinity : NULL;
}

const nmb_bitmap_t *nmb_topology_allowed_mems(const nmb_topology_t *t)
{
    return t ? &t->allowed_mems : NULL;
}

int nmb_topology_allowed_source(const nmb_topology_t *t)
{
    return t ? t->allowed_source : -EINVAL;
}

const char *nmb_allowed_source_name(int source)
{
    switch (source) {
    case NMB_ALLOWED_KERNEL: return "kernel";
    case NMB_ALLOWED_CGROUP: return "cgroup";
    case NMB_ALLOWED_AFFINITY: return "affinity";
    case NMB_ALLOWED_ONLINE: return "online";
    default: return "?";
    }
}

int nmb_topology_distance(const nmb_topology_t *t, int gpu, int nic)
{
    if (!t || gpu < 0 || gpu >= t->num_gpus)
        return nmb__fail(-EINVAL, "GPU index %d out of range", gpu);
    if (nic < 0 || nic >= t->num_nics)
        return nmb__fail(-EINVAL, "NIC index %d out of range", nic);
    return nmb__pci_distance(t, t->gpus[gpu].pci, t->nics[nic].pci);
}

int nmb_topology_gpu_distance(const nmb_topology_t *t, int a, int b)
{
    if (!t || a < 0 || a >= t->num_gpus || b < 0 || b >= t->num_gpus)
        return nmb__fail(-EINVAL, "GPU index %d out of range", !t || a < 0 || a >= t->num_gpus ? a : b);
    return nmb__pci_distance(t, t->gpus[a].pci, t->gpus[b].pci);
}

int nmb_topology_gpu_link(const nmb_topology_t *t, int a, int b)
{
    if (!t || a < 0 || a >= t->num_gpus || b < 0 || b >= t->num_gpus)
        return nmb__fail(-EINVAL, "GPU index %d out of range", !t || a < 0 || a >= t->num_gpus ? a : b);
    if (!t->nvlinks)
        return -ENODATA;
    int i = t->gpus[a].physical_index, j = t->gpus[b].physical_index, n = t->num_all_gpus;
    int direct = t->nvlinks[i * n + j] > t->nvlinks[j * n + i] ? t->nvlinks[i * n + j] : t->nvlinks[j * n + i];
    if (direct || i == j)
        return direct;
    int si = t->nvswitch_links[i], sj = t->nvswitch_links[j];
    return si < sj ? si : sj;
}

const char *nmb_distance_name(int d)
{
    switch (d) {
    case NMB_DIST_PIX: return "PIX";
    case NMB_DIST_PXB: return "PXB";
    case NMB_DIST_PHB: return "PHB";
    case NMB_DIST_NODE: return "NODE";
    case NMB_DIST_SYS: return "SYS";
    default: return "?";
    }
}

int nmb_topology_num_files(const nmb_topology_t *t)
{
    return t ? t->fs.num_files : -EINVAL;
}

const char *nmb_topology_file(const nmb_topology_t *t, int index)
{
    if (!t || index < 0 || index >= t->fs.num_files)
        return NULL;
    return t->fs.files[index];
}
