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

int nmb__nvml_uuids(void (*fn)(void *ctx, const char *address, const char *uuid), void *ctx)
{
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return -ENOENT;
    nvmlReturn_t (*init)(void) = (nvmlReturn_t(*)(void))dlsym(lib, "nvmlInit_v2");
    nvmlReturn_t (*shutdown)(void) = (nvmlReturn_t(*)(void))dlsym(lib, "nvmlShutdown");
    nvmlReturn_t (*count)(unsigned *) = (nvmlReturn_t(*)(unsigned *))dlsym(lib, "nvmlDeviceGetCount_v2");
    nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t *) =
        (nvmlReturn_t(*)(unsigned, nvmlDevice_t *))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    nvmlReturn_t (*pci)(nvmlDevice_t, nvmlPciInfo_t *) =
        (nvmlReturn_t(*)(nvmlDevice_t, nvmlPciInfo_t *))dlsym(lib, "nvmlDeviceGetPciInfo_v3");
    nvmlReturn_t (*uuid)(nvmlDevice_t, char *, unsigned) =
        (nvmlReturn_t(*)(nvmlDevice_t, char *, unsigned))dlsym(lib, "nvmlDeviceGetUUID");
    int found = -ENOENT;
    if (!init || !shutdown || !count || !by_index || !pci || !uuid || init() != 0)
        goto out;
    unsigned n = 0;
    if (count(&n) == 0) {
        found = 0;
        for (unsigned i = 0; i < n; i++) {
            nvmlDevice_t dev;
            nvmlPciInfo_t info;
            char id[96];
            memset(&info, 0, sizeof info);
            if (by_index(i, &dev) != 0 || pci(dev, &info) != 0 || uuid(dev, id, sizeof id) != 0)
                continue;
            /* NVML writes "00000000:1B:00.0"; sysfs "0000:1b:00.0". */
            char address[32];
            snprintf(address, sizeof address, "%04x:%02x:%02x.%x", info.domain, info.bus, info.device,
                     (unsigned)(strrchr(info.busId, '.') ? strtoul(strrchr(info.busId, '.') + 1, NULL, 16) : 0));
            fn(ctx, address, id);
            found++;
        }
    }
    shutdown();
out:
    dlclose(lib);
    return found;
}

/* "00000000:1B:00.0" (NVML) as "0000:1b:00.0" (sysfs). */
static void sysfs_address(const nvmlPciInfo_t *info, char *out, size_t len)
{
    const char *dot = strrchr(info->busId, '.');
    snprintf(out, len, "%04x:%02x:%02x.%x", info->domain, info->bus, info->device,
             (unsigned)(dot ? strtoul(dot + 1, NULL, 16) : 0));
}

#define NVML_NVLINK_MAX_LINKS 18
#define NVML_NVLINK_DEVICE_TYPE_GPU 0
#define NVML_NVLINK_DEVICE_TYPE_SWITCH 2

int nmb__nvml_links(void (*fn)(void *ctx, const char *address, const char *remote), void *ctx)
{
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return -ENOENT;
    nvmlReturn_t (*init)(void) = (nvmlReturn_t(*)(void))dlsym(lib, "nvmlInit_v2");
    nvmlReturn_t (*shutdown)(void) = (nvmlReturn_t(*)(void))dlsym(lib, "nvmlShutdown");
    nvmlReturn_t (*count)(unsigned *) = (nvmlReturn_t(*)(unsigned *))dlsym(lib, "nvmlDeviceGetCount_v2");
    nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t *) =
        (nvmlReturn_t(*)(unsigned, nvmlDevice_t *))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    nvmlReturn_t (*pci)(nvmlDevice_t, nvmlPciInfo_t *) =
        (nvmlReturn_t(*)(nvmlDevice_t, nvmlPciInfo_t *))dlsym(lib, "nvmlDeviceGetPciInfo_v3");
    nvmlReturn_t (*state)(nvmlDevice_t, unsigned, int *) =
        (nvmlReturn_t(*)(nvmlDevice_t, unsigned, int *))dlsym(lib, "nvmlDeviceGetNvLinkState");
    nvmlReturn_t (*remote)(nvmlDevice_t, unsigned, nvmlPciInfo_t *) =
        (nvmlReturn_t(*)(nvmlDevice_t, unsigned, nvmlPciInfo_t *))dlsym(lib, "nvmlDeviceGetNvLinkRemotePciInfo_v2");
    /* absent from drivers before 450 or so: then every remote end is looked up as a GPU */
    nvmlReturn_t (*remote_type)(nvmlDevice_t, unsigned, int *) =
        (nvmlReturn_t(*)(nvmlDevice_t, unsigned, int *))dlsym(lib, "nvmlDeviceGetNvLinkRemoteDeviceType");
    int found = -ENOENT;
    if (!init || !shutdown || !count || !by_index || !pci || !state || !remote || init() != 0)
        goto out;
    unsigned n = 0;
    if (count(&n) == 0) {
        found = 0;
        for (unsigned i = 0; i < n; i++) {
            nvmlDevice_t dev;
            nvmlPciInfo_t info;
            char address[32], other[32];
            memset(&info, 0, sizeof info);
            if (by_index(i, &dev) != 0 || pci(dev, &info) != 0)
                continue;
            sysfs_address(&info, address, sizeof address);
            for (unsigned link = 0; link < NVML_NVLINK_MAX_LINKS; link++) {
                int active = 0, type = NVML_NVLINK_DEVICE_TYPE_GPU;
                nvmlPciInfo_t far;
                memset(&far, 0, sizeof far);
                if (state(dev, link, &active) != 0 || !active)
                    continue; /* NOT_SUPPORTED past the GPU's last link, or a link down */
                if (remote_type && remote_type(dev, link, &type) == 0 && type == NVML_NVLINK_DEVICE_TYPE_SWITCH) {
                    fn(ctx, address, NULL);
                } else if (remote(dev, link, &far) == 0) {
                    sysfs_address(&far, other, sizeof other);
                    fn(ctx, address, other);
                }
                found++;
            }
        }
    }
    shutdown();
out:
    dlclose(lib);
    return found;
}
