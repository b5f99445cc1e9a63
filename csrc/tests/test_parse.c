/* The internal parsers of sysfs values and CUDA_VISIBLE_DEVICES. */
#include "check.h"
#include "internal.h"

int main(void)
{
    unsigned d, b, v, f;
    CHECK_INT(nmb__parse_pci_address("0000:1b:00.0", &d, &b, &v, &f), 0);
    CHECK(d == 0 && b == 0x1b && v == 0 && f == 0);
    CHECK_INT(nmb__parse_pci_address("10000:e0:1f.7", &d, &b, &v, &f), 0);
    CHECK(d == 0x10000 && b == 0xe0 && v == 0x1f && f == 7);
    CHECK_INT(nmb__parse_pci_address("0000:1b:00.8", &d, &b, &v, &f), -EINVAL);
    CHECK_INT(nmb__parse_pci_address("0000:1b:00", &d, &b, &v, &f), -EINVAL);
    CHECK_INT(nmb__parse_pci_address("000:1b:00.0", &d, &b, &v, &f), -EINVAL);
    CHECK_INT(nmb__parse_pci_address("0000:1b:00.0x", &d, &b, &v, &f), -EINVAL);
    CHECK_INT(nmb__parse_pci_address("", &d, &b, &v, &f), -EINVAL);

    CHECK(nmb__is_host_bridge_name("pci0000:15"));
    CHECK(nmb__is_host_bridge_name("pci000a:00"));
    CHECK(!nmb__is_host_bridge_name("pci0000:15x"));
    CHECK(!nmb__is_host_bridge_name("0000:15:00.0"));

    CHECK_INT(nmb__parse_state("4: ACTIVE\n"), 4);
    CHECK_INT(nmb__parse_state("5: LinkUp"), 5);
    CHECK_INT(nmb__parse_state("ACTIVE"), -EINVAL);
    CHECK_INT(nmb__parse_state("4x"), -EINVAL);
    CHECK(nmb__parse_rate_gbps("400 Gb/sec (4X NDR)") == 400.0);
    CHECK(nmb__parse_rate_gbps("2.5 Gb/sec (1X SDR)") == 2.5);
    CHECK(nmb__parse_rate_gbps("fast") < 0);
    /* Decimals as the kernel prints them, and nothing else strtod took. */
    CHECK(nmb__parse_rate_gbps("53.125 Gb/sec (1X HDR)") == 53.125);
    CHECK(nmb__parse_rate_gbps("100 Mb/sec") == 0.1);
    CHECK(nmb__parse_rate_gbps("1e3 Gb/sec") < 0);
    CHECK(nmb__parse_rate_gbps("inf Gb/sec") < 0);
    CHECK(nmb__parse_rate_gbps("0x10 Gb/sec") < 0);
    CHECK(nmb__parse_rate_gbps("-2 Gb/sec") < 0);
    CHECK(nmb__parse_link_speed("2.5 GT/s PCIe") == 2.5);
    CHECK(nmb__parse_link_speed("1e1 GT/s") == 0);
    CHECK(nmb__parse_link_speed("32.0 GT/s PCIe\n") == 32.0);
    CHECK(nmb__parse_link_speed("Unknown") == 0);
    CHECK_INT(nmb__parse_link_layer("InfiniBand\n"), NMB_LINK_INFINIBAND);
    CHECK_INT(nmb__parse_link_layer("Ethernet"), NMB_LINK_ETHERNET);
    CHECK_INT(nmb__parse_link_layer("Other"), NMB_LINK_UNSPECIFIED);

    char out[64];
    const char *status = "Name:\tpython3\nCpus_allowed_list:\t0-95\nMems_allowed_list:\t0-1\n";
    CHECK_INT(nmb__status_field(status, "Cpus_allowed_list", out, sizeof out), 0);
    CHECK_STR(out, "0-95");
    CHECK_INT(nmb__status_field(status, "Cpus_allowed", out, sizeof out), -ENOENT);
    CHECK(nmb__parse_meminfo_total("Node 0 MemTotal:       1024 kB\n") == 1024 * 1024);
    CHECK(nmb__parse_meminfo_total("nothing") == -1);

    /* CUDA_VISIBLE_DEVICES against 4 GPUs, two of them with known UUIDs. */
    const char *uuids[4] = {"GPU-aaaa1111", "GPU-bbbb2222", NULL, "GPU-aaab3333"};
    int order[4];
    CHECK_INT(nmb__parse_cuda_visible("", uuids, 4, order), 0);
    CHECK_INT(nmb__parse_cuda_visible("3,1", uuids, 4, order), 2);
    CHECK(order[0] == 3 && order[1] == 1);
    CHECK_INT(nmb__parse_cuda_visible(" 2 , 0 ", uuids, 4, order), 2);
    CHECK(order[0] == 2 && order[1] == 0);
    CHECK_INT(nmb__parse_cuda_visible("GPU-bbbb,GPU-aaaa1", uuids, 4, order), 2);
    CHECK(order[0] == 1 && order[1] == 0);
    CHECK_INT(nmb__parse_cuda_visible("4", uuids, 4, order), -EINVAL);
    CHECK(strstr(nmb_last_error(), "'4'") != NULL);
    CHECK_STR(nmb_last_error_variable(), "CUDA_VISIBLE_DEVICES");
    CHECK_INT(nmb__parse_cuda_visible("-1", uuids, 4, order), -EINVAL);
    CHECK_INT(nmb__parse_cuda_visible("GPU-aaa", uuids, 4, order), -EINVAL); /* ambiguous */
    CHECK(strstr(nmb_last_error(), "more than one") != NULL);
    CHECK_INT(nmb__parse_cuda_visible("GPU-ffff", uuids, 4, order), -EINVAL);
    CHECK(strstr(nmb_last_error(), "'GPU-ffff'") != NULL);
    CHECK_INT(nmb__parse_cuda_visible("MIG-1234", uuids, 4, order), -EINVAL);
    CHECK(strstr(nmb_last_error(), "MIG") != NULL);
    CHECK_INT(nmb__parse_cuda_visible("0,0", uuids, 4, order), -EINVAL);
    CHECK_INT(nmb__parse_cuda_visible("0,,1", uuids, 4, order), -EINVAL);
    CHECK_INT(nmb__parse_cuda_visible("zero", uuids, 4, order), -EINVAL);
    CHECK_INT(nmb__parse_cuda_visible("1abc", uuids, 4, order), -EINVAL);
    CHECK_INT(nmb__parse_cuda_visible("GPU-x", NULL, 0, order), -EINVAL);
    CHECK(strstr(nmb_last_error(), "NVML") != NULL);
    TEST_DONE();
}
