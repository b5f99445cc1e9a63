/* The environment a topology and a plan read: CUDA_VISIBLE_DEVICES,
 * NUMABIND_FSROOT (below the directory holding the fuzz tree, so "tree" is
 * the fixture, "tree/sys" a broken root, "../.." may reach the live host),
 * the NIC variables a plan keeps or overrides (NVSHMEM_HCA_LIST,
 * NVSHMEM_ENABLE_NIC_PE_MAPPING, NCCL_IB_HCA, UCX_NET_DEVICES, EP_NIC_NAME;
 * a node-wide NVSHMEM_HCA_LIST is taken as the candidate NICs), and the
 * plan's options by name ("NUMABIND_OPTIONS=exclusive,preferred,2,0,1":
 * CPU policy, memory policy, local ranks, reserved cores, override). The
 * input is lines "NAME=VALUE". */
#include <libgen.h>

#include "fuzz.h"

static char base[4096];      /* the directory holding the tree */
static char tree_name[1024];

static const char *const nic_vars[] = {"NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING", "NCCL_IB_HCA",
                                       "UCX_NET_DEVICES", "EP_NIC_NAME"};
#define NUM_NIC_VARS 5

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tree = getenv("NUMABIND_FUZZ_TREE");
    char copy[4096];
    if (!tree || !*tree || !realpath(tree, copy)) {
        fprintf(stderr, "fuzz_env_plan: set NUMABIND_FUZZ_TREE to a tree written from csrc/fuzz/tree.json\n");
        exit(2);
    }
    snprintf(tree_name, sizeof tree_name, "%s", basename(copy));
    snprintf(base, sizeof base, "%s", dirname(copy));
    return 0;
}

static void clear_all(void)
{
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("NUMABIND_FSROOT");
    for (size_t i = 0; i < NUM_NIC_VARS; i++)
        unsetenv(nic_vars[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = fuzz_cstr(data, size);
    char root[8192];
    const char *options = "";
    clear_all();
    snprintf(root, sizeof root, "%s/%s", base, tree_name);
    setenv("NUMABIND_FSROOT", root, 1);
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            const char *v = eq + 1;
            if (!strcmp(line, "NUMABIND_FSROOT")) {
                snprintf(root, sizeof root, "%s/%s", base, v);
                setenv("NUMABIND_FSROOT", *v ? root : "", 1);
            } else if (!strcmp(line, "NUMABIND_OPTIONS")) {
                options = v;
            } else if (!strcmp(line, "CUDA_VISIBLE_DEVICES")) {
                setenv(line, v, 1);
            } else {
                for (size_t i = 0; i < NUM_NIC_VARS; i++)
                    if (!strcmp(line, nic_vars[i]))
                        setenv(line, v, 1);
            }
        }
        line = next;
    }

    /* Options by name, as the command line and Python give them. */
    nmb_plan_options_t o;
    nmb_plan_options_init(&o);
    char opt[256], *save = NULL;
    snprintf(opt, sizeof opt, "%s", options);
    int field = 0;
    for (char *f = strtok_r(opt, ",", &save); f; f = strtok_r(NULL, ",", &save), field++) {
        int v;
        switch (field) {
        case 0:
            if ((v = nmb_cpu_policy_from_name(f)) >= 0)
                o.cpu_policy = v;
            else
                FUZZ_ASSERT(v == -EINVAL && strstr(nmb_last_error(), "CPU policy"));
            break;
        case 1:
            if ((v = nmb_mem_policy_from_name(f)) >= 0)
                o.mem_policy = v;
            else
                FUZZ_ASSERT(v == -EINVAL && strstr(nmb_last_error(), "memory policy"));
            break;
        case 2: o.local_world_size = atoi(f) % 64; break;
        case 3: o.reserve_cores = atoi(f) % 8; break;
        case 4: o.override_env = atoi(f) != 0; break;
        }
    }

    nmb_topology_t *t = NULL;
    nmb__clear_error();
    int err = nmb_topology_create(&t, NULL, NMB_TOPOLOGY_NO_NVML | NMB_TOPOLOGY_NO_VERBS);
    if (err < 0) {
        FUZZ_ASSERT(t == NULL);
        FUZZ_ASSERT(nmb_last_error()[0] != '\0');
        const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
        if (err == -EINVAL && cvd && strstr(nmb_last_error(), "CUDA_VISIBLE_DEVICES"))
            FUZZ_ASSERT(strlen(nmb_last_error()) > 20);
    } else {
        /* The visible GPUs are distinct GPUs of the machine. */
        int ng = nmb_topology_num_gpus(t);
        for (int i = 0; i < ng; i++)
            for (int j = 0; j < i; j++)
                FUZZ_ASSERT(nmb_topology_gpu(t, i)->physical_index != nmb_topology_gpu(t, j)->physical_index);
        nmb_plan_t *plan = NULL;
        nmb__clear_error();
        err = nmb_plan_create(&plan, t, &o);
        const char *hca_list = getenv("NVSHMEM_HCA_LIST");
        int list_taken = hca_list && !o.override_env && (hca_list[0] == '^' || strchr(hca_list, ','));
        if (err < 0) {
            FUZZ_ASSERT(plan == NULL && nmb_last_error()[0] != '\0');
        } else {
            /* No visible GPU, no rank, and a note that says why. */
            FUZZ_ASSERT((nmb_plan_num_ranks(plan) == 0) == (ng == 0));
            FUZZ_ASSERT((nmb_plan_note(plan) != NULL) == (ng == 0));
            nmb_bitmap_t held;
            nmb_bitmap_zero(&held);
            const char *node_hca = NULL;
            for (int r = 0; r < nmb_plan_num_ranks(plan); r++) {
                const nmb_rank_plan_t *p = nmb_plan_rank(plan, r);
                /* Exclusive shares never overlap, whatever the GPUs' locality. */
                if (o.cpu_policy == NMB_CPU_EXCLUSIVE) {
                    FUZZ_ASSERT(!nmb_bitmap_intersects(&held, &p->cpus));
                    nmb_bitmap_or(&held, &held, &p->cpus);
                }
                FUZZ_ASSERT(p->num_env == (p->nic ? NUM_NIC_VARS : 0));
                FUZZ_ASSERT(p->nic ? p->num_hcas >= 1 : p->num_hcas == 0);
                char dev[400];
                if (p->nic)
                    snprintf(dev, sizeof dev, "%s:%d", p->nic, p->nic_port);
                int listed = 0;
                for (int i = 0; i < p->num_hcas; i++)
                    listed |= !strcmp(p->hcas[i], dev);
                FUZZ_ASSERT(!p->nic || listed);
                for (int i = 0; i < p->num_env; i++) {
                    const nmb_env_var_t *e = &p->env[i];
                    const char *user = getenv(e->name);
                    FUZZ_ASSERT(!strcmp(e->name, nic_vars[i]));
                    if (i == 2) {
                        /* One node-wide value, equal on every rank, holding the rank's NIC. */
                        FUZZ_ASSERT(e->value[0] == '=' && strstr(e->value, dev));
                        FUZZ_ASSERT(!node_hca || !strcmp(node_hca, e->value));
                        node_hca = e->value;
                    } else {
                        FUZZ_ASSERT(!strcmp(e->value, i == 1 ? "1" : i == 4 ? p->nic : dev));
                    }
                    FUZZ_ASSERT((user == NULL) == (e->user == NULL));
                    FUZZ_ASSERT(!user || !strcmp(user, e->user));
                    FUZZ_ASSERT(e->kept == (user && !o.override_env && !(i == 0 && list_taken)));
                }
            }
        }
        nmb_plan_destroy(plan);
    }
    nmb_topology_destroy(t);
    clear_all();
    free(text);
    return 0;
}
