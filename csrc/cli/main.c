/* numabind's native command line: argv, dispatch, output, signals and the
 * hand-over to Python.
 *
 * `show`, `plan`, `env` and `exec` are served here with the bytes, messages
 * and exit statuses of src/numabind/cli.py (`--fsroot`, `exec --dry-run`
 * and the overrides included). Everything else — `gather`, `status`,
 * `--svg`, `--example` (Python unpacks the bundled trees), `--help`, any
 * usage error (argparse writes its own message), an
 * option spelled any way but in full, and output holding a byte >= 0x80 — is
 * exec'd as `python -m numabind ARGS...`: $NUMABIND_PYTHON, else python3 or
 * python beside this executable (a venv's bin/), else the build's
 * interpreter by name on PATH, else python3 on PATH.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NMB_CLI_PYTHON
#define NMB_CLI_PYTHON "python3"
#endif

#define MAX_LOCAL_WORLD_SIZE (1 << 20)

static struct sigaction g_sigint_old, g_sigpipe_old;
static int g_sigint_handled;   /* 1: our handler replaced SIG_DFL */

/* ---- signals --------------------------------------------------------------- */

static void on_sigint(int sig)
{
    static const char msg[] = "numabind: interrupted\n";
    (void)sig;
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(EXIT_INTERRUPT);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &g_sigpipe_old);   /* EPIPE, not death: `show | head -1` */
    sigaction(SIGINT, NULL, &g_sigint_old);
    /* as Python: a SIGINT the caller ignores stays ignored */
    if (g_sigint_old.sa_handler == SIG_DFL) {
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, NULL);
        g_sigint_handled = 1;
    }
}

void cli_restore_signals(void)
{
    sigaction(SIGPIPE, &g_sigpipe_old, NULL);
    if (g_sigint_handled) {
        sigaction(SIGINT, &g_sigint_old, NULL);
        g_sigint_handled = 0;
    }
}

/* ---- the hand-over ----------------------------------------------------------- */

static void try_exec(const char *python, char **argv)
{
    argv[0] = (char *)python;
    execv(python, argv);
}

int cli_execvp(const char *file, char **argv, int argv0_path)
{
    if (strchr(file, '/')) {
        if (argv0_path)
            argv[0] = (char *)file;
        execv(file, argv);
        return errno;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    int first = 0, last = ENOENT;
    size_t fl = strlen(file);
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        char *full = malloc(dl + fl + 2);
        if (!full)
            return ENOMEM;
        memcpy(full, p, dl);
        size_t k = dl;
        if (dl && full[dl - 1] != '/')
            full[k++] = '/';
        memcpy(full + k, file, fl + 1);
        if (argv0_path)
            argv[0] = full;
        execv(full, argv);
        last = errno;
        if (last != ENOENT && last != ENOTDIR && !first)
            first = last;
        free(full);
        if (!end)
            break;
        p = end;
    }
    return first ? first : last;
}

static _Noreturn void handover(int argc, char **argv)
{
    char **nargv = calloc((size_t)argc + 3, sizeof *nargv);
    if (!nargv) {
        fputs("numabind: error: out of memory\n", stderr);
        _exit(EXIT_NOTFOUND);
    }
    nargv[1] = "-m";
    nargv[2] = "numabind";
    for (int i = 1; i < argc; i++)
        nargv[i + 2] = argv[i];
    sigaction(SIGPIPE, &g_sigpipe_old, NULL);
    if (g_sigint_handled) {
        /* Python installs its handler only over SIG_DFL: ignored until cli.main()
         * restores it, a Ctrl-C while the interpreter starts prints no traceback */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGINT, &sa, NULL);
        setenv("NUMABIND_RESTORE_SIGINT", "1", 1);
    }
    const char *forced = getenv("NUMABIND_PYTHON");
    int err;
    if (forced && *forced) {
        err = cli_execvp(forced, nargv, 1);
    } else {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 16);
        if (n > 0) {
            self[n] = '\0';
            char *slash = strrchr(self, '/');
            if (slash) {
                strcpy(slash + 1, "python3");
                try_exec(self, nargv);
                strcpy(slash + 1, "python");
                try_exec(self, nargv);
            }
        }
        cli_execvp(NMB_CLI_PYTHON, nargv, 1);
        err = cli_execvp("python3", nargv, 1);
    }
    if (g_sigint_handled)
        sigaction(SIGINT, &g_sigint_old, NULL);
    fprintf(stderr, "numabind: error: cannot run Python for `numabind%s%s` (set NUMABIND_PYTHON): %s\n",
            argc > 1 ? " " : "", argc > 1 ? argv[1] : "", strerror(err));
    _exit(EXIT_NOTFOUND);
}

/* ---- output -------------------------------------------------------------------- */

int cli_write_all(int fd, const buf_t *b)
{
    size_t done = 0;
    while (done < b->len) {
        ssize_t w = write(fd, b->p + done, b->len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        done += (size_t)w;
    }
    return 0;
}

void cli_error_set(cli_error_t *e, int err, const char *call)
{
    const char *detail = nmb_last_error();
    e->err = err;
    e->call = call;
    snprintf(e->message, sizeof e->message, "%s", detail && *detail ? detail : nmb_strerror(err));
}

void put_error(buf_t *err, const char *message)
{
    buf_puts(err, "numabind: error: ");
    put_printable(err, message);
    buf_puts(err, "\n");
}

/* ---- show and plan ------------------------------------------------------------- */

int cli_read_topology(nmb_topology_t **t, const cli_options_t *o, unsigned flags, buf_t *err)
{
    int rc = nmb_topology_create(t, o->fsroot, flags);
    if (rc < 0) {
        cli_error_t e;
        cli_error_set(&e, rc, "nmb_topology_create");
        put_error(err, e.message);
        return EXIT_INPUT;
    }
    return 0;
}

int cmd_show(const cli_options_t *o, buf_t *out, buf_t *err)
{
    nmb_topology_t *t;
    /* the text's GPU x GPU block asks NVML for NVLinks (the JSON has none) */
    int rc = cli_read_topology(&t, o, o->json ? 0 : NMB_TOPOLOGY_NVLINK, err);
    if (rc)
        return rc;
    if (o->json)
        json_show(out, t);
    else
        text_show(out, t);
    nmb_topology_destroy(t);
    return EXIT_OK;
}

int cli_has_overrides(const cli_options_t *o)
{
    return o->gpu >= 0 || o->cpus || o->mem_nodes || o->nic;
}

/* _make_plan: the options, the launcher's local world size when none given;
 * with --gpu, _with_gpu's rank_gpus: `rank` drives that GPU, rank r GPU r. */
int cli_make_plan(nmb_plan_t **plan, const nmb_topology_t *t, const cli_options_t *o, int rank, buf_t *err)
{
    nmb_plan_options_t po;
    nmb_plan_options_init(&po);
    po.cpu_policy = o->cpu_policy;
    po.mem_policy = o->mem_policy;
    po.reserve_cores = o->reserve_cores;
    po.override_env = o->override_env;
    po.local_world_size = o->local_world_size;
    cli_error_t e;
    int env_size = 0;
    if (!o->local_world_size) {
        const char *source = NULL;
        int rc = nmb_local_world_size_from_env(&env_size, &source);
        if (rc < 0 && rc != -ENOENT) {
            cli_error_set(&e, rc, "nmb_local_world_size_from_env");
            put_error(err, e.message);
            return EXIT_INPUT;
        }
        po.local_world_size = rc < 0 ? 0 : env_size;
    }
    int *gpus = NULL;
    if (o->gpu >= 0) {
        int n = o->local_world_size ? o->local_world_size
              : po.local_world_size ? po.local_world_size : nmb_topology_num_gpus(t);
        if (rank + 1 > n) {
            if (po.local_world_size)
                return CLI_HANDOVER;   /* "gpus [...] names N ranks, local_world_size is M": Python's */
            n = rank + 1;
        }
        if (!(gpus = malloc((size_t)n * sizeof *gpus))) {
            put_error(err, "out of memory");
            return EXIT_INPUT;
        }
        for (int r = 0; r < n; r++)
            gpus[r] = r == rank ? o->gpu : -1; /* the others as without --gpu */
        po.rank_gpus = gpus;
        po.local_world_size = n;
    }
    int rc = nmb_plan_create(plan, t, &po);
    free(gpus);
    if (rc < 0) {
        cli_error_set(&e, rc, "nmb_plan_create");
        put_error(err, e.message);
        return EXIT_INPUT;
    }
    return 0;
}

int cli_override(nmb_plan_t *plan, const nmb_topology_t *t, const cli_options_t *o, int rank, buf_t *err)
{
    if (!o->cpus && !o->mem_nodes && !o->nic)
        return 0;
    nmb_rank_override_t ov;
    nmb_rank_override_init(&ov);
    ov.cpus = o->cpus ? &o->cpu_set : NULL;
    ov.mems = o->mem_nodes ? &o->mem_set : NULL;
    ov.mem_policy = o->mem_nodes ? o->mem_policy : -1;
    ov.nic = o->nic;
    int rc = nmb_plan_override_rank(plan, t, rank, &ov);
    if (rc < 0) {
        cli_error_t e;
        cli_error_set(&e, rc, "nmb_plan_override_rank");
        put_error(err, e.message);
        return EXIT_INPUT;
    }
    return 0;
}

int cmd_plan(const cli_options_t *o, buf_t *out, buf_t *err)
{
    nmb_topology_t *t;
    nmb_plan_t *plan;
    int rc = cli_read_topology(&t, o, NMB_TOPOLOGY_PLAN_ONLY, err);
    if (rc)
        return rc;
    rc = cli_make_plan(&plan, t, o, o->local_rank < 0 ? 0 : o->local_rank, err);
    if (!rc && o->local_rank >= 0 && nmb_plan_num_ranks(plan) && (rc = cli_override(plan, t, o, o->local_rank, err)))
        nmb_plan_destroy(plan);
    nmb_topology_destroy(t);
    if (rc)
        return rc;
    int n = nmb_plan_num_ranks(plan), first = 0, count = n;
    if (o->local_rank >= 0 && n) {
        if (o->local_rank >= n) {
            char msg[256];
            snprintf(msg, sizeof msg, "local rank %d is outside the %d local ranks planned", o->local_rank, n);
            put_error(err, msg);
            nmb_plan_destroy(plan);
            return EXIT_INPUT;
        }
        first = o->local_rank;
        count = 1;
    }
    if (o->json) {
        json_plan(out, plan, first, count);
    } else if (!count) {
        const char *note = nmb_plan_note(plan);
        buf_t line = {0};
        buf_printf(&line, "No ranks: %s", note ? note : "None");
        put_printable(out, line.p);
        buf_puts(out, "\n");
        buf_free(&line);
    } else {
        text_plan(out, plan, first, count);
    }
    nmb_plan_destroy(plan);
    return EXIT_OK;
}

/* ---- argv ------------------------------------------------------------------------ */

/* A decimal count in [lo, hi] (digits only: anything Python's int() reads
 * otherwise, and every error, is argparse's to say). */
static int parse_count(const char *s, long lo, long hi, int *out)
{
    long v = 0;
    if (!*s)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > hi)
            return -1;
    }
    if (v < lo)
        return -1;
    *out = (int)v;
    return 0;
}

static int index_of(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static const char *const CPU_POLICIES[] = {"exclusive", "node", "socket", "core-complex", "none", NULL};
static const char *const MEM_POLICIES[] = {"preferred", "bind", "interleave", "local", NULL};

enum { CMD_SHOW, CMD_PLAN, CMD_ENV, CMD_EXEC };

/* -1 for the negative numbers argparse takes as positionals ("-5", "-.5") */
static int negative_number(const char *s)
{
    const char *p = s + 1;
    int digits = 0, dot = 0;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '.' && !dot)
            dot = 1;
        else
            return 0;
    }
    if (!digits)
        return 0;
    /* ^-\d+$ or ^-\d*\.\d+$ */
    if (dot && s[strlen(s) - 1] == '.')
        return 0;
    return 1;
}

/* Fills o from argv[2..]; 0, or CLI_HANDOVER for anything argparse must see. */
static int parse_args(int cmd, int argc, char **argv, cli_options_t *o)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (cmd == CMD_EXEC && (a[0] != '-' || strcmp(a, "-") == 0 || strcmp(a, "--") == 0 ||
                                negative_number(a))) {
            /* argparse.REMAINDER from the first positional; "--" is kept, then dropped */
            if (strcmp(a, "--") == 0)
                i++;
            o->command = argv + i;
            o->num_command = argc - i;
            return 0;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
        const char *value = eq && a[1] == '-' ? eq + 1 : NULL;
        char name[64];
        if (nl >= sizeof name)
            return CLI_HANDOVER;
        memcpy(name, a, nl);
        name[nl] = '\0';
        int flag = -1;   /* a flag: no value */
        if (strcmp(name, "--dry-run") == 0 && cmd == CMD_EXEC)
            flag = 4;
        else if (strcmp(name, "--json") == 0 && (cmd == CMD_SHOW || cmd == CMD_PLAN))
            flag = 0;
        else if (strcmp(name, "--override-env") == 0 && cmd != CMD_SHOW)
            flag = 1;
        else if (strcmp(name, "--migrate") == 0 && cmd == CMD_EXEC)
            flag = 2;
        else if ((strcmp(name, "-v") == 0 || strcmp(name, "--verbose") == 0) && cmd == CMD_EXEC)
            flag = 3;
        if (flag >= 0) {
            if (value)
                return CLI_HANDOVER;
            switch (flag) {
            case 0: o->json = 1; break;
            case 1: o->override_env = 1; break;
            case 2: o->migrate = 1; break;
            case 3: o->verbose = 1; break;
            case 4: o->dry_run = 1; break;
            }
            continue;
        }
        if (cmd == CMD_SHOW && strcmp(name, "--fsroot") != 0)
            return CLI_HANDOVER;   /* --svg, --example, --help, anything else */
        if (!value) {
            if (i + 1 >= argc || argv[i + 1][0] == '-')
                return CLI_HANDOVER;
            value = argv[++i];
        }
        if (strcmp(name, "--fsroot") == 0) {
            if (!*value)
                return CLI_HANDOVER;   /* argparse-level usage error: Python's words */
            o->fsroot = value;
        } else if (strcmp(name, "--gpu") == 0) {
            if (parse_count(value, 0, INT_MAX, &o->gpu) < 0)
                return CLI_HANDOVER;
        } else if (strcmp(name, "--cpus") == 0) {
            if (nmb_bitmap_parse_list(&o->cpu_set, value) < 0)
                return CLI_HANDOVER;
            o->cpus = value;
        } else if (strcmp(name, "--mem-nodes") == 0) {
            if (nmb_bitmap_parse_list(&o->mem_set, value) < 0)
                return CLI_HANDOVER;
            o->mem_nodes = value;
        } else if (strcmp(name, "--nic") == 0) {
            o->nic = value;
        } else if (strcmp(name, "--local-rank") == 0) {
            if (parse_count(value, 0, MAX_LOCAL_WORLD_SIZE - 1, &o->local_rank) < 0)
                return CLI_HANDOVER;
        } else if (strcmp(name, "--local-world-size") == 0) {
            if (parse_count(value, 1, MAX_LOCAL_WORLD_SIZE, &o->local_world_size) < 0)
                return CLI_HANDOVER;
        } else if (strcmp(name, "--reserve-cores") == 0) {
            if (parse_count(value, 0, INT_MAX, &o->reserve_cores) < 0)
                return CLI_HANDOVER;
        } else if (strcmp(name, "--policy") == 0) {
            if ((o->cpu_policy = index_of(value, CPU_POLICIES)) < 0)
                return CLI_HANDOVER;
        } else if (strcmp(name, "--mem") == 0) {
            if ((o->mem_policy = index_of(value, MEM_POLICIES)) < 0)
                return CLI_HANDOVER;
        } else {
            return CLI_HANDOVER;   /* --svg, --help, abbreviations, unknown options */
        }
    }
    if (cmd == CMD_EXEC) {
        o->command = argv + argc;
        o->num_command = 0;
    }
    return 0;
}

/* What argparse takes but cli.py refuses after parsing (its words). */
static int after_args(int cmd, const cli_options_t *o)
{
    if (cmd == CMD_PLAN && cli_has_overrides(o) && o->local_rank < 0)
        return CLI_HANDOVER;   /* "--cpus is one rank's: name the rank with --local-rank R" */
    return 0;
}

int main(int argc, char **argv)
{
    install_signals();
    /* cli.main() pops it: a command exec'd from here does not inherit it either */
    unsetenv("NUMABIND_RESTORE_SIGINT");
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        buf_t out = {0};
        buf_printf(&out, "numabind %s\n", NMB_VERSION_STRING);
        int rc = cli_write_all(1, &out);
        buf_free(&out);
        if (rc && rc != EPIPE) {
            fprintf(stderr, "numabind: error: cannot write standard output: %s\n", strerror(rc));
            return EXIT_OUTPUT;
        }
        return EXIT_OK;
    }
    static const char *const commands[] = {"show", "plan", "env", "exec", NULL};
    int cmd = argc >= 2 ? index_of(argv[1], commands) : -1;
    if (cmd < 0)
        handover(argc, argv);
    cli_options_t o = {.local_rank = -1, .gpu = -1};
    int parsed = parse_args(cmd, argc, argv, &o);
    if (parsed == CLI_HANDOVER || after_args(cmd, &o) == CLI_HANDOVER)
        handover(argc, argv);

    buf_t out = {0}, err = {0};
    int rc;
    switch (cmd) {
    case CMD_SHOW: rc = cmd_show(&o, &out, &err); break;
    case CMD_PLAN: rc = cmd_plan(&o, &out, &err); break;
    case CMD_ENV: rc = cmd_env(&o, &out, &err); break;
    default: rc = cmd_exec(&o, &out, &err); break;
    }
    if (rc == CLI_HANDOVER || buf_nonascii(&out) || buf_nonascii(&err))
        handover(argc, argv);
    cli_write_all(2, &err);
    int werr = cli_write_all(1, &out);
    buf_free(&out);
    buf_free(&err);
    if (werr == EPIPE)
        return EXIT_OK;   /* a reader that went away is no error */
    if (werr) {
        fprintf(stderr, "numabind: error: cannot write standard output: %s\n", strerror(werr));
        return EXIT_OUTPUT;
    }
    return rc;
}
