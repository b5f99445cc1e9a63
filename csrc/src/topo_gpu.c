/* NVIDIA GPUs with the CUDA ordinal each has in this process. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NVIDIA_VENDOR 0x10de

int nmb__is_gpu_function(const nmb_pci_function_t *f)
{
    /* Display controllers: 0x0300 VGA (PCIe cards in older servers), 0x0302 3D. */
    return f->vendor == NVIDIA_VENDOR && (f->class_code >> 16) == 0x03;
}

struct uuid_ctx {
    nmb_topology_t *t;
    int err;
};

static void set_uuid(void *opaque, const char *address, const char *uuid)
{
    struct uuid_ctx *ctx = opaque;
    for (int i = 0; i < ctx->t->num_all_gpus; i++) {
        nmb_gpu_t *g = &ctx->t->all_gpus[i];
        if (strcmp(g->address, address) == 0 && !g->uuid) {
            g->uuid = nmb__arena_strdup(&ctx->t->arena, uuid);
            if (!g->uuid)
                ctx->err = -ENOMEM;
        }
    }
}

/* Under a fixture root, <root>/numabind/gpu-uuids ("<address> GPU-<uuid>"
 * lines, written by `numabind gather`) stands in for NVML. */
static int read_uuid_file(nmb_topology_t *t, struct uuid_ctx *ctx)
{
    char buf[16384];
    if (nmb__fs_read(&t->fs, "/numabind/gpu-uuids", buf, sizeof buf) < 0)
        return 0;
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char address[64], uuid[128];
        if (sscanf(line, "%63s %127s", address, uuid) == 2) {
            if (nmb__parse_pci_address(address, NULL, NULL, NULL, NULL) < 0 || strncmp(uuid, "GPU-", 4) != 0)
                return nmb__fail(-EINVAL, "numabind/gpu-uuids: malformed line '%.100s'", line);
            set_uuid(ctx, address, uuid);
        }
        line = next;
    }
    return ctx->err;
}

/* The NVIDIA driver's procfs: /proc/driver/nvidia/gpus/<address>/information
 * holds "GPU UUID:" (microseconds to read, where starting NVML costs ~50 ms)
 * and "Device Minor:", the N of the GPU's /dev/nvidiaN.
 *
 * It also says which GPUs this process can open. libnvidia-container (Docker
 * --gpus, the Kubernetes device plugin, enroot/pyxis; src/nvc_mount.c) puts a
 * tmpfs over /proc/driver/nvidia, bind-mounts only the selected GPUs'
 * gpus/<address> directories and creates only their /dev/nvidia<minor>
 * nodes; sysfs, not namespaced, still shows every GPU. CUDA sees only what it
 * can open, so its device 0 may be the machine's GPU 4. A GPU is accessible
 * when that directory lists it and its device node exists; without the
 * driver's directory (no driver here, a tree captured without it) nothing
 * says otherwise, and when no listed GPU has a node yet (nvidia-modprobe creates
 * them when CUDA starts on a bare host) nodes decide nothing. */
#define DRIVER_GPUS "/proc/driver/nvidia/gpus"

static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

static int read_driver_procfs(nmb_topology_t *t, struct uuid_ctx *ctx, int *missing_uuids)
{
    char path[160], buf[4096], **names = NULL;
    int n = nmb__fs_list(&t->fs, DRIVER_GPUS, &names), any_node = 0, err = 0;
    /* The driver's directory without gpus/: a container given no GPU
     * (libnvidia-container makes gpus/ only to mount one into it). */
    if (n == -ENOENT && nmb__fs_exists(&t->fs, "/proc/driver/nvidia/version"))
        n = 0;
    *missing_uuids = 0;
    char *has_node = calloc((size_t)(t->num_all_gpus ? t->num_all_gpus : 1), 1);
    if (!has_node) {
        nmb__fs_free_names(names, n > 0 ? n : 0);
        return -ENOMEM;
    }
    for (int i = 0; i < t->num_all_gpus; i++) {
        nmb_gpu_t *g = &t->all_gpus[i];
        g->minor = -1;
        g->accessible = n < 0; /* no driver directory: nothing says otherwise */
        if (n <= 0 || !bsearch(g->address, names, (size_t)n, sizeof *names, cmp_name)) {
            *missing_uuids += !g->uuid;
            continue;
        }
        g->accessible = 1;
        snprintf(path, sizeof path, DRIVER_GPUS "/%s/information", g->address);
        if (nmb__fs_read(&t->fs, path, buf, sizeof buf) < 0) {
            *missing_uuids += !g->uuid;
            continue;
        }
        const char *line = strstr(buf, "GPU UUID:");
        char uuid[128];
        unsigned minor;
        if (g->uuid || !line)
            *missing_uuids += !g->uuid;
        else if (sscanf(line + strlen("GPU UUID:"), " %127s", uuid) == 1 && strncmp(uuid, "GPU-", 4) == 0)
            set_uuid(ctx, g->address, uuid);
        else
            (*missing_uuids)++;
        if ((line = strstr(buf, "Device Minor:")) && sscanf(line + strlen("Device Minor:"), " %u", &minor) == 1 &&
            minor < 1u << 20) {
            g->minor = (int)minor;
            snprintf(path, sizeof path, "/dev/nvidia%u", minor);
            any_node |= has_node[i] = (char)nmb__fs_exists(&t->fs, path);
        }
    }
    for (int i = 0; i < t->num_all_gpus && any_node; i++)
        if (t->all_gpus[i].minor >= 0 && !has_node[i])
            t->all_gpus[i].accessible = 0;
    free(has_node);
    nmb__fs_free_names(names, n > 0 ? n : 0);
    if (n < 0 && n != -ENOENT && n != -ENOTDIR)
        err = n; /* there, but unreadable: never guess which GPUs CUDA sees */
    return err < 0 ? err : ctx->err;
}

static int gpu_by_address(const nmb_topology_t *t, const char *address)
{
    for (int i = 0; i < t->num_all_gpus; i++)
        if (strcmp(t->all_gpus[i].address, address) == 0)
            return i;
    return -1;
}

static void count_link(void *ctx, const char *address, const char *remote)
{
    nmb_topology_t *t = ctx;
    int a = gpu_by_address(t, address), b = remote ? gpu_by_address(t, remote) : -1;
    if (a < 0)
        return;
    if (!remote)
        t->nvswitch_links[a]++;
    else if (b >= 0 && b != a)
        t->nvlinks[a * t->num_all_gpus + b]++;
}

/* NVML's NVLinks between the machine's GPUs (show's GPU x GPU block). NVML
 * absent or failing leaves them unknown (nvlinks NULL): the block then
 * shows PCI classes. */
static int read_nvlinks(nmb_topology_t *t)
{
    size_t n = (size_t)t->num_all_gpus;
    int *links = nmb__arena_alloc(&t->arena, n * n * sizeof *links);
    int *switches = nmb__arena_alloc(&t->arena, n * sizeof *switches);
    if (!links || !switches)
        return -ENOMEM;
    memset(links, 0, n * n * sizeof *links);
    memset(switches, 0, n * sizeof *switches);
    t->nvlinks = links;
    t->nvswitch_links = switches;
    if (nmb__nvml_links(count_link, t) < 0)
        t->nvlinks = t->nvswitch_links = NULL;
    return 0;
}

int nmb__read_gpus(nmb_topology_t *t, unsigned flags)
{
    int n = 0, err;
    for (int i = 0; i < t->num_pci; i++)
        n += nmb__is_gpu_function(&t->pci[i]);
    t->all_gpus = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *t->all_gpus);
    t->gpus = nmb__arena_alloc(&t->arena, (size_t)n * sizeof *t->gpus);
    int *order = calloc((size_t)(n ? n : 1), sizeof *order);
    const char **uuids = calloc((size_t)(n ? n : 1), sizeof *uuids);
    if (!t->all_gpus || !t->gpus || !order || !uuids) {
        err = -ENOMEM;
        goto out;
    }
    /* CUDA's order: PCI address order with CUDA_DEVICE_ORDER=PCI_BUS_ID, and
     * for a node of identical GPUs under the default FASTEST_FIRST too. */
    for (int i = 0; i < t->num_pci; i++) {
        if (!nmb__is_gpu_function(&t->pci[i]))
            continue;
        nmb_gpu_t *g = &t->all_gpus[t->num_all_gpus];
        g->physical_index = g->index = t->num_all_gpus++;
        g->pci = i;
        g->address = t->pci[i].address;
        g->numa_node = t->pci[i].numa_node;
    }

    struct uuid_ctx ctx = {t, 0};
    int missing = 0;
    if (!nmb__fs_live(&t->fs))
        err = read_uuid_file(t, &ctx);
    else
        err = 0;
    if (err >= 0)
        err = read_driver_procfs(t, &ctx, &missing);
    if (err >= 0 && nmb__fs_live(&t->fs) && missing > 0 && !(flags & NMB_TOPOLOGY_NO_NVML)) {
        /* NVML absent or failing only means the UUIDs stay unknown. */
        nmb__nvml_uuids(set_uuid, &ctx);
        err = ctx.err;
    }
    if (err < 0)
        goto out;
    /* NVLink joins pairs: a machine of one GPU has none, and does not pay
     * NVML's start-up (tens of milliseconds) to learn that. */
    if (n > 1 && (flags & NMB_TOPOLOGY_NVLINK) && nmb__fs_live(&t->fs) && !(flags & NMB_TOPOLOGY_NO_NVML) &&
        (err = read_nvlinks(t)) < 0)
        goto out;

    /* CUDA numbers the GPUs it can open; CUDA_VISIBLE_DEVICES picks among those. */
    int *accessible = calloc((size_t)(n ? n : 1), sizeof *accessible), num_accessible = 0;
    if (!accessible) {
        err = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (flags & NMB_TOPOLOGY_ALL_GPUS)
            t->all_gpus[i].accessible = 1;
        if (t->all_gpus[i].accessible)
            accessible[num_accessible++] = i;
    }
    t->num_accessible_gpus = num_accessible;
    const char *visible = (flags & NMB_TOPOLOGY_ALL_GPUS) ? NULL : getenv("CUDA_VISIBLE_DEVICES");
    if (!visible) {
        for (int i = 0; i < num_accessible; i++)
            order[i] = i;
        t->num_gpus = num_accessible;
    } else {
        for (int i = 0; i < num_accessible; i++)
            uuids[i] = t->all_gpus[accessible[i]].uuid;
        err = nmb__parse_cuda_visible(visible, uuids, num_accessible, order);
        if (err < 0) {
            free(accessible);
            goto out;
        }
        t->num_gpus = err;
        err = 0;
    }
    for (int i = 0; i < t->num_gpus; i++) {
        t->gpus[i] = t->all_gpus[accessible[order[i]]];
        t->gpus[i].index = i;
    }
    free(accessible);
out:
    free(order);
    free(uuids);
    return err;
}
