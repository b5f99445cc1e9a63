/* NVML, loaded at run time: the wheel must import on hosts without a GPU
 * driver. Only GPU UUIDs (CUDA_VISIBLE_DEVICES=GPU-..., where the driver's
 * procfs lacks them) and, for `numabind show`, NVLinks come from it; the
 * GPUs themselves come from sysfs, which also works under a fixture root. */
#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The few declarations numabind needs, as nvml.h has them (a stable ABI). */
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

/* NVML's entry points, loaded once per use: NULL where the library or a
 * symbol is missing. */
struct nvml {
    void *lib;
    nvmlReturn_t (*shutdown)(void);
    nvmlReturn_t (*count)(unsigned *);
    nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t *);
    nvmlReturn_t (*pci)(nvmlDevice_t, nvmlPciInfo_t *);
    nvmlReturn_t (*uuid)(nvmlDevice_t, char *, unsigned);
    nvmlReturn_t (*link_state)(nvmlDevice_t, unsigned, int *);
    nvmlReturn_t (*link_remote)(nvmlDevice_t, unsigned, nvmlPciInfo_t *);
    /* absent from drivers before 450 or so: then every remote end is looked up as a GPU */
    nvmlReturn_t (*link_remote_type)(nvmlDevice_t, unsigned, int *);
};

#define NVML_SYM(n, field, name) (*(void **)&(n)->field = dlsym((n)->lib, name))

/* Loads libnvidia-ml and starts it: 0, or -ENOENT (no driver library, a
 * symbol missing, nvmlInit failing) with nothing left loaded. */
static int nvml_open(struct nvml *n)
{
    memset(n, 0, sizeof *n);
    if (!(n->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL)))
        return -ENOENT;
    nvmlReturn_t (*init)(void);
    *(void **)&init = dlsym(n->lib, "nvmlInit_v2");
    NVML_SYM(n, shutdown, "nvmlShutdown");
    NVML_SYM(n, count, "nvmlDeviceGetCount_v2");
    NVML_SYM(n, by_index, "nvmlDeviceGetHandleByIndex_v2");
    NVML_SYM(n, pci, "nvmlDeviceGetPciInfo_v3");
    NVML_SYM(n, uuid, "nvmlDeviceGetUUID");
    NVML_SYM(n, link_state, "nvmlDeviceGetNvLinkState");
    NVML_SYM(n, link_remote, "nvmlDeviceGetNvLinkRemotePciInfo_v2");
    NVML_SYM(n, link_remote_type, "nvmlDeviceGetNvLinkRemoteDeviceType");
    if (!init || !n->shutdown || !n->count || !n->by_index || !n->pci || init() != 0) {
        dlclose(n->lib);
        n->lib = NULL;
        return -ENOENT;
    }
    return 0;
}

static void nvml_close(struct nvml *n)
{
    if (!n->lib)
        return;
    n->shutdown();
    dlclose(n->lib);
    n->lib = NULL;
}

/* "00000000:1B:00.0" (NVML) as "0000:1b:00.0" (sysfs). */
static void sysfs_address(const nvmlPciInfo_t *info, char *out, size_t len)
{
    const char *dot = strrchr(info->busId, '.');
    snprintf(out, len, "%04x:%02x:%02x.%x", info->domain, info->bus, info->device,
             (unsigned)(dot ? strtoul(dot + 1, NULL, 16) : 0));
}

/* GPU i's handle and sysfs address: 0, or -1 where NVML has none. */
static int nvml_device(const struct nvml *n, unsigned i, nvmlDevice_t *dev, char *address, size_t len)
{
    nvmlPciInfo_t info;
    memset(&info, 0, sizeof info);
    if (n->by_index(i, dev) != 0 || n->pci(*dev, &info) != 0)
        return -1;
    sysfs_address(&info, address, len);
    return 0;
}

int nmb__nvml_uuids(void (*fn)(void *ctx, const char *address, const char *uuid), void *ctx)
{
    struct nvml n;
    unsigned count = 0;
    if (nvml_open(&n) < 0)
        return -ENOENT;
    int found = -ENOENT;
    if (n.uuid && n.count(&count) == 0) {
        found = 0;
        for (unsigned i = 0; i < count; i++) {
            nvmlDevice_t dev;
            char address[32], id[96];
            if (nvml_device(&n, i, &dev, address, sizeof address) < 0 || n.uuid(dev, id, sizeof id) != 0)
                continue;
            fn(ctx, address, id);
            found++;
        }
    }
    nvml_close(&n);
    return found;
}

#define NVML_NVLINK_MAX_LINKS 18
#define NVML_NVLINK_DEVICE_TYPE_GPU 0
#define NVML_NVLINK_DEVICE_TYPE_SWITCH 2

int nmb__nvml_links(void (*fn)(void *ctx, const char *address, const char *remote), void *ctx)
{
    struct nvml n;
    unsigned count = 0;
    if (nvml_open(&n) < 0)
        return -ENOENT;
    int found = -ENOENT;
    if (n.link_state && n.link_remote && n.count(&count) == 0) {
        found = 0;
        for (unsigned i = 0; i < count; i++) {
            nvmlDevice_t dev;
            char address[32], other[32];
            if (nvml_device(&n, i, &dev, address, sizeof address) < 0)
                continue;
            for (unsigned link = 0; link < NVML_NVLINK_MAX_LINKS; link++) {
                int active = 0, type = NVML_NVLINK_DEVICE_TYPE_GPU;
                nvmlPciInfo_t far;
                memset(&far, 0, sizeof far);
                if (n.link_state(dev, link, &active) != 0 || !active)
                    continue; /* NOT_SUPPORTED past the GPU's last link, or a link down */
                if (n.link_remote_type && n.link_remote_type(dev, link, &type) == 0 &&
                    type == NVML_NVLINK_DEVICE_TYPE_SWITCH) {
                    fn(ctx, address, NULL);
                } else if (n.link_remote(dev, link, &far) == 0) {
                    sysfs_address(&far, other, sizeof other);
                    fn(ctx, address, other);
                }
                found++;
            }
        }
    }
    nvml_close(&n);
    return found;
}
