/* Which RDMA NIC serves each GPU: node-wide, so every rank of a node (and
 * every container on it) computes the same assignment alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The port a NIC would serve on: its first ACTIVE InfiniBand or Ethernet
 * port (EFA and other link layers are skipped by NVSHMEM and NCCL's IB
 * transport alike). NULL when none. */
const nmb_nic_port_t *nmb__usable_port(const nmb_nic_t *nic)
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
int nmb__assign_nics(const nmb_topology_t *t, int *nic_of_gpu)
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
        const nmb_nic_port_t *p = nmb__usable_port(&t->nics[i]);
        if (p && p->link_layer == NMB_LINK_INFINIBAND)
            any_ib = 1;
    }
    for (int i = 0; i < n; i++) {
        const nmb_nic_port_t *p = nmb__usable_port(&t->nics[i]);
        cand[i] = p && (!any_ib || p->link_layer == NMB_LINK_INFINIBAND);
        if (cand[i] && p->rate_gbps > best_rate)
            best_rate = p->rate_gbps;
    }
    for (int i = 0; i < n; i++)
        if (cand[i] && nmb__usable_port(&t->nics[i])->rate_gbps < best_rate)
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
