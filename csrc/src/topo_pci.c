/* The PCI tree: every function with its attributes, its upstream bridge and
 * its host bridge, found from where the kernel puts it under /sys/devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define PCI_DEVICES "/sys/bus/pci/devices"

typedef struct pending {
    nmb_pci_function_t fn;
    size_t bridge_len;    /* the host bridge's path: this much of fn.path */
    int under_bridge;     /* the path holds a host bridge: ancestors lie between it and the function */
    int unlocated;        /* NMB_TOPOLOGY_PLAN_ONLY: numa_node and local CPUs not read (yet) */
    int name_index;       /* its place in the listing (see find_parents) */
    int dead;             /* removed while being read: left out */
} pending_t;

static int cmp_pending(const void *a, const void *b)
{
    const nmb_pci_function_t *x = &((const pending_t *)a)->fn, *y = &((const pending_t *)b)->fn;
    if (x->domain != y->domain) return x->domain < y->domain ? -1 : 1;
    if (x->bus != y->bus) return x->bus < y->bus ? -1 : 1;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->fn != y->fn) return x->fn < y->fn ? -1 : 1;
    return 0;
}

/* Finds the host bridge in the resolved sysfs path of a function: the first
 * "pciDDDD:BB" component (a root complex, one per device under Hyper-V's
 * VMBus). Without one, the function's own directory stands in. */
static void place_in_tree(const char *path, pending_t *p)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    size_t bridge_end = 0;
    char *save = NULL;
    for (char *comp = strtok_r(copy, "/", &save); comp && !bridge_end; comp = strtok_r(NULL, "/", &save))
        if (nmb__is_host_bridge_name(comp))
            bridge_end = (size_t)(comp - copy) + strlen(comp);
    p->under_bridge = bridge_end > 0;
    if (!bridge_end) {
        const char *slash = strrchr(path, '/');
        bridge_end = slash ? (size_t)(slash - path) : 0;
    }
    p->bridge_len = bridge_end;
}

/* The upstream bridge of the function at `path`: the closest PCI address
 * between the host bridge (whose path is `bridge_len` long) and the function
 * that sys/bus/pci/devices lists. A bridge the listing lacks (a capture that
 * left it out, a bridge firmware hides) is passed over, as are components
 * that are not PCI addresses (a nested VMD domain): the function hangs from
 * its nearest listed ancestor, never from nothing. -1 directly under the
 * host bridge. */
static int nearest_listed_ancestor(const nmb_topology_t *t, const char *path, size_t bridge_len)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    char *slash = strrchr(copy, '/'); /* the function's own component */
    while (slash && (size_t)(slash - copy) > bridge_len) {
        *slash = '\0';
        slash = strrchr(copy, '/');
        const char *comp = slash ? slash + 1 : copy;
        int index;
        if (nmb__parse_pci_address(comp, NULL, NULL, NULL, NULL) == 0 &&
            (index = nmb_topology_pci_index(t, comp)) >= 0)
            return index;
    }
    return -1;
}

static int read_attr_hex(nmb_fs_t *fs, const char *dir, const char *name, unsigned *out)
{
    char path[PATH_MAX];
    unsigned long v = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int err = nmb__fs_read_hex(fs, path, &v);
    if (err == -ENOENT)
        v = 0;
    else if (err < 0)
        return err;
    *out = (unsigned)v;
    return 0;
}

/* A uevent read with the function's link (nmb__fs_resolve_read): its
 * length or error, and its text; NOT_READ where it was not read so. */
#define NOT_READ (-ENOSYS)
typedef struct uevent_text {
    int n;
    char text[4096]; /* a sysfs attribute is at most a page */
} uevent_text_t;

static int read_attributes(nmb_topology_t *t, const char *resolved, nmb_pci_function_t *f, unsigned flags,
                           int *unlocated, const uevent_text_t *uevent);

/* `target`: the link's target read ahead (plan-only, nmb__fs_link_target),
 * or NULL; `checked` set where the uevent was opened through it with the
 * kernel refusing any link on the way (see find_parents). */
static int read_function(nmb_topology_t *t, const char *name, pending_t *p, unsigned flags, const char *target,
                         int *checked)
{
    char link[PATH_MAX], resolved[PATH_MAX];
    nmb_pci_function_t *f = &p->fn;
    int err;
    if (nmb__parse_pci_address(name, &f->domain, &f->bus, &f->dev, &f->fn) < 0)
        return nmb__fail(-EINVAL, PCI_DEVICES "/%s is not a PCI address", name);
    snprintf(link, sizeof link, PCI_DEVICES "/%s", name);
    /* One readlink and one openat2 where the link leads straight to a path
     * without links (as sysfs's do); its descriptor then opens the
     * attributes below, each walking one component. */
    int dir_fd = -1;
    uevent_text_t uevent = {NOT_READ, ""};
    if (flags & NMB_TOPOLOGY_PLAN_ONLY) {
        /* Only the uevent is read of most functions: opened with the
         * link's own check, no directory descriptor. */
        resolved[0] = '\0';
        uevent.n = nmb__fs_resolve_read(&t->fs, link, target, resolved, sizeof resolved, "uevent", uevent.text,
                                        sizeof uevent.text, checked);
        err = resolved[0] ? 0 : uevent.n;
    } else {
        err = nmb__fs_resolve(&t->fs, link, resolved, sizeof resolved, &dir_fd);
    }
    if (err < 0) {
        if (err == -ENOENT)
            return 1; /* removed between listing and reading (an SR-IOV VF going away): skip it */
        if (err == -EXDEV)
            return err; /* the detail already says where the link leads */
        return nmb__fail(err, "%s: %s", link, err == -ELOOP ? "symbolic link loop" : strerror(-err));
    }
    place_in_tree(resolved, p);
    if (!(f->path = nmb__arena_strdup(&t->arena, resolved)) ||
        !(f->address = nmb__arena_strdup(&t->arena, name))) {
        if (dir_fd >= 0)
            close(dir_fd);
        return -ENOMEM;
    }
    if (dir_fd >= 0)
        nmb__fs_enter(&t->fs, resolved, dir_fd);
    err = read_attributes(t, resolved, f, flags, &p->unlocated, &uevent);
    nmb__fs_leave(&t->fs);
    return err;
}

/* One "KEY=" line of a uevent file: its value, cut at the line's end in
 * `buf` (which it changes), or NULL. */
static const char *uevent_value(char *buf, const char *key)
{
    size_t n = strlen(key);
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strncmp(line, key, n) == 0 && line[n] == '=')
            return line + n + 1;
        if (next)
            next[-1] = '\n'; /* put the line back for the next key */
        line = next;
    }
    return NULL;
}

static int parse_uevent_hex(const char *path, const char *key, const char *text, unsigned long max,
                            unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 16);
    if (!text[0] || *end || errno || text[0] == '-' || text[0] == ' ' || v > max)
        return nmb__fail(-EINVAL, "%s: %s '%.32s' is not a hex number", path, key, text);
    *out = v;
    return 0;
}

/* Vendor, device and class from the function's uevent: one file for three
 * ("PCI_CLASS=30200", "PCI_ID=10DE:2330", as every kernel since 2.6.x
 * prints them). 1 when there is no uevent or it lacks either line (a
 * capture of the attribute files only): then the three files are read. */
static int read_ids_from_uevent(nmb_topology_t *t, const char *resolved, nmb_pci_function_t *f,
                                const uevent_text_t *read)
{
    char path[PATH_MAX], buf[sizeof read->text], copy[sizeof read->text];
    snprintf(path, sizeof path, "%s/uevent", resolved);
    int n;
    if (read->n == NOT_READ) {
        n = nmb__fs_read(&t->fs, path, buf, sizeof buf);
    } else {
        n = read->n;
        if (n >= 0)
            memcpy(buf, read->text, (size_t)n + 1);
    }
    if (n < 0) {
        /* Missing, or longer than a page (no kernel's: a tool's own): the
         * three files say the same. */
        if (n == -ENOENT || n == -EOVERFLOW) {
            nmb__clear_error();
            return 1;
        }
        return n; /* a uevent there but unreadable (a directory, a FIFO): as any attribute */
    }
    memcpy(copy, buf, (size_t)n + 1);
    const char *cls = uevent_value(buf, "PCI_CLASS");
    const char *id = uevent_value(copy, "PCI_ID");
    if (!cls || !id)
        return 1;
    unsigned long class_code = 0, vendor = 0, device = 0;
    char vend[16], *colon = strchr(id, ':');
    if (!colon || colon - id >= (long)sizeof vend)
        return nmb__fail(-EINVAL, "%s: PCI_ID '%.32s' is not VENDOR:DEVICE", path, id);
    memcpy(vend, id, (size_t)(colon - id));
    vend[colon - id] = '\0';
    int err;
    if ((err = parse_uevent_hex(path, "PCI_CLASS", cls, 0xffffff, &class_code)) < 0 ||
        (err = parse_uevent_hex(path, "PCI_ID vendor", vend, 0xffff, &vendor)) < 0 ||
        (err = parse_uevent_hex(path, "PCI_ID device", colon + 1, 0xffff, &device)) < 0)
        return err;
    f->class_code = (unsigned)class_code;
    f->vendor = (unsigned)vendor;
    f->device = (unsigned)device;
    return 0;
}

/* The function's NUMA node and (with_cpus) local CPUs, from the files in `dir`. */
static int read_locality(nmb_topology_t *t, const char *dir, nmb_pci_function_t *f, int with_cpus)
{
    char path[PATH_MAX], buf[8192];
    long v;
    snprintf(path, sizeof path, "%s/numa_node", dir);
    int err = nmb__fs_read_long(&t->fs, path, &v);
    if (err == -ENOENT)
        v = -1;
    else if (err < 0)
        return err;
    /* -1 is the kernel's "unknown"; never read it as node 0. The kernel
     * prints an int: a number past that is no node, and cut to an int it
     * would name some other node (or a negative one). */
    if (v > INT_MAX)
        return nmb__fail(-EINVAL, "%s%s: numa_node %ld is past any node number", t->fs.root, path, v);
    f->numa_node = v < 0 ? -1 : (int)v;
    if (!with_cpus)
        return 0;

    snprintf(path, sizeof path, "%s/local_cpulist", dir);
    err = nmb__fs_read_list(&t->fs, path, &f->local_cpus);
    if (err == -ENOENT) {
        snprintf(path, sizeof path, "%s/local_cpus", dir);
        if (nmb__fs_read(&t->fs, path, buf, sizeof buf) >= 0 &&
            (err = nmb_bitmap_parse_mask(&f->local_cpus, buf)) < 0)
            return nmb__fail(err, "%s: '%.64s' is not a CPU mask", path, nmb__rstrip(buf));
    } else if (err < 0) {
        return err;
    }
    /* Some kernels keep offline CPUs in a device's list: only online ones can run anything. */
    nmb_bitmap_and(&f->local_cpus, &f->local_cpus, &t->online);
    return 0;
}

int nmb__pci_read_locality(nmb_topology_t *t, int index, int with_cpus)
{
    if (index < 0 || index >= t->num_pci || !t->pci_unlocated || !t->pci_unlocated[index])
        return 0;
    int err = read_locality(t, t->pci[index].path, &t->pci[index], with_cpus);
    if (err == 0)
        t->pci_unlocated[index] = 0;
    return err;
}

/* vendor, device, class, numa_node, local CPUs and link of the function whose
 * directory is `resolved`. With NMB_TOPOLOGY_PLAN_ONLY no link, and the
 * locality of GPUs only (RDMA NICs' is read when they are found). */
static int read_attributes(nmb_topology_t *t, const char *resolved, nmb_pci_function_t *f, unsigned flags,
                           int *unlocated, const uevent_text_t *uevent)
{
    char path[PATH_MAX], buf[8192];
    long v;
    int err = 1;

    /* A capture (numabind gather) keeps the three files every numabind reads. */
    if (!t->fs.record && (err = read_ids_from_uevent(t, resolved, f, uevent)) < 0)
        return err;
    if (err == 1 &&
        ((err = read_attr_hex(&t->fs, resolved, "vendor", &f->vendor)) < 0 ||
         (err = read_attr_hex(&t->fs, resolved, "device", &f->device)) < 0 ||
         (err = read_attr_hex(&t->fs, resolved, "class", &f->class_code)) < 0))
        return err;
    f->is_bridge = (f->class_code >> 8) == 0x0604;
    f->link_width = -1;
    f->link_speed_gts = 0;
    if (flags & NMB_TOPOLOGY_PLAN_ONLY) {
        f->numa_node = -1;
        if (!nmb__is_gpu_function(f)) {
            *unlocated = 1; /* located later if an RDMA NIC turns out to be it */
            return 0;
        }
    }
    if ((err = read_locality(t, resolved, f, 1)) < 0 || (flags & NMB_TOPOLOGY_PLAN_ONLY))
        return err;

    snprintf(path, sizeof path, "%s/max_link_width", resolved);
    err = nmb__fs_read_long(&t->fs, path, &v);
    /* An optional attribute: anything but a lane count (x1-x32) is unknown,
     * and a value past int would turn negative when narrowed. */
    f->link_width = err == 0 && v > 0 && v <= 1024 ? (int)v : -1;
    snprintf(path, sizeof path, "%s/max_link_speed", resolved);
    f->link_speed_gts = nmb__fs_read(&t->fs, path, buf, sizeof buf) >= 0 ? nmb__parse_link_speed(buf) : 0;
    nmb__clear_error(); /* an unreadable link attribute only means "unknown" */
    return 0;
}

/* A plan-only read needs nothing of a function other functions sit below
 * (a bridge; a VMD controller), only where it is: its uevent is not read
 * where the link of one below it was checked on the way to that one's own
 * uevent (nmb__fs_resolve_read's `checked`), which walked through it. So
 * the links are read first (nmb__fs_link_target), to know which functions
 * have others below; those are passed over, and read as any other at the
 * end if nothing below them was checked (a link on the way, a capture
 * without uevent files). ~30 of the DGX H100's 54 functions. */
typedef struct by_target {
    const char *target;
    int index;
} by_target_t;

typedef struct parents {
    int n;
    char **target;          /* by listing index: the link's target, or NULL */
    by_target_t *sorted;    /* those with a target, by target */
    int num_sorted;
    unsigned char *parent;  /* by listing index: another function's target lies below its own */
    unsigned char *checked; /* by listing index: a target below its own was checked */
} parents_t;

static int cmp_by_target(const void *a, const void *b)
{
    return strcmp(((const by_target_t *)a)->target, ((const by_target_t *)b)->target);
}

/* The first position in `p->sorted` whose target is >= key. */
static int lower_bound(const parents_t *p, const char *key)
{
    int lo = 0, hi = p->num_sorted;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(p->sorted[mid].target, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void free_parents(parents_t *p)
{
    for (int i = 0; p->target && i < p->n; i++)
        free(p->target[i]);
    free(p->target);
    free(p->sorted);
    free(p->parent);
    free(p->checked);
    memset(p, 0, sizeof *p);
}

/* Fills `p` (all zero where it cannot: then every function is read). */
static void find_parents(nmb_topology_t *t, char **names, int count, parents_t *p)
{
    size_t n = (size_t)(count ? count : 1);
    memset(p, 0, sizeof *p);
    p->n = count;
    p->target = calloc(n, sizeof *p->target);
    p->sorted = malloc(n * sizeof *p->sorted);
    p->parent = calloc(n, 1);
    p->checked = calloc(n, 1);
    if (!p->target || !p->sorted || !p->parent || !p->checked) {
        free_parents(p);
        return;
    }
    for (int i = 0; i < count; i++) {
        char link[PATH_MAX], joined[PATH_MAX];
        if ((size_t)snprintf(link, sizeof link, PCI_DEVICES "/%s", names[i]) < sizeof link &&
            nmb__fs_link_target(&t->fs, link, joined, sizeof joined) == 0 && (p->target[i] = strdup(joined)))
            p->sorted[p->num_sorted++] = (by_target_t){p->target[i], i};
    }
    qsort(p->sorted, (size_t)p->num_sorted, sizeof *p->sorted, cmp_by_target);
    for (int k = 0; k < p->num_sorted; k++) {
        /* Any target that starts with this one and a slash lies below it. */
        char key[PATH_MAX];
        size_t len = (size_t)snprintf(key, sizeof key, "%s/", p->sorted[k].target);
        if (len >= sizeof key)
            continue;
        int at = lower_bound(p, key);
        p->parent[p->sorted[k].index] = at < p->num_sorted && strncmp(p->sorted[at].target, key, len) == 0;
    }
}

/* The uevent of listing entry `i` was opened through its target with the
 * kernel's check: every function whose target is a directory above it is
 * checked too. */
static void mark_checked(parents_t *p, int i)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", p->target[i]);
    for (char *slash = strrchr(path, '/'); slash && slash != path; slash = strrchr(path, '/')) {
        *slash = '\0';
        for (int at = lower_bound(p, path); at < p->num_sorted && !strcmp(p->sorted[at].target, path); at++)
            p->checked[p->sorted[at].index] = 1;
    }
}

/* A function passed over (a parent): where it is, nothing more. */
static int pass_over(nmb_topology_t *t, const char *name, const char *target, pending_t *pend)
{
    nmb_pci_function_t *f = &pend->fn;
    if (nmb__parse_pci_address(name, &f->domain, &f->bus, &f->dev, &f->fn) < 0)
        return nmb__fail(-EINVAL, PCI_DEVICES "/%s is not a PCI address", name);
    place_in_tree(target, pend);
    if (!(f->path = nmb__arena_strdup(&t->arena, target)) || !(f->address = nmb__arena_strdup(&t->arena, name)))
        return -ENOMEM;
    f->is_bridge = 1; /* functions sit below it */
    f->link_width = -1;
    f->numa_node = -1;
    pend->unlocated = 1;
    return 0;
}

int nmb__read_pci(nmb_topology_t *t, unsigned flags)
{
    char **names;
    int count = nmb__fs_list(&t->fs, PCI_DEVICES, &names), err = 0;
    if (count == -ENOENT)
        return 0; /* no PCI bus (some VMs, containers without /sys/bus) */
    if (count == -ENOTDIR)
        return count; /* the detail says what stands there instead */
    if (count < 0)
        return nmb__fail(count, "cannot list " PCI_DEVICES);
    pending_t *pend = calloc((size_t)(count ? count : 1), sizeof *pend);
    if (!pend) {
        nmb__fs_free_names(names, count);
        return -ENOMEM;
    }
    parents_t parents = {0};
    if ((flags & NMB_TOPOLOGY_PLAN_ONLY) && !t->fs.record)
        find_parents(t, names, count, &parents);
    int kept = 0;
    for (int at = 0; at < count && err == 0; at++) {
        const char *target = parents.target ? parents.target[at] : NULL;
        int checked = 0;
        pend[kept].name_index = at;
        if (parents.target && parents.parent[at])
            err = pass_over(t, names[at], target, &pend[kept]);
        else
            err = read_function(t, names[at], &pend[kept], flags, target, &checked);
        if (err == 0)
            kept++;
        else if (err == 1)
            err = 0;
        if (err == 0 && checked && target)
            mark_checked(&parents, at);
    }
    /* Passed over, with nothing below checked: read as any function, in
     * listing order (those the loop reached: an error where it stopped
     * comes after theirs, as in a read of every function in order). */
    nmb_kept_error_t failed;
    failed.err = 0;
    if (err < 0 && parents.target) {
        nmb__keep_error(&failed, &t->fs, err);
        err = 0;
    }
    for (int k = 0; k < kept && parents.target; k++) {
        int j = pend[k].name_index;
        if (!parents.parent[j] || parents.checked[j])
            continue;
        memset(&pend[k].fn, 0, sizeof pend[k].fn);
        pend[k].unlocated = 0;
        int e = read_function(t, names[j], &pend[k], flags, NULL, NULL);
        if (e == 1)
            pend[k].dead = 1;
        else if (e < 0) {
            err = e;
            break;
        }
    }
    if (err == 0 && failed.err)
        err = nmb__kept_error(&failed);
    free_parents(&parents);
    nmb__fs_free_names(names, count);
    if (err < 0)
        goto out;
    int live = 0;
    for (int k = 0; k < kept; k++)
        if (!pend[k].dead)
            pend[live++] = pend[k];
    kept = live;
    count = kept;
    qsort(pend, (size_t)count, sizeof *pend, cmp_pending);

    t->num_pci = count;
    t->pci = nmb__arena_alloc(&t->arena, (size_t)count * sizeof *t->pci);
    t->host_bridges = nmb__arena_alloc(&t->arena, (size_t)count * sizeof *t->host_bridges);
    if (!t->pci || !t->host_bridges) {
        err = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < count; i++)
        t->pci[i] = pend[i].fn;
    if (flags & NMB_TOPOLOGY_PLAN_ONLY) {
        if (!(t->pci_unlocated = nmb__arena_alloc(&t->arena, (size_t)(count ? count : 1)))) {
            err = -ENOMEM;
            goto out;
        }
        for (int i = 0; i < count; i++)
            t->pci_unlocated[i] = (unsigned char)pend[i].unlocated;
    }
    for (int i = 0; i < count; i++) {
        nmb_pci_function_t *f = &t->pci[i];
        size_t bl = pend[i].bridge_len;
        f->parent = pend[i].under_bridge ? nearest_listed_ancestor(t, f->path, bl) : -1;
        f->host_bridge = -1;
        for (int h = 0; h < t->num_host_bridges; h++)
            if (strlen(t->host_bridges[h].path) == bl && strncmp(t->host_bridges[h].path, f->path, bl) == 0)
                f->host_bridge = h;
        if (f->host_bridge < 0) {
            nmb_host_bridge_t *hb = &t->host_bridges[t->num_host_bridges];
            char *path = nmb__arena_alloc(&t->arena, bl + 1);
            if (!path) {
                err = -ENOMEM;
                goto out;
            }
            memcpy(path, f->path, bl); /* zeroed: NUL-terminated */
            const char *slash = strrchr(path, '/');
            hb->path = path;
            if (!(hb->name = nmb__arena_strdup(&t->arena, slash ? slash + 1 : path))) {
                err = -ENOMEM;
                goto out;
            }
            hb->numa_node = f->numa_node;
            f->host_bridge = t->num_host_bridges++;
        }
    }
    /* Depth: bridges between a function and its host bridge. A parent chain
     * longer than the list can only be a cycle, which sysfs cannot hold. */
    for (int i = 0; i < count; i++) {
        int d = 0;
        for (int p = t->pci[i].parent; p >= 0 && d <= count; p = t->pci[p].parent)
            d++;
        t->pci[i].depth = d;
    }
out:
    free(pend);
    return err;
}

/* The index chain from a function up to its host bridge, the function first. */
static int chain(const nmb_topology_t *t, int f, int *out, int max)
{
    int n = 0;
    for (; f >= 0 && n < max; f = t->pci[f].parent)
        out[n++] = f;
    return n;
}

int nmb__pci_distance(const nmb_topology_t *t, int a, int b)
{
    if (a < 0 || b < 0 || a >= t->num_pci || b >= t->num_pci)
        return NMB_DIST_SYS;
    const nmb_pci_function_t *fa = &t->pci[a], *fb = &t->pci[b];
    if (fa->host_bridge != fb->host_bridge) {
        if (fa->numa_node >= 0 && fa->numa_node == fb->numa_node)
            return NMB_DIST_NODE;
        return NMB_DIST_SYS;
    }
    int ca[64], cb[64];
    int na = chain(t, a, ca, 64), nb = chain(t, b, cb, 64);
    /* The lowest common ancestor bridge, and how many bridges each endpoint
     * passes below it: the endpoint's own port is one, a switch's internal
     * upstream port is where PIX ends. */
    for (int i = 1; i < na; i++)
        for (int j = 1; j < nb; j++)
            if (ca[i] == cb[j])
                return (i <= 2 && j <= 2) ? NMB_DIST_PIX : NMB_DIST_PXB;
    return NMB_DIST_PHB;
}
