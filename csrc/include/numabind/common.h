/* numabind: export macro, error model, version getters.
 *
 * Error model (every function of the C API):
 *   - Functions that can fail return 0 (or a count) on success and a negative
 *     errno value on failure (-EINVAL, -ENOENT, ...). They never print and
 *     never exit.
 *   - nmb_strerror(err) names the error; nmb_last_error() returns a
 *     thread-local sentence that says which value or file was at fault, for
 *     the last failing call made on the calling thread.
 *   - Accessors that return a pointer return NULL for a NULL handle or an
 *     index out of range.
 */
#ifndef NUMABIND_COMMON_H
#define NUMABIND_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "numabind/version.h"

#if defined(NMB_BUILDING_LIBRARY)
#define NMB_EXPORT __attribute__((visibility("default")))
#else
#define NMB_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version as NMB_VERSION encodes it; compare with NMB_VERSION
 * to detect a header/library mismatch. */
NMB_EXPORT unsigned nmb_version(void);
/* The library's version as "MAJOR.MINOR.PATCH". Static storage. */
NMB_EXPORT const char *nmb_version_string(void);

/* A short description of a (negative or positive) errno value. Static storage,
 * thread-safe. */
NMB_EXPORT const char *nmb_strerror(int err);

/* The detail of the last error on the calling thread ("" when none): names
 * the offending value, file or call. Valid until the thread's next numabind
 * call. */
NMB_EXPORT const char *nmb_last_error(void);

/* The environment variable whose value the calling thread's last error was
 * about ("CUDA_VISIBLE_DEVICES", "LOCAL_RANK", "SLURM_TASKS_PER_NODE", ...),
 * or NULL when it was about something else: lets a caller tell a bad
 * environment from a bad machine without reading the detail's words.
 * Static storage; set and cleared with nmb_last_error(). */
NMB_EXPORT const char *nmb_last_error_variable(void);

#ifdef __cplusplus
}
#endif

#endif /* NUMABIND_COMMON_H */
