/* The plan: which CPUs, memory nodes and NIC each local rank gets. Pure: a
 * function of the topology, the options and the NIC variables already in
 * the environment, so every rank computes the same answer alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const cpu_policy_names[] = {"exclusive", "node", "socket", "core-complex", "none"};
static const char *const mem_policy_names[] = {"preferred", "bind", "interleave", "local", "default"};
#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

const char *nmb_cpu_policy_name(int p)
{
    return p >= 0 && p < COUNT(cpu_policy_names) ? cpu_policy_names[p] : NULL;
}

const char *nmb_mem_policy_name(int p)
{
    return p >= 0 && p < COUNT(mem_policy_names) ? mem_policy_names[p] : NULL;
}

int nmb_cpu_policy_from_name(const char *name)
{
    for (int i = 0; name && i < COUNT(cpu_policy_names); i++)
        if (strcmp(name, cpu_policy_names[i]) == 0)
            return i;
    return nmb__fail(-EINVAL, "unknown CPU policy '%.64s' (exclusive, node, socket, core-complex, none)",
                     name ? name : "(null)");
}

int nmb_mem_policy_from_name(const char *name)
{
    /* "default" is what numabind picks when locality is unknown, not a choice. */
    for (int i = 0; name && i < COUNT(mem_policy_names) - 1; i++)
        if (strcmp(name, mem_policy_names[i]) == 0)
            return i;
    return nmb__fail(-EINVAL, "unknown memory policy '%.64s' (preferred, bind, interleave, local)",
                     name ? name : "(null)");
}

void nmb_plan_options_init(nmb_plan_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->cpu_policy = NMB_CPU_EXCLUSIVE;
    o->mem_policy = NMB_MEM_PREFERRED;
}

void nmb_plan_destroy(nmb_plan_t *plan)
{
    if (!plan)
        return;
    nmb__arena_free(&plan->arena);
    free(plan);
}

int nmb_plan_num_ranks(const nmb_plan_t *plan)
{
    return plan ? plan->num_ranks : -EINVAL;
}

const nmb_rank_plan_t *nmb_plan_rank(const nmb_plan_t *plan, int r)
{
    return plan && r >= 0 && r < plan->num_ranks ? &plan->ranks[r] : NULL;
}

/* ---- notes ---- */

const char *nmb__fmt_list(const nmb_bitmap_t *s, char *buf, size_t len)
{
    nmb_bitmap_format_list(s, buf, len);
    return buf[0] ? buf : "(empty)";
}

int nmb__plan_note(nmb_arena_t *arena, nmb_rank_plan_t *r, const char *why)
{
    char buf[512];
    if (r->note && strstr(r->note, why))
        return 0;
    snprintf(buf, sizeof buf, "%s%s%s", r->note ? r->note : "", r->note ? "; " : "", why);
    const char *note = nmb__arena_strdup(arena, buf);
    if (!note)
        return -ENOMEM;
    r->note = note;
    return 0;
}

/* The node a GPU's ranks run on: its own, or, for a CPU-less node (GPU
 * memory on Grace machines), the nearest node that has CPUs. */
static int cpu_node_of(const nmb_topology_t *t, int gpu_node)
{
    int idx = nmb_topology_node_index(t, gpu_node);
    if (gpu_node < 0 || idx < 0)
        return -1;
    if (t->nodes[idx].has_cpus)
        return gpu_node;
    int best = -1, best_d = 0;
    for (int j = 0; j < t->num_nodes; j++) {
        int d = t->nodes[idx].distances[j];
        if (t->nodes[j].has_cpus && (best < 0 || d < best_d))
            best = j, best_d = d;
    }
    return best < 0 ? -1 : t->nodes[best].id;
}

/* A device whose numa_node is -1 (firmware without _PXM) may still have a
 * local_cpulist narrower than the machine (the kernel took it from the
 * host bridge's or an older BIOS's affinity). Writes into `nodes` the NUMA
 * nodes those CPUs touch: one node is the device's locality; several (a
 * socket of an NPS2/SNC2 machine) make the list itself the rank's CPU pool
 * and those nodes its memory; none (an empty list, or every online CPU, as
 * x86 kernels write for -1) says nothing. */
void nmb__local_cpus_nodes(const nmb_topology_t *t, const nmb_bitmap_t *local, nmb_bitmap_t *nodes)
{
    nmb_bitmap_zero(nodes);
    if (nmb_bitmap_iszero(local) || nmb_bitmap_is_subset(&t->online, local))
        return;
    for (int n = 0; n < t->num_nodes; n++)
        if (nmb_bitmap_intersects(&t->nodes[n].cpus, local))
            nmb_bitmap_set(nodes, t->nodes[n].id);
}

const nmb_bitmap_t *nmb__gpu_span(const nmb_topology_t *t, int gpu, nmb_bitmap_t *nodes)
{
    const nmb_gpu_t *g = &t->gpus[gpu];
    nmb_bitmap_zero(nodes);
    if (g->numa_node >= 0)
        return NULL;
    nmb__local_cpus_nodes(t, &t->pci[g->pci].local_cpus, nodes);
    return nmb_bitmap_count(nodes) > 1 ? &t->pci[g->pci].local_cpus : NULL;
}

/* ---- memory ---- */

static int plan_memory(const nmb_topology_t *t, const nmb_plan_options_t *o, nmb_rank_plan_t *r)
{
    char a[256];
    r->mem_policy = o->mem_policy;
    if (r->numa_node < 0) {
        nmb_bitmap_t span;
        if (nmb__gpu_span(t, r->gpu, &span)) {
            /* The GPU's local_cpulist spans these nodes: bind and interleave
             * keep to them; preferred and local have no one node to name, so
             * the kernel's local allocation serves (the rank's CPUs lie in
             * them, so first touch lands there). */
            nmb_bitmap_and(&r->mems, &span, &t->allowed_mems);
            if (!nmb_bitmap_iszero(&r->mems)) {
                if (o->mem_policy != NMB_MEM_BIND && o->mem_policy != NMB_MEM_INTERLEAVE)
                    r->mem_policy = NMB_MEM_DEFAULT;
                return 0;
            }
        }
        /* Unknown locality: no node to prefer. Leave the kernel's default. */
        r->mem_policy = NMB_MEM_DEFAULT;
        r->mems = t->allowed_mems;
        return 0;
    }
    nmb_bitmap_zero(&r->mems);
    if (o->mem_policy == NMB_MEM_INTERLEAVE) {
        for (int n = 0; n < t->num_nodes; n++)
            if (t->nodes[n].has_cpus)
                nmb_bitmap_set(&r->mems, t->nodes[n].id);
    } else {
        nmb_bitmap_set(&r->mems, r->numa_node);
    }
    nmb_bitmap_and(&r->mems, &r->mems, &t->allowed_mems);
    if (nmb_bitmap_iszero(&r->mems))
        return nmb__fail(-EINVAL, "local rank %d: NUMA node %d is not an allowed memory node (allowed %s)",
                         r->local_rank, r->numa_node, nmb__fmt_list(&t->allowed_mems, a, sizeof a));
    return 0;
}

/* ---- the plan ---- */

/* Whether rank r's GPU was named (rank_gpus[r], -1 meaning "not named"). */
static int gpu_named(const nmb_plan_options_t *o, int r)
{
    return o->rank_gpus && o->rank_gpus[r] != -1;
}

/* Rank r's visible GPU: the one rank_gpus names, else the r-th. */
static int rank_gpu(const nmb_plan_options_t *o, int r)
{
    return gpu_named(o, r) ? o->rank_gpus[r] : r;
}

static int validate(const nmb_topology_t *t, const nmb_plan_options_t *o, int n)
{
    if (o->cpu_policy < 0 || o->cpu_policy > NMB_CPU_NONE)
        return nmb__fail(-EINVAL, "unknown CPU policy %d", o->cpu_policy);
    if (o->mem_policy < 0 || o->mem_policy > NMB_MEM_LOCAL)
        return nmb__fail(-EINVAL, "unknown memory policy %d", o->mem_policy);
    if (o->reserve_cores < 0)
        return nmb__fail(-EINVAL, "reserve_cores %d is negative", o->reserve_cores);
    if (o->local_world_size < 0)
        return nmb__fail(-EINVAL, "local_world_size %d is negative", o->local_world_size);
    for (int r = 0; r < n; r++) {
        int given = gpu_named(o, r), g = rank_gpu(o, r);
        if (given && (g < 0 || g >= t->num_gpus))
            return nmb__fail(-EINVAL, "local rank %d: GPU %d is not a visible GPU (%d visible)", r, g,
                             t->num_gpus);
        if (!given && g >= t->num_gpus)
            return nmb__fail(-EINVAL,
                             "local rank %d has no GPU: %d local ranks but %d visible GPUs "
                             "(CUDA_VISIBLE_DEVICES=%s); say which GPU each rank drives",
                             r, n, t->num_gpus,
                             getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "unset");
    }
    return 0;
}

/* Why a node has no rank to place: no GPU CUDA would show this process. */
static const char *no_gpu_reason(const nmb_topology_t *t, char *buf, size_t len)
{
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
    if (t->num_all_gpus == 0)
        snprintf(buf, len, "no NVIDIA GPU on this node (sysfs lists no NVIDIA display or 3D controller)");
    else if (t->num_accessible_gpus == 0)
        snprintf(buf, len, "this process can open none of the node's %d NVIDIA GPUs (the driver's "
                 "/proc/driver/nvidia/gpus and /dev/nvidia* hold none: a container given no GPU)", t->num_all_gpus);
    else
        snprintf(buf, len, "CUDA_VISIBLE_DEVICES='%.64s' hides every GPU", cvd ? cvd : "");
    return buf;
}

/* The rank's GPU, its CPU node, and the note each documented fallback owes
 * (pin_rank logs it). */
static int plan_gpu(const nmb_topology_t *t, const nmb_plan_options_t *o, nmb_plan_t *plan, int r)
{
    nmb_rank_plan_t *rp = &plan->ranks[r];
    char why[384]; /* room for a 127-character local_cpulist */
    rp->local_rank = r;
    rp->cpu_policy = o->cpu_policy;
    rp->gpu = rank_gpu(o, r);
    const nmb_gpu_t *g = &t->gpus[rp->gpu];
    if (!(rp->gpu_address = nmb__arena_strdup(&plan->arena, g->address)))
        return -ENOMEM;
    rp->numa_node = cpu_node_of(t, g->numa_node);
    why[0] = '\0';
    nmb_bitmap_t nodes;
    char cpus[128], spans[64];
    const nmb_bitmap_t *local = &t->pci[g->pci].local_cpus;
    int local_node = -1;
    if (g->numa_node < 0) {
        nmb__local_cpus_nodes(t, local, &nodes);
        if (nmb_bitmap_count(&nodes) == 1)
            local_node = nmb_bitmap_next(&nodes, 0);
    } else
        nmb_bitmap_zero(&nodes);
    if (local_node >= 0) {
        rp->numa_node = local_node;
        snprintf(why, sizeof why, "GPU %s: numa_node -1 but local_cpulist %s lies in NUMA node %d: that "
                 "node's CPUs and memory", g->address, nmb__fmt_list(local, cpus, sizeof cpus), local_node);
    } else if (g->numa_node < 0 && nmb_bitmap_count(&nodes) > 1) {
        snprintf(why, sizeof why, "GPU %s has no NUMA node (numa_node -1) and its local_cpulist %s spans "
                 "NUMA nodes %s: no one node; CPUs from that list, memory from those nodes", g->address,
                 nmb__fmt_list(local, cpus, sizeof cpus), nmb__fmt_list(&nodes, spans, sizeof spans));
    } else if (g->numa_node < 0)
        snprintf(why, sizeof why, "GPU %s has no NUMA node (numa_node -1): memory policy left to the kernel",
                 g->address);
    else if (nmb_topology_node_index(t, g->numa_node) < 0)
        snprintf(why, sizeof why, "GPU %s names NUMA node %d, which does not exist: locality unknown, memory "
                 "policy left to the kernel", g->address, g->numa_node);
    else if (rp->numa_node < 0)
        snprintf(why, sizeof why, "GPU %s is on NUMA node %d, which has no CPUs and no node with CPUs is "
                 "near it: locality unknown", g->address, g->numa_node);
    else if (rp->numa_node != g->numa_node)
        snprintf(why, sizeof why, "GPU %s is on CPU-less NUMA node %d: CPUs and memory of the nearest "
                 "node with CPUs, %d", g->address, g->numa_node, rp->numa_node);
    return why[0] ? nmb__plan_note(&plan->arena, rp, why) : 0;
}

/* A tree without proc/self/status or a cgroup cpuset says nothing of what
 * the process may use: the plan takes every online CPU, and says so. */
static int note_allowed_source(const nmb_topology_t *t, nmb_arena_t *arena, nmb_rank_plan_t *r)
{
    if (t->allowed_source != NMB_ALLOWED_ONLINE)
        return 0;
    return nmb__plan_note(arena, r, "no proc/self/status in the tree: planned from every online CPU");
}

int nmb_plan_create(nmb_plan_t **out, const nmb_topology_t *t, const nmb_plan_options_t *opts)
{
    nmb_plan_options_t defaults;
    char why[256];
    int err;
    if (!out || !t)
        return nmb__fail(-EINVAL, "nmb_plan_create: %s is NULL", out ? "topology" : "out");
    *out = NULL;
    nmb__clear_error();
    if (!opts) {
        nmb_plan_options_init(&defaults);
        opts = &defaults;
    }
    /* No visible GPU, no rank: nothing says where a rank belongs. */
    int n = !t->num_gpus ? 0 : opts->local_world_size ? opts->local_world_size : t->num_gpus;
    if ((err = validate(t, opts, n)) < 0)
        return err;

    nmb_plan_t *plan = calloc(1, sizeof *plan);
    if (!plan)
        return -ENOMEM;
    plan->num_ranks = n;
    plan->override_env = opts->override_env;
    if (!n && !(plan->note = nmb__arena_strdup(&plan->arena, no_gpu_reason(t, why, sizeof why)))) {
        err = -ENOMEM;
        goto fail;
    }
    if (n && !(plan->ranks = nmb__arena_alloc(&plan->arena, (size_t)n * sizeof *plan->ranks))) {
        err = -ENOMEM;
        goto fail;
    }
    for (int r = 0; r < n; r++)
        if ((err = plan_gpu(t, opts, plan, r)) < 0 || (err = note_allowed_source(t, &plan->arena, &plan->ranks[r])) < 0)
            goto fail;
    if ((err = nmb__plan_nics(t, opts, plan)) < 0 || (err = nmb__plan_cpus(t, opts, plan)) < 0)
        goto fail;
    for (int r = 0; r < n; r++) {
        if ((err = plan_memory(t, opts, &plan->ranks[r])) < 0 ||
            (err = nmb__plan_env(plan, opts, &plan->ranks[r])) < 0)
            goto fail;
    }
    *out = plan;
    return 0;
fail:
    nmb_plan_destroy(plan);
    return err;
}

const char *nmb_plan_note(const nmb_plan_t *plan)
{
    return plan ? plan->note : NULL;
}
