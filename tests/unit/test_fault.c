/* test_fault.c - the fault-injection loops (fault/fault.h): for every call
 * site of the storage seam, and each way it can fail, run a member's
 * workload with the N-th call failing, for N = 1, 2, 3, ... until the
 * workload no longer reaches an N-th call. Each run must end with the
 * member either having answered every write (ok, or an error) or having
 * failed closed; then the data directory must pass the offline check, and
 * a restart must hold every write that was acknowledged, and none that was
 * refused with a definite error.
 *
 * The member is a single one in this process (every durable write is its
 * own: log batches, segment files, tree commits and syncs, snapshot images
 * every few entries and the log compactions after them, the small files).
 * RAFTFS_FAULT_STEP=K runs every K-th N past the first 24 (default 1: all);
 * RAFTFS_FAULT_ONLY=SITE runs only that site (fault_site_name), and
 * RAFTFS_FAULT_FROM=N starts there (to look at one failure).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fault.h"
#include "node.h"
#include "store_util.h"

#define KEYS   24
#define VALUE  4000 /* bytes: the log rolls to new 64 KiB segments */
#define N_FULL 24

enum state { NEVER, ACKED, REFUSED, UNKNOWN };

struct model {
    enum state put[KEYS], del[KEYS];
};

static void value_of(int k, char *buf)
{
    memset(buf, 'a' + k % 26, VALUE);
    snprintf(buf, 24, "key %d|", k);
}

/* Whether the node's answer is definite: the write was refused before it
 * was made durable anywhere (never applied later). */
static bool definite_refusal(int rc)
{
    return rc == ENOSPC || rc == EFBIG || rc == EINVAL || rc == ENOMEM;
}

static void record(enum state *st, int rc, const struct store_result *r)
{
    if (!rc && !r->err)
        *st = ACKED;
    else if (!rc) /* applied, with the command's own error */
        *st = REFUSED;
    else
        *st = definite_refusal(rc) ? REFUSED : UNKNOWN;
}

static int put(struct node *n, int k)
{
    char path[32], val[VALUE];
    snprintf(path, sizeof(path), "/k%d", k);
    value_of(k, val);
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = path,
                          .path_len = strlen(path),
                          .value = val,
                          .value_len = VALUE,
                          .mode = 0644,
                          .time_ns = 1};
    struct store_result r;
    int rc = node_propose(n, &c, &r);
    return rc ? rc : r.err ? -r.err : 0;
}

static int del(struct node *n, int k)
{
    char path[32];
    snprintf(path, sizeof(path), "/k%d", k);
    struct store_cmd c = {.op = STORE_OP_DELETE, .path = path, .path_len = strlen(path)};
    struct store_result r;
    int rc = node_propose(n, &c, &r);
    return rc ? rc : r.err ? -r.err : 0;
}

static void note(enum state *st, int rc)
{
    struct store_result r = {.err = rc < 0 ? -rc : 0};
    record(st, rc > 0 ? rc : 0, &r);
}

static struct node_config config(const char *dir)
{
    struct node_config cfg = {.data_dir = dir, .snapshot_entries = 8, .timeout_ms = 500};
    cfg.store.log_segment_bytes = 64u << 10;
    cfg.store.boot_id = "boot-fault";
    return cfg;
}

/* The workload: a put of every key, and a delete of every third one, a
 * few keys after it was put. */
static void workload(struct node *n, struct model *m)
{
    for (int k = 0; k < KEYS; k++) {
        note(&m->put[k], put(n, k));
        if (k >= 4 && (k - 4) % 3 == 0)
            note(&m->del[k - 4], del(n, k - 4));
    }
}

/* Checks the restarted member against the model: 0 or the number of
 * mismatches (each printed). */
static int verify(struct node *n, const struct model *m, const char *what)
{
    int bad = 0;
    struct store_txn *t;
    if (store_txn_begin(node_store(n), &t)) {
        fprintf(stderr, "%s: cannot read the store\n", what);
        return 1;
    }
    for (int k = 0; k < KEYS; k++) {
        char path[32], want[VALUE];
        snprintf(path, sizeof(path), "/k%d", k);
        struct store_attr a;
        bool present = !store_resolve(t, path, strlen(path), &a);
        bool may_present = m->put[k] == ACKED || m->put[k] == UNKNOWN;
        bool must_present = m->put[k] == ACKED && (m->del[k] == NEVER || m->del[k] == REFUSED);
        bool must_absent = !may_present || m->del[k] == ACKED;
        if (present && must_absent) {
            fprintf(stderr, "%s: /k%d is there (put %d, delete %d)\n", what, k, m->put[k],
                    m->del[k]);
            bad++;
        }
        if (!present && must_present) {
            fprintf(stderr, "%s: acknowledged /k%d is lost (delete %d)\n", what, k, m->del[k]);
            bad++;
        }
        if (present) {
            const void *v = NULL;
            size_t len = 0;
            value_of(k, want);
            if (store_read(t, a.ino, &v, &len) || len != VALUE || memcmp(v, want, VALUE)) {
                fprintf(stderr, "%s: /k%d has the wrong value\n", what, k);
                bad++;
            }
        }
    }
    store_txn_end(t);
    return bad;
}

static void problem(void *ctx, const char *msg)
{
    fprintf(stderr, "%s: check: %s\n", (const char *)ctx, msg);
}

struct way {
    enum fault_site site;
    int err;
    bool short_io;
    enum fault_mode mode;
};

static const struct way ways[] = {
    {FAULT_LOG_WRITE, EIO, false, FAULT_ONCE},
    {FAULT_LOG_WRITE, ENOSPC, false, FAULT_ONCE},
    {FAULT_LOG_WRITE, ENOSPC, false, FAULT_FROM_THEN},
    {FAULT_LOG_WRITE, 0, true, FAULT_ONCE},
    {FAULT_LOG_WRITE, EINTR, false, FAULT_ONCE},
    {FAULT_LOG_SYNC, EIO, false, FAULT_ONCE},
    {FAULT_LOG_RENAME, EIO, false, FAULT_ONCE},
    {FAULT_LOG_RENAME, ENOSPC, false, FAULT_ONCE},
    {FAULT_TREE_COMMIT, EIO, false, FAULT_ONCE},
    {FAULT_TREE_COMMIT, ENOSPC, false, FAULT_ONCE},
    {FAULT_TREE_COMMIT, ENOSPC, false, FAULT_FROM_THEN},
    {FAULT_TREE_SYNC, EIO, false, FAULT_ONCE},
    {FAULT_SNAP_WRITE, EIO, false, FAULT_ONCE},
    {FAULT_SNAP_WRITE, ENOSPC, false, FAULT_ONCE},
    {FAULT_SNAP_WRITE, 0, true, FAULT_ONCE},
    {FAULT_SNAP_WRITE, EINTR, false, FAULT_ONCE},
    {FAULT_SNAP_SYNC, EIO, false, FAULT_ONCE},
    {FAULT_SNAP_RENAME, EIO, false, FAULT_ONCE},
    {FAULT_FILE_WRITE, EIO, false, FAULT_ONCE},
    {FAULT_FILE_WRITE, ENOSPC, false, FAULT_ONCE},
    {FAULT_FILE_WRITE, EINTR, false, FAULT_ONCE},
    {FAULT_ALLOC, ENOMEM, false, FAULT_ONCE},
};

static const char *err_name(const struct way *w)
{
    if (w->short_io)
        return "short";
    return w->err == EIO      ? "EIO"
           : w->err == ENOSPC ? "ENOSPC"
           : w->err == ENOMEM ? "ENOMEM"
           : w->err == EINTR  ? "EINTR"
                              : "?";
}

/* One run with call N of the way failing: whether the call was reached. */
static bool run_one(const struct way *w, uint64_t nth, int *failures)
{
    char what[96];
    snprintf(what, sizeof(what), "%s %s%s at call %llu", fault_site_name(w->site), err_name(w),
             w->mode == FAULT_FROM_THEN ? " (and after)" : "", (unsigned long long)nth);
    char *dir = tmpdir_make();
    struct node_config cfg = config(dir);
    struct model m = {0};
    struct node *n = NULL;
    char err[512];
    fault_arm(w->site, nth, w->err, w->short_io, w->mode);
    if (!node_open(&n, &cfg, err, sizeof(err))) {
        if (!node_start(n))
            workload(n, &m);
        node_close(n);
    }
    bool fired = fault_fired();
    fault_disarm();

    int bad = 0;
    struct store_check_report rep;
    if (store_check(dir, &rep, problem, what, err, sizeof(err)) && rep.problems == 0) {
        /* a directory the open gave up on early may hold no store yet */
    } else if (rep.problems) {
        fprintf(stderr, "%s: the check found %llu problems\n", what,
                (unsigned long long)rep.problems);
        bad++;
    }
    n = NULL;
    if (node_open(&n, &cfg, err, sizeof(err)) || node_start(n)) {
        fprintf(stderr, "%s: the restart failed: %s\n", what, err);
        bad++;
    } else {
        /* A restarted member applies what its log holds beyond the tree
         * once it leads: a read barrier waits for that (bounded). */
        int brc = ETIMEDOUT;
        for (int tries = 0; tries < 20 && brc; tries++)
            brc = node_read_barrier(n);
        if (brc) {
            fprintf(stderr, "%s: no read barrier after the restart: %s\n", what, strerror(brc));
            bad++;
        }
        bad += verify(n, &m, what);
        /* and it takes writes again */
        if (put(n, 0)) {
            fprintf(stderr, "%s: the restarted member refuses writes\n", what);
            bad++;
        }
    }
    node_close(n);
    rm_rf(dir);
    free(dir);
    *failures += bad;
    CHECK_EQ(bad, 0);
    return fired;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    tmpdir_prefer_shm(); /* the seam is under test, not the disk */
    const char *step_env = getenv("RAFTFS_FAULT_STEP");
    uint64_t step = step_env ? strtoull(step_env, NULL, 10) : 1;
    if (!step)
        step = 1;
    const char *only = getenv("RAFTFS_FAULT_ONLY"), *from = getenv("RAFTFS_FAULT_FROM");
    int failures = 0;
    for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
        const struct way *w = &ways[i];
        if (only && strcmp(only, fault_site_name(w->site)))
            continue;
        uint64_t nth = from ? strtoull(from, NULL, 10) : 1, runs = 0;
        while (run_one(w, nth, &failures)) {
            runs++;
            nth += nth < N_FULL ? 1 : step;
        }
        printf("%-16s %-7s %-10s failed calls 1..%llu (%llu runs)\n", fault_site_name(w->site),
               err_name(w), w->mode == FAULT_FROM_THEN ? "and after" : "once",
               (unsigned long long)(nth - 1), (unsigned long long)runs);
        CHECK(runs > 0); /* the workload reaches every site */
    }
    CHECK_DONE();
}
