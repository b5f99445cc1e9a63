/* numabind's native command line: JSON as Python's json.dumps(obj, indent=2)
 * writes it (ensure_ascii: control characters and DEL as \u00XX, the short
 * forms \n \r \t \b \f \" \\; floats as Python's repr; "[]" and "{}" when
 * empty), and the two documents it prints: Topology.to_dict() for
 * `show --json` and {"ranks": [RankPlan.to_dict()...], "note": ...} for
 * `plan --json`, keys in the order Python gives them.
 *
 * A byte >= 0x80 is copied as it is: main.c hands such output to Python.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 16

typedef struct json {
    buf_t *b;
    int depth;
    int count[JSON_MAX_DEPTH];   /* items written in each open container */
    int after_key;
} json_t;

static void j_indent(json_t *j)
{
    buf_puts(j->b, "\n");
    for (int i = 0; i < j->depth; i++)
        buf_puts(j->b, "  ");
}

/* Before a value: the separator and indentation, unless a key just went. */
static void j_pre(json_t *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth > 0) {
        if (j->count[j->depth]++)
            buf_puts(j->b, ",");
        j_indent(j);
    }
}

static void j_open(json_t *j, const char *c)
{
    j_pre(j);
    buf_puts(j->b, c);
    j->depth++;
    j->count[j->depth] = 0;
}

static void j_close(json_t *j, const char *c)
{
    int n = j->count[j->depth];
    j->depth--;
    if (n)
        j_indent(j);
    buf_puts(j->b, c);
}

static void j_rawstr(buf_t *b, const char *s)
{
    buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': buf_puts(b, "\\\""); break;
        case '\\': buf_puts(b, "\\\\"); break;
        case '\n': buf_puts(b, "\\n"); break;
        case '\r': buf_puts(b, "\\r"); break;
        case '\t': buf_puts(b, "\\t"); break;
        case '\b': buf_puts(b, "\\b"); break;
        case '\f': buf_puts(b, "\\f"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                buf_printf(b, "\\u%04x", *p);
            else
                buf_put(b, (const char *)p, 1);   /* >= 0x80: handed over */
        }
    }
    buf_puts(b, "\"");
}

static void j_key(json_t *j, const char *k)
{
    j_pre(j);
    j_rawstr(j->b, k);
    buf_puts(j->b, ": ");
    j->after_key = 1;
}

static void j_str(json_t *j, const char *s)   /* NULL: null */
{
    j_pre(j);
    if (s)
        j_rawstr(j->b, s);
    else
        buf_puts(j->b, "null");
}

static void j_int(json_t *j, long long v)
{
    j_pre(j);
    buf_printf(j->b, "%lld", v);
}

static void j_intnull(json_t *j, long long v)   /* negative: null */
{
    if (v < 0) {
        j_str(j, NULL);
        return;
    }
    j_int(j, v);
}

static void j_bool(json_t *j, int v)
{
    j_pre(j);
    buf_puts(j->b, v ? "true" : "false");
}

/* repr(float): the shortest digits that read back the same; fixed notation
 * for decimal exponents -4 .. 15 (with ".0" when whole), else d.ddde+XX. */
static void j_float(json_t *j, double v)
{
    j_pre(j);
    buf_t *b = j->b;
    if (isnan(v)) {
        buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        buf_puts(b, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (signbit(v))
        buf_puts(b, "-");
    v = fabs(v);
    if (v == 0) {
        buf_puts(b, "0.0");
        return;
    }
    char s[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*e", prec - 1, v);
        if (strtod(s, NULL) == v)
            break;
    }
    /* s: d[.ddd]e[+-]XX */
    char digits[32];
    int nd = 0;
    char *e = strchr(s, 'e');
    for (char *p = s; p < e; p++)
        if (*p != '.')
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int exp10 = atoi(e + 1);
    int decpt = exp10 + 1;
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            buf_puts(b, "0.");
            for (int i = 0; i < -decpt; i++)
                buf_puts(b, "0");
            buf_puts(b, digits);
        } else if (decpt >= nd) {
            buf_puts(b, digits);
            for (int i = nd; i < decpt; i++)
                buf_puts(b, "0");
            buf_puts(b, ".0");
        } else {
            buf_put(b, digits, (size_t)decpt);
            buf_puts(b, ".");
            buf_puts(b, digits + decpt);
        }
    } else {
        buf_put(b, digits, 1);
        if (nd > 1) {
            buf_puts(b, ".");
            buf_puts(b, digits + 1);
        }
        buf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
}

static void j_set(json_t *j, const nmb_bitmap_t *set)
{
    j_open(j, "[");
    for (int i = nmb_bitmap_next(set, 0); i >= 0; i = nmb_bitmap_next(set, i + 1))
        j_int(j, i);
    j_close(j, "]");
}

/* ---- show --json: Topology.to_dict() --------------------------------------- */

static void j_gpu(json_t *j, const nmb_topology_t *t, const nmb_gpu_t *g, int visible)
{
    const nmb_pci_function_t *f = nmb_topology_pci(t, g->pci);
    j_open(j, "{");
    j_key(j, "index"); j_int(j, g->index);
    j_key(j, "physical_index"); j_int(j, g->physical_index);
    j_key(j, "pci_address"); j_str(j, g->address);
    j_key(j, "numa_node"); j_intnull(j, g->numa_node);
    j_key(j, "uuid"); j_str(j, g->uuid);
    j_key(j, "local_cpus"); j_set(j, &f->local_cpus);
    j_key(j, "device"); j_int(j, f->device);
    j_key(j, "accessible"); j_bool(j, g->accessible);
    j_key(j, "minor"); j_intnull(j, g->minor);
    if (visible >= 0) {
        /* {nic.name: class}: a name twice keeps its first place, its last class */
        int nn = nmb_topology_num_nics(t);
        j_key(j, "distances");
        j_open(j, "{");
        for (int n = 0; n < nn; n++) {
            const char *name = nmb_topology_nic(t, n)->name;
            int seen = 0;
            for (int m = 0; m < n && !seen; m++)
                seen = strcmp(nmb_topology_nic(t, m)->name, name) == 0;
            if (seen)
                continue;
            int last = n;
            for (int m = n + 1; m < nn; m++)
                if (strcmp(nmb_topology_nic(t, m)->name, name) == 0)
                    last = m;
            j_key(j, name);
            j_str(j, nmb_distance_name(nmb_topology_distance(t, visible, last)));
        }
        j_close(j, "}");
    }
    j_close(j, "}");
}

void json_show(buf_t *out, const nmb_topology_t *t)
{
    static const char *states[] = {"NOP", "DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER"};
    json_t jj = {.b = out}, *j = &jj;
    int nn = nmb_topology_num_nodes(t);
    j_open(j, "{");
    j_key(j, "fsroot"); j_str(j, nmb_topology_fsroot(t));
    j_key(j, "live"); j_bool(j, nmb_topology_is_live(t));
    j_key(j, "nodes");
    j_open(j, "[");
    for (int i = 0; i < nn; i++) {
        const nmb_node_t *node = nmb_topology_node(t, i);
        j_open(j, "{");
        j_key(j, "id"); j_int(j, node->id);
        j_key(j, "cpus"); j_set(j, &node->cpus);
        j_key(j, "mem_total_bytes");
        j_pre(j);
        buf_printf(out, "%llu", (unsigned long long)node->mem_total_bytes);
        j_key(j, "has_cpus"); j_bool(j, node->has_cpus);
        j_key(j, "distances");
        j_open(j, "[");
        for (int k = 0; k < nn; k++)
            j_int(j, node->distances[k]);
        j_close(j, "]");
        j_close(j, "}");
    }
    j_close(j, "]");
    j_key(j, "cpus");
    j_open(j, "[");
    for (int i = 0; i < nmb_topology_num_cpus(t); i++) {
        const nmb_cpu_t *c = nmb_topology_cpu(t, i);
        j_open(j, "{");
        j_key(j, "id"); j_int(j, c->id);
        j_key(j, "node"); j_intnull(j, c->node);
        j_key(j, "package"); j_int(j, c->package);
        j_key(j, "die"); j_int(j, c->die);
        j_key(j, "core_id"); j_int(j, c->core_id);
        j_key(j, "core"); j_int(j, c->core);
        j_key(j, "l3"); j_intnull(j, c->l3);
        j_close(j, "}");
    }
    j_close(j, "]");
    j_key(j, "cores");
    j_open(j, "[");
    for (int i = 0; i < nmb_topology_num_cores(t); i++)
        j_set(j, &nmb_topology_core(t, i)->cpus);
    j_close(j, "]");
    j_key(j, "l3");
    j_open(j, "[");
    for (int i = 0; i < nmb_topology_num_l3(t); i++)
        j_set(j, &nmb_topology_l3(t, i)->cpus);
    j_close(j, "]");
    j_key(j, "pci");
    j_open(j, "[");
    for (int i = 0; i < nmb_topology_num_pci(t); i++) {
        const nmb_pci_function_t *f = nmb_topology_pci(t, i);
        j_open(j, "{");
        j_key(j, "address"); j_str(j, f->address);
        j_key(j, "path"); j_str(j, f->path);
        j_key(j, "vendor"); j_int(j, f->vendor);
        j_key(j, "device"); j_int(j, f->device);
        j_key(j, "class_code"); j_int(j, f->class_code);
        j_key(j, "numa_node"); j_intnull(j, f->numa_node);
        j_key(j, "parent"); j_str(j, f->parent < 0 ? NULL : nmb_topology_pci(t, f->parent)->address);
        j_key(j, "host_bridge"); j_str(j, nmb_topology_host_bridge(t, f->host_bridge)->name);
        j_key(j, "depth"); j_int(j, f->depth);
        j_key(j, "is_bridge"); j_bool(j, f->is_bridge);
        j_key(j, "link_width"); j_intnull(j, f->link_width);
        j_key(j, "link_speed_gts");
        if (f->link_speed_gts <= 0)
            j_str(j, NULL);
        else
            j_float(j, f->link_speed_gts);
        j_key(j, "local_cpus"); j_set(j, &f->local_cpus);
        j_close(j, "}");
    }
    j_close(j, "]");
    j_key(j, "gpus");
    j_open(j, "[");
    for (int i = 0; i < nmb_topology_num_gpus(t); i++)
        j_gpu(j, t, nmb_topology_gpu(t, i), i);
    j_close(j, "]");
    j_key(j, "all_gpus");
    j_open(j, "[");
    for (int i = 0; i < nmb_topology_num_all_gpus(t); i++)
        j_gpu(j, t, nmb_topology_all_gpu(t, i), -1);
    j_close(j, "]");
    j_key(j, "nics");
    j_open(j, "[");
    for (int i = 0; i < nmb_topology_num_nics(t); i++) {
        const nmb_nic_t *n = nmb_topology_nic(t, i);
        j_open(j, "{");
        j_key(j, "name"); j_str(j, n->name);
        j_key(j, "pci_address"); j_str(j, n->address);
        j_key(j, "numa_node"); j_intnull(j, n->numa_node);
        j_key(j, "netdev"); j_str(j, n->netdev);
        j_key(j, "virtual"); j_bool(j, n->is_virtual);
        j_key(j, "source"); j_str(j, n->from_verbs ? "verbs" : "sysfs");
        j_key(j, "ports");
        j_open(j, "[");
        for (int p = 0; p < n->num_ports; p++) {
            const nmb_nic_port_t *port = &n->ports[p];
            char tmp[32];
            j_open(j, "{");
            j_key(j, "port"); j_int(j, port->port);
            j_key(j, "state");
            if (port->state >= 0 && port->state <= 5) {
                j_str(j, states[port->state]);
            } else {
                snprintf(tmp, sizeof tmp, "%d", port->state);
                j_str(j, tmp);
            }
            j_key(j, "phys_state"); j_int(j, port->phys_state);
            j_key(j, "link_layer");
            j_str(j, port->link_layer == NMB_LINK_INFINIBAND ? "InfiniBand"
                     : port->link_layer == NMB_LINK_ETHERNET ? "Ethernet" : NULL);
            j_key(j, "rate_gbps"); j_float(j, port->rate_gbps);
            j_key(j, "rate"); j_str(j, port->rate);
            j_close(j, "}");
        }
        j_close(j, "]");
        j_close(j, "}");
    }
    j_close(j, "]");
    j_key(j, "online_cpus"); j_set(j, nmb_topology_online_cpus(t));
    j_key(j, "allowed_cpus"); j_set(j, nmb_topology_allowed_cpus(t));
    j_key(j, "allowed_mems"); j_set(j, nmb_topology_allowed_mems(t));
    j_key(j, "affinity_cpus"); j_set(j, nmb_topology_affinity_cpus(t));
    j_key(j, "allowed_source"); j_str(j, nmb_allowed_source_name(nmb_topology_allowed_source(t)));
    j_close(j, "}");
    buf_puts(out, "\n");
}

/* ---- plan --json ------------------------------------------------------------ */

/* {name: value} over the rank's variables kept (or not); a name twice keeps
 * its first place and its last value, as a dict does. */
static void j_env(json_t *j, const nmb_rank_plan_t *r, int kept)
{
    j_open(j, "{");
    for (int i = 0; i < r->num_env; i++) {
        if (!r->env[i].kept != !kept)
            continue;
        int seen = 0;
        for (int m = 0; m < i && !seen; m++)
            seen = !r->env[m].kept == !kept && strcmp(r->env[m].name, r->env[i].name) == 0;
        if (seen)
            continue;
        int last = i;
        for (int m = i + 1; m < r->num_env; m++)
            if (!r->env[m].kept == !kept && strcmp(r->env[m].name, r->env[i].name) == 0)
                last = m;
        j_key(j, r->env[i].name);
        j_str(j, kept ? r->env[last].user : r->env[last].value);
    }
    j_close(j, "}");
}

void json_plan(buf_t *out, const nmb_plan_t *plan, int first, int count)
{
    json_t jj = {.b = out}, *j = &jj;
    j_open(j, "{");
    j_key(j, "ranks");
    j_open(j, "[");
    for (int i = first; i < first + count; i++) {
        const nmb_rank_plan_t *r = nmb_plan_rank(plan, i);
        j_open(j, "{");
        j_key(j, "local_rank"); j_int(j, r->local_rank);
        j_key(j, "gpu_pci"); j_str(j, r->gpu_address);
        j_key(j, "numa_node"); j_intnull(j, r->numa_node);
        j_key(j, "cpus"); j_set(j, &r->cpus);
        j_key(j, "mem_nodes"); j_set(j, &r->mems);
        j_key(j, "mem_policy"); j_str(j, nmb_mem_policy_name(r->mem_policy));
        j_key(j, "hca"); j_str(j, r->nic);
        j_key(j, "hca_port");
        if (r->nic)
            j_int(j, r->nic_port);
        else
            j_str(j, NULL);
        j_key(j, "distance"); j_str(j, r->distance > 0 ? nmb_distance_name(r->distance) : NULL);
        j_key(j, "env"); j_env(j, r, 0);
        j_key(j, "gpu"); j_intnull(j, r->gpu);
        j_key(j, "cpu_policy"); j_str(j, nmb_cpu_policy_name(r->cpu_policy));
        j_key(j, "locality"); j_str(j, r->numa_node < 0 ? "unknown" : "node");
        j_key(j, "kept_env"); j_env(j, r, 1);
        j_key(j, "note"); j_str(j, r->note);
        j_key(j, "rank_source"); j_str(j, NULL);
        j_key(j, "applied"); j_bool(j, 0);
        j_key(j, "hcas");
        j_open(j, "[");
        for (int k = 0; k < r->num_hcas; k++)
            j_str(j, r->hcas[k]);
        j_close(j, "]");
        j_close(j, "}");
    }
    j_close(j, "]");
    j_key(j, "note"); j_str(j, nmb_plan_note(plan));
    j_close(j, "}");
    buf_puts(out, "\n");
}
