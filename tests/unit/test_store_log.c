/* test_store_log.c - the Raft log on LMDB: appends and replacement from an
 * index, bounds and terms around a snapshot (compacted is not term 0), the
 * hard state, refusal of gaps, damaged records reported (EIO), persistence
 * across reopening and SIGKILL. */
#include <lmdb.h>
#include <signal.h>
#include <sys/wait.h>

#include "store_format.h"
#include "store_log.h"
#include "store_util.h"

static void append(struct store *s, uint64_t from, uint64_t to, uint64_t term)
{
    struct store_log_entry e[64];
    char data[64][32];
    size_t n = 0;
    for (uint64_t i = from; i <= to; i++, n++) {
        snprintf(data[n], sizeof(data[n]), "entry %llu term %llu", (unsigned long long)i,
                 (unsigned long long)term);
        e[n] = (struct store_log_entry){
            .index = i, .term = term, .type = 1, .data = data[n], .len = strlen(data[n])};
    }
    CHECK_EQ(store_log_persist(s, NULL, e, n, true), 0);
}

static uint64_t term_of(struct store *s, uint64_t i)
{
    uint64_t t = 999;
    int rc = store_log_term(s, i, &t);
    return rc ? (uint64_t)-rc : t;
}

static void test_empty_and_append(void)
{
    struct tstore t;
    tstore_init(&t);
    uint64_t first, last;
    struct store_hard_state hs;
    CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
    CHECK_EQ(first, 1);
    CHECK_EQ(last, 0);
    CHECK_EQ(store_log_hard_state(t.s, &hs), 0);
    CHECK_EQ(hs.term + hs.vote + hs.commit, 0);
    CHECK_EQ(term_of(t.s, 0), 0);
    CHECK_EQ(term_of(t.s, 1), (uint64_t)-ENOENT);

    struct store_hard_state w = {.term = 3, .vote = 2, .commit = 0};
    CHECK_EQ(store_log_persist(t.s, &w, NULL, 0, true), 0);
    append(t.s, 1, 10, 3);
    CHECK_EQ(store_log_hard_state(t.s, &hs), 0);
    CHECK_EQ(hs.term, 3);
    CHECK_EQ(hs.vote, 2);
    CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
    CHECK_EQ(first, 1);
    CHECK_EQ(last, 10);
    CHECK_EQ(term_of(t.s, 10), 3);
    CHECK_EQ(term_of(t.s, 11), (uint64_t)-ENOENT);

    struct store_log_entry *e;
    size_t n;
    CHECK_EQ(store_log_entries(t.s, 2, 6, 1 << 20, &e, &n), 0);
    CHECK_EQ(n, 4);
    CHECK_EQ(e[0].index, 2);
    CHECK_MEM(e[3].data, e[3].len, "entry 5 term 3");
    free(e);
    /* max_bytes: whole entries only, but at least one. */
    CHECK_EQ(store_log_entries(t.s, 1, 11, 30, &e, &n), 0);
    CHECK_EQ(n, 2);
    free(e);
    CHECK_EQ(store_log_entries(t.s, 1, 11, 1, &e, &n), 0);
    CHECK_EQ(n, 1);
    free(e);
    CHECK_EQ(store_log_entries(t.s, 5, 12, 1 << 20, &e, &n), ENOENT);
    CHECK_EQ(store_log_entries(t.s, 5, 5, 1 << 20, &e, &n), EINVAL);

    /* Replace from 6: entries 6.. now term 4, and 9, 10 are gone. */
    append(t.s, 6, 8, 4);
    CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
    CHECK_EQ(last, 8);
    CHECK_EQ(term_of(t.s, 5), 3);
    CHECK_EQ(term_of(t.s, 6), 4);
    CHECK_EQ(term_of(t.s, 9), (uint64_t)-ENOENT);

    /* Gaps and broken batches are refused and change nothing. */
    struct store_log_entry gap = {.index = 10, .term = 4, .type = 1, .data = "x", .len = 1};
    CHECK_EQ(store_log_persist(t.s, NULL, &gap, 1, true), EINVAL);
    struct store_log_entry bad[2] = {{.index = 9, .term = 4}, {.index = 11, .term = 4}};
    CHECK_EQ(store_log_persist(t.s, NULL, bad, 2, true), EINVAL);
    CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
    CHECK_EQ(last, 8);

    /* Reopened, all of it is still there. */
    store_close(t.s);
    t.s = open_store(t.dir);
    CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
    CHECK_EQ(last, 8);
    CHECK_EQ(store_log_hard_state(t.s, &hs), 0);
    CHECK_EQ(hs.term, 3);
    tstore_fini(&t);
}

static void test_compaction(void)
{
    struct tstore t;
    tstore_init(&t);
    append(t.s, 1, 10, 2);
    struct store_log_snapshot snap = {.index = 5, .term = 2, .size = 1234, .conf_len = 3};
    memcpy(snap.conf, "abc", 3);
    CHECK_EQ(store_log_compact(t.s, &snap, false), 0);
    uint64_t first, last;
    CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
    CHECK_EQ(first, 6);
    CHECK_EQ(last, 10);
    CHECK_EQ(term_of(t.s, 5), 2);                           /* the snapshot's term */
    CHECK_EQ(term_of(t.s, 4), (uint64_t)-STORE_ECOMPACTED); /* compacted, not term 0 */
    struct store_log_entry *e;
    size_t n;
    CHECK_EQ(store_log_entries(t.s, 5, 7, 1 << 20, &e, &n), STORE_ECOMPACTED);
    struct store_log_snapshot got;
    CHECK_EQ(store_log_snapshot(t.s, &got), 0);
    CHECK_EQ(got.index, 5);
    CHECK_EQ(got.size, 1234);
    CHECK_MEM(got.conf, got.conf_len, "abc");
    /* Appending below the snapshot is refused. */
    struct store_log_entry low = {.index = 5, .term = 2, .type = 1, .data = "x", .len = 1};
    CHECK_EQ(store_log_persist(t.s, NULL, &low, 1, true), EINVAL);
    /* An installed snapshot ahead of the log drops every entry. */
    snap.index = 20;
    snap.term = 3;
    CHECK_EQ(store_log_compact(t.s, &snap, true), 0);
    CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
    CHECK_EQ(first, 21);
    CHECK_EQ(last, 20);
    CHECK_EQ(term_of(t.s, 20), 3);
    append(t.s, 21, 22, 3);
    CHECK_EQ(term_of(t.s, 22), 3);
    /* Going back is refused. */
    snap.index = 10;
    CHECK_EQ(store_log_compact(t.s, &snap, false), EINVAL);
    snap.conf_len = STORE_LOG_CONF_MAX + 1;
    CHECK_EQ(store_log_compact(t.s, &snap, false), EINVAL);
    tstore_fini(&t);
}

/* Flips a byte of a record through LMDB directly. */
static void damage(const char *dir, const char *table, const void *key, size_t klen, size_t at)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/store", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    CHECK_EQ(mdb_env_open(env, path, 0, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, table, 0, &dbi), 0);
    CHECK_EQ(mdb_get(txn, dbi, &k, &v), 0);
    unsigned char *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[at % v.mv_size] ^= 0x40;
    v.mv_data = copy;
    CHECK_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    CHECK_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(copy);
}

static void test_damaged_records(void)
{
    struct tstore t;
    tstore_init(&t);
    struct store_hard_state hs = {.term = 1, .vote = 1};
    CHECK_EQ(store_log_persist(t.s, &hs, NULL, 0, true), 0);
    append(t.s, 1, 3, 1);
    store_close(t.s);
    unsigned char k2[8];
    store_u64be_put(k2, 2);
    damage(t.dir, "log", k2, 8, 20);
    damage(t.dir, "raft", "hard", 4, 12);
    t.s = open_store(t.dir);
    CHECK_EQ(term_of(t.s, 1), 1);
    CHECK_EQ(term_of(t.s, 2), (uint64_t)-EIO);
    struct store_log_entry *e;
    size_t n;
    CHECK_EQ(store_log_entries(t.s, 1, 4, 1 << 20, &e, &n), EIO);
    CHECK_EQ(store_log_hard_state(t.s, &hs), EIO);
    tstore_fini(&t);
}

/* A child appends batches and acknowledges each on a pipe; it is killed at
 * a random moment. The log then holds every acknowledged entry, in one
 * contiguous run, every record intact. */
static void test_kill(void)
{
    char *dir = tmpdir_make();
    { /* create */
        struct store *s = open_store(dir);
        store_close(s);
    }
    for (int round = 0; round < 4; round++) {
        int p[2];
        CHECK_EQ(pipe(p), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            struct store *s = open_store(dir);
            uint64_t first, last;
            if (store_log_bounds(s, &first, &last))
                _exit(3);
            for (uint64_t i = last + 1;; i += 8) {
                append(s, i, i + 7, (uint64_t)round + 1);
                struct store_hard_state hs = {.term = (uint64_t)round + 1, .commit = i + 7};
                if (store_log_persist(s, &hs, NULL, 0, true))
                    _exit(4);
                uint64_t acked = i + 7;
                if (write(p[1], &acked, 8) != 8)
                    _exit(5);
            }
        }
        close(p[1]);
        uint64_t acked = 0, v;
        for (int i = 0; i < 20 + round * 7 && read(p[0], &v, 8) == 8; i++)
            acked = v;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        while (read(p[0], &v, 8) == 8)
            acked = v;
        close(p[0]);
        struct store *s = open_store(dir);
        uint64_t first, last;
        CHECK_EQ(store_log_bounds(s, &first, &last), 0);
        CHECK(last >= acked);
        CHECK_EQ(last % 8, 0); /* batches are atomic */
        struct store_log_entry *e;
        size_t n;
        CHECK_EQ(store_log_entries(s, 1, last + 1, (size_t)-1, &e, &n), 0);
        CHECK_EQ(n, last);
        free(e);
        store_close(s);
    }
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    RUN(test_empty_and_append);
    RUN(test_compaction);
    RUN(test_damaged_records);
    RUN(test_kill);
    CHECK_DONE();
}
