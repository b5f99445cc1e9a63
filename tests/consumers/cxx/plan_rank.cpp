// A C++ consumer of numabind's C API, built against the installed wheel
// (find_package(numabind) or pkg-config): plans every local rank of a
// machine and prints one rank's binding as a line of JSON.
//
//   plan_rank FSROOT RANK [LOCAL_WORLD_SIZE]
#include <numabind/numabind.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s FSROOT RANK [LOCAL_WORLD_SIZE]\n", argv[0]);
        return 2;
    }
    nmb_topology_t *topo = nullptr;
    int err = nmb_topology_create(&topo, argv[1], 0);
    if (err < 0) {
        std::fprintf(stderr, "topology: %s: %s\n", nmb_strerror(err), nmb_last_error());
        return 1;
    }
    nmb_plan_options_t opts;
    nmb_plan_options_init(&opts);
    if (argc > 3)
        opts.local_world_size = std::atoi(argv[3]);
    nmb_plan_t *plan = nullptr;
    err = nmb_plan_create(&plan, topo, &opts);
    nmb_topology_destroy(topo);  // the plan does not keep it
    if (err < 0) {
        std::fprintf(stderr, "plan: %s: %s\n", nmb_strerror(err), nmb_last_error());
        return 1;
    }
    const nmb_rank_plan_t *r = nmb_plan_rank(plan, std::atoi(argv[2]));
    if (!r) {
        std::fprintf(stderr, "rank %s is outside the %d planned\n", argv[2], nmb_plan_num_ranks(plan));
        nmb_plan_destroy(plan);
        return 1;
    }
    char cpus[4096];
    nmb_bitmap_format_list(&r->cpus, cpus, sizeof cpus);
    std::printf("{\"version\": \"%s\", \"rank\": %d, \"gpu\": %d, \"numa_node\": %d, \"cpus\": \"%s\", "
                "\"nic\": %s%s%s, \"ranks\": %d}\n",
                nmb_version_string(), r->local_rank, r->gpu, r->numa_node, cpus,
                r->nic ? "\"" : "", r->nic ? r->nic : "null", r->nic ? "\"" : "", nmb_plan_num_ranks(plan));
    nmb_plan_destroy(plan);
    return 0;
}
