/* The plan: which CPUs, memory nodes and NIC each local rank gets. Pure: a
 * function of the topology, the options and the NIC variables already in
 * the environment, so every rank computes the same answer alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct nmb_plan {
    nmb_arena_t arena;
    int num_ranks;
    nmb_rank_plan_t *ranks;
};

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

/* ---- launcher variables ---- */

/* Each launcher's local rank and local size, the innermost launcher first:
 * one started inside another (torchrun in an srun step, mpirun in an sbatch
 * script) sets its own variables while the outer one's stay inherited —
 * an sbatch script's SLURM_LOCALID=0 reaches every rank of an mpirun in it.
 * Slurm's size is a per-node list: see slurm_tasks(). */
static const struct launcher {
    const char *rank, *size;
} launchers[] = {
    {"LOCAL_RANK", "LOCAL_WORLD_SIZE"},                           /* torchrun */
    {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"}, /* Open MPI mpirun */
    {"MPI_LOCALRANKID", "MPI_LOCALNRANKS"},                       /* MPICH, Intel MPI (Hydra) */
    {"PMI_LOCAL_RANK", "PMI_LOCAL_SIZE"},                         /* HPE Cray PALS mpiexec */
    {"SLURM_LOCALID", NULL},                                      /* srun */
};

#define ENV_MAX (1L << 20)

/* A decimal count at p, digits only; the end in *end. -1 when none. */
static long count_at(const char *p, const char **end)
{
    long n = 0;
    *end = p;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((n = n * 10 + (*p - '0')) > ENV_MAX)
            return -1;
    *end = p;
    return n;
}

static int env_count(const char *name, int minimum, int *out)
{
    const char *v = getenv(name), *end;
    if (!v)
        return -ENOENT;
    long n = count_at(v, &end);
    if (n < minimum || *end)
        return nmb__fail_env(name, -EINVAL, "%s='%.64s' is not a %s integer", name, v,
                             minimum ? "positive" : "non-negative");
    *out = (int)n;
    return 0;
}

/* Slurm's tasks per node, "4(x2),3": four tasks on each of nodes 0 and 1,
 * three on node 2, for node `node` (SLURM_NODEID); without it (node < 0),
 * only a list giving every node the same count answers. */
static int slurm_tasks(const char *name, int node, int *out)
{
    const char *v = getenv(name), *p, *end;
    long index = 0, mine = -1, first = -1, same = 1;
    if (!v)
        return -ENOENT;
    for (p = v;; p++) {
        long count = count_at(p, &end), reps = 1;
        if (count < 0)
            goto bad;
        p = end;
        if (strncmp(p, "(x", 2) == 0) {
            reps = count_at(p + 2, &end);
            if (reps < 1 || *end != ')')
                goto bad;
            p = end + 1;
        }
        if (node >= index && node < index + reps)
            mine = count;
        same &= first < 0 || count == first;
        if (first < 0)
            first = count;
        if ((index += reps) > ENV_MAX)
            goto bad;
        if (!*p)
            break;
        if (*p != ',')
            goto bad;
    }
    if (mine < 0 && same)
        mine = first; /* every node has this count: which one we are does not matter */
    if (mine < 0 && node < 0)
        return nmb__fail_env(name, -EINVAL, "%s='%.64s' differs between nodes and SLURM_NODEID is not set",
                             name, v);
    if (mine < 0)
        return nmb__fail_env(name, -EINVAL, "%s='%.64s' names %ld nodes; SLURM_NODEID='%d' is not one of them",
                             name, v, index, node);
    if (mine < 1)
        return nmb__fail_env(name, -EINVAL, "%s='%.64s' gives node %d no task", name, v, node < 0 ? 0 : node);
    *out = (int)mine;
    return 0;
bad:
    return nmb__fail_env(name, -EINVAL, "%s='%.64s' is not a Slurm task count list like '4(x2),3'", name, v);
}

/* Slurm's local size: the step's tasks on this node, else the job's; the
 * user's --ntasks-per-node last (Slurm sets it only when asked for it, and
 * an srun step inside the job may start fewer). */
static int slurm_size(int *size, const char **source)
{
    static const char *const names[] = {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE",
                                        "SLURM_NTASKS_PER_NODE"};
    for (int i = 0; i < COUNT(names); i++) {
        if (!getenv(names[i]))
            continue;
        int node = -1, err = env_count("SLURM_NODEID", 0, &node);
        if (err < 0 && err != -ENOENT)
            return err;
        *source = names[i];
        return slurm_tasks(names[i], node, size);
    }
    return -ENOENT;
}

static int launcher_size(const struct launcher *l, int *size, const char **source)
{
    if (!l->size)
        return slurm_size(size, source);
    *source = l->size;
    return env_count(l->size, 1, size);
}

/* The innermost launcher that set a local rank, or NULL. */
static const struct launcher *rank_launcher(void)
{
    for (int i = 0; i < COUNT(launchers); i++)
        if (getenv(launchers[i].rank))
            return &launchers[i];
    return NULL;
}

int nmb_local_rank_from_env(int *rank, const char **source)
{
    if (!rank)
        return nmb__fail(-EINVAL, "nmb_local_rank_from_env: rank is NULL");
    const struct launcher *l = rank_launcher();
    if (!l)
        return nmb__fail(-ENOENT, "no local rank in the environment: none of LOCAL_RANK, "
                                  "OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, PMI_LOCAL_RANK, "
                                  "SLURM_LOCALID is set");
    int r, size;
    const char *size_name = NULL;
    int err = env_count(l->rank, 0, &r);
    if (err == 0)
        err = launcher_size(l, &size, &size_name);
    if (err == -ENOENT)
        size = INT_MAX; /* the launcher gave no size: the plan's size decides */
    else if (err < 0)
        return err;
    if (r >= size)
        return nmb__fail_env(l->rank, -EINVAL, "%s='%.64s' is not below %s='%.64s' (local size %d)", l->rank,
                             getenv(l->rank), size_name, getenv(size_name), size);
    *rank = r;
    if (source)
        *source = l->rank;
    return 0;
}

int nmb_local_world_size_from_env(int *size, const char **source)
{
    if (!size)
        return nmb__fail(-EINVAL, "nmb_local_world_size_from_env: size is NULL");
    /* The rank's launcher alone: another's size describes another job. */
    const struct launcher *l = rank_launcher();
    const char *name = NULL;
    int n = 0, err = -ENOENT;
    for (int i = 0; i < COUNT(launchers) && err == -ENOENT; i++)
        if (!l || l == &launchers[i])
            err = launcher_size(&launchers[i], &n, &name);
    /* Say which variables were looked for: a bare -ENOENT would leave an
     * earlier call's detail in nmb_last_error(). */
    if (err == -ENOENT && l)
        return nmb__fail(err, "%s is set but its launcher gives no local size (%s unset)", l->rank,
                         l->size ? l->size
                                 : "SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE, SLURM_NTASKS_PER_NODE");
    if (err == -ENOENT)
        return nmb__fail(err, "no local size in the environment: none of LOCAL_WORLD_SIZE, "
                              "OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS, PMI_LOCAL_SIZE, "
                              "SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE, SLURM_NTASKS_PER_NODE is set");
    if (err < 0)
        return err;
    *size = n;
    if (source)
        *source = name;
    return 0;
}

/* ---- CPUs ---- */

static const char *fmt_list(const nmb_bitmap_t *s, char *buf, size_t len)
{
    nmb_bitmap_format_list(s, buf, len);
    return buf[0] ? buf : "(empty)";
}

/* Adds a fallback's reason to a rank's note ("first; second"). */
static int add_note(nmb_arena_t *arena, nmb_rank_plan_t *r, const char *why)
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

/* When the process may use fewer CPUs than are online, a launcher may
 * have bound it before numabind ran: say so where a plan fails for want
 * of CPUs, since the cure is on the launcher's command line. */
static const char *narrowed_hint(const nmb_topology_t *t)
{
    if (nmb_bitmap_count(&t->allowed_cpus) >= nmb_bitmap_count(&t->online))
        return "";
    return "; this process may use only some online CPUs: if a launcher bound it already, start it "
           "unbound (mpirun --bind-to none, srun --cpu-bind=none) so every rank plans from the same set";
}

/* The CPUs a group of ranks on `node` (-1: unknown locality) shares: the
 * node's (or every online) CPU, allowed, less the reserved cores and, for
 * the unknown group, less what located ranks already hold (`taken`). */
static int group_pool(const nmb_topology_t *t, int node, const nmb_bitmap_t *reserved,
                      const nmb_bitmap_t *taken, nmb_bitmap_t *pool)
{
    char a[256], b[256];
    int idx = nmb_topology_node_index(t, node);
    nmb_bitmap_and(pool, node >= 0 ? &t->nodes[idx].cpus : &t->online, &t->allowed_cpus);
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
                             node, fmt_list(&t->nodes[idx].cpus, a, sizeof a),
                             fmt_list(&t->allowed_cpus, b, sizeof b),
                             reserving ? ", after reserving cores" : "", narrowed_hint(t));
        return nmb__fail(-EINVAL, "no allowed CPUs left (allowed %s%s)%s", fmt_list(&t->allowed_cpus, b, sizeof b),
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
                         k, where, ncpus, fmt_list(pool, a, sizeof a), narrowed_hint(t));
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

static int plan_group_cpus(const nmb_topology_t *t, const nmb_plan_options_t *o, int node, int *members,
                           int k, nmb_rank_plan_t *ranks, nmb_bitmap_t *taken, nmb_arena_t *arena)
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
    if ((err = group_pool(t, node, &reserved, taken, &pool)) < 0)
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
        if (note && (err = add_note(arena, &ranks[members[i]], note)) < 0)
            break;
    }
out:
    free(shares);
    return err;
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
                         r->local_rank, r->numa_node, fmt_list(&t->allowed_mems, a, sizeof a));
    return 0;
}

/* ---- NICs ---- */

/* The port a NIC would serve on: its first ACTIVE InfiniBand or Ethernet
 * port (EFA and other link layers are skipped by NVSHMEM and NCCL's IB
 * transport alike). NULL when none. */
static const nmb_nic_port_t *usable_port(const nmb_nic_t *nic)
{
    for (int p = 0; p < nic->num_ports; p++) {
        const nmb_nic_port_t *port = &nic->ports[p];
        if (port->state == NMB_PORT_ACTIVE &&
            (port->link_layer == NMB_LINK_INFINIBAND || port->link_layer == NMB_LINK_ETHERNET))
            return port;
    }
    return NULL;
}

/* Node-wide, one-to-one where possible: the candidates are the fastest
 * usable NICs (InfiniBand over Ethernet where both exist; slower storage and
 * management NICs set aside); each GPU, in PCI order, takes the closest
 * candidate, then the one with fewest GPUs on it, then PCI order. Writes the
 * NIC index per physical GPU (-1: none). */
static int assign_nics(const nmb_topology_t *t, int *nic_of_gpu)
{
    int n = t->num_nics, any_ib = 0;
    double best_rate = 0;
    int *cand = calloc((size_t)(n ? n : 1), sizeof *cand), *load = calloc((size_t)(n ? n : 1), sizeof *load);
    if (!cand || !load) {
        free(cand);
        free(load);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        const nmb_nic_port_t *p = usable_port(&t->nics[i]);
        if (p && p->link_layer == NMB_LINK_INFINIBAND)
            any_ib = 1;
    }
    for (int i = 0; i < n; i++) {
        const nmb_nic_port_t *p = usable_port(&t->nics[i]);
        cand[i] = p && (!any_ib || p->link_layer == NMB_LINK_INFINIBAND);
        if (cand[i] && p->rate_gbps > best_rate)
            best_rate = p->rate_gbps;
    }
    for (int i = 0; i < n; i++)
        if (cand[i] && usable_port(&t->nics[i])->rate_gbps < best_rate)
            cand[i] = 0;
    for (int g = 0; g < t->num_all_gpus; g++) {
        int best = -1, best_d = 0;
        for (int i = 0; i < n; i++) {
            if (!cand[i])
                continue;
            int d = nmb__pci_distance(t, t->all_gpus[g].pci, t->nics[i].pci);
            if (best < 0 || d < best_d || (d == best_d && load[i] < load[best]))
                best = i, best_d = d;
        }
        nic_of_gpu[g] = best;
        if (best >= 0)
            load[best]++;
    }
    free(cand);
    free(load);
    return 0;
}

/* ---- environment ---- */

static int plan_env(nmb_plan_t *plan, const nmb_plan_options_t *o, nmb_rank_plan_t *r)
{
    if (!r->nic)
        return 0;
    char dev[320];
    snprintf(dev, sizeof dev, "%s:%d", r->nic, r->nic_port);
    /* One entry per process: with NIC_PE_MAPPING each PE takes entry
     * mype_node % n, and DeepEP's normal mode makes every process PE 0 of its
     * node, so a node-wide list would send every GPU to the first NIC.
     * NCCL_IB_HCA is a prefix match unless it starts with '=' (mlx5_1
     * would also match mlx5_10). */
    struct {
        const char *name;
        const char *fmt;
    } vars[] = {
        {"NVSHMEM_HCA_LIST", "%s"},
        {"NVSHMEM_ENABLE_NIC_PE_MAPPING", "1"},
        {"NCCL_IB_HCA", "=%s"},
        {"UCX_NET_DEVICES", "%s"},
    };
    nmb_env_var_t *env = nmb__arena_alloc(&plan->arena, sizeof vars / sizeof *vars * sizeof *env);
    if (!env)
        return -ENOMEM;
    for (int i = 0; i < COUNT(vars); i++) {
        char value[400];
        snprintf(value, sizeof value, vars[i].fmt, dev);
        const char *user = getenv(vars[i].name);
        env[i].name = vars[i].name;
        if (!(env[i].value = nmb__arena_strdup(&plan->arena, value)) ||
            (user && !(env[i].user = nmb__arena_strdup(&plan->arena, user))))
            return -ENOMEM;
        env[i].kept = user && !o->override_env;
    }
    r->env = env;
    r->num_env = COUNT(vars);
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
    if ((err = assign_nics(t, nic_of_gpu)) < 0)
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
        if (why[0] && (err = add_note(&plan->arena, rp, why)) < 0)
            goto fail;
        int nic = nic_of_gpu[g->physical_index];
        if (nic >= 0) {
            rp->nic = nmb__arena_strdup(&plan->arena, t->nics[nic].name);
            rp->nic_port = usable_port(&t->nics[nic])->port;
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
        if ((err = plan_group_cpus(t, opts, node, members, k, plan->ranks, &taken, &plan->arena)) < 0)
            goto fail;
    }
    for (int r = 0; r < n; r++) {
        if ((err = plan_memory(t, opts, &plan->ranks[r])) < 0 ||
            (err = plan_env(plan, opts, &plan->ranks[r])) < 0)
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
