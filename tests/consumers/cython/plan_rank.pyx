# cython: language_level=3
# A Cython consumer: cimports numabind's C declarations from the installed
# package (numabind/libnumabind.pxd) and plans through the C API directly.
from numabind cimport libnumabind as c


def rank_cpus(str fsroot, int rank):
    """The CPU list numabind plans for `rank` on the machine under `fsroot`."""
    cdef c.nmb_topology_t *topo = NULL
    cdef c.nmb_plan_t *plan = NULL
    cdef c.nmb_plan_options_t opts
    cdef char buf[4096]
    cdef bytes root = fsroot.encode()
    if c.nmb_topology_create(&topo, root, 0) < 0:
        raise OSError(c.nmb_last_error().decode())
    c.nmb_plan_options_init(&opts)
    err = c.nmb_plan_create(&plan, topo, &opts)
    c.nmb_topology_destroy(topo)
    if err < 0:
        raise OSError(c.nmb_last_error().decode())
    cdef const c.nmb_rank_plan_t *r = c.nmb_plan_rank(plan, rank)
    if r == NULL:
        c.nmb_plan_destroy(plan)
        raise IndexError(rank)
    c.nmb_bitmap_format_list(&r.cpus, buf, sizeof(buf))
    out = buf.decode()
    c.nmb_plan_destroy(plan)
    return out
