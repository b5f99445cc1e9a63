/* The topology API on sysfs trees written from tests/machines. argv[1] is
 * the directory holding one tree per machine description. */
#include <stdlib.h>

#include "check.h"
#include "internal.h"

static const char *trees;

static nmb_topology_t *load(const char *machine)
{
    char root[4096];
    nmb_topology_t *t = NULL;
    snprintf(root, sizeof root, "%s/%s", trees, machine);
    int err = nmb_topology_create(&t, root, NMB_TOPOLOGY_RECORD_FILES);
    if (err < 0)
        fprintf(stderr, "%s: %s: %s\n", machine, nmb_strerror(err), nmb_last_error());
    CHECK_INT(err, 0);
    return t;
}

static int dist(nmb_topology_t *t, int gpu, const char *nic)
{
    return nmb_topology_distance(t, gpu, nmb_topology_nic_index(t, nic));
}

static void test_dgx(void)
{
    nmb_topology_t *t = load("dgx-h100");
    if (!t)
        return;
    char buf[128];
    CHECK_INT(nmb_topology_num_nodes(t), 2);
    CHECK_INT(nmb_topology_num_cpus(t), 224);
    CHECK_INT(nmb_topology_num_cores(t), 112);
    nmb_bitmap_format_list(&nmb_topology_node(t, 1)->cpus, buf, sizeof buf);
    CHECK_STR(buf, "56-111,168-223");
    CHECK_INT(nmb_topology_node(t, 0)->distances[1], 21);
    const nmb_cpu_t *c = nmb_topology_cpu(t, nmb_topology_cpu_index(t, 170));
    CHECK_INT(c->node, 1);
    CHECK_INT(c->package, 1);
    nmb_bitmap_format_list(&nmb_topology_core(t, c->core)->cpus, buf, sizeof buf);
    CHECK_STR(buf, "58,170");
    CHECK_INT(nmb_topology_num_gpus(t), 8);
    CHECK_STR(nmb_topology_gpu(t, 0)->address, "0000:1b:00.0");
    CHECK_STR(nmb_topology_gpu(t, 4)->address, "0000:9d:00.0");
    CHECK_INT(nmb_topology_gpu(t, 4)->numa_node, 1);
    CHECK_INT(nmb_topology_num_nics(t), 12);
    CHECK_STR(nmb_topology_nic(t, 0)->name, "mlx5_0"); /* PCI order */
    CHECK_INT(dist(t, 0, "mlx5_0"), NMB_DIST_PIX);
    CHECK_INT(dist(t, 0, "mlx5_1"), NMB_DIST_PIX);  /* the storage NIC on GPU0's switch */
    CHECK_INT(dist(t, 0, "mlx5_3"), NMB_DIST_NODE);
    CHECK_INT(dist(t, 0, "mlx5_6"), NMB_DIST_SYS);
    CHECK_INT(dist(t, 7, "mlx5_11"), NMB_DIST_PIX);
    const nmb_nic_t *n = nmb_topology_nic(t, nmb_topology_nic_index(t, "mlx5_1"));
    CHECK_INT(n->num_ports, 1);
    CHECK_INT(n->ports[0].state, NMB_PORT_DOWN);
    CHECK_INT(n->ports[0].link_layer, NMB_LINK_ETHERNET);
    CHECK(n->ports[0].rate_gbps == 100.0);
    CHECK(!n->from_verbs); /* never consulted under a fixture root */
    CHECK(nmb_topology_num_files(t) > 100);
    CHECK(nmb_topology_file(t, 0)[0] == '/');
    /* Accessors out of range. */
    CHECK(nmb_topology_gpu(t, 8) == NULL);
    CHECK(nmb_topology_gpu(t, -1) == NULL);
    CHECK_INT(nmb_topology_distance(t, 8, 0), -EINVAL);
    CHECK_INT(nmb_topology_distance(t, 0, 12), -EINVAL);
    CHECK_INT(nmb_topology_nic_index(t, "mlx5_99"), -ENOENT);
    CHECK_INT(nmb_topology_pci_index(t, "not-an-address"), -ENOENT);
    nmb_topology_destroy(t);
}

static void test_azure(void)
{
    nmb_topology_t *t = load("azure-nd96isr-h100-v5");
    if (!t)
        return;
    /* Hyper-V: one host bridge per passed-through function. */
    CHECK_INT(nmb_topology_num_host_bridges(t), nmb_topology_num_pci(t));
    CHECK_INT(nmb_topology_num_gpus(t), 8);
    CHECK_STR(nmb_topology_host_bridge(t, nmb_topology_pci(t, nmb_topology_gpu(t, 0)->pci)->host_bridge)->name,
              "pci0001:00");
    for (int g = 0; g < 8; g++)
        for (int n = 0; n < nmb_topology_num_nics(t); n++) {
            int d = nmb_topology_distance(t, g, n);
            int same = nmb_topology_gpu(t, g)->numa_node == nmb_topology_nic(t, n)->numa_node;
            CHECK_INT(d, same ? NMB_DIST_NODE : NMB_DIST_SYS);
        }
    nmb_topology_destroy(t);
}

static void test_flat_vm(void)
{
    nmb_topology_t *t = load("h100x4-flat-vm");
    if (!t)
        return;
    CHECK_INT(nmb_topology_num_gpus(t), 4);
    for (int g = 0; g < 4; g++)
        CHECK_INT(nmb_topology_gpu(t, g)->numa_node, -1); /* unknown, never node 0 */
    CHECK_INT(nmb_topology_num_nics(t), 0);
    nmb_topology_destroy(t);
}

static void test_visible_devices(void)
{
    setenv("CUDA_VISIBLE_DEVICES", "6,2", 1);
    nmb_topology_t *t = load("paired-switch-rocev2");
    if (t) {
        CHECK_INT(nmb_topology_num_gpus(t), 2);
        CHECK_STR(nmb_topology_gpu(t, 0)->address, "0000:b0:00.0");
        CHECK_INT(nmb_topology_gpu(t, 0)->physical_index, 6);
        CHECK_INT(nmb_topology_gpu(t, 0)->index, 0);
        CHECK_INT(nmb_topology_num_all_gpus(t), 8);
        nmb_topology_destroy(t);
    }
    char root[4096];
    snprintf(root, sizeof root, "%s/paired-switch-rocev2", trees);
    setenv("CUDA_VISIBLE_DEVICES", "0,8", 1);
    t = (nmb_topology_t *)1;
    CHECK_INT(nmb_topology_create(&t, root, 0), -EINVAL);
    CHECK(t == NULL);
    CHECK(strstr(nmb_last_error(), "'8'") != NULL);
    unsetenv("CUDA_VISIBLE_DEVICES");
}

static void test_errors(void)
{
    nmb_topology_t *t = (nmb_topology_t *)1;
    CHECK_INT(nmb_topology_create(&t, "/nonexistent/numabind-root", 0), -ENOENT);
    CHECK(t == NULL);
    CHECK(strstr(nmb_last_error(), "/nonexistent/numabind-root") != NULL);
    CHECK_INT(nmb_topology_create(NULL, NULL, 0), -EINVAL);
    char root[4096];
    snprintf(root, sizeof root, "%s", trees); /* a directory, but no sysfs in it */
    CHECK_INT(nmb_topology_create(&t, root, 0), -ENOENT);
    CHECK(strstr(nmb_last_error(), "cpu/online") != NULL);
    nmb_topology_destroy(NULL);
    CHECK_INT(nmb_topology_num_gpus(NULL), -EINVAL);
    CHECK(nmb_topology_gpu(NULL, 0) == NULL);
    CHECK_STR(nmb_strerror(-EINVAL), "invalid argument");
}

/* Where the allowed CPUs came from, and what a capture without
 * proc/self/status (and with only masks, no cpu/online, package -1) gives. */
static void test_allowed_source(void)
{
    nmb_topology_t *full = load("plain-2cpu-2gpu"), *capture = load("plain-2cpu-2gpu-capture"), *live = NULL;
    if (!full || !capture)
        return;
    CHECK_INT(nmb_topology_allowed_source(full), NMB_ALLOWED_AFFINITY);
    CHECK_INT(nmb_topology_allowed_source(capture), NMB_ALLOWED_ONLINE);
    CHECK_STR(nmb_allowed_source_name(nmb_topology_allowed_source(capture)), "online");
    CHECK_STR(nmb_allowed_source_name(NMB_ALLOWED_KERNEL), "kernel");
    CHECK_STR(nmb_allowed_source_name(NMB_ALLOWED_CGROUP), "cgroup");
    CHECK_STR(nmb_allowed_source_name(NMB_ALLOWED_AFFINITY), "affinity");
    CHECK_STR(nmb_allowed_source_name(99), "?");
    CHECK_INT(nmb_topology_allowed_source(NULL), -EINVAL);
    CHECK(nmb_bitmap_equal(nmb_topology_allowed_cpus(capture), nmb_topology_online_cpus(capture)));
    CHECK_INT(nmb_topology_num_cpus(capture), nmb_topology_num_cpus(full));
    for (int i = 0; i < nmb_topology_num_cpus(capture); i++)
        CHECK_INT(nmb_topology_cpu(capture, i)->package, nmb_topology_cpu(full, i)->package);
    CHECK_INT(nmb_topology_num_l3(capture), nmb_topology_num_l3(full));
    nmb_plan_t *plan = NULL;
    CHECK_INT(nmb_plan_create(&plan, capture, NULL), 0);
    for (int r = 0; plan && r < nmb_plan_num_ranks(plan); r++) {
        const char *note = nmb_plan_rank(plan, r)->note;
        CHECK(note && strstr(note, "no proc/self/status in the tree: planned from every online CPU"));
    }
    nmb_plan_destroy(plan);
    CHECK_INT(nmb_topology_create(&live, NULL, NMB_TOPOLOGY_NO_NVML | NMB_TOPOLOGY_NO_VERBS), 0);
    int source = nmb_topology_allowed_source(live);
    CHECK(source == NMB_ALLOWED_KERNEL || source == NMB_ALLOWED_CGROUP || source == NMB_ALLOWED_AFFINITY);
    nmb_topology_destroy(live);
    nmb_topology_destroy(full);
    nmb_topology_destroy(capture);
}

static void test_version(void)
{
    CHECK_INT(nmb_version(), NMB_VERSION);
    CHECK_STR(nmb_version_string(), NMB_VERSION_STRING);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_topology TREES_DIR\n");
        return 2;
    }
    trees = argv[1];
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("NUMABIND_FSROOT");
    test_version();
    test_dgx();
    test_azure();
    test_flat_vm();
    test_visible_devices();
    test_errors();
    test_allowed_source();
    TEST_DONE();
}
