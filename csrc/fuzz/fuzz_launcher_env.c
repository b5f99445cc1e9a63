/* The launcher variables numabind reads for the local rank and size:
 * LOCAL_RANK / LOCAL_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_*, MPI_LOCALRANKID /
 * MPI_LOCALNRANKS, PMI_LOCAL_*, SLURM_LOCALID with SLURM_NODEID and Slurm's
 * task lists ("4(x2),3"). The input is lines "NAME=VALUE"; lines naming
 * other variables are ignored. nmb_local_rank_from_env and
 * nmb_local_world_size_from_env are checked against a reference model of
 * the rules plan.h documents, and every refusal must name the variable. */
#include "fuzz.h"

#define ENV_MAX (1L << 20)

static const char *const rank_vars[] = {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                                        "PMI_LOCAL_RANK", "SLURM_LOCALID"};
static const char *const size_vars[] = {"LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                                        "PMI_LOCAL_SIZE", NULL};
static const char *const slurm_vars[] = {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE",
                                         "SLURM_NTASKS_PER_NODE"};
static const char *const others[] = {"SLURM_NODEID"};
#define N_LAUNCHERS 5

static int known(const char *name)
{
    for (int i = 0; i < N_LAUNCHERS; i++)
        if (!strcmp(name, rank_vars[i]) || (size_vars[i] && !strcmp(name, size_vars[i])))
            return 1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, slurm_vars[i]))
            return 1;
    return !strcmp(name, others[0]);
}

static void clear_all(void)
{
    for (int i = 0; i < N_LAUNCHERS; i++) {
        unsetenv(rank_vars[i]);
        if (size_vars[i])
            unsetenv(size_vars[i]);
    }
    for (int i = 0; i < 3; i++)
        unsetenv(slurm_vars[i]);
    unsetenv(others[0]);
}

/* ---- the reference model ---- */

/* Digits only, at most ENV_MAX: the value, else -1. */
static long count(const char *v)
{
    long n = 0;
    if (!*v)
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return -1;
        n = n * 10 + (*v - '0');
        if (n > ENV_MAX)
            return -1;
    }
    return n;
}

/* A count at *p (advancing it), else -1. */
static long count_prefix(const char **p)
{
    const char *s = *p;
    long n = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((n = n * 10 + (*s - '0')) > ENV_MAX)
            return -1;
    *p = s;
    return n;
}

static int ref_slurm(int *out)
{
    const char *name = NULL, *v;
    for (int i = 0; i < 3 && !name; i++)
        if (getenv(slurm_vars[i]))
            name = slurm_vars[i];
    if (!name)
        return -ENOENT;
    long node = -1;
    if ((v = getenv("SLURM_NODEID")) && (node = count(v)) < 0)
        return -EINVAL;
    const char *p = getenv(name);
    long index = 0, mine = -1, first = -1;
    int same = 1;
    for (;;) {
        long c = count_prefix(&p), reps = 1;
        if (c < 0)
            return -EINVAL;
        if (p[0] == '(' && p[1] == 'x') {
            p += 2;
            reps = count_prefix(&p);
            if (reps < 1 || *p != ')')
                return -EINVAL;
            p++;
        }
        if (node >= index && node < index + reps)
            mine = c;
        if (first >= 0 && c != first)
            same = 0;
        if (first < 0)
            first = c;
        if ((index += reps) > ENV_MAX)
            return -EINVAL;
        if (!*p)
            break;
        if (*p++ != ',')
            return -EINVAL;
    }
    if (mine < 0 && same)
        mine = first;
    if (mine < 1)
        return -EINVAL;
    *out = (int)mine;
    return 0;
}

static int ref_size_of(int l, int *out)
{
    if (!size_vars[l])
        return ref_slurm(out);
    const char *v = getenv(size_vars[l]);
    if (!v)
        return -ENOENT;
    long n = count(v);
    if (n < 1)
        return -EINVAL;
    *out = (int)n;
    return 0;
}

static int rank_launcher(void)
{
    for (int i = 0; i < N_LAUNCHERS; i++)
        if (getenv(rank_vars[i]))
            return i;
    return -1;
}

static int ref_rank(int *out)
{
    int l = rank_launcher(), size;
    if (l < 0)
        return -ENOENT;
    long r = count(getenv(rank_vars[l]));
    if (r < 0)
        return -EINVAL;
    int err = ref_size_of(l, &size);
    if (err == -EINVAL || (err == 0 && r >= size))
        return -EINVAL;
    *out = (int)r;
    return 0;
}

static int ref_size(int *out)
{
    int l = rank_launcher();
    if (l >= 0)
        return ref_size_of(l, out);
    for (int i = 0; i < N_LAUNCHERS; i++) {
        int err = ref_size_of(i, out);
        if (err != -ENOENT)
            return err;
    }
    return -ENOENT;
}

/* ---- the target ---- */

/* Some launcher variable's name appears in the detail, quoted with its value
 * for a malformed one. */
static void names_a_variable(int err)
{
    const char *e = nmb_last_error();
    FUZZ_ASSERT(e[0] != '\0');
    int named = 0;
    for (int i = 0; i < N_LAUNCHERS; i++)
        named |= strstr(e, rank_vars[i]) || (size_vars[i] && strstr(e, size_vars[i]));
    for (int i = 0; i < 3; i++)
        named |= strstr(e, slurm_vars[i]) != NULL;
    named |= strstr(e, "SLURM_NODEID") != NULL;
    FUZZ_ASSERT(named);
    if (err == -EINVAL)
        FUZZ_ASSERT(strstr(e, "='") != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = fuzz_cstr(data, size);
    clear_all();
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            if (known(line))
                setenv(line, eq + 1, 1);
        }
        line = next;
    }

    int rank = -1, want_rank = -1, n = -1, want_n = -1;
    const char *src = NULL;
    nmb__clear_error();
    int err = nmb_local_rank_from_env(&rank, &src);
    int ref = ref_rank(&want_rank);
    FUZZ_ASSERT(err == ref);
    if (err == 0) {
        FUZZ_ASSERT(rank == want_rank && src && !strcmp(src, rank_vars[rank_launcher()]));
    } else {
        names_a_variable(err);
    }

    nmb__clear_error();
    err = nmb_local_world_size_from_env(&n, &src);
    ref = ref_size(&want_n);
    FUZZ_ASSERT(err == ref);
    if (err == 0) {
        FUZZ_ASSERT(n == want_n && n >= 1 && src && getenv(src));
        if (rank >= 0)
            FUZZ_ASSERT(rank < n); /* rank and size from one launcher agree */
    } else {
        names_a_variable(err);
    }
    clear_all();
    free(text);
    return 0;
}
