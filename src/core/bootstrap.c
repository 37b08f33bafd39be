/* Bootstrap over MPI. Every wait is MPI_Test in a loop with a deadline, so a
 * rank that never arrives is named instead of hanging the job. */
#include "bootstrap.h"
#include "boot_local.h"
#include "clock.h"
#include "groups.h"

#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <net/if.h>

#define HOST_BYTES 64
#define MACHINE_BYTES 128
#define DOMAIN_BYTES (MACHINE_BYTES + 3 * 32)

struct cb_boot {
    int rank, size;
    int local_rank, local_size;
    char (*hosts)[HOST_BYTES];       /* "hostname(addr)" per rank */
    char (*machines)[MACHINE_BYTES]; /* same kernel: what shares CPUs and NICs */
    char (*domains)[DOMAIN_BYTES];   /* same kernel and namespaces: what can share memory */
    struct cb_boot_world *world;     /* in-process ranks (boot_local.h); NULL over MPI */
    cb_boot_watch_fn watch;          /* polled by every wait (bootstrap.h) */
    void *watch_ctx;
};

/* The launcher's own idea of the job size, or 0 when none launched us.
 * Slurm's step-scoped SLURM_STEP_NUM_TASKS, not SLURM_NTASKS: inside an
 * allocation (salloc, an sbatch script) the job's variables are set for
 * every process, also one started without srun. */
static int launcher_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    /* PMIx launchers that export only the rank */
    return getenv("PMIX_RANK") ? -1 : 0;
}

int cb_boot_launcher_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    return -1;
}

/* First UP non-loopback IPv4 address: names hosts that share a hostname
 * (network namespaces, containers). */
static void first_address(char *out, size_t len)
{
    struct ifaddrs *ifs, *i;
    snprintf(out, len, "-");
    if (getifaddrs(&ifs) != 0)
        return;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        if ((i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
            continue;
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, (socklen_t)len);
        break;
    }
    freeifaddrs(ifs);
}

/* Where a rank can map another's memory: the same kernel and the same IPC,
 * network and PID namespaces (a container or a netns test host is a host of
 * its own for shm, though its CPUs are the machine's). */
static void memory_domain(char *out, size_t len, const char *machine)
{
    static const char *const spaces[] = {"/proc/self/ns/ipc", "/proc/self/ns/net", "/proc/self/ns/pid"};
    size_t used = (size_t)snprintf(out, len, "%s", machine);
    for (size_t i = 0; i < sizeof spaces / sizeof *spaces && used < len; i++) {
        char ns[64] = "?";
        ssize_t n = readlink(spaces[i], ns, sizeof ns - 1);
        ns[n > 0 ? n : 1] = '\0';
        used += (size_t)snprintf(out + used, len - used, "/%s", ns);
    }
}

/* Same kernel instance = same boot id; the hostname alone can lie. */
static void machine_id(char *out, size_t len)
{
    char boot_id[64] = "", host[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(boot_id, sizeof boot_id, f))
            boot_id[0] = 0;
        fclose(f);
        boot_id[strcspn(boot_id, "\n")] = 0;
    }
    gethostname(host, sizeof host - 1);
    snprintf(out, len, "%s/%s", host, boot_id);
}

static cb_status wait_requests(struct cb_boot *b, MPI_Request *reqs, const int *peers, int n,
                               int timeout_ms, const char *what)
{
    double deadline = cb_now_s() + timeout_ms / 1000.0;
    long spins = 0;
    for (int i = 0; i < n; i++) {
        int done = 0;
        while (!done) {
            if (MPI_Test(&reqs[i], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
                cb_log_error("%s: MPI failed while talking to rank %d", what, peers[i]);
                return CB_EPEER;
            }
            if (done)
                break;
            if (++spins % 64 == 0) {
                cb_status st = b->watch ? b->watch(b->watch_ctx) : CB_OK;
                if (st != CB_OK)
                    return st;
                sched_yield();
            }
            if (spins % 1024 == 0 && cb_now_s() > deadline) {
                int p = peers[i];
                cb_log_error("%s: timed out after %d s waiting for rank %d (host %s); "
                             "is it alive? raise -T if it is just slow",
                             what, timeout_ms / 1000, p, b->hosts ? b->hosts[p] : "?");
                return CB_ETIMEOUT;
            }
        }
    }
    return CB_OK;
}

cb_status cb_boot_exchange(struct cb_boot *b, const int *to, const void *sendbufs, int nto,
                           const int *from, void *recvbufs, int nfrom, size_t bytes,
                           int timeout_ms, const char *what)
{
    if (b->world)
        return cb_boot_world_exchange(b->world, b->rank, to, sendbufs, nto, from, recvbufs, nfrom, bytes,
                                      &(struct cb_boot_wait){timeout_ms, what, b->watch, b->watch_ctx});
    MPI_Request *reqs = calloc((size_t)(nto + nfrom) + 1, sizeof *reqs);
    int *peers = calloc((size_t)(nto + nfrom) + 1, sizeof *peers);
    cb_status st = CB_ENOMEM;
    if (!reqs || !peers)
        goto free_arrays;
    for (int j = 0; j < nfrom; j++) {
        peers[j] = from[j];
        MPI_Irecv((char *)recvbufs + (size_t)j * bytes, (int)bytes, MPI_BYTE, from[j], 77,
                  MPI_COMM_WORLD, &reqs[j]);
    }
    for (int i = 0; i < nto; i++) {
        peers[nfrom + i] = to[i];
        MPI_Isend((const char *)sendbufs + (size_t)i * bytes, (int)bytes, MPI_BYTE, to[i], 77,
                  MPI_COMM_WORLD, &reqs[nfrom + i]);
    }
    st = wait_requests(b, reqs, peers, nto + nfrom, timeout_ms, what);
free_arrays:
    free(peers);
    free(reqs);
    return st;
}

/* Gather to rank 0 point to point, so rank 0 can name who is missing. */
cb_status cb_boot_gather(struct cb_boot *b, const void *mine, void *all, size_t bytes,
                         int timeout_ms, const char *what)
{
    if (b->rank != 0) {
        int zero = 0;
        return cb_boot_exchange(b, &zero, mine, 1, NULL, NULL, 0, bytes, timeout_ms, what);
    }
    memcpy(all, mine, bytes);
    int n = b->size - 1;
    int *from = calloc((size_t)n + 1, sizeof *from);
    if (!from)
        return CB_ENOMEM;
    for (int r = 1; r < b->size; r++)
        from[r - 1] = r;
    cb_status st = cb_boot_exchange(b, NULL, NULL, 0, from, (char *)all + bytes, n, bytes, timeout_ms, what);
    free(from);
    return st;
}

cb_status cb_boot_bcast(struct cb_boot *b, void *buf, size_t bytes, int timeout_ms, const char *what)
{
    if (b->rank != 0) {
        int zero = 0;
        return cb_boot_exchange(b, NULL, NULL, 0, &zero, buf, 1, bytes, timeout_ms, what);
    }
    int n = b->size - 1;
    int *to = calloc((size_t)n + 1, sizeof *to);
    char *copies = malloc(bytes * (size_t)n + 1);
    cb_status st = CB_ENOMEM;
    if (!to || !copies)
        goto free_arrays;
    for (int r = 1; r < b->size; r++) {
        to[r - 1] = r;
        memcpy(copies + (size_t)(r - 1) * bytes, buf, bytes);
    }
    st = cb_boot_exchange(b, to, copies, n, NULL, NULL, 0, bytes, timeout_ms, what);
free_arrays:
    free(copies);
    free(to);
    return st;
}

cb_status cb_boot_allgather(struct cb_boot *b, const void *mine, void *all, size_t bytes,
                            int timeout_ms, const char *what)
{
    cb_status st = cb_boot_gather(b, mine, all, bytes, timeout_ms, what);
    if (st == CB_OK)
        st = cb_boot_bcast(b, all, bytes * (size_t)b->size, timeout_ms, what);
    return st;
}

cb_status cb_boot_barrier(struct cb_boot *b, int timeout_ms, const char *what)
{
    char token = 1;
    char *all = malloc((size_t)b->size);
    if (!all)
        return CB_ENOMEM;
    cb_status st = cb_boot_allgather(b, &token, all, 1, timeout_ms, what);
    free(all);
    return st;
}

static cb_status allreduce_doubles(struct cb_boot *b, double *vals, int n, int use_max,
                                   int timeout_ms, const char *what)
{
    size_t bytes = sizeof(double) * (size_t)n;
    double *all = malloc(bytes * (size_t)b->size);
    if (!all)
        return CB_ENOMEM;
    cb_status st = cb_boot_allgather(b, vals, all, bytes, timeout_ms, what);
    if (st == CB_OK) {
        for (int i = 0; i < n; i++) {
            double acc = all[i];
            for (int r = 1; r < b->size; r++) {
                double v = all[(size_t)r * (size_t)n + (size_t)i];
                acc = use_max ? (v > acc ? v : acc) : acc + v;
            }
            vals[i] = acc;
        }
    }
    free(all);
    return st;
}

cb_status cb_boot_allreduce_sum(struct cb_boot *b, double *vals, int n, int timeout_ms, const char *what)
{
    return allreduce_doubles(b, vals, n, 0, timeout_ms, what);
}

cb_status cb_boot_allreduce_max(struct cb_boot *b, double *vals, int n, int timeout_ms, const char *what)
{
    return allreduce_doubles(b, vals, n, 1, timeout_ms, what);
}

static void count_local_ranks(struct cb_boot *b)
{
    b->local_rank = 0;
    b->local_size = 0;
    for (int r = 0; r < b->size; r++) {
        if (strcmp(b->machines[r], b->machines[b->rank]) != 0)
            continue;
        if (r < b->rank)
            b->local_rank++;
        b->local_size++;
    }
}

/* Who is where: host labels and machine ids of every rank. A rank that
 * passed MPI_Init but never gets here is named by the timed gather. */
static cb_status learn_hosts(struct cb_boot *b, int timeout_ms)
{
    char host[HOST_BYTES], addr[INET_ADDRSTRLEN];
    char name[HOST_BYTES - INET_ADDRSTRLEN - 2] = "";   /* room for "name(address)" */
    char machine[MACHINE_BYTES], domain[DOMAIN_BYTES];
    gethostname(name, sizeof name - 1);
    first_address(addr, sizeof addr);
    snprintf(host, sizeof host, "%s(%s)", name, addr);
    machine_id(machine, sizeof machine);
    memory_domain(domain, sizeof domain, machine);
    b->hosts = calloc((size_t)b->size, HOST_BYTES);
    b->machines = calloc((size_t)b->size, MACHINE_BYTES);
    b->domains = calloc((size_t)b->size, DOMAIN_BYTES);
    if (!b->hosts || !b->machines || !b->domains)
        return CB_ENOMEM;
    char (*hosts)[HOST_BYTES] = b->hosts;
    b->hosts = NULL;   /* not known yet: messages say "?" */
    cb_status st = cb_boot_allgather(b, host, hosts, HOST_BYTES, timeout_ms, "learning host names");
    b->hosts = hosts;
    if (st == CB_OK)
        st = cb_boot_allgather(b, machine, b->machines, MACHINE_BYTES, timeout_ms, "learning host names");
    if (st == CB_OK)
        st = cb_boot_allgather(b, domain, b->domains, DOMAIN_BYTES, timeout_ms, "learning host names");
    if (st == CB_OK)
        count_local_ranks(b);
    return st;
}

cb_status cb_boot_init(int *argc, char ***argv, int timeout_ms, struct cb_boot **out)
{
    int expected = launcher_size();
    const char *job = getenv("SLURM_JOB_ID");
    if (expected == 0 && job && *job) {
        cb_log_error("started inside Slurm allocation %s but not by srun or mpirun, so it would run alone: "
                     "run it as `srun -n N %s ...` (or `mpirun -np N %s ...`) inside the allocation",
                     job, (*argv)[0], (*argv)[0]);
        return CB_EUSAGE;
    }
    if (expected == 0) {
        cb_log_error("not started by a launcher: run it as `mpirun -np N %s ...` (or srun)",
                     (*argv)[0]);
        return CB_EUSAGE;
    }
    struct cb_boot *b = calloc(1, sizeof *b);
    if (!b)
        return CB_ENOMEM;
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &b->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &b->size);
    if (expected > 0 && expected != b->size) {
        cb_log_error("the launcher started %d processes but MPI sees a job of %d: collbench was "
                     "built against another MPI than the one launching it; rebuild with that MPI's mpicc",
                     expected, b->size);
        MPI_Finalize();
        free(b);
        return CB_EUSAGE;
    }
    cb_status st = learn_hosts(b, timeout_ms);
    if (st != CB_OK) {
        cb_boot_finalize(b);
        return st;
    }
    *out = b;
    return CB_OK;
}

cb_status cb_boot_local_join(struct cb_boot_world *w, int rank, int timeout_ms, struct cb_boot **out)
{
    struct cb_boot *b = calloc(1, sizeof *b);
    if (!b)
        return CB_ENOMEM;
    b->world = w;
    b->rank = rank;
    b->size = cb_boot_world_size(w);
    cb_status st = learn_hosts(b, timeout_ms);
    if (st != CB_OK) {
        cb_boot_finalize(b);
        return st;
    }
    *out = b;
    return CB_OK;
}

void cb_boot_finalize(struct cb_boot *b)
{
    if (!b)
        return;
    if (!b->world)
        MPI_Finalize();
    free(b->hosts);
    free(b->machines);
    free(b->domains);
    free(b);
}

void cb_boot_abort(struct cb_boot *b, int exit_code)
{
    if (b && b->world)
        exit(exit_code);   /* threads of one process: the process is the job */
    MPI_Abort(MPI_COMM_WORLD, exit_code);
}

void cb_boot_watch(struct cb_boot *b, cb_boot_watch_fn fn, void *ctx)
{
    b->watch = fn;
    b->watch_ctx = ctx;
}

void cb_boot_unwatch(struct cb_boot *b, void *ctx)
{
    if (b->watch_ctx == ctx)
        cb_boot_watch(b, NULL, NULL);
}

int cb_boot_rank(const struct cb_boot *b) { return b->rank; }
int cb_boot_size(const struct cb_boot *b) { return b->size; }
const char *cb_boot_host(const struct cb_boot *b, int rank) { return b->hosts[rank]; }
int cb_boot_local_rank(const struct cb_boot *b) { return b->local_rank; }
int cb_boot_local_size(const struct cb_boot *b) { return b->local_size; }

int cb_boot_same_machine(const struct cb_boot *b, int rank_a, int rank_b)
{
    return strcmp(b->machines[rank_a], b->machines[rank_b]) == 0;
}

int cb_boot_shares_memory(const struct cb_boot *b, int rank_a, int rank_b)
{
    return strcmp(b->domains[rank_a], b->domains[rank_b]) == 0;
}

cb_status cb_boot_hosts(const struct cb_boot *b, int *host, int *nhosts)
{
    return cb_groups_by_name(b->size, b->domains[0], DOMAIN_BYTES, host, nhosts);
}
