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

/* One number (0-255) per online node, nothing else: a short or long row
 * would silently make a remote node look local. */
static int read_distances(nmb_topology_t *t, int index, int *row)
{
    char path[128], buf[8192], *p, *end, nodes[256];
    snprintf(path, sizeof path, NODE_DIR "/node%d/distance", t->nodes[index].id);
    int n = nmb__fs_read(&t->fs, path, buf, sizeof buf), count = 0;
    for (int j = 0; j < t->num_nodes; j++)
        row[j] = j == index ? 10 : 20; /* what the kernel assumes without a SLIT */
    if (n == -ENOENT)
        return 0;
    if (n < 0)
        return n;
    for (p = buf;; p = end) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 255 || (*end && *end != ' ' && *end != '\t' && *end != '\n'))
            return nmb__fail(-EINVAL, "%s: '%.64s' is not a row of distances (numbers 0-255)", path,
                             nmb__rstrip(buf));
        if (count < t->num_nodes)
            row[count] = (int)v;
        count++;
    }
    if (count != t->num_nodes) {
        nmb_bitmap_t ids;
        nmb_bitmap_zero(&ids);
        for (int j = 0; j < t->num_nodes; j++)
            nmb_bitmap_set(&ids, t->nodes[j].id);
        return nmb__fail(-EINVAL, "%s: '%.64s' has %d entries but " NODE_DIR "/online lists %d node%s (%s)", path,
                         nmb__rstrip(buf), count, t->num_nodes, t->num_nodes == 1 ? "" : "s",
                         nmb__fmt_list(&ids, nodes, sizeof nodes));
    }
    return 0;
}

/* A node's CPUs: cpulist, else the cpumap mask. A node node/online lists
 * has both (a memory-only node lists none): without either the tree is
 * damaged, and guessing "no CPUs" would move its GPUs' ranks elsewhere. */
static int read_node_cpus(nmb_topology_t *t, int id, nmb_bitmap_t *out)
{
    char path[128];
    snprintf(path, sizeof path, NODE_DIR "/node%d/cpulist", id);
    int err = nmb__fs_read_list(&t->fs, path, out);
    if (err == -ENOENT) {
        snprintf(path, sizeof path, NODE_DIR "/node%d/cpumap", id);
        err = nmb__fs_read_mask(&t->fs, path, out);
    }
    if (err == -ENOENT)
        return nmb__fail(-EINVAL, NODE_DIR "/node%d/cpulist is missing (and cpumap too), but " NODE_DIR
                         "/online lists node %d", id, id);
    if (err < 0)
        return err;
    nmb_bitmap_and(out, out, &t->online);
    return 0;
}

/* Nodes partition the CPUs. A BIOS that lists every CPU in every node would
 * have the ranks of two nodes share CPUs: refused, naming both nodes, rather
 * than merged, since which node a CPU really sits on is unknown. */
static int check_nodes_disjoint(const nmb_topology_t *t)
{
    nmb_bitmap_t seen, shared;
    char cpus[256];
    nmb_bitmap_zero(&seen);
    for (int j = 0; j < t->num_nodes; j++) {
        if (nmb_bitmap_intersects(&t->nodes[j].cpus, &seen)) {
            for (int i = 0; i < j; i++) {
                nmb_bitmap_and(&shared, &t->nodes[i].cpus, &t->nodes[j].cpus);
                if (nmb_bitmap_iszero(&shared))
                    continue;
                int a = t->nodes[i].id, b = t->nodes[j].id;
                return nmb__fail(-EINVAL, "NUMA nodes %d and %d both list CPUs %s (" NODE_DIR "/node%d/cpulist, "
                                 NODE_DIR "/node%d/cpulist): the firmware's node table is wrong", a, b,
                                 nmb__fmt_list(&shared, cpus, sizeof cpus), a, b);
            }
        }
        nmb_bitmap_or(&seen, &seen, &t->nodes[j].cpus);
    }
    return 0;
}

static int read_node_list(nmb_topology_t *t, const nmb_bitmap_t *online_nodes, int numa);

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
    int numa = err == 0;
    if (numa)
        nmb__fs_enter(&t->fs, NODE_DIR, -1);
    err = read_node_list(t, &online, numa);
    nmb__fs_leave(&t->fs);
    return err;
}

static int read_node_list(nmb_topology_t *t, const nmb_bitmap_t *online_nodes, int numa)
{
    const nmb_bitmap_t online = *online_nodes;
    int err;
    t->num_nodes = nmb_bitmap_count(&online);
    t->nodes = nmb__arena_alloc(&t->arena, (size_t)t->num_nodes * sizeof *t->nodes);
    int *dist = nmb__arena_alloc(&t->arena, (size_t)t->num_nodes * (size_t)t->num_nodes * sizeof(int));
    if (!t->nodes || !dist)
        return -ENOMEM;
    int i = 0;
    for (int id = nmb_bitmap_next(&online, 0); id >= 0; id = nmb_bitmap_next(&online, id + 1), i++) {
        nmb_node_t *node = &t->nodes[i];
        node->id = id;
        if (!numa)
            node->cpus = t->online;
        else if ((err = read_node_cpus(t, id, &node->cpus)) < 0)
            return err;
        node->has_cpus = !nmb_bitmap_iszero(&node->cpus);
        node->mem_total_bytes = node_mem_total(&t->fs, id);
        node->distances = dist + (size_t)i * (size_t)t->num_nodes;
    }
    if ((err = check_nodes_disjoint(t)) < 0)
        return err;
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

/* The first of cpuN/topology/<names> (each "<name>_list", else the mask
 * "<name>") that exists; -ENOENT when none does. */
static int read_topology_set(nmb_fs_t *fs, int cpu, const char *const *names, int num, nmb_bitmap_t *out)
{
    int err = -ENOENT;
    for (int k = 0; k < num && err == -ENOENT; k++) {
        char path[160];
        snprintf(path, sizeof path, CPU_DIR "/cpu%d/topology/%s_list", cpu, names[k]);
        err = nmb__fs_read_list_or_mask(fs, path, sizeof path, names[k], out);
    }
    return err;
}

/* The SMT siblings of `cpu`: core_cpus_list (5.3+), else
 * thread_siblings_list, else (either) its mask, else the CPU alone. */
static int read_siblings(nmb_fs_t *fs, int cpu, nmb_bitmap_t *out)
{
    static const char *const names[] = {"core_cpus", "thread_siblings"};
    int err = read_topology_set(fs, cpu, names, 2, out);
    if (err != -ENOENT)
        return err;
    nmb_bitmap_zero(out);
    nmb_bitmap_set(out, cpu);
    return 0;
}

/* Packages for CPUs whose physical_package_id is -1 (s390; arm64 firmware
 * without package information): the CPUs package_cpus_list (5.3+) or
 * core_siblings_list (or their masks) name; where no file names any, every
 * such CPU in one package, as the kernel makes them all siblings. Each CPU
 * in one set; numbered after the tree's own package ids (fix_packages). */
typedef struct derived_packages {
    nmb_bitmap_t *sets; /* at most one per CPU (allocated at the first -1) */
    int num, cap;
} derived_packages_t;

static int derive_package(nmb_topology_t *t, int cpu, derived_packages_t *d, int *index)
{
    static const char *const names[] = {"package_cpus", "core_siblings"};
    for (int k = 0; k < d->num; k++)
        if (nmb_bitmap_isset(&d->sets[k], cpu)) {
            *index = k;
            return 0;
        }
    if (!d->sets && !(d->sets = malloc((size_t)d->cap * sizeof *d->sets)))
        return -ENOMEM;
    nmb_bitmap_t *set = &d->sets[d->num];
    int err = read_topology_set(&t->fs, cpu, names, 2, set);
    if (err == -ENOENT)
        *set = t->online;
    else if (err < 0)
        return err;
    nmb_bitmap_and(set, set, &t->online);
    for (int k = 0; k < d->num; k++)
        nmb_bitmap_andnot(set, set, &d->sets[k]);
    nmb_bitmap_set(set, cpu);
    *index = d->num++;
    return 0;
}

/* A CPU's package: physical_package_id (0 when absent), or, for -1, a
 * derived package, stored as -2 - its index until fix_packages numbers it. */
static int read_package(nmb_topology_t *t, int cpu, derived_packages_t *d, int *out)
{
    long v;
    int err = read_topology_long(&t->fs, cpu, "physical_package_id", 0, &v);
    if (err < 0)
        return err;
    if (v >= 0 && v <= INT_MAX / 2) {
        *out = (int)v;
        return 0;
    }
    if (v >= 0)
        return nmb__fail(-EINVAL, CPU_DIR "/cpu%d/topology/physical_package_id: '%ld' is out of range", cpu, v);
    int index;
    if ((err = derive_package(t, cpu, d, &index)) < 0)
        return err;
    *out = -2 - index;
    return 0;
}

/* Numbers derived packages after the highest package id the tree gives, so
 * that none is -1 and none shares a number with a real one. */
static void fix_packages(nmb_topology_t *t)
{
    int next = 0;
    for (int i = 0; i < t->num_cpus; i++)
        if (t->cpus[i].package >= next)
            next = t->cpus[i].package + 1;
    for (int i = 0; i < t->num_cpus; i++)
        if (t->cpus[i].package < 0)
            t->cpus[i].package = next + (-2 - t->cpus[i].package);
    for (int c = 0; c < t->num_cores; c++)
        if (t->cores[c].package < 0)
            t->cores[c].package = next + (-2 - t->cores[c].package);
}

/* Finds the L3 (level 3) cache of `cpu` among cache/index*; 0 and an empty
 * set when it has none. Level, not index, names the cache: index3 is not
 * the L3 on every machine. A list without its own CPU is a damaged tree:
 * the CPU would end up in an L3 domain its file does not describe. */
static int read_l3(nmb_fs_t *fs, int cpu, nmb_bitmap_t *out)
{
    nmb_bitmap_zero(out);
    for (int k = 0; k < 16; k++) {
        char path[160], level_path[160], cpus[256];
        long level;
        snprintf(level_path, sizeof level_path, CPU_DIR "/cpu%d/cache/index%d/level", cpu, k);
        int err = nmb__fs_read_long(fs, level_path, &level);
        if (err == -ENOENT)
            return 0;
        if (err < 0)
            return err;
        if (level != 3)
            continue;
        snprintf(path, sizeof path, CPU_DIR "/cpu%d/cache/index%d/shared_cpu_list", cpu, k);
        err = nmb__fs_read_list_or_mask(fs, path, sizeof path, "shared_cpu_map", out);
        if (err == -ENOENT)
            return 0;
        if (err < 0)
            return err;
        if (!nmb_bitmap_isset(out, cpu))
            return nmb__fail(-EINVAL, "%s lists CPUs %s, not CPU %d, whose cache it describes (%s is 3)", path,
                             nmb__fmt_list(out, cpus, sizeof cpus), cpu, level_path);
        return 0;
    }
    return 0;
}

/* Package and die numbers are read once per package and per die, not per
 * core: the first CPU of each reads its id, then the CPUs its
 * package_cpus_list (core_siblings_list before 5.3, or either's mask) or
 * die_cpus_list (die_cpus) names take the same id. The kernel builds those
 * lists from the very ids the CPUs print, so every CPU they name would read
 * the same. Where a tree has no such list (die_cpus before 5.3), or one
 * that does not parse, every core's first CPU reads its own id as before;
 * a list missing once is not asked for again. */
#define UNSET INT_MIN
typedef struct spread {
    int *package_of, *die_of;  /* by CPU id; UNSET where not read yet */
    int no_package_sets, no_die_sets;
} spread_t;

static void spread_id(nmb_topology_t *t, int cpu, const char *const *names, int num, int *no_sets,
                      int *of, int value)
{
    nmb_bitmap_t set;
    of[cpu] = value;
    if (*no_sets)
        return;
    int err = read_topology_set(&t->fs, cpu, names, num, &set);
    if (err == -ENOENT)
        *no_sets = 1;
    if (err < 0) {
        nmb__clear_error(); /* never needed before: each CPU reads its own id */
        return;
    }
    nmb_bitmap_and(&set, &set, &t->online);
    for (int c = nmb_bitmap_next(&set, 0); c >= 0; c = nmb_bitmap_next(&set, c + 1))
        if (of[c] == UNSET)
            of[c] = value;
}

/* The first CPU of a core: its package, die, core id and siblings. */
static int read_core(nmb_topology_t *t, int id, nmb_cpu_t *cpu, nmb_core_t *core, derived_packages_t *d,
                     spread_t *sp)
{
    static const char *const package_names[] = {"package_cpus", "core_siblings"};
    static const char *const die_names[] = {"die_cpus"};
    long v;
    int err;
    if (sp->package_of[id] != UNSET) {
        cpu->package = sp->package_of[id];
    } else {
        if ((err = read_package(t, id, d, &cpu->package)) < 0)
            return err;
        if (cpu->package >= 0) {
            spread_id(t, id, package_names, 2, &sp->no_package_sets, sp->package_of, cpu->package);
        } else {
            /* A derived package: its CPUs are the set derive_package made. */
            const nmb_bitmap_t *set = &d->sets[-2 - cpu->package];
            for (int c = nmb_bitmap_next(set, 0); c >= 0; c = nmb_bitmap_next(set, c + 1))
                if (sp->package_of[c] == UNSET)
                    sp->package_of[c] = cpu->package;
            sp->package_of[id] = cpu->package;
        }
    }
    if (sp->die_of[id] != UNSET) {
        cpu->die = sp->die_of[id];
    } else {
        if ((err = read_topology_long(&t->fs, id, "die_id", 0, &v)) < 0)
            return err;
        cpu->die = (int)v;
        spread_id(t, id, die_names, 1, &sp->no_die_sets, sp->die_of, cpu->die);
    }
    /* core_id only names the core (show, to_dict): a plan groups CPUs by siblings. */
    if (t->flags & NMB_TOPOLOGY_PLAN_ONLY) {
        cpu->core_id = -1;
    } else {
        if ((err = read_topology_long(&t->fs, id, "core_id", id, &v)) < 0)
            return err;
        cpu->core_id = (int)v;
    }
    if ((err = read_siblings(&t->fs, id, &core->cpus)) < 0)
        return err;
    nmb_bitmap_and(&core->cpus, &core->cpus, &t->online);
    core->package = cpu->package;
    core->node = cpu->node;
    return 0;
}

int nmb__read_cpus(nmb_topology_t *t)
{
    int err, n = nmb_bitmap_count(&t->online);
    if (n == 0)
        return nmb__fail(-EINVAL, CPU_DIR "/online lists no CPU");
    t->num_cpus = n;
    t->cpus = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *t->cpus);
    /* At most one core, one L3 and one derived package per CPU; the arrays
     * are trimmed by count. */
    t->cores = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *t->cores);
    t->l3 = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *t->l3);
    int *core_first = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *core_first);
    derived_packages_t packages = {NULL, 0, n};
    /* By CPU id: its node, core and L3 domain (the last one listing it), so
     * that 8192 CPUs cost one pass, not one pass over the cores per CPU.
     * Every set indexed here was cut to the online CPUs first, so the
     * arrays end at the last online CPU (224 entries on a DGX H100, not
     * 8192: 40 fewer pages to fault in and fill on a cold read). */
    size_t span = (size_t)nmb_bitmap_last(&t->online) + 1; /* n > 0: a CPU is online */
    int *node_of = malloc(3 * span * sizeof *node_of);
    /* Package and die ids by CPU id: a block of its own, so that neither
     * passes malloc's mmap threshold (128 KiB) on the largest machines,
     * which would map and unmap fresh pages on every read, and leave the
     * plan's allocations to fault in new heap pages after it. */
    int *ids_of = malloc(2 * span * sizeof *ids_of);
    if (!t->cpus || !t->cores || !t->l3 || !core_first || !node_of || !ids_of) {
        free(node_of);
        free(ids_of);
        free(packages.sets);
        return -ENOMEM;
    }
    int *core_of = node_of + span, *l3_of = core_of + span;
    for (size_t k = 0; k < 3 * span; k++)
        node_of[k] = -1;
    spread_t spread = {ids_of, ids_of + span, 0, 0};
    for (size_t k = 0; k < 2 * span; k++)
        spread.package_of[k] = UNSET;
    for (int k = 0; k < t->num_nodes; k++)
        for (int c = nmb_bitmap_next(&t->nodes[k].cpus, 0); c >= 0; c = nmb_bitmap_next(&t->nodes[k].cpus, c + 1))
            node_of[c] = t->nodes[k].id;

    int i = 0;
    err = 0;
    /* Every file below is opened from the directory's descriptor. */
    nmb__fs_enter(&t->fs, CPU_DIR, -1);
    for (int id = nmb_bitmap_next(&t->online, 0); id >= 0; id = nmb_bitmap_next(&t->online, id + 1), i++) {
        nmb_cpu_t *cpu = &t->cpus[i];
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
            if ((err = read_core(t, id, cpu, core, &packages, &spread)) < 0)
                break;
            /* Cores partition the CPUs: one an earlier core holds stays
             * there (only a damaged tree lists siblings asymmetrically, and
             * two ranks given "whole cores" must never share a CPU). */
            for (int c = nmb_bitmap_next(&core->cpus, 0); c >= 0; c = nmb_bitmap_next(&core->cpus, c + 1))
                if (core_of[c] >= 0)
                    nmb_bitmap_clear(&core->cpus, c);
            nmb_bitmap_set(&core->cpus, id);
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
    nmb__fs_leave(&t->fs);
    free(node_of);
    free(ids_of);
    free(packages.sets);
    if (err == 0)
        fix_packages(t);
    return err;
}

/* cpu/online, else (a capture that left it out) the cpuN directories: each
 * online unless its `online` file says 0. cpu0 often has no such file (it
 * cannot be taken offline on most machines), and a kernel without CPU
 * hotplug writes none at all. */
static int online_from_directories(nmb_topology_t *t)
{
    char **names, path[160];
    int n = nmb__fs_list(&t->fs, CPU_DIR, &names), err = 0, found = 0;
    if (n == -ENOENT || n == -ENOTDIR)
        return nmb__fail(-ENOENT, "%s" CPU_DIR "/online is missing: not a Linux sysfs tree", t->fs.root);
    if (n < 0)
        return n;
    nmb_bitmap_zero(&t->online);
    for (int i = 0; i < n && !err; i++) {
        char *end;
        if (strncmp(names[i], "cpu", 3) != 0 || names[i][3] < '0' || names[i][3] > '9')
            continue;
        errno = 0;
        long id = strtol(names[i] + 3, &end, 10);
        if (*end)
            continue; /* not a CPU: cpufreq, cpuidle */
        if (errno || id >= NMB_BITMAP_BITS) {
            err = nmb__fail(-ERANGE, CPU_DIR "/%s: CPU numbers stop at %d", names[i], NMB_BITMAP_BITS - 1);
            break;
        }
        found++;
        long on = 1;
        snprintf(path, sizeof path, CPU_DIR "/%s/online", names[i]);
        int e = nmb__fs_read_long(&t->fs, path, &on);
        if (e < 0 && e != -ENOENT)
            err = e;
        else if (on != 0 && on != 1)
            err = nmb__fail(-EINVAL, "%s: '%ld' is neither 0 nor 1", path, on);
        else if (on)
            nmb_bitmap_set(&t->online, (int)id);
    }
    nmb__fs_free_names(names, n);
    if (!err && !found)
        err = nmb__fail(-ENOENT, "%s" CPU_DIR "/online is missing and " CPU_DIR " holds no cpuN directory: not a "
                        "Linux sysfs tree", t->fs.root);
    return err;
}

int nmb__read_nodes(nmb_topology_t *t)
{
    /* Nodes need the online CPUs (a node's list may hold offline ones), and
     * CPUs need the nodes: read the online list first. */
    int err = nmb__fs_read_list(&t->fs, CPU_DIR "/online", &t->online);
    if (err == -ENOENT)
        err = online_from_directories(t);
    if (err < 0)
        return err;
    return read_nodes(t);
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

/* The affinity: on the live host the calling thread's; under a root
 * proc/self/status's Cpus_allowed_list, or, in a tree without that file
 * (hwloc-gather-topology saves none), every online CPU. */
static int read_affinity(nmb_topology_t *t, const char *status, char *value)
{
    int err;
    if (nmb__fs_live(&t->fs)) {
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
        return 0;
    }
    if (!status) {
        t->affinity = t->online;
        return 0;
    }
    if (nmb__status_field(status, "Cpus_allowed_list", value, NMB_LIST_MAX) < 0)
        return nmb__fail(-EINVAL, "proc/self/status has no Cpus_allowed_list line");
    if ((err = nmb_bitmap_parse_list(&t->affinity, value)) < 0)
        return nmb__fail(err, "proc/self/status: Cpus_allowed_list '%.64s' is not a CPU list", value);
    return 0;
}

/* What the process may use: its cpuset (what it may widen its affinity to),
 * not its current affinity — a launcher that bound the rank before numabind
 * ran (mpirun's default binding, srun --cpu-bind, an outer numabind exec)
 * would otherwise have every rank plan from another set. On the live host
 * the kernel's answer (kernel_cpuset), else the cgroup's files; under a root
 * the files alone. The affinity lies inside the cpuset; where the files say
 * otherwise (a tree that mixes two processes) the affinity is taken. A tree
 * without proc/self/status has no affinity to check: the cgroup's cpuset
 * where it has one, else every online CPU, and allowed_source says which. */
static int read_allowed(nmb_topology_t *t, char *status, char *value)
{
    int err = nmb__fs_read(&t->fs, "/proc/self/status", status, NMB_LIST_MAX);
    int have_status = err >= 0;
    if (err < 0 && err != -ENOENT)
        return err; /* unreadable, or longer than any status: never guess the allowed sets */
    if ((err = read_affinity(t, have_status ? status : NULL, value)) < 0)
        return err;

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
    t->allowed_source = have_status || nmb__fs_live(&t->fs) ? NMB_ALLOWED_AFFINITY : NMB_ALLOWED_ONLINE;
    nmb_bitmap_andnot(&outside, &t->online, &t->affinity);
    if (nmb__fs_live(&t->fs) && nmb_bitmap_iszero(&outside)) {
        /* Affinity holds every online CPU, so the cpuset (which holds the
         * affinity) does too: the probe's answer, without its thread. */
        t->allowed_cpus = t->online;
        t->allowed_source = NMB_ALLOWED_KERNEL;
    } else if (nmb__fs_live(&t->fs) && kernel_cpuset(t, &t->allowed_cpus) == 0) {
        t->allowed_source = NMB_ALLOWED_KERNEL;
    }
    /* The cgroup file read into status's buffer: status is parsed already. */
    if (nmb__fs_read(&t->fs, "/proc/self/cgroup", status, NMB_LIST_MAX) >= 0) {
        /* The files where the kernel did not answer, and whenever paths are
         * recorded: numabind gather must capture what a replay plans from. */
        int answered = t->allowed_source == NMB_ALLOWED_KERNEL;
        if ((!answered || t->fs.record) && cgroup_set(&t->fs, status, 0, &cg) == 0 && !answered) {
            if (!have_status && !nmb__fs_live(&t->fs))
                t->affinity = cg; /* the kernel keeps a task's affinity inside its cpuset */
            nmb_bitmap_andnot(&outside, &t->affinity, &cg);
            if (nmb_bitmap_iszero(&outside)) {
                t->allowed_cpus = cg;
                t->allowed_source = NMB_ALLOWED_CGROUP;
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
