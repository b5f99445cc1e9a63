/* The error model: negative errno values plus a thread-local detail. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_error[1024];
static _Thread_local const char *last_error_variable;

__attribute__((format(printf, 3, 0))) static int vfail(const char *variable, int err, const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    last_error_variable = variable;
    return err;
}

int nmb__fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err = vfail(NULL, err, fmt, ap);
    va_end(ap);
    return err;
}

int nmb__fail_env(const char *variable, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err = vfail(variable, err, fmt, ap);
    va_end(ap);
    return err;
}

void nmb__clear_error(void)
{
    last_error[0] = '\0';
    last_error_variable = NULL;
}

const char *nmb_last_error(void)
{
    return last_error;
}

const char *nmb_last_error_variable(void)
{
    return last_error_variable;
}

const char *nmb_strerror(int err)
{
    if (err < 0)
        err = -err;
    switch (err) {
    case 0: return "success";
    case EINVAL: return "invalid argument";
    case ENOENT: return "no such file, device or entry";
    case ENOTDIR: return "not a directory";
    case ENAMETOOLONG: return "path too long";
    case EAGAIN: return "try again";
    case ENOMEM: return "out of memory";
    case EPERM: return "operation not permitted";
    case EACCES: return "permission denied";
    case EIO: return "input/output error";
    case ERANGE: return "value out of range";
    case ELOOP: return "too many levels of symbolic links";
    case ENODEV: return "no such device";
    case ENOSYS: return "not supported by this kernel";
    case ESRCH: return "no such thread";
    case EBUSY: return "busy";
    case EXDEV: return "placement does not hold on this machine";
    default: return strerror(err); /* glibc's table: static strings for every errno */
    }
}
