/* The local rank and local size from the launcher's environment: torchrun,
 * Open MPI, MPICH/Intel MPI, HPE Cray PALS and Slurm each set their own pair. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

/* Each launcher's local rank and local size, the innermost launcher first:
 * one started inside another (torchrun in an srun step, mpirun in an sbatch
 * script) sets its own variables while the outer one's stay inherited —
 * an sbatch script's SLURM_LOCALID=0 reaches every rank of an mpirun in it.
 * Slurm's size is a per-node list: see slurm_tasks(). */
static const struct launcher {
    const char *rank, *size;
} launchers[] = {
    {"LOCAL_RANK", "LOCAL_WORLD_SIZE"},                           /* torchrun */
    {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"}, /* Open MPI mpirun */
    {"MPI_LOCALRANKID", "MPI_LOCALNRANKS"},                       /* MPICH, Intel MPI (Hydra) */
    {"PMI_LOCAL_RANK", "PMI_LOCAL_SIZE"},                         /* HPE Cray PALS mpiexec */
    {"SLURM_LOCALID", NULL},                                      /* srun */
};

#define ENV_MAX (1L << 20)

/* A decimal count at p, digits only; the end in *end. -1 when none. */
static long count_at(const char *p, const char **end)
{
    long n = 0;
    *end = p;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((n = n * 10 + (*p - '0')) > ENV_MAX)
            return -1;
    *end = p;
    return n;
}

static int env_count(const char *name, int minimum, int *out)
{
    const char *v = getenv(name), *end;
    if (!v)
        return -ENOENT;
    long n = count_at(v, &end);
    if (n < 0 && *v && strspn(v, "0123456789") == strlen(v))   /* digits only: past the limit */
        return nmb__fail_env(name, -EINVAL, "%s='%.64s' is above %ld, the largest count numabind reads "
                             "from a launcher", name, v, ENV_MAX);
    if (n < minimum || *end)
        return nmb__fail_env(name, -EINVAL, "%s='%.64s' is not a %s integer", name, v,
                             minimum ? "positive" : "non-negative");
    *out = (int)n;
    return 0;
}

/* Slurm's tasks per node, "4(x2),3": four tasks on each of nodes 0 and 1,
 * three on node 2, for node `node` (SLURM_NODEID); without it (node < 0),
 * only a list giving every node the same count answers. */
static int slurm_tasks(const char *name, int node, int *out)
{
    const char *v = getenv(name), *p, *end;
    long index = 0, mine = -1, first = -1, same = 1;
    if (!v)
        return -ENOENT;
    for (p = v;; p++) {
        long count = count_at(p, &end), reps = 1;
        if (count < 0)
            goto bad;
        p = end;
        if (strncmp(p, "(x", 2) == 0) {
            reps = count_at(p + 2, &end);
            if (reps < 1 || *end != ')')
                goto bad;
            p = end + 1;
        }
        if (node >= index && node < index + reps)
            mine = count;
        same &= first < 0 || count == first;
        if (first < 0)
            first = count;
        if ((index += reps) > ENV_MAX)
            goto bad;
        if (!*p)
            break;
        if (*p != ',')
            goto bad;
    }
    if (mine < 0 && same)
        mine = first; /* every node has this count: which one we are does not matter */
    if (mine < 0 && node < 0)
        return nmb__fail_env(name, -EINVAL, "%s='%.64s' differs between nodes and SLURM_NODEID is not set",
                             name, v);
    if (mine < 0)
        return nmb__fail_env(name, -EINVAL, "%s='%.64s' names %ld nodes; SLURM_NODEID='%d' is not one of them",
                             name, v, index, node);
    if (mine < 1)
        return nmb__fail_env(name, -EINVAL, "%s='%.64s' gives node %d no task", name, v, node < 0 ? 0 : node);
    *out = (int)mine;
    return 0;
bad:
    return nmb__fail_env(name, -EINVAL, "%s='%.64s' is not a Slurm task count list like '4(x2),3'", name, v);
}

/* Slurm's local size: the step's tasks on this node, else the job's; the
 * user's --ntasks-per-node last (Slurm sets it only when asked for it, and
 * an srun step inside the job may start fewer). */
static int slurm_size(int *size, const char **source)
{
    static const char *const names[] = {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE",
                                        "SLURM_NTASKS_PER_NODE"};
    for (int i = 0; i < COUNT(names); i++) {
        if (!getenv(names[i]))
            continue;
        int node = -1, err = env_count("SLURM_NODEID", 0, &node);
        if (err < 0 && err != -ENOENT)
            return err;
        *source = names[i];
        return slurm_tasks(names[i], node, size);
    }
    return -ENOENT;
}

static int launcher_size(const struct launcher *l, int *size, const char **source)
{
    if (!l->size)
        return slurm_size(size, source);
    *source = l->size;
    return env_count(l->size, 1, size);
}

/* The innermost launcher that set a local rank, or NULL. */
static const struct launcher *rank_launcher(void)
{
    for (int i = 0; i < COUNT(launchers); i++)
        if (getenv(launchers[i].rank))
            return &launchers[i];
    return NULL;
}

int nmb_local_rank_from_env(int *rank, const char **source)
{
    if (!rank)
        return nmb__fail(-EINVAL, "nmb_local_rank_from_env: rank is NULL");
    const struct launcher *l = rank_launcher();
    if (!l)
        return nmb__fail(-ENOENT, "no local rank in the environment: none of LOCAL_RANK, "
                                  "OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, PMI_LOCAL_RANK, "
                                  "SLURM_LOCALID is set");
    int r, size;
    const char *size_name = NULL;
    int err = env_count(l->rank, 0, &r);
    if (err == 0)
        err = launcher_size(l, &size, &size_name);
    if (err == -ENOENT)
        size = INT_MAX; /* the launcher gave no size: the plan's size decides */
    else if (err < 0)
        return err;
    if (r >= size)
        return nmb__fail_env(l->rank, -EINVAL, "%s='%.64s' is not below %s='%.64s' (local size %d)", l->rank,
                             getenv(l->rank), size_name, getenv(size_name), size);
    *rank = r;
    if (source)
        *source = l->rank;
    return 0;
}

int nmb_local_world_size_from_env(int *size, const char **source)
{
    if (!size)
        return nmb__fail(-EINVAL, "nmb_local_world_size_from_env: size is NULL");
    /* The rank's launcher alone: another's size describes another job. */
    const struct launcher *l = rank_launcher();
    const char *name = NULL;
    int n = 0, err = -ENOENT;
    for (int i = 0; i < COUNT(launchers) && err == -ENOENT; i++)
        if (!l || l == &launchers[i])
            err = launcher_size(&launchers[i], &n, &name);
    /* Say which variables were looked for: a bare -ENOENT would leave an
     * earlier call's detail in nmb_last_error(). */
    if (err == -ENOENT && l)
        return nmb__fail(err, "%s is set but its launcher gives no local size (%s unset)", l->rank,
                         l->size ? l->size
                                 : "SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE, SLURM_NTASKS_PER_NODE");
    if (err == -ENOENT)
        return nmb__fail(err, "no local size in the environment: none of LOCAL_WORLD_SIZE, "
                              "OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS, PMI_LOCAL_SIZE, "
                              "SLURM_STEP_TASKS_PER_NODE, SLURM_TASKS_PER_NODE, SLURM_NTASKS_PER_NODE is set");
    if (err < 0)
        return err;
    *size = n;
    if (source)
        *source = name;
    return 0;
}
