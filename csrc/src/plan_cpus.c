/* Each rank's CPUs: the ranks of one NUMA node share its allowed CPUs, split
 * by the CPU policy (exclusive shares of whole cores by default). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The cores held back: the lowest `reserve` cores of each node with
 * allowed CPUs, where the OS's own interrupts and housekeeping land first. */
static void reserved_cpus(const nmb_topology_t *t, int reserve, nmb_bitmap_t *out)
{
    nmb_bitmap_zero(out);
    for (int n = 0; reserve > 0 && n < t->num_nodes; n++) {
        int held = 0;
        for (int c = 0; c < t->num_cores && held < reserve; c++) {
            const nmb_core_t *core = &t->cores[c];
            if (core->node != t->nodes[n].id || !nmb_bitmap_intersects(&core->cpus, &t->allowed_cpus))
                continue;
            nmb_bitmap_or(out, out, &core->cpus);
            held++;
        }
    }
}

/* Where a plan fails for want of CPUs and the process may use fewer CPUs
 * than are online, say why, since the cure is outside numabind: the job's
 * cpuset, or, where no cpuset was readable, a launcher's binding. */
static const char *narrowed_hint(const nmb_topology_t *t)
{
    if (nmb_bitmap_count(&t->allowed_cpus) >= nmb_bitmap_count(&t->online))
        return "";
    if (t->allowed_source == NMB_ALLOWED_KERNEL || t->allowed_source == NMB_ALLOWED_CGROUP)
        return "; the process's cgroup cpuset holds only some online CPUs: give the job a cpuset "
               "holding its GPUs' NUMA nodes";
    return "; this process may use only some online CPUs and no cgroup cpuset says what it may widen to: "
           "if a launcher bound it already, start it unbound (mpirun --bind-to none, srun --cpu-bind=none)";
}

/* The CPUs a group of ranks on `node` (-1: unknown locality) shares: the
 * node's CPUs (for the unknown group, those of `within`, the GPUs' shared
 * local_cpulist, else every online CPU), allowed, less the reserved cores
 * and, for an unknown group, less what other ranks already hold (`taken`). */
static int group_pool(const nmb_topology_t *t, int node, const nmb_bitmap_t *within, const nmb_bitmap_t *reserved,
                      const nmb_bitmap_t *taken, nmb_bitmap_t *pool)
{
    char a[256], b[256];
    int idx = nmb_topology_node_index(t, node);
    nmb_bitmap_and(pool, node >= 0 ? &t->nodes[idx].cpus : within ? within : &t->online, &t->allowed_cpus);
    nmb_bitmap_andnot(pool, pool, reserved);
    if (node < 0 && taken) {
        nmb_bitmap_t rest;
        nmb_bitmap_andnot(&rest, pool, taken);
        if (!nmb_bitmap_iszero(&rest))
            *pool = rest; /* else share with the located ranks rather than fail */
    }
    int reserving = !nmb_bitmap_iszero(reserved);
    if (nmb_bitmap_iszero(pool)) {
        if (node >= 0)
            return nmb__fail(-EINVAL, "NUMA node %d has no allowed CPUs left (node CPUs %s, allowed %s%s)%s",
                             node, nmb__fmt_list(&t->nodes[idx].cpus, a, sizeof a),
                             nmb__fmt_list(&t->allowed_cpus, b, sizeof b),
                             reserving ? ", after reserving cores" : "", narrowed_hint(t));
        if (within)
            return nmb__fail(-EINVAL, "no allowed CPUs left in the GPUs' local_cpulist %s (allowed %s%s)%s",
                             nmb__fmt_list(within, a, sizeof a), nmb__fmt_list(&t->allowed_cpus, b, sizeof b),
                             reserving ? ", after reserving cores" : "", narrowed_hint(t));
        return nmb__fail(-EINVAL, "no allowed CPUs left (allowed %s%s)%s", nmb__fmt_list(&t->allowed_cpus, b, sizeof b),
                         reserving ? ", after reserving cores" : "", narrowed_hint(t));
    }
    return 0;
}

/* Splits `pool` into k disjoint, contiguous shares of whole cores whose
 * sizes differ by at most one core. With fewer cores than ranks, splits
 * CPUs instead (SMT siblings apart) and says so. */
static int split(const nmb_topology_t *t, const nmb_bitmap_t *pool, int k, int node, nmb_bitmap_t *out,
                 const char **note)
{
    int ncores = 0;
    for (int c = 0; c < t->num_cores; c++)
        ncores += nmb_bitmap_intersects(&t->cores[c].cpus, pool);
    for (int i = 0; i < k; i++)
        nmb_bitmap_zero(&out[i]);
    if (ncores >= k) {
        /* Contiguous runs of whole cores, each run ending where its CPU
         * count comes closest to an equal share (cores the allowed set cuts
         * to one CPU weigh one), every rank at least one core. */
        long total = nmb_bitmap_count(pool), cum = 0;
        int r = 0, cores_left = ncores;
        for (int c = 0; c < t->num_cores; c++) {
            nmb_bitmap_t share;
            nmb_bitmap_and(&share, &t->cores[c].cpus, pool);
            long w = nmb_bitmap_count(&share);
            if (!w)
                continue;
            if (r < k - 1 && !nmb_bitmap_iszero(&out[r])) {
                long target = total * (r + 1);
                long with = labs(k * (cum + w) - target), without = labs(k * cum - target);
                if (with > without || cores_left == k - r - 1)
                    r++;
            }
            nmb_bitmap_or(&out[r], &out[r], &share);
            cum += w;
            cores_left--;
        }
        return 0;
    }
    int ncpus = nmb_bitmap_count(pool);
    if (ncpus < k) {
        char a[256];
        char where[64];
        if (node >= 0)
            snprintf(where, sizeof where, "NUMA node %d", node);
        else
            snprintf(where, sizeof where, "the machine (GPU locality unknown)");
        return nmb__fail(-EINVAL, "%d ranks share %s but only %d CPUs are allowed there (%s): "
                                  "more ranks than CPUs; use the 'node' policy to share them%s",
                         k, where, ncpus, nmb__fmt_list(pool, a, sizeof a), narrowed_hint(t));
    }
    int base = ncpus / k, extra = ncpus % k, r = 0, given = 0;
    for (int cpu = nmb_bitmap_next(pool, 0); cpu >= 0; cpu = nmb_bitmap_next(pool, cpu + 1)) {
        nmb_bitmap_set(&out[r], cpu);
        if (++given == base + (r < extra)) {
            r++;
            given = 0;
        }
    }
    *note = "fewer cores than ranks: SMT siblings split between ranks";
    return 0;
}

/* Every allowed CPU of the packages holding `pool`. Two passes over the
 * cores, not one per core and package: 8192 cores would take seconds. */
static int socket_of(const nmb_topology_t *t, const nmb_bitmap_t *pool, nmb_bitmap_t *out)
{
    int *packages = malloc((size_t)(t->num_cores ? t->num_cores : 1) * sizeof *packages), n = 0;
    if (!packages)
        return -ENOMEM;
    for (int c = 0; c < t->num_cores; c++) {
        const nmb_core_t *core = &t->cores[c];
        int seen = 0;
        for (int i = n - 1; i >= 0 && !seen; i--) /* the last package seen first: cores come in runs */
            seen = packages[i] == core->package;
        if (!seen && nmb_bitmap_intersects(&core->cpus, pool))
            packages[n++] = core->package;
    }
    nmb_bitmap_zero(out);
    for (int c = 0; c < t->num_cores; c++)
        for (int i = n - 1; i >= 0; i--)
            if (t->cores[c].package == packages[i]) {
                nmb_bitmap_or(out, out, &t->cores[c].cpus);
                break;
            }
    free(packages);
    nmb_bitmap_and(out, out, &t->allowed_cpus);
    return 0;
}

static int plan_group_cpus(const nmb_topology_t *t, const nmb_plan_options_t *o, int node,
                           const nmb_bitmap_t *within, int *members, int k, nmb_rank_plan_t *ranks,
                           nmb_bitmap_t *taken, nmb_arena_t *arena)
{
    nmb_bitmap_t pool, reserved, *shares = calloc((size_t)k, sizeof *shares);
    const char *note = NULL;
    int err = 0;
    if (!shares)
        return -ENOMEM;
    if (o->cpu_policy == NMB_CPU_NONE) {
        for (int i = 0; i < k; i++)
            shares[i] = t->allowed_cpus;
        goto done;
    }
    reserved_cpus(t, o->reserve_cores, &reserved);
    if ((err = group_pool(t, node, within, &reserved, taken, &pool)) < 0)
        goto out;
    switch (o->cpu_policy) {
    case NMB_CPU_NODE:
        for (int i = 0; i < k; i++)
            shares[i] = pool;
        break;
    case NMB_CPU_SOCKET: {
        nmb_bitmap_t s;
        if ((err = socket_of(t, &pool, &s)) < 0)
            goto out;
        nmb_bitmap_andnot(&s, &s, &reserved);
        for (int i = 0; i < k; i++)
            shares[i] = s;
        break;
    }
    case NMB_CPU_CORE_COMPLEX: {
        int found = 0;
        for (int d = 0; d < t->num_l3 && found < k; d++) {
            nmb_bitmap_t s;
            nmb_bitmap_and(&s, &t->l3[d].cpus, &pool);
            if (!nmb_bitmap_iszero(&s))
                shares[found++] = s;
        }
        if (found == k)
            break;
        note = "fewer L3 domains than ranks: split the node exclusively instead";
        __attribute__((fallthrough));
        /* fall through */
    }
    default:
        if ((err = split(t, &pool, k, node, shares, &note)) < 0)
            goto out;
        break;
    }
done:
    for (int i = 0; i < k; i++) {
        ranks[members[i]].cpus = shares[i];
        nmb_bitmap_or(taken, taken, &shares[i]);
        if (note && (err = nmb__plan_note(arena, &ranks[members[i]], note)) < 0)
            break;
    }
out:
    free(shares);
    return err;
}

/* Two unknown-locality ranks are one group when their GPUs' local_cpulists
 * are the same set of CPUs (NULL: no list, the whole machine). */
static int same_span(const nmb_bitmap_t *a, const nmb_bitmap_t *b)
{
    return a == b || (a && b && nmb_bitmap_equal(a, b));
}

/* Of the nodes whose CPUs meet `within` (NULL: any), allowed and not
 * reserved, the one with the fewest ranks in cpu_node[] (then the lowest
 * id); -1 when none has such a CPU. */
static int fewest_ranks_node(const nmb_topology_t *t, const nmb_plan_t *plan, const int *cpu_node,
                             const nmb_bitmap_t *within, const nmb_bitmap_t *reserved)
{
    int best = -1, best_k = 0;
    for (int n = 0; n < t->num_nodes; n++) {
        nmb_bitmap_t cpus;
        nmb_bitmap_and(&cpus, &t->nodes[n].cpus, &t->allowed_cpus);
        nmb_bitmap_andnot(&cpus, &cpus, reserved);
        if (within)
            nmb_bitmap_and(&cpus, &cpus, within);
        if (nmb_bitmap_iszero(&cpus))
            continue;
        int k = 0;
        for (int q = 0; q < plan->num_ranks; q++)
            k += cpu_node[q] == t->nodes[n].id;
        if (best < 0 || k < best_k || (k == best_k && t->nodes[n].id < best))
            best = t->nodes[n].id, best_k = k;
    }
    return best;
}

/* Exclusive shares never overlap, so a rank whose GPU's locality is
 * unknown (numa_node -1, or a node that does not exist) beside located
 * ranks takes CPUs none of them holds. Unknown ranks come in groups: those
 * whose GPUs' local_cpulist spans several nodes (span[], one group per
 * list) first, then those with no locality at all. A group takes the CPUs
 * of its list (else of the machine) that no located rank's node holds,
 * when there are enough for its ranks; else each of its ranks joins the
 * split of the node (of its list) with the fewest ranks, then the lowest
 * id. Writes into cpu_node[] the node whose CPUs each rank's share comes
 * from (-1: the left-over CPUs of its group) and notes which. */
static int place_unknown(const nmb_topology_t *t, const nmb_plan_options_t *o, nmb_plan_t *plan, int *cpu_node,
                         const nmb_bitmap_t *const *span)
{
    nmb_bitmap_t left, reserved;
    int unplaced = 0, held = 0; /* held: some rank holds CPUs already */
    char why[512], a[256], b[256];
    reserved_cpus(t, o->reserve_cores, &reserved);
    nmb_bitmap_andnot(&left, &t->allowed_cpus, &reserved);
    for (int r = 0; r < plan->num_ranks; r++)
        if (cpu_node[r] >= 0) {
            held = 1;
            nmb_bitmap_andnot(&left, &left, &t->nodes[nmb_topology_node_index(t, cpu_node[r])].cpus);
        }
    for (int r = 0; r < plan->num_ranks; r++)
        unplaced += cpu_node[r] < 0;
    if (!unplaced)
        return 0;
    int *unknown = malloc((size_t)plan->num_ranks * sizeof *unknown); /* which ranks are still unplaced */
    if (!unknown)
        return -ENOMEM;
    for (int r = 0; r < plan->num_ranks; r++)
        unknown[r] = cpu_node[r] < 0;
    int err = 0;
    for (int pass = 0; pass < 2 && !err; pass++)
        for (int r = 0; r < plan->num_ranks && !err; r++) {
            const nmb_bitmap_t *within = span[r];
            if (!unknown[r] || (within != NULL) != (pass == 0))
                continue;
            int k = 0;
            for (int q = r; q < plan->num_ranks; q++)
                k += unknown[q] && same_span(span[q], within);
            nmb_bitmap_t avail = left;
            if (within)
                nmb_bitmap_and(&avail, &avail, within);
            int enough = nmb_bitmap_count(&avail) >= k;
            if (enough && within)
                snprintf(why, sizeof why, "CPUs of its local_cpulist no located rank holds (%s)",
                         nmb__fmt_list(&avail, a, sizeof a));
            else if (enough && held)
                snprintf(why, sizeof why, "locality unknown: CPUs no located rank holds (%s)",
                         nmb__fmt_list(&avail, a, sizeof a));
            else if (enough)
                snprintf(why, sizeof why, "locality unknown: CPUs split from the whole allowed set");
            for (int q = r; q < plan->num_ranks && !err; q++) {
                if (!unknown[q] || !same_span(span[q], within))
                    continue;
                unknown[q] = 0;
                if (!enough) {
                    int best = fewest_ranks_node(t, plan, cpu_node, within, &reserved);
                    if (best < 0)
                        continue; /* no allowed CPU there: the split says so */
                    cpu_node[q] = best;
                    if (within)
                        snprintf(why, sizeof why, "no CPU of its local_cpulist %s is left over: CPUs from the "
                                 "split of NUMA node %d, of its nodes the one with the fewest ranks",
                                 nmb__fmt_list(within, b, sizeof b), best);
                    else
                        snprintf(why, sizeof why, "locality unknown and no CPUs left over: CPUs from the split of "
                                 "NUMA node %d, the node with the fewest ranks", best);
                }
                if (nmb__plan_note(&plan->arena, &plan->ranks[q], why) < 0)
                    err = -ENOMEM;
            }
            nmb_bitmap_andnot(&left, &left, &avail); /* the next group keeps clear of this one's */
            held = 1;
        }
    free(unknown);
    return err;
}

int nmb__plan_cpus(const nmb_topology_t *t, const nmb_plan_options_t *o, nmb_plan_t *plan)
{
    int n = plan->num_ranks, err = 0;
    size_t count = (size_t)(n ? n : 1);
    int *cpu_node = calloc(count, sizeof *cpu_node), *members = calloc(count, sizeof *members);
    const nmb_bitmap_t **span = calloc(count, sizeof *span);
    if (!cpu_node || !members || !span) {
        err = -ENOMEM;
        goto out;
    }
    for (int r = 0; r < n; r++) {
        nmb_bitmap_t nodes;
        cpu_node[r] = plan->ranks[r].numa_node;
        span[r] = cpu_node[r] < 0 ? nmb__gpu_span(t, plan->ranks[r].gpu, &nodes) : NULL;
    }
    if ((o->cpu_policy == NMB_CPU_EXCLUSIVE || o->cpu_policy == NMB_CPU_CORE_COMPLEX) &&
        (err = place_unknown(t, o, plan, cpu_node, span)) < 0)
        goto out;
    /* Ranks grouped by the node their CPUs come from, then the unknown
     * groups by their GPUs' local_cpulist, the list-less group last, so
     * each can keep clear of what the groups before it hold. */
    nmb_bitmap_t taken;
    nmb_bitmap_zero(&taken);
    for (int pass = 0; pass < 3; pass++)
        for (int r = 0; r < n; r++) {
            int node = cpu_node[r], k = 0, first = 1;
            const nmb_bitmap_t *within = node < 0 ? span[r] : NULL;
            if ((node >= 0 ? 0 : within ? 1 : 2) != pass)
                continue;
            for (int q = 0; q < r && first; q++)
                first = node >= 0 ? cpu_node[q] != node : cpu_node[q] >= 0 || !same_span(span[q], within);
            if (!first)
                continue;
            for (int q = r; q < n; q++)
                if (node >= 0 ? cpu_node[q] == node : cpu_node[q] < 0 && same_span(span[q], within))
                    members[k++] = q;
            if ((err = plan_group_cpus(t, o, node, within, members, k, plan->ranks, &taken, &plan->arena)) < 0)
                goto out;
        }
out:
    free(cpu_node);
    free(members);
    free(span);
    return err;
}
