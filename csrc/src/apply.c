/* Applying one rank's plan to the calling process, all or nothing: every
 * thread's CPU affinity, the memory policy, optional page migration and the
 * NIC variables. Whatever was changed before a failure is put back. */
#include <dirent.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* nmb_bitmap_t is laid out as the kernel's cpumask / nodemask: an array of
 * native-endian 64-bit words, lowest CPU in bit 0 of word 0. */
#define MASK_BYTES sizeof(nmb_bitmap_t)
#define MAX_NODE_BITS (MASK_BYTES * 8)

#ifndef MPOL_LOCAL
#define MPOL_LOCAL 4
#endif

nmb_sys_t nmb__sys = {
    .setaffinity = sched_setaffinity,
    .getaffinity = sched_getaffinity,
    .set_mempolicy = set_mempolicy,
    .get_mempolicy = get_mempolicy,
};

typedef struct saved_thread {
    pid_t tid;
    nmb_bitmap_t mask;
} saved_thread_t;

typedef struct undo {
    saved_thread_t *threads;
    int count, cap;
    int mem_saved;
    int mem_mode;
    nmb_bitmap_t mem_mask;
} undo_t;

static int remember(undo_t *u, pid_t tid, const nmb_bitmap_t *mask)
{
    if (u->count == u->cap) {
        int cap = u->cap ? u->cap * 2 : 64;
        saved_thread_t *grown = realloc(u->threads, (size_t)cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        u->threads = grown;
        u->cap = cap;
    }
    u->threads[u->count].tid = tid;
    u->threads[u->count].mask = *mask;
    u->count++;
    return 0;
}

static int touched(const undo_t *u, pid_t tid)
{
    for (int i = 0; i < u->count; i++)
        if (u->threads[i].tid == tid)
            return 1;
    return 0;
}

static int list_tasks(pid_t **out);

static void rollback(undo_t *u, const nmb_bitmap_t *target)
{
    /* Restore in reverse; a thread that exited meanwhile (ESRCH) needs nothing. */
    for (int i = u->count - 1; i >= 0; i--)
        nmb__sys.setaffinity(u->threads[i].tid, MASK_BYTES, (cpu_set_t *)&u->threads[i].mask);
    /* Threads born from a re-bound thread during the call were never
     * recorded (they already matched): give them the mask their creator had,
     * the calling thread's when it was recorded, else the first recorded. */
    pid_t *tids, self = (pid_t)syscall(SYS_gettid);
    int n = target && u->count ? list_tasks(&tids) : 0;
    const nmb_bitmap_t *parent_mask = u->count ? &u->threads[0].mask : NULL;
    for (int i = 0; i < u->count; i++)
        if (u->threads[i].tid == self)
            parent_mask = &u->threads[i].mask;
    for (int i = 0; i < n; i++) {
        nmb_bitmap_t now;
        nmb_bitmap_zero(&now);
        if (touched(u, tids[i]) || nmb__sys.getaffinity(tids[i], MASK_BYTES, (cpu_set_t *)&now) < 0)
            continue;
        if (nmb_bitmap_equal(&now, target))
            nmb__sys.setaffinity(tids[i], MASK_BYTES, (const cpu_set_t *)parent_mask);
    }
    if (n > 0)
        free(tids);
    if (u->mem_saved)
        nmb__sys.set_mempolicy(u->mem_mode, u->mem_mode == MPOL_DEFAULT ? NULL : (unsigned long *)u->mem_mask.words,
                               u->mem_mode == MPOL_DEFAULT ? 0 : MAX_NODE_BITS);
}

/* The thread ids of this process now. */
static int list_tasks(pid_t **out)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0, cap = 64;
    pid_t *tids = malloc((size_t)cap * sizeof *tids);
    if (!d || !tids) {
        int err = d ? -ENOMEM : -errno;
        if (d)
            closedir(d);
        free(tids);
        return err;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        if (n == cap) {
            pid_t *grown = realloc(tids, (size_t)(cap *= 2) * sizeof *tids);
            if (!grown) {
                closedir(d);
                free(tids);
                return -ENOMEM;
            }
            tids = grown;
        }
        tids[n++] = (pid_t)atoi(de->d_name);
    }
    closedir(d);
    *out = tids;
    return n;
}

/* For the C tests: the same listing apply uses. */
int nmb__test_list_tasks(pid_t **out);
int nmb__test_list_tasks(pid_t **out)
{
    return list_tasks(out);
}

/* Binds every thread to `cpus`, re-scanning until a pass finds none left
 * to bind. A thread started by an already-bound thread inherits the mask, so
 * passes end quickly; the bound keeps a thread factory from holding us. */
static int bind_threads(undo_t *u, const nmb_bitmap_t *cpus, nmb_apply_report_t *rep)
{
    char a[256];
    for (int pass = 1; pass <= 16; pass++) {
        pid_t *tids;
        int n = list_tasks(&tids), changed = 0;
        if (n < 0)
            return nmb__fail(n, "cannot list /proc/self/task");
        rep->scans = pass;
        for (int i = 0; i < n; i++) {
            nmb_bitmap_t old;
            nmb_bitmap_zero(&old);
            if (nmb__sys.getaffinity(tids[i], MASK_BYTES, (cpu_set_t *)&old) < 0) {
                if (errno == ESRCH)
                    continue; /* exited */
                int err = -errno, tid = (int)tids[i];
                free(tids);
                return nmb__fail(err, "sched_getaffinity(thread %d) failed", tid);
            }
            /* Every thread of the first pass is recorded, even one already
             * on the CPUs, so rollback can tell them from threads born
             * during the call. */
            int same = nmb_bitmap_equal(&old, cpus);
            if ((pass == 1 || !same) && !touched(u, tids[i]) && remember(u, tids[i], &old) < 0) {
                free(tids);
                return -ENOMEM;
            }
            if (same)
                continue;
            if (nmb__sys.setaffinity(tids[i], MASK_BYTES, (const cpu_set_t *)cpus) < 0) {
                if (errno == ESRCH)
                    continue;
                int err = -errno, tid = (int)tids[i];
                free(tids);
                nmb_bitmap_format_list(cpus, a, sizeof a);
                return nmb__fail(err, "sched_setaffinity(thread %d, CPUs %s) failed: %s", tid, a,
                                 strerror(-err));
            }
            changed++;
        }
        /* Read back: the kernel silently drops offline CPUs from a mask. */
        for (int i = 0; i < n; i++) {
            nmb_bitmap_t now;
            nmb_bitmap_zero(&now);
            if (nmb__sys.getaffinity(tids[i], MASK_BYTES, (cpu_set_t *)&now) < 0)
                continue;
            if (!nmb_bitmap_equal(&now, cpus)) {
                char b[256];
                nmb_bitmap_format_list(cpus, a, sizeof a);
                nmb_bitmap_format_list(&now, b, sizeof b);
                int tid = (int)tids[i];
                free(tids);
                return nmb__fail(-EIO, "thread %d runs on CPUs %s after binding it to %s (CPUs missing "
                                       "or offline on this machine?)", tid, b, a);
            }
        }
        free(tids);
        rep->threads += changed;
        if (!changed)
            return 0;
    }
    return nmb__fail(-EAGAIN, "threads kept appearing unbound after 16 passes over /proc/self/task");
}

/* Why the kernel may refuse a memory-policy call, for the error detail. */
static const char *refusal_hint(int err)
{
    if (err == EPERM)
        return " (a container seccomp profile may forbid it)";
    if (err == ENOSYS)
        return " (NUMA is unavailable: a kernel without NUMA support, or a seccomp filter hiding it; "
               "libnuma's numa_available() says -1 here)";
    return "";
}

static int set_memory(undo_t *u, const nmb_rank_plan_t *r, nmb_apply_report_t *rep)
{
    char a[256];
    int mode;
    switch (r->mem_policy) {
    case NMB_MEM_DEFAULT:
        return 0;
    case NMB_MEM_PREFERRED: mode = MPOL_PREFERRED; break;
    case NMB_MEM_BIND: mode = MPOL_BIND; break;
    case NMB_MEM_INTERLEAVE: mode = MPOL_INTERLEAVE; break;
    case NMB_MEM_LOCAL: mode = MPOL_LOCAL; break;
    default: return nmb__fail(-EINVAL, "unknown memory policy %d", r->mem_policy);
    }
    nmb_bitmap_zero(&u->mem_mask);
    if (nmb__sys.get_mempolicy(&u->mem_mode, (unsigned long *)u->mem_mask.words, MAX_NODE_BITS, NULL, 0) < 0)
        return nmb__fail(-errno, "get_mempolicy failed: %s%s", strerror(errno), refusal_hint(errno));
    u->mem_saved = 1;
    nmb_bitmap_t want = r->mems;
    if (mode == MPOL_PREFERRED) {
        /* One preferred node: the rank's. */
        nmb_bitmap_zero(&want);
        nmb_bitmap_set(&want, nmb_bitmap_next(&r->mems, 0));
    }
    int rc = mode == MPOL_LOCAL ? nmb__sys.set_mempolicy(mode, NULL, 0)
                                : nmb__sys.set_mempolicy(mode, (unsigned long *)want.words, MAX_NODE_BITS);
    nmb_bitmap_format_list(&want, a, sizeof a);
    if (rc < 0)
        return nmb__fail(-errno, "set_mempolicy(%s, nodes %s) failed: %s%s", nmb_mem_policy_name(r->mem_policy),
                         a, strerror(errno), refusal_hint(errno));
    int got;
    nmb_bitmap_t mask;
    nmb_bitmap_zero(&mask);
    if (nmb__sys.get_mempolicy(&got, (unsigned long *)mask.words, MAX_NODE_BITS, NULL, 0) < 0)
        return nmb__fail(-errno, "get_mempolicy failed after setting it: %s", strerror(errno));
    if (got != mode || (mode != MPOL_LOCAL && !nmb_bitmap_equal(&mask, &want)))
        return nmb__fail(-EIO, "memory policy reads back as mode %d, not %s on nodes %s", got,
                         nmb_mem_policy_name(r->mem_policy), a);
    rep->mem_policy_set = 1;
    return 0;
}


int nmb_mempolicy_get(int *policy, nmb_bitmap_t *nodes)
{
    if (!policy || !nodes)
        return nmb__fail(-EINVAL, "nmb_mempolicy_get: policy or nodes is NULL");
    int mode;
    nmb_bitmap_zero(nodes);
    if (nmb__sys.get_mempolicy(&mode, (unsigned long *)nodes->words, MAX_NODE_BITS, NULL, 0) < 0)
        return nmb__fail(-errno, "get_mempolicy failed: %s", strerror(errno));
    switch (mode & 0xff) { /* the low byte: MPOL_F_* flags ride above it */
    case MPOL_DEFAULT: *policy = NMB_MEM_DEFAULT; break;
    case MPOL_PREFERRED:
        /* An empty preferred set is the kernel's older spelling of "local". */
        *policy = nmb_bitmap_iszero(nodes) ? NMB_MEM_LOCAL : NMB_MEM_PREFERRED;
        break;
    case MPOL_BIND: *policy = NMB_MEM_BIND; break;
    case MPOL_INTERLEAVE: *policy = NMB_MEM_INTERLEAVE; break;
    case MPOL_LOCAL: *policy = NMB_MEM_LOCAL; break;
    case 5: *policy = NMB_MEM_PREFERRED; break;  /* MPOL_PREFERRED_MANY, Linux 5.15 */
    case 6: *policy = NMB_MEM_INTERLEAVE; break; /* MPOL_WEIGHTED_INTERLEAVE, Linux 6.9 */
    default: return nmb__fail(-ERANGE, "get_mempolicy returned unknown mode %d", mode);
    }
    if (*policy == NMB_MEM_DEFAULT || *policy == NMB_MEM_LOCAL)
        nmb_bitmap_zero(nodes);
    return 0;
}

static int migrate_pages_to(const nmb_rank_plan_t *r, nmb_apply_report_t *rep)
{
    nmb_bitmap_t from, to = r->mems;
    nmb_bitmap_zero(&from);
    /* From every node the process may use that is not a target. */
    if (get_mempolicy(NULL, (unsigned long *)from.words, MAX_NODE_BITS, NULL, MPOL_F_MEMS_ALLOWED) < 0)
        return nmb__fail(-errno, "get_mempolicy(MPOL_F_MEMS_ALLOWED) failed: %s", strerror(errno));
    nmb_bitmap_andnot(&from, &from, &to);
    if (nmb_bitmap_iszero(&from) || nmb_bitmap_iszero(&to)) {
        rep->pages_migrated = 0;
        return 0;
    }
    long left = syscall(SYS_migrate_pages, 0, MAX_NODE_BITS, (unsigned long *)from.words, (unsigned long *)to.words);
    if (left < 0)
        return nmb__fail(-errno, "migrate_pages failed: %s", strerror(errno));
    rep->pages_migrated = left; /* pages that could not be moved */
    return 0;
}

/* Puts back the first `count` of the rank's variables as they were before
 * export_env: the user's value, or unset. */
static void unexport_env(const nmb_rank_plan_t *r, int count)
{
    for (int j = 0; j < count; j++) {
        if (r->env[j].kept)
            continue;
        if (r->env[j].user)
            setenv(r->env[j].name, r->env[j].user, 1);
        else
            unsetenv(r->env[j].name);
    }
}

/* Sets the rank's NIC variables that are not kept; on failure unsets those
 * it set. */
static int export_env(const nmb_rank_plan_t *r)
{
    for (int i = 0; i < r->num_env; i++) {
        if (r->env[i].kept)
            continue;
        if (setenv(r->env[i].name, r->env[i].value, 1) < 0) {
            int err = -errno;
            unexport_env(r, i);
            return nmb__fail(err, "setenv(%s) failed", r->env[i].name);
        }
    }
    return 0;
}

int nmb_plan_apply(const nmb_plan_t *plan, int local_rank, unsigned flags, nmb_apply_report_t *report)
{
    nmb_apply_report_t local;
    undo_t u;
    int err = 0;
    nmb__clear_error();
    const nmb_rank_plan_t *r = nmb_plan_rank(plan, local_rank);
    if (!r)
        return nmb__fail(-EINVAL, "local rank %d is not in the plan (%d ranks%s%s)", local_rank,
                         plan ? nmb_plan_num_ranks(plan) : 0, nmb_plan_note(plan) ? ": " : "",
                         nmb_plan_note(plan) ? nmb_plan_note(plan) : "");
    if (!report)
        report = &local;
    memset(report, 0, sizeof *report);
    report->pages_migrated = -1;
    memset(&u, 0, sizeof u);

    if (r->cpu_policy != NMB_CPU_NONE && (err = bind_threads(&u, &r->cpus, report)) < 0)
        goto fail;
    if ((err = set_memory(&u, r, report)) < 0)
        goto fail;
    if ((flags & NMB_APPLY_EXPORT_ENV) && (err = export_env(r)) < 0)
        goto fail;
    /* Last: moved pages cannot be moved back, so nothing may fail after. */
    if ((flags & NMB_APPLY_MIGRATE) && r->mem_policy != NMB_MEM_DEFAULT &&
        (err = migrate_pages_to(r, report)) < 0) {
        if (flags & NMB_APPLY_EXPORT_ENV)
            unexport_env(r, r->num_env);
        goto fail;
    }
    free(u.threads);
    return 0;
fail:
    rollback(&u, r->cpu_policy != NMB_CPU_NONE ? &r->cpus : NULL);
    free(u.threads);
    return err;
}
