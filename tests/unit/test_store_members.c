/* test_store_members.c - the member directory and the data directory's
 * identity: MEMBER_SET keeps a member's incarnation (a known one is never
 * replaced by another, adding again clears it), across a reopen and
 * through a snapshot image; a record written before incarnations reads as
 * incarnation 0, a damaged one as EIO; the identity keeps its incarnation,
 * and an identity record from before incarnations reads as 0. */
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>

#include "store_util.h"

struct dir_list {
    uint64_t id[8], inc[8];
    char addr[8][64];
    size_t n;
};

static int list_cb(void *ctx, const struct store_member *m)
{
    struct dir_list *l = ctx;
    if (l->n < 8) {
        l->id[l->n] = m->id;
        l->inc[l->n] = m->incarnation;
        snprintf(l->addr[l->n], sizeof(l->addr[0]), "%.*s", (int)m->addr_len, m->addr);
        l->n++;
    }
    return 0;
}

static struct dir_list dir_of(struct store *s)
{
    struct dir_list l = {.n = 0};
    CHECK_EQ(store_members(s, list_cb, &l), 0);
    return l;
}

static int member_set(struct tstore *t, uint64_t id, const char *addr, uint64_t inc)
{
    struct store_cmd c = {
        .op = STORE_OP_MEMBER_SET, .member_id = id, .path = addr, .incarnation = inc};
    return tapply(t, &c, NULL);
}

static void test_incarnation_kept(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(member_set(&t, 3, "127.0.0.1:7403", 0), 0);
    struct dir_list l = dir_of(t.s);
    CHECK_EQ(l.n, 1);
    CHECK_EQ(l.id[0], 3);
    CHECK_EQ(l.inc[0], 0);
    /* Recorded once known. */
    CHECK_EQ(member_set(&t, 3, "127.0.0.1:7403", 0xabcdef0123456789ULL), 0);
    l = dir_of(t.s);
    CHECK_EQ(l.n, 1);
    CHECK(l.inc[0] == 0xabcdef0123456789ULL);
    CHECK(!strcmp(l.addr[0], "127.0.0.1:7403"));
    /* Another incarnation for the same member is refused, nothing changes. */
    CHECK_EQ(member_set(&t, 3, "127.0.0.1:9999", 77), EEXIST);
    l = dir_of(t.s);
    CHECK(l.inc[0] == 0xabcdef0123456789ULL);
    CHECK(!strcmp(l.addr[0], "127.0.0.1:7403"));
    /* The same one may come with a new address. */
    CHECK_EQ(member_set(&t, 3, "127.0.0.1:7413", 0xabcdef0123456789ULL), 0);
    CHECK_EQ(member_set(&t, 4, "127.0.0.1:7404", 44), 0);
    /* Across a reopen. */
    store_close(t.s);
    t.s = open_store(t.dir);
    l = dir_of(t.s);
    CHECK_EQ(l.n, 2);
    CHECK(l.id[0] == 3 && l.inc[0] == 0xabcdef0123456789ULL);
    CHECK(!strcmp(l.addr[0], "127.0.0.1:7413"));
    CHECK(l.id[1] == 4 && l.inc[1] == 44);
    /* Added again (no incarnation): cleared, then a new one is taken. */
    CHECK_EQ(member_set(&t, 4, "127.0.0.1:7404", 0), 0);
    l = dir_of(t.s);
    CHECK_EQ(l.inc[1], 0);
    CHECK_EQ(member_set(&t, 4, "127.0.0.1:7404", 45), 0);
    l = dir_of(t.s);
    CHECK_EQ(l.inc[1], 45);
    /* Deleted: gone with its incarnation. */
    CHECK_EQ(t_simple(&t, STORE_OP_MEMBER_DEL, ""), EINVAL); /* id 0 */
    struct store_cmd del = {.op = STORE_OP_MEMBER_DEL, .member_id = 4};
    CHECK_EQ(tapply(&t, &del, NULL), 0);
    l = dir_of(t.s);
    CHECK_EQ(l.n, 1);
    tstore_fini(&t);
}

/* The command carries the incarnation through its encoding; a command
 * without one decodes as 0. */
static void test_command_roundtrip(void)
{
    struct store_cmd c = {.op = STORE_OP_MEMBER_SET,
                          .member_id = 5,
                          .path = "h:1",
                          .path_len = 3,
                          .incarnation = 0x8000000000000001ULL};
    void *buf;
    size_t len;
    struct store_cmd_decoded d;
    CHECK_EQ(store_cmd_encode(&c, &buf, &len), 0);
    CHECK_EQ(store_cmd_decode(buf, len, &d), 0);
    CHECK(d.cmd.incarnation == 0x8000000000000001ULL);
    CHECK_EQ(d.cmd.member_id, 5);
    store_cmd_decoded_free(&d);
    free(buf);
    c.incarnation = 0;
    CHECK_EQ(store_cmd_encode(&c, &buf, &len), 0);
    CHECK_EQ(store_cmd_decode(buf, len, &d), 0);
    CHECK_EQ(d.cmd.incarnation, 0);
    store_cmd_decoded_free(&d);
    free(buf);
}

/* Opens the store's LMDB environment behind its back (closed store). */
static void raw_put(const char *dir, const char *table, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/store", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, STORE_DEFAULT_MAP_BYTES);
    CHECK_EQ(mdb_env_open(env, path, 0, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, table, 0, &dbi), 0);
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key},
            v = {.mv_size = vlen, .mv_data = (void *)val};
    if (val)
        CHECK_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    else
        CHECK_EQ(mdb_del(txn, dbi, &k, NULL), 0); /* NULL: delete */
    CHECK_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_old_and_damaged_records(void)
{
    struct tstore t;
    tstore_init(&t);
    store_close(t.s);
    /* As written before incarnations: the bare address. */
    unsigned char key[8] = {0, 0, 0, 0, 0, 0, 0, 2};
    raw_put(t.dir, "members", key, 8, "10.0.0.2:7400", 13);
    t.s = open_store(t.dir);
    struct dir_list l = dir_of(t.s);
    CHECK_EQ(l.n, 1);
    CHECK_EQ(l.id[0], 2);
    CHECK_EQ(l.inc[0], 0);
    CHECK(!strcmp(l.addr[0], "10.0.0.2:7400"));
    /* and it takes an incarnation like any other */
    t.index = 0;
    CHECK_EQ(member_set(&t, 2, "10.0.0.2:7400", 9), 0);
    l = dir_of(t.s);
    CHECK_EQ(l.inc[0], 9);
    store_close(t.s);
    /* The record with an incarnation: the address, NUL, version 1, u64 LE
     * (what a build from before reads as the address alone). */
    unsigned char rec[32] = "h:1\0\1\x09\0\0\0\0\0\0\x80";
    raw_put(t.dir, "members", key, 8, rec, 13);
    t.s = open_store(t.dir);
    l = dir_of(t.s);
    CHECK(l.n == 1 && !strcmp(l.addr[0], "h:1") && l.inc[0] == 0x8000000000000009ULL);
    store_close(t.s);
    /* An unknown version, a short or long suffix, incarnation 0 in a
     * suffix, no address: EIO. */
    struct {
        const char *rec;
        size_t len;
    } bad[] = {{"h:1\0\2\x09\0\0\0\0\0\0\0", 13},
               {"h:1\0\1\x09\0\0\0\0\0\0", 12},
               {"h:1\0\1\x09\0\0\0\0\0\0\0\0", 14},
               {"h:1\0\1\0\0\0\0\0\0\0\0", 13},
               {"\0\1\x09\0\0\0\0\0\0\0", 10}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_put(t.dir, "members", key, 8, bad[i].rec, bad[i].len);
        t.s = open_store(t.dir);
        struct dir_list ignored = {.n = 0};
        CHECK_EQ(store_members(t.s, list_cb, &ignored), EIO);
        store_close(t.s);
    }
    t.s = open_store(t.dir);
    tstore_fini(&t);
}

static void test_snapshot_carries_incarnations(void)
{
    struct tstore a, b;
    tstore_init(&a);
    tstore_init(&b);
    CHECK_EQ(member_set(&a, 1, "127.0.0.1:7401", 0x1111), 0);
    CHECK_EQ(member_set(&a, 2, "127.0.0.1:7402", 0), 0);
    CHECK_EQ(member_set(&a, 3, "127.0.0.1:7403", 0x3333333333333333ULL), 0);
    CHECK_EQ(t_put(&a, "/k", "v"), 0);
    CHECK_EQ(member_set(&b, 9, "127.0.0.1:7409", 99), 0); /* replaced */
    char path[600], err[256];
    snprintf(path, sizeof(path), "%s/image", a.dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    struct store_snapshot_info info;
    CHECK_EQ(store_snapshot_write(a.s, fd, &info), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(store_snapshot_install(b.s, fd, &info, err, sizeof(err)), 0);
    close(fd);
    struct dir_list l = dir_of(b.s);
    CHECK_EQ(l.n, 3);
    CHECK(l.id[0] == 1 && l.inc[0] == 0x1111);
    CHECK(l.id[1] == 2 && l.inc[1] == 0);
    CHECK(l.id[2] == 3 && l.inc[2] == 0x3333333333333333ULL);
    CHECK(!strcmp(l.addr[2], "127.0.0.1:7403"));
    /* and the installed directory refuses another incarnation alike */
    b.index = a.index;
    CHECK_EQ(member_set(&b, 3, "127.0.0.1:7403", 5), EEXIST);
    tstore_fini(&a);
    tstore_fini(&b);
}

static void test_identity(void)
{
    struct tstore t;
    tstore_init(&t);
    uint64_t c, m, inc;
    CHECK_EQ(store_identity_get(t.s, &c, &m, &inc), 0);
    CHECK(c == 0 && m == 0 && inc == 0);
    CHECK_EQ(store_identity_set(t.s, 42, 3, 0), EINVAL);
    CHECK_EQ(store_identity_set(t.s, 42, 3, 0xfeedULL << 48), 0);
    store_close(t.s);
    t.s = open_store(t.dir);
    CHECK_EQ(store_identity_get(t.s, &c, &m, &inc), 0);
    CHECK(c == 42 && m == 3 && inc == 0xfeedULL << 48);
    store_close(t.s);
    /* The identity is in a file of its own too: kept without the record. */
    raw_put(t.dir, "meta", "identity", 8, NULL, 0);
    t.s = open_store(t.dir);
    CHECK_EQ(store_identity_get(t.s, &c, &m, &inc), 0);
    CHECK(c == 42 && m == 3 && inc == 0xfeedULL << 48);
    store_close(t.s);
    /* A 16-byte record (before incarnations, and before the file):
     * incarnation 0. */
    char idfile[600];
    snprintf(idfile, sizeof(idfile), "%s/identity", t.dir);
    CHECK_EQ(unlink(idfile), 0);
    unsigned char old[16] = {42, 0, 0, 0, 0, 0, 0, 0, 3};
    raw_put(t.dir, "meta", "identity", 8, old, sizeof(old));
    t.s = open_store(t.dir);
    CHECK_EQ(store_identity_get(t.s, &c, &m, &inc), 0);
    CHECK(c == 42 && m == 3 && inc == 0);
    store_close(t.s);
    /* Damaged: another length, or a 0 incarnation in the long form. */
    unsigned char bad[24] = {42, 0, 0, 0, 0, 0, 0, 0, 3};
    raw_put(t.dir, "meta", "identity", 8, bad, sizeof(bad));
    t.s = open_store(t.dir);
    CHECK_EQ(store_identity_get(t.s, &c, &m, &inc), EIO);
    store_close(t.s);
    raw_put(t.dir, "meta", "identity", 8, bad, 20);
    t.s = open_store(t.dir);
    CHECK_EQ(store_identity_get(t.s, &c, &m, &inc), EIO);
    tstore_fini(&t);
}

static int try_open(const char *dir, char *err, size_t len)
{
    struct store *s = NULL;
    int rc = store_open(&s, dir, NULL, err, len);
    store_close(s);
    return rc;
}

/* DIR/identity: written with the record, made at open from a record
 * without it, a leftover temporary removed; a damaged file, or one that
 * disagrees with the record, refuses the directory untouched. */
static void test_identity_file(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(store_identity_set(t.s, 7, 2, 0x1234), 0);
    store_close(t.s);
    t.s = NULL;
    char idfile[600], tmp[600], err[512];
    snprintf(idfile, sizeof(idfile), "%s/identity", t.dir);
    snprintf(tmp, sizeof(tmp), "%s/identity.tmp", t.dir);
    struct stat st;
    CHECK_EQ(stat(idfile, &st), 0);
    CHECK_EQ(st.st_size, 44);
    /* A record without a file: copied into one at open. */
    CHECK_EQ(unlink(idfile), 0);
    FILE *f = fopen(tmp, "w"); /* and a leftover of a write cut short */
    fputs("junk", f);
    fclose(f);
    CHECK_EQ(try_open(t.dir, err, sizeof(err)), 0);
    CHECK_EQ(stat(idfile, &st), 0);
    CHECK(stat(tmp, &st) != 0);
    /* The file is what counts without the record. */
    raw_put(t.dir, "meta", "identity", 8, NULL, 0);
    t.s = open_store(t.dir);
    uint64_t c, m, inc;
    CHECK_EQ(store_identity_get(t.s, &c, &m, &inc), 0);
    CHECK(c == 7 && m == 2 && inc == 0x1234);
    store_close(t.s);
    t.s = NULL;
    /* A record that disagrees: refused, both left as they are. */
    unsigned char other[24] = {7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x99};
    raw_put(t.dir, "meta", "identity", 8, other, sizeof(other));
    CHECK_EQ(try_open(t.dir, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "disagree") != NULL);
    raw_put(t.dir, "meta", "identity", 8, NULL, 0);
    /* A damaged file: refused. */
    int fd = open(idfile, O_RDWR);
    unsigned char b;
    CHECK_EQ(pread(fd, &b, 1, 20), 1);
    b ^= 1;
    CHECK_EQ(pwrite(fd, &b, 1, 20), 1);
    close(fd);
    CHECK_EQ(try_open(t.dir, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "identity is damaged") != NULL);
    CHECK_EQ(stat(idfile, &st), 0);
    CHECK_EQ(unlink(idfile), 0); /* for tstore_fini's reopen-free cleanup */
    tstore_fini(&t);
}

int main(void)
{
    RUN(test_incarnation_kept);
    RUN(test_command_roundtrip);
    RUN(test_old_and_damaged_records);
    RUN(test_snapshot_carries_incarnations);
    RUN(test_identity);
    RUN(test_identity_file);
    CHECK_DONE();
}
