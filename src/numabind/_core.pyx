# cython: language_level=3, boundscheck=False, wraparound=False
"""The thin tier: one class owning one C handle, and one error funnel.

Everything here copies C data into plain Python values; the public objects
are built from them in numabind.topology.
"""
from libc.errno cimport EINVAL, ENODATA, ENOENT
from libc.stdlib cimport malloc, free
from numabind cimport libnumabind as c

from numabind.errors import (BindingError, EnvironmentValueError, NumabindError, PlacementError,
                             TopologyError)

VERSION = c.NMB_VERSION
VERSION_STRING = c.NMB_VERSION_STRING.decode()
RECORD_FILES = c.NMB_TOPOLOGY_RECORD_FILES
NO_NVML = c.NMB_TOPOLOGY_NO_NVML
NO_VERBS = c.NMB_TOPOLOGY_NO_VERBS
ALL_GPUS = c.NMB_TOPOLOGY_ALL_GPUS
NVLINK = c.NMB_TOPOLOGY_NVLINK
PLAN_ONLY = c.NMB_TOPOLOGY_PLAN_ONLY
# Topology.allowed_source's values, by enum nmb_allowed_source.
ALLOWED_SOURCES = tuple(c.nmb_allowed_source_name(v).decode() for v in (
    c.NMB_ALLOWED_KERNEL, c.NMB_ALLOWED_CGROUP, c.NMB_ALLOWED_AFFINITY, c.NMB_ALLOWED_ONLINE))


def library_version():
    """The loaded C library's version as (encoded int, "x.y.z")."""
    return c.nmb_version(), c.nmb_version_string().decode()


cdef int check(int rc, str call, type cls=NumabindError) except -1:
    """The one error funnel: a negative errno becomes a typed exception that
    names the C call and the detail the core recorded."""
    if rc >= 0:
        return rc
    cdef str detail = c.nmb_last_error().decode("utf-8", "replace")
    cdef str strerror = c.nmb_strerror(rc).decode()
    cdef const char *variable = c.nmb_last_error_variable()
    if variable != NULL and cls is not BindingError:
        # The core says which environment variable held the bad value.
        raise EnvironmentValueError(-rc, strerror, detail, call, variable.decode())
    raise cls(-rc, strerror, detail, call)


cdef tuple bits(const c.nmb_bitmap_t *s):
    cdef list out = []
    cdef int i = c.nmb_bitmap_next(s, 0)
    while i >= 0:
        out.append(i)
        i = c.nmb_bitmap_next(s, i + 1)
    return tuple(out)


cdef int to_bitmap(ids, c.nmb_bitmap_t *out, str what) except -1:
    c.nmb_bitmap_zero(out)
    for i in ids:
        if not 0 <= i < 8192:     # NMB_BITMAP_BITS
            raise ValueError(f"{what} {i} is outside 0-8191, the {what}s numabind can name")
        c.nmb_bitmap_set(out, i)
    return 0


cdef object text(const char *s):
    return None if s == NULL else s.decode("utf-8", "replace")


cdef object node_or_none(int node):
    return None if node < 0 else node


cdef dict gpu_dict(const c.nmb_topology_t *t, const c.nmb_gpu_t *g):
    cdef const c.nmb_pci_function_t *f = c.nmb_topology_pci(t, g.pci)
    return dict(index=g.index, physical_index=g.physical_index, pci_address=text(g.address),
                numa_node=node_or_none(g.numa_node), uuid=text(g.uuid), local_cpus=bits(&f.local_cpus),
                device=f.device, accessible=bool(g.accessible), minor=None if g.minor < 0 else g.minor)


cdef class TopologyHandle:
    """Owns one nmb_topology_t; frees it when collected."""
    cdef c.nmb_topology_t *ptr

    def __cinit__(self, fsroot=None, unsigned flags=0):
        cdef bytes root = None if fsroot is None else str(fsroot).encode()
        cdef const char *croot = NULL
        if root is not None:
            croot = root
        cdef int rc
        with nogil:
            rc = c.nmb_topology_create(&self.ptr, croot, flags)
        check(rc, "nmb_topology_create", TopologyError)

    def __dealloc__(self):
        c.nmb_topology_destroy(self.ptr)
        self.ptr = NULL

    def snapshot(self):
        """Every fact of the topology as plain Python values."""
        cdef c.nmb_topology_t *t = self.ptr
        cdef int i, j, n
        cdef const c.nmb_node_t *node
        cdef const c.nmb_cpu_t *cpu
        cdef const c.nmb_core_t *core
        cdef const c.nmb_cache_t *cache
        cdef const c.nmb_pci_function_t *f
        cdef const c.nmb_host_bridge_t *hb
        cdef const c.nmb_nic_t *nic
        n = c.nmb_topology_num_nodes(t)
        nodes = []
        for i in range(n):
            node = c.nmb_topology_node(t, i)
            nodes.append(dict(id=node.id, has_cpus=bool(node.has_cpus),
                              mem_total_bytes=node.mem_total_bytes, cpus=bits(&node.cpus),
                              distances=tuple(node.distances[j] for j in range(n))))
        cpus = []
        for i in range(c.nmb_topology_num_cpus(t)):
            cpu = c.nmb_topology_cpu(t, i)
            cpus.append(dict(id=cpu.id, node=node_or_none(cpu.node), package=cpu.package,
                             die=cpu.die, core_id=cpu.core_id, core=cpu.core,
                             l3=None if cpu.l3 < 0 else cpu.l3))
        cores = []
        for i in range(c.nmb_topology_num_cores(t)):
            core = c.nmb_topology_core(t, i)
            cores.append(dict(package=core.package, node=node_or_none(core.node), cpus=bits(&core.cpus)))
        l3 = []
        for i in range(c.nmb_topology_num_l3(t)):
            cache = c.nmb_topology_l3(t, i)
            l3.append(bits(&cache.cpus))
        bridges = []
        for i in range(c.nmb_topology_num_host_bridges(t)):
            hb = c.nmb_topology_host_bridge(t, i)
            bridges.append(dict(name=text(hb.name), path=text(hb.path), numa_node=node_or_none(hb.numa_node)))
        pci = []
        for i in range(c.nmb_topology_num_pci(t)):
            f = c.nmb_topology_pci(t, i)
            pci.append(dict(address=text(f.address), path=text(f.path), vendor=f.vendor, device=f.device,
                            class_code=f.class_code, numa_node=node_or_none(f.numa_node),
                            parent=None if f.parent < 0 else text(c.nmb_topology_pci(t, f.parent).address),
                            host_bridge=bridges[f.host_bridge]["name"], depth=f.depth,
                            is_bridge=bool(f.is_bridge),
                            link_width=None if f.link_width < 0 else f.link_width,
                            link_speed_gts=None if f.link_speed_gts <= 0 else f.link_speed_gts,
                            local_cpus=bits(&f.local_cpus)))
        gpus = [gpu_dict(t, c.nmb_topology_gpu(t, i)) for i in range(c.nmb_topology_num_gpus(t))]
        all_gpus = [gpu_dict(t, c.nmb_topology_all_gpu(t, i)) for i in range(c.nmb_topology_num_all_gpus(t))]
        nics = []
        for i in range(c.nmb_topology_num_nics(t)):
            nic = c.nmb_topology_nic(t, i)
            nics.append(dict(name=text(nic.name), pci_address=text(nic.address),
                             numa_node=node_or_none(nic.numa_node), netdev=text(nic.netdev),
                             virtual=bool(nic.is_virtual), source="verbs" if nic.from_verbs else "sysfs",
                             ports=tuple(dict(port=nic.ports[j].port, state=nic.ports[j].state,
                                              phys_state=nic.ports[j].phys_state,
                                              link_layer=nic.ports[j].link_layer,
                                              rate_gbps=nic.ports[j].rate_gbps, rate=text(nic.ports[j].rate))
                                         for j in range(nic.num_ports))))
        distances = [[check(c.nmb_topology_distance(t, i, j), "nmb_topology_distance")
                      for j in range(len(nics))] for i in range(len(gpus))]
        return dict(fsroot=text(c.nmb_topology_fsroot(t)), live=bool(c.nmb_topology_is_live(t)),
                    nodes=nodes, cpus=cpus, cores=cores, l3=l3, host_bridges=bridges, pci=pci,
                    gpus=gpus, all_gpus=all_gpus, nics=nics, gpu_nic_distances=distances,
                    online_cpus=bits(c.nmb_topology_online_cpus(t)),
                    allowed_cpus=bits(c.nmb_topology_allowed_cpus(t)),
                    affinity_cpus=bits(c.nmb_topology_affinity_cpus(t)),
                    allowed_mems=bits(c.nmb_topology_allowed_mems(t)),
                    allowed_source=c.nmb_allowed_source_name(c.nmb_topology_allowed_source(t)).decode())

    def gpu_link(self, int a, int b):
        """NVLinks between visible GPUs a and b (NV#), or None when unknown."""
        cdef int rc = c.nmb_topology_gpu_link(self.ptr, a, b)
        if rc == -ENODATA:
            return None
        return check(rc, "nmb_topology_gpu_link")

    def gpu_distance(self, int a, int b):
        """The PCI class between visible GPUs a and b."""
        return check(c.nmb_topology_gpu_distance(self.ptr, a, b), "nmb_topology_gpu_distance")

    def files(self):
        """The paths read while loading (with RECORD_FILES), in order, de-duplicated."""
        seen = {}
        for i in range(c.nmb_topology_num_files(self.ptr)):
            seen.setdefault(c.nmb_topology_file(self.ptr, i).decode("utf-8", "surrogateescape"), None)
        return list(seen)


def parse_cpulist(str value):
    """Parses a kernel CPU/node list ("0-3,8") with the C core's parser."""
    cdef c.nmb_bitmap_t s
    cdef bytes b = value.encode()
    cdef int rc = c.nmb_bitmap_parse_list(&s, b)
    if rc < 0:
        raise ValueError(f"'{value}' is not a CPU list ({c.nmb_strerror(rc).decode()})")
    return bits(&s)


def format_cpulist(cpus):
    """Formats CPU numbers as a kernel list ("0-3,8")."""
    cdef c.nmb_bitmap_t s
    cdef char buf[65536]
    c.nmb_bitmap_zero(&s)
    for cpu in cpus:
        if c.nmb_bitmap_set(&s, cpu) < 0:
            raise ValueError(f"CPU {cpu} is outside 0..{c.NMB_BITMAP_BITS - 1}")
    c.nmb_bitmap_format_list(&s, buf, sizeof(buf))
    return buf.decode()


def cpu_policy_from_name(str name):
    return check(c.nmb_cpu_policy_from_name(name.encode()), "nmb_cpu_policy_from_name", PlacementError)


def mem_policy_from_name(str name):
    return check(c.nmb_mem_policy_from_name(name.encode()), "nmb_mem_policy_from_name", PlacementError)


def mempolicy():
    """The calling thread's memory policy: (name, nodes)."""
    cdef int policy
    cdef c.nmb_bitmap_t nodes
    check(c.nmb_mempolicy_get(&policy, &nodes), "nmb_mempolicy_get", BindingError)
    return c.nmb_mem_policy_name(policy).decode(), bits(&nodes)


def local_rank_from_env():
    """(rank, variable name) from the launcher's environment."""
    cdef int rank = 0
    cdef const char *source = NULL
    check(c.nmb_local_rank_from_env(&rank, &source), "nmb_local_rank_from_env", PlacementError)
    return rank, source.decode()


def local_world_size_from_env():
    """(size, variable name), or None when no launcher variable is set."""
    cdef int size = 0
    cdef const char *source = NULL
    cdef int rc = c.nmb_local_world_size_from_env(&size, &source)
    if rc == -ENOENT:
        return None
    check(rc, "nmb_local_world_size_from_env", PlacementError)
    return size, source.decode()


APPLY_EXPORT_ENV = c.NMB_APPLY_EXPORT_ENV
APPLY_MIGRATE = c.NMB_APPLY_MIGRATE


cdef class PlanHandle:
    """Owns one nmb_plan_t, planned from a TopologyHandle."""
    cdef c.nmb_plan_t *ptr

    def __cinit__(self, TopologyHandle topo, int cpu_policy=0, int mem_policy=0, int local_world_size=0,
                  rank_gpus=None, int reserve_cores=0, bint override_env=False):
        cdef c.nmb_plan_options_t o
        cdef int *gpus = NULL
        cdef int i, rc
        c.nmb_plan_options_init(&o)
        o.cpu_policy = cpu_policy
        o.mem_policy = mem_policy
        o.local_world_size = local_world_size
        o.reserve_cores = reserve_cores
        o.override_env = override_env
        if rank_gpus is not None:
            gpus = <int *>malloc(max(len(rank_gpus), 1) * sizeof(int))
            if gpus == NULL:
                raise MemoryError()
            for i in range(len(rank_gpus)):
                gpus[i] = rank_gpus[i]
            o.rank_gpus = gpus
        try:
            with nogil:
                rc = c.nmb_plan_create(&self.ptr, topo.ptr, &o)
            check(rc, "nmb_plan_create", PlacementError)
        finally:
            free(gpus)

    def __dealloc__(self):
        c.nmb_plan_destroy(self.ptr)
        self.ptr = NULL

    def ranks(self):
        """Every rank's plan as plain Python values."""
        cdef const c.nmb_rank_plan_t *r
        cdef int i, j
        out = []
        for i in range(c.nmb_plan_num_ranks(self.ptr)):
            r = c.nmb_plan_rank(self.ptr, i)
            out.append(dict(
                local_rank=r.local_rank, gpu=None if r.gpu < 0 else r.gpu, gpu_pci=text(r.gpu_address),
                numa_node=node_or_none(r.numa_node), cpus=bits(&r.cpus), mem_nodes=bits(&r.mems),
                cpu_policy=c.nmb_cpu_policy_name(r.cpu_policy).decode(),
                mem_policy=c.nmb_mem_policy_name(r.mem_policy).decode(),
                hca=text(r.nic), hca_port=r.nic_port if r.nic != NULL else None,
                distance=c.nmb_distance_name(r.distance).decode() if r.distance > 0 else None,
                env=[(text(r.env[j].name), text(r.env[j].value), text(r.env[j].user), bool(r.env[j].kept))
                     for j in range(r.num_env)],
                hcas=tuple(text(r.hcas[j]) for j in range(r.num_hcas)),
                note=text(r.note)))
        return out

    def override(self, TopologyHandle topo, int local_rank, cpus=None, mems=None, int mem_policy=-1,
                 str nic=None):
        """Replaces one rank's CPUs, memory nodes (and policy) or NIC, each
        checked against the topology the plan came from."""
        cdef c.nmb_rank_override_t ov
        cdef c.nmb_bitmap_t cset, mset
        cdef bytes nic_b
        c.nmb_rank_override_init(&ov)
        if cpus is not None:
            to_bitmap(cpus, &cset, "CPU")
            ov.cpus = &cset
        if mems is not None:
            to_bitmap(mems, &mset, "memory node")
            ov.mems = &mset
        ov.mem_policy = mem_policy
        if nic is not None:
            nic_b = nic.encode()
            ov.nic = nic_b
        check(c.nmb_plan_override_rank(self.ptr, topo.ptr, local_rank, &ov), "nmb_plan_override_rank",
              PlacementError)

    def note(self):
        """Why the plan has no ranks, or None."""
        return text(c.nmb_plan_note(self.ptr))

    def apply(self, int local_rank, unsigned flags=0):
        """Applies one rank's plan to this process; returns the report."""
        cdef c.nmb_apply_report_t rep
        cdef int rc
        with nogil:
            rc = c.nmb_plan_apply(self.ptr, local_rank, flags, &rep)
        check(rc, "nmb_plan_apply", BindingError)
        return dict(threads=rep.threads, scans=rep.scans, mem_policy_set=bool(rep.mem_policy_set),
                    pages_migrated=None if rep.pages_migrated < 0 else rep.pages_migrated)
