/* test_fault_net.c - the fault-injection loops for connections
 * (fault/fault.h: net-send, net-recv). Three members in this process, on
 * loopback, and a client; for each way a connection's read or write can
 * fail (ECONNRESET, EPIPE, EINTR, a short read or write), for N = 1, 2,
 * 3, ... the N-th call of the site from now fails, during a few writes
 * through the client. A failed call may break a connection (the members
 * and the client connect again) but nothing else: after every N the
 * cluster takes a write within a few seconds, and at the end every write
 * that was acknowledged reads back, linearizably, from every member.
 * RAFTFS_FAULT_NET_RUNS=K: N up to K per way (default 40).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fault.h"
#include "net_client.h"
#include "net_util.h"
#include "node.h"
#include "store_util.h"

#define MEMBERS 3
#define MAX_ACK 4096

struct cluster {
    char *dir[MEMBERS];
    char addr[MEMBERS][64];
    struct node *n[MEMBERS];
    char endpoints[256];
};

static void cluster_start(struct cluster *cl)
{
    struct node_config cfg = {.cluster_id = 42, .n_members = MEMBERS, .timeout_ms = 2000};
    for (int i = 0; i < MEMBERS; i++) {
        free_addr(cl->addr[i], sizeof(cl->addr[i]));
        cfg.members[i] = (struct node_member){.id = (uint64_t)i + 1};
        snprintf(cfg.members[i].addr, sizeof(cfg.members[i].addr), "%s", cl->addr[i]);
    }
    snprintf(cl->endpoints, sizeof(cl->endpoints), "%s,%s,%s", cl->addr[0], cl->addr[1],
             cl->addr[2]);
    for (int i = 0; i < MEMBERS; i++) {
        char err[256];
        cl->dir[i] = tmpdir_make();
        cfg.data_dir = cl->dir[i];
        cfg.id = (uint64_t)i + 1;
        cfg.listen = cl->addr[i];
        CHECK_EQ(node_open(&cl->n[i], &cfg, err, sizeof(err)), 0);
        CHECK_EQ(node_start(cl->n[i]), 0);
    }
}

static void cluster_stop(struct cluster *cl)
{
    for (int i = 0; i < MEMBERS; i++) {
        node_close(cl->n[i]);
        rm_rf(cl->dir[i]);
        free(cl->dir[i]);
    }
}

/* A put through the client: 0 (acknowledged), or why not. */
static int put(struct net_client *c, const char *path, const char *value)
{
    Raftfs__ClientResponse *resp;
    int rc = client_put(c, path, value, &resp);
    if (!rc)
        rc = (int)resp->err;
    net_client_response_free(resp);
    return rc;
}

/* Starts cl and a client of it; returns the client once a first write went
 * through. */
static struct net_client *cluster_up(struct cluster *cl)
{
    cluster_start(cl);
    struct net_client_config cfg = {
        .endpoints = cl->endpoints, .cluster_id = 42, .timeout_ms = 3000};
    struct net_client *c;
    char err[256];
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    int rc = ETIMEDOUT;
    for (int i = 0; i < 10 && rc; i++)
        rc = put(c, "/ready", "yes");
    CHECK_EQ(rc, 0);
    return c;
}

/* A linearizable get of path from one member: 0 if it holds value. */
static int get_from(const char *addr, const char *path, const char *value)
{
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 5000};
    struct net_client *c;
    char err[256];
    if (net_client_open(&c, &cfg, err, sizeof(err)))
        return EINVAL;
    Raftfs__ClientResponse *resp;
    int rc = client_get(c, path, &resp);
    if (!rc && resp->err)
        rc = (int)resp->err;
    if (!rc && (!resp->has_value || resp->value.len != strlen(value) ||
                memcmp(resp->value.data, value, resp->value.len)))
        rc = EBADMSG;
    net_client_response_free(resp);
    net_client_close(c);
    return rc;
}

struct way {
    enum fault_site site;
    int err;
    bool short_io;
};

static const struct way ways[] = {
    {FAULT_NET_SEND, ECONNRESET, false}, {FAULT_NET_SEND, EPIPE, false},
    {FAULT_NET_SEND, EINTR, false},      {FAULT_NET_SEND, 0, true},
    {FAULT_NET_RECV, ECONNRESET, false}, {FAULT_NET_RECV, EINTR, false},
    {FAULT_NET_RECV, 0, true},
};

static const char *err_name(const struct way *w)
{
    return w->short_io            ? "short"
           : w->err == ECONNRESET ? "ECONNRESET"
           : w->err == EPIPE      ? "EPIPE"
           : w->err == EINTR      ? "EINTR"
                                  : "?";
}

struct waiter {
    _Atomic int done;
    _Atomic int rc;
};

static void waiter_done(void *ctx, int rc, const struct store_result *res)
{
    struct waiter *w = ctx;
    (void)res;
    atomic_store(&w->rc, rc);
    atomic_store(&w->done, 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A write proposed while the followers are down, whose retry then finds no
 * room (site "space": the disk looks full), is not refused with ENOSPC: its
 * first proposal is in the leader's log and may still commit. It ends at its
 * deadline with ETIMEDOUT, outcome unknown (found by tests/chaos seed 1,
 * where such a refusal was given and the write applied). */
static void test_no_room_on_a_retry(void)
{
    struct cluster cl;
    struct net_client *c = cluster_up(&cl);
    net_client_close(c);
    int leader = -1;
    for (int i = 0; i < MEMBERS; i++) {
        struct node_status st;
        node_get_status(cl.n[i], &st);
        if (st.leader == st.id)
            leader = i;
    }
    CHECK(leader >= 0);
    for (int i = 0; i < MEMBERS; i++)
        if (i != leader)
            node_stop(cl.n[i]);

    struct store_cmd cmd = {.op = STORE_OP_PUT,
                            .path = "/late",
                            .path_len = 5,
                            .value = "v",
                            .value_len = 1,
                            .time_ns = 1,
                            .client_id = 77,
                            .seq = 1};
    void *data;
    size_t len;
    CHECK_EQ(store_cmd_encode(&cmd, &data, &len), 0);
    struct waiter w = {0};
    CHECK_EQ(node_submit(cl.n[leader], data, len, 77, 1, false, waiter_done, &w), 0);
    sleep_ms(100); /* proposed: in the leader's log, no quorum to commit it */
    CHECK(!atomic_load(&w.done));
    fault_arm(FAULT_SPACE, 1, ENOSPC, false, FAULT_FROM_THEN);
    for (int i = 0; i < 100 && !atomic_load(&w.done); i++)
        sleep_ms(50);
    fault_disarm();
    CHECK(atomic_load(&w.done));
    CHECK_EQ(atomic_load(&w.rc), ETIMEDOUT);
    cluster_stop(&cl);
    printf("no room on a retry: ETIMEDOUT, not ENOSPC\n");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    tmpdir_prefer_shm();
    test_no_room_on_a_retry();
    const char *runs_env = getenv("RAFTFS_FAULT_NET_RUNS");
    uint64_t max_n = runs_env ? strtoull(runs_env, NULL, 10) : 40;
    struct cluster cl;
    struct net_client *c = cluster_up(&cl);

    static char acked[MAX_ACK][32];
    size_t n_acked = 0;
    unsigned serial = 0;
    for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
        const struct way *w = &ways[i];
        uint64_t fired = 0, refused = 0;
        for (uint64_t nth = 1; nth <= max_n; nth++) {
            fault_arm(w->site, nth, w->err, w->short_io, FAULT_ONCE);
            for (int k = 0; k < 6; k++) {
                char path[32];
                snprintf(path, sizeof(path), "/w%u", serial++);
                if (!put(c, path, path) && n_acked < MAX_ACK)
                    snprintf(acked[n_acked++], sizeof(acked[0]), "%s", path);
                else
                    refused++;
            }
            fired += fault_fired();
            fault_disarm();
            /* Whatever broke, the cluster takes a write again soon. */
            int rc = ETIMEDOUT;
            for (int k = 0; k < 5 && rc; k++)
                rc = put(c, "/alive", "yes");
            if (rc) {
                fprintf(stderr, "%s %s at call %llu: no write went through after it: %s\n",
                        fault_site_name(w->site), err_name(w), (unsigned long long)nth,
                        strerror(rc));
                CHECK_EQ(rc, 0);
            }
        }
        printf("%-9s %-10s calls 1..%llu failed in turn, %llu fired, %llu writes not "
               "acknowledged\n",
               fault_site_name(w->site), err_name(w), (unsigned long long)max_n,
               (unsigned long long)fired, (unsigned long long)refused);
        CHECK(fired > 0);
    }
    /* Every acknowledged write, from every member. */
    size_t missing = 0;
    for (size_t k = 0; k < n_acked; k++)
        for (int m = 0; m < MEMBERS; m++)
            if (get_from(cl.addr[m], acked[k], acked[k])) {
                if (missing++ < 10)
                    fprintf(stderr, "acknowledged %s does not read back from member %d\n", acked[k],
                            m + 1);
            }
    printf("%zu acknowledged writes read back from %d members, %zu missing\n", n_acked, MEMBERS,
           missing);
    CHECK_EQ(missing, 0);
    net_client_close(c);
    cluster_stop(&cl);
    CHECK_DONE();
}
