/* test_store_check.c - store_check: a fresh or used store checks ok, the
 * digest follows the replicated state only, each kind of damage (written
 * with raw LMDB transactions) is found and named, and a directory that is
 * not a data directory is refused untouched. */
#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>

#include "store_crc.h"
#include "store_format.h"
#include "store_hash.h"
#include "store_log.h"
#include "store_util.h"

/* ---- helpers ---- */

struct found {
    char text[16384]; /* the problems, one per line */
    size_t len;
    unsigned n;
};

static void collect(void *ctx, const char *msg)
{
    struct found *f = ctx;
    int k = snprintf(f->text + f->len, sizeof(f->text) - f->len, "%s\n", msg);
    if (k > 0 && f->len + (size_t)k < sizeof(f->text))
        f->len += (size_t)k;
    f->n++;
}

/* Runs the check; returns its rc, fills *rep and *f. */
static int check_dir(const char *dir, struct store_check_report *rep, struct found *f)
{
    char err[512];
    memset(f, 0, sizeof(*f));
    int rc = store_check(dir, rep, collect, f, err, sizeof(err));
    if (rc)
        snprintf(f->text, sizeof(f->text), "%s", err);
    return rc;
}

/* Expects a check of dir to find problems, one of which holds what. */
static void expect_problem(const char *dir, const char *what, int line)
{
    struct store_check_report rep;
    struct found f;
    int rc = check_dir(dir, &rep, &f);
    bool ok = rc == 0 && rep.problems > 0 && rep.problems == f.n && strstr(f.text, what);
    check_count++;
    if (getenv("CHECK_VERBOSE"))
        printf("  %s", f.text);
    if (!ok) {
        check_failures++;
        fprintf(stderr, "%s:%d: expected a problem with '%s'; rc %d, %llu problems:\n%s\n",
                __FILE__, line, what, rc, (unsigned long long)rep.problems, f.text);
    }
}
#define EXPECT_PROBLEM(dir, what) expect_problem((dir), (what), __LINE__)

static void expect_ok(const char *dir, struct store_check_report *rep, int line)
{
    struct found f;
    int rc = check_dir(dir, rep, &f);
    check_count++;
    if (rc || rep->problems) {
        check_failures++;
        fprintf(stderr, "%s:%d: expected ok; rc %d, %llu problems:\n%s\n", __FILE__, line, rc,
                (unsigned long long)rep->problems, f.text);
    }
}
#define EXPECT_OK(dir, rep) expect_ok((dir), (rep), __LINE__)

/* A raw LMDB transaction on dir's store, for damage. */
struct raw {
    MDB_env *env;
    MDB_txn *txn;
};

static MDB_dbi raw_open(const char *dir, const char *table, struct raw *r)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/store", dir);
    MDB_dbi dbi = 0;
    mdb_env_create(&r->env);
    mdb_env_set_maxdbs(r->env, 16);
    CHECK_EQ(mdb_env_open(r->env, path, 0, 0600), 0);
    CHECK_EQ(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
    CHECK_EQ(mdb_dbi_open(r->txn, table, 0, &dbi), 0);
    return dbi;
}

static void raw_close(struct raw *r)
{
    CHECK_EQ(mdb_txn_commit(r->txn), 0);
    mdb_env_close(r->env);
}

static void raw_put(const char *dir, const char *table, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    struct raw r;
    MDB_dbi dbi = raw_open(dir, table, &r);
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key},
            v = {.mv_size = vlen, .mv_data = (void *)val};
    CHECK_EQ(mdb_put(r.txn, dbi, &k, &v, 0), 0);
    raw_close(&r);
}

static void raw_del(const char *dir, const char *table, const void *key, size_t klen)
{
    struct raw r;
    MDB_dbi dbi = raw_open(dir, table, &r);
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    CHECK_EQ(mdb_del(r.txn, dbi, &k, NULL), 0);
    raw_close(&r);
}

/* Overwrites len bytes at offset at of a record (flips them if val NULL). */
static void raw_patch(const char *dir, const char *table, const void *key, size_t klen, size_t at,
                      const void *val, size_t len)
{
    struct raw r;
    MDB_dbi dbi = raw_open(dir, table, &r);
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
    CHECK_EQ(mdb_get(r.txn, dbi, &k, &v), 0);
    unsigned char *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    for (size_t i = 0; i < len && at + i < v.mv_size; i++)
        copy[at + i] = val ? ((const unsigned char *)val)[i] : copy[at + i] ^ 0x40;
    v.mv_data = copy;
    CHECK_EQ(mdb_put(r.txn, dbi, &k, &v, 0), 0);
    raw_close(&r);
    free(copy);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t ino_of(struct tstore *t, const char *path)
{
    struct store_attr a;
    CHECK_EQ(t_stat(t, path, &a), 0);
    return a.ino;
}

/* A store like a member's: a small tree, a session, a member, and the log
 * holding every applied entry (term 1). Closed on return (t->s NULL). */
static void make_member(struct tstore *t)
{
    tstore_init(t);
    CHECK_EQ(t_mkdir(t, "/a"), 0);
    CHECK_EQ(t_mkdir(t, "/a/b"), 0);
    CHECK_EQ(t_put(t, "/a/f", "hello"), 0);
    CHECK_EQ(t_put(t, "/g", ""), 0);
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = "/a/b/s",
                          .value = "sess",
                          .value_len = 4,
                          .mode = 0600,
                          .client_id = 42,
                          .seq = 1};
    CHECK_EQ(tapply(t, &c, NULL), 0);
    struct store_cmd m = {.op = STORE_OP_MEMBER_SET, .member_id = 1, .path = "127.0.0.1:7401"};
    CHECK_EQ(tapply(t, &m, NULL), 0);
    struct store_hard_state hs = {.term = 1, .vote = 1, .commit = t->index};
    struct store_log_entry e[16];
    for (uint64_t i = 0; i < t->index; i++)
        e[i] =
            (struct store_log_entry){.index = i + 1, .term = 1, .type = 1, .data = "x", .len = 1};
    CHECK_EQ(store_log_persist(t->s, &hs, e, t->index, true), 0);
    store_close(t->s);
    t->s = NULL;
}

static void reopen(struct tstore *t)
{
    t->s = open_store(t->dir);
}

/* Puts make_member's log where an older raftfs kept it: the LMDB tables
 * (records: u8 1, three zeros, u32 CRC-32C of the body, body), no wal/. */
static void old_tables(struct tstore *t)
{
    unsigned char rec[64] = {1, 0, 0, 0}, key[8];
    for (uint64_t i = 1; i <= 6; i++) {
        memset(rec + 4, 0, sizeof(rec) - 4);
        put_le64(rec + 8, 1); /* term 1, type 1, "x" */
        rec[16] = 1;
        rec[20] = 'x';
        put_le32(rec + 4, store_crc32c(0, rec + 8, 13));
        store_u64be_put(key, i);
        raw_put(t->dir, "log", key, 8, rec, 21);
    }
    memset(rec + 4, 0, sizeof(rec) - 4);
    put_le64(rec + 8, 1);
    put_le64(rec + 16, 1);
    put_le64(rec + 24, 6);
    put_le32(rec + 4, store_crc32c(0, rec + 8, 24));
    raw_put(t->dir, "raft", "hard", 4, rec, 32);
    char wal[600];
    snprintf(wal, sizeof(wal), "%s/wal", t->dir);
    rm_rf(wal);
}

/* ---- the hash ---- */

static void test_siphash_vectors(void)
{
    unsigned char key[16], msg[64];
    for (int i = 0; i < 16; i++)
        key[i] = (unsigned char)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (unsigned char)i;
    struct store_hash h;
    /* The reference vectors of SipHash-2-4 (key 00..0f, message 00..). */
    store_hash_init(&h, key);
    CHECK(store_hash_final(&h) == 0x726fdb47dd0e0e31ULL);
    store_hash_init(&h, key);
    store_hash_update(&h, msg, 15);
    CHECK(store_hash_final(&h) == 0xa129ca6149be45e5ULL);
    /* Any split of the input gives the same hash. */
    store_hash_init(&h, key);
    store_hash_update(&h, msg, 64);
    uint64_t whole = store_hash_final(&h);
    for (size_t a = 0; a <= 64; a += 7) {
        store_hash_init(&h, key);
        store_hash_update(&h, msg, a);
        store_hash_update(&h, msg + a, 64 - a < 3 ? 64 - a : 3);
        if (64 - a > 3)
            store_hash_update(&h, msg + a + 3, 64 - a - 3);
        CHECK(store_hash_final(&h) == whole);
    }
}

/* ---- ok ---- */

static void test_fresh_store_ok(void)
{
    struct tstore t;
    tstore_init(&t);
    store_close(t.s);
    t.s = NULL;
    struct store_check_report rep;
    EXPECT_OK(t.dir, &rep);
    CHECK_EQ(rep.entries, 1);
    CHECK_EQ(rep.dirs, 1);
    CHECK_EQ(rep.files, 0);
    CHECK_EQ(rep.revision, 0);
    CHECK_EQ(rep.applied, 0);
    CHECK_EQ(rep.log_first, 1);
    CHECK_EQ(rep.log_last, 0);
    tstore_fini(&t);
}

static void test_member_store_ok_and_untouched(void)
{
    struct tstore t;
    make_member(&t);
    char data[600], lock[600];
    snprintf(data, sizeof(data), "%s/store/data.mdb", t.dir);
    snprintf(lock, sizeof(lock), "%s/store/lock.mdb", t.dir);
    struct stat before, after, lbefore, lafter;
    CHECK_EQ(stat(data, &before), 0);
    CHECK_EQ(stat(lock, &lbefore), 0);
    struct store_check_report rep;
    EXPECT_OK(t.dir, &rep);
    CHECK_EQ(rep.entries, 6);
    CHECK_EQ(rep.dirs, 3);
    CHECK_EQ(rep.files, 3);
    CHECK_EQ(rep.applied, 6);
    CHECK_EQ(rep.revision, 5); /* MEMBER_SET does not move it */
    CHECK_EQ(rep.log_first, 1);
    CHECK_EQ(rep.log_last, 6);
    CHECK_EQ(rep.log_term, 1);
    CHECK_EQ(stat(data, &after), 0);
    CHECK_EQ(stat(lock, &lafter), 0);
    CHECK(before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
          before.st_mtim.tv_nsec == after.st_mtim.tv_nsec && before.st_size == after.st_size);
    CHECK(lbefore.st_mtim.tv_sec == lafter.st_mtim.tv_sec &&
          lbefore.st_mtim.tv_nsec == lafter.st_mtim.tv_nsec);

    /* With a snapshot the log starts after, its image checked. */
    reopen(&t);
    char snapdir[600], snap[700];
    snprintf(snapdir, sizeof(snapdir), "%s/snapshots", t.dir);
    CHECK_EQ(mkdir(snapdir, 0700), 0);
    snprintf(snap, sizeof(snap), "%s/snap-6-1", snapdir);
    int fd = open(snap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    struct store_snapshot_info info;
    CHECK_EQ(store_snapshot_write(t.s, fd, &info), 0);
    close(fd);
    struct store_log_snapshot ls = {.index = 6, .term = 1, .size = info.bytes};
    CHECK_EQ(store_log_compact(t.s, &ls, false), 0);
    store_close(t.s);
    t.s = NULL;
    EXPECT_OK(t.dir, &rep);
    CHECK_EQ(rep.log_first, 7);
    CHECK_EQ(rep.log_last, 6);
    CHECK_EQ(rep.log_term, 1);
    /* A damaged image is found. */
    fd = open(snap, O_RDWR);
    unsigned char b;
    CHECK_EQ(pread(fd, &b, 1, 40), 1);
    b ^= 0x40;
    CHECK_EQ(pwrite(fd, &b, 1, 40), 1);
    close(fd);
    EXPECT_PROBLEM(t.dir, "snapshots/snap-6-1");
    unlink(snap);
    EXPECT_PROBLEM(t.dir, "cannot be opened");
    tstore_fini(&t);
}

/* ---- the digest ---- */

static uint64_t digest_of(struct tstore *t)
{
    store_close(t->s);
    t->s = NULL;
    struct store_check_report rep;
    EXPECT_OK(t->dir, &rep);
    reopen(t);
    return rep.digest;
}

static void apply_script(struct tstore *t, int variant)
{
    CHECK_EQ(t_mkdir(t, "/d"), 0);
    CHECK_EQ(t_put(t, "/d/k1", "one"), 0);
    CHECK_EQ(t_put(t, "/d/k2", variant == 1 ? "TWO" : "two"), 0);
    CHECK_EQ(t_rename(t, "/d/k1", "/d/k3", 0), 0);
    struct store_cmd c = {.op = STORE_OP_APPEND,
                          .path = "/d/k2",
                          .value = "!",
                          .value_len = 1,
                          .client_id = 9,
                          .seq = variant == 2 ? 2 : 1};
    CHECK_EQ(tapply(t, &c, NULL), 0);
    CHECK_EQ(t_simple(t, STORE_OP_DELETE, "/nope"), ENOENT);
}

static void test_digest(void)
{
    struct tstore a, b, c, d;
    tstore_init(&a);
    usleep(2000); /* roots made at another time: member-local */
    tstore_init(&b);
    tstore_init(&c);
    tstore_init(&d);
    apply_script(&a, 0);
    apply_script(&b, 0);
    apply_script(&c, 1); /* another value */
    apply_script(&d, 2); /* another session seq */
    uint64_t da = digest_of(&a), db = digest_of(&b);
    CHECK(da == db);
    CHECK(digest_of(&c) != da);
    CHECK(digest_of(&d) != da);

    /* A no-op entry moves the applied index, not the digest. */
    struct store_entry noop = {.index = ++b.index, .noop = true};
    struct store_result res;
    CHECK_EQ(store_apply_batch(b.s, &noop, 1, &res), 0);
    CHECK(digest_of(&b) == da);
    /* The member directory is in it. */
    struct store_cmd m = {.op = STORE_OP_MEMBER_SET, .member_id = 2, .path = "h:1"};
    CHECK_EQ(tapply(&b, &m, NULL), 0);
    uint64_t dm = digest_of(&b);
    CHECK(dm != da);
    CHECK_EQ(tapply(&a, &m, NULL), 0);
    CHECK(digest_of(&a) == dm); /* the same state, one applied index lower */
    tstore_fini(&a);
    tstore_fini(&b);
    tstore_fini(&c);
    tstore_fini(&d);
}

/* ---- damage, one kind per test ---- */

static void test_dirent_to_missing_inode(void)
{
    struct tstore t;
    make_member(&t);
    unsigned char key[STORE_DIRENT_KEY_MAX], val[STORE_DIRENT_VAL_LEN];
    size_t klen = store_dirent_key(STORE_ROOT_INO, "ghost", 5, key);
    store_dirent_val_encode(999, STORE_TYPE_FILE, val);
    raw_put(t.dir, "dirents", key, klen, val, sizeof(val));
    EXPECT_PROBLEM(t.dir, "dirent names inode 999, which does not exist (/ghost)");
    tstore_fini(&t);
}

static void test_dirent_wrong_type(void)
{
    struct tstore t;
    make_member(&t);
    unsigned char key[STORE_DIRENT_KEY_MAX];
    size_t klen = store_dirent_key(STORE_ROOT_INO, "g", 1, key);
    unsigned char type = STORE_TYPE_DIR;
    raw_patch(t.dir, "dirents", key, klen, 8, &type, 1);
    EXPECT_PROBLEM(t.dir, "dirent says directory");
    tstore_fini(&t);
}

static void test_inode_does_not_decode(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    uint64_t ino = ino_of(&t, "/a/f");
    store_close(t.s);
    t.s = NULL;
    unsigned char key[8];
    store_u64be_put(key, ino);
    raw_patch(t.dir, "inodes", key, 8, 0, NULL, 1); /* the version byte */
    EXPECT_PROBLEM(t.dir, "inode record does not decode");
    tstore_fini(&t);
}

static void test_orphan_inode(void)
{
    struct tstore t;
    make_member(&t);
    unsigned char key[STORE_DIRENT_KEY_MAX];
    reopen(&t);
    uint64_t a = ino_of(&t, "/a");
    store_close(t.s);
    t.s = NULL;
    size_t klen = store_dirent_key(a, "f", 1, key);
    raw_del(t.dir, "dirents", key, klen);
    EXPECT_PROBLEM(t.dir, "orphan: not reachable from the root");
    tstore_fini(&t);
}

static void test_inode_reached_twice(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    uint64_t f = ino_of(&t, "/a/f");
    store_close(t.s);
    t.s = NULL;
    unsigned char key[STORE_DIRENT_KEY_MAX], val[STORE_DIRENT_VAL_LEN];
    size_t klen = store_dirent_key(STORE_ROOT_INO, "hardlink", 8, key);
    store_dirent_val_encode(f, STORE_TYPE_FILE, val);
    raw_put(t.dir, "dirents", key, klen, val, sizeof(val));
    EXPECT_PROBLEM(t.dir, "reached a second time");
    tstore_fini(&t);
}

static void test_inode_wrong_name(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    uint64_t f = ino_of(&t, "/a/f");
    store_close(t.s);
    t.s = NULL;
    unsigned char key[8];
    store_u64be_put(key, f);
    raw_patch(t.dir, "inodes", key, 8, STORE_INODE_HDR_LEN, "z", 1);
    EXPECT_PROBLEM(t.dir, "name 'z', not where it is (/a/f)");
    tstore_fini(&t);
}

static void test_value_size_mismatch(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    uint64_t f = ino_of(&t, "/a/f");
    store_close(t.s);
    t.s = NULL;
    unsigned char key[STORE_VALUE_KEY_LEN];
    store_value_key(f, key);
    raw_put(t.dir, "inodes", key, sizeof(key), "hell", 4);
    EXPECT_PROBLEM(t.dir, "value of 4 bytes, the inode says 5 (/a/f)");
    raw_del(t.dir, "inodes", key, sizeof(key));
    EXPECT_PROBLEM(t.dir, "file has no value record (/a/f)");
    tstore_fini(&t);
}

/* A flipped byte in a value (the size unchanged): the inode's checksum
 * of it finds it, in the check and at open, which refuses the store. A
 * record written by a build from before checksums (bytes 28..31 zero) is
 * not checked. */
static void test_value_checksum(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    uint64_t f = ino_of(&t, "/a/f");
    store_close(t.s);
    t.s = NULL;
    struct store_check_report rep;
    EXPECT_OK(t.dir, &rep);
    unsigned char key[STORE_VALUE_KEY_LEN], ikey[8];
    store_value_key(f, key);
    store_u64be_put(ikey, f);
    raw_patch(t.dir, "inodes", key, sizeof(key), 1, NULL, 1); /* "hello" -> "h%llo" */
    EXPECT_PROBLEM(t.dir, "value does not match its checksum: damaged (/a/f)");
    struct store *s;
    char err[512];
    CHECK_EQ(store_open(&s, t.dir, NULL, err, sizeof(err)), EIO);
    CHECK(strstr(err, "does not match its checksum: the store is damaged") != NULL);
    char want[64];
    snprintf(want, sizeof(want), "inode %llu's", (unsigned long long)f);
    CHECK(strstr(err, want) != NULL);
    struct store_config cfg = {.no_value_check = true};
    CHECK_EQ(store_open(&s, t.dir, &cfg, err, sizeof(err)), 0);
    store_close(s);
    /* the checksum's own bytes damaged: found the same way */
    raw_patch(t.dir, "inodes", key, sizeof(key), 1, NULL, 1); /* the value as it was */
    EXPECT_OK(t.dir, &rep);
    raw_patch(t.dir, "inodes", ikey, sizeof(ikey), 29, NULL, 1);
    EXPECT_PROBLEM(t.dir, "value does not match its checksum: damaged (/a/f)");
    CHECK_EQ(store_open(&s, t.dir, NULL, err, sizeof(err)), EIO);
    /* no checksum (an older build's record): nothing to compare */
    raw_patch(t.dir, "inodes", ikey, sizeof(ikey), 28, "\0\0\0\0", 4);
    raw_patch(t.dir, "inodes", key, sizeof(key), 1, NULL, 1);
    EXPECT_OK(t.dir, &rep);
    CHECK_EQ(store_open(&s, t.dir, NULL, err, sizeof(err)), 0);
    store_close(s);
    tstore_fini(&t);
}

/* Every way a value is written keeps its inode's checksum right: put,
 * replace, append, truncate and extend, a txn, an image installed. */
static void test_value_checksum_kept(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_put(&t, "/f", "one"), 0);
    CHECK_EQ(t_put(&t, "/f", "two, longer"), 0);
    struct store_cmd ap = {.op = STORE_OP_APPEND, .path = "/f", .value = "+", .value_len = 1};
    CHECK_EQ(tapply(&t, &ap, NULL), 0);
    struct store_cmd tr = {
        .op = STORE_OP_SETATTR, .path = "/f", .set_mask = STORE_SET_SIZE, .size = 3};
    CHECK_EQ(tapply(&t, &tr, NULL), 0);
    CHECK_EQ(t_put(&t, "/g", "g"), 0);
    tr.path = "/g";
    tr.size = 100;
    CHECK_EQ(tapply(&t, &tr, NULL), 0);
    CHECK_EQ(t_mkdir(&t, "/d"), 0);
    struct store_cmd then = {.op = STORE_OP_PUT,
                             .path = "/d/t",
                             .path_len = 4,
                             .value = "in txn",
                             .value_len = 6,
                             .mode = 0644};
    struct store_cmd txn = {.op = STORE_OP_TXN, .then_ops = &then, .n_then = 1};
    CHECK_EQ(tapply(&t, &txn, NULL), 0);
    CHECK_EQ(t_rename(&t, "/f", "/d/f", 0), 0);
    struct store_cmd mode = {
        .op = STORE_OP_SETATTR, .path = "/g", .set_mask = STORE_SET_MODE, .mode = 0600};
    CHECK_EQ(tapply(&t, &mode, NULL), 0);
    store_close(t.s);
    t.s = NULL;
    struct store_check_report rep;
    EXPECT_OK(t.dir, &rep);
    /* the values are really checked: one flipped byte is found */
    t.s = open_store(t.dir);
    uint64_t g = ino_of(&t, "/g");
    store_close(t.s);
    t.s = NULL;
    unsigned char key[STORE_VALUE_KEY_LEN];
    store_value_key(g, key);
    raw_patch(t.dir, "inodes", key, sizeof(key), 50, NULL, 1);
    EXPECT_PROBLEM(t.dir, "value does not match its checksum: damaged (/g)");
    raw_patch(t.dir, "inodes", key, sizeof(key), 50, NULL, 1);
    /* an image installed elsewhere keeps them */
    t.s = open_store(t.dir);
    struct tstore b;
    tstore_init(&b);
    char img[600], *imgdir = tmpdir_make();
    snprintf(img, sizeof(img), "%s/img", imgdir);
    int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    struct store_snapshot_info info;
    CHECK_EQ(store_snapshot_write(t.s, fd, &info), 0);
    CHECK_EQ(store_snapshot_install(b.s, fd, &info, (char[256]){0}, 256), 0);
    close(fd);
    rm_rf(imgdir);
    free(imgdir);
    store_close(b.s);
    b.s = NULL;
    EXPECT_OK(b.dir, &rep);
    g = 0;
    b.s = open_store(b.dir);
    g = ino_of(&b, "/d/t");
    store_close(b.s);
    b.s = NULL;
    store_value_key(g, key);
    raw_patch(b.dir, "inodes", key, sizeof(key), 0, NULL, 1);
    EXPECT_PROBLEM(b.dir, "value does not match its checksum: damaged (/d/t)");
    tstore_fini(&b); /* (b.s is NULL: closed above) */
    tstore_fini(&t);
}

static void test_stray_value_and_dirent(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    uint64_t f = ino_of(&t, "/a/f");
    store_close(t.s);
    t.s = NULL;
    unsigned char key[STORE_DIRENT_KEY_MAX], val[STORE_DIRENT_VAL_LEN];
    store_value_key(777, key);
    raw_put(t.dir, "inodes", key, STORE_VALUE_KEY_LEN, "lost", 4);
    EXPECT_PROBLEM(t.dir, "value record of inode 777, which is not a file (inodes)");
    raw_del(t.dir, "inodes", key, STORE_VALUE_KEY_LEN);
    store_value_key(f, key); /* in the table of format 1 */
    raw_put(t.dir, "data", key, 8, "hello", 5);
    EXPECT_PROBLEM(t.dir, "a value record in the table of store format 1 (data)");
    raw_del(t.dir, "data", key, 8);
    size_t klen = store_dirent_key(f, "under-a-file", 12, key);
    store_dirent_val_encode(f, STORE_TYPE_FILE, val);
    raw_put(t.dir, "dirents", key, klen, val, sizeof(val));
    EXPECT_PROBLEM(t.dir, "which is not a directory (name 'under-a-file')");
    tstore_fini(&t);
}

static void test_directory_nlink(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    uint64_t a = ino_of(&t, "/a");
    store_close(t.s);
    t.s = NULL;
    unsigned char key[8], nlink[4];
    store_u64be_put(key, a);
    put_le32(nlink, 2);
    raw_patch(t.dir, "inodes", key, 8, 24, nlink, 4);
    EXPECT_PROBLEM(t.dir, "directory nlink 2, with 1 subdirectories it must be 3 (/a)");
    tstore_fini(&t);
}

static void test_revision_above_store(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    uint64_t g = ino_of(&t, "/g");
    store_close(t.s);
    t.s = NULL;
    unsigned char key[8], rev[8];
    store_u64be_put(key, g);
    put_le64(rev, 1000);
    raw_patch(t.dir, "inodes", key, 8, 64, rev, 8);
    EXPECT_PROBLEM(t.dir, "mod revision 1000 above the store's revision 5 (/g)");
    tstore_fini(&t);
}

static void test_inode_count(void)
{
    struct tstore t;
    make_member(&t);
    unsigned char count[8];
    put_le64(count, 9);
    raw_patch(t.dir, "meta", "state", 5, 32, count, 8);
    EXPECT_PROBLEM(t.dir, "6 inode records, the state record counts 9");
    tstore_fini(&t);
}

static void test_log_gap(void)
{
    struct tstore t;
    struct store_check_report rep;
    make_member(&t);
    old_tables(&t);
    EXPECT_OK(t.dir, &rep);
    CHECK_EQ(rep.log_last, 6);
    unsigned char key[8];
    store_u64be_put(key, 3);
    raw_del(t.dir, "log", key, 8);
    EXPECT_PROBLEM(t.dir, "gap in the log: entries 3..3 are missing (log index 4)");
    tstore_fini(&t);
}

static void test_log_checksum(void)
{
    struct tstore t;
    make_member(&t);
    old_tables(&t);
    unsigned char key[8];
    store_u64be_put(key, 2);
    raw_patch(t.dir, "log", key, 8, 20, NULL, 1); /* the entry's data */
    EXPECT_PROBLEM(t.dir, "log entry fails its checksum (log index 2)");
    raw_patch(t.dir, "raft", "hard", 4, 12, NULL, 1);
    EXPECT_PROBLEM(t.dir, "the hard state record fails its checksum");
    tstore_fini(&t);
}

/* wal/: a damaged batch with a good one after it is a problem, placed; a
 * torn last batch (a crash's) is not, and the check leaves it as it is. */
static void test_wal_damage(void)
{
    struct tstore t;
    struct store_check_report rep;
    make_member(&t);
    reopen(&t);
    struct store_log_entry e = {.index = 7, .term = 1, .type = 2, .data = "", .len = 0};
    CHECK_EQ(store_log_persist(t.s, NULL, &e, 1, true), 0);
    e.index = 8;
    CHECK_EQ(store_log_persist(t.s, NULL, &e, 1, true), 0);
    store_close(t.s);
    t.s = NULL;
    EXPECT_OK(t.dir, &rep);
    char seg[600];
    snprintf(seg, sizeof(seg), "%s/wal/0000000000000001.seg", t.dir);
    int fd = open(seg, O_RDWR);
    CHECK(fd >= 0);
    /* The batches: at 32 (the member's: prologue, hard state, 6 entries),
     * then the two of one entry each, 32 + 8 + 24 bytes. */
    unsigned char h[32];
    CHECK_EQ(pread(fd, h, 32, 32), 32);
    size_t second = 32 + 32 + (size_t)(h[16] | h[17] << 8);
    size_t third = second + 32 + 32;
    unsigned char b;
    CHECK_EQ(pread(fd, &b, 1, (off_t)third + 40), 1);
    b ^= 0x40;
    CHECK_EQ(pwrite(fd, &b, 1, (off_t)third + 40), 1);
    EXPECT_OK(t.dir, &rep); /* the last batch, torn: not a problem */
    unsigned char again;
    CHECK_EQ(pread(fd, &again, 1, (off_t)third + 40), 1);
    CHECK_EQ(again, b); /* left as it was */
    CHECK_EQ(pread(fd, &b, 1, (off_t)second + 40), 1);
    b ^= 0x40;
    CHECK_EQ(pwrite(fd, &b, 1, (off_t)second + 40), 1);
    close(fd);
    char want[128];
    snprintf(want, sizeof(want), "0000000000000001.seg: batch at offset %zu is damaged", second);
    EXPECT_PROBLEM(t.dir, want);
    tstore_fini(&t);
}

static void test_log_terms(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    /* Terms 1, 1, 3, 2: a term that goes down; the hard state at 3. */
    struct store_hard_state hs = {.term = 3, .vote = 1, .commit = 6};
    struct store_log_entry e[2] = {{.index = 3, .term = 3, .type = 2, .data = "", .len = 0},
                                   {.index = 4, .term = 2, .type = 2, .data = "", .len = 0}};
    CHECK_EQ(store_log_persist(t.s, &hs, e, 2, true), 0);
    store_close(t.s);
    t.s = NULL;
    EXPECT_PROBLEM(t.dir, "log entry of term 2 after term 3 (log index 4)");
    reopen(&t);
    e[1].term = 4; /* above the current term */
    e[1].index = 4;
    CHECK_EQ(store_log_persist(t.s, NULL, &e[1], 1, true), 0);
    store_close(t.s);
    t.s = NULL;
    EXPECT_PROBLEM(t.dir, "current term 3 below the last entry's term 4");
    tstore_fini(&t);
}

static void test_applied_beyond_log(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    CHECK_EQ(t_put(&t, "/late", "x"), 0); /* index 7: not in the log */
    store_close(t.s);
    t.s = NULL;
    EXPECT_PROBLEM(t.dir, "applied index 7 beyond the log's last entry 6");
    tstore_fini(&t);
}

static void test_session_damage(void)
{
    struct tstore t;
    make_member(&t);
    unsigned char key[16];
    store_u64be_put(key, 42);
    raw_patch(t.dir, "sessions", key, 8, 0, NULL, 1); /* the version byte */
    EXPECT_PROBLEM(t.dir, "session record does not decode (client 42)");
    raw_patch(t.dir, "sessions", key, 8, 0, NULL, 1); /* back */
    store_u64be_put(key, 5);
    store_u64be_put(key + 8, 42);
    raw_del(t.dir, "session_lru", key, 16);
    EXPECT_PROBLEM(t.dir, "session has no session_lru record at its index 5 (client 42)");
    tstore_fini(&t);
}

static void test_member_damage(void)
{
    struct tstore t;
    make_member(&t);
    unsigned char key[8];
    store_u64be_put(key, 3);
    raw_put(t.dir, "members", key, 8, "a\0b", 3);
    EXPECT_PROBLEM(t.dir, "member record does not decode (member 3)");
    tstore_fini(&t);
}

/* A store with a lease holding /a/f; checks ok, then each kind of damage
 * to the lease tables is reported. */
static void test_lease_damage(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_mkdir(&t, "/a"), 0);
    struct store_cmd g = {.op = STORE_OP_LEASE_GRANT, .lease = 7, .ttl_ms = 5000};
    CHECK_EQ(tapply(&t, &g, NULL), 0);
    struct store_cmd p = {.op = STORE_OP_PUT,
                          .path = "/a/f",
                          .value = "v",
                          .value_len = 1,
                          .mode = 0644,
                          .has_lease = true,
                          .lease = 7};
    CHECK_EQ(tapply(&t, &p, NULL), 0);
    struct store_attr f;
    CHECK_EQ(t_stat(&t, "/a/f", &f), 0);
    store_close(t.s);
    t.s = NULL;
    struct store_check_report rep;
    EXPECT_OK(t.dir, &rep);
    unsigned char id[8], pair[16], ino[8];
    store_u64be_put(id, 7);
    store_u64be_put(ino, f.ino);
    memcpy(pair, id, 8);
    memcpy(pair + 8, ino, 8);
    raw_del(t.dir, "lease_keys", pair, 16);
    EXPECT_PROBLEM(t.dir, "does not list inode");
    raw_put(t.dir, "lease_keys", pair, 16, "", 0);
    EXPECT_OK(t.dir, &rep);
    raw_patch(t.dir, "leases", id, 8, 0, NULL, 1);
    EXPECT_PROBLEM(t.dir, "a lease record does not decode (leases, lease 7)");
    raw_del(t.dir, "leases", id, 8);
    EXPECT_PROBLEM(t.dir, "holds lease 7, which is missing (ino_lease)");
    tstore_fini(&t);
}

/* The identity file: checked, and against the record. */
static void test_identity_damage(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(store_identity_set(t.s, 9, 1, 0xabcd), 0);
    store_close(t.s);
    t.s = NULL;
    struct store_check_report rep;
    EXPECT_OK(t.dir, &rep);
    unsigned char rec[24] = {9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xef};
    raw_put(t.dir, "meta", "identity", 8, rec, sizeof(rec));
    EXPECT_PROBLEM(t.dir, "the identity file and record disagree (identity)");
    char path[600];
    snprintf(path, sizeof(path), "%s/identity", t.dir);
    FILE *f = fopen(path, "r+");
    fputc('X', f);
    fclose(f);
    EXPECT_PROBLEM(t.dir, "the identity file is damaged (identity)");
    tstore_fini(&t);
}

/* ---- refusals ---- */

static void test_not_a_data_dir(void)
{
    char *base = tmpdir_make();
    char missing[600], empty[600], foreign[600];
    snprintf(missing, sizeof(missing), "%s/missing", base);
    snprintf(empty, sizeof(empty), "%s/empty", base);
    snprintf(foreign, sizeof(foreign), "%s/foreign", base);
    CHECK_EQ(mkdir(empty, 0700), 0);
    CHECK_EQ(mkdir(foreign, 0700), 0);
    char notes[700];
    snprintf(notes, sizeof(notes), "%s/notes.txt", foreign);
    FILE *fp = fopen(notes, "w");
    fputs("precious", fp);
    fclose(fp);

    struct store_check_report rep;
    struct found f;
    CHECK_EQ(check_dir(missing, &rep, &f), ENOENT);
    CHECK(strstr(f.text, "not a raftfs data directory"));
    struct stat sb;
    CHECK(stat(missing, &sb) != 0); /* not created */
    CHECK_EQ(check_dir(empty, &rep, &f), EPROTO);
    CHECK(strstr(f.text, "not a raftfs data directory"));
    DIR *d = opendir(empty);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    CHECK_EQ(n, 0); /* nothing initialised */
    CHECK_EQ(check_dir(foreign, &rep, &f), EPROTO);
    CHECK(strstr(f.text, "not a raftfs data directory"));
    CHECK_EQ(check_dir(notes, &rep, &f), ENOTDIR);
    rm_rf(base);
    free(base);
}

static void test_in_use_refused(void)
{
    struct tstore t;
    tstore_init(&t); /* open: it holds the lock */
    struct store_check_report rep;
    struct found f;
    CHECK_EQ(check_dir(t.dir, &rep, &f), EBUSY);
    CHECK(strstr(f.text, "in use by a running raftfs process"));
    tstore_fini(&t);
}

/* The change history (local, not digested): a damaged event, an event
 * outside the range its record states, a damaged record. */
static void test_history_damage(void)
{
    struct tstore t;
    make_member(&t);
    reopen(&t);
    struct store_stats st;
    CHECK_EQ(store_get_stats(t.s, &st), 0);
    store_close(t.s);
    t.s = NULL;
    struct store_check_report rep;
    EXPECT_OK(t.dir, &rep);
    unsigned char key[8];
    store_u64be_put(key, st.revision);
    raw_patch(t.dir, "history", key, 8, 1, "\x7f", 1); /* not an op */
    EXPECT_PROBLEM(t.dir, "an event does not decode (history, revision");
    raw_patch(t.dir, "history", key, 8, 1, "\x01", 1); /* PUT again */
    EXPECT_OK(t.dir, &rep);
    store_u64be_put(key, st.revision + 5);
    unsigned char ev[40] = {1, 1, 1, 0};
    ev[24] = 2; /* path length */
    memcpy(ev + 32, "/z", 2);
    raw_put(t.dir, "history", key, 8, ev, 34);
    EXPECT_PROBLEM(t.dir, "outside");
    raw_del(t.dir, "history", key, 8);
    raw_patch(t.dir, "meta", "history", 7, 0, "\xff\xff", 2); /* compacted > complete */
    EXPECT_PROBLEM(t.dir, "the history record says events");
    tstore_fini(&t);
}

int main(void)
{
    RUN(test_siphash_vectors);
    RUN(test_fresh_store_ok);
    RUN(test_member_store_ok_and_untouched);
    RUN(test_digest);
    RUN(test_dirent_to_missing_inode);
    RUN(test_dirent_wrong_type);
    RUN(test_inode_does_not_decode);
    RUN(test_orphan_inode);
    RUN(test_inode_reached_twice);
    RUN(test_inode_wrong_name);
    RUN(test_value_size_mismatch);
    RUN(test_value_checksum);
    RUN(test_value_checksum_kept);
    RUN(test_stray_value_and_dirent);
    RUN(test_directory_nlink);
    RUN(test_revision_above_store);
    RUN(test_inode_count);
    RUN(test_log_gap);
    RUN(test_log_checksum);
    RUN(test_log_terms);
    RUN(test_applied_beyond_log);
    RUN(test_wal_damage);
    RUN(test_session_damage);
    RUN(test_member_damage);
    RUN(test_lease_damage);
    RUN(test_identity_damage);
    RUN(test_history_damage);
    RUN(test_not_a_data_dir);
    RUN(test_in_use_refused);
    CHECK_DONE();
}
