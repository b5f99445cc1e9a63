/* RDMA NICs: every device of /sys/class/infiniband, its PCI function, ports
 * and netdev. Port attributes come from libibverbs on the live host when it
 * lists the device, from sysfs otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define IB_CLASS "/sys/class/infiniband"

/* The PCI function a resolved sysfs path sits in: its last PCI-address
 * component (a virtio netdev's "device" is virtioN below the function). */
static int pci_of_path(const nmb_topology_t *t, const char *path)
{
    char copy[PATH_MAX], *save = NULL, last[64] = "";
    snprintf(copy, sizeof copy, "%s", path);
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
        if (nmb__parse_pci_address(c, NULL, NULL, NULL, NULL) == 0)
            snprintf(last, sizeof last, "%s", c);
    int index = last[0] ? nmb_topology_pci_index(t, last) : -1;
    return index >= 0 ? index : -1; /* a function the PCI listing lacks (gone meanwhile): none */
}

/* The first netdev of a PCI function ("<fn>/net/<name>"), or NULL. */
static const char *netdev_of_function(nmb_topology_t *t, const char *fn_path)
{
    char path[PATH_MAX], **names;
    snprintf(path, sizeof path, "%s/net", fn_path);
    int n = nmb__fs_list(&t->fs, path, &names);
    if (n <= 0)
        return NULL;
    const char *name = nmb__arena_strdup(&t->arena, names[0]);
    nmb__fs_free_names(names, n);
    return name;
}

/* A soft-RoCE / siw device names its netdev in "parent" (or a GID's ndev). */
static const char *netdev_of_virtual(nmb_topology_t *t, const char *dev)
{
    char path[PATH_MAX], buf[256];
    snprintf(path, sizeof path, IB_CLASS "/%s/parent", dev);
    if (nmb__fs_read(&t->fs, path, buf, sizeof buf) <= 0) {
        snprintf(path, sizeof path, IB_CLASS "/%s/ports/1/gid_attrs/ndevs/0", dev);
        if (nmb__fs_read(&t->fs, path, buf, sizeof buf) <= 0)
            return NULL;
    }
    nmb__rstrip(buf);
    return buf[0] ? nmb__arena_strdup(&t->arena, buf) : NULL;
}

static int read_port(nmb_topology_t *t, const char *dev, int port, nmb_nic_port_t *out)
{
    char path[PATH_MAX], buf[256];
    int v;
    out->port = port;
    snprintf(path, sizeof path, IB_CLASS "/%s/ports/%d/state", dev, port);
    if (nmb__fs_read(&t->fs, path, buf, sizeof buf) >= 0) {
        if ((v = nmb__parse_state(buf)) < 0)
            return nmb__fail(-EINVAL, "%s: '%.64s' is not a port state", path, nmb__rstrip(buf));
        out->state = v;
    }
    snprintf(path, sizeof path, IB_CLASS "/%s/ports/%d/phys_state", dev, port);
    /* phys_state is shown, never planned by (a port is used when ACTIVE). */
    if (!(t->flags & NMB_TOPOLOGY_PLAN_ONLY) && nmb__fs_read(&t->fs, path, buf, sizeof buf) >= 0) {
        if ((v = nmb__parse_state(buf)) < 0)
            return nmb__fail(-EINVAL, "%s: '%.64s' is not a physical state", path, nmb__rstrip(buf));
        out->phys_state = v;
    }
    snprintf(path, sizeof path, IB_CLASS "/%s/ports/%d/link_layer", dev, port);
    if (nmb__fs_read(&t->fs, path, buf, sizeof buf) >= 0)
        out->link_layer = nmb__parse_link_layer(buf);
    snprintf(path, sizeof path, IB_CLASS "/%s/ports/%d/rate", dev, port);
    if (nmb__fs_read(&t->fs, path, buf, sizeof buf) >= 0) {
        nmb__rstrip(buf);
        double rate = nmb__parse_rate_gbps(buf);
        if (rate < 0)
            return nmb__fail(-EINVAL, "%s: '%.64s' is not a rate", path, buf);
        out->rate_gbps = rate;
        if (!(out->rate = nmb__arena_strdup(&t->arena, buf)))
            return -ENOMEM;
    }
    return 0;
}

/* `path` is <class>/<name>/device: two links, each the last component where
 * it is read, so each takes nmb__fs_resolve's fast form (one readlink): the
 * class entry, then the device's `device`. Any failure asks again for the
 * whole path, so that what fails, and how it is named, is as it always was. */
static int resolve_device(nmb_topology_t *t, const char *class_dir, const char *name, const char *path,
                          char *resolved, size_t len)
{
    char dev[PATH_MAX], link[PATH_MAX];
    int err = -ENAMETOOLONG;
    if ((size_t)snprintf(link, sizeof link, "%s/%s", class_dir, name) < sizeof link &&
        (err = nmb__fs_resolve(&t->fs, link, dev, sizeof dev, NULL)) == 0) {
        err = -ENAMETOOLONG;
        if ((size_t)snprintf(link, sizeof link, "%s/device", dev) < sizeof link)
            err = nmb__fs_resolve(&t->fs, link, resolved, len, NULL);
    }
    if (err < 0) {
        nmb__clear_error();
        err = nmb__fs_realpath(&t->fs, path, resolved, len);
    }
    return err;
}

static int cmp_ints(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The device part of a NIC: its PCI function (or, for a soft device, the
 * netdev's), NUMA node and netdev. */
static int read_nic_device(nmb_topology_t *t, const char *name, nmb_nic_t *nic)
{
    char path[PATH_MAX], resolved[PATH_MAX];
    int err;
    if (!(nic->name = nmb__arena_strdup(&t->arena, name)))
        return -ENOMEM;
    nic->pci = -1;
    nic->numa_node = -1;

    snprintf(path, sizeof path, IB_CLASS "/%s/device", name);
    err = resolve_device(t, IB_CLASS, name, path, resolved, sizeof resolved);
    if (err == 0) {
        nic->pci = pci_of_path(t, resolved);
        /* The netdev is shown, never planned by (a PCI NIC is placed by its function). */
        if (nic->pci >= 0 && !(t->flags & NMB_TOPOLOGY_PLAN_ONLY))
            nic->netdev = netdev_of_function(t, t->pci[nic->pci].path);
    } else if (err == -ENOENT) {
        /* No device link: a soft device, placed by the netdev it rides on. */
        nic->is_virtual = 1;
        nic->netdev = netdev_of_virtual(t, name);
        if (nic->netdev) {
            snprintf(path, sizeof path, "/sys/class/net/%s/device", nic->netdev);
            if (resolve_device(t, "/sys/class/net", nic->netdev, path, resolved, sizeof resolved) == 0)
                nic->pci = pci_of_path(t, resolved);
        }
    } else {
        return err == -ELOOP ? nmb__fail(err, "%s: symbolic link loop", path) : err;
    }
    if (nic->pci >= 0) {
        if ((err = nmb__pci_read_locality(t, nic->pci, 0)) < 0)
            return err;
        nic->address = t->pci[nic->pci].address;
        nic->numa_node = t->pci[nic->pci].numa_node;
    }
    return 0;
}

/* A device's ports from sysfs, in port order. */
static int read_ports(nmb_topology_t *t, const char *name, nmb_nic_port_t **out, int *num)
{
    char path[PATH_MAX], **ports;
    snprintf(path, sizeof path, IB_CLASS "/%s/ports", name);
    int n = nmb__fs_list(&t->fs, path, &ports);
    if (n < 0)
        n = 0, ports = NULL;
    nmb_nic_port_t *arr = nmb__arena_alloc(&t->arena, (size_t)(n ? n : 1) * sizeof *arr);
    /* Ports are numbered from 1; names sort as text ("10" < "2"): sort as numbers. */
    int *nums = calloc((size_t)(n ? n : 1), sizeof *nums), kept = 0, err = 0;
    if (!arr || !nums) {
        free(nums);
        nmb__fs_free_names(ports, n);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        char *end;
        long v = strtol(ports[i], &end, 10);
        if (end != ports[i] && !*end && v > 0 && v < 256)
            nums[kept++] = (int)v;
    }
    qsort(nums, (size_t)kept, sizeof *nums, cmp_ints);
    for (int i = 0; i < kept && err == 0; i++)
        err = read_port(t, name, nums[i], &arr[i]);
    free(nums);
    nmb__fs_free_names(ports, n);
    *out = arr;
    *num = kept;
    return err;
}

/* The ports of `nic`: `ahead`'s where it read them (NULL or unread: read
 * here); then libibverbs' state and link layer where it lists the device. */
static int read_nic_ports(nmb_topology_t *t, nmb_nic_t *nic, const nmb_ports_ahead_entry_t *ahead,
                          nmb_verbs_t *verbs)
{
    nmb_nic_port_t *ports;
    int num, err;
    if (ahead && ahead->read) {
        ports = ahead->ports;
        num = ahead->num_ports;
    } else if ((err = read_ports(t, nic->name, &ports, &num)) < 0) {
        return err;
    }
    for (int i = 0; i < num && verbs; i++) {
        nmb_verbs_port_t vp;
        if (nmb__verbs_query(verbs, nic->name, ports[i].port, &vp) == 0) {
            ports[i].state = vp.state;
            ports[i].phys_state = vp.phys_state;
            ports[i].link_layer = vp.link_layer;
            nic->from_verbs = 1;
        }
    }
    nic->ports = ports;
    nic->num_ports = num;
    return 0;
}

void nmb__ports_ahead_list(nmb_topology_t *t, nmb_ports_ahead_t *a)
{
    memset(a, 0, sizeof *a);
    int n = nmb__fs_list(&t->fs, IB_CLASS, &a->names);
    if (n > 0 && (a->nics = calloc((size_t)n, sizeof *a->nics))) {
        a->num = n;
    } else if (n > 0) {
        nmb__fs_free_names(a->names, n);
        a->names = NULL;
    }
    nmb__clear_error();
}

void nmb__ports_ahead_read(nmb_topology_t *t, nmb_ports_ahead_t *a)
{
    for (;;) {
        int i = __atomic_fetch_add(&a->next, 1, __ATOMIC_RELAXED);
        if (i >= a->num)
            break;
        nmb_ports_ahead_entry_t *e = &a->nics[i];
        e->read = read_ports(t, a->names[i], &e->ports, &e->num_ports) == 0;
    }
    nmb__clear_error();
}

void nmb__ports_ahead_free(nmb_ports_ahead_t *a)
{
    if (a->names)
        nmb__fs_free_names(a->names, a->num);
    free(a->nics);
    memset(a, 0, sizeof *a);
}

static int cmp_nics(const void *a, const void *b)
{
    const nmb_nic_t *x = a, *y = b;
    if ((x->pci < 0) != (y->pci < 0))
        return x->pci < 0 ? 1 : -1;
    if (x->pci != y->pci)
        return x->pci < y->pci ? -1 : 1; /* PCI indices are in address order */
    return strcmp(x->name, y->name);
}

int nmb__read_nics_begin(nmb_topology_t *t, nmb_nic_read_t *r, const nmb_ports_ahead_t *ahead)
{
    r->names = NULL;
    r->num = r->devices = 0;
    r->failed.err = 0;
    r->ahead = ahead && ahead->names ? ahead : NULL;
    /* The devices the ports were read ahead for, in the same order, where
     * that listing worked; else listed here (and its failure said here). */
    int n = r->ahead ? ahead->num : nmb__fs_list(&t->fs, IB_CLASS, &r->names);
    if (n == -ENOENT || n == 0)
        return 0; /* no RDMA stack: no NICs, not an error */
    if (n == -ENOTDIR)
        return n; /* the detail says what stands there instead */
    if (n < 0)
        return nmb__fail(n, "cannot list " IB_CLASS);
    r->num = n;
    t->nics = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *t->nics);
    if (!t->nics)
        return -ENOMEM; /* zeroed, as every arena block */
    /* A NIC's device failing is kept for nmb__read_nics_end, which first
     * reads the ports of the NICs before it: a read NIC by NIC would have
     * failed on one of those first. */
    char **names = r->ahead ? r->ahead->names : r->names;
    int err = 0;
    while (r->devices < n && (err = read_nic_device(t, names[r->devices], &t->nics[r->devices])) == 0)
        r->devices++;
    nmb__keep_error(&r->failed, &t->fs, err);
    return 0;
}

int nmb__read_nics_end(nmb_topology_t *t, nmb_nic_read_t *r)
{
    nmb_verbs_t *verbs = NULL;
    int err = 0;
    if (r->devices && nmb__fs_live(&t->fs) && !(t->flags & NMB_TOPOLOGY_NO_VERBS))
        verbs = nmb__verbs_open();
    for (int i = 0; i < r->devices && err == 0; i++)
        err = read_nic_ports(t, &t->nics[i], r->ahead ? &r->ahead->nics[i] : NULL, verbs);
    nmb__verbs_close(verbs);
    if (err == 0 && r->failed.err)
        err = nmb__kept_error(&r->failed);
    if (err == 0 && r->num) {
        t->num_nics = r->num;
        qsort(t->nics, (size_t)r->num, sizeof *t->nics, cmp_nics);
    }
    return err;
}

void nmb__read_nics_free(nmb_nic_read_t *r)
{
    if (r->names)
        nmb__fs_free_names(r->names, r->num);
    r->names = NULL;
}
