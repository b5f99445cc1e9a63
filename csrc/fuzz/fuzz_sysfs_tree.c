/* Every file reader at once: a fixture tree (csrc/fuzz/tree.json written by
 * tests/sysfs_tree.py; NUMABIND_FUZZ_TREE names it) is damaged as the input
 * says, read with nmb_topology_create and planned with several option sets,
 * then repaired. This reaches the parsers that only run on file contents —
 * node distance rows, numa_node, vendor/class, local_cpulist and local_cpus,
 * /proc/self/status, cgroup files, GPU UUID lines, port directories — and
 * the reactions to a file that is missing, empty, truncated, a directory, a
 * symbolic link loop or a link out of the root.
 *
 * The input is up to 6 records:
 *   op (1 byte) | path length (1 byte) | path | payload length (1 byte) | payload
 * The path picks the tree's entry that ends with it (else one by hash), so
 * seeds read as file names and mutations still hit some file. op % 8:
 *   0 write payload   1 append payload   2 truncate to payload length
 *   3 remove          4 symbolic link loop   5 directory
 *   6 link out of the root   7 CUDA_VISIBLE_DEVICES = payload (no file)
 * Each tree is read twice, in full and plan-only (pin_rank's read). A
 * topology that reads must be consistent; a plan must respect the allowed
 * sets; a refusal must say why. */
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

typedef struct entry {
    char *rel;      /* below the root, no leading '/' */
    char *content;  /* a regular file's bytes, or a link's target */
    size_t len;
    int is_link;
} entry_t;

static char root[4096];
static entry_t *entries;
static size_t num_entries, cap_entries;

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (type != FTW_F && type != FTW_SL)
        return 0;
    const char *rel = path + strlen(root) + 1;
    if (!strcmp(rel, ".numabind-fixture"))
        return 0;
    if (num_entries == cap_entries) {
        cap_entries = cap_entries ? cap_entries * 2 : 1024;
        entries = realloc(entries, cap_entries * sizeof *entries);
        if (!entries)
            abort();
    }
    entry_t *e = &entries[num_entries++];
    e->rel = strdup(rel);
    e->is_link = type == FTW_SL;
    static char buf[65536];
    ssize_t n;
    if (e->is_link) {
        n = readlink(path, buf, sizeof buf - 1);
    } else {
        int fd = open(path, O_RDONLY);
        FUZZ_ASSERT(fd >= 0);
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
    }
    FUZZ_ASSERT(n >= 0);
    e->len = (size_t)n;
    e->content = malloc(e->len + 1);
    FUZZ_ASSERT(e->content != NULL);
    memcpy(e->content, buf, e->len);
    e->content[e->len] = '\0';
    return 0;
}

static int cmp_entries(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->rel, ((const entry_t *)b)->rel);
}

static void remove_tree(void)
{
    char cmd[4200];
    if (root[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz_sysfs_tree: could not remove %s\n", root);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *base = getenv("NUMABIND_FUZZ_TREE");
    if (!base || !*base) {
        fprintf(stderr, "fuzz_sysfs_tree: set NUMABIND_FUZZ_TREE to a tree written from csrc/fuzz/tree.json "
                        "(tools/fuzz.sh does)\n");
        exit(2);
    }
    /* A private copy: the input damages it, and parallel jobs must not share one. */
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/numabind-fuzz-tree-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root))
        abort();
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp -a '%s'/. '%s'/", base, root);
    if (system(cmd) != 0) {
        fprintf(stderr, "fuzz_sysfs_tree: cannot copy %s\n", base);
        exit(2);
    }
    atexit(remove_tree);
    if (nftw(root, collect, 64, FTW_PHYS) != 0 || num_entries < 100) {
        fprintf(stderr, "fuzz_sysfs_tree: %s does not look like a fixture tree\n", base);
        exit(2);
    }
    qsort(entries, num_entries, sizeof *entries, cmp_entries);
    unsetenv("NUMABIND_FSROOT");
    unsetenv("CUDA_VISIBLE_DEVICES");
    return 0;
}

static void full(const entry_t *e, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", root, e->rel);
}

/* Whatever stands at e's path goes; nothing it points to is followed. */
static void clear(const entry_t *e)
{
    char p[8192];
    struct stat st;
    full(e, p, sizeof p);
    if (lstat(p, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode))
        FUZZ_ASSERT(rmdir(p) == 0);
    else
        FUZZ_ASSERT(unlink(p) == 0);
}

static void write_file(const entry_t *e, const char *data, size_t len)
{
    char p[8192];
    full(e, p, sizeof p);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FUZZ_ASSERT(fd >= 0);
    FUZZ_ASSERT(len == 0 || write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static void restore(const entry_t *e)
{
    char p[8192];
    clear(e);
    full(e, p, sizeof p);
    if (e->is_link)
        FUZZ_ASSERT(symlink(e->content, p) == 0);
    else
        write_file(e, e->content, e->len);
}

static size_t pick(const char *path, size_t n)
{
    while (n && *path == '/')
        path++, n--;
    for (size_t i = 0; n && i < num_entries; i++) {
        size_t l = strlen(entries[i].rel);
        if (l >= n && memcmp(entries[i].rel + l - n, path, n) == 0 && (l == n || entries[i].rel[l - n - 1] == '/'))
            return i;
    }
    size_t h = 5381;
    for (size_t i = 0; i < n; i++)
        h = h * 33 + (unsigned char)path[i];
    return h % num_entries;
}

static void apply(int op, entry_t *e, const char *payload, size_t len)
{
    char p[8192], buf[65536 + 256];
    full(e, p, sizeof p);
    if (getenv("NUMABIND_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz_sysfs_tree: op %d on %s, payload '%.*s'\n", op, e->rel, (int)len, payload);
    switch (op) {
    case 0:
        clear(e);
        write_file(e, payload, len);
        break;
    case 1: {
        size_t base = e->is_link ? 0 : e->len;
        memcpy(buf, e->content, base);
        memcpy(buf + base, payload, len);
        clear(e);
        write_file(e, buf, base + len);
        break;
    }
    case 2:
        clear(e);
        write_file(e, e->is_link ? "" : e->content, e->is_link ? 0 : (len < e->len ? len : e->len));
        break;
    case 3:
        clear(e);
        break;
    case 4: {
        clear(e);
        const char *slash = strrchr(e->rel, '/');
        FUZZ_ASSERT(symlink(slash ? slash + 1 : e->rel, p) == 0); /* a link to itself */
        break;
    }
    case 5:
        clear(e);
        FUZZ_ASSERT(mkdir(p, 0755) == 0);
        break;
    case 6:
        clear(e);
        FUZZ_ASSERT(symlink("/proc/self/status", p) == 0);
        break;
    }
}

/* ---- what a topology and a plan must satisfy ---- */

static void check_topology(const nmb_topology_t *t)
{
    int nn = nmb_topology_num_nodes(t), nc = nmb_topology_num_cpus(t), ncore = nmb_topology_num_cores(t);
    int nl3 = nmb_topology_num_l3(t), np = nmb_topology_num_pci(t), nhb = nmb_topology_num_host_bridges(t);
    int ng = nmb_topology_num_gpus(t), nag = nmb_topology_num_all_gpus(t), nnic = nmb_topology_num_nics(t);
    FUZZ_ASSERT(nn >= 1 && nc >= 1 && ncore >= 1 && nl3 >= 0 && np >= 0 && nhb >= 0 && nhb <= np);
    FUZZ_ASSERT(ng >= 0 && ng <= nag && nnic >= 0);
    const nmb_bitmap_t *online = nmb_topology_online_cpus(t);
    FUZZ_ASSERT(nmb_bitmap_count(online) == nc);
    FUZZ_ASSERT(nmb_bitmap_is_subset(nmb_topology_allowed_cpus(t), online));
    for (int i = 0; i < nn; i++) {
        const nmb_node_t *n = nmb_topology_node(t, i);
        FUZZ_ASSERT(n && n->distances && nmb_bitmap_is_subset(&n->cpus, online));
        FUZZ_ASSERT(n->has_cpus == !nmb_bitmap_iszero(&n->cpus));
        FUZZ_ASSERT(nmb_topology_node_index(t, n->id) == i);
        for (int j = 0; j < nn; j++)
            FUZZ_ASSERT(n->distances[j] >= 0 && n->distances[j] <= 255);
    }
    /* Cores and L3 domains partition the online CPUs: no CPU in two. */
    nmb_bitmap_t seen, l3seen;
    nmb_bitmap_zero(&seen);
    nmb_bitmap_zero(&l3seen);
    for (int c = 0; c < ncore; c++) {
        const nmb_core_t *core = nmb_topology_core(t, c);
        FUZZ_ASSERT(!nmb_bitmap_iszero(&core->cpus) && !nmb_bitmap_intersects(&core->cpus, &seen));
        nmb_bitmap_or(&seen, &seen, &core->cpus);
    }
    FUZZ_ASSERT(nmb_bitmap_equal(&seen, online));
    for (int c = 0; c < nl3; c++) {
        FUZZ_ASSERT(!nmb_bitmap_intersects(&nmb_topology_l3(t, c)->cpus, &l3seen));
        nmb_bitmap_or(&l3seen, &l3seen, &nmb_topology_l3(t, c)->cpus);
    }
    for (int i = 0; i < nc; i++) {
        const nmb_cpu_t *c = nmb_topology_cpu(t, i);
        FUZZ_ASSERT(nmb_bitmap_isset(online, c->id) && nmb_topology_cpu_index(t, c->id) == i);
        FUZZ_ASSERT(c->core >= 0 && c->core < ncore);
        FUZZ_ASSERT(nmb_bitmap_isset(&nmb_topology_core(t, c->core)->cpus, c->id));
        FUZZ_ASSERT(c->l3 >= -1 && c->l3 < nl3);
        if (c->l3 >= 0)
            FUZZ_ASSERT(nmb_bitmap_isset(&nmb_topology_l3(t, c->l3)->cpus, c->id));
        FUZZ_ASSERT(c->node == -1 || nmb_topology_node_index(t, c->node) >= 0);
    }
    for (int i = 0; i < np; i++) {
        const nmb_pci_function_t *f = nmb_topology_pci(t, i);
        FUZZ_ASSERT(f->address && f->path && f->parent >= -1 && f->parent < np && f->parent != i);
        FUZZ_ASSERT(f->host_bridge >= 0 && f->host_bridge < nhb && f->depth >= 0);
        FUZZ_ASSERT(nmb_topology_pci_index(t, f->address) == i);
        FUZZ_ASSERT(f->numa_node >= -1 && nmb_bitmap_is_subset(&f->local_cpus, online));
        FUZZ_ASSERT(f->link_speed_gts >= 0 && f->link_width >= -1);
    }
    for (int i = 0; i < nag; i++) {
        const nmb_gpu_t *g = nmb_topology_all_gpu(t, i);
        FUZZ_ASSERT(g->pci >= 0 && g->pci < np && g->physical_index == i);
    }
    for (int i = 0; i < ng; i++) {
        const nmb_gpu_t *g = nmb_topology_gpu(t, i);
        FUZZ_ASSERT(g->index == i && g->physical_index >= 0 && g->physical_index < nag);
        for (int k = 0; k < nnic; k++) {
            int d = nmb_topology_distance(t, i, k);
            FUZZ_ASSERT(d >= NMB_DIST_PIX && d <= NMB_DIST_SYS);
        }
    }
    for (int i = 0; i < nnic; i++) {
        const nmb_nic_t *n = nmb_topology_nic(t, i);
        FUZZ_ASSERT(n->name && n->pci >= -1 && n->pci < np && n->num_ports >= 0);
        FUZZ_ASSERT(nmb_topology_nic_index(t, n->name) >= 0);
        for (int p = 0; p < n->num_ports; p++) {
            FUZZ_ASSERT(n->ports[p].port >= 1 && n->ports[p].port <= 255);
            FUZZ_ASSERT(n->ports[p].rate_gbps >= 0 && n->ports[p].state >= 0 && n->ports[p].state <= 255);
            if (p)
                FUZZ_ASSERT(n->ports[p].port > n->ports[p - 1].port);
        }
    }
}

static void check_plan(const nmb_topology_t *t, const nmb_plan_t *plan, const nmb_plan_options_t *o)
{
    int n = nmb_plan_num_ranks(plan);
    const nmb_bitmap_t *allowed = nmb_topology_allowed_cpus(t), *mems = nmb_topology_allowed_mems(t);
    /* No visible GPU, no rank, and a note that says why. */
    FUZZ_ASSERT((n == 0) == (nmb_topology_num_gpus(t) == 0));
    FUZZ_ASSERT((nmb_plan_note(plan) != NULL) == (n == 0));
    for (int r = 0; r < n; r++) {
        const nmb_rank_plan_t *p = nmb_plan_rank(plan, r);
        FUZZ_ASSERT(p->local_rank == r && p->gpu >= -1 && p->gpu < nmb_topology_num_gpus(t));
        FUZZ_ASSERT(!nmb_bitmap_iszero(&p->cpus) || o->cpu_policy == NMB_CPU_NONE);
        FUZZ_ASSERT(nmb_bitmap_is_subset(&p->cpus, allowed));
        FUZZ_ASSERT(nmb_bitmap_is_subset(&p->mems, mems));
        if (p->mem_policy != NMB_MEM_DEFAULT)
            FUZZ_ASSERT(p->numa_node >= 0 && !nmb_bitmap_iszero(&p->mems));
        FUZZ_ASSERT(p->numa_node == -1 || nmb_topology_node_index(t, p->numa_node) >= 0);
        FUZZ_ASSERT((p->nic == NULL) == (p->nic_port == 0) && (p->nic == NULL) == (p->num_env == 0));
        if (p->nic)
            FUZZ_ASSERT(nmb_topology_nic_index(t, p->nic) >= 0 && p->distance >= NMB_DIST_PIX &&
                        p->distance <= NMB_DIST_SYS);
        FUZZ_ASSERT(p->nic ? p->num_hcas >= 1 : p->num_hcas == 0);
        /* Exclusive ranks never share a CPU, whatever their GPUs' locality. */
        if (o->cpu_policy == NMB_CPU_EXCLUSIVE)
            for (int q = 0; q < r; q++)
                FUZZ_ASSERT(!nmb_bitmap_intersects(&p->cpus, &nmb_plan_rank(plan, q)->cpus));
    }
}

static const int expected_errors[] = {-EINVAL, -ENOENT, -ENOMEM, -ELOOP, -EXDEV, -ENOTDIR, -EISDIR, -EACCES,
                                      -EIO, -ERANGE, -ENAMETOOLONG, -EOVERFLOW};

static void check_error(int err)
{
    int known = 0;
    for (size_t i = 0; i < sizeof expected_errors / sizeof *expected_errors; i++)
        known |= err == expected_errors[i];
    if (!known)
        fprintf(stderr, "unexpected error %d: %s\n", err, nmb_last_error());
    FUZZ_ASSERT(known);
    if (!nmb_last_error()[0])
        fprintf(stderr, "error %d (%s) without a detail\n", err, nmb_strerror(err));
    FUZZ_ASSERT(nmb_last_error()[0] != '\0'); /* every refusal says what was wrong */
}

/* Option sets a tree is planned with: cpu, mem, local ranks (-1: one per
 * GPU plus one), reserve. The first is nmb_plan_options_init's. */
static const int policies[][4] = {
    {NMB_CPU_EXCLUSIVE, NMB_MEM_PREFERRED, 0, 0}, {NMB_CPU_NODE, NMB_MEM_BIND, 0, 0},
    {NMB_CPU_CORE_COMPLEX, NMB_MEM_INTERLEAVE, 0, 1}, {NMB_CPU_SOCKET, NMB_MEM_LOCAL, 0, 0},
    {NMB_CPU_NONE, NMB_MEM_PREFERRED, 0, 0}, {NMB_CPU_EXCLUSIVE, NMB_MEM_PREFERRED, -1, 0},
};
#define NUM_POLICIES (sizeof policies / sizeof *policies)

/* Reads the (damaged) tree with `flags` and plans it with the first
 * `num_policies` option sets: a topology that reads is consistent, a plan
 * keeps to the allowed sets, a refusal says why. */
static void read_and_plan(unsigned flags, size_t num_policies)
{
    nmb_topology_t *t = NULL;
    nmb__clear_error();
    int err = nmb_topology_create(&t, root, NMB_TOPOLOGY_NO_NVML | NMB_TOPOLOGY_NO_VERBS | flags);
    if (err < 0) {
        FUZZ_ASSERT(t == NULL);
        check_error(err);
        return;
    }
    check_topology(t);
    for (size_t p = 0; p < num_policies; p++) {
        nmb_plan_options_t o;
        nmb_plan_options_init(&o);
        o.cpu_policy = policies[p][0];
        o.mem_policy = policies[p][1];
        o.reserve_cores = policies[p][3];
        int gpus[20];
        if (policies[p][2] < 0) {
            /* every visible GPU twice over, but the first rank's GPU for the last */
            int ng = nmb_topology_num_gpus(t);
            o.local_world_size = ng + 1;
            for (int r = 0; r <= ng && r < 20; r++)
                gpus[r] = r < ng ? r : 0;
            o.rank_gpus = ng ? gpus : NULL;
            if (ng >= 20)
                continue;
        }
        nmb_plan_t *plan = NULL;
        nmb__clear_error();
        int perr = nmb_plan_create(&plan, t, &o);
        if (perr < 0) {
            FUZZ_ASSERT(plan == NULL);
            check_error(perr);
        } else {
            check_plan(t, plan, &o);
        }
        nmb_plan_destroy(plan);
    }
    nmb_topology_destroy(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t touched[8], ntouched = 0, i = 0;
    char cvd[300];
    int have_cvd = 0;
    while (ntouched < 6 && i + 3 <= size) {
        int op = data[i] % 8;
        size_t plen = data[i + 1];
        i += 2;
        if (i + plen + 1 > size)
            break;
        const char *path = (const char *)data + i;
        i += plen;
        size_t len = data[i++];
        if (i + len > size)
            len = size - i;
        const char *payload = (const char *)data + i;
        i += len;
        if (op == 7) {
            memcpy(cvd, payload, len);
            cvd[len] = '\0';
            have_cvd = 1;
            continue;
        }
        size_t k = pick(path, plen);
        int again = 0;
        for (size_t j = 0; j < ntouched; j++)
            again |= touched[j] == k;
        if (!again)
            touched[ntouched++] = k;
        apply(op, &entries[k], payload, len);
    }
    if (have_cvd)
        setenv("CUDA_VISIBLE_DEVICES", cvd, 1);

    read_and_plan(0, NUM_POLICIES);
    /* The plan-only read (pin_rank's, which passes over bridges) of the same
     * tree, with the default options. It may read where the full read
     * refused: it reads less. */
    read_and_plan(NMB_TOPOLOGY_PLAN_ONLY, 1);
    for (size_t j = 0; j < ntouched; j++)
        restore(&entries[touched[j]]);
    if (have_cvd)
        unsetenv("CUDA_VISIBLE_DEVICES");
    return 0;
}
