/* Planning on fixture trees, and applying on this machine's kernel: every
 * thread bound, read back, and everything restored when a step fails. The
 * kernel offers no way to make sched_setaffinity or set_mempolicy fail on
 * demand, so the failure tests swap nmb__sys's entries for ones that fail at
 * a chosen call; everything else is the real kernel. */
#include <numaif.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

static const char *trees;

static nmb_topology_t *load(const char *machine)
{
    char root[4096];
    nmb_topology_t *t = NULL;
    if (machine)
        snprintf(root, sizeof root, "%s/%s", trees, machine);
    int err = nmb_topology_create(&t, machine ? root : NULL, 0);
    if (err < 0)
        fprintf(stderr, "%s: %s\n", machine ? machine : "live", nmb_last_error());
    CHECK_INT(err, 0);
    return t;
}

static void test_dgx_plan(void)
{
    nmb_topology_t *t = load("dgx-h100");
    nmb_plan_t *p;
    char buf[128];
    CHECK_INT(nmb_plan_create(&p, t, NULL), 0);
    CHECK_INT(nmb_plan_num_ranks(p), 8);
    static const char *nics[8] = {"mlx5_0", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_9", "mlx5_10", "mlx5_11"};
    nmb_bitmap_t seen;
    nmb_bitmap_zero(&seen);
    for (int r = 0; r < 8; r++) {
        const nmb_rank_plan_t *rp = nmb_plan_rank(p, r);
        CHECK_STR(rp->nic, nics[r]);
        CHECK_INT(rp->numa_node, r < 4 ? 0 : 1);
        CHECK_INT(rp->distance, NMB_DIST_PIX);
        CHECK_INT(nmb_bitmap_count(&rp->cpus), 28);
        CHECK(!nmb_bitmap_intersects(&rp->cpus, &seen));
        nmb_bitmap_or(&seen, &seen, &rp->cpus);
        CHECK_INT(rp->num_env, 4);
    }
    nmb_bitmap_format_list(&nmb_plan_rank(p, 4)->cpus, buf, sizeof buf);
    CHECK_STR(buf, "56-69,168-181");
    CHECK_STR(nmb_plan_rank(p, 1)->env[0].name, "NVSHMEM_HCA_LIST");
    CHECK_STR(nmb_plan_rank(p, 1)->env[0].value, "mlx5_3:1");
    CHECK_STR(nmb_plan_rank(p, 1)->env[2].value, "=mlx5_3:1");
    CHECK(nmb_plan_rank(p, 8) == NULL);
    nmb_plan_destroy(p);

    nmb_plan_options_t o;
    nmb_plan_options_init(&o);
    o.cpu_policy = 99;
    CHECK_INT(nmb_plan_create(&p, t, &o), -EINVAL);
    nmb_plan_options_init(&o);
    o.local_world_size = 9; /* more ranks than the 8 GPUs */
    CHECK_INT(nmb_plan_create(&p, t, &o), -EINVAL);
    CHECK(strstr(nmb_last_error(), "local rank 8 has no GPU") != NULL);
    CHECK_INT(nmb_cpu_policy_from_name("core-complex"), NMB_CPU_CORE_COMPLEX);
    CHECK_INT(nmb_cpu_policy_from_name("fast"), -EINVAL);
    CHECK(strstr(nmb_last_error(), "'fast'") != NULL);
    nmb_plan_destroy(NULL);
    nmb_topology_destroy(t);
}

static void test_rank_from_env(void)
{
    int rank = -1;
    const char *src = NULL;
    unsetenv("LOCAL_RANK");
    unsetenv("SLURM_LOCALID");
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
    unsetenv("MPI_LOCALRANKID");
    CHECK_INT(nmb_local_rank_from_env(&rank, &src), -ENOENT);
    setenv("SLURM_LOCALID", "3", 1);
    CHECK_INT(nmb_local_rank_from_env(&rank, &src), 0);
    CHECK_INT(rank, 3);
    CHECK_STR(src, "SLURM_LOCALID");
    setenv("LOCAL_RANK", "-1", 1);
    CHECK_INT(nmb_local_rank_from_env(&rank, &src), -EINVAL);
    CHECK(strstr(nmb_last_error(), "LOCAL_RANK='-1'") != NULL);
    unsetenv("LOCAL_RANK");
    unsetenv("SLURM_LOCALID");
}

/* ---- applying ---- */

static volatile int stop_threads;
static void *idle(void *arg)
{
    (void)arg;
    while (!stop_threads)
        usleep(1000);
    return NULL;
}

static int all_threads_on(const nmb_bitmap_t *want)
{
    pid_t *tids;
    extern int nmb__test_list_tasks(pid_t **out);
    int n = nmb__test_list_tasks(&tids), ok = n > 0;
    for (int i = 0; i < n; i++) {
        nmb_bitmap_t m;
        nmb_bitmap_zero(&m);
        sched_getaffinity(tids[i], sizeof m, (cpu_set_t *)&m);
        ok &= nmb_bitmap_equal(&m, want);
    }
    free(tids);
    return ok;
}

static int fail_on_call, calls;
static int flaky_setaffinity(pid_t tid, size_t size, const cpu_set_t *mask)
{
    if (++calls == fail_on_call) {
        errno = EPERM;
        return -1;
    }
    return sched_setaffinity(tid, size, mask);
}
static long refuse_mempolicy(int mode, const unsigned long *mask, unsigned long maxnode)
{
    (void)mode, (void)mask, (void)maxnode;
    errno = EPERM; /* as a container's seccomp profile answers */
    return -1;
}

static void test_apply_live(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 2) {
        fprintf(stderr, "apply tests need 2 CPUs; this machine has %ld\n", ncpu);
        nmb_test_failures++;
        return;
    }
    nmb_topology_t *t = load(NULL);
    nmb_plan_options_t o;
    nmb_plan_options_init(&o);
    o.local_world_size = 2;
    nmb_plan_t *p;
    CHECK_INT(nmb_plan_create(&p, t, &o), 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, idle, NULL);

    nmb_bitmap_t start, cpu0;
    nmb_bitmap_zero(&start);
    nmb_bitmap_set(&start, 0);
    nmb_bitmap_set(&start, 1);
    nmb_bitmap_zero(&cpu0);
    nmb_bitmap_set(&cpu0, 0);

    /* Rank 1 of 2: every thread on CPU 1. */
    nmb_apply_report_t rep;
    CHECK_INT(nmb_plan_apply(p, 1, 0, &rep), 0);
    CHECK(all_threads_on(&nmb_plan_rank(p, 1)->cpus));
    CHECK_INT(rep.threads, 5);

    /* The third setaffinity fails: the two threads already moved go back. */
    CHECK_INT(nmb_plan_apply(p, 0, 0, NULL), 0);
    CHECK(all_threads_on(&cpu0));
    fail_on_call = 3, calls = 0;
    nmb__sys.setaffinity = flaky_setaffinity;
    CHECK_INT(nmb_plan_apply(p, 1, 0, NULL), -EPERM);
    CHECK(strstr(nmb_last_error(), "sched_setaffinity") != NULL);
    nmb__sys.setaffinity = sched_setaffinity;
    CHECK(all_threads_on(&cpu0));

    /* A plan from a 224-CPU machine: the kernel keeps only CPUs 0-1, the
     * read-back catches it, and every thread returns to CPU 0. */
    nmb_topology_t *dgx = load("dgx-h100");
    nmb_plan_t *big;
    CHECK_INT(nmb_plan_create(&big, dgx, NULL), 0);
    CHECK_INT(nmb_plan_apply(big, 0, 0, NULL), -EIO);
    CHECK(all_threads_on(&cpu0));

    /* set_mempolicy refused after every thread was bound: all restored. */
    int mode_before;
    nmb_bitmap_t mask_before;
    nmb_bitmap_zero(&mask_before);
    get_mempolicy(&mode_before, (unsigned long *)mask_before.words, NMB_BITMAP_BITS, NULL, 0);
    nmb__sys.setaffinity = sched_setaffinity;
    nmb__sys.set_mempolicy = refuse_mempolicy;
    /* dgx's rank plan has a memory node; bind to CPU 1 instead through a
     * copy of the plan so the affinity step succeeds here. */
    nmb_rank_plan_t *r0 = (nmb_rank_plan_t *)nmb_plan_rank(big, 0);
    nmb_bitmap_t saved = r0->cpus;
    nmb_bitmap_zero(&r0->cpus);
    nmb_bitmap_set(&r0->cpus, 1);
    CHECK_INT(nmb_plan_apply(big, 0, 0, NULL), -EPERM);
    CHECK(strstr(nmb_last_error(), "set_mempolicy") != NULL);
    CHECK(strstr(nmb_last_error(), "seccomp") != NULL);
    CHECK(all_threads_on(&cpu0));
    int mode_after;
    nmb_bitmap_t mask_after;
    nmb_bitmap_zero(&mask_after);
    get_mempolicy(&mode_after, (unsigned long *)mask_after.words, NMB_BITMAP_BITS, NULL, 0);
    CHECK_INT(mode_after, mode_before);
    CHECK(nmb_bitmap_equal(&mask_after, &mask_before));
    nmb__sys.set_mempolicy = set_mempolicy;
    r0->cpus = saved;

    stop_threads = 1;
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    sched_setaffinity(0, sizeof start, (cpu_set_t *)&start);
    nmb_plan_destroy(big);
    nmb_topology_destroy(dgx);
    nmb_plan_destroy(p);
    nmb_topology_destroy(t);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    trees = argv[1];
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("NUMABIND_FSROOT");
    unsetenv("LOCAL_WORLD_SIZE");
    test_dgx_plan();
    test_rank_from_env();
    test_apply_live();
    TEST_DONE();
}
