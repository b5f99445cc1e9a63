/* Helpers shared by the C tests that apply plans on this machine's kernel
 * (test_plan, test_concurrency). */
#ifndef NMB_TEST_COMMON_H
#define NMB_TEST_COMMON_H
#include <sched.h>
#include <stdlib.h>
#include <sys/types.h>

#include "internal.h"

/* apply.c's list of this process's threads (for the tests only) */
int nmb__test_list_tasks(pid_t **out);

/* Whether every thread of this process is bound to exactly WANT (and there
 * is at least one); the number of threads in *COUNT when COUNT is given. */
static inline int all_threads_on(const nmb_bitmap_t *want, int *count)
{
    pid_t *tids;
    int n = nmb__test_list_tasks(&tids), ok = n > 0;
    for (int i = 0; i < n; i++) {
        nmb_bitmap_t m;
        nmb_bitmap_zero(&m);
        sched_getaffinity(tids[i], sizeof m, (cpu_set_t *)&m);
        ok &= nmb_bitmap_equal(&m, want);
    }
    free(tids);
    if (count)
        *count = n;
    return ok;
}
#endif
