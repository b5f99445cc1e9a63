/* What a person knows and the plan cannot (`numabind exec --cpus 0-7 --nic
 * mlx5_3`): one rank's CPUs, memory nodes or NIC replaced after planning,
 * each checked against the topology first, so a rejected override leaves
 * the plan as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int check_cpus(const nmb_topology_t *t, const nmb_bitmap_t *cpus)
{
    char a[256], b[256];
    nmb_bitmap_t outside;
    if (nmb_bitmap_iszero(cpus))
        return nmb__fail(-EINVAL, "the CPU list is empty");
    nmb_bitmap_andnot(&outside, cpus, &t->allowed_cpus);
    if (!nmb_bitmap_iszero(&outside))
        return nmb__fail(-EINVAL, "CPUs %s are not allowed to this process (allowed CPUs %s)",
                         nmb__fmt_list(&outside, a, sizeof a), nmb__fmt_list(&t->allowed_cpus, b, sizeof b));
    return 0;
}

static int check_mems(const nmb_topology_t *t, const nmb_bitmap_t *mems, int policy)
{
    char a[256], b[256];
    nmb_bitmap_t outside;
    if (nmb_bitmap_iszero(mems))
        return nmb__fail(-EINVAL, "the memory node list is empty");
    nmb_bitmap_andnot(&outside, mems, &t->allowed_mems);
    if (!nmb_bitmap_iszero(&outside))
        return nmb__fail(-EINVAL, "memory nodes %s are not allowed to this process (allowed memory nodes %s)",
                         nmb__fmt_list(&outside, a, sizeof a), nmb__fmt_list(&t->allowed_mems, b, sizeof b));
    if (policy == NMB_MEM_PREFERRED && nmb_bitmap_count(mems) > 1)
        return nmb__fail(-EINVAL, "the preferred memory policy takes one node, not %s: bind or interleave "
                                  "spread over several", nmb__fmt_list(mems, a, sizeof a));
    if (policy == NMB_MEM_DEFAULT || policy == NMB_MEM_LOCAL)
        return nmb__fail(-EINVAL, "the %s memory policy takes no nodes (memory nodes %s given): choose "
                                  "preferred, bind or interleave", nmb_mem_policy_name(policy),
                         nmb__fmt_list(mems, a, sizeof a));
    return 0;
}

/* "mlx5_3" or "mlx5_3:2": the NIC's index and port (its first usable port,
 * else port 1, when none is named). */
static int find_nic(const nmb_topology_t *t, const char *spec, int *index, int *port)
{
    char name[256], names[512] = "";
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!len || len >= sizeof name)
        return nmb__fail(-EINVAL, "'%.64s' is not an RDMA NIC's name (NAME or NAME:PORT)", spec);
    memcpy(name, spec, len);
    name[len] = '\0';
    int i = nmb_topology_nic_index(t, name);
    if (i < 0) {
        for (int n = 0; n < t->num_nics; n++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", n ? ", " : "", t->nics[n].name);
        return nmb__fail(-EINVAL, "no RDMA NIC named '%s' on this node (%s)", name,
                         t->num_nics ? names : "it has none");
    }
    const nmb_nic_t *nic = &t->nics[i];
    *index = i;
    if (!colon) {
        const nmb_nic_port_t *p = nmb__usable_port(nic);
        *port = p ? p->port : nic->num_ports ? nic->ports[0].port : 1;
        return 0;
    }
    long want = 0;
    const char *d = colon + 1;
    for (; *d >= '0' && *d <= '9' && want <= 255; d++)   /* digits only: no sign, no space */
        want = want * 10 + (*d - '0');
    if (d == colon + 1 || *d || want < 1 || want > 255)
        return nmb__fail(-EINVAL, "'%.64s': '%.16s' is not a port number (1-255)", spec, colon + 1);
    for (int p = 0; p < nic->num_ports; p++)
        if (nic->ports[p].port == want) {
            *port = (int)want;
            return 0;
        }
    return nmb__fail(-EINVAL, "%s has no port %ld (it has %d)", name, want, nic->num_ports);
}

static int change(nmb_plan_t *plan, const nmb_topology_t *t, nmb_rank_plan_t *r, const nmb_rank_override_t *ov,
                  int policy, int nic, int port);

void nmb_rank_override_init(nmb_rank_override_t *ov)
{
    if (!ov)
        return;
    memset(ov, 0, sizeof *ov);
    ov->mem_policy = -1;
}

int nmb_plan_override_rank(nmb_plan_t *plan, const nmb_topology_t *t, int local_rank, const nmb_rank_override_t *ov)
{
    int err, nic = -1, port = 0;
    if (!plan || !t || !ov)
        return nmb__fail(-EINVAL, "nmb_plan_override_rank: %s is NULL", !plan ? "plan" : !t ? "topology" : "override");
    nmb__clear_error();
    if (local_rank < 0 || local_rank >= plan->num_ranks)
        return nmb__fail(-EINVAL, "local rank %d is outside the %d local ranks planned", local_rank, plan->num_ranks);
    nmb_rank_plan_t *r = &plan->ranks[local_rank];
    int policy = ov->mem_policy >= 0 ? ov->mem_policy : r->mem_policy;
    if (ov->mem_policy < -1 || ov->mem_policy > NMB_MEM_DEFAULT)
        return nmb__fail(-EINVAL, "unknown memory policy %d", ov->mem_policy);
    if (ov->mem_policy >= 0 && !ov->mems)
        return nmb__fail(-EINVAL, "a memory policy (%s) without memory nodes: give the nodes too",
                         nmb_mem_policy_name(ov->mem_policy));
    /* Every check before any change: a refused override changes nothing. */
    if ((ov->cpus && (err = check_cpus(t, ov->cpus)) < 0) || (ov->mems && (err = check_mems(t, ov->mems, policy)) < 0) ||
        (ov->nic && (err = find_nic(t, ov->nic, &nic, &port)) < 0))
        return err;
    /* Out of memory below leaves the rank as it was: its fields are put back
     * (what the arena gave stays with the plan until it is destroyed). */
    nmb_rank_plan_t saved = *r;
    err = change(plan, t, r, ov, policy, nic, port);
    if (err < 0)
        *r = saved;
    return err;
}

static int change(nmb_plan_t *plan, const nmb_topology_t *t, nmb_rank_plan_t *r, const nmb_rank_override_t *ov,
                  int policy, int nic, int port)
{
    char a[256], why[384];
    int err;
    if (ov->cpus) {
        r->cpus = *ov->cpus;
        snprintf(why, sizeof why, "CPUs %s given", nmb__fmt_list(ov->cpus, a, sizeof a));
        if ((err = nmb__plan_note(&plan->arena, r, why)) < 0)
            return err;
    }
    if (ov->mems) {
        r->mems = *ov->mems;
        r->mem_policy = policy;
        snprintf(why, sizeof why, "memory %s %s given", nmb_mem_policy_name(policy), nmb__fmt_list(ov->mems, a, sizeof a));
        if ((err = nmb__plan_note(&plan->arena, r, why)) < 0)
            return err;
    }
    if (nic >= 0) {
        char dev[300];
        const char **hcas = nmb__arena_alloc(&plan->arena, sizeof *hcas);
        snprintf(dev, sizeof dev, "%s:%d", t->nics[nic].name, port);
        if (!hcas || !(r->nic = nmb__arena_strdup(&plan->arena, t->nics[nic].name)) ||
            !(hcas[0] = nmb__arena_strdup(&plan->arena, dev)))
            return -ENOMEM;
        r->nic_port = port;
        r->hcas = hcas;
        r->num_hcas = 1;
        r->distance = r->gpu >= 0 ? nmb_topology_distance(t, r->gpu, nic) : 0;
        snprintf(why, sizeof why, "NIC %s given", dev);
        nmb_plan_options_t o;
        nmb_plan_options_init(&o);
        o.override_env = plan->override_env;
        if ((err = nmb__plan_note(&plan->arena, r, why)) < 0 || (err = nmb__plan_env(plan, &o, r)) < 0)
            return err;
        /* The rank's own NIC variables follow the NIC a person named, not
         * one inherited; NCCL_IB_HCA is the node's and stays as planned. */
        nmb_env_var_t *env = (nmb_env_var_t *)r->env;
        for (int i = 0; i < r->num_env; i++)
            if (strcmp(env[i].name, "NCCL_IB_HCA") != 0)
                env[i].kept = 0;
    }
    return 0;
}
