/* numabind's native command line: the text outputs and Python's escaping.
 *
 * `show` as cli.render() prints it, `plan`'s table and notes, the repr of a
 * RankPlan, and _printable.printable / shell_quote for ASCII text (a byte
 * >= 0x80 never reaches a terminal from here: main.c hands such output to
 * Python, which escapes by Unicode's isprintable).
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ------------------------------------------------------------- */

static void buf_grow(buf_t *b, size_t need)
{
    if (b->len + need + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        static const char msg[] = "numabind: error: out of memory\n";
        fwrite(msg, 1, sizeof msg - 1, stderr);
        exit(EXIT_INPUT);
    }
    b->p = p;
    b->cap = cap;
}

void buf_put(buf_t *b, const char *s, size_t n)
{
    buf_grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buf_puts(buf_t *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    buf_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_cpulist(buf_t *b, const nmb_bitmap_t *set)
{
    char small[256];
    int n = nmb_bitmap_format_list(set, small, sizeof small);
    if (n < (int)sizeof small) {
        buf_put(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        buf_grow(b, (size_t)-1 / 2);   /* reports out of memory */
    nmb_bitmap_format_list(set, big, (size_t)n + 1);
    buf_put(b, big, (size_t)n);
    free(big);
}

void buf_free(buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int buf_nonascii(const buf_t *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->p[i] >= 0x80)
            return 1;
    return 0;
}

/* ---- escaping ------------------------------------------------------------ */

static int printable_ascii(unsigned char c)
{
    return c >= 0x20 && c < 0x7f;
}

/* repr(c)[1:-1] for one non-printable ASCII character */
static void put_char_escape(buf_t *b, unsigned char c)
{
    switch (c) {
    case '\t': buf_puts(b, "\\t"); break;
    case '\n': buf_puts(b, "\\n"); break;
    case '\r': buf_puts(b, "\\r"); break;
    default: buf_printf(b, "\\x%02x", c); break;
    }
}

void put_printable(buf_t *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\')
            buf_puts(b, "\\\\");
        else if (printable_ascii(*p) || *p >= 0x80)   /* >= 0x80: handed over */
            buf_put(b, (const char *)p, 1);
        else
            put_char_escape(b, *p);
    }
}

static int all_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!printable_ascii(*p) && *p < 0x80)
            return 0;
    return 1;
}

void put_shell_quote(buf_t *b, const char *s)
{
    if (all_printable(s)) {
        /* shlex.quote: [\w@%+=:,./-] (re.ASCII) alone is left bare */
        if (!*s) {
            buf_puts(b, "''");
            return;
        }
        int safe = 1;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  strchr("_@%+=:,./-", *p)))
                safe = 0;
        if (safe) {
            buf_puts(b, s);
            return;
        }
        buf_puts(b, "'");
        for (const char *p = s; *p; p++) {
            if (*p == '\'')
                buf_puts(b, "'\"'\"'");
            else
                buf_put(b, p, 1);
        }
        buf_puts(b, "'");
        return;
    }
    buf_puts(b, "$'");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\' || *p == '\'') {
            buf_puts(b, "\\");
            buf_put(b, (const char *)p, 1);
        } else if (printable_ascii(*p) || *p >= 0x80) {
            buf_put(b, (const char *)p, 1);
        } else {
            buf_printf(b, "\\x%02x", *p);
        }
    }
    buf_puts(b, "'");
}

void put_repr(buf_t *b, const char *s)
{
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    buf_put(b, &q, 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\')
            buf_puts(b, "\\\\");
        else if (*p == (unsigned char)q)
            buf_printf(b, "\\%c", q);
        else if (printable_ascii(*p) || *p >= 0x80)
            buf_put(b, (const char *)p, 1);
        else
            put_char_escape(b, *p);
    }
    buf_put(b, &q, 1);
}

/* ---- tables (cli._table) ------------------------------------------------- */

typedef struct table {
    int cols, n, cap;
    char **cells;        /* escaped, malloc'd */
} table_t;

static void table_cell(table_t *t, const char *raw)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        char **c = realloc(t->cells, (size_t)t->cap * sizeof *c);
        if (!c) {
            buf_t none = {0};
            buf_grow(&none, (size_t)-1 / 2);
        }
        t->cells = c;
    }
    buf_t e = {0};
    buf_puts(&e, "");
    put_printable(&e, raw);
    t->cells[t->n++] = e.p;
}

static void table_cellf(table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void table_cellf(table_t *t, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    table_cell(t, tmp);
}

static void table_cell_buf(table_t *t, buf_t *raw)
{
    buf_puts(raw, "");
    table_cell(t, raw->p);
    buf_free(raw);
}

/* Rows padded to each column's width, two spaces apart, right-stripped. */
static void table_render(buf_t *out, table_t *t)
{
    size_t *w = calloc((size_t)t->cols, sizeof *w);
    for (int i = 0; i < t->n; i++) {
        size_t l = strlen(t->cells[i]);
        if (l > w[i % t->cols])
            w[i % t->cols] = l;
    }
    for (int r = 0; r < t->n / t->cols; r++) {
        if (r)
            buf_puts(out, "\n");
        size_t start = out->len;
        for (int c = 0; c < t->cols; c++) {
            const char *s = t->cells[r * t->cols + c];
            if (c)
                buf_puts(out, "  ");
            buf_puts(out, s);
            for (size_t k = strlen(s); k < w[c]; k++)
                buf_puts(out, " ");
        }
        while (out->len > start && out->p[out->len - 1] == ' ')
            out->len--;
        out->p[out->len] = '\0';
    }
    for (int i = 0; i < t->n; i++)
        free(t->cells[i]);
    free(t->cells);
    free(w);
    memset(t, 0, sizeof *t);
}

/* ---- show (cli.render) ---------------------------------------------------- */

static const char *node_text(int n, char *tmp)
{
    if (n < 0)
        return "N/A";
    sprintf(tmp, "%d", n);
    return tmp;
}

static const char *port_state(int state, char *tmp)
{
    static const char *names[] = {"NOP", "DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER"};
    if (state >= 0 && state <= 5)
        return names[state];
    sprintf(tmp, "%d", state);
    return tmp;
}

static const char *LEGEND =
    "Legend:\n"
    "  PIX  = at most one PCIe switch between them\n"
    "  PXB  = several PCIe bridges, no host bridge\n"
    "  PHB  = through a PCIe host bridge (the CPU)\n"
    "  NODE = between PCIe host bridges of one NUMA node\n"
    "  SYS  = across NUMA nodes (the SMP interconnect), or locality unknown";

void text_show(buf_t *out, const nmb_topology_t *t)
{
    char tmp[64];
    int live = nmb_topology_is_live(t);
    buf_printf(out, "numabind %s: topology of ", NMB_VERSION_STRING);
    if (live)
        buf_puts(out, "this host");
    else
        put_printable(out, nmb_topology_fsroot(t));

    int ngpus = nmb_topology_num_gpus(t), nnics = nmb_topology_num_nics(t);
    int nall = nmb_topology_num_all_gpus(t), accessible = 0, closed = 0;
    for (int i = 0; i < nall; i++) {
        if (nmb_topology_all_gpu(t, i)->accessible)
            accessible++;
        else
            closed++;
    }
    /* On the live host the GPU x GPU block too (cli.render): NV# where NVLink
     * joins two GPUs, else their PCI class; a tree cannot say, so not there. */
    int gpu_block = live;
    if (ngpus) {
        table_t tb = {.cols = nnics + 3 + (gpu_block ? ngpus : 0)};
        table_cell(&tb, "");
        for (int h = 0; gpu_block && h < ngpus; h++)
            table_cellf(&tb, "GPU%d", nmb_topology_gpu(t, h)->index);
        for (int n = 0; n < nnics; n++)
            table_cell(&tb, nmb_topology_nic(t, n)->name);
        table_cell(&tb, "CPU Affinity");
        table_cell(&tb, "NUMA Affinity");
        for (int g = 0; g < ngpus; g++) {
            const nmb_gpu_t *gpu = nmb_topology_gpu(t, g);
            table_cellf(&tb, "GPU%d", gpu->index);
            for (int h = 0; gpu_block && h < ngpus; h++) {
                int links = h == g ? 0 : nmb_topology_gpu_link(t, g, h);
                if (h == g)
                    table_cell(&tb, "X");
                else if (links > 0)
                    table_cellf(&tb, "NV%d", links);
                else
                    table_cell(&tb, nmb_distance_name(nmb_topology_gpu_distance(t, g, h)));
            }
            for (int n = 0; n < nnics; n++)
                table_cell(&tb, nmb_distance_name(nmb_topology_distance(t, g, n)));
            buf_t c = {0};
            buf_cpulist(&c, &nmb_topology_pci(t, gpu->pci)->local_cpus);
            if (!c.len)
                buf_puts(&c, "N/A");
            table_cell_buf(&tb, &c);
            table_cell(&tb, node_text(gpu->numa_node, tmp));
        }
        buf_puts(out, "\n\n");
        table_render(out, &tb);
        buf_puts(out, "\n");
        for (int g = 0; g < ngpus; g++) {
            const nmb_gpu_t *gpu = nmb_topology_gpu(t, g);
            buf_t line = {0};
            buf_printf(&line, "GPU%d: %s", gpu->index, gpu->address);
            if (gpu->uuid && *gpu->uuid)
                buf_printf(&line, "  %s", gpu->uuid);
            buf_puts(out, "\n");
            put_printable(out, line.p);
            buf_free(&line);
        }
        if (accessible - ngpus)
            buf_printf(out, "\n(%d more GPU(s) hidden by CUDA_VISIBLE_DEVICES)", accessible - ngpus);
    } else {
        buf_puts(out, "\n\nNo NVIDIA GPU found");
        if (accessible)
            buf_printf(out, " (%d hidden by CUDA_VISIBLE_DEVICES).", accessible);
        else
            buf_puts(out, ".");
    }
    if (closed) {
        buf_printf(out, "\nThis process cannot open %d of the node's %d GPUs (not in "
                   "/proc/driver/nvidia/gpus or no /dev/nvidia node: another container's); NICs are still "
                   "assigned over all of them:", closed, nall);
        for (int i = 0; i < nall; i++) {
            const nmb_gpu_t *gpu = nmb_topology_all_gpu(t, i);
            if (gpu->accessible)
                continue;
            buf_puts(out, "\n  ");
            put_printable(out, gpu->address);
            buf_printf(out, "  NUMA %s", node_text(gpu->numa_node, tmp));
        }
    }
    if (nnics) {
        static const char *head[] = {"NIC", "PCI", "NUMA", "netdev", "port", "state", "link", "rate"};
        table_t tb = {.cols = 8};
        for (int i = 0; i < 8; i++)
            table_cell(&tb, head[i]);
        for (int n = 0; n < nnics; n++) {
            const nmb_nic_t *nic = nmb_topology_nic(t, n);
            for (int p = 0; p < (nic->num_ports ? nic->num_ports : 1); p++) {
                const nmb_nic_port_t *port = nic->num_ports ? &nic->ports[p] : NULL;
                buf_t name = {0};
                buf_puts(&name, nic->name);
                if (nic->is_virtual)
                    buf_puts(&name, " (soft)");
                table_cell_buf(&tb, &name);
                table_cell(&tb, nic->address && *nic->address ? nic->address : "-");
                table_cell(&tb, node_text(nic->numa_node, tmp));
                table_cell(&tb, nic->netdev && *nic->netdev ? nic->netdev : "-");
                if (port) {
                    table_cellf(&tb, "%d", port->port);
                    table_cell(&tb, port_state(port->state, tmp));
                    table_cell(&tb, port->link_layer == NMB_LINK_INFINIBAND ? "InfiniBand"
                                    : port->link_layer == NMB_LINK_ETHERNET ? "Ethernet" : "?");
                    table_cell(&tb, port->rate && *port->rate ? port->rate : "?");
                } else {
                    for (int k = 0; k < 4; k++)
                        table_cell(&tb, "-");
                }
            }
        }
        buf_puts(out, "\n\n");
        table_render(out, &tb);
    } else {
        buf_puts(out, "\n\nNo RDMA NIC found (/sys/class/infiniband is empty or absent).");
    }
    {
        static const char *head[] = {"NUMA node", "CPUs", "count", "memory", "distances"};
        table_t tb = {.cols = 5};
        int nn = nmb_topology_num_nodes(t);
        for (int i = 0; i < 5; i++)
            table_cell(&tb, head[i]);
        for (int i = 0; i < nn; i++) {
            const nmb_node_t *node = nmb_topology_node(t, i);
            table_cellf(&tb, "%d", node->id);
            buf_t c = {0};
            if (node->has_cpus)
                buf_cpulist(&c, &node->cpus);
            else
                buf_puts(&c, "(no CPUs)");
            table_cell_buf(&tb, &c);
            table_cellf(&tb, "%d", nmb_bitmap_count(&node->cpus));
            if (node->mem_total_bytes)
                table_cellf(&tb, "%.1f GiB", (double)node->mem_total_bytes / (double)(1u << 30));
            else
                table_cell(&tb, "unknown");
            buf_t d = {0};
            for (int j = 0; j < nn; j++)
                buf_printf(&d, j ? " %d" : "%d", node->distances[j]);
            table_cell_buf(&tb, &d);
        }
        buf_puts(out, "\n\n");
        table_render(out, &tb);
    }
    const char *source;
    switch (nmb_topology_allowed_source(t)) {
    case NMB_ALLOWED_KERNEL: source = "cpuset, from the kernel"; break;
    case NMB_ALLOWED_CGROUP: source = "cgroup cpuset"; break;
    case NMB_ALLOWED_AFFINITY:
        source = live ? "affinity: no cpuset readable" : "proc/self/status: no cgroup cpuset";
        break;
    case NMB_ALLOWED_ONLINE: source = "every online CPU: no proc/self/status in the tree"; break;
    default: source = "?"; break;
    }
    buf_puts(out, "\n\nAllowed CPUs: ");
    buf_cpulist(out, nmb_topology_allowed_cpus(t));
    buf_printf(out, " (%s)   allowed memory nodes: ", source);
    buf_cpulist(out, nmb_topology_allowed_mems(t));
    if (!nmb_bitmap_equal(nmb_topology_affinity_cpus(t), nmb_topology_allowed_cpus(t))) {
        buf_puts(out, "\nBound now to CPUs ");
        buf_cpulist(out, nmb_topology_affinity_cpus(t));
        buf_puts(out, " (a launcher's binding?): plans use the allowed CPUs");
    }
    if (ngpus && (nnics || gpu_block)) {
        buf_puts(out, "\n\n");
        buf_puts(out, LEGEND);
        if (gpu_block)
            buf_puts(out, "\n  NV#  = a bonded set of # NVLinks (through NVSwitches: each GPU's switch links)\n"
                          "  X    = itself");
    }
    buf_puts(out, "\n");
}

/* ---- plan ----------------------------------------------------------------- */

void text_plan(buf_t *out, const nmb_plan_t *plan, int first, int count)
{
    static const char *head[] = {"rank", "GPU", "PCI", "NUMA", "CPUs", "memory", "NIC", "class"};
    char tmp[64];
    table_t tb = {.cols = 8};
    for (int i = 0; i < 8; i++)
        table_cell(&tb, head[i]);
    for (int i = first; i < first + count; i++) {
        const nmb_rank_plan_t *r = nmb_plan_rank(plan, i);
        table_cellf(&tb, "%d", r->local_rank);
        if (r->gpu < 0)
            table_cell(&tb, "-");
        else
            table_cellf(&tb, "%d", r->gpu);
        table_cell(&tb, r->gpu_address && *r->gpu_address ? r->gpu_address : "-");
        table_cell(&tb, node_text(r->numa_node, tmp));
        buf_t c = {0};
        buf_cpulist(&c, &r->cpus);
        table_cell_buf(&tb, &c);
        buf_t m = {0};
        buf_printf(&m, "%s ", nmb_mem_policy_name(r->mem_policy));
        buf_cpulist(&m, &r->mems);
        table_cell_buf(&tb, &m);
        if (r->nic && *r->nic) {
            buf_t n = {0};
            buf_printf(&n, "%s:%d", r->nic, r->nic_port);
            table_cell_buf(&tb, &n);
        } else {
            table_cell(&tb, "-");
        }
        table_cell(&tb, r->distance > 0 ? nmb_distance_name(r->distance) : "-");
    }
    table_render(out, &tb);
    for (int i = first; i < first + count; i++) {
        const nmb_rank_plan_t *r = nmb_plan_rank(plan, i);
        buf_t line = {0};
        if (r->num_hcas > 1) {
            buf_printf(&line, "rank %d: equally close NICs ", r->local_rank);
            for (int j = 0; j < r->num_hcas; j++)
                buf_printf(&line, j ? ", %s" : "%s", r->hcas[j]);
            buf_printf(&line, " (NVSHMEM gets %s:%d)", r->nic ? r->nic : "None", r->nic_port);
            buf_puts(out, "\n");
            put_printable(out, line.p);
            line.len = 0;
        }
        if (r->note && *r->note) {
            buf_printf(&line, "rank %d: %s", r->local_rank, r->note);
            buf_puts(out, "\n");
            put_printable(out, line.p);
            line.len = 0;
        }
        for (int j = 0; j < r->num_env; j++) {
            if (!r->env[j].kept)
                continue;
            buf_printf(&line, "rank %d: keeping %s=%s from the environment", r->local_rank,
                       r->env[j].name, r->env[j].user ? r->env[j].user : "None");
            buf_puts(out, "\n");
            put_printable(out, line.p);
            line.len = 0;
        }
        buf_free(&line);
    }
    buf_puts(out, "\n");
}

void text_rank_repr(buf_t *out, const nmb_rank_plan_t *r, int applied)
{
    buf_printf(out, "<RankPlan rank %d: GPU ", r->local_rank);
    if (r->gpu < 0)
        buf_puts(out, "None");
    else
        buf_printf(out, "%d", r->gpu);
    buf_printf(out, " %s, ", r->gpu_address && *r->gpu_address ? r->gpu_address : "-");
    if (r->numa_node < 0)
        buf_puts(out, "locality unknown");
    else
        buf_printf(out, "node %d", r->numa_node);
    buf_puts(out, ", CPUs ");
    buf_cpulist(out, &r->cpus);
    buf_printf(out, ", memory %s ", nmb_mem_policy_name(r->mem_policy));
    buf_cpulist(out, &r->mems);
    buf_puts(out, ", ");
    if (r->nic && *r->nic)
        buf_printf(out, "%s:%d (%s)", r->nic, r->nic_port,
                   r->distance > 0 ? nmb_distance_name(r->distance) : "None");
    else
        buf_puts(out, "no RDMA NIC");
    buf_puts(out, applied ? ", applied>" : ">");
}
