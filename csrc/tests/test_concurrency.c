/* The thread-safety contract of numabind.h, checked on the real kernel:
 *   - nmb_topology_create and nmb_plan_create from 8 threads at once give
 *     the same topology and plan as one thread alone (a fixture tree and
 *     this host);
 *   - a topology is read from 8 threads at once while none changes it;
 *   - nmb_plan_apply while 200 threads are being started ends with every
 *     thread of the process on the rank's CPUs;
 *   - a child forked from a process holding a topology and a plan can plan
 *     and pin on its own, and the parent stays as it was.
 * tools/ci/stage-fuzz.sh also runs it under ThreadSanitizer.
 *
 *   test_concurrency TREES_DIR */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "common.h"
#include "internal.h"

static char dgx[4096], two_gpu[4096]; /* two GPUs on CPUs 0-1: this machine's plan */

/* Everything a topology and its default plan say, as text. */
static char *describe(const char *root)
{
    size_t cap = 1 << 20, used = 0;
    char *out = malloc(cap), list[40000];
    nmb_topology_t *t;
    nmb_plan_t *p;
#define PUT(...) (used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, __VA_ARGS__))
    if (nmb_topology_create(&t, root, 0) < 0) {
        PUT("error %s", nmb_last_error());
        return out;
    }
    for (int i = 0; i < nmb_topology_num_nodes(t); i++) {
        const nmb_node_t *n = nmb_topology_node(t, i);
        nmb_bitmap_format_list(&n->cpus, list, sizeof list);
        PUT("node %d %s %llu\n", n->id, list, (unsigned long long)n->mem_total_bytes);
    }
    for (int i = 0; i < nmb_topology_num_cpus(t); i++) {
        const nmb_cpu_t *c = nmb_topology_cpu(t, i);
        PUT("cpu %d %d %d %d %d\n", c->id, c->node, c->package, c->core, c->l3);
    }
    nmb_bitmap_format_list(nmb_topology_allowed_cpus(t), list, sizeof list);
    PUT("allowed %s\n", list);
    for (int i = 0; i < nmb_topology_num_pci(t); i++)
        PUT("pci %s %d %d\n", nmb_topology_pci(t, i)->address, nmb_topology_pci(t, i)->parent,
            nmb_topology_pci(t, i)->numa_node);
    for (int g = 0; g < nmb_topology_num_gpus(t); g++)
        for (int n = 0; n < nmb_topology_num_nics(t); n++)
            PUT("dist %d %d %d\n", g, n, nmb_topology_distance(t, g, n));
    if (nmb_plan_create(&p, t, NULL) == 0) {
        for (int r = 0; r < nmb_plan_num_ranks(p); r++) {
            const nmb_rank_plan_t *rp = nmb_plan_rank(p, r);
            nmb_bitmap_format_list(&rp->cpus, list, sizeof list);
            PUT("rank %d %s %s %d\n", r, list, rp->nic ? rp->nic : "-", rp->numa_node);
        }
        nmb_plan_destroy(p);
    } else {
        PUT("plan error %s\n", nmb_last_error());
    }
    nmb_topology_destroy(t);
    return out;
#undef PUT
}

static char *want_dgx, *want_live;
static pthread_barrier_t barrier;
static int mismatches;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *reader(void *arg)
{
    long id = (long)arg;
    pthread_barrier_wait(&barrier);
    for (int k = 0; k < 6; k++) {
        int live = (int)((id + k) % 2);
        char *got = describe(live ? NULL : dgx);
        if (strcmp(got, live ? want_live : want_dgx) != 0) {
            pthread_mutex_lock(&lock);
            mismatches++;
            pthread_mutex_unlock(&lock);
        }
        free(got);
    }
    return NULL;
}

static void test_eight_threads(void)
{
    pthread_t th[8];
    want_dgx = describe(dgx);
    want_live = describe(NULL);
    CHECK(strstr(want_dgx, "rank 7 ") != NULL);
    pthread_barrier_init(&barrier, NULL, 8);
    for (long i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, reader, (void *)i);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    CHECK_INT(mismatches, 0);
}

/* One topology, read from 8 threads at once. */
static nmb_topology_t *shared;
static void *accessor(void *arg)
{
    (void)arg;
    long sum = 0;
    for (int k = 0; k < 200; k++)
        for (int g = 0; g < nmb_topology_num_gpus(shared); g++) {
            sum += nmb_topology_gpu(shared, g)->numa_node;
            for (int n = 0; n < nmb_topology_num_nics(shared); n++)
                sum += nmb_topology_distance(shared, g, n);
            sum += nmb_topology_pci_index(shared, nmb_topology_gpu(shared, g)->address);
        }
    return (void *)sum;
}

static void test_shared_topology(void)
{
    pthread_t th[8];
    void *sums[8];
    CHECK_INT(nmb_topology_create(&shared, dgx, 0), 0);
    for (long i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, accessor, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], &sums[i]);
    for (int i = 1; i < 8; i++)
        CHECK(sums[i] == sums[0]);
    nmb_topology_destroy(shared);
}

/* ---- applying while threads start ---- */

static atomic_int release;
static void *parked(void *arg)
{
    (void)arg;
    while (!release)
        usleep(200);
    return NULL;
}

static atomic_int spawned;
static pthread_t kids[200];
static void *spawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        pthread_create(&kids[i], NULL, parked, NULL);
        spawned = i + 1;
    }
    return NULL;
}

static void test_apply_while_threads_start(void)
{
    nmb_topology_t *t;
    nmb_plan_t *p;
    nmb_plan_options_t o;
    nmb_bitmap_t before;
    nmb_bitmap_zero(&before);
    sched_getaffinity(0, sizeof before, (cpu_set_t *)&before);
    CHECK_INT(nmb_topology_create(&t, two_gpu, 0), 0);
    nmb_plan_options_init(&o);
    o.local_world_size = 2;
    CHECK_INT(nmb_plan_create(&p, t, &o), 0);
    int during = 0;
    for (int round = 0; round < 4; round++) {
        pthread_t s;
        release = 0;
        spawned = 0;
        pthread_create(&s, NULL, spawner, NULL);
        while (spawned < 5)
            usleep(50);
        int at_call = spawned;
        int err = nmb_plan_apply(p, round % 2, 0, NULL);
        during += spawned > at_call;
        pthread_join(s, NULL);
        int n = 0;
        CHECK_INT(err, 0);
        if (!all_threads_on(&nmb_plan_rank(p, round % 2)->cpus, &n))
            fprintf(stderr, "round %d: a thread of %d is off the rank's CPUs\n", round, n), nmb_test_failures++;
        CHECK(n >= 201);
        release = 1;
        for (int i = 0; i < 200; i++)
            pthread_join(kids[i], NULL);
    }
    if (!during)
        fprintf(stderr, "note: no thread started while nmb_plan_apply ran\n");
    sched_setaffinity(0, sizeof before, (cpu_set_t *)&before);
    nmb_plan_destroy(p);
    nmb_topology_destroy(t);
}

/* ---- fork ---- */

static void test_fork(void)
{
    nmb_topology_t *t;
    nmb_plan_t *p;
    nmb_plan_options_t o;
    nmb_bitmap_t before, after;
    nmb_bitmap_zero(&before);
    nmb_bitmap_zero(&after);
    sched_getaffinity(0, sizeof before, (cpu_set_t *)&before);
    CHECK_INT(nmb_topology_create(&t, two_gpu, 0), 0);
    nmb_plan_options_init(&o);
    o.local_world_size = 2;
    CHECK_INT(nmb_plan_create(&p, t, &o), 0);
    pthread_t th;
    release = 0;
    pthread_create(&th, NULL, parked, NULL); /* the parent has a second thread; the child will not */
    pid_t pid = fork();
    if (pid == 0) {
        /* The inherited handles, and new ones made here. */
        nmb_plan_t *mine;
        int ok = nmb_plan_create(&mine, t, &o) == 0 && nmb_plan_apply(p, 1, 0, NULL) == 0;
        int n = 0;
        ok = ok && all_threads_on(&nmb_plan_rank(mine, 1)->cpus, &n) && n == 1;
        nmb_plan_destroy(mine);
        nmb_plan_destroy(p);
        nmb_topology_destroy(t);
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sched_getaffinity(0, sizeof after, (cpu_set_t *)&after);
    CHECK(nmb_bitmap_equal(&before, &after));
    nmb_bitmap_zero(&after);
    pthread_getaffinity_np(th, sizeof after, (cpu_set_t *)&after); /* the parked thread too */
    CHECK(nmb_bitmap_equal(&before, &after));
    release = 1;
    pthread_join(th, NULL);
    nmb_plan_destroy(p);
    nmb_topology_destroy(t);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    snprintf(dgx, sizeof dgx, "%s/dgx-h100", argv[1]);
    snprintf(two_gpu, sizeof two_gpu, "%s/plain-2cpu-2gpu", argv[1]);
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("NUMABIND_FSROOT");
    unsetenv("LOCAL_WORLD_SIZE");
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        fprintf(stderr, "test_concurrency needs 2 CPUs\n");
        return 1;
    }
    test_eight_threads();
    test_shared_topology();
    test_apply_while_threads_start();
    test_fork();
    free(want_dgx);
    free(want_live);
    TEST_DONE();
}
