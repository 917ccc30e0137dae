/* test_store_log.c - the Raft log in wal/: appends and replacement from an
 * index, bounds and terms around a snapshot (compacted is not term 0), the
 * hard state, refusal of gaps, damaged batches refused and a torn last one
 * dropped, segments rolled and deleted by compaction, the move from the old
 * LMDB tables, persistence across reopening and SIGKILL. */
#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "store_crc.h"
#include "store_format.h"
#include "store_log.h"
#include "store_wal.h"
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

/* ---- the files ---- */

static void seg_path(char *out, size_t len, const char *dir, uint64_t seq)
{
    snprintf(out, len, "%s/wal/%016llx.seg", dir, (unsigned long long)seq);
}

static size_t count_segments(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/wal", dir);
    DIR *d = opendir(path);
    CHECK(d != NULL);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strstr(de->d_name, ".seg") != NULL;
    if (d)
        closedir(d);
    return n;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The offsets of the batches in a segment (the format: a 32-byte segment
 * header, then batches of a 32-byte header whose bytes 16..19 are the
 * payload's length). */
static size_t batches(const char *path, size_t *off, size_t max)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    size_t n = 0, o = 32;
    unsigned char h[32];
    while (n < max && pread(fd, h, 32, (off_t)o) == 32 && le32(h)) {
        off[n++] = o;
        o += 32 + le32(h + 16);
    }
    close(fd);
    return n;
}

static void patch(const char *path, size_t at, const void *bytes, size_t len)
{
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    unsigned char b[64];
    CHECK(len <= sizeof(b));
    CHECK_EQ(pread(fd, b, len, (off_t)at), (ssize_t)len);
    for (size_t i = 0; i < len; i++)
        b[i] = bytes ? ((const unsigned char *)bytes)[i] : b[i] ^ 0x40;
    CHECK_EQ(pwrite(fd, b, len, (off_t)at), (ssize_t)len);
    close(fd);
}

static int try_open(const char *dir, const struct store_config *cfg, char *err, size_t len)
{
    struct store *s = NULL;
    int rc = store_open(&s, dir, cfg, err, len);
    store_close(s);
    return rc;
}

/* Damage anywhere but in the last batch is refused, with its place. */
static void test_damaged_batch(void)
{
    struct tstore t;
    tstore_init(&t);
    struct store_hard_state hs = {.term = 1, .vote = 1};
    CHECK_EQ(store_log_persist(t.s, &hs, NULL, 0, true), 0);
    append(t.s, 1, 3, 1);
    append(t.s, 4, 6, 1);
    store_close(t.s);
    t.s = NULL;
    char seg[600], err[600];
    seg_path(seg, sizeof(seg), t.dir, 1);
    size_t off[8];
    CHECK_EQ(batches(seg, off, 8), 3);
    patch(seg, off[1] + 60, NULL, 1); /* the second batch's payload */
    CHECK_EQ(try_open(t.dir, NULL, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "the Raft log is damaged") != NULL);
    CHECK(strstr(err, "0000000000000001.seg: batch at offset") != NULL);
    patch(seg, off[1] + 60, NULL, 1); /* back */
    patch(seg, off[1] + 8, NULL, 1);  /* its header's sequence number */
    CHECK_EQ(try_open(t.dir, NULL, err, sizeof(err)), EPROTO);
    patch(seg, off[1] + 8, NULL, 1);
    t.s = open_store(t.dir);
    uint64_t first, last;
    CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
    CHECK_EQ(last, 6);
    CHECK_EQ(store_log_note(t.s)[0], 0);
    tstore_fini(&t);
}

/* The last batch torn by a crash (never acknowledged) is dropped, its bytes
 * cleared, and the log goes on from the batch before. */
static void test_torn_last_batch(void)
{
    for (int how = 0; how < 3; how++) {
        struct tstore t;
        tstore_init(&t);
        append(t.s, 1, 3, 1);
        append(t.s, 4, 6, 1);
        store_close(t.s);
        char seg[600];
        seg_path(seg, sizeof(seg), t.dir, 1);
        size_t off[8];
        CHECK_EQ(batches(seg, off, 8), 2);
        static const unsigned char zeros[32];
        if (how == 0)
            patch(seg, off[1] + 50, NULL, 1); /* a payload sector not written */
        else if (how == 1)
            patch(seg, off[1], zeros, 32); /* the header's sector not written */
        else
            patch(seg, off[1] + 4, NULL, 1); /* the header torn */
        t.s = open_store(t.dir);
        uint64_t first, last;
        CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
        CHECK_EQ(last, 3);
        CHECK(strstr(store_log_note(t.s), "torn by a crash") != NULL);
        append(t.s, 4, 5, 2);
        store_close(t.s);
        t.s = open_store(t.dir);
        CHECK_EQ(store_log_note(t.s)[0], 0); /* cleared: nothing left of it */
        CHECK_EQ(store_log_bounds(t.s, &first, &last), 0);
        CHECK_EQ(last, 5);
        CHECK_EQ(term_of(t.s, 5), 2);
        tstore_fini(&t);
    }
}

static void check_entries(struct store *s, uint64_t from, uint64_t to, uint64_t term_from,
                          uint64_t term)
{
    struct store_log_entry *e;
    size_t n;
    CHECK_EQ(store_log_entries(s, from, to + 1, (size_t)-1, &e, &n), 0);
    CHECK_EQ(n, to - from + 1);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        uint64_t t = from + i >= term_from ? term : 1;
        snprintf(want, sizeof(want), "entry %llu term %llu", (unsigned long long)(from + i),
                 (unsigned long long)t);
        CHECK_MEM(e[i].data, e[i].len, want);
        CHECK_EQ(e[i].term, t);
    }
    free(e);
}

/* Many small segments: entries across them, a conflict that replaces
 * entries of an older segment, compaction deleting the segments it covers;
 * each time reopened to the same log. */
static void test_segments(void)
{
    char *dir = tmpdir_make();
    struct store_config cfg = {.log_segment_bytes = 64 << 10};
    struct store *s = open_store_cfg(dir, &cfg);
    for (uint64_t i = 1; i <= 4000; i += 8)
        append(s, i, i + 7, 1);
    size_t segs = count_segments(dir);
    CHECK(segs >= 4);
    check_entries(s, 1, 4000, 1, 1);
    /* A conflict from 100 (in the first segment) on. */
    append(s, 100, 110, 2);
    store_close(s);
    s = open_store_cfg(dir, &cfg);
    uint64_t first, last;
    CHECK_EQ(store_log_bounds(s, &first, &last), 0);
    CHECK_EQ(first, 1);
    CHECK_EQ(last, 110);
    check_entries(s, 1, 110, 100, 2);
    for (uint64_t i = 111; i <= 3000; i += 8)
        append(s, i, i + 7, 2);
    struct store_hard_state hs = {.term = 2, .vote = 3, .commit = 2000};
    CHECK_EQ(store_log_persist(s, &hs, NULL, 0, true), 0);
    /* Compaction to 2000: the segments that hold only entries up to it go. */
    size_t before = count_segments(dir);
    struct store_log_snapshot snap = {.index = 2000, .term = 2, .size = 0};
    CHECK_EQ(store_log_compact(s, &snap, false), 0);
    size_t after = count_segments(dir);
    CHECK(after < before);
    CHECK(after >= 2);
    store_close(s);
    s = open_store_cfg(dir, &cfg);
    CHECK_EQ(store_log_bounds(s, &first, &last), 0);
    CHECK_EQ(first, 2001);
    CHECK_EQ(last, 3006);
    CHECK_EQ(term_of(s, 2000), 2);
    CHECK_EQ(term_of(s, 1999), (uint64_t)-STORE_ECOMPACTED);
    check_entries(s, 2001, 3006, 1, 2);
    struct store_hard_state got;
    CHECK_EQ(store_log_hard_state(s, &got), 0);
    CHECK_EQ(got.vote, 3);
    CHECK_EQ(got.commit, 2000);
    /* An installed snapshot drops all: every segment but the last goes. */
    snap.index = 5000;
    snap.term = 3;
    CHECK_EQ(store_log_compact(s, &snap, true), 0);
    CHECK_EQ(count_segments(dir), 1);
    append(s, 5001, 5008, 3);
    store_close(s);
    s = open_store_cfg(dir, &cfg);
    CHECK_EQ(store_log_bounds(s, &first, &last), 0);
    CHECK_EQ(first, 5001);
    CHECK_EQ(last, 5008);
    CHECK_EQ(store_log_hard_state(s, &got), 0);
    CHECK_EQ(got.vote, 3);
    /* A batch larger than a segment gets a segment of its own size. */
    static char big[200 << 10];
    memset(big, 'b', sizeof(big));
    struct store_log_entry e = {
        .index = 5009, .term = 3, .type = 1, .data = big, .len = sizeof(big)};
    CHECK_EQ(store_log_persist(s, NULL, &e, 1, true), 0);
    store_close(s);
    s = open_store_cfg(dir, &cfg);
    struct store_log_entry *out;
    size_t n;
    CHECK_EQ(store_log_entries(s, 5009, 5010, (size_t)-1, &out, &n), 0);
    CHECK_EQ(out[0].len, sizeof(big));
    CHECK(memcmp(out[0].data, big, sizeof(big)) == 0);
    free(out);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

static size_t count_suffix(const char *wal, const char *suffix)
{
    DIR *d = opendir(wal);
    CHECK(d != NULL);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strstr(de->d_name, suffix) != NULL;
    if (d)
        closedir(d);
    return n;
}

/* The next segment is made ahead by a helper thread once the last is half
 * full: a writer that fills segments finds each next one ready, one too big
 * for a segment is made in place, and nothing of a spare is left after
 * closing. */
static void test_segments_made_ahead(void)
{
    char *dir = tmpdir_make();
    char wal[600], err[256];
    snprintf(wal, sizeof(wal), "%s/wal", dir);
    CHECK_EQ(mkdir(wal, 0700), 0);
    struct store_wal *w;
    CHECK_EQ(store_wal_open(wal, false, 64 << 10, &w, err, sizeof(err)), 0);
    static char data[1000];
    memset(data, 'd', sizeof(data));
    for (uint64_t i = 1; i <= 400; i++) {
        struct store_log_entry e = {.index = i, .term = 1, .type = 1, .data = data, .len = 100};
        e.len = sizeof(data);
        CHECK_EQ(store_wal_append(w, NULL, &e, 1), 0);
    }
    uint64_t ahead, in_place;
    store_wal_made(w, &ahead, &in_place);
    CHECK(ahead >= 5);     /* 400 KB in 64 KiB segments: 6 or 7 of them */
    CHECK_EQ(in_place, 1); /* the first: none is made ahead for an empty log */
    static char big[200 << 10];
    memset(big, 'b', sizeof(big));
    struct store_log_entry e = {
        .index = 401, .term = 1, .type = 1, .data = big, .len = sizeof(big)};
    CHECK_EQ(store_wal_append(w, NULL, &e, 1), 0);
    store_wal_made(w, &ahead, &in_place);
    CHECK_EQ(in_place, 2);
    size_t segs = count_suffix(wal, ".seg");
    store_wal_close(w);
    CHECK_EQ(count_suffix(wal, ".tmp"), 0);
    CHECK_EQ(count_suffix(wal, ".seg"), segs);
    CHECK_EQ(store_wal_open(wal, false, 64 << 10, &w, err, sizeof(err)), 0);
    uint64_t first, last;
    store_wal_bounds(w, &first, &last);
    CHECK_EQ(first, 1);
    CHECK_EQ(last, 401);
    store_wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* A segment missing in the middle, or a foreign file, is refused. */
static void test_missing_segment(void)
{
    char *dir = tmpdir_make();
    struct store_config cfg = {.log_segment_bytes = 64 << 10};
    struct store *s = open_store_cfg(dir, &cfg);
    for (uint64_t i = 1; i <= 4000; i += 8)
        append(s, i, i + 7, 1);
    store_close(s);
    CHECK(count_segments(dir) >= 3);
    char seg[600], err[600], other[700];
    seg_path(seg, sizeof(seg), dir, 2);
    snprintf(other, sizeof(other), "%s.moved", seg);
    CHECK_EQ(rename(seg, other), 0);
    CHECK_EQ(try_open(dir, &cfg, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "not a file of the log") != NULL);
    CHECK_EQ(unlink(other), 0);
    CHECK_EQ(try_open(dir, &cfg, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "segment 0000000000000002 is missing") != NULL);
    rm_rf(dir);
    free(dir);
}

/* ---- the move from an older raftfs's LMDB tables ---- */

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes a record of the old format (u8 1, three zeros, u32 CRC-32C of the
 * rest, body) into table at key. */
static void old_put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
                    const unsigned char *body, size_t blen)
{
    unsigned char rec[256] = {1, 0, 0, 0};
    memcpy(rec + 8, body, blen);
    put_le(rec + 4, store_crc32c(0, rec + 8, blen), 4);
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key},
            v = {.mv_size = 8 + blen, .mv_data = rec};
    CHECK_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
}

static void test_move_from_tables(void)
{
    char *dir = tmpdir_make();
    store_close(open_store(dir));
    /* Make it what an older raftfs left: the log in the tables, no wal/. */
    char path[600];
    snprintf(path, sizeof(path), "%s/wal", dir);
    rm_rf(path);
    snprintf(path, sizeof(path), "%s/store", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, raft;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    CHECK_EQ(mdb_env_open(env, path, 0, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, "log", 0, &log), 0);
    CHECK_EQ(mdb_dbi_open(txn, "raft", 0, &raft), 0);
    unsigned char body[64] = {0};
    put_le(body, 10, 8); /* snapshot: index 10, term 2, size 0, conf "cf" */
    put_le(body + 8, 2, 8);
    put_le(body + 24, 2, 4);
    memcpy(body + 28, "cf", 2);
    old_put(txn, raft, "snap", 4, body, 30);
    memset(body, 0, sizeof(body));
    put_le(body, 3, 8); /* hard state: term 3, vote 2, commit 11 */
    put_le(body + 8, 2, 8);
    put_le(body + 16, 11, 8);
    old_put(txn, raft, "hard", 4, body, 24);
    for (uint64_t i = 11; i <= 13; i++) {
        unsigned char key[8];
        store_u64be_put(key, i);
        memset(body, 0, sizeof(body));
        put_le(body, 3, 8);
        put_le(body + 8, 1, 4);
        int len = snprintf((char *)body + 12, 40, "entry %llu term 3", (unsigned long long)i);
        old_put(txn, log, key, 8, body, 12 + (size_t)len);
    }
    CHECK_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    /* A move cut short earlier left wal.tmp: it goes. */
    snprintf(path, sizeof(path), "%s/wal.tmp", dir);
    CHECK_EQ(mkdir(path, 0700), 0);

    struct store *s = open_store(dir);
    uint64_t first, last;
    CHECK_EQ(store_log_bounds(s, &first, &last), 0);
    CHECK_EQ(first, 11);
    CHECK_EQ(last, 13);
    CHECK_EQ(term_of(s, 10), 2);
    check_entries(s, 11, 13, 11, 3);
    struct store_hard_state hs;
    CHECK_EQ(store_log_hard_state(s, &hs), 0);
    CHECK_EQ(hs.term, 3);
    CHECK_EQ(hs.vote, 2);
    CHECK_EQ(hs.commit, 11);
    struct store_log_snapshot snap;
    CHECK_EQ(store_log_snapshot(s, &snap), 0);
    CHECK_MEM(snap.conf, snap.conf_len, "cf");
    store_close(s);
    struct stat st;
    CHECK(stat(path, &st) != 0); /* wal.tmp gone */
    /* The tables are empty now, and a reopen reads wal/ alone. */
    snprintf(path, sizeof(path), "%s/store", dir);
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    CHECK_EQ(mdb_env_open(env, path, MDB_RDONLY, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, "log", 0, &log), 0);
    MDB_stat ms;
    CHECK_EQ(mdb_stat(txn, log, &ms), 0);
    CHECK_EQ(ms.ms_entries, 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    s = open_store(dir);
    CHECK_EQ(store_log_bounds(s, &first, &last), 0);
    CHECK_EQ(last, 13);
    store_close(s);
    rm_rf(dir);
    free(dir);
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

/* An index of UINT64_MAX leaves no next one (the log's first index is the
 * snapshot's + 1): the writer refuses it, and a replay that finds one, in
 * records whose CRCs check, fails closed. Found by tests/fuzz (fuzz_wal):
 * a snapshot record at UINT64_MAX opened as a log whose bounds wrapped
 * (first 0, last UINT64_MAX). */
static void test_index_max(void)
{
    char *dir = tmpdir_make(), wal[600], err[600];
    snprintf(wal, sizeof(wal), "%s/wal", dir);
    CHECK_EQ(mkdir(wal, 0700), 0);
    struct store_wal *w;
    CHECK_EQ(store_wal_open(wal, false, 64 << 10, &w, err, sizeof(err)), 0);
    struct store_log_snapshot snap = {.index = UINT64_MAX, .term = 1};
    CHECK_EQ(store_wal_compact(w, &snap, true), EINVAL);
    snap.index = UINT64_MAX - 1;
    CHECK_EQ(store_wal_compact(w, &snap, true), 0);
    struct store_log_entry e = {.index = UINT64_MAX, .term = 1, .type = 1, .data = "x", .len = 1};
    CHECK_EQ(store_wal_append(w, NULL, &e, 1), EINVAL);
    store_wal_close(w);
    rm_rf(wal);
    CHECK_EQ(mkdir(wal, 0700), 0);

    /* A segment written by hand: one batch holding a snapshot record at
     * UINT64_MAX (docs/store-format.md). */
    unsigned char seg[32 + 32 + 8 + 32] = {0};
    memcpy(seg, "raftfswl", 8);
    put_le(seg + 8, 1, 4);
    put_le(seg + 16, 1, 8);
    put_le(seg + 12, store_crc32c(0, seg + 16, 16), 4);
    unsigned char *b = seg + 32, *r = b + 32;
    r[0] = 3; /* snapshot: index, term, size, flags, conf length */
    put_le(r + 4, 32, 4);
    put_le(r + 8, UINT64_MAX, 8);
    put_le(r + 16, 1, 8);
    put_le(b, 0x4257524c, 4);
    put_le(b + 8, 1, 8);
    put_le(b + 16, 40, 4);
    put_le(b + 20, store_crc32c(0, r, 40), 4);
    put_le(b + 4, store_crc32c(0, b + 8, 24), 4);
    char path[700];
    snprintf(path, sizeof(path), "%s/0000000000000001.seg", wal);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, seg, sizeof(seg)), (ssize_t)sizeof(seg));
    close(fd);
    CHECK_EQ(store_wal_open(wal, true, 64 << 10, &w, err, sizeof(err)), EIO);
    CHECK(strstr(err, "contradicts the log") != NULL);
    /* The same record at UINT64_MAX - 1 opens: the batch itself is well formed. */
    put_le(r + 8, UINT64_MAX - 1, 8);
    put_le(b + 20, store_crc32c(0, r, 40), 4);
    put_le(b + 4, store_crc32c(0, b + 8, 24), 4);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, seg, sizeof(seg)), (ssize_t)sizeof(seg));
    close(fd);
    CHECK_EQ(store_wal_open(wal, true, 64 << 10, &w, err, sizeof(err)), 0);
    store_wal_close(w);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    RUN(test_empty_and_append);
    RUN(test_compaction);
    RUN(test_damaged_batch);
    RUN(test_torn_last_batch);
    RUN(test_segments);
    RUN(test_segments_made_ahead);
    RUN(test_missing_segment);
    RUN(test_move_from_tables);
    RUN(test_index_max);
    RUN(test_kill);
    CHECK_DONE();
}
