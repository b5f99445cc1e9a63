/* Which RDMA NIC serves each GPU: node-wide, so every rank of a node (and
 * every container on it, whatever GPUs it was given) computes the same
 * assignment alone, and two ranks get one NIC only where there are fewer
 * NICs than GPUs.
 *
 * The candidates are the node's compute NICs: the fastest usable ones,
 * InfiniBand over Ethernet where both exist (DGX storage NICs, Azure's
 * Ethernet VF and management ports set aside), or the NICs a node-wide
 * NVSHMEM_HCA_LIST in the environment names. Each GPU, in PCI order, takes
 * the closest candidate, then the one with the fewest GPUs on it, then PCI
 * order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The port a NIC would serve on: its first ACTIVE InfiniBand or Ethernet
 * port (EFA and other link layers are skipped by NVSHMEM and NCCL's IB
 * transport alike). NULL when none. */
static int usable(const nmb_nic_port_t *port)
{
    return port->state == NMB_PORT_ACTIVE &&
           (port->link_layer == NMB_LINK_INFINIBAND || port->link_layer == NMB_LINK_ETHERNET);
}

const nmb_nic_port_t *nmb__usable_port(const nmb_nic_t *nic)
{
    for (int p = 0; p < nic->num_ports; p++)
        if (usable(&nic->ports[p]))
            return &nic->ports[p];
    return NULL;
}

/* port[i]: the port NIC i serves on as a compute NIC, 0 when it is none. */
static void compute_nics(const nmb_topology_t *t, int *port)
{
    int any_ib = 0;
    double best_rate = 0;
    for (int i = 0; i < t->num_nics; i++) {
        const nmb_nic_port_t *p = nmb__usable_port(&t->nics[i]);
        any_ib |= p && p->link_layer == NMB_LINK_INFINIBAND;
    }
    for (int i = 0; i < t->num_nics; i++) {
        const nmb_nic_port_t *p = nmb__usable_port(&t->nics[i]);
        port[i] = p && (!any_ib || p->link_layer == NMB_LINK_INFINIBAND) ? p->port : 0;
        if (port[i] && p->rate_gbps > best_rate)
            best_rate = p->rate_gbps;
    }
    for (int i = 0; i < t->num_nics; i++)
        if (port[i] && nmb__usable_port(&t->nics[i])->rate_gbps < best_rate)
            port[i] = 0;
}

#define HCA_LIST "NVSHMEM_HCA_LIST"

/* A node-wide NVSHMEM_HCA_LIST already in the environment — several
 * entries, "mlx5_0:1,mlx5_3:1,...", or an exclusion "^mlx5_1" — is the bug
 * this library exists to fix (with NIC_PE_MAPPING, DeepEP's normal mode
 * sends every GPU to its first entry), but it says which NICs the user
 * meant: they become the candidates. NVSHMEM's grammar (exact names, an
 * optional port, a leading '^' excludes). Returns 1 when the list was taken,
 * 0 when it is unset or one entry (kept as the user's), or -EINVAL naming
 * an entry that is no NIC of this node or a bad port. */
static int user_candidates(const nmb_topology_t *t, int *port)
{
    const char *v = getenv(HCA_LIST);
    if (!v || !*v)
        return 0;
    int exclude = v[0] == '^';
    const char *list = v + exclude;
    if (!exclude && !strchr(list, ','))
        return 0;
    int *named = calloc((size_t)(t->num_nics ? t->num_nics : 1), sizeof *named), err = 1;
    if (!named)
        return -ENOMEM;
    for (const char *p = list; *p && err > 0;) {
        size_t len = strcspn(p, ","), nlen = strcspn(p, ":,");
        char name[128];
        long want = 0;
        if (nlen >= sizeof name || nlen == 0) {
            err = nmb__fail_env(HCA_LIST, -EINVAL, HCA_LIST "='%.200s': entry '%.*s' is not a NIC name", v,
                                (int)(len < 64 ? len : 64), p);
            break;
        }
        memcpy(name, p, nlen);
        name[nlen] = '\0';
        if (nlen < len) {
            char *end;
            want = strtol(p + nlen + 1, &end, 10);
            if (end != p + len || want < 1 || want > 255)
                err = nmb__fail_env(HCA_LIST, -EINVAL, HCA_LIST "='%.200s': entry '%.*s' has no valid port number",
                                    v, (int)(len < 64 ? len : 64), p);
        }
        int i = nmb_topology_nic_index(t, name);
        if (err > 0 && i < 0) {
            char have[512] = "";
            for (int k = 0; k < t->num_nics; k++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", k ? ", " : "", t->nics[k].name);
            err = nmb__fail_env(HCA_LIST, -EINVAL, HCA_LIST "='%.200s': '%s' is not an RDMA NIC of this node (%s%s)",
                                v, name, t->num_nics ? "it has " : "it has none", have);
        }
        if (err > 0)
            named[i] = want ? (int)want : -1; /* -1: any usable port */
        p += len + (p[len] == ',');
    }
    for (int i = 0; i < t->num_nics && err > 0; i++) {
        if (exclude) {
            port[i] = named[i] ? 0 : port[i]; /* the compute NICs less the excluded */
            continue;
        }
        const nmb_nic_port_t *p = NULL;
        for (int k = 0; named[i] > 0 && k < t->nics[i].num_ports; k++)
            if (t->nics[i].ports[k].port == named[i] && usable(&t->nics[i].ports[k]))
                p = &t->nics[i].ports[k];
        if (named[i] < 0)
            p = nmb__usable_port(&t->nics[i]);
        port[i] = p ? p->port : 0;
    }
    free(named);
    for (int i = 0; i < t->num_nics && err > 0; i++)
        if (port[i])
            return 1;
    return err > 0 ? nmb__fail_env(HCA_LIST, -EINVAL, HCA_LIST "='%.200s' leaves no NIC with an ACTIVE "
                                                      "InfiniBand or Ethernet port", v)
                   : err;
}

int nmb__plan_nics(const nmb_topology_t *t, const nmb_plan_options_t *o, nmb_plan_t *plan)
{
    int n = t->num_nics, err = 0, from_user = 0;
    int *port = calloc((size_t)(n ? n : 1), sizeof *port), *load = calloc((size_t)(n ? n : 1), sizeof *load);
    int *nic_of = calloc((size_t)(t->num_all_gpus ? t->num_all_gpus : 1), sizeof *nic_of);
    char *list = malloc((size_t)n * 136 + 1);
    if (!port || !load || !nic_of || !list) {
        err = -ENOMEM;
        goto out;
    }
    compute_nics(t, port);
    if (!o->override_env && (err = from_user = user_candidates(t, port)) < 0)
        goto out;
    plan->hca_list_taken = from_user;
    /* Every GPU of the machine, visible here or not, so that containers
     * sharing a node get disjoint NICs. */
    for (int g = 0; g < t->num_all_gpus; g++) {
        int best = -1, best_d = 0;
        for (int i = 0; i < n; i++) {
            if (!port[i])
                continue;
            int d = nmb__pci_distance(t, t->all_gpus[g].pci, t->nics[i].pci);
            if (best < 0 || d < best_d || (d == best_d && load[i] < load[best]))
                best = i, best_d = d;
        }
        nic_of[g] = best;
        if (best >= 0)
            load[best]++;
    }
    /* NCCL_IB_HCA's value, equal on every rank: the candidates, PCI order. */
    list[0] = '\0';
    for (int i = 0; i < n; i++)
        if (port[i])
            sprintf(list + strlen(list), "%s%s:%d", list[0] ? "," : "", t->nics[i].name, port[i]);
    if (list[0] && !(plan->node_hcas = nmb__arena_strdup(&plan->arena, list))) {
        err = -ENOMEM;
        goto out;
    }

    for (int r = 0; r < plan->num_ranks; r++) {
        nmb_rank_plan_t *rp = &plan->ranks[r];
        if (rp->gpu < 0)
            continue;
        const nmb_gpu_t *g = &t->gpus[rp->gpu];
        int nic = nic_of[g->physical_index];
        if (nic < 0)
            continue;
        rp->nic_port = port[nic];
        rp->distance = nmb__pci_distance(t, g->pci, t->nics[nic].pci);
        /* Equally close compute NICs (two ports per GPU on OCI's
         * BM.GPU.H100.8, CX-8 on B300): NVSHMEM gets one, the plan reports
         * all. Only under one PCIe switch: NODE or SYS ties say nothing. */
        const char **hcas = nmb__arena_alloc(&plan->arena, (size_t)n * sizeof *hcas);
        if (!hcas || !(rp->nic = nmb__arena_strdup(&plan->arena, t->nics[nic].name))) {
            err = -ENOMEM;
            goto out;
        }
        for (int i = 0; i < n; i++) {
            if (!port[i] || (i != nic && (rp->distance > NMB_DIST_PXB ||
                                          nmb__pci_distance(t, g->pci, t->nics[i].pci) != rp->distance)))
                continue;
            char entry[160];
            snprintf(entry, sizeof entry, "%s:%d", t->nics[i].name, port[i]);
            if (!(hcas[rp->num_hcas++] = nmb__arena_strdup(&plan->arena, entry))) {
                err = -ENOMEM;
                goto out;
            }
        }
        rp->hcas = hcas;
        if (from_user) {
            char why[400];
            snprintf(why, sizeof why,
                     HCA_LIST "='%.200s' in the environment names NICs for the whole node: taken as the "
                              "candidates, this rank exports the one closest to its GPU, %s:%d",
                     getenv(HCA_LIST), rp->nic, rp->nic_port);
            if ((err = nmb__plan_note(&plan->arena, rp, why)) < 0)
                goto out;
        }
    }
    err = 0;
out:
    free(port);
    free(load);
    free(nic_of);
    free(list);
    return err;
}
