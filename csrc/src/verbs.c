/* libibverbs, loaded at run time: its providers must match the host's
 * kernel, so the wheel never carries it, and a host without an RDMA stack
 * must still import numabind. rdma-core's header gives the structures at
 * build time; every function comes from dlsym. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef NMB_HAVE_VERBS
#include <infiniband/verbs.h>

struct nmb_verbs {
    void *lib;
    struct ibv_device **list;
    int count;
    void (*free_list)(struct ibv_device **);
    const char *(*get_name)(struct ibv_device *);
    struct ibv_context *(*open_device)(struct ibv_device *);
    int (*close_device)(struct ibv_context *);
    int (*query_port)(struct ibv_context *, uint8_t, struct _compat_ibv_port_attr *);
    /* The device last opened, kept open for its next port: a NIC's ports
     * are queried one after another. */
    struct ibv_context *ctx;
    int ctx_index;
};

nmb_verbs_t *nmb__verbs_open(void)
{
    void *lib = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return NULL;
    nmb_verbs_t *v = calloc(1, sizeof *v);
    struct ibv_device **(*get_list)(int *) = (struct ibv_device * *(*)(int *))dlsym(lib, "ibv_get_device_list");
    if (!v || !get_list)
        goto fail;
    v->lib = lib;
    *(void **)&v->free_list = dlsym(lib, "ibv_free_device_list");
    *(void **)&v->get_name = dlsym(lib, "ibv_get_device_name");
    *(void **)&v->open_device = dlsym(lib, "ibv_open_device");
    *(void **)&v->close_device = dlsym(lib, "ibv_close_device");
    *(void **)&v->query_port = dlsym(lib, "ibv_query_port");
    if (!v->free_list || !v->get_name || !v->open_device || !v->close_device || !v->query_port)
        goto fail;
    v->list = get_list(&v->count);
    if (!v->list)
        goto fail;
    return v;
fail:
    free(v);
    dlclose(lib);
    return NULL;
}

int nmb__verbs_query(nmb_verbs_t *v, const char *name, int port, nmb_verbs_port_t *out)
{
    for (int i = 0; v && i < v->count; i++) {
        if (strcmp(v->get_name(v->list[i]), name) != 0)
            continue;
        if (v->ctx && v->ctx_index != i) {
            v->close_device(v->ctx);
            v->ctx = NULL;
        }
        if (!v->ctx && !(v->ctx = v->open_device(v->list[i])))
            return -ENODEV;
        v->ctx_index = i;
        struct ibv_context *ctx = v->ctx;
        struct ibv_port_attr attr;
        memset(&attr, 0, sizeof attr);
        /* As verbs.h's inline ibv_query_port does: the extended op when the
         * provider has one, else the compat entry point (a prefix of it). */
        struct verbs_context *vctx = verbs_get_ctx_op(ctx, query_port);
        int rc = vctx ? vctx->query_port(ctx, (uint8_t)port, &attr, sizeof attr)
                      : v->query_port(ctx, (uint8_t)port, (struct _compat_ibv_port_attr *)&attr);
        if (rc != 0)
            return -EIO;
        out->state = attr.state;
        out->phys_state = attr.phys_state;
        out->link_layer = attr.link_layer == IBV_LINK_LAYER_INFINIBAND ? NMB_LINK_INFINIBAND
                          : attr.link_layer == IBV_LINK_LAYER_ETHERNET ? NMB_LINK_ETHERNET
                                                                       : NMB_LINK_UNSPECIFIED;
        return 0;
    }
    return -ENOENT;
}

void nmb__verbs_close(nmb_verbs_t *v)
{
    if (!v)
        return;
    if (v->ctx)
        v->close_device(v->ctx);
    v->free_list(v->list);
    dlclose(v->lib);
    free(v);
}

#else /* built without rdma-core's headers: sysfs alone describes the NICs */

nmb_verbs_t *nmb__verbs_open(void)
{
    return NULL;
}

int nmb__verbs_query(nmb_verbs_t *v, const char *name, int port, nmb_verbs_port_t *out)
{
    (void)v, (void)name, (void)port, (void)out;
    return -ENOENT;
}

void nmb__verbs_close(nmb_verbs_t *v)
{
    (void)v;
}

#endif
