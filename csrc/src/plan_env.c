/* The NIC variables a rank exports for NVSHMEM, NCCL and UCX, and which of
 * them the user already set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

int nmb__plan_env(nmb_plan_t *plan, const nmb_plan_options_t *o, nmb_rank_plan_t *r)
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
