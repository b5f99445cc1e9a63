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
#include "common.h"
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
        CHECK_INT(rp->num_env, 5);
        CHECK_INT(rp->num_hcas, 1);
        snprintf(buf, sizeof buf, "%s:1", nics[r]);
        CHECK_STR(rp->hcas[0], buf);
    }
    nmb_bitmap_format_list(&nmb_plan_rank(p, 4)->cpus, buf, sizeof buf);
    CHECK_STR(buf, "56-69,168-181");
    CHECK_STR(nmb_plan_rank(p, 1)->env[0].name, "NVSHMEM_HCA_LIST");
    CHECK_STR(nmb_plan_rank(p, 1)->env[0].value, "mlx5_3:1");
    /* NCCL_IB_HCA: one node-wide value, the compute NICs in PCI order. */
    for (int r = 0; r < 8; r++)
        CHECK_STR(nmb_plan_rank(p, r)->env[2].value,
                  "=mlx5_0:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_9:1,mlx5_10:1,mlx5_11:1");
    CHECK_STR(nmb_plan_rank(p, 1)->env[4].name, "EP_NIC_NAME");
    CHECK_STR(nmb_plan_rank(p, 1)->env[4].value, "mlx5_3");
    CHECK(nmb_plan_note(p) == NULL);
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

static const char *const launcher_vars[] = {
    "LOCAL_RANK", "LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
    "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "PMI_LOCAL_RANK", "PMI_LOCAL_SIZE", "SLURM_LOCALID",
    "SLURM_NODEID", "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE",
};

static void clear_launchers(void)
{
    for (size_t i = 0; i < sizeof launcher_vars / sizeof *launcher_vars; i++)
        unsetenv(launcher_vars[i]);
}

/* rank and size as the launcher variables give them; -1 for an error */
static int env_rank(const char **src)
{
    int r = -1;
    return nmb_local_rank_from_env(&r, src) == 0 ? r : -1;
}

static int env_size(const char **src)
{
    int n = -1, err = nmb_local_world_size_from_env(&n, src);
    return err == 0 ? n : err;
}

static void test_rank_from_env(void)
{
    int rank = -1;
    const char *src = NULL;
    clear_launchers();
    CHECK_INT(nmb_local_rank_from_env(&rank, &src), -ENOENT);
    CHECK(strstr(nmb_last_error(), "PMI_LOCAL_RANK") != NULL);
    CHECK(nmb_last_error_variable() == NULL); /* nothing held a bad value */
    CHECK_INT(nmb_local_world_size_from_env(&rank, &src), -ENOENT);
    /* -ENOENT says what it looked for, not an earlier call's detail
     * (found by csrc/fuzz/fuzz_launcher_env). */
    CHECK(strstr(nmb_last_error(), "no local size in the environment") != NULL);
    CHECK(strstr(nmb_last_error(), "SLURM_NTASKS_PER_NODE") != NULL);
    setenv("LOCAL_RANK", "1", 1);
    CHECK_INT(nmb_local_world_size_from_env(&rank, &src), -ENOENT);
    CHECK(strstr(nmb_last_error(), "LOCAL_RANK is set but its launcher gives no local size (LOCAL_WORLD_SIZE unset)") != NULL);
    unsetenv("LOCAL_RANK");
    setenv("SLURM_LOCALID", "3", 1);
    CHECK_INT(nmb_local_rank_from_env(&rank, &src), 0);
    CHECK_INT(rank, 3);
    CHECK_STR(src, "SLURM_LOCALID");
    setenv("LOCAL_RANK", "-1", 1);
    CHECK_INT(nmb_local_rank_from_env(&rank, &src), -EINVAL);
    CHECK(strstr(nmb_last_error(), "LOCAL_RANK='-1'") != NULL);
    CHECK_STR(nmb_last_error_variable(), "LOCAL_RANK");
    CHECK_INT(nmb_local_rank_from_env(&rank, NULL), -EINVAL);
    CHECK_INT(nmb_local_world_size_from_env(NULL, NULL), -EINVAL); /* a failure about no variable */
    CHECK(nmb_last_error_variable() == NULL);
    static const char *const bad[] = {"", " 1", "+1", "1 ", "0x1", "1(x2)", "1.0", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("LOCAL_RANK", bad[i], 1);
        CHECK_INT(nmb_local_rank_from_env(&rank, &src), -EINVAL);
        CHECK(strncmp(nmb_last_error(), "LOCAL_RANK='", 12) == 0);
    }
    clear_launchers();
}

/* Sets RANK_VAR=RANK and SIZE_VAR=SIZE beside the launcher variables already
 * set, and checks that the rank read is RANK, from RANK_VAR, and the size
 * read is SIZE, from SIZE_SRC where one is given. */
static void check_launcher_pair(const char *rank_var, int rank, const char *size_var, int size,
                                const char *size_src)
{
    const char *src = NULL, *got_size_src = NULL;
    char value[16];
    snprintf(value, sizeof value, "%d", rank);
    setenv(rank_var, value, 1);
    snprintf(value, sizeof value, "%d", size);
    setenv(size_var, value, 1);
    CHECK_INT(env_rank(&src), rank);
    CHECK_STR(src, rank_var);
    CHECK_INT(env_size(&got_size_src), size);
    if (size_src)
        CHECK_STR(got_size_src, size_src);
}

/* Innermost launcher first; rank and size always from the same launcher. */
static void test_launcher_precedence(void)
{
    const char *src = NULL, *size_src = NULL;
    clear_launchers();
    /* mpirun in an sbatch script: the batch step's SLURM_LOCALID=0 is inherited */
    setenv("SLURM_LOCALID", "0", 1);
    setenv("SLURM_NODEID", "0", 1);
    setenv("SLURM_TASKS_PER_NODE", "1", 1);
    check_launcher_pair("OMPI_COMM_WORLD_LOCAL_RANK", 2, "OMPI_COMM_WORLD_LOCAL_SIZE", 4,
                        "OMPI_COMM_WORLD_LOCAL_SIZE");
    /* Hydra under the same script */
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
    unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    check_launcher_pair("MPI_LOCALRANKID", 1, "MPI_LOCALNRANKS", 2, "MPI_LOCALNRANKS");
    /* Cray PALS */
    unsetenv("MPI_LOCALRANKID");
    unsetenv("MPI_LOCALNRANKS");
    check_launcher_pair("PMI_LOCAL_RANK", 3, "PMI_LOCAL_SIZE", 8, NULL);
    /* torchrun inside a one-task srun step: torchrun's pair, never Slurm's size 1 */
    check_launcher_pair("LOCAL_RANK", 5, "LOCAL_WORLD_SIZE", 8, "LOCAL_WORLD_SIZE");
    /* a rank whose launcher gives no size: no size, not another launcher's */
    unsetenv("LOCAL_WORLD_SIZE");
    CHECK_INT(env_rank(&src), 5);
    CHECK_INT(env_size(&size_src), -ENOENT);
    /* no rank at all: the first size set */
    clear_launchers();
    setenv("MPI_LOCALNRANKS", "3", 1);
    setenv("SLURM_NTASKS_PER_NODE", "2", 1);
    CHECK_INT(env_size(&size_src), 3);
    CHECK_STR(size_src, "MPI_LOCALNRANKS");
    clear_launchers();
}

static void test_slurm_size(void)
{
    const char *src = NULL;
    clear_launchers();
    setenv("SLURM_LOCALID", "1", 1);
    /* srun's step list, indexed by SLURM_NODEID */
    setenv("SLURM_STEP_TASKS_PER_NODE", "4(x2),3", 1);
    setenv("SLURM_TASKS_PER_NODE", "8(x3)", 1);
    setenv("SLURM_NTASKS_PER_NODE", "8", 1);
    static const int want[] = {4, 4, 3};
    for (int node = 0; node < 3; node++) {
        char id[8];
        snprintf(id, sizeof id, "%d", node);
        setenv("SLURM_NODEID", id, 1);
        CHECK_INT(env_size(&src), want[node]);
        CHECK_STR(src, "SLURM_STEP_TASKS_PER_NODE");
        CHECK_INT(env_rank(&src), 1);
    }
    setenv("SLURM_NODEID", "3", 1);
    CHECK_INT(env_size(&src), -EINVAL);
    CHECK(strstr(nmb_last_error(), "SLURM_NODEID='3'") != NULL);
    CHECK(strstr(nmb_last_error(), "'4(x2),3' names 3 nodes") != NULL);
    unsetenv("SLURM_NODEID");
    CHECK_INT(env_size(&src), -EINVAL);
    CHECK(strstr(nmb_last_error(), "SLURM_NODEID is not set") != NULL);
    /* one count for every node: SLURM_NODEID does not matter */
    setenv("SLURM_STEP_TASKS_PER_NODE", "2(x4)", 1);
    CHECK_INT(env_size(&src), 2);
    setenv("SLURM_NODEID", "9", 1);
    CHECK_INT(env_size(&src), 2);
    setenv("SLURM_NODEID", "x", 1);
    CHECK_INT(env_size(&src), -EINVAL);
    CHECK(strstr(nmb_last_error(), "SLURM_NODEID='x'") != NULL);
    setenv("SLURM_NODEID", "1", 1);
    /* the job's lists when the step's is absent; --ntasks-per-node last */
    unsetenv("SLURM_STEP_TASKS_PER_NODE");
    setenv("SLURM_TASKS_PER_NODE", "1,6", 1);
    CHECK_INT(env_size(&src), 6);
    CHECK_STR(src, "SLURM_TASKS_PER_NODE");
    unsetenv("SLURM_TASKS_PER_NODE");
    CHECK_INT(env_size(&src), 8);
    CHECK_STR(src, "SLURM_NTASKS_PER_NODE");
    /* the rank checked against its own launcher's size */
    setenv("SLURM_STEP_TASKS_PER_NODE", "4(x2),1", 1);
    setenv("SLURM_NODEID", "2", 1);
    CHECK_INT(env_rank(&src), -1);
    CHECK(strstr(nmb_last_error(), "SLURM_LOCALID='1' is not below SLURM_STEP_TASKS_PER_NODE='4(x2),1'") != NULL);
    static const char *const bad[] = {"", "4(x2", "4(2)", "4(x0)", "(x2)", "4,", ",4", "4;3", "4(x2)3",
                                      "-4", "4 ", "4(x2),,3", "0", "2(x99999999999)"};
    setenv("SLURM_NODEID", "0", 1);
    setenv("SLURM_LOCALID", "0", 1);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("SLURM_STEP_TASKS_PER_NODE", bad[i], 1);
        CHECK_INT(env_size(&src), -EINVAL);
        CHECK(strncmp(nmb_last_error(), "SLURM_STEP_TASKS_PER_NODE='", 27) == 0);
        CHECK_INT(env_rank(&src), -1);
        CHECK(strncmp(nmb_last_error(), "SLURM_STEP_TASKS_PER_NODE='", 27) == 0);
    }
    clear_launchers();
}

static void test_rank_below_size(void)
{
    static const char *const pairs[][2] = {{"LOCAL_RANK", "LOCAL_WORLD_SIZE"},
                                           {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
                                           {"MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
                                           {"PMI_LOCAL_RANK", "PMI_LOCAL_SIZE"}};
    const char *src;
    char want[128];
    for (int i = 0; i < 4; i++) {
        clear_launchers();
        setenv(pairs[i][0], "4", 1);
        setenv(pairs[i][1], "4", 1);
        CHECK_INT(env_rank(&src), -1);
        snprintf(want, sizeof want, "%s='4' is not below %s='4'", pairs[i][0], pairs[i][1]);
        CHECK(strstr(nmb_last_error(), want) != NULL);
        setenv(pairs[i][1], "5", 1);
        CHECK_INT(env_rank(&src), 4);
        CHECK_STR(src, pairs[i][0]);
        setenv(pairs[i][1], "0", 1);
        CHECK_INT(env_size(&src), -EINVAL);
        snprintf(want, sizeof want, "%s='0' is not a positive integer", pairs[i][1]);
        CHECK(strstr(nmb_last_error(), want) != NULL);
        CHECK_INT(env_rank(&src), -1); /* a broken size fails the rank too */
        setenv(pairs[i][1], "4x", 1);
        CHECK_INT(env_size(&src), -EINVAL);
        CHECK(strstr(nmb_last_error(), "'4x'") != NULL);
    }
    clear_launchers();
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
    nmb_topology_t *t = load("plain-2cpu-2gpu"); /* rank r on CPU r of this machine */
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
    CHECK(all_threads_on(&nmb_plan_rank(p, 1)->cpus, NULL));
    CHECK_INT(rep.threads, 5);

    /* The third setaffinity fails: the two threads already moved go back. */
    CHECK_INT(nmb_plan_apply(p, 0, 0, NULL), 0);
    CHECK(all_threads_on(&cpu0, NULL));
    fail_on_call = 3, calls = 0;
    nmb__sys.setaffinity = flaky_setaffinity;
    CHECK_INT(nmb_plan_apply(p, 1, 0, NULL), -EPERM);
    CHECK(strstr(nmb_last_error(), "sched_setaffinity") != NULL);
    nmb__sys.setaffinity = sched_setaffinity;
    CHECK(all_threads_on(&cpu0, NULL));

    /* A plan from a 224-CPU machine: the kernel keeps only CPUs 0-1, the
     * read-back catches it, and every thread returns to CPU 0. */
    nmb_topology_t *dgx = load("dgx-h100");
    nmb_plan_t *big;
    CHECK_INT(nmb_plan_create(&big, dgx, NULL), 0);
    CHECK_INT(nmb_plan_apply(big, 0, 0, NULL), -EIO);
    CHECK(all_threads_on(&cpu0, NULL));

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
    CHECK(all_threads_on(&cpu0, NULL));
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

/* A container given GPUs 4-7 of a DGX H100 (libnvidia-container's view):
 * CUDA's device 0 is the machine's GPU 4, which keeps its own NIC. */
static void test_container_plan(void)
{
    nmb_topology_t *t = load("dgx-h100-container");
    nmb_plan_t *p;
    CHECK_INT(nmb_topology_num_all_gpus(t), 8);
    CHECK_INT(nmb_topology_num_gpus(t), 4);
    CHECK_STR(nmb_topology_gpu(t, 0)->address, "0000:9d:00.0");
    CHECK_INT(nmb_topology_gpu(t, 0)->minor, 4);
    CHECK_INT(nmb_topology_all_gpu(t, 0)->accessible, 0);
    CHECK_INT(nmb_topology_all_gpu(t, 4)->accessible, 1);
    CHECK_INT(nmb_plan_create(&p, t, NULL), 0);
    CHECK_INT(nmb_plan_num_ranks(p), 4);
    CHECK_STR(nmb_plan_rank(p, 0)->nic, "mlx5_6");
    CHECK_STR(nmb_plan_rank(p, 3)->nic, "mlx5_11");
    CHECK_INT(nmb_plan_rank(p, 0)->numa_node, 1);
    nmb_plan_destroy(p);
    nmb_topology_destroy(t);
}

/* No GPU, no rank: the plan says why instead. */
static void test_no_gpu_plan(void)
{
    nmb_topology_t *t = load("plain-2cpu-no-gpu");
    nmb_plan_t *p;
    nmb_plan_options_t o;
    nmb_plan_options_init(&o);
    o.local_world_size = 2;
    CHECK_INT(nmb_plan_create(&p, t, &o), 0);
    CHECK_INT(nmb_plan_num_ranks(p), 0);
    CHECK(nmb_plan_note(p) && strstr(nmb_plan_note(p), "no NVIDIA GPU on this node"));
    CHECK(nmb_plan_rank(p, 0) == NULL);
    CHECK_INT(nmb_plan_apply(p, 0, 0, NULL), -EINVAL);
    nmb_plan_destroy(p);
    nmb_topology_destroy(t);
}

/* Overrides: each checked before anything changes; a NIC brings its own
 * variables, NCCL_IB_HCA stays the node's. */
static void test_override(void)
{
    nmb_topology_t *t = load("dgx-h100");
    nmb_plan_t *p;
    nmb_rank_override_t ov;
    nmb_bitmap_t cpus, mems, before;
    char buf[128];
    setenv("NVSHMEM_HCA_LIST", "mlx5_0:1", 1); /* inherited: a named NIC still replaces it */
    CHECK_INT(nmb_plan_create(&p, t, NULL), 0);
    before = nmb_plan_rank(p, 5)->cpus;

    nmb_rank_override_init(&ov);
    CHECK_INT(nmb_bitmap_parse_list(&cpus, "300"), 0);
    ov.cpus = &cpus;
    ov.nic = "mlx5_3";
    CHECK_INT(nmb_plan_override_rank(p, t, 5, &ov), -EINVAL);
    CHECK(strstr(nmb_last_error(), "CPUs 300 are not allowed"));
    CHECK(nmb_bitmap_equal(&nmb_plan_rank(p, 5)->cpus, &before)); /* nothing changed */
    CHECK_STR(nmb_plan_rank(p, 5)->nic, "mlx5_9");

    CHECK_INT(nmb_bitmap_parse_list(&cpus, "0-3"), 0);
    ov.nic = "mlx5_99";
    CHECK_INT(nmb_plan_override_rank(p, t, 5, &ov), -EINVAL);
    CHECK(strstr(nmb_last_error(), "no RDMA NIC named 'mlx5_99'"));
    CHECK(nmb_bitmap_equal(&nmb_plan_rank(p, 5)->cpus, &before));
    ov.nic = "mlx5_0:2";
    CHECK_INT(nmb_plan_override_rank(p, t, 5, &ov), -EINVAL);
    CHECK(strstr(nmb_last_error(), "mlx5_0 has no port 2"));

    ov.nic = "mlx5_3";
    CHECK_INT(nmb_bitmap_parse_list(&mems, "0-1"), 0);
    ov.mems = &mems; /* preferred takes one node */
    CHECK_INT(nmb_plan_override_rank(p, t, 5, &ov), -EINVAL);
    CHECK(strstr(nmb_last_error(), "preferred memory policy takes one node, not 0-1"));
    ov.mem_policy = NMB_MEM_INTERLEAVE;
    CHECK_INT(nmb_plan_override_rank(p, t, 5, &ov), 0);
    const nmb_rank_plan_t *r = nmb_plan_rank(p, 5);
    nmb_bitmap_format_list(&r->cpus, buf, sizeof buf);
    CHECK_STR(buf, "0-3");
    CHECK_INT(r->mem_policy, NMB_MEM_INTERLEAVE);
    CHECK_STR(r->nic, "mlx5_3");
    CHECK_INT(r->nic_port, 1);
    CHECK_INT(r->distance, NMB_DIST_SYS); /* GPU 5 is on node 1, mlx5_3 on node 0 */
    CHECK_INT(r->num_hcas, 1);
    CHECK_STR(r->hcas[0], "mlx5_3:1");
    CHECK_STR(r->env[0].value, "mlx5_3:1");
    CHECK_INT(r->env[0].kept, 0);
    CHECK_STR(r->env[2].name, "NCCL_IB_HCA");
    CHECK_STR(r->env[2].value, "=mlx5_0:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_9:1,mlx5_10:1,mlx5_11:1");
    CHECK(strstr(r->note, "CPUs 0-3 given; memory interleave 0-1 given; NIC mlx5_3:1 given"));
    /* Other ranks are as planned. */
    CHECK_STR(nmb_plan_rank(p, 4)->nic, "mlx5_6");
    CHECK_INT(nmb_plan_override_rank(p, t, 8, &ov), -EINVAL);
    CHECK(strstr(nmb_last_error(), "local rank 8 is outside the 8 local ranks planned"));
    unsetenv("NVSHMEM_HCA_LIST");
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
    test_container_plan();
    test_no_gpu_plan();
    test_override();
    test_rank_from_env();
    test_launcher_precedence();
    test_slurm_size();
    test_rank_below_size();
    test_apply_live();
    TEST_DONE();
}
