/* NUMA nodes, CPUs, cores, L3 domains and the process's allowed sets. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NODE_DIR "/sys/devices/system/node"
#define CPU_DIR "/sys/devices/system/cpu"

/* Reads "Node N MemTotal: K kB" of one node; 0 when unreadable. */
static uint64_t node_mem_total(nmb_fs_t *fs, int id)
{
    char path[128], buf[4096];
    snprintf(path, sizeof path, NODE_DIR "/node%d/meminfo", id);
    if (nmb__fs_read(fs, path, buf, sizeof buf) < 0)
        return 0;
    long long bytes = nmb__parse_meminfo_total(buf);
    return bytes > 0 ? (uint64_t)bytes : 0;
}

static int read_distances(nmb_topology_t *t, int index, int *row)
{
    char path[128], buf[8192], *p, *end;
    snprintf(path, sizeof path, NODE_DIR "/node%d/distance", t->nodes[index].id);
    int n = nmb__fs_read(&t->fs, path, buf, sizeof buf);
    for (int j = 0; j < t->num_nodes; j++)
        row[j] = j == index ? 10 : 20; /* what the kernel assumes without a SLIT */
    if (n == -ENOENT)
        return 0;
    if (n < 0)
        return n;
    /* One number per online node, nothing else: a short or garbled row
     * would silently make a remote node look local. */
    p = buf;
    for (int j = 0; j < t->num_nodes; j++) {
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 255)
            return nmb__fail(-EINVAL, "%s: '%.64s' is not %d distances", path, nmb__rstrip(buf),
                             t->num_nodes);
        row[j] = (int)v;
        p = end;
    }
    while (*p == ' ' || *p == '\n')
        p++;
    if (*p)
        return nmb__fail(-EINVAL, "%s: '%.64s' holds more than %d distances", path, nmb__rstrip(buf),
                         t->num_nodes);
    return 0;
}

static int read_nodes(nmb_topology_t *t)
{
    nmb_bitmap_t online;
    int err = nmb__fs_read_list(&t->fs, NODE_DIR "/online", &online);
    if (err == -ENOENT) {
        /* A kernel built without NUMA: one node holding every CPU. */
        nmb_bitmap_zero(&online);
        nmb_bitmap_set(&online, 0);
    } else if (err < 0) {
        return err;
    } else if (nmb_bitmap_iszero(&online)) {
        /* The kernel always has a node online: an empty list is a damaged tree. */
        return nmb__fail(-EINVAL, "%s" NODE_DIR "/online lists no node", t->fs.root);
    }
    t->num_nodes = nmb_bitmap_count(&online);
    t->nodes = nmb__arena_alloc(&t->arena, (size_t)t->num_nodes * sizeof *t->nodes);
    int *dist = nmb__arena_alloc(&t->arena, (size_t)t->num_nodes * (size_t)t->num_nodes * sizeof(int));
    if (!t->nodes || !dist)
        return -ENOMEM;
    int i = 0;
    for (int id = nmb_bitmap_next(&online, 0); id >= 0; id = nmb_bitmap_next(&online, id + 1), i++) {
        nmb_node_t *node = &t->nodes[i];
        char path[128];
        node->id = id;
        snprintf(path, sizeof path, NODE_DIR "/node%d/cpulist", id);
        if (err == -ENOENT) {
            node->cpus = t->online;
        } else {
            int e = nmb__fs_read_list(&t->fs, path, &node->cpus);
            if (e < 0 && e != -ENOENT)
                return e;
            nmb_bitmap_and(&node->cpus, &node->cpus, &t->online);
        }
        node->has_cpus = !nmb_bitmap_iszero(&node->cpus);
        node->mem_total_bytes = node_mem_total(&t->fs, id);
        node->distances = dist + (size_t)i * (size_t)t->num_nodes;
    }
    for (i = 0; i < t->num_nodes; i++) {
        int e = read_distances(t, i, dist + (size_t)i * (size_t)t->num_nodes);
        if (e < 0)
            return e;
    }
    return 0;
}

static int read_topology_long(nmb_fs_t *fs, int cpu, const char *name, long fallback, long *out)
{
    char path[160];
    snprintf(path, sizeof path, CPU_DIR "/cpu%d/topology/%s", cpu, name);
    int err = nmb__fs_read_long(fs, path, out);
    if (err == -ENOENT) {
        *out = fallback;
        return 0;
    }
    return err;
}

/* The SMT siblings of `cpu`: core_cpus_list (5.x+), else
 * thread_siblings_list, else the CPU alone. */
static int read_siblings(nmb_fs_t *fs, int cpu, nmb_bitmap_t *out)
{
    static const char *const names[] = {"core_cpus_list", "thread_siblings_list"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char path[160];
        snprintf(path, sizeof path, CPU_DIR "/cpu%d/topology/%s", cpu, names[k]);
        int err = nmb__fs_read_list(fs, path, out);
        if (err != -ENOENT)
            return err;
    }
    nmb_bitmap_zero(out);
    nmb_bitmap_set(out, cpu);
    return 0;
}

/* Finds the L3 (level 3) cache of `cpu` among cache/index*; 0 and an empty
 * set when it has none. Level, not index, names the cache: index3 is not
 * the L3 on every machine. */
static int read_l3(nmb_fs_t *fs, int cpu, nmb_bitmap_t *out)
{
    nmb_bitmap_zero(out);
    for (int k = 0; k < 16; k++) {
        char path[160];
        long level;
        snprintf(path, sizeof path, CPU_DIR "/cpu%d/cache/index%d/level", cpu, k);
        int err = nmb__fs_read_long(fs, path, &level);
        if (err == -ENOENT)
            return 0;
        if (err < 0)
            return err;
        if (level != 3)
            continue;
        snprintf(path, sizeof path, CPU_DIR "/cpu%d/cache/index%d/shared_cpu_list", cpu, k);
        err = nmb__fs_read_list(fs, path, out);
        return err == -ENOENT ? 0 : err;
    }
    return 0;
}

static int read_cpus(nmb_topology_t *t)
{
    int err, n = nmb_bitmap_count(&t->online);
    if (n == 0)
        return nmb__fail(-EINVAL, CPU_DIR "/online lists no CPU");
    t->num_cpus = n;
    t->cpus = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *t->cpus);
    /* At most one core and one L3 per CPU; the arrays are trimmed by count. */
    t->cores = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *t->cores);
    t->l3 = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *t->l3);
    int *core_first = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *core_first);
    /* By CPU id: its node, core and L3 domain (the last one listing it), so
     * that 8192 CPUs cost one pass, not one pass over the cores per CPU. */
    int *node_of = malloc(3 * NMB_BITMAP_BITS * sizeof *node_of);
    if (!t->cpus || !t->cores || !t->l3 || !core_first || !node_of) {
        free(node_of);
        return -ENOMEM;
    }
    int *core_of = node_of + NMB_BITMAP_BITS, *l3_of = core_of + NMB_BITMAP_BITS;
    for (int k = 0; k < 3 * NMB_BITMAP_BITS; k++)
        node_of[k] = -1;
    for (int k = 0; k < t->num_nodes; k++)
        for (int c = nmb_bitmap_next(&t->nodes[k].cpus, 0); c >= 0; c = nmb_bitmap_next(&t->nodes[k].cpus, c + 1))
            node_of[c] = t->nodes[k].id;

    int i = 0;
    err = 0;
    for (int id = nmb_bitmap_next(&t->online, 0); id >= 0; id = nmb_bitmap_next(&t->online, id + 1), i++) {
        nmb_cpu_t *cpu = &t->cpus[i];
        long v;
        cpu->id = id;
        cpu->node = node_of[id];

        /* A sibling of an earlier CPU shares its core: no need to read it again. */
        cpu->core = core_of[id];
        if (cpu->core >= 0) {
            /* The core's first CPU was read already: copy what it read. (Not a
             * lookup by id: the CPU array is only filled up to i so far.) */
            const nmb_cpu_t *first = &t->cpus[core_first[cpu->core]];
            cpu->package = first->package;
            cpu->die = first->die;
            cpu->core_id = first->core_id;
        } else {
            nmb_core_t *core = &t->cores[t->num_cores];
            if ((err = read_topology_long(&t->fs, id, "physical_package_id", 0, &v)) < 0)
                break;
            cpu->package = (int)v;
            if ((err = read_topology_long(&t->fs, id, "die_id", 0, &v)) < 0)
                break;
            cpu->die = (int)v;
            if ((err = read_topology_long(&t->fs, id, "core_id", id, &v)) < 0)
                break;
            cpu->core_id = (int)v;
            if ((err = read_siblings(&t->fs, id, &core->cpus)) < 0)
                break;
            nmb_bitmap_and(&core->cpus, &core->cpus, &t->online);
            /* Cores partition the CPUs: one an earlier core holds stays
             * there (only a damaged tree lists siblings asymmetrically, and
             * two ranks given "whole cores" must never share a CPU). */
            for (int c = nmb_bitmap_next(&core->cpus, 0); c >= 0; c = nmb_bitmap_next(&core->cpus, c + 1))
                if (core_of[c] >= 0)
                    nmb_bitmap_clear(&core->cpus, c);
            nmb_bitmap_set(&core->cpus, id);
            core->package = cpu->package;
            core->node = cpu->node;
            core_first[t->num_cores] = i;
            cpu->core = t->num_cores++;
            for (int c = nmb_bitmap_next(&core->cpus, 0); c >= 0; c = nmb_bitmap_next(&core->cpus, c + 1))
                core_of[c] = cpu->core;
        }

        cpu->l3 = l3_of[id];
        if (cpu->l3 < 0) {
            nmb_cache_t *cache = &t->l3[t->num_l3];
            if ((err = read_l3(&t->fs, id, &cache->cpus)) < 0)
                break;
            nmb_bitmap_and(&cache->cpus, &cache->cpus, &t->online);
            if (!nmb_bitmap_iszero(&cache->cpus)) {
                for (int c = nmb_bitmap_next(&cache->cpus, 0); c >= 0; c = nmb_bitmap_next(&cache->cpus, c + 1))
                    if (l3_of[c] >= 0)
                        nmb_bitmap_clear(&cache->cpus, c); /* L3 domains partition the CPUs too */
                nmb_bitmap_set(&cache->cpus, id);
                cache->level = 3;
                cpu->l3 = t->num_l3++;
                for (int c = nmb_bitmap_next(&cache->cpus, 0); c >= 0; c = nmb_bitmap_next(&cache->cpus, c + 1))
                    l3_of[c] = cpu->l3;
            }
        }
    }
    free(node_of);
    return err;
}

int nmb__read_nodes_and_cpus(nmb_topology_t *t)
{
    /* Nodes need the online CPUs (a node's list may hold offline ones), and
     * CPUs need the nodes: read the online list first. */
    int err = nmb__fs_read_list(&t->fs, CPU_DIR "/online", &t->online);
    if (err == -ENOENT)
        return nmb__fail(-ENOENT, "%s" CPU_DIR "/online is missing: not a Linux sysfs tree",
                         t->fs.root);
    if (err < 0)
        return err;
    if ((err = read_nodes(t)) < 0)
        return err;
    return read_cpus(t);
}

/* The cpuset the process's cgroup enforces, which bounds what it may widen
 * its affinity to: cgroup v2's cpuset.<cpus|mems>.effective of its group or,
 * where the cpuset controller is not enabled there, of the nearest ancestor
 * that has the file (a group without it inherits); else cgroup v1's cpuset
 * hierarchy at /sys/fs/cgroup/cpuset (cpuset.effective_<x>, older kernels
 * cpuset.<x>). `cgroup` is /proc/self/cgroup's text. -ENOENT when none. */
static int cgroup_set(nmb_fs_t *fs, const char *cgroup, int mems, nmb_bitmap_t *out)
{
    char line[PATH_MAX], path[PATH_MAX + 64];
    for (int v1 = 0; v1 < 2; v1++) {
        for (const char *p = cgroup; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            size_t n = strcspn(p, "\n");
            if (n >= sizeof line)
                continue;
            memcpy(line, p, n);
            line[n] = '\0';
            /* "0::/path" (v2), "5:cpuset:/path" or "5:cpu,cpuset:/path" (v1) */
            char *controllers = strchr(line, ':'), *group = controllers ? strchr(controllers + 1, ':') : NULL;
            if (!group)
                continue;
            *group++ = '\0';
            *controllers++ = '\0';
            int match = v1 ? strstr(controllers, "cpuset") != NULL : strcmp(line, "0") == 0 && !*controllers;
            if (!match || group[0] != '/')
                continue;
            for (char *end = group + strlen(group);; *end = '\0') {
                while (end > group && end[-1] == '/')
                    *--end = '\0';
                const char *names[2][2] = {{"cpuset.cpus.effective", "cpuset.mems.effective"},
                                           {"cpuset.effective_cpus", "cpuset.effective_mems"}};
                const char *older[2] = {"cpuset.cpus", "cpuset.mems"};
                for (int k = 0; k < 1 + v1; k++) {
                    snprintf(path, sizeof path, "/sys/fs/cgroup%s%s/%s", v1 ? "/cpuset" : "", group,
                             k ? older[mems] : names[v1][mems]);
                    if (nmb__fs_read_list(fs, path, out) == 0 && !nmb_bitmap_iszero(out))
                        return 0;
                    nmb__clear_error(); /* absent here: the parent's file says it */
                }
                if (!(end = strrchr(group, '/')) || end == group) {
                    if (!group[0] || strcmp(group, "/") == 0)
                        break;
                    group[0] = '\0';
                    end = group;
                    continue;
                }
            }
        }
    }
    return -ENOENT;
}

/* On the live host the kernel says what the process may widen to: a new
 * thread asks for every online CPU, and sched_setaffinity grants those its
 * cpuset allows (cpuset_cpus_allowed(), whatever the cgroup version, mounted
 * or not, namespaced or not). The thread is the probe's own, so no thread of
 * the caller's changes. -errno where the kernel refuses (a seccomp profile
 * without sched_setaffinity): the cgroup files are asked instead. */
struct widen {
    cpu_set_t *mask;
    size_t size;
    int err;
};

static void *widen_probe(void *arg)
{
    struct widen *w = arg;
    if (sched_setaffinity(0, w->size, w->mask) < 0 || sched_getaffinity(0, w->size, w->mask) < 0)
        w->err = -errno;
    return NULL;
}

static int kernel_cpuset(const nmb_topology_t *t, nmb_bitmap_t *out)
{
    struct widen w = {CPU_ALLOC(NMB_BITMAP_BITS), CPU_ALLOC_SIZE(NMB_BITMAP_BITS), 0};
    pthread_t thread;
    if (!w.mask)
        return -ENOMEM;
    CPU_ZERO_S(w.size, w.mask);
    for (int c = nmb_bitmap_next(&t->online, 0); c >= 0; c = nmb_bitmap_next(&t->online, c + 1))
        CPU_SET_S(c, w.size, w.mask);
    int err = pthread_create(&thread, NULL, widen_probe, &w);
    if (err == 0)
        err = pthread_join(thread, NULL) ? -EAGAIN : w.err;
    else
        err = -err;
    if (err == 0) {
        nmb_bitmap_zero(out);
        for (int c = 0; c < NMB_BITMAP_BITS; c++)
            if (CPU_ISSET_S(c, w.size, w.mask))
                nmb_bitmap_set(out, c);
    }
    CPU_FREE(w.mask);
    return err;
}

/* What the process may use: its cpuset (what it may widen its affinity to),
 * not its current affinity — a launcher that bound the rank before numabind
 * ran (mpirun's default binding, srun --cpu-bind, an outer numabind exec)
 * would otherwise have every rank plan from another set. On the live host
 * the kernel's answer (kernel_cpuset), else the cgroup's files; under a root
 * the files alone. The affinity lies inside the cpuset; where the files say
 * otherwise (a tree that mixes two processes) the affinity is taken. */
static int read_allowed(nmb_topology_t *t, char *status, char *value)
{
    int err = nmb__fs_read(&t->fs, "/proc/self/status", status, NMB_LIST_MAX);
    int have_status = err >= 0;
    if (err < 0 && err != -ENOENT)
        return err; /* unreadable, or longer than any status: never guess the allowed sets */

    if (nmb__fs_live(&t->fs)) {
        /* The kernel's answer for the calling thread. */
        size_t size = CPU_ALLOC_SIZE(NMB_BITMAP_BITS);
        cpu_set_t *mask = CPU_ALLOC(NMB_BITMAP_BITS);
        if (!mask)
            return -ENOMEM;
        if (sched_getaffinity(0, size, mask) < 0) {
            err = -errno;
            CPU_FREE(mask);
            return nmb__fail(err, "sched_getaffinity failed");
        }
        nmb_bitmap_zero(&t->affinity);
        for (int c = 0; c < NMB_BITMAP_BITS; c++)
            if (CPU_ISSET_S(c, size, mask))
                nmb_bitmap_set(&t->affinity, c);
        CPU_FREE(mask);
    } else {
        if (!have_status)
            return nmb__fail(-ENOENT, "%s/proc/self/status is missing: it gives the allowed CPUs under NUMABIND_FSROOT",
                             t->fs.root);
        if (nmb__status_field(status, "Cpus_allowed_list", value, NMB_LIST_MAX) < 0)
            return nmb__fail(-EINVAL, "proc/self/status has no Cpus_allowed_list line");
        if ((err = nmb_bitmap_parse_list(&t->affinity, value)) < 0)
            return nmb__fail(err, "proc/self/status: Cpus_allowed_list '%.64s' is not a CPU list", value);
    }

    if (have_status && nmb__status_field(status, "Mems_allowed_list", value, NMB_LIST_MAX) == 0) {
        if ((err = nmb_bitmap_parse_list(&t->allowed_mems, value)) < 0)
            return nmb__fail(err, "proc/self/status: Mems_allowed_list '%.64s' is not a node list", value);
    } else {
        nmb_bitmap_zero(&t->allowed_mems);
        for (int i = 0; i < t->num_nodes; i++)
            nmb_bitmap_set(&t->allowed_mems, t->nodes[i].id);
    }

    nmb_bitmap_t cg, outside;
    t->allowed_cpus = t->affinity;
    t->allowed_from_cpuset = nmb__fs_live(&t->fs) && kernel_cpuset(t, &t->allowed_cpus) == 0;
    /* The cgroup file read into status's buffer: status is parsed already. */
    if (nmb__fs_read(&t->fs, "/proc/self/cgroup", status, NMB_LIST_MAX) >= 0) {
        /* The files where the kernel did not answer, and whenever paths are
         * recorded: numabind gather must capture what a replay plans from. */
        int answered = t->allowed_from_cpuset;
        if ((!answered || t->fs.record) && cgroup_set(&t->fs, status, 0, &cg) == 0 && !answered) {
            nmb_bitmap_andnot(&outside, &t->affinity, &cg);
            if (nmb_bitmap_iszero(&outside)) {
                t->allowed_cpus = cg;
                t->allowed_from_cpuset = 1;
            }
        }
        if (cgroup_set(&t->fs, status, 1, &cg) == 0)
            nmb_bitmap_and(&t->allowed_mems, &t->allowed_mems, &cg);
    }
    nmb__clear_error();
    nmb_bitmap_and(&t->allowed_cpus, &t->allowed_cpus, &t->online);
    nmb_bitmap_and(&t->affinity, &t->affinity, &t->online);
    return 0;
}

int nmb__read_allowed(nmb_topology_t *t)
{
    /* An 8192-CPU process's Cpus_allowed_list alone can pass 16 KiB. */
    char *status = malloc(2 * NMB_LIST_MAX);
    if (!status)
        return -ENOMEM;
    int err = read_allowed(t, status, status + NMB_LIST_MAX);
    free(status);
    return err;
}
