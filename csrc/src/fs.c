/* Every file the core reads goes through here, below one root: "/" on the
 * live host, a fixture or gathered tree under NUMABIND_FSROOT. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#include "internal.h"

int nmb__fs_init(nmb_fs_t *fs, const char *fsroot, int record)
{
    memset(fs, 0, sizeof *fs);
    fs->record = record;
    fs->root_fd = fs->at_fd = -1;
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
    /* Every file below is opened relative to the root's descriptor: the
     * kernel walks the root's own path once, not once per file. */
    if (fs->root_len && (fs->root_fd = open(fs->root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return nmb__fail(-errno, "NUMABIND_FSROOT %s: %s", fsroot, strerror(errno));
    return 0;
}

void nmb__fs_free(nmb_fs_t *fs)
{
    nmb__fs_leave(fs);
    if (fs->root_fd >= 0)
        close(fs->root_fd);
    fs->root_fd = -1;
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

/* Where `path` (absolute, as on the live host) is opened from: the entered
 * directory's descriptor and the rest of the path below it, else the
 * root's descriptor and the path without its leading '/', else (the live
 * host) the path itself. *rel is what to pass to the *at() call. */
static int base_of(const nmb_fs_t *fs, const char *path, const char **rel)
{
    if (fs->at_fd >= 0 && strncmp(path, fs->at_path, fs->at_len) == 0 && path[fs->at_len] == '/' &&
        path[fs->at_len + 1]) {
        *rel = path + fs->at_len + 1;
        return fs->at_fd;
    }
    if (fs->root_fd >= 0) {
        while (*path == '/')
            path++;
        *rel = *path ? path : ".";
        return fs->root_fd;
    }
    *rel = path;
    return AT_FDCWD;
}

/* openat() of `path` below the root: -errno on failure. The length check
 * keeps root + path within PATH_MAX, as when the two were joined. */
static int open_below(const nmb_fs_t *fs, const char *path, int flags)
{
    const char *rel;
    if (fs->root_len + strlen(path) >= PATH_MAX)
        return -ENAMETOOLONG;
    int base = base_of(fs, path, &rel);
    int fd = openat(base, rel, flags);
    return fd < 0 ? -errno : fd;
}

static int stat_below(const nmb_fs_t *fs, const char *path, struct stat *st)
{
    const char *rel;
    if (fs->root_len + strlen(path) >= PATH_MAX)
        return -ENAMETOOLONG;
    int base = base_of(fs, path, &rel);
    return fstatat(base, rel, st, 0) < 0 ? -errno : 0;
}

void nmb__fs_leave(nmb_fs_t *fs)
{
    if (fs->at_fd >= 0)
        close(fs->at_fd);
    fs->at_fd = -1;
    fs->at_len = 0;
    fs->at_path[0] = '\0';
}

void nmb__fs_enter(nmb_fs_t *fs, const char *path, int fd)
{
    size_t n = strlen(path);
    nmb__fs_leave(fs);
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n >= sizeof fs->at_path || n < 2) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (fd < 0) {
        memcpy(fs->at_path, path, n);
        fs->at_path[n] = '\0';
        fd = open_below(fs, fs->at_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return; /* read by whole paths, which fail as they always did */
    }
    memcpy(fs->at_path, path, n);
    fs->at_path[n] = '\0';
    fs->at_len = n;
    fs->at_fd = fd;
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

void nmb__keep_error(nmb_kept_error_t *k, const nmb_fs_t *fs, int err)
{
    k->err = err < 0 ? err : 0;
    k->detail[0] = '\0';
    if (k->err) {
        nmb__fs_describe(fs, err);
        snprintf(k->detail, sizeof k->detail, "%s", nmb_last_error());
    }
}

int nmb__kept_error(const nmb_kept_error_t *k)
{
    if (k->err < 0 && k->detail[0])
        nmb__fail(k->err, "%s", k->detail);
    else if (k->err < 0)
        nmb__clear_error();
    return k->err;
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

/* The rest of a read once `fd` is open: under a root the open file is
 * looked at first (anything but a regular file refused); then its bytes,
 * NUL-terminated. Closes fd. */
static int read_open_file(nmb_fs_t *fs, int fd, const char *path, char *buf, size_t len)
{
    int err = 0;
    size_t used = 0, size = 0;
    if (!nmb__fs_live(fs)) {
        struct stat st;
        if (fstat(fd, &st) < 0 || (err = refuse_irregular(fs, path, st.st_mode)) < 0) {
            err = err < 0 ? err : -errno;
            close(fd);
            return failed(err, path);
        }
        size = st.st_size > 0 ? (size_t)st.st_size : 0;
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
        /* The end, without a read that returns 0: under a root the regular
         * file's size (fstat above) is reached; on the live host a read
         * returned less than it asked for and less than a page. sysfs and
         * procfs attributes (seq_file and binary ones alike) give all they
         * have, up to a page, to one read; only a page-long read may have
         * more behind it, and there the loop asks again. */
        if ((size && used >= size && used + 1 < len) ||
            (nmb__fs_live(fs) && (size_t)n < room && n < 4096))
            break;
    }
    close(fd);
    buf[used] = '\0';
    return (int)used;
}

int nmb__fs_read(nmb_fs_t *fs, const char *path, char *buf, size_t len)
{
    int fd;
    record(fs, path);
    /* Opened non-blocking, so a FIFO's open returns at once instead of
     * waiting for a writer (O_NONBLOCK changes nothing for a regular file).
     * Under a root (a capture, anyone's tree) the open file is then looked
     * at, and anything but a regular file is refused before a byte is read:
     * an fstat, which walks no path, where a stat before the open would walk
     * each of a read's ~1000 paths twice. The live host's sysfs and procfs
     * hold no FIFO, socket or device: there nothing more is asked. Opened
     * relative to the root's (or an entered directory's) descriptor. */
    fd = open_below(fs, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        struct stat st; /* a socket cannot be opened (ENXIO): say what stands there */
        if (!nmb__fs_live(fs) && stat_below(fs, path, &st) == 0 && !S_ISREG(st.st_mode))
            return refuse_irregular(fs, path, st.st_mode);
        return failed(fd, path);
    }
    return read_open_file(fs, fd, path, buf, len);
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

/* realpath() below the root: every component looked at (a readlink each). */
static int slow_realpath(nmb_fs_t *fs, const char *path, char *out, size_t len)
{
    char full[PATH_MAX], resolved[PATH_MAX];
    int err;
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

/* Opens `path` (absolute, below the root; `n` bytes of it) with `oflags`
 * (O_PATH for a directory to resolve against, O_RDONLY to read), and only
 * if no component from the root down is a symbolic link and none leads out
 * of the root: openat2's RESOLVE_NO_SYMLINKS (and RESOLVE_BENEATH under a
 * root) make the kernel check both in the one walk. -1 otherwise (errno
 * says why), and on kernels (or seccomp profiles) without openat2, which
 * are then not asked again. */
static int open_link_free(nmb_fs_t *fs, const char *path, size_t n, int oflags)
{
#ifdef SYS_openat2
    char copy[PATH_MAX];
    if (fs->no_openat2 || n >= sizeof copy)
        return -1;
    memcpy(copy, path, n);
    copy[n] = '\0';
    struct open_how how = {0};
    how.flags = (unsigned)(oflags | O_CLOEXEC);
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (fs->root_fd >= 0 ? RESOLVE_BENEATH : 0);
    const char *rel = copy;
    int base = AT_FDCWD;
    if (fs->root_fd >= 0) {
        while (*rel == '/')
            rel++;
        if (!*rel)
            rel = ".";
        base = fs->root_fd;
    }
    long fd = syscall(SYS_openat2, base, rel, &how, sizeof how);
    if (fd < 0 && (errno == ENOSYS || errno == EPERM || errno == E2BIG))
        fs->no_openat2 = 1;
    return fd < 0 ? -1 : (int)fd;
#else
    (void)fs, (void)path, (void)n, (void)oflags;
    return -1;
#endif
}

/* Joins `dir` (n bytes, absolute) and a relative link target, folding "."
 * and ".." as text: right only where nothing on the way is a link, which
 * the caller has the kernel check. -1 where ".." would climb above "/". */
static int join_lexically(const char *dir, size_t n, const char *target, char *out, size_t len)
{
    if (n + 1 + strlen(target) >= len)
        return -1;
    memcpy(out, dir, n);
    size_t used = n;
    while (used > 0 && out[used - 1] == '/')
        used--;
    const char *p = target;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t c = end ? (size_t)(end - p) : strlen(p);
        if (c == 0 || (c == 1 && p[0] == '.')) {
            /* nothing */
        } else if (c == 2 && p[0] == '.' && p[1] == '.') {
            if (used == 0)
                return -1;
            while (used > 0 && out[used - 1] != '/')
                used--;
            if (used > 0)
                used--; /* the slash */
        } else {
            out[used++] = '/';
            memcpy(out + used, p, c);
            used += c;
        }
        p += c;
        while (*p == '/')
            p++;
    }
    if (used == 0)
        out[used++] = '/';
    out[used] = '\0';
    return 0;
}

/* Checks, once, that the directory `path`'s first `dlen` bytes name holds
 * no link from the root down (sys/bus/pci/devices for every function):
 * a link's target is relative to where that directory really is. */
static int verify_link_dir(nmb_fs_t *fs, const char *path, size_t dlen)
{
    if ((fs->verified_len == dlen && memcmp(fs->verified, path, dlen) == 0) ||
        (fs->resolved_len == dlen && memcmp(fs->resolved, path, dlen) == 0))
        return 0;
    int dfd = open_link_free(fs, path, dlen, O_PATH | O_DIRECTORY);
    if (dfd < 0)
        return -1;
    close(dfd);
    memcpy(fs->verified, path, dlen);
    fs->verified[dlen] = '\0';
    fs->verified_len = dlen;
    return 0;
}

/* The link `path` (its directory, `dlen` bytes of it, checked link-free)
 * read and its relative target joined to that directory as text, into
 * `joined`: 0; 1 where `path` is no link (a copied tree's directory);
 * -1 where this cannot tell (missing, unreadable, an absolute target or
 * one above "/"). */
static int link_joined(const nmb_fs_t *fs, const char *path, size_t dlen, char *joined, size_t len)
{
    char target[PATH_MAX];
    const char *rel;
    int base = base_of(fs, path, &rel);
    ssize_t n = readlinkat(base, rel, target, sizeof target - 1);
    if (n < 0)
        return errno == EINVAL ? 1 : -1;
    target[n] = '\0';
    if (n == 0 || target[0] == '/' || join_lexically(path, dlen, target, joined, len) < 0)
        return -1;
    return 0;
}

/* The fast form of slow_realpath for a path whose links are its last
 * component only (sys/bus/pci/devices/X, or a device's `device`): -1 where
 * it cannot tell, for slow_realpath to answer. */
static int fast_resolve(nmb_fs_t *fs, const char *path, char *out, size_t len, int *dir_fd)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    char joined[PATH_MAX];
    if (fs->no_openat2 || !slash || dlen == 0 || fs->root_len + strlen(path) >= PATH_MAX)
        return -1;
    if (verify_link_dir(fs, path, dlen) < 0)
        return -1;
    /* What this cannot tell, slow_realpath judges (and names, as it always did). */
    int rc = link_joined(fs, path, dlen, joined, sizeof joined);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        /* Not a link (a copied tree's directory): the path is what it is. */
        if (strlen(path) >= sizeof joined)
            return -1;
        strcpy(joined, path);
    }
    size_t jlen = strlen(joined);
    int fd = open_link_free(fs, joined, jlen, O_PATH);
    if (fd < 0)
        return -1;  /* a link further on (or none there): the slow walk resolves it */
    if (jlen >= len) {
        close(fd);
        return -ENAMETOOLONG;
    }
    memcpy(out, joined, jlen + 1);
    /* What the kernel just walked holds no link: a link inside it
     * (a device's `device`) is resolved against it as text. */
    memcpy(fs->resolved, joined, jlen + 1);
    fs->resolved_len = jlen;
    if (dir_fd)
        *dir_fd = fd;
    else
        close(fd);
    return 0;
}

int nmb__fs_resolve(nmb_fs_t *fs, const char *path, char *out, size_t len, int *dir_fd)
{
    if (dir_fd)
        *dir_fd = -1;
    record(fs, path);
    int err = fast_resolve(fs, path, out, len, dir_fd);
    if (err != -1)
        return err;
    return slow_realpath(fs, path, out, len);
}

int nmb__fs_realpath(nmb_fs_t *fs, const char *path, char *out, size_t len)
{
    return nmb__fs_resolve(fs, path, out, len, NULL);
}

int nmb__fs_link_target(nmb_fs_t *fs, const char *link, char *joined, size_t len)
{
    const char *slash = strrchr(link, '/');
    size_t dlen = slash ? (size_t)(slash - link) : 0;
    if (fs->record || fs->no_openat2 || !dlen || fs->root_len + strlen(link) >= PATH_MAX ||
        verify_link_dir(fs, link, dlen) < 0)
        return -1;
    return link_joined(fs, link, dlen, joined, len) == 0 ? 0 : -1;
}

int nmb__fs_resolve_read(nmb_fs_t *fs, const char *link, const char *target, char *out, size_t len,
                         const char *name, char *buf, size_t buflen, int *checked)
{
    /* The fast form: the link's target joined as text, then one openat2 of
     * the file in it that refuses, as the directory's own would, any
     * component that is a link or leads out of the root. */
    char joined[PATH_MAX], file[PATH_MAX];
    size_t jlen;
    if (checked)
        *checked = 0;
    if (!target && nmb__fs_link_target(fs, link, joined, sizeof joined) == 0)
        target = joined;
    if (target && !fs->record && !fs->no_openat2 && (jlen = strlen(target)) < len &&
        (size_t)snprintf(file, sizeof file, "%s/%s", target, name) < sizeof file &&
        fs->root_len + strlen(file) < PATH_MAX) {
        int fd = open_link_free(fs, file, strlen(file), O_RDONLY | O_NONBLOCK | O_NOCTTY);
        if (fd >= 0) {
            memcpy(out, target, jlen + 1);
            memcpy(fs->resolved, target, jlen + 1);
            fs->resolved_len = jlen;
            if (checked)
                *checked = 1;
            return read_open_file(fs, fd, file, buf, buflen);
        }
    }
    /* Anything else (the file missing, a link on the way, no openat2, a
     * capture recording its paths) as two steps, with their own errors. */
    char path[PATH_MAX];
    int err = nmb__fs_resolve(fs, link, out, len, NULL);
    if (err < 0)
        return err;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", out, name) >= sizeof path)
        return -ENAMETOOLONG;
    return nmb__fs_read(fs, path, buf, buflen);
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
    /* Opened with O_DIRECTORY: anything else fails at once with ENOTDIR,
     * never opened; only then is it looked at, to name it. Read with
     * getdents64 directly (fdopendir would fstat and fcntl it first). */
    int fd = open_below(fs, path, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd == -ENOTDIR && stat_below(fs, path, &st) == 0) {
        failed(-ENOTDIR, path);
        return nmb__fail(-ENOTDIR, "%s%s is %s, not a directory", fs->root, path,
                         S_ISREG(st.st_mode) ? "a file" : kind_of(st.st_mode));
    }
    if (fd < 0)
        return failed(fd, path);
    char *buf = malloc(32768);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t got = getdents64(fd, buf, 32768);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            err = -errno;
            close(fd);
            free(buf);
            nmb__fs_free_names(names, count);
            return failed(err, path);
        }
        if (got == 0)
            break;
        for (ssize_t off = 0; off < got;) {
            struct dirent64 *de = (struct dirent64 *)(buf + off);
            off += de->d_reclen;
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
    }
    close(fd);
    free(buf);
    if (count)
        qsort(names, (size_t)count, sizeof *names, cmp_names);
    *names_out = names;
    return count;
oom:
    close(fd);
    free(buf);
    nmb__fs_free_names(names, count);
    return -ENOMEM;
}

int nmb__fs_exists(nmb_fs_t *fs, const char *path)
{
    struct stat st;
    int ok = stat_below(fs, path, &st) == 0;
    if (ok)
        record(fs, path);
    return ok;
}
