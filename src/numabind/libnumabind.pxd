# Declarations of numabind's C API, and nothing else: cimport this module to
# call the C core from your own Cython code (`from numabind cimport libnumabind`).
from libc.stdint cimport uint64_t

cdef extern from "numabind/numabind.h" nogil:
    int NMB_VERSION
    const char *NMB_VERSION_STRING
    int NMB_BITMAP_BITS

    unsigned nmb_version()
    const char *nmb_version_string()
    const char *nmb_strerror(int err)
    const char *nmb_last_error()
    const char *nmb_last_error_variable()

    ctypedef struct nmb_bitmap_t:
        uint64_t words[128]

    void nmb_bitmap_zero(nmb_bitmap_t *s)
    int nmb_bitmap_set(nmb_bitmap_t *s, int bit)
    int nmb_bitmap_isset(const nmb_bitmap_t *s, int bit)
    int nmb_bitmap_count(const nmb_bitmap_t *s)
    int nmb_bitmap_next(const nmb_bitmap_t *s, int start)
    int nmb_bitmap_parse_list(nmb_bitmap_t *out, const char *text)
    int nmb_bitmap_parse_mask(nmb_bitmap_t *out, const char *text)
    int nmb_bitmap_format_list(const nmb_bitmap_t *s, char *buf, size_t length)

    ctypedef struct nmb_topology_t:
        pass

    enum:
        NMB_TOPOLOGY_RECORD_FILES
        NMB_TOPOLOGY_NO_NVML
        NMB_TOPOLOGY_NO_VERBS
        NMB_TOPOLOGY_ALL_GPUS
        NMB_TOPOLOGY_NVLINK
        NMB_TOPOLOGY_PLAN_ONLY

    int nmb_topology_create(nmb_topology_t **out, const char *fsroot, unsigned flags)
    void nmb_topology_destroy(nmb_topology_t *topo)
    const char *nmb_topology_fsroot(const nmb_topology_t *topo)
    int nmb_topology_is_live(const nmb_topology_t *topo)

    ctypedef struct nmb_node_t:
        int id
        int has_cpus
        uint64_t mem_total_bytes
        nmb_bitmap_t cpus
        const int *distances

    int nmb_topology_num_nodes(const nmb_topology_t *topo)
    const nmb_node_t *nmb_topology_node(const nmb_topology_t *topo, int index)
    int nmb_topology_node_index(const nmb_topology_t *topo, int id)

    ctypedef struct nmb_cpu_t:
        int id
        int node
        int package
        int die
        int core_id
        int core
        int l3

    ctypedef struct nmb_core_t:
        int package
        int node
        nmb_bitmap_t cpus

    ctypedef struct nmb_cache_t:
        int level
        nmb_bitmap_t cpus

    int nmb_topology_num_cpus(const nmb_topology_t *topo)
    const nmb_cpu_t *nmb_topology_cpu(const nmb_topology_t *topo, int index)
    int nmb_topology_cpu_index(const nmb_topology_t *topo, int id)
    int nmb_topology_num_cores(const nmb_topology_t *topo)
    const nmb_core_t *nmb_topology_core(const nmb_topology_t *topo, int index)
    int nmb_topology_num_l3(const nmb_topology_t *topo)
    const nmb_cache_t *nmb_topology_l3(const nmb_topology_t *topo, int index)
    const nmb_bitmap_t *nmb_topology_online_cpus(const nmb_topology_t *topo)
    const nmb_bitmap_t *nmb_topology_allowed_cpus(const nmb_topology_t *topo)
    const nmb_bitmap_t *nmb_topology_affinity_cpus(const nmb_topology_t *topo)
    const nmb_bitmap_t *nmb_topology_allowed_mems(const nmb_topology_t *topo)
    enum nmb_allowed_source:
        NMB_ALLOWED_KERNEL
        NMB_ALLOWED_CGROUP
        NMB_ALLOWED_AFFINITY
        NMB_ALLOWED_ONLINE
    int nmb_topology_allowed_source(const nmb_topology_t *topo)
    const char *nmb_allowed_source_name(int source)

    ctypedef struct nmb_host_bridge_t:
        const char *name
        const char *path
        int numa_node

    ctypedef struct nmb_pci_function_t:
        const char *address
        const char *path
        unsigned domain, bus, dev, fn
        unsigned vendor, device
        unsigned class_code
        int numa_node
        int parent
        int host_bridge
        int depth
        int is_bridge
        int link_width
        double link_speed_gts
        nmb_bitmap_t local_cpus

    int nmb_topology_num_pci(const nmb_topology_t *topo)
    const nmb_pci_function_t *nmb_topology_pci(const nmb_topology_t *topo, int index)
    int nmb_topology_pci_index(const nmb_topology_t *topo, const char *address)
    int nmb_topology_num_host_bridges(const nmb_topology_t *topo)
    const nmb_host_bridge_t *nmb_topology_host_bridge(const nmb_topology_t *topo, int index)

    ctypedef struct nmb_gpu_t:
        int index
        int physical_index
        int pci
        const char *address
        int numa_node
        const char *uuid
        int accessible
        int minor

    int nmb_topology_num_gpus(const nmb_topology_t *topo)
    const nmb_gpu_t *nmb_topology_gpu(const nmb_topology_t *topo, int index)
    int nmb_topology_num_all_gpus(const nmb_topology_t *topo)
    const nmb_gpu_t *nmb_topology_all_gpu(const nmb_topology_t *topo, int index)

    enum:
        NMB_LINK_UNSPECIFIED
        NMB_LINK_INFINIBAND
        NMB_LINK_ETHERNET

    ctypedef struct nmb_nic_port_t:
        int port
        int state
        int phys_state
        int link_layer
        double rate_gbps
        const char *rate

    ctypedef struct nmb_nic_t:
        const char *name
        int pci
        const char *address
        int numa_node
        const char *netdev
        int is_virtual
        int from_verbs
        int num_ports
        const nmb_nic_port_t *ports

    int nmb_topology_num_nics(const nmb_topology_t *topo)
    const nmb_nic_t *nmb_topology_nic(const nmb_topology_t *topo, int index)
    int nmb_topology_nic_index(const nmb_topology_t *topo, const char *name)

    int nmb_topology_distance(const nmb_topology_t *topo, int gpu, int nic)
    int nmb_topology_gpu_distance(const nmb_topology_t *topo, int a, int b)
    int nmb_topology_gpu_link(const nmb_topology_t *topo, int a, int b)
    const char *nmb_distance_name(int distance)

    int nmb_topology_num_files(const nmb_topology_t *topo)
    const char *nmb_topology_file(const nmb_topology_t *topo, int index)

cdef extern from "numabind/numabind.h" nogil:
    enum:
        NMB_CPU_EXCLUSIVE
        NMB_CPU_NODE
        NMB_CPU_SOCKET
        NMB_CPU_CORE_COMPLEX
        NMB_CPU_NONE
        NMB_MEM_PREFERRED
        NMB_MEM_BIND
        NMB_MEM_INTERLEAVE
        NMB_MEM_LOCAL
        NMB_MEM_DEFAULT
        NMB_APPLY_EXPORT_ENV
        NMB_APPLY_MIGRATE

    ctypedef struct nmb_plan_options_t:
        int cpu_policy
        int mem_policy
        int local_world_size
        const int *rank_gpus
        int reserve_cores
        int override_env

    void nmb_plan_options_init(nmb_plan_options_t *opts)

    ctypedef struct nmb_env_var_t:
        const char *name
        const char *value
        const char *user
        int kept

    ctypedef struct nmb_rank_plan_t:
        int local_rank
        int gpu
        const char *gpu_address
        int numa_node
        nmb_bitmap_t cpus
        nmb_bitmap_t mems
        int cpu_policy, mem_policy
        const char *nic
        int nic_port
        int distance
        int num_env
        const nmb_env_var_t *env
        const char *note
        int num_hcas
        const char *const *hcas

    ctypedef struct nmb_plan_t:
        pass

    int nmb_plan_create(nmb_plan_t **out, const nmb_topology_t *topo, const nmb_plan_options_t *opts)
    void nmb_plan_destroy(nmb_plan_t *plan)
    int nmb_plan_num_ranks(const nmb_plan_t *plan)
    const char *nmb_plan_note(const nmb_plan_t *plan)
    const nmb_rank_plan_t *nmb_plan_rank(const nmb_plan_t *plan, int local_rank)
    ctypedef struct nmb_rank_override_t:
        const nmb_bitmap_t *cpus
        const nmb_bitmap_t *mems
        int mem_policy
        const char *nic

    void nmb_rank_override_init(nmb_rank_override_t *ov)
    int nmb_plan_override_rank(nmb_plan_t *plan, const nmb_topology_t *topo, int local_rank,
                               const nmb_rank_override_t *ov)
    int nmb_local_rank_from_env(int *rank, const char **source)
    int nmb_local_world_size_from_env(int *size, const char **source)

    ctypedef struct nmb_apply_report_t:
        int threads
        int scans
        int mem_policy_set
        long pages_migrated

    int nmb_plan_apply(const nmb_plan_t *plan, int local_rank, unsigned flags, nmb_apply_report_t *report)
    const char *nmb_cpu_policy_name(int policy)
    const char *nmb_mem_policy_name(int policy)
    int nmb_mempolicy_get(int *policy, nmb_bitmap_t *nodes)
    int nmb_cpu_policy_from_name(const char *name)
    int nmb_mem_policy_from_name(const char *name)
