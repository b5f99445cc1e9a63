/* Every file the core reads goes through here, below one root: "/" on the
 * live host, a fixture or gathered tree under NUMABIND_FSROOT. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int nmb__fs_init(nmb_fs_t *fs, const char *fsroot, int record)
{
    memset(fs, 0, sizeof *fs);
    fs->record = record;
    if (!fsroot || !*fsroot || strcmp(fsroot, "/") == 0)
        return 0;
    if (!realpath(fsroot, fs->root))
        return nmb__fail(-errno, "NUMABIND_FSROOT %s: %s", fsroot, strerror(errno));
    struct stat st;
    if (stat(fs->root, &st) < 0 || !S_ISDIR(st.st_mode))
        return nmb__fail(-ENOTDIR, "NUMABIND_FSROOT %s is not a directory", fsroot);
    if (strcmp(fs->root, "/") == 0)
        fs->root[0] = '\0';
    fs->root_len = strlen(fs->root);
    return 0;
}

void nmb__fs_free(nmb_fs_t *fs)
{
    for (int i = 0; i < fs->num_files; i++)
        free(fs->files[i]);
    free(fs->files);
    fs->files = NULL;
    fs->num_files = fs->cap_files = 0;
}

int nmb__fs_live(const nmb_fs_t *fs)
{
    return fs->root_len == 0;
}

static void record(nmb_fs_t *fs, const char *path)
{
    if (!fs->record)
        return;
    if (fs->num_files == fs->cap_files) {
        int cap = fs->cap_files ? fs->cap_files * 2 : 256;
        char **files = realloc(fs->files, (size_t)cap * sizeof *files);
        if (!files)
            return; /* a capture missing a path is caught by the replay test */
        fs->files = files;
        fs->cap_files = cap;
    }
    char *copy = strdup(path);
    if (copy)
        fs->files[fs->num_files++] = copy;
}

/* root + path into out; -ENAMETOOLONG when it does not fit. */
static int full_path(const nmb_fs_t *fs, const char *path, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s", fs->root, path);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* Remembers which file failed, so an error nobody described can still be
 * named (see nmb__fs_describe). Returns err. */
static _Thread_local struct {
    int err;
    char path[PATH_MAX];
} last_failure;

static int failed(int err, const char *path)
{
    last_failure.err = err;
    snprintf(last_failure.path, sizeof last_failure.path, "%s", path);
    return err;
}

void nmb__fs_describe(const nmb_fs_t *fs, int err)
{
    if (nmb_last_error()[0] || err != last_failure.err || !last_failure.path[0])
        return;
    if (err == -EOVERFLOW)
        nmb__fail(err, "%s%s: longer than any value the kernel writes there", fs->root, last_failure.path);
    else
        nmb__fail(err, "%s%s: %s", fs->root, last_failure.path, strerror(-err));
}

/* What a non-regular file is, for a person reading the error. */
static const char *kind_of(mode_t mode)
{
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    return "not a regular file";
}

/* Refuses anything but a regular file: a FIFO would block a read forever, a
 * device's open can act (a watchdog starts counting), a socket cannot be
 * opened at all. -EISDIR for a directory, -EINVAL for the rest; the detail
 * names the file and what it is. */
static int refuse_irregular(const nmb_fs_t *fs, const char *path, mode_t mode)
{
    if (S_ISREG(mode))
        return 0;
    int err = S_ISDIR(mode) ? -EISDIR : -EINVAL;
    failed(err, path);
    return nmb__fail(err, "%s%s is %s, not a file", fs->root, path, kind_of(mode));
}

int nmb__fs_read(nmb_fs_t *fs, const char *path, char *buf, size_t len)
{
    char full[PATH_MAX];
    int fd, err;
    size_t used = 0;
    record(fs, path);
    if ((err = full_path(fs, path, full, sizeof full)) < 0)
        return failed(err, path);
    /* Opened non-blocking, so a FIFO's open returns at once instead of
     * waiting for a writer (O_NONBLOCK changes nothing for a regular file).
     * Under a root (a capture, anyone's tree) the open file is then looked
     * at, and anything but a regular file is refused before a byte is read:
     * an fstat, which walks no path, where a stat before the open would walk
     * each of a read's ~1000 paths twice. The live host's sysfs and procfs
     * hold no FIFO, socket or device: there nothing more is asked. */
    fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        err = -errno;
        struct stat st; /* a socket cannot be opened (ENXIO): say what stands there */
        if (!nmb__fs_live(fs) && stat(full, &st) == 0 && !S_ISREG(st.st_mode))
            return refuse_irregular(fs, path, st.st_mode);
        return failed(err, path);
    }
    if (!nmb__fs_live(fs)) {
        struct stat st;
        if (fstat(fd, &st) < 0 || (err = refuse_irregular(fs, path, st.st_mode)) < 0) {
            err = err < 0 ? err : -errno;
            close(fd);
            return failed(err, path);
        }
    }
    for (;;) {
        /* One byte more than fits: a file that fills the buffer is read
         * once more, so that a longer one is refused, never cut short (a
         * cut CPU list "...,40" of "...,4094" still parses). */
        char extra;
        char *at = used + 1 < len ? buf + used : &extra;
        size_t room = used + 1 < len ? len - 1 - used : 1;
        ssize_t n = read(fd, at, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = -errno;
            close(fd);
            return failed(err, path);
        }
        if (n == 0)
            break;
        if (at == &extra) {
            close(fd);
            buf[used] = '\0';
            return failed(-EOVERFLOW, path);
        }
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    return (int)used;
}

char *nmb__rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int nmb__fs_read_long(nmb_fs_t *fs, const char *path, long *out)
{
    char buf[64], *end;
    int n = nmb__fs_read(fs, path, buf, sizeof buf);
    if (n < 0)
        return n;
    nmb__rstrip(buf);
    errno = 0;
    long v = strtol(buf, &end, 0);
    if (!buf[0] || *end || errno)
        return nmb__fail(-EINVAL, "%s: '%s' is not a number", path, buf);
    *out = v;
    return 0;
}

int nmb__fs_read_hex(nmb_fs_t *fs, const char *path, unsigned long *out)
{
    char buf[64], *end;
    int n = nmb__fs_read(fs, path, buf, sizeof buf);
    if (n < 0)
        return n;
    nmb__rstrip(buf);
    errno = 0;
    unsigned long v = strtoul(buf, &end, 16);
    if (!buf[0] || *end || errno || buf[0] == '-')
        return nmb__fail(-EINVAL, "%s: '%s' is not a hex number", path, buf);
    *out = v;
    return 0;
}

/* A CPU/node set in either of the kernel's forms: `parse` is
 * nmb_bitmap_parse_list or nmb_bitmap_parse_mask, `what` names the form. */
static int read_set(nmb_fs_t *fs, const char *path, nmb_bitmap_t *out,
                    int (*parse)(nmb_bitmap_t *, const char *), const char *what)
{
    /* The longest list of 8192 bits ("0-1,3-4,6-7,...") is under 28 KiB, a
     * mask under 2.5 KiB; node cpulists are binary attributes, not capped at
     * a page, since 5.x. */
    char *buf = malloc(NMB_LIST_MAX);
    if (!buf)
        return -ENOMEM;
    int n = nmb__fs_read(fs, path, buf, NMB_LIST_MAX);
    if (n < 0) {
        free(buf);
        nmb_bitmap_zero(out);
        return n;
    }
    int err = parse(out, buf);
    if (err < 0)
        nmb__fail(err, "%s: '%.64s' is not a %s", path, nmb__rstrip(buf), what);
    free(buf);
    return err < 0 ? err : 0;
}

int nmb__fs_read_list(nmb_fs_t *fs, const char *path, nmb_bitmap_t *out)
{
    return read_set(fs, path, out, nmb_bitmap_parse_list, "CPU/node list");
}

int nmb__fs_read_mask(nmb_fs_t *fs, const char *path, nmb_bitmap_t *out)
{
    return read_set(fs, path, out, nmb_bitmap_parse_mask, "CPU mask");
}

int nmb__fs_read_list_or_mask(nmb_fs_t *fs, char *path, size_t len, const char *mask, nmb_bitmap_t *out)
{
    int err = nmb__fs_read_list(fs, path, out);
    char *slash = strrchr(path, '/');
    if (err != -ENOENT || !slash)
        return err;
    size_t dir = (size_t)(slash + 1 - path);
    if (dir + strlen(mask) >= len)
        return -ENAMETOOLONG;
    strcpy(path + dir, mask);
    return nmb__fs_read_mask(fs, path, out);
}

int nmb__fs_realpath(nmb_fs_t *fs, const char *path, char *out, size_t len)
{
    char full[PATH_MAX], resolved[PATH_MAX];
    int err;
    record(fs, path);
    if ((err = full_path(fs, path, full, sizeof full)) < 0)
        return failed(err, path);
    if (!realpath(full, resolved))
        return failed(-errno, path);
    /* A link that leaves the root would describe this host, not the tree. */
    if (fs->root_len && (strncmp(resolved, fs->root, fs->root_len) != 0 ||
                         (resolved[fs->root_len] != '/' && resolved[fs->root_len] != '\0')))
        return nmb__fail(-EXDEV, "%s resolves to %s, outside NUMABIND_FSROOT", path, resolved);
    const char *below = resolved + fs->root_len;
    if ((size_t)snprintf(out, len, "%s", *below ? below : "/") >= len)
        return -ENAMETOOLONG;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void nmb__fs_free_names(char **names, int count)
{
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

int nmb__fs_list(nmb_fs_t *fs, const char *path, char ***names_out)
{
    char full[PATH_MAX];
    int err, count = 0, cap = 0;
    char **names = NULL;
    *names_out = NULL;
    record(fs, path);
    if ((err = full_path(fs, path, full, sizeof full)) < 0)
        return failed(err, path);
    /* opendir opens with O_DIRECTORY: anything else fails at once with
     * ENOTDIR, never opened; only then is it looked at, to name it. */
    DIR *dir = opendir(full);
    struct stat st;
    if (!dir && errno == ENOTDIR && stat(full, &st) == 0) {
        failed(-ENOTDIR, path);
        return nmb__fail(-ENOTDIR, "%s%s is %s, not a directory", fs->root, path,
                         S_ISREG(st.st_mode) ? "a file" : kind_of(st.st_mode));
    }
    if (!dir)
        return failed(-errno, path);
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(names, (size_t)cap * sizeof *names);
            if (!grown)
                goto oom;
            names = grown;
        }
        if (!(names[count] = strdup(de->d_name)))
            goto oom;
        count++;
    }
    closedir(dir);
    if (count)
        qsort(names, (size_t)count, sizeof *names, cmp_names);
    *names_out = names;
    return count;
oom:
    closedir(dir);
    nmb__fs_free_names(names, count);
    return -ENOMEM;
}

int nmb__fs_exists(nmb_fs_t *fs, const char *path)
{
    char full[PATH_MAX];
    struct stat st;
    if (full_path(fs, path, full, sizeof full) < 0)
        return 0;
    int ok = stat(full, &st) == 0;
    if (ok)
        record(fs, path);
    return ok;
}
