/* tests/sim/main.c: raftsim, the command line of the simulator: one seed, sweeps, failover timing.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

void sim_params_from_seed(uint64_t seed, struct sim_params *p)
{
    struct sim_rng g = {.s = seed ^ 0x5DEECE66Dull};
    memset(p, 0, sizeof(*p));
    /* Profiles: 0 mixed faults, 1 leader churn (crashes of leaders, one entry per message,
     * slow disks), 2 partitions with skewed clocks and optional CheckQuorum, 3 short-lived
     * leaders on three members with lossy links and fast disks (the shape of Figure 3.7 of
     * the dissertation: entries of old terms left on a minority). */
    p->profile = (uint32_t)rng_below(&g, 4);
    p->n_nodes = 3 + (uint32_t)rng_below(&g, 5);
    p->n_spares = (uint32_t)rng_below(&g, 3);
    if (p->n_nodes + p->n_spares > SIM_MAX_NODES) {
        p->n_spares = SIM_MAX_NODES - p->n_nodes;
    }
    p->drop_pm = (uint32_t)rng_below(&g, 150);
    p->dup_pm = (uint32_t)rng_below(&g, 80);
    p->max_delay = 1 + (uint32_t)rng_below(&g, 6);
    p->partition_pm = (uint32_t)rng_below(&g, 15);
    p->crash_pm = (uint32_t)rng_below(&g, 10);
    p->torn_pm = 500;
    p->max_down = 60;
    p->leader_crash_pm = (uint32_t)rng_below(&g, 8);
    p->leader_isolate_pm = (uint32_t)rng_below(&g, 8);
    p->conf_pm = (uint32_t)rng_below(&g, 12);
    p->transfer_pm = (uint32_t)rng_below(&g, 6);
    p->compact_pm = 5 + (uint32_t)rng_below(&g, 40);
    p->max_sync_delay = (uint32_t)rng_below(&g, 6);
    p->election_ticks = 8 + (uint32_t)rng_below(&g, 8);
    p->heartbeat_ticks = 1 + (uint32_t)rng_below(&g, 2);
    p->chaos_steps = 1000 + (uint32_t)rng_below(&g, 2000);
    p->n_clients = 2 + (uint32_t)rng_below(&g, 3);
    p->varied_clocks = rng_chance(&g, 500);
    p->pre_vote = rng_chance(&g, 800);
    p->check_quorum = true;
    p->max_msg_bytes = 32 * (1 + rng_below(&g, 8));
    p->max_inflight = 1 + (uint32_t)rng_below(&g, 8);
    p->max_chunk = 8 + rng_below(&g, 64);
    if (p->profile == 1) {
        p->n_nodes = 3 + 2 * (uint32_t)rng_below(&g, 2);
        p->leader_crash_pm = 10 + (uint32_t)rng_below(&g, 150);
        p->max_down = 5 + (uint32_t)rng_below(&g, 30);
        p->max_inflight = 1 + (uint32_t)rng_below(&g, 2);
        p->crash_pm = (uint32_t)rng_below(&g, 20);
        p->max_msg_bytes = 32;
        p->max_sync_delay = 2 + (uint32_t)rng_below(&g, 25);
        p->fresh_crash_pm = (uint32_t)rng_below(&g, 600);
        p->drop_pm = (uint32_t)rng_below(&g, 300);
        p->conf_pm = 0;
    } else if (p->profile == 3) {
        p->n_nodes = 3;
        p->n_spares = 0;
        p->max_msg_bytes = 32;
        p->max_inflight = 1;
        p->drop_pm = 200 + (uint32_t)rng_below(&g, 300);
        p->dup_pm = (uint32_t)rng_below(&g, 50);
        p->max_sync_delay = (uint32_t)rng_below(&g, 2);
        p->fresh_crash_pm = 400 + (uint32_t)rng_below(&g, 500);
        p->leader_crash_pm = (uint32_t)rng_below(&g, 20);
        p->crash_pm = (uint32_t)rng_below(&g, 10);
        p->max_down = 5 + (uint32_t)rng_below(&g, 25);
        p->partition_pm = (uint32_t)rng_below(&g, 5);
        p->conf_pm = 0;
        p->transfer_pm = 0;
    } else if (p->profile == 2) {
        p->leader_isolate_pm = 5 + (uint32_t)rng_below(&g, 20);
        p->partition_pm = 5 + (uint32_t)rng_below(&g, 20);
        p->varied_clocks = true;
        p->check_quorum = rng_chance(&g, 500);
        p->n_clients = 3 + (uint32_t)rng_below(&g, 2);
    }
    if (!p->pre_vote) {
        /* Without PreVote a member removed while cut off, that never learns of it, keeps
         * raising terms and can depose leaders forever (§4.2.3: stickiness alone does not
         * help once leadership changes hands). node/ runs with PreVote on; membership
         * changes are only exercised with it. */
        p->conf_pm = 0;
    }
    p->heal_steps = 30 * p->election_ticks + 200;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: raftsim --seed S [--trace]\n"
                    "       raftsim --seeds N [--first S] [--jobs J] [--stop-on-fail]\n"
                    "       raftsim --failover TRIALS [--nodes N] [--first S]\n");
    exit(2);
}

static int run_one(uint64_t seed, bool trace)
{
    struct sim_params p;
    struct sim_result res;
    sim_params_from_seed(seed, &p);
    sim_run(seed, &p, trace, &res);
    printf("seed %llu: profile=%u nodes=%u+%u steps=%u ops=%llu unknown=%llu elections=%llu "
           "crashes=%llu "
           "snapshots=%llu confs=%llu transfers=%llu commits=%llu: %s\n",
           (unsigned long long)seed, p.profile, p.n_nodes, p.n_spares, p.chaos_steps + p.heal_steps,
           (unsigned long long)res.ops_ok, (unsigned long long)res.ops_unknown,
           (unsigned long long)res.elections, (unsigned long long)res.crashes,
           (unsigned long long)res.snapshots_installed, (unsigned long long)res.conf_changes,
           (unsigned long long)res.transfers, (unsigned long long)res.commits,
           res.violation ? "VIOLATION" : "ok");
    if (res.violation) {
        printf("violation at step %llu: %s\n", (unsigned long long)res.step, res.why);
        printf("replay: raftsim --seed %llu --trace\n", (unsigned long long)seed);
        return 1;
    }
    return 0;
}

/* Runs seeds first+k, first+k+jobs, ...; writes "<ok> <violations>" to fd. */
static void worker(uint64_t first, uint64_t n, uint32_t k, uint32_t jobs, bool stop, int fd)
{
    uint64_t ok = 0, bad = 0;
    for (uint64_t i = k; i < n; i += jobs) {
        uint64_t seed = first + i;
        struct sim_params p;
        struct sim_result res;
        sim_params_from_seed(seed, &p);
        double t0 = now_s();
        sim_run(seed, &p, false, &res);
        double dt = now_s() - t0;
        if (dt > 1.0) {
            printf("slow seed %llu: %.1f s\n", (unsigned long long)seed, dt);
        }
        if (res.violation) {
            bad++;
            printf("VIOLATION seed %llu at step %llu: %s\nreplay: raftsim --seed %llu --trace\n",
                   (unsigned long long)seed, (unsigned long long)res.step, res.why,
                   (unsigned long long)seed);
            fflush(stdout);
            if (stop) {
                break;
            }
        } else {
            ok++;
        }
    }
    char buf[64];
    int len =
        snprintf(buf, sizeof(buf), "%llu %llu\n", (unsigned long long)ok, (unsigned long long)bad);
    if (write(fd, buf, (size_t)len) != len) {
        _exit(3);
    }
}

static int sweep(uint64_t first, uint64_t n, uint32_t jobs, bool stop)
{
    double t0 = now_s();
    int fds[SIM_MAX_NODES * 8][2];
    pid_t pids[SIM_MAX_NODES * 8];
    fflush(stdout);
    for (uint32_t k = 0; k < jobs; k++) {
        if (pipe(fds[k]) != 0) {
            perror("pipe");
            return 2;
        }
        pids[k] = fork();
        if (pids[k] < 0) {
            perror("fork");
            return 2;
        }
        if (pids[k] == 0) {
            close(fds[k][0]);
            worker(first, n, k, jobs, stop, fds[k][1]);
            fflush(stdout);
            _exit(0);
        }
        close(fds[k][1]);
    }
    /* Collect results as workers finish; with --stop-on-fail, the first violation ends the
     * sweep (the other workers are stopped). */
    uint64_t ok = 0, bad = 0;
    uint32_t left = jobs;
    bool stopped[SIM_MAX_NODES * 8] = {false};
    while (left > 0) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        uint32_t k = 0;
        while (k < jobs && pids[k] != pid) {
            k++;
        }
        if (k == jobs) {
            continue;
        }
        left--;
        char buf[64] = {0};
        ssize_t got = read(fds[k][0], buf, sizeof(buf) - 1);
        unsigned long long a = 0, b = 0;
        close(fds[k][0]);
        if (stopped[k]) {
            continue;
        }
        if (got <= 0 || sscanf(buf, "%llu %llu", &a, &b) != 2 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "worker %u died (status %d)\n", k, status);
            b++;
        }
        ok += a;
        bad += b;
        if (stop && b > 0) {
            for (uint32_t o = 0; o < jobs; o++) {
                if (o == k || stopped[o]) {
                    continue;
                }
                pid_t w = waitpid(pids[o], NULL, WNOHANG);
                stopped[o] = true;
                if (w == 0) {
                    kill(pids[o], SIGKILL); /* reaped by the loop above */
                } else if (w == pids[o]) {
                    left--; /* already gone: reaped here */
                    close(fds[o][0]);
                }
            }
        }
    }
    double dt = now_s() - t0;
    printf("seeds %llu..%llu: %llu ok, %llu violations (%.1f s, %.0f seeds/s, %u jobs)\n",
           (unsigned long long)first, (unsigned long long)(first + n - 1), (unsigned long long)ok,
           (unsigned long long)bad, dt, dt > 0 ? (double)(ok + bad) / dt : 0, jobs);
    return bad == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    uint64_t seed = 0, first = 1, n = 0, failover = 0;
    uint32_t jobs = 1, nodes = 5;
    bool have_seed = false, trace = false, stop = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--seed") == 0 && v) {
            seed = strtoull(v, NULL, 10);
            have_seed = true;
            i++;
        } else if (strcmp(a, "--seeds") == 0 && v) {
            n = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--first") == 0 && v) {
            first = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--jobs") == 0 && v) {
            jobs = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--failover") == 0 && v) {
            failover = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--nodes") == 0 && v) {
            nodes = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--trace") == 0) {
            trace = true;
        } else if (strcmp(a, "--stop-on-fail") == 0) {
            stop = true;
        } else {
            usage();
        }
    }
    if (have_seed) {
        return run_one(seed, trace);
    }
    if (failover > 0) {
        double mean = 0;
        uint64_t p99 = 0, max = 0;
        if (nodes < 3 || nodes > 7) {
            usage();
        }
        sim_failover(first, (uint32_t)failover, nodes, &mean, &p99, &max);
        printf("failover: %llu trials, %u nodes: ticks from leader crash to new leader: "
               "mean %.1f, p99 %llu, max %llu\n",
               (unsigned long long)failover, nodes, mean, (unsigned long long)p99,
               (unsigned long long)max);
        return 0;
    }
    if (n == 0 || jobs == 0 || jobs > SIM_MAX_NODES * 8) {
        usage();
    }
    return sweep(first, n, jobs, stop);
}
