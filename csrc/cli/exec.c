/* numabind's native command line: `env` and `exec`, which are
 * placement.pin_rank (dry run for `env`) followed by the export lines, or by
 * applying the plan, exporting the rank's NIC variables and exec'ing the
 * command as cli._cmd_exec does: the same warnings (what pin_rank logs at
 * WARNING, printed as Python's unconfigured logging prints them: the message
 * alone), the same errors and exit statuses, and the command searched on
 * PATH as os.execvp searches it (no /bin/sh fallback: a script without
 * "#!" is 126, "Exec format error").
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What pin_rank gives: a plan and the rank in it, or the unpinned rank. */
typedef struct pinned {
    nmb_plan_t *plan;
    const nmb_rank_plan_t *rank;   /* NULL: not pinned (no rank planned) */
    nmb_rank_plan_t unpinned;      /* the RankPlan _unpinned() returns */
    const char *unpinned_why;      /* its note after "not pinned: " (owned) */
    int local_rank;
    const char *source;            /* rank_source: "argument" or the launcher variable */
} pinned_t;

/* pin_rank logs a rank's note at WARNING, unless every part of it is an
 * override the caller gave ("CPUs 0-3 given"): that is INFO, not printed. */
static int only_given(const char *note)
{
    const char *part = note;
    for (;;) {
        const char *end = strstr(part, "; ");
        size_t len = end ? (size_t)(end - part) : strlen(part);
        if (len < 6 || memcmp(part + len - 6, " given", 6) != 0)
            return 0;
        if (!end)
            return 1;
        part = end + 2;
    }
}

/* The CLI's _topology then pin_rank, up to applying; 0 or an exit status,
 * with stderr's text in err. */
static int pin_rank(const cli_options_t *o, pinned_t *p, buf_t *err)
{
    cli_error_t unnamed = {0}, e;
    const char *source = "argument";
    memset(p, 0, sizeof *p);
    nmb_topology_t *t;
    int rc = cli_read_topology(&t, o, NMB_TOPOLOGY_PLAN_ONLY, err);
    if (rc)
        return rc;
    if (o->local_rank >= 0) {
        p->local_rank = o->local_rank;
    } else {
        int rank = 0;
        rc = nmb_local_rank_from_env(&rank, &source);
        if (rc == -ENOENT) {
            cli_error_set(&unnamed, rc, "nmb_local_rank_from_env");
            rank = 0;
            source = NULL;
        } else if (rc < 0) {
            cli_error_set(&e, rc, "nmb_local_rank_from_env");
            put_error(err, e.message);
            nmb_topology_destroy(t);
            return EXIT_INPUT;
        }
        p->local_rank = rank;
    }
    p->source = source;
    rc = cli_make_plan(&p->plan, t, o, p->local_rank, err);
    if (!rc && !unnamed.err && nmb_plan_num_ranks(p->plan))
        rc = cli_override(p->plan, t, o, p->local_rank, err);
    if (rc) {
        nmb_topology_destroy(t);
        return rc;
    }
    int n = nmb_plan_num_ranks(p->plan);
    if (!n) {
        const char *note = nmb_plan_note(p->plan);
        buf_t why = {0};
        buf_puts(&why, note && *note ? note : "no rank planned");
        if (unnamed.err)
            buf_puts(&why, "; no local rank in the environment either");
        /* logged raw: logging escapes nothing */
        buf_printf(err, "local rank %d: not pinned: %s\n", p->local_rank, why.p);
        nmb_rank_plan_t *u = &p->unpinned;
        u->local_rank = p->local_rank;
        u->gpu = -1;
        u->numa_node = -1;
        u->cpus = *nmb_topology_affinity_cpus(t);
        u->mems = *nmb_topology_allowed_mems(t);
        u->cpu_policy = o->cpu_policy;
        u->mem_policy = NMB_MEM_DEFAULT;
        p->unpinned_why = why.p;   /* freed with the plan (pinned_free) */
        nmb_topology_destroy(t);
        return 0;
    }
    nmb_topology_destroy(t);
    if (unnamed.err) {
        char msg[sizeof unnamed.message + 64];
        snprintf(msg, sizeof msg, "%s; give it with --local-rank R", unnamed.message);
        put_error(err, msg);
        return EXIT_INPUT;
    }
    if (p->local_rank >= n) {
        char msg[512];
        snprintf(msg, sizeof msg, "local rank %d (from %s) is outside the %d local ranks planned",
                 p->local_rank, source, n);
        put_error(err, msg);
        return EXIT_INPUT;
    }
    const nmb_rank_plan_t *r = p->rank = nmb_plan_rank(p->plan, p->local_rank);
    if (r->note && *r->note && !only_given(r->note))
        buf_printf(err, "local rank %d: %s\n", p->local_rank, r->note);
    for (int i = 0; i < r->num_env; i++) {
        const nmb_env_var_t *v = &r->env[i];
        /* equal: logged at INFO, which unconfigured logging does not print */
        if (v->kept && strcmp(v->user ? v->user : "", v->value ? v->value : "") != 0)
            buf_printf(err, "local rank %d: keeping %s=%s from the environment; the plan says %s=%s "
                       "(override_env=True replaces it)\n", p->local_rank, v->name, v->user, v->name, v->value);
    }
    return 0;
}

static void pinned_free(pinned_t *p)
{
    nmb_plan_destroy(p->plan);
    free((char *)p->unpinned_why);
    p->plan = NULL;
    p->unpinned_why = NULL;
}

/* exec --dry-run (cli._dry_run): where the rank would run, its exports,
 * what is kept, and the command; nothing changes. */
static int dry_run(const cli_options_t *o, const pinned_t *p, buf_t *out)
{
    buf_t line = {0};
    const nmb_rank_plan_t *r = p->rank;
    if (!r) {
        buf_printf(&line, "local rank %d: not pinned: %s", p->local_rank, p->unpinned_why);
    } else {
        buf_printf(&line, "local rank %d", r->local_rank);
        if (p->source)
            buf_printf(&line, " (from %s)", p->source);
        buf_printf(&line, ": GPU %d %s, ", r->gpu, r->gpu_address);
        if (r->numa_node < 0)
            buf_puts(&line, "locality unknown");
        else
            buf_printf(&line, "node %d", r->numa_node);
        buf_puts(&line, ", CPUs ");
        buf_cpulist(&line, &r->cpus);
        buf_printf(&line, ", memory %s ", nmb_mem_policy_name(r->mem_policy));
        buf_cpulist(&line, &r->mems);
        if (r->nic)
            buf_printf(&line, ", NIC %s:%d (%s)", r->nic, r->nic_port, nmb_distance_name(r->distance));
        else
            buf_puts(&line, ", no RDMA NIC");
    }
    put_printable(out, line.p);
    buf_puts(out, "\n");
    if (r && r->note && *r->note) {
        line.len = 0;
        buf_printf(&line, "note: %s", r->note);
        put_printable(out, line.p);
        buf_puts(out, "\n");
    }
    for (int i = 0; r && i < r->num_env; i++)
        if (!r->env[i].kept) {
            buf_printf(out, "export %s=", r->env[i].name);
            put_shell_quote(out, r->env[i].value);
            buf_puts(out, "\n");
        }
    for (int i = 0; r && i < r->num_env; i++)
        if (r->env[i].kept) {
            line.len = 0;
            buf_printf(&line, "keeping %s=%s from the environment", r->env[i].name, r->env[i].user);
            put_printable(out, line.p);
            buf_puts(out, "\n");
        }
    buf_puts(out, "exec");
    for (int i = 0; i < o->num_command; i++) {
        buf_puts(out, " ");
        put_shell_quote(out, o->command[i]);
    }
    buf_puts(out, "\n");
    buf_free(&line);
    return EXIT_OK;
}

int cmd_env(const cli_options_t *o, buf_t *out, buf_t *err)
{
    pinned_t p;
    int rc = pin_rank(o, &p, err);
    if (!rc && p.rank) {
        int lines = 0;
        for (int i = 0; i < p.rank->num_env; i++) {
            const nmb_env_var_t *v = &p.rank->env[i];
            if (v->kept)
                continue;
            buf_printf(out, "%sexport %s=", lines++ ? "\n" : "", v->name);
            put_shell_quote(out, v->value);
        }
        if (lines)
            buf_puts(out, "\n");
    }
    pinned_free(&p);
    return rc;
}

int cmd_exec(const cli_options_t *o, buf_t *out, buf_t *err)
{
    if (!o->num_command) {
        buf_puts(err, "numabind exec: no command given (numabind exec [options] -- CMD ARGS...)\n");
        return EXIT_USAGE;
    }
    if (!*o->command[0])
        return CLI_HANDOVER;       /* an empty command name: os.execvp's own error */
    for (const unsigned char *c = (const unsigned char *)o->command[0]; *c; c++)
        if (*c >= 0x80)
            return CLI_HANDOVER;   /* Python names it in its errors by Unicode's rules */
    pinned_t p;
    int rc = pin_rank(o, &p, err);
    if (rc) {
        pinned_free(&p);
        return rc;
    }
    if (o->dry_run) {
        rc = dry_run(o, &p, out);
        pinned_free(&p);
        return rc;
    }
    if (buf_nonascii(err)) {
        pinned_free(&p);
        return CLI_HANDOVER;
    }
    const nmb_rank_plan_t *r = p.rank ? p.rank : &p.unpinned;
    if (p.rank) {
        buf_t repr = {0};
        text_rank_repr(&repr, r, 1);   /* checked before anything changes */
        int high = buf_nonascii(&repr);
        buf_free(&repr);
        if (high) {
            pinned_free(&p);
            return CLI_HANDOVER;
        }
        rc = nmb_plan_apply(p.plan, p.local_rank, o->migrate ? NMB_APPLY_MIGRATE : 0, NULL);
        if (rc < 0) {
            /* the plan was fine; applying it was not (the process is as it was) */
            cli_error_t e;
            cli_error_set(&e, rc, "nmb_plan_apply");
            buf_puts(err, "numabind exec: error: pinning failed, ");
            buf_t name = {0};
            buf_puts(&name, "");
            put_printable(&name, o->command[0]);
            put_repr(err, name.p);
            buf_free(&name);
            buf_puts(err, " not run: ");
            put_printable(err, e.message);
            buf_puts(err, "\n");
            pinned_free(&p);
            return buf_nonascii(err) ? CLI_HANDOVER : EXIT_PIN;
        }
        for (int i = 0; i < r->num_env; i++)
            if (!r->env[i].kept)
                setenv(r->env[i].name, r->env[i].value, 1);
    }
    if (o->verbose) {
        buf_t repr = {0};
        text_rank_repr(&repr, r, p.rank != NULL);
        buf_puts(err, "numabind: ");
        put_printable(err, repr.p);
        buf_puts(err, "\n");
        buf_free(&repr);
    }
    if (buf_nonascii(err)) {   /* unpinned: nothing changed yet */
        pinned_free(&p);
        return CLI_HANDOVER;
    }
    cli_write_all(2, err);
    err->len = 0;
    pinned_free(&p);
    cli_restore_signals();
    int e = cli_execvp(o->command[0], o->command, 0);
    buf_puts(err, "numabind exec: cannot run ");
    buf_t name = {0};
    buf_puts(&name, "");
    put_printable(&name, o->command[0]);
    put_repr(err, name.p);
    buf_free(&name);
    buf_printf(err, ": %s\n", strerror(e));
    return e == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC;
}
