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

/* Adds a fallback's reason to a rank's note ("first; second"). */
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

/* ---- memory ---- */

static int plan_memory(const nmb_topology_t *t, const nmb_plan_options_t *o, nmb_rank_plan_t *r)
{
    char a[256];
    r->mem_policy = o->mem_policy;
    if (r->numa_node < 0) {
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
        int g = o->rank_gpus ? o->rank_gpus[r] : r;
        if (o->rank_gpus && (g < 0 || g >= t->num_gpus))
            return nmb__fail(-EINVAL, "local rank %d: GPU %d is not a visible GPU (%d visible)", r, g,
                             t->num_gpus);
        if (!o->rank_gpus && t->num_gpus > 0 && g >= t->num_gpus)
            return nmb__fail(-EINVAL,
                             "local rank %d has no GPU: %d local ranks but %d visible GPUs "
                             "(CUDA_VISIBLE_DEVICES=%s); say which GPU each rank drives",
                             r, n, t->num_gpus,
                             getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "unset");
    }
    return 0;
}

int nmb_plan_create(nmb_plan_t **out, const nmb_topology_t *t, const nmb_plan_options_t *opts)
{
    nmb_plan_options_t defaults;
    int err;
    if (!out || !t)
        return nmb__fail(-EINVAL, "nmb_plan_create: %s is NULL", out ? "topology" : "out");
    *out = NULL;
    nmb__clear_error();
    if (!opts) {
        nmb_plan_options_init(&defaults);
        opts = &defaults;
    }
    int n = opts->local_world_size ? opts->local_world_size : (t->num_gpus ? t->num_gpus : 1);
    if ((err = validate(t, opts, n)) < 0)
        return err;

    nmb_plan_t *plan = calloc(1, sizeof *plan);
    int *nic_of_gpu = calloc((size_t)(t->num_all_gpus + 1), sizeof *nic_of_gpu);
    int *members = calloc((size_t)n, sizeof *members);
    if (!plan || !nic_of_gpu || !members) {
        err = -ENOMEM;
        goto fail;
    }
    plan->num_ranks = n;
    if (!(plan->ranks = nmb__arena_alloc(&plan->arena, (size_t)n * sizeof *plan->ranks))) {
        err = -ENOMEM;
        goto fail;
    }
    if ((err = nmb__assign_nics(t, nic_of_gpu)) < 0)
        goto fail;

    for (int r = 0; r < n; r++) {
        nmb_rank_plan_t *rp = &plan->ranks[r];
        rp->local_rank = r;
        rp->cpu_policy = opts->cpu_policy;
        rp->gpu = t->num_gpus ? (opts->rank_gpus ? opts->rank_gpus[r] : r) : -1;
        rp->numa_node = -1;
        if (rp->gpu < 0)
            continue;
        const nmb_gpu_t *g = &t->gpus[rp->gpu];
        rp->gpu_address = nmb__arena_strdup(&plan->arena, g->address);
        rp->numa_node = cpu_node_of(t, g->numa_node);
        /* The documented fallbacks say so in the note (pin_rank logs it). */
        char why[256];
        why[0] = '\0';
        if (g->numa_node < 0)
            snprintf(why, sizeof why, "GPU %s has no NUMA node (numa_node -1): CPUs from the whole allowed set, "
                     "memory policy left to the kernel", g->address);
        else if (rp->numa_node < 0)
            snprintf(why, sizeof why, "GPU %s is on NUMA node %d, which has no CPUs and no node with CPUs is "
                     "near it: locality unknown", g->address, g->numa_node);
        else if (rp->numa_node != g->numa_node)
            snprintf(why, sizeof why, "GPU %s is on CPU-less NUMA node %d: CPUs and memory of the nearest "
                     "node with CPUs, %d", g->address, g->numa_node, rp->numa_node);
        if (why[0] && (err = nmb__plan_note(&plan->arena, rp, why)) < 0)
            goto fail;
        int nic = nic_of_gpu[g->physical_index];
        if (nic >= 0) {
            rp->nic = nmb__arena_strdup(&plan->arena, t->nics[nic].name);
            rp->nic_port = nmb__usable_port(&t->nics[nic])->port;
            rp->distance = nmb__pci_distance(t, g->pci, t->nics[nic].pci);
            if (!rp->nic) {
                err = -ENOMEM;
                goto fail;
            }
        }
        if (!rp->gpu_address) {
            err = -ENOMEM;
            goto fail;
        }
    }
    /* CPUs: ranks grouped by node; the unknown-locality group last, so it
     * can keep clear of what located ranks hold. */
    nmb_bitmap_t taken;
    nmb_bitmap_zero(&taken);
    for (int pass = 0; pass < 2; pass++)
    for (int r = 0; r < n; r++) {
        int node = plan->ranks[r].numa_node, k = 0, first = 1;
        if ((node < 0) != (pass == 1))
            continue;
        for (int q = 0; q < r; q++)
            if (plan->ranks[q].numa_node == node)
                first = 0;
        if (!first)
            continue;
        for (int q = r; q < n; q++)
            if (plan->ranks[q].numa_node == node)
                members[k++] = q;
        if ((err = nmb__plan_group_cpus(t, opts, node, members, k, plan->ranks, &taken, &plan->arena)) < 0)
            goto fail;
    }
    for (int r = 0; r < n; r++) {
        if ((err = plan_memory(t, opts, &plan->ranks[r])) < 0 ||
            (err = nmb__plan_env(plan, opts, &plan->ranks[r])) < 0)
            goto fail;
    }
    free(nic_of_gpu);
    free(members);
    *out = plan;
    return 0;
fail:
    free(nic_of_gpu);
    free(members);
    nmb_plan_destroy(plan);
    return err;
}
