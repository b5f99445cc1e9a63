/* numabind's native command line: what its files share.
 *
 * The command serves `show`, `plan`, `env` and `exec` itself with the bytes,
 * messages and exit statuses of the Python CLI (src/numabind/cli.py), and
 * hands anything else to Python (main.c). Output is built in memory first:
 * a byte >= 0x80 anywhere in it (Python would decode it as UTF-8 and escape
 * by Unicode's rules) hands the whole command over before anything is
 * written.
 */
#ifndef NMB_CLI_H
#define NMB_CLI_H

#include <stddef.h>

#include "numabind/numabind.h"

/* Exit statuses (cli.py's module docstring). */
enum {
    EXIT_OK = 0,
    EXIT_INPUT = 1,      /* the topology, the environment or the plan refused */
    EXIT_USAGE = 2,
    EXIT_PIN = 3,        /* exec: pinning failed, nothing ran */
    EXIT_OUTPUT = 74,    /* EX_IOERR */
    EXIT_NOEXEC = 126,
    EXIT_NOTFOUND = 127,
    EXIT_INTERRUPT = 130,
    /* not an exit status: the command is Python's to serve */
    CLI_HANDOVER = -1,
};

/* A growing byte buffer; out of memory exits (status 1, one line). */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

void buf_put(buf_t *b, const char *s, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_cpulist(buf_t *b, const nmb_bitmap_t *set);   /* "0-3,8" as format_cpulist */
void buf_free(buf_t *b);
int buf_nonascii(const buf_t *b);                     /* 1 when a byte >= 0x80 is in it */

/* ---- text.c: Python's escaping and the text outputs ---------------------- */

/* _printable.printable for ASCII text: control characters as repr writes
 * them (\t \n \r \x1b), a backslash doubled. */
void put_printable(buf_t *b, const char *s);
/* _printable.shell_quote: shlex.quote, or $'...' when not printable. */
void put_shell_quote(buf_t *b, const char *s);
/* repr() of a str: quotes chosen as Python chooses them. */
void put_repr(buf_t *b, const char *s);

/* render(): the text of `numabind show`, with its final newline. */
void text_show(buf_t *out, const nmb_topology_t *t);
/* _cmd_plan's text for ranks [first, first + count). */
void text_plan(buf_t *out, const nmb_plan_t *plan, int first, int count);
/* RankPlan.__repr__ of a planned rank (applied or not). */
void text_rank_repr(buf_t *out, const nmb_rank_plan_t *r, int applied);

/* ---- json.c: json.dumps(..., indent=2) ----------------------------------- */

/* Topology.to_dict(), with its final newline. */
void json_show(buf_t *out, const nmb_topology_t *t);
/* {"ranks": [RankPlan.to_dict()...], "note": ...} for ranks [first, first + count). */
void json_plan(buf_t *out, const nmb_plan_t *plan, int first, int count);

/* ---- commands ------------------------------------------------------------ */

/* Options shared by plan, env and exec (cli.py's _plan_args). */
typedef struct cli_options {
    int local_rank;          /* -1: not given */
    int local_world_size;    /* 0: not given */
    int cpu_policy, mem_policy, reserve_cores, override_env;
    int json, migrate, verbose, dry_run;
    const char *fsroot;      /* --fsroot DIR; NULL: NUMABIND_FSROOT, else this host */
    /* the overrides (plan --local-rank R, env, exec); NULL / -1: not given */
    int gpu;
    const char *cpus, *mem_nodes, *nic;
    nmb_bitmap_t cpu_set, mem_set;
    char **command;          /* exec: the command line, NULL-terminated */
    int num_command;
} cli_options_t;

/* A C core error as Python's NumabindError.message gives it: the detail,
 * else nmb_strerror. Copied: later calls overwrite the detail. */
typedef struct cli_error {
    int err;                 /* negative errno; 0: none */
    const char *call;
    char message[4096];
} cli_error_t;

void cli_error_set(cli_error_t *e, int err, const char *call);
/* "numabind: error: <printable message>\n" */
void put_error(buf_t *err, const char *message);

/* main.c: the machine a verb reads (--fsroot, else NUMABIND_FSROOT or this
 * host); 0 or an exit status with the error in err. */
int cli_read_topology(nmb_topology_t **t, const cli_options_t *o, unsigned flags, buf_t *err);
/* main.c: _make_plan, with --gpu making `rank` drive that GPU. */
int cli_make_plan(nmb_plan_t **plan, const nmb_topology_t *t, const cli_options_t *o, int rank, buf_t *err);
/* main.c: --cpus, --mem-nodes, --nic for `rank` (nmb_plan_override_rank). */
int cli_override(nmb_plan_t *plan, const nmb_topology_t *t, const cli_options_t *o, int rank, buf_t *err);
int cli_has_overrides(const cli_options_t *o);

/* show, plan (main.c); env and exec (exec.c). Each returns an exit status or
 * CLI_HANDOVER; `out` and `err` receive what goes to stdout and stderr. */
int cmd_show(const cli_options_t *o, buf_t *out, buf_t *err);
int cmd_plan(const cli_options_t *o, buf_t *out, buf_t *err);
int cmd_env(const cli_options_t *o, buf_t *out, buf_t *err);
/* Returns only when the command did not run (an error status), or after
 * --dry-run (what it would do in `out`). */
int cmd_exec(const cli_options_t *o, buf_t *out, buf_t *err);

/* main.c: puts back the signal dispositions the caller gave the process
 * (before exec'ing its command). */
void cli_restore_signals(void);
/* main.c: writes `b` to fd, all of it; 0 or an errno. */
int cli_write_all(int fd, const buf_t *b);
/* Runs `file` as execvp finds it on PATH ("/bin:/usr/bin" without one; an
 * empty entry is the current directory),
 * argv[0] as given, or with argv0_path each candidate's full path (what
 * the hand-over gives Python). Returns only when nothing ran: the first
 * error other than ENOENT and ENOTDIR met on the way, else the last, as
 * Python's os.execvp reports it. */
int cli_execvp(const char *file, char **argv, int argv0_path);

#endif /* NMB_CLI_H */
