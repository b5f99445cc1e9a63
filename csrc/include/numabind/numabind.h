/* numabind: put every rank of a multi-GPU job on the CPU cores, memory and
 * RDMA NIC closest to its GPU. The umbrella header: include this one.
 *
 * Thread safety: a topology is immutable once created and may be read from
 * any number of threads at once; create and destroy are reentrant (each call
 * works on its own handle). nmb_last_error() is per thread.
 *   - A plan is immutable too and keeps nothing of its topology: the two may
 *     be destroyed in either order; never destroy a handle another thread is
 *     reading.
 *   - nmb_topology_create, nmb_plan_create and the *_from_env functions read
 *     the environment (getenv): no thread may setenv/unsetenv/putenv while
 *     they run.
 *   - nmb_plan_apply changes the whole process (every thread's affinity, the
 *     calling thread's memory policy, with NMB_APPLY_EXPORT_ENV the
 *     environment): one call at a time, with nothing else changing those.
 *     Threads started during the call are bound too.
 *   - Bitmap functions, nmb_strerror and the name functions are pure.
 *   - After fork() the child may use inherited handles and apply a plan to
 *     itself alone. Nothing here is async-signal-safe.
 * docs/c-api.md has the table, function by function.
 */
#ifndef NUMABIND_H
#define NUMABIND_H

#include "numabind/version.h"
#include "numabind/common.h"
#include "numabind/bitmap.h"
#include "numabind/topology.h"
#include "numabind/plan.h"

#endif /* NUMABIND_H */
