/* numabind: put every rank of a multi-GPU job on the CPU cores, memory and
 * RDMA NIC closest to its GPU. The umbrella header: include this one.
 *
 * Thread safety: a topology is immutable once created and may be read from
 * any number of threads at once; create and destroy are reentrant (each call
 * works on its own handle). nmb_last_error() is per thread.
 */
#ifndef NUMABIND_H
#define NUMABIND_H

#include "numabind/version.h"
#include "numabind/common.h"
#include "numabind/bitmap.h"
#include "numabind/topology.h"
#include "numabind/plan.h"

#endif /* NUMABIND_H */
