/* NVIDIA GPUs with the CUDA ordinal each has in this process. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NVIDIA_VENDOR 0x10de

static int is_gpu(const nmb_pci_function_t *f)
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

/* The NVIDIA driver's own file, /proc/driver/nvidia/gpus/<address>/information,
 * holds a "GPU UUID:" line: reading it costs microseconds where starting NVML
 * costs ~50 ms. GPUs without it (no driver here, another root) keep NULL. */
static int read_driver_uuids(nmb_topology_t *t, struct uuid_ctx *ctx, int *missing)
{
    char path[128], buf[4096];
    *missing = 0;
    for (int i = 0; i < t->num_all_gpus; i++) {
        nmb_gpu_t *g = &t->all_gpus[i];
        if (g->uuid)
            continue;
        snprintf(path, sizeof path, "/proc/driver/nvidia/gpus/%s/information", g->address);
        const char *line = NULL;
        if (nmb__fs_read(&t->fs, path, buf, sizeof buf) >= 0)
            line = strstr(buf, "GPU UUID:");
        char uuid[128];
        if (line && sscanf(line + strlen("GPU UUID:"), " %127s", uuid) == 1 && strncmp(uuid, "GPU-", 4) == 0)
            set_uuid(ctx, g->address, uuid);
        else
            (*missing)++;
    }
    return ctx->err;
}

int nmb__read_gpus(nmb_topology_t *t, unsigned flags)
{
    int n = 0, err;
    for (int i = 0; i < t->num_pci; i++)
        n += is_gpu(&t->pci[i]);
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
        if (!is_gpu(&t->pci[i]))
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
        err = read_driver_uuids(t, &ctx, &missing);
    if (err >= 0 && nmb__fs_live(&t->fs) && missing > 0 && !(flags & NMB_TOPOLOGY_NO_NVML)) {
        /* NVML absent or failing only means the UUIDs stay unknown. */
        nmb__nvml_uuids(set_uuid, &ctx);
        err = ctx.err;
    }
    if (err < 0)
        goto out;

    const char *visible = (flags & NMB_TOPOLOGY_ALL_GPUS) ? NULL : getenv("CUDA_VISIBLE_DEVICES");
    if (!visible) {
        for (int i = 0; i < n; i++)
            order[i] = i;
        t->num_gpus = n;
    } else {
        for (int i = 0; i < n; i++)
            uuids[i] = t->all_gpus[i].uuid;
        err = nmb__parse_cuda_visible(visible, uuids, n, order);
        if (err < 0)
            goto out;
        t->num_gpus = err;
        err = 0;
    }
    for (int i = 0; i < t->num_gpus; i++) {
        t->gpus[i] = t->all_gpus[order[i]];
        t->gpus[i].index = i;
    }
out:
    free(order);
    free(uuids);
    return err;
}
