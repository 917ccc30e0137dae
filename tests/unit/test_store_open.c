/* test_store_open.c - data directories: creation, reopening, and refusal of
 * foreign, corrupt, locked or mismatched ones (which must stay untouched);
 * the model of the room left (store_space). */
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>

#include "store_util.h"

static int try_open(const char *dir, const struct store_config *cfg, char *err, size_t len)
{
    struct store *s = NULL;
    int rc = store_open(&s, dir, cfg, err, len);
    if (!rc)
        store_close(s);
    return rc;
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        perror(path);
        exit(2);
    }
    close(fd);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, cap);
    close(fd);
    return n < 0 ? 0 : (size_t)n;
}

static void test_create_and_reopen(void)
{
    char *base = tmpdir_make();
    char dir[512], err[512];
    snprintf(dir, sizeof(dir), "%s/new", base);
    struct tstore t = {.dir = dir, .s = open_store(dir)};
    CHECK_EQ(t_mkdir(&t, "/a"), 0);
    CHECK_EQ(t_put(&t, "/a/k", "persisted"), 0);
    store_close(t.s);
    t.s = open_store(dir);
    char buf[32];
    CHECK_EQ(t_get(&t, "/a/k", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "persisted"));
    struct store_stats st;
    CHECK_EQ(store_get_stats(t.s, &st), 0);
    CHECK_EQ(st.applied_index, 2);
    CHECK_EQ(st.revision, 2);
    CHECK_EQ(st.inodes, 3);

    /* A second opener is refused while the first holds it. */
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), EBUSY);
    CHECK(strstr(err, "in use") != NULL);
    store_close(t.s);
    /* Missing parent directories are not created. */
    snprintf(dir, sizeof(dir), "%s/no/such", base);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), ENOENT);
    rm_rf(base);
    free(base);
}

static void test_foreign_refused(void)
{
    char *dir = tmpdir_make();
    char path[1200], err[512], buf[64];
    snprintf(path, sizeof(path), "%s/precious.txt", dir);
    write_file(path, "mine", 4);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), ENOTEMPTY);
    CHECK(strstr(err, "precious.txt") != NULL);
    CHECK_EQ(read_file(path, buf, sizeof(buf)), 4);
    /* Nothing was added to it either. */
    snprintf(path, sizeof(path), "%s/raftfs.lock", dir);
    CHECK(access(path, F_OK) != 0);
    rm_rf(dir);
    free(dir);

    /* A regular file as the data directory. */
    dir = tmpdir_make();
    snprintf(path, sizeof(path), "%s/file", dir);
    write_file(path, "x", 1);
    CHECK_EQ(try_open(path, NULL, err, sizeof(err)), ENOTDIR);
    /* lost+found alone does not make a directory foreign. */
    char d2[512];
    snprintf(d2, sizeof(d2), "%s/fs", dir);
    mkdir(d2, 0700);
    snprintf(path, sizeof(path), "%s/lost+found", d2);
    mkdir(path, 0700);
    CHECK_EQ(try_open(d2, NULL, err, sizeof(err)), 0);
    rm_rf(dir);
    free(dir);
}

/* Makes a store with one key, then lets `damage` hurt it. */
static char *make_store(void)
{
    char *dir = tmpdir_make();
    struct tstore t = {.dir = dir, .s = open_store(dir)};
    CHECK_EQ(t_put(&t, "/k", "v"), 0);
    store_close(t.s);
    return dir;
}

static void test_corrupt_refused(void)
{
    char *dir = make_store();
    char data[600], err[512];
    snprintf(data, sizeof(data), "%s/store/data.mdb", dir);
    struct stat before, after;
    /* Garbage over the LMDB meta pages. */
    int fd = open(data, O_WRONLY);
    char junk[8192];
    memset(junk, 0x5a, sizeof(junk));
    CHECK(pwrite(fd, junk, sizeof(junk), 0) == (ssize_t)sizeof(junk));
    close(fd);
    stat(data, &before);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "refusing") != NULL);
    stat(data, &after);
    CHECK_EQ(after.st_size, before.st_size);
    CHECK_EQ(after.st_mtime, before.st_mtime);
    rm_rf(dir);
    free(dir);

    /* Truncated to nothing. */
    dir = make_store();
    snprintf(data, sizeof(data), "%s/store/data.mdb", dir);
    CHECK_EQ(truncate(data, 0), 0);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), EPROTO);
    stat(data, &after);
    CHECK_EQ(after.st_size, 0); /* not reinitialised */
    rm_rf(dir);
    free(dir);

    /* data.mdb gone: never recreated. */
    dir = make_store();
    snprintf(data, sizeof(data), "%s/store/data.mdb", dir);
    unlink(data);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "missing") != NULL);
    CHECK(access(data, F_OK) != 0);
    rm_rf(dir);
    free(dir);
}

/* An LMDB environment of another program in the store's place. */
static void test_foreign_lmdb_and_format(void)
{
    char *dir = tmpdir_make();
    char path[600], err[512];
    snprintf(path, sizeof(path), "%s/store", dir);
    mkdir(path, 0700);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_env_create(&env);
    mdb_env_open(env, path, 0, 0600);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    MDB_val k = {.mv_size = 3, .mv_data = "foo"}, v = {.mv_size = 3, .mv_data = "bar"};
    mdb_put(txn, dbi, &k, &v, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "not a raftfs store") != NULL);
    rm_rf(dir);
    free(dir);

    /* A raftfs store of a future format version. */
    dir = make_store();
    snprintf(path, sizeof(path), "%s/store", dir);
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_open(env, path, 0, 0600);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "meta", 0, &dbi);
    unsigned char fmt[16];
    memcpy(fmt, "raftfs-store", 12);
    fmt[12] = 3, fmt[13] = fmt[14] = fmt[15] = 0;
    MDB_val fk = {.mv_size = 6, .mv_data = "format"}, fv = {.mv_size = 16, .mv_data = fmt};
    mdb_put(txn, dbi, &fk, &fv, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "format 3") != NULL);
    rm_rf(dir);
    free(dir);

    /* A damaged state record. */
    dir = make_store();
    snprintf(path, sizeof(path), "%s/store", dir);
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_open(env, path, 0, 0600);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "meta", 0, &dbi);
    MDB_val sk = {.mv_size = 5, .mv_data = "state"}, sv = {.mv_size = 3, .mv_data = "bad"};
    mdb_put(txn, dbi, &sk, &sv, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "state") != NULL);
    rm_rf(dir);
    free(dir);
}

/* Rewrites the store in dir as store format 1 wrote it: every value in the
 * "data" table under the inode's key alone. Returns the values moved. */
static unsigned store_as_format1(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/store", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, inodes, data;
    MDB_cursor *cur;
    CHECK_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, 64U << 20);
    CHECK_EQ(mdb_env_open(env, path, 0, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    CHECK_EQ(mdb_dbi_open(txn, "inodes", 0, &inodes), 0);
    CHECK_EQ(mdb_dbi_open(txn, "data", 0, &data), 0);
    CHECK_EQ(mdb_cursor_open(txn, inodes, &cur), 0);
    MDB_val k, v;
    unsigned moved = 0;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (!rc) {
        if (k.mv_size == 9) {
            MDB_val dk = {.mv_size = 8, .mv_data = k.mv_data};
            CHECK_EQ(mdb_put(txn, data, &dk, &v, 0), 0);
            CHECK_EQ(mdb_cursor_del(cur, 0), 0);
            moved++;
            rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
            if (rc == MDB_NOTFOUND || (!rc && k.mv_size == 9 && 0))
                break;
            if (!rc && k.mv_size != 9)
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    unsigned char fmt[16];
    memcpy(fmt, "raftfs-store", 12);
    fmt[12] = 1, fmt[13] = fmt[14] = fmt[15] = 0;
    MDB_val fk = {.mv_size = 6, .mv_data = "format"}, fv = {.mv_size = 16, .mv_data = fmt};
    CHECK_EQ(mdb_put(txn, meta, &fk, &fv, 0), 0);
    CHECK_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    return moved;
}

/* A store of format 1 (values in "data") is checked as it is, and a start
 * moves its values next to their inodes (format 2): same tree, same
 * digest, nothing left in "data". */
static void test_format1_values_moved(void)
{
    char *dir = tmpdir_make();
    struct tstore t = {.dir = dir, .s = open_store(dir)};
    CHECK_EQ(t_mkdir(&t, "/app"), 0);
    CHECK_EQ(t_put(&t, "/app/url", "http://x"), 0);
    CHECK_EQ(t_put(&t, "/app/empty", ""), 0);
    CHECK_EQ(t_put(&t, "/top", "v1"), 0);
    store_close(t.s);
    struct store_check_report before, f1, after;
    char err[512];
    CHECK_EQ(store_check(dir, &before, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(before.problems, 0);
    CHECK_EQ(store_as_format1(dir), 3);
    CHECK_EQ(store_check(dir, &f1, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(f1.problems, 0);
    CHECK_EQ(f1.digest, before.digest);

    t.s = open_store(dir); /* moves them */
    char buf[64];
    CHECK_EQ(t_get(&t, "/app/url", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "http://x"));
    CHECK_EQ(t_get(&t, "/app/empty", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, ""));
    CHECK_EQ(t_put(&t, "/top", "v2"), 0);
    store_close(t.s);
    CHECK_EQ(store_check(dir, &after, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(after.problems, 0);
    CHECK(after.digest != before.digest); /* /top changed */

    /* Nothing left in "data", and the format record says 2. */
    char path[600];
    snprintf(path, sizeof(path), "%s/store", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, data;
    MDB_stat st;
    CHECK_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    CHECK_EQ(mdb_env_open(env, path, MDB_RDONLY, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    CHECK_EQ(mdb_dbi_open(txn, "data", 0, &data), 0);
    CHECK_EQ(mdb_stat(txn, data, &st), 0);
    CHECK_EQ(st.ms_entries, 0);
    MDB_val fk = {.mv_size = 6, .mv_data = "format"}, fv;
    CHECK_EQ(mdb_get(txn, meta, &fk, &fv), 0);
    CHECK_EQ(fv.mv_size, 16);
    CHECK_EQ(((unsigned char *)fv.mv_data)[12], 2);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    rm_rf(dir);
    free(dir);
}

static void test_limits_fixed(void)
{
    char *dir = tmpdir_make();
    char err[512];
    struct store_config cfg = {.limits = {.max_value_bytes = 1000}};
    CHECK_EQ(try_open(dir, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), 0); /* 0 = as stored */
    CHECK_EQ(try_open(dir, &cfg, err, sizeof(err)), 0);
    cfg.limits.max_value_bytes = 2000;
    CHECK_EQ(try_open(dir, &cfg, err, sizeof(err)), EINVAL);
    CHECK(strstr(err, "fixed at creation") != NULL);
    rm_rf(dir);
    free(dir);

    dir = tmpdir_make();
    cfg.limits.max_value_bytes = STORE_MAX_VALUE_BYTES_BOUND + 1;
    CHECK_EQ(try_open(dir, &cfg, err, sizeof(err)), EINVAL);
    cfg.limits.max_value_bytes = 0;
    cfg.limits.max_name_bytes = 256;
    CHECK_EQ(try_open(dir, &cfg, err, sizeof(err)), EINVAL);
    rm_rf(dir);
    free(dir);
}

static void test_leftover_tmp(void)
{
    /* A creation that crashed before its rename leaves store.tmp: the next
     * start finishes the job instead of refusing. */
    char *dir = tmpdir_make();
    char path[600], err[512];
    snprintf(path, sizeof(path), "%s/store.tmp", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/store.tmp/data.mdb", dir);
    write_file(path, "partial", 7);
    CHECK_EQ(try_open(dir, NULL, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/store.tmp", dir);
    CHECK(access(path, F_OK) != 0);
    rm_rf(dir);
    free(dir);
}

/* store_space_take places values as LMDB does: large ones on consecutive
 * pages (best-fitting run, else the map's end), small ones anywhere. */
static void test_space_take(void)
{
    struct store_space sp = {.free_bytes = 1000 * 4096,
                             .page_size = 4096,
                             .tail_pages = 10,
                             .runs = {8, 5, 3},
                             .n_runs = 3};
    CHECK(store_space_take(&sp, 30000)); /* 8 pages: the run of 8 */
    CHECK_EQ(sp.n_runs, 2);
    CHECK_EQ(sp.runs[0], 5);
    CHECK_EQ(sp.tail_pages, 10);
    CHECK(store_space_take(&sp, 30000)); /* no run is long enough: the end */
    CHECK_EQ(sp.tail_pages, 2);
    struct store_space before = sp;
    CHECK(!store_space_take(&sp, 30000)); /* nowhere: unchanged */
    CHECK(!memcmp(&before, &sp, sizeof(sp)));
    CHECK(store_space_take(&sp, 12000)); /* 3 pages: the run of 3 fits best */
    CHECK_EQ(sp.n_runs, 1);
    CHECK_EQ(sp.runs[0], 5);
    CHECK(store_space_take(&sp, 8000)); /* 2 pages of the 5: 3 remain */
    CHECK_EQ(sp.runs[0], 3);
    uint64_t free_before = sp.free_bytes;
    CHECK(store_space_take(&sp, 100)); /* small: anywhere */
    CHECK_EQ(free_before - sp.free_bytes, 2 * 4096);
    sp.free_bytes = 4096;
    CHECK(!store_space_take(&sp, 100));
}

/* store_space reads LMDB's free list: values on consecutive pages, once
 * deleted, come back as runs at least that long, and the total counts
 * them. */
static void put_or_delete(struct store *s, uint64_t *index, const char *path, const char *value,
                          size_t len)
{
    struct store_cmd c = {.op = value ? STORE_OP_PUT : STORE_OP_DELETE,
                          .path = path,
                          .path_len = strlen(path),
                          .value = value,
                          .value_len = len,
                          .time_ns = 1};
    void *buf;
    size_t blen;
    struct store_result res;
    CHECK_EQ(store_cmd_encode(&c, &buf, &blen), 0);
    CHECK_EQ(store_apply(s, ++*index, buf, blen, &res), 0);
    CHECK_EQ(res.err, 0);
    free(buf);
}

static void test_space_measures(void)
{
    char *dir = tmpdir_make();
    struct store_config cfg = {.map_bytes = 2U << 20};
    struct store *s = open_store_cfg(dir, &cfg);
    static char value[40000];
    memset(value, 'v', sizeof(value));
    uint64_t index = 0;
    struct store_space before, after;
    CHECK_EQ(store_space(s, &before), 0);
    CHECK_EQ(before.page_size, 4096);
    CHECK(before.tail_pages > 300 && before.tail_pages < 512);
    for (int i = 0; i < 8; i++) {
        char key[16];
        snprintf(key, sizeof(key), "/k%d", i);
        put_or_delete(s, &index, key, value, sizeof(value)); /* 10 pages each */
    }
    CHECK_EQ(store_space(s, &after), 0);
    CHECK(after.tail_pages + 80 <= before.tail_pages);
    CHECK(after.free_bytes + 80 * 4096 <= before.free_bytes);
    for (int i = 0; i < 8; i++) {
        char key[16];
        snprintf(key, sizeof(key), "/k%d", i);
        put_or_delete(s, &index, key, NULL, 0);
    }
    /* one more transaction, so that the last one's pages are on the list */
    put_or_delete(s, &index, "/small", "x", 1);
    struct store_space freed;
    CHECK_EQ(store_space(s, &freed), 0);
    CHECK(freed.free_bytes >= after.free_bytes + 70 * 4096);
    CHECK(freed.n_runs >= 1);
    CHECK(freed.runs[0] >= 10);
    uint64_t in_runs = 0;
    for (size_t i = 0; i < freed.n_runs; i++) {
        if (i)
            CHECK(freed.runs[i] <= freed.runs[i - 1]);
        in_runs += freed.runs[i];
    }
    CHECK(in_runs * 4096 <= freed.free_bytes - freed.tail_pages * 4096);
    /* and a 40 kB value fits again without the map's end */
    struct store_space sp = freed;
    sp.tail_pages = 0;
    CHECK(store_space_take(&sp, sizeof(value)));
    store_close(s);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    RUN(test_create_and_reopen);
    RUN(test_foreign_refused);
    RUN(test_corrupt_refused);
    RUN(test_foreign_lmdb_and_format);
    RUN(test_format1_values_moved);
    RUN(test_limits_fixed);
    RUN(test_leftover_tmp);
    RUN(test_space_take);
    RUN(test_space_measures);
    CHECK_DONE();
}
