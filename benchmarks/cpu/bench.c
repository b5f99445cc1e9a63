/* The C side of benchmarks/run_cpu.py: what numabind's C core costs, with no
 * Python in the way, next to hwloc's library doing the same job.
 *
 *   bench pin     [--fsroot DIR] [--rank R] [--apply]      one cold pin, phases in ns
 *   bench threads [--fsroot DIR] [--rank R] --threads N --reps K
 *                 warm apply with N threads alive; each rep starts from every
 *                 thread on every allowed CPU
 *   bench topo    [--fsroot DIR] --reps K                  topology load, numabind vs hwloc
 *   bench exec    [--fsroot DIR] [--rank R] -- CMD ARGS    pin, export, exec (a C numabind exec)
 *
 * pin, threads and exec read what a plan reads (NMB_TOPOLOGY_PLAN_ONLY, as
 * pin_rank does; --full reads everything); topo reads everything, as
 * hwloc does (--plan-only: what a plan reads).
 *
 * Prints one JSON object on stdout. Built by run_cpu.py with -DHAVE_HWLOC when
 * hwloc's headers are found; hwloc's rows are absent otherwise. A benchmark
 * harness, not part of the package.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <numabind/numabind.h>

#ifdef HAVE_HWLOC
#include <hwloc.h>
#endif

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "bench: %s: %s: %s\n", what, nmb_strerror(err), nmb_last_error());
    exit(1);
}

static const char *fsroot;
static int rank, reps = 20, nthreads = 1, do_apply, opt_full, opt_plan_only;

/* NMB_TOPOLOGY_PLAN_ONLY by value, so that the bench also builds against a
 * core from before it (which reads everything whatever the flag). pin,
 * threads and exec read as nmb's pin does, only what a plan reads, unless
 * --full; topo reads everything (hwloc's read is whole too) unless
 * --plan-only. */
#define PLAN_ONLY (1u << 5)
static unsigned read_flags;

static nmb_topology_t *load_topology(void)
{
    nmb_topology_t *t;
    int err = nmb_topology_create(&t, fsroot, read_flags);
    if (err < 0)
        die("nmb_topology_create", err);
    return t;
}

static nmb_plan_t *make_plan(nmb_topology_t *t)
{
    nmb_plan_options_t o;
    nmb_plan_options_init(&o);
    nmb_plan_t *p;
    int err = nmb_plan_create(&p, t, &o);
    if (err < 0)
        die("nmb_plan_create", err);
    if (!nmb_plan_rank(p, rank)) {
        fprintf(stderr, "bench: rank %d outside the %d planned\n", rank, nmb_plan_num_ranks(p));
        exit(1);
    }
    return p;
}

static void print_cpus(const char *key, const nmb_bitmap_t *set)
{
    char buf[1024];
    nmb_bitmap_format_list(set, buf, sizeof buf);
    printf("\"%s\": \"%s\"", key, buf);
}

/* One pin as a fresh process does it: read, plan, apply (or only plan). */
static int cmd_pin(void)
{
    int64_t t0 = now_ns();
    nmb_topology_t *t = load_topology();
    int64_t t1 = now_ns();
    nmb_plan_t *p = make_plan(t);
    int64_t t2 = now_ns();
    nmb_apply_report_t rep = {0};
    if (do_apply) {
        int err = nmb_plan_apply(p, rank, NMB_APPLY_EXPORT_ENV, &rep);
        if (err < 0)
            die("nmb_plan_apply", err);
    }
    int64_t t3 = now_ns();
    const nmb_rank_plan_t *r = nmb_plan_rank(p, rank);
    printf("{\"topology_ns\": %lld, \"plan_ns\": %lld, \"apply_ns\": %lld, \"total_ns\": %lld, "
           "\"applied\": %d, \"threads_bound\": %d, \"ranks\": %d, \"cpus_online\": %d, \"gpus\": %d, ",
           (long long)(t1 - t0), (long long)(t2 - t1), (long long)(t3 - t2), (long long)(t3 - t0), do_apply,
           rep.threads, nmb_plan_num_ranks(p), nmb_topology_num_cpus(t), nmb_topology_num_gpus(t));
    print_cpus("cpus", &r->cpus);
    printf(", \"numa_node\": %d, \"mem_policy\": \"%s\", \"nic\": \"%s\"}\n", r->numa_node,
           nmb_mem_policy_name(r->mem_policy), r->nic ? r->nic : "");
    nmb_plan_destroy(p);
    nmb_topology_destroy(t);
    return 0;
}

/* ---- threads ------------------------------------------------------------ */

static pthread_barrier_t quit;

static void *idle_thread(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&quit);
    return NULL;
}

/* Every thread back on `cpus` (untimed set-up between reps). */
static void spread(const cpu_set_t *cpus)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
            sched_setaffinity(atoi(de->d_name), sizeof *cpus, cpus);
    if (d)
        closedir(d);
}

/* What a hand-written "bind every thread" does: one pass, no read-back,
 * no memory policy. */
static void naive_bind_all(const cpu_set_t *cpus)
{
    spread(cpus);
}

static void print_list(const char *key, long long *v, int n)
{
    printf("\"%s\": [", key);
    for (int i = 0; i < n; i++)
        printf("%s%lld", i ? ", " : "", v[i]);
    printf("]");
}

static int cmd_threads(void)
{
    nmb_topology_t *t = load_topology();
    nmb_plan_t *p = make_plan(t);
    const nmb_rank_plan_t *r = nmb_plan_rank(p, rank);
    cpu_set_t all, target;
    sched_getaffinity(0, sizeof all, &all);
    CPU_ZERO(&target);
    for (int c = nmb_bitmap_next(&r->cpus, 0); c >= 0; c = nmb_bitmap_next(&r->cpus, c + 1))
        CPU_SET(c, &target);
    if (CPU_EQUAL(&all, &target)) {
        fprintf(stderr, "bench: rank %d's CPUs are every allowed CPU: nothing to bind\n", rank);
        return 1;
    }

    pthread_barrier_init(&quit, NULL, (unsigned)nthreads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    for (int i = 1; i < nthreads; i++)
        if (pthread_create(&th[i], &attr, idle_thread, NULL) != 0) {
            fprintf(stderr, "bench: cannot start thread %d\n", i);
            return 1;
        }

#ifdef HAVE_HWLOC
    hwloc_topology_t ht;
    hwloc_topology_init(&ht);
    hwloc_topology_load(ht);
    hwloc_bitmap_t hset = hwloc_bitmap_alloc();
    for (int c = nmb_bitmap_next(&r->cpus, 0); c >= 0; c = nmb_bitmap_next(&r->cpus, c + 1))
        hwloc_bitmap_set(hset, (unsigned)c);
#endif
    long long *nmb = calloc((size_t)reps, sizeof *nmb), *naive = calloc((size_t)reps, sizeof *naive),
              *hw = calloc((size_t)reps, sizeof *hw);
    int bound = 0, scans = 0;
    for (int i = 0; i < reps; i++) {
        /* Interleaved: each rep measures each way once, from the same start. */
        spread(&all);
        int64_t t0 = now_ns();
        nmb_apply_report_t rep = {0};
        int err = nmb_plan_apply(p, rank, 0, &rep);
        int64_t t1 = now_ns();
        if (err < 0)
            die("nmb_plan_apply", err);
        nmb[i] = t1 - t0;
        bound = rep.threads;
        scans = rep.scans;

        spread(&all);
        t0 = now_ns();
        naive_bind_all(&target);
        naive[i] = now_ns() - t0;
#ifdef HAVE_HWLOC
        spread(&all);
        t0 = now_ns();
        if (hwloc_set_cpubind(ht, hset, HWLOC_CPUBIND_PROCESS) < 0) {
            perror("hwloc_set_cpubind");
            return 1;
        }
        hw[i] = now_ns() - t0;
#endif
    }
    printf("{\"threads\": %d, \"threads_bound\": %d, \"scans\": %d, ", nthreads, bound, scans);
    print_cpus("cpus", &r->cpus);
    printf(", ");
    print_list("numabind_apply_ns", nmb, reps);
    printf(", ");
    print_list("naive_all_threads_ns", naive, reps);
#ifdef HAVE_HWLOC
    printf(", ");
    print_list("hwloc_set_cpubind_process_ns", hw, reps);
#endif
    printf("}\n");
    fflush(stdout);
    pthread_barrier_wait(&quit);
    for (int i = 1; i < nthreads; i++)
        pthread_join(th[i], NULL);
    return 0;
}

/* ---- topology load ------------------------------------------------------ */

#ifdef HAVE_HWLOC
/* hwloc's topology as lstopo loads it: `filter` for I/O objects (ALL is
 * lstopo --whole-io, IMPORTANT is plain lstopo), NONE: no I/O at all. */
static long long hwloc_load(enum hwloc_type_filter_e io)
{
    int64_t t0 = now_ns();
    hwloc_topology_t ht;
    hwloc_topology_init(&ht);
    hwloc_topology_set_io_types_filter(ht, io);
    if (hwloc_topology_load(ht) < 0) {
        perror("hwloc_topology_load");
        exit(1);
    }
    int64_t t1 = now_ns();
    hwloc_topology_destroy(ht);
    return t1 - t0;
}

static int hwloc_count(enum hwloc_type_filter_e io, hwloc_obj_type_t type)
{
    hwloc_topology_t ht;
    hwloc_topology_init(&ht);
    hwloc_topology_set_io_types_filter(ht, io);
    hwloc_topology_load(ht);
    int n = hwloc_get_nbobjs_by_type(ht, type);
    hwloc_topology_destroy(ht);
    return n;
}
#endif

static int cmd_topo(void)
{
#ifdef HAVE_HWLOC
    /* Headers from one hwloc, library from another: refuse (hwloc's own rule). */
    if ((hwloc_get_api_version() >> 16) != (HWLOC_API_VERSION >> 16)) {
        fprintf(stderr, "bench: hwloc headers 0x%x, library 0x%x\n", HWLOC_API_VERSION, hwloc_get_api_version());
        return 1;
    }
    if (fsroot)
        setenv("HWLOC_FSROOT", fsroot, 1);
#endif
    long long *nmb = calloc((size_t)reps, sizeof *nmb), *all = calloc((size_t)reps, sizeof *all),
              *imp = calloc((size_t)reps, sizeof *imp), *none = calloc((size_t)reps, sizeof *none);
    int gpus = 0, nics = 0, pci = 0;
    for (int i = 0; i < reps; i++) {
        int64_t t0 = now_ns();
        nmb_topology_t *t = load_topology();
        nmb[i] = now_ns() - t0;
        gpus = nmb_topology_num_gpus(t);
        nics = nmb_topology_num_nics(t);
        pci = nmb_topology_num_pci(t);
        nmb_topology_destroy(t);
#ifdef HAVE_HWLOC
        all[i] = hwloc_load(HWLOC_TYPE_FILTER_KEEP_ALL);
        imp[i] = hwloc_load(HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
        none[i] = hwloc_load(HWLOC_TYPE_FILTER_KEEP_NONE);
#endif
    }
    printf("{\"numabind_gpus\": %d, \"numabind_nics\": %d, \"numabind_pci\": %d, ", gpus, nics, pci);
    print_list("numabind_ns", nmb, reps);
#ifdef HAVE_HWLOC
    printf(", \"hwloc_pci_all\": %d, \"hwloc_osdev_all\": %d, ",
           hwloc_count(HWLOC_TYPE_FILTER_KEEP_ALL, HWLOC_OBJ_PCI_DEVICE),
           hwloc_count(HWLOC_TYPE_FILTER_KEEP_ALL, HWLOC_OBJ_OS_DEVICE));
    print_list("hwloc_io_all_ns", all, reps);
    printf(", ");
    print_list("hwloc_io_important_ns", imp, reps);
    printf(", ");
    print_list("hwloc_no_io_ns", none, reps);
    printf(", \"hwloc_api_version\": \"%u.%u.%u\"", hwloc_get_api_version() >> 16,
           (hwloc_get_api_version() >> 8) & 0xff, hwloc_get_api_version() & 0xff);
#endif
    printf("}\n");
    return 0;
}

/* ---- exec --------------------------------------------------------------- */

static int cmd_exec(char **argv)
{
    nmb_topology_t *t = load_topology();
    nmb_plan_t *p = make_plan(t);
    int err = nmb_plan_apply(p, rank, NMB_APPLY_EXPORT_ENV, NULL);
    if (err < 0)
        die("nmb_plan_apply", err);
    nmb_plan_destroy(p);
    nmb_topology_destroy(t);
    execvp(argv[0], argv);
    perror(argv[0]);
    return 127;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench pin|threads|topo|exec [--fsroot DIR] [--rank R] [--apply] "
                        "[--threads N] [--reps K] [--full | --plan-only] [-- CMD ARGS]\n");
        return 2;
    }
    const char *cmd = argv[1];
    int i = 2;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--fsroot") && i + 1 < argc)
            fsroot = argv[++i];
        else if (!strcmp(argv[i], "--rank") && i + 1 < argc)
            rank = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--full"))
            opt_full = 1;
        else if (!strcmp(argv[i], "--plan-only"))
            opt_plan_only = 1;
        else if (!strcmp(argv[i], "--apply"))
            do_apply = 1;
        else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else {
            fprintf(stderr, "bench: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (nthreads < 1 || reps < 1)
        return 2;
    if (!strcmp(cmd, "topo"))
        read_flags = opt_plan_only ? PLAN_ONLY : 0;
    else
        read_flags = opt_full ? 0 : PLAN_ONLY;
    if (!strcmp(cmd, "pin"))
        return cmd_pin();
    if (!strcmp(cmd, "threads"))
        return cmd_threads();
    if (!strcmp(cmd, "topo"))
        return cmd_topo();
    if (!strcmp(cmd, "exec") && i < argc)
        return cmd_exec(argv + i);
    fprintf(stderr, "bench: unknown command %s\n", cmd);
    return 2;
}
