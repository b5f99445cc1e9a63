/* Leak check: N topology/plan cycles over a fixture tree, every path a
 * caller can take — success and failure, every CPU and memory policy,
 * explicit rank GPUs, file recording, a bad CUDA_VISIBLE_DEVICES, a missing
 * root, launcher variables — and the two handles freed in either order,
 * with the plan read after its topology is gone.
 *
 *   stress_cycles TREE CYCLES [MAX_RSS_GROWTH_KB]
 *
 * Built with ASan (the ctest build, tools/ci/stage-fuzz.sh) LeakSanitizer
 * reports any block left unreachable at exit; under valgrind every block
 * still allocated at exit is an error. Without a sanitizer, the third
 * argument bounds the resident set's growth between the end of the first
 * tenth of the cycles and the end: memory kept reachable but never freed
 * (a cache that grows) shows there. Prints the figures docs/reliability.md
 * records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static long rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* Reads every byte a plan hands out, so that a plan pointing into a freed
 * topology is caught (ASan: use after free; valgrind: invalid read). */
static unsigned long touch_plan(const nmb_plan_t *p)
{
    unsigned long sum = 0;
    for (int r = 0; r < nmb_plan_num_ranks(p); r++) {
        const nmb_rank_plan_t *rp = nmb_plan_rank(p, r);
        sum += (unsigned long)nmb_bitmap_count(&rp->cpus) + (unsigned long)nmb_bitmap_count(&rp->mems);
        if (rp->gpu_address)
            sum += strlen(rp->gpu_address);
        if (rp->nic)
            sum += strlen(rp->nic);
        if (rp->note)
            sum += strlen(rp->note);
        for (int i = 0; i < rp->num_env; i++)
            sum += strlen(rp->env[i].name) + strlen(rp->env[i].value) + (rp->env[i].user ? 1 : 0);
    }
    return sum;
}

static int cycle(const char *tree, long i, unsigned long *sum)
{
    nmb_topology_t *t = NULL;
    nmb_plan_t *p = NULL;
    int failures = 0;
    /* One cycle in 16 fails while reading, in two different ways. */
    if (i % 16 == 7)
        setenv("CUDA_VISIBLE_DEVICES", "0,9", 1);
    const char *root = i % 16 == 11 ? "/nonexistent/numabind-stress" : tree;
    unsigned flags = NMB_TOPOLOGY_NO_NVML | NMB_TOPOLOGY_NO_VERBS | (i % 4 == 1 ? NMB_TOPOLOGY_RECORD_FILES : 0);
    int err = nmb_topology_create(&t, root, flags);
    unsetenv("CUDA_VISIBLE_DEVICES");
    if (i % 16 == 7 || i % 16 == 11) {
        failures += err >= 0 || t != NULL;
        nmb_topology_destroy(t);
        return failures;
    }
    if (err < 0) {
        fprintf(stderr, "cycle %ld: %s\n", i, nmb_last_error());
        return 1;
    }
    for (int k = 0; k < nmb_topology_num_files(t); k++)
        *sum += strlen(nmb_topology_file(t, k));

    nmb_plan_options_t o;
    nmb_plan_options_init(&o);
    o.cpu_policy = (int)(i % 5);
    o.mem_policy = (int)(i / 5 % 4);
    o.override_env = (int)(i & 1);
    /* The GPUs whose nodes the fixture's process may allocate on (its
     * Mems_allowed_list leaves out node 1, so planning every GPU is refused). */
    int usable[4] = {0, 1, 3, 4}, shared[3] = {1, 1, 0};
    int expect_refusal = 0;
    o.local_world_size = 4;
    o.rank_gpus = usable;
    if (i % 7 == 3) {
        o.local_world_size = 3;
        o.rank_gpus = shared;
    }
    if (i % 9 == 4) {
        o.local_world_size = 64; /* more ranks than GPUs: refused */
        o.rank_gpus = NULL;
        expect_refusal = 1;
    } else if (i % 13 == 5) {
        o.local_world_size = 0; /* every GPU, one on a node the process may not use: refused */
        o.rank_gpus = NULL;     /* (unless interleaved over the nodes it may use) */
        expect_refusal = o.mem_policy != NMB_MEM_INTERLEAVE;
    }
    if (i % 8 == 2)
        setenv("NCCL_IB_HCA", "mlx5_9", 1);
    err = nmb_plan_create(&p, t, &o);
    unsetenv("NCCL_IB_HCA");
    if (expect_refusal) {
        failures += err >= 0 || p != NULL || !nmb_last_error()[0];
    } else if (err < 0) {
        if (failures < 5)
            fprintf(stderr, "cycle %ld: %s\n", i, nmb_last_error());
        failures++;
    }
    /* The launcher variables, set, read and cleared. */
    int rank, size;
    setenv("SLURM_LOCALID", "1", 1);
    setenv("SLURM_STEP_TASKS_PER_NODE", i & 2 ? "4(x2),3" : "x", 1);
    setenv("SLURM_NODEID", "1", 1);
    nmb_local_rank_from_env(&rank, NULL);
    nmb_local_world_size_from_env(&size, NULL);
    unsetenv("SLURM_LOCALID");
    unsetenv("SLURM_STEP_TASKS_PER_NODE");
    unsetenv("SLURM_NODEID");

    /* Either order: a plan keeps nothing of its topology. */
    if (i & 1) {
        nmb_topology_destroy(t);
        if (p)
            *sum += touch_plan(p);
        nmb_plan_destroy(p);
    } else {
        if (p)
            *sum += touch_plan(p);
        nmb_plan_destroy(p);
        nmb_topology_destroy(t);
    }
    return failures;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: stress_cycles TREE CYCLES [MAX_RSS_GROWTH_KB]\n");
        return 2;
    }
    const char *tree = argv[1];
    long n = strtol(argv[2], NULL, 10), max_growth = argc > 3 ? strtol(argv[3], NULL, 10) : -1;
    unsigned long sum = 0;
    long failures = 0, rss_warm = -1;
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("NUMABIND_FSROOT");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        failures += cycle(tree, i, &sum);
        if (i == n / 10)
            rss_warm = rss_kb();
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    long rss_end = rss_kb();
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("stress_cycles: %ld cycles in %.1f s (%.0f/s), %ld unexpected results, "
           "VmRSS %ld KB after %ld cycles, %ld KB at the end (checksum %lu)\n",
           n, secs, (double)n / (secs > 0 ? secs : 1), failures, rss_warm, n / 10 + 1, rss_end, sum);
    if (failures)
        return 1;
    if (max_growth >= 0 && rss_end - rss_warm > max_growth) {
        fprintf(stderr, "stress_cycles: the resident set grew by %ld KB (limit %ld KB)\n", rss_end - rss_warm,
                max_growth);
        return 1;
    }
    return 0;
}
