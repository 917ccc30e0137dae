/* test_node.c - the single-member node: concurrent proposals are applied
 * once each and share transactions (group commit); a full store fails the
 * proposal with ENOSPC and recovers when space returns; a stopped node
 * refuses with ESHUTDOWN; a data directory's incarnation is drawn once
 * (also for one from before incarnations) and stays; a snapshot taken
 * while one is being received keeps the image being received; the member
 * directory filled in only in part still lists the founders in the
 * configuration. */
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>

#include "node.h"
#include "node_internal.h"
#include "store_util.h"

#define THREADS 8
#define PER     100

struct worker {
    struct node *n;
    int id;
    int failures;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char path[64], val[64];
    for (int i = 0; i < PER; i++) {
        snprintf(path, sizeof(path), "/w%d-%d", w->id, i);
        int len = snprintf(val, sizeof(val), "value %d %d", w->id, i);
        struct store_cmd c = {.op = STORE_OP_PUT,
                              .path = path,
                              .path_len = strlen(path),
                              .value = val,
                              .value_len = (size_t)len,
                              .mode = 0644,
                              .time_ns = 1};
        struct store_result r;
        int rc = node_propose(w->n, &c, &r);
        if (rc || r.err) {
            fprintf(stderr, "proposal %s: rc %d err %d\n", path, rc, rc ? 0 : r.err);
            w->failures++;
        }
    }
    return NULL;
}

static void test_concurrent_group_commit(void)
{
    char *dir = tmpdir_make();
    struct node_config cfg = {.data_dir = dir};
    struct node *n;
    char err[256];
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(node_start(n), 0);
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.n = n, .id = i};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(w[i].failures, 0);
    }
    struct node_stats st;
    node_get_stats(n, &st);
    CHECK_EQ(st.proposals, THREADS * PER);
    CHECK(st.batches < st.proposals); /* some proposals shared an apply transaction */
    printf("# %llu proposals in %llu transactions\n", (unsigned long long)st.proposals,
           (unsigned long long)st.batches);
    struct store_stats ss;
    CHECK_EQ(store_get_stats(node_store(n), &ss), 0);
    CHECK_EQ(ss.applied_index, THREADS * PER + 2); /* + configuration and no-op entries */
    CHECK_EQ(ss.revision, THREADS * PER);
    CHECK_EQ(ss.inodes, THREADS * PER + 1);

    /* The command's own errno comes back in the result, not as a failure. */
    struct store_cmd bad = {
        .op = STORE_OP_PUT, .path = "/nope/k", .path_len = 7, .value = "", .time_ns = 1};
    struct store_result r;
    CHECK_EQ(node_propose(n, &bad, &r), 0);
    CHECK_EQ(r.err, ENOENT);
    CHECK_EQ(node_read_barrier(n), 0);

    node_stop(n);
    CHECK_EQ(node_propose(n, &bad, &r), ESHUTDOWN);
    CHECK_EQ(node_read_barrier(n), ESHUTDOWN);
    node_close(n);

    /* Reopened, the next index follows the applied one. */
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(node_start(n), 0);
    struct store_cmd ok = {.op = STORE_OP_PUT,
                           .path = "/after",
                           .path_len = 6,
                           .value = "x",
                           .value_len = 1,
                           .time_ns = 1};
    CHECK_EQ(node_propose(n, &ok, &r), 0);
    CHECK_EQ(r.err, 0);
    CHECK_EQ(store_get_stats(node_store(n), &ss), 0);
    CHECK(ss.applied_index >= THREADS * PER + 4); /* + a no-op of the new term */
    node_close(n);
    rm_rf(dir);
    free(dir);
}

static void test_full_then_recovers(void)
{
    char *dir = tmpdir_make();
    struct node_config cfg = {
        .data_dir = dir, .store = {.map_bytes = 4u << 20}, .timeout_ms = 1000};
    struct node *n;
    char err[256];
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(node_start(n), 0);
    static char big[256 * 1024];
    memset(big, 'b', sizeof(big));
    char path[32];
    int rc = 0, i;
    struct store_result r;
    for (i = 0; i < 64 && !rc; i++) {
        snprintf(path, sizeof(path), "/big%d", i);
        struct store_cmd c = {.op = STORE_OP_PUT,
                              .path = path,
                              .path_len = strlen(path),
                              .value = big,
                              .value_len = sizeof(big),
                              .time_ns = 1};
        rc = node_propose(n, &c, &r);
    }
    /* The write that found no room in the log is refused: it was never
     * durable anywhere, so ENOSPC is a definite answer. */
    CHECK_EQ(rc, ENOSPC);
    int stored = i - 1;
    CHECK(stored > 0);
    /* A refusal asks for an early compaction (within a second), which
     * gives the log's copies of the values back: writes may fit again. Or
     * not: when the tree alone nearly fills the map, nothing fits. (This
     * test once expected the next write refused, then one accepted after
     * the compaction; CI saw each of the two go the other way, 12 writes
     * having fitted before the first refusal in the second case.) So it
     * writes for up to 10 s until a write fits and the map is full again,
     * and checks below that no refused write was ever applied. */
    char again[32];
    int accepted = 0;
    uint64_t until = net_now_ms() + 10000;
    for (;;) {
        snprintf(again, sizeof(again), "/again%d", accepted);
        struct store_cmd c = {.op = STORE_OP_PUT,
                              .path = again,
                              .path_len = strlen(again),
                              .value = big,
                              .value_len = sizeof(big),
                              .time_ns = 1};
        rc = node_propose(n, &c, &r);
        if (!rc && accepted < 64)
            accepted++;
        else if (rc != ENOSPC || accepted || net_now_ms() > until)
            break;
        else
            usleep(50 * 1000);
    }
    CHECK_EQ(rc, ENOSPC); /* a 4 MiB map never takes 64 more */
    printf("# %d writes stored, then %d more after the first refusal\n", stored, accepted);
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = "/more",
                          .path_len = 5,
                          .value = "x",
                          .value_len = 1,
                          .time_ns = 1};
    /* Reads still work and nothing acknowledged was lost. */
    struct store_txn *t;
    struct store_attr a;
    CHECK_EQ(store_txn_begin(node_store(n), &t), 0);
    CHECK_EQ(store_resolve(t, "/big0", 5, &a), 0);
    CHECK_EQ(a.size, sizeof(big));
    /* A refused write is never applied. */
    snprintf(path, sizeof(path), "/big%d", stored);
    CHECK_EQ(store_resolve(t, path, strlen(path), &a), ENOENT);
    CHECK_EQ(store_resolve(t, again, strlen(again), &a), ENOENT);
    store_txn_end(t);
    node_close(n);
    /* Space comes back (a bigger map): the member goes on. */
    cfg.store.map_bytes = 64u << 20;
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(node_start(n), 0);
    CHECK_EQ(node_propose(n, &c, &r), 0);
    CHECK_EQ(r.err, 0);
    CHECK_EQ(store_txn_begin(node_store(n), &t), 0);
    for (int k = 0; k < stored; k++) {
        snprintf(path, sizeof(path), "/big%d", k);
        CHECK_EQ(store_resolve(t, path, strlen(path), &a), 0);
    }
    for (int k = 0; k < accepted; k++) {
        snprintf(path, sizeof(path), "/again%d", k);
        CHECK_EQ(store_resolve(t, path, strlen(path), &a), 0);
    }
    /* Not even after the restart, which applies the log again. */
    snprintf(path, sizeof(path), "/big%d", stored);
    CHECK_EQ(store_resolve(t, path, strlen(path), &a), ENOENT);
    CHECK_EQ(store_resolve(t, again, strlen(again), &a), ENOENT);
    store_txn_end(t);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

static uint64_t incarnation_of(const char *dir)
{
    struct store *s = open_store(dir);
    uint64_t c = 0, m = 0, inc = 0;
    CHECK_EQ(store_identity_get(s, &c, &m, &inc), 0);
    CHECK_EQ(m, 3);
    store_close(s);
    return inc;
}

static void test_incarnation(void)
{
    char *dir = tmpdir_make();
    struct node_config cfg = {.data_dir = dir, .id = 3, .cluster_id = 42};
    struct node *n;
    char err[256];
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    node_close(n);
    uint64_t first = incarnation_of(dir);
    CHECK(first != 0);
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    node_close(n);
    CHECK(incarnation_of(dir) == first);
    /* Another data directory for the same member: another incarnation. */
    char *other = tmpdir_make();
    cfg.data_dir = other;
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    node_close(n);
    uint64_t second = incarnation_of(other);
    CHECK(second != 0 && second != first);
    /* A data directory from before incarnations (a 16-byte identity:
     * cluster, member) gets one at its next start, and keeps it. */
    char path[600];
    snprintf(path, sizeof(path), "%s/store", other);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char old[16] = {42, 0, 0, 0, 0, 0, 0, 0, 3};
    MDB_val k = {.mv_size = 8, .mv_data = "identity"}, v = {.mv_size = 16, .mv_data = old};
    CHECK_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, STORE_DEFAULT_MAP_BYTES);
    CHECK_EQ(mdb_env_open(env, path, 0, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    CHECK_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    CHECK_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    snprintf(path, sizeof(path), "%s/identity", other); /* nor had they the file */
    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(incarnation_of(other), 0);
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    node_close(n);
    uint64_t third = incarnation_of(other);
    CHECK(third != 0 && third != second);
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    node_close(n);
    CHECK(incarnation_of(other) == third);
    /* and its identity is checked as before */
    cfg.id = 4;
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), EINVAL);
    CHECK(incarnation_of(other) == third);
    rm_rf(other);
    free(other);
    rm_rf(dir);
    free(dir);
}

static void put_keys(struct node *n, const char *prefix, int count)
{
    for (int i = 0; i < count; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/%s%d", prefix, i);
        struct store_cmd c = {.op = STORE_OP_PUT,
                              .path = path,
                              .path_len = strlen(path),
                              .value = path,
                              .value_len = strlen(path),
                              .time_ns = 1};
        struct store_result r;
        CHECK_EQ(node_propose(n, &c, &r), 0);
        CHECK_EQ(r.err, 0);
    }
}

static bool listed(struct node *n, uint64_t id)
{
    struct node_member list[NODE_MAX_MEMBERS];
    size_t count = 0;
    CHECK_EQ(node_members_list(n, list, &count), 0);
    for (size_t i = 0; i < count; i++)
        if (list[i].id == id)
            return true;
    return false;
}

/* The member directory filled in only in part (found by CI: a new leader's
 * own entry committed before the founders' were written; it dropped the
 * other two as peers, refused their connections, and so could never commit
 * their entries: the cluster was wedged). A founder in the configuration
 * keeps its --peers address until its entry is written; one removed from
 * the configuration is not brought back. */
static void test_directory_filled_in_part(void)
{
    char *dir = tmpdir_make();
    struct node_config cfg = {.data_dir = dir, .id = 3, .cluster_id = 7, .n_members = 3};
    for (int i = 0; i < 3; i++) {
        cfg.members[i].id = (uint64_t)i + 1;
        snprintf(cfg.members[i].addr, sizeof(cfg.members[i].addr), "127.0.0.1:%d", 7401 + i);
    }
    struct node *n;
    char err[256];
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    n->applied_conf = (struct raft_conf){.voters = {1, 2, 3}, .n_voters = 3};
    CHECK(listed(n, 1) && listed(n, 2) && listed(n, 3));
    /* Only this member's own entry is written. */
    struct store_cmd c = {.op = STORE_OP_MEMBER_SET,
                          .member_id = 3,
                          .path = "127.0.0.1:7403",
                          .path_len = 14,
                          .incarnation = 99,
                          .time_ns = 1};
    void *data;
    size_t len;
    CHECK_EQ(store_cmd_encode(&c, &data, &len), 0);
    struct store_result r;
    struct store_txn *t;
    CHECK_EQ(store_txn_begin(n->store, &t), 0);
    uint64_t applied = store_txn_applied_index(t);
    store_txn_end(t);
    CHECK_EQ(store_apply(n->store, applied + 1, data, len, &r), 0);
    CHECK_EQ(r.err, 0);
    free(data);
    CHECK(listed(n, 1) && listed(n, 2) && listed(n, 3));
    /* Member 2 removed from the configuration before its entry came. */
    n->applied_conf = (struct raft_conf){.voters = {1, 3}, .n_voters = 2};
    CHECK(listed(n, 1) && !listed(n, 2) && listed(n, 3));
    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* The receiving side of a transfer, driven the way the loop drives it: a
 * follower that is catching up takes a snapshot of its own between two
 * chunks (found by tests/chaos: the member then failed closed with "not a
 * raftfs snapshot image"). */
static void test_snapshot_taken_during_transfer(void)
{
    char *src_dir = tmpdir_make(), *dst_dir = tmpdir_make();
    struct node_config src_cfg = {.data_dir = src_dir}, dst_cfg = {.data_dir = dst_dir};
    struct node *src, *dst;
    char err[256];
    CHECK_EQ(node_open(&src, &src_cfg, err, sizeof(err)), 0);
    CHECK_EQ(node_start(src), 0);
    put_keys(src, "src", 200);
    node_stop(src);
    CHECK_EQ(node_snap_take(src), 0);
    struct store_log_snapshot ls;
    CHECK_EQ(store_log_snapshot(node_store(src), &ls), 0);
    struct raft_snapshot_meta meta = {
        .index = ls.index, .term = ls.term, .size = ls.size, .conf = src->applied_conf};
    char path[600];
    snprintf(path, sizeof(path), "%s/snapshots/snap-%llu-%llu", src_dir,
             (unsigned long long)ls.index, (unsigned long long)ls.term);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    uint8_t *image = malloc(ls.size);
    CHECK_EQ(fread(image, 1, ls.size, f), ls.size);
    fclose(f);
    node_close(src);

    CHECK_EQ(node_open(&dst, &dst_cfg, err, sizeof(err)), 0);
    CHECK_EQ(node_start(dst), 0);
    put_keys(dst, "dst", 10);
    node_stop(dst);
    size_t half = ls.size / 2;
    struct raft_snapshot_chunk c = {.snap = meta, .offset = 0, .data = image, .len = half};
    /* A chunk past the start of an image never received is refused. */
    struct raft_snapshot_chunk orphan = {
        .snap = meta, .offset = half, .data = image + half, .len = ls.size - half, .last = true};
    CHECK_EQ(node_snap_chunk(dst, &orphan), EIO);
    snprintf(path, sizeof(path), "%s/snapshots/incoming-%llu-%llu", dst_dir,
             (unsigned long long)ls.index, (unsigned long long)ls.term);
    CHECK(access(path, F_OK) != 0);

    CHECK_EQ(node_snap_chunk(dst, &c), 0);
    CHECK_EQ(node_snap_take(dst), 0); /* its own snapshot, between two chunks */
    CHECK_EQ(access(path, F_OK), 0);
    CHECK_EQ(node_snap_chunk(dst, &orphan), 0);
    CHECK_EQ(node_snap_install(dst, &meta), 0);
    struct store_txn *t;
    struct store_attr a;
    CHECK_EQ(store_txn_begin(node_store(dst), &t), 0);
    CHECK_EQ(store_resolve(t, "/src199", 7, &a), 0);
    CHECK_EQ(store_resolve(t, "/dst0", 5, &a), ENOENT);
    store_txn_end(t);
    node_close(dst);
    free(image);
    rm_rf(src_dir);
    rm_rf(dst_dir);
    free(src_dir);
    free(dst_dir);
}

/* The roles `member list` shows while a membership changes (found by
 * tests/chaos seed 101: the list showed the latest configuration, joint or
 * not yet committed, with the member being promoted as a plain follower; the
 * harness then destroyed the leader, which the old half still needed). */
static void test_member_roles(void)
{
    struct raft_conf old = {.voters = {17, 18}, .n_voters = 2, .learners = {19}, .n_learners = 1};
    struct raft_conf joint = {
        .voters = {17, 18, 19}, .n_voters = 3, .voters_old = {17, 18}, .n_voters_old = 2};
    struct raft_conf fresh = {.voters = {17, 18, 19}, .n_voters = 3};
    struct raft_conf removed = {.voters = {17, 19}, .n_voters = 2};
    /* Steady, with a learner. */
    CHECK(!strcmp(node_member_role(&old, &old, 17, 17), "leader"));
    CHECK(!strcmp(node_member_role(&old, &old, 18, 17), "follower"));
    CHECK(!strcmp(node_member_role(&old, &old, 19, 17), "learner"));
    /* C_old,new appended, then committed, then C_new appended: 19 is joining
     * until C_new is known committed; 18 votes in everything throughout. */
    const struct raft_conf *steps[][2] = {{&joint, &old}, {&joint, &joint}, {&fresh, &joint}};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        CHECK(!strcmp(node_member_role(steps[i][0], steps[i][1], 19, 17), "joining"));
        CHECK(!strcmp(node_member_role(steps[i][0], steps[i][1], 18, 17), "follower"));
    }
    CHECK(!strcmp(node_member_role(&fresh, &fresh, 19, 17), "follower"));
    /* Removing 18: it is leaving until the removal is committed. */
    CHECK(!strcmp(node_member_role(&removed, &fresh, 18, 17), "leaving"));
    CHECK(!strcmp(node_member_role(&removed, &fresh, 19, 17), "follower"));
    /* A member that knows of no leader shows none. */
    CHECK(!strcmp(node_member_role(&fresh, &fresh, 17, 0), "follower"));
}

/* Runs a node in a child on dir as boot `boot`, proposes n puts /rI, and
 * is SIGKILLed once they are all acknowledged: the store left open, its
 * apply commits never fsync'ed. */
static void run_and_kill(const char *dir, const char *boot, int first, int n)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct node_config cfg = {.data_dir = dir, .snapshot_entries = 50};
        cfg.store.boot_id = boot;
        struct node *nd;
        char err[256];
        if (node_open(&nd, &cfg, err, sizeof(err)) || node_start(nd))
            _exit(3);
        for (int i = first; i < first + n; i++) {
            char path[32];
            snprintf(path, sizeof(path), "/r%d", i);
            struct store_cmd c = {.op = STORE_OP_PUT,
                                  .path = path,
                                  .path_len = strlen(path),
                                  .value = "v",
                                  .value_len = 1,
                                  .mode = 0644,
                                  .time_ns = 1};
            struct store_result r;
            if (node_propose(nd, &c, &r) || r.err)
                _exit(4);
        }
        if (write(p[1], "x", 1) != 1)
            _exit(5);
        pause();
        _exit(0);
    }
    close(p[1]);
    char x;
    CHECK_EQ(read(p[0], &x, 1), 1);
    close(p[0]);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
}

/* Every /rI for I < n is there once the node has applied its log. */
static bool all_there(struct node *n, int count)
{
    for (int tries = 0; tries < 500; tries++) {
        struct store_txn *t;
        if (store_txn_begin(node_store(n), &t))
            return false;
        int found = 0;
        for (int i = 0; i < count; i++) {
            char path[32];
            struct store_attr a;
            snprintf(path, sizeof(path), "/r%d", i);
            found += !store_resolve(t, path, strlen(path), &a);
        }
        store_txn_end(t);
        if (found == count)
            return true;
        usleep(10000);
    }
    return false;
}

/* Apply commits are not fsync'ed. Killed, the same boot goes on with its
 * store; a store another boot left open, here with its meta pages
 * destroyed as a power loss could leave them, is rebuilt from the
 * snapshot image and the log, and loses nothing acknowledged. */
static void test_rebuild_after_another_boot(void)
{
    char *dir = tmpdir_make();
    char path[600];
    struct stat sb;
    run_and_kill(dir, "boot-A", 0, 120);
    snprintf(path, sizeof(path), "%s/open-boot", dir);
    CHECK_EQ(stat(path, &sb), 0); /* left open */
    /* The same boot: trusted as it is. */
    struct node_config cfg = {.data_dir = dir, .snapshot_entries = 50};
    cfg.store.boot_id = "boot-A";
    struct node *n;
    char err[256];
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    CHECK(!store_rebuilt(node_store(n), NULL));
    CHECK_EQ(node_start(n), 0);
    CHECK(all_there(n, 120));
    node_close(n);
    CHECK(stat(path, &sb) != 0); /* closed cleanly */
    /* Killed again, then the machine "restarts" with the tree's meta pages
     * gone: LMDB could not open it at all. */
    run_and_kill(dir, "boot-A", 120, 80);
    snprintf(path, sizeof(path), "%s/store/data.mdb", dir);
    int fd = open(path, O_WRONLY);
    char junk[8192];
    memset(junk, 0xa5, sizeof(junk));
    CHECK_EQ(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    close(fd);
    cfg.store.boot_id = "boot-B";
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    uint64_t from = 0;
    CHECK(store_rebuilt(node_store(n), &from));
    CHECK(from >= 50); /* from an image, not from index 1 */
    CHECK_EQ(node_start(n), 0);
    CHECK(all_there(n, 200));
    node_close(n);
    snprintf(path, sizeof(path), "%s/store.untrusted/data.mdb", dir);
    CHECK_EQ(stat(path, &sb), 0); /* kept for a look */
    /* Reopened on that boot: nothing to rebuild, all there. */
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    CHECK(!store_rebuilt(node_store(n), NULL));
    CHECK_EQ(node_start(n), 0);
    CHECK(all_there(n, 200));
    node_close(n);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    RUN(test_member_roles);
    RUN(test_concurrent_group_commit);
    RUN(test_full_then_recovers);
    RUN(test_incarnation);
    RUN(test_snapshot_taken_during_transfer);
    RUN(test_directory_filled_in_part);
    RUN(test_rebuild_after_another_boot);
    CHECK_DONE();
}
