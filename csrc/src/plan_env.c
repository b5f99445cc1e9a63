/* The NIC variables a rank exports, and which of them the user already set.
 *
 *   NVSHMEM_HCA_LIST              the rank's NIC, one entry
 *   NVSHMEM_ENABLE_NIC_PE_MAPPING 1
 *   NCCL_IB_HCA                   "=" and every compute NIC of the node
 *   UCX_NET_DEVICES               the rank's NIC
 *   EP_NIC_NAME                   the rank's NIC, no port
 *
 * NVSHMEM: with NIC_PE_MAPPING each PE takes entry mype_node % n of the list,
 * and DeepEP's normal mode (legacy Buffer, pplx-kernels alike) makes every
 * process PE 0 of its node, so a node-wide list would send every GPU to the
 * first NIC: one entry per process.
 * NCCL: NCCL_IB_HCA must be equal on every rank of a node (NVIDIA/nccl#1478:
 * a per-rank value breaks ring building; nccl#1591); NCCL pairs GPUs and NICs
 * itself, so it gets the node's compute NICs. '=' makes each entry an exact
 * name (mlx5_1 would also match mlx5_10).
 * DeepEP 2.x (ElasticBuffer on NCCL GIN) reads EP_NIC_NAME (default mlx5_0)
 * when deep_ep.utils.envs is imported, for the NIC's rate and QP count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

int nmb__plan_env(nmb_plan_t *plan, const nmb_plan_options_t *o, nmb_rank_plan_t *r)
{
    if (!r->nic)
        return 0;
    char dev[320], all[8192];
    snprintf(dev, sizeof dev, "%s:%d", r->nic, r->nic_port);
    snprintf(all, sizeof all, "=%s", plan->node_hcas ? plan->node_hcas : dev);
    const struct {
        const char *name;
        const char *value;
    } vars[] = {
        {"NVSHMEM_HCA_LIST", dev},
        {"NVSHMEM_ENABLE_NIC_PE_MAPPING", "1"},
        {"NCCL_IB_HCA", all},
        {"UCX_NET_DEVICES", dev},
        {"EP_NIC_NAME", r->nic},
    };
    nmb_env_var_t *env = nmb__arena_alloc(&plan->arena, COUNT(vars) * sizeof *env);
    if (!env)
        return -ENOMEM;
    for (int i = 0; i < COUNT(vars); i++) {
        const char *user = getenv(vars[i].name);
        env[i].name = vars[i].name;
        if (!(env[i].value = nmb__arena_strdup(&plan->arena, vars[i].value)) ||
            (user && !(env[i].user = nmb__arena_strdup(&plan->arena, user))))
            return -ENOMEM;
        /* A node-wide NVSHMEM_HCA_LIST became the candidates (plan_nics.c):
         * replaced by its one entry, never kept. */
        env[i].kept = user && !o->override_env && !(i == 0 && plan->hca_list_taken);
    }
    r->env = env;
    r->num_env = COUNT(vars);
    return 0;
}
