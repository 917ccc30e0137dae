/* test_store_apply.c - every store command, its errnos, revisions, compares,
 * idempotent re-apply, batches and the observer. */
#include <fcntl.h>
#include <sys/stat.h>

#include <pthread.h>

#include "store_util.h"

static void test_put_get_overwrite(void)
{
    struct tstore t;
    tstore_init(&t);
    char buf[64];
    struct store_attr a;
    struct store_result r;
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = "/k",
                          .value = "hello",
                          .value_len = 5,
                          .mode = 0640,
                          .uid = 7,
                          .gid = 8,
                          .time_ns = 123456789};
    CHECK_EQ(tapply(&t, &c, &r), 0);
    CHECK(r.has_attr);
    CHECK_EQ(r.revision, 1);
    CHECK_EQ(r.attr.size, 5);
    CHECK_EQ(r.attr.mode, S_IFREG | 0640);
    CHECK_EQ(r.attr.uid, 7);
    CHECK_EQ(r.attr.gid, 8);
    CHECK_EQ(r.attr.mtime_ns, 123456789);
    CHECK_EQ(r.attr.ctime_ns, 123456789);
    CHECK_EQ(r.attr.create_revision, 1);
    CHECK_EQ(r.attr.mod_revision, 1);
    CHECK_EQ(r.attr.version, 1);
    CHECK_EQ(r.attr.nlink, 1);
    CHECK_EQ(r.attr.parent, STORE_ROOT_INO);
    CHECK_EQ(t_get(&t, "/k", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "hello"));
    uint64_t ino = r.attr.ino;

    /* Overwrite with a shorter value: same inode, mode kept, counters move. */
    struct store_cmd c2 = {.op = STORE_OP_PUT,
                           .path = "/k",
                           .value = "hi",
                           .value_len = 2,
                           .mode = 0777,
                           .uid = 1,
                           .gid = 1,
                           .time_ns = 223456789};
    CHECK_EQ(tapply(&t, &c2, &r), 0);
    CHECK_EQ(t_get(&t, "/k", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "hi"));
    CHECK_EQ(t_stat(&t, "/k", &a), 0);
    CHECK_EQ(a.ino, ino);
    CHECK_EQ(a.size, 2);
    CHECK_EQ(a.mode, S_IFREG | 0640);
    CHECK_EQ(a.uid, 7);
    CHECK_EQ(a.create_revision, 1);
    CHECK_EQ(a.mod_revision, 2);
    CHECK_EQ(a.version, 2);
    CHECK_EQ(a.mtime_ns, 223456789);

    /* Empty values are values. */
    CHECK_EQ(t_put(&t, "/empty", ""), 0);
    CHECK_EQ(t_get(&t, "/empty", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, ""));
    tstore_fini(&t);
}

static void test_put_errors(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_put(&t, "/missing/k", "v"), ENOENT);
    CHECK_EQ(t_put(&t, "/f", "v"), 0);
    CHECK_EQ(t_put(&t, "/f/k", "v"), ENOTDIR);
    CHECK_EQ(t_mkdir(&t, "/d"), 0);
    CHECK_EQ(t_put(&t, "/d", "v"), EISDIR);
    CHECK_EQ(t_put(&t, "/", "v"), EISDIR);
    CHECK_EQ(t_put(&t, "relative", "v"), EINVAL);
    CHECK_EQ(t_put(&t, "//a", "v"), EINVAL);
    CHECK_EQ(t_put(&t, "/a/", "v"), EINVAL);
    CHECK_EQ(t_put(&t, "/.", "v"), EINVAL);
    CHECK_EQ(t_put(&t, "/d/..", "v"), EINVAL);
    CHECK_EQ(t_put(&t, "", "v"), EINVAL);
    CHECK_EQ(t_put(&t, "/.raftfs", "v"), EPERM);
    CHECK_EQ(t_mkdir(&t, "/.raftfs"), EPERM);
    CHECK_EQ(t_put(&t, "/d/.raftfs", "v"), 0); /* reserved only at the root */
    struct store_cmd nul = {
        .op = STORE_OP_PUT, .path = "/a\0b", .path_len = 4, .value = "v", .value_len = 1};
    CHECK_EQ(tapply(&t, &nul, NULL), EINVAL);
    CHECK_EQ(t_revision(&t), 3); /* failures do not count */
    tstore_fini(&t);
}

static void test_limits(void)
{
    struct tstore t;
    tstore_init(&t);
    struct store_limits lim;
    store_get_limits(t.s, &lim);
    CHECK_EQ(lim.max_value_bytes, STORE_DEFAULT_MAX_VALUE_BYTES);
    CHECK_EQ(lim.max_name_bytes, 255);
    CHECK_EQ(lim.max_path_bytes, 4096);

    char *big = malloc(lim.max_value_bytes + 1);
    memset(big, 'x', lim.max_value_bytes + 1);
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = "/big",
                          .value = big,
                          .value_len = lim.max_value_bytes,
                          .mode = 0644};
    CHECK_EQ(tapply(&t, &c, NULL), 0); /* exactly at the limit */
    c.value_len++;
    CHECK_EQ(tapply(&t, &c, NULL), EFBIG);
    struct store_cmd ap = {.op = STORE_OP_APPEND, .path = "/big", .value = "x", .value_len = 1};
    CHECK_EQ(tapply(&t, &ap, NULL), EFBIG);
    struct store_cmd tr = {.op = STORE_OP_SETATTR,
                           .path = "/big",
                           .set_mask = STORE_SET_SIZE,
                           .size = lim.max_value_bytes + 1ULL};
    CHECK_EQ(tapply(&t, &tr, NULL), EFBIG);
    free(big);

    char name[300], path[5000];
    memset(name, 'n', sizeof(name));
    name[0] = '/';
    name[256] = 0; /* "/" + 255 bytes */
    CHECK_EQ(t_put(&t, name, "v"), 0);
    name[256] = 'n';
    name[257] = 0; /* 256 bytes */
    CHECK_EQ(t_put(&t, name, "v"), ENAMETOOLONG);
    CHECK_EQ(t_mkdir(&t, name), ENAMETOOLONG);

    /* A path of 4096 bytes is fine, 4097 is not: build /d/d/d... */
    size_t len = 0;
    while (len + 2 <= 4096) {
        path[len++] = '/';
        path[len++] = 'd';
    }
    path[len] = 0; /* 4096 bytes */
    struct store_cmd pc = {
        .op = STORE_OP_PUT, .path = path, .path_len = 4096, .value = "v", .value_len = 1};
    CHECK_EQ(tapply(&t, &pc, NULL), ENOENT); /* valid, but /d does not exist */
    path[len++] = 'x';
    pc.path_len = 4097;
    CHECK_EQ(tapply(&t, &pc, NULL), ENAMETOOLONG);
    tstore_fini(&t);

    /* Configured limits are enforced by apply. */
    char *dir = tmpdir_make();
    struct store_config cfg = {
        .limits = {.max_value_bytes = 10, .max_name_bytes = 4, .max_path_bytes = 12}};
    struct tstore t2 = {.dir = dir, .s = open_store_cfg(dir, &cfg)};
    CHECK_EQ(t_put(&t2, "/abcd", "0123456789"), 0);
    CHECK_EQ(t_put(&t2, "/abcd", "0123456789x"), EFBIG);
    CHECK_EQ(t_put(&t2, "/abcde", "v"), ENAMETOOLONG);
    CHECK_EQ(t_mkdir(&t2, "/abc"), 0);
    CHECK_EQ(t_mkdir(&t2, "/abc/defg"), 0);                   /* 9 bytes */
    CHECK_EQ(t_put(&t2, "/abc/defg/hi", "v"), 0);             /* 12 */
    CHECK_EQ(t_put(&t2, "/abc/defg/hij", "v"), ENAMETOOLONG); /* 13 */
    tstore_fini(&t2);
}

static void test_append(void)
{
    struct tstore t;
    tstore_init(&t);
    char buf[64];
    struct store_result r;
    CHECK_EQ(t_put(&t, "/log", "a"), 0);
    struct store_cmd c = {.op = STORE_OP_APPEND, .path = "/log", .value = "bc", .value_len = 2};
    CHECK_EQ(tapply(&t, &c, &r), 0);
    CHECK_EQ(r.attr.size, 3);
    CHECK_EQ(r.attr.version, 2);
    CHECK_EQ(t_get(&t, "/log", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "abc"));
    struct store_cmd e = {.op = STORE_OP_APPEND, .path = "/log", .value = "", .value_len = 0};
    CHECK_EQ(tapply(&t, &e, NULL), 0);
    CHECK_EQ(t_get(&t, "/log", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "abc"));
    c.path = "/nope";
    c.path_len = 0;
    CHECK_EQ(tapply(&t, &c, NULL), ENOENT);
    CHECK_EQ(t_mkdir(&t, "/d"), 0);
    c.path = "/d";
    c.path_len = 0;
    CHECK_EQ(tapply(&t, &c, NULL), EISDIR);
    tstore_fini(&t);
}

static void test_delete(void)
{
    struct tstore t;
    tstore_init(&t);
    struct store_stats st;
    CHECK_EQ(t_put(&t, "/a", "1"), 0);
    CHECK_EQ(t_mkdir(&t, "/d"), 0);
    store_get_stats(t.s, &st);
    CHECK_EQ(st.inodes, 3);
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/a"), 0);
    CHECK_EQ(t_stat(&t, "/a", NULL), ENOENT);
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/a"), ENOENT);
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/d"), EISDIR);
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/"), EISDIR);
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/d/x/y"), ENOENT);
    store_get_stats(t.s, &st);
    CHECK_EQ(st.inodes, 2);
    tstore_fini(&t);
}

static void test_mkdir_rmdir(void)
{
    struct tstore t;
    tstore_init(&t);
    struct store_attr a;
    CHECK_EQ(t_mkdir(&t, "/d"), 0);
    CHECK_EQ(t_mkdir(&t, "/d"), EEXIST);
    CHECK_EQ(t_mkdir(&t, "/"), EEXIST);
    CHECK_EQ(t_put(&t, "/f", "v"), 0);
    CHECK_EQ(t_mkdir(&t, "/f"), EEXIST);
    CHECK_EQ(t_mkdir(&t, "/f/sub"), ENOTDIR);
    CHECK_EQ(t_mkdir(&t, "/x/y"), ENOENT);
    CHECK_EQ(t_mkdir(&t, "/d/e"), 0);
    CHECK_EQ(t_stat(&t, "/d", &a), 0);
    CHECK_EQ(a.nlink, 3);
    CHECK_EQ(a.mode, S_IFDIR | 0755);
    CHECK_EQ(t_stat(&t, "/", &a), 0);
    CHECK_EQ(a.nlink, 3);
    CHECK_EQ(t_simple(&t, STORE_OP_RMDIR, "/d"), ENOTEMPTY);
    CHECK_EQ(t_simple(&t, STORE_OP_RMDIR, "/d/e"), 0);
    CHECK_EQ(t_put(&t, "/d/file", "v"), 0);
    CHECK_EQ(t_simple(&t, STORE_OP_RMDIR, "/d"), ENOTEMPTY); /* a file child */
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/d/file"), 0);
    CHECK_EQ(t_simple(&t, STORE_OP_RMDIR, "/f"), ENOTDIR);
    CHECK_EQ(t_simple(&t, STORE_OP_RMDIR, "/"), EBUSY);
    CHECK_EQ(t_simple(&t, STORE_OP_RMDIR, "/nope"), ENOENT);
    CHECK_EQ(t_simple(&t, STORE_OP_RMDIR, "/d"), 0);
    CHECK_EQ(t_stat(&t, "/", &a), 0);
    CHECK_EQ(a.nlink, 2);
    tstore_fini(&t);
}

static void test_rename_files(void)
{
    struct tstore t;
    tstore_init(&t);
    char buf[64];
    struct store_attr a, b;
    CHECK_EQ(t_put(&t, "/a", "A"), 0);
    CHECK_EQ(t_stat(&t, "/a", &a), 0);
    CHECK_EQ(t_rename(&t, "/a", "/b", 0), 0);
    CHECK_EQ(t_stat(&t, "/a", NULL), ENOENT);
    CHECK_EQ(t_stat(&t, "/b", &b), 0);
    CHECK_EQ(b.ino, a.ino); /* the inode moves */
    CHECK_EQ(t_get(&t, "/b", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "A"));

    /* Atomic replace: tmp over final. */
    CHECK_EQ(t_put(&t, "/tmp", "new"), 0);
    CHECK_EQ(t_rename(&t, "/tmp", "/b", 0), 0);
    CHECK_EQ(t_get(&t, "/b", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "new"));
    CHECK_EQ(t_stat(&t, "/tmp", NULL), ENOENT);

    CHECK_EQ(t_put(&t, "/c", "C"), 0);
    CHECK_EQ(t_rename(&t, "/c", "/b", STORE_RENAME_NOREPLACE), EEXIST);
    CHECK_EQ(t_rename(&t, "/c", "/d", STORE_RENAME_NOREPLACE), 0);
    CHECK_EQ(t_rename(&t, "/d", "/b", STORE_RENAME_EXCHANGE), 0);
    CHECK_EQ(t_get(&t, "/b", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "C"));
    CHECK_EQ(t_get(&t, "/d", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "new"));
    CHECK_EQ(t_rename(&t, "/d", "/nope", STORE_RENAME_EXCHANGE), ENOENT);
    CHECK_EQ(t_rename(&t, "/nope", "/x", 0), ENOENT);
    CHECK_EQ(t_rename(&t, "/d", "/b", 3), EINVAL);
    CHECK_EQ(t_rename(&t, "/d", "/b", 4), EINVAL);
    CHECK_EQ(t_rename(&t, "/d", "/", 0), EBUSY);
    CHECK_EQ(t_rename(&t, "/", "/z", 0), EBUSY);
    CHECK_EQ(t_rename(&t, "/d", "/.raftfs", 0), EPERM);
    CHECK_EQ(t_rename(&t, "/d", "/nodir/x", 0), ENOENT);
    CHECK_EQ(t_rename(&t, "/d", "/b/x", 0), ENOTDIR);

    /* Same name: nothing happens, revision stays. */
    uint64_t rev = t_revision(&t);
    CHECK_EQ(t_rename(&t, "/d", "/d", 0), 0);
    CHECK_EQ(t_revision(&t), rev);
    CHECK_EQ(t_rename(&t, "/d", "/d", STORE_RENAME_NOREPLACE), EEXIST);
    tstore_fini(&t);
}

static void test_rename_dirs(void)
{
    struct tstore t;
    tstore_init(&t);
    char buf[64];
    struct store_attr a;
    CHECK_EQ(t_mkdir(&t, "/src"), 0);
    CHECK_EQ(t_mkdir(&t, "/src/sub"), 0);
    CHECK_EQ(t_put(&t, "/src/sub/k", "deep"), 0);
    CHECK_EQ(t_mkdir(&t, "/dst"), 0);
    CHECK_EQ(t_put(&t, "/file", "f"), 0);

    CHECK_EQ(t_rename(&t, "/src", "/src/sub/x", 0), EINVAL); /* into itself */
    CHECK_EQ(t_rename(&t, "/src", "/src/x", 0), EINVAL);
    CHECK_EQ(t_rename(&t, "/src", "/file", 0), ENOTDIR);
    CHECK_EQ(t_rename(&t, "/file", "/dst", 0), EISDIR);
    CHECK_EQ(t_mkdir(&t, "/dst/occupied"), 0);
    CHECK_EQ(t_rename(&t, "/src", "/dst", 0), ENOTEMPTY);
    CHECK_EQ(t_simple(&t, STORE_OP_RMDIR, "/dst/occupied"), 0);
    CHECK_EQ(t_put(&t, "/dst/f", "x"), 0);
    CHECK_EQ(t_rename(&t, "/src", "/dst", 0), ENOTEMPTY); /* a file inside */
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/dst/f"), 0);

    /* Over an empty directory: replaces it, whole subtree moves. */
    CHECK_EQ(t_rename(&t, "/src", "/dst", 0), 0);
    CHECK_EQ(t_get(&t, "/dst/sub/k", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "deep"));
    CHECK_EQ(t_stat(&t, "/src", NULL), ENOENT);
    CHECK_EQ(t_stat(&t, "/", &a), 0);
    CHECK_EQ(a.nlink, 3); /* "/dst" only */

    /* Across parents: nlink follows the directory. */
    CHECK_EQ(t_mkdir(&t, "/p"), 0);
    CHECK_EQ(t_rename(&t, "/dst/sub", "/p/sub", 0), 0);
    CHECK_EQ(t_stat(&t, "/dst", &a), 0);
    CHECK_EQ(a.nlink, 2);
    CHECK_EQ(t_stat(&t, "/p", &a), 0);
    CHECK_EQ(a.nlink, 3);
    CHECK_EQ(t_get(&t, "/p/sub/k", buf, sizeof(buf)), 0);

    /* Exchange of a directory and a file in different parents. */
    CHECK_EQ(t_rename(&t, "/p/sub", "/file", STORE_RENAME_EXCHANGE), 0);
    CHECK_EQ(t_get(&t, "/sub/k", buf, sizeof(buf)), ENOENT);
    CHECK_EQ(t_get(&t, "/file/k", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "deep"));
    CHECK_EQ(t_get(&t, "/p/sub", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "f"));
    CHECK_EQ(t_stat(&t, "/p", &a), 0);
    CHECK_EQ(a.nlink, 2);
    CHECK_EQ(t_stat(&t, "/", &a), 0);
    CHECK_EQ(a.nlink, 5); /* dst, p, file (a directory now) */
    /* Exchanging a directory with something inside it is refused. */
    CHECK_EQ(t_rename(&t, "/file", "/file/k", STORE_RENAME_EXCHANGE), EINVAL);
    CHECK_EQ(t_rename(&t, "/file/k", "/file", STORE_RENAME_EXCHANGE), EINVAL);

    /* store_path follows renames. */
    struct store_txn *x;
    char path[256];
    size_t len;
    CHECK_EQ(t_stat(&t, "/file/k", &a), 0);
    CHECK_EQ(store_txn_begin(t.s, &x), 0);
    CHECK_EQ(store_path(x, a.ino, path, sizeof(path), &len), 0);
    CHECK_MEM(path, len, "/file/k");
    CHECK_EQ(store_path(x, STORE_ROOT_INO, path, sizeof(path), &len), 0);
    CHECK_MEM(path, len, "/");
    CHECK_EQ(store_path(x, a.ino, path, 5, &len), ENAMETOOLONG);
    CHECK_EQ(store_path(x, 999999, path, sizeof(path), &len), ENOENT);
    store_txn_end(x);
    tstore_fini(&t);
}

static void test_setattr(void)
{
    struct tstore t;
    tstore_init(&t);
    char buf[64];
    struct store_result r;
    CHECK_EQ(t_put(&t, "/f", "abcdef"), 0);
    struct store_cmd c = {.op = STORE_OP_SETATTR,
                          .path = "/f",
                          .set_mask = STORE_SET_MODE,
                          .mode = S_IFDIR | 0600,
                          .time_ns = 5};
    CHECK_EQ(tapply(&t, &c, &r), 0);
    CHECK_EQ(r.attr.mode, S_IFREG | 0600); /* the type stays */
    CHECK_EQ(r.attr.ctime_ns, 5);
    struct store_cmd own = {.op = STORE_OP_SETATTR,
                            .path = "/f",
                            .set_mask = STORE_SET_UID | STORE_SET_GID,
                            .uid = 1000,
                            .gid = 2000};
    CHECK_EQ(tapply(&t, &own, &r), 0);
    CHECK_EQ(r.attr.uid, 1000);
    CHECK_EQ(r.attr.gid, 2000);
    struct store_cmd tr = {
        .op = STORE_OP_SETATTR, .path = "/f", .set_mask = STORE_SET_SIZE, .size = 3, .time_ns = 77};
    CHECK_EQ(tapply(&t, &tr, &r), 0);
    CHECK_EQ(r.attr.size, 3);
    CHECK_EQ(r.attr.mtime_ns, 77);
    CHECK_EQ(t_get(&t, "/f", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "abc"));
    tr.size = 6;
    CHECK_EQ(tapply(&t, &tr, &r), 0);
    struct store_txn *x;
    const void *d;
    size_t n;
    CHECK_EQ(store_txn_begin(t.s, &x), 0);
    CHECK_EQ(store_read(x, r.attr.ino, &d, &n), 0);
    CHECK_EQ(n, 6);
    CHECK(!memcmp(d, "abc\0\0\0", 6));
    store_txn_end(x);
    struct store_cmd tm = {.op = STORE_OP_SETATTR,
                           .path = "/f",
                           .set_mask = STORE_SET_ATIME | STORE_SET_MTIME,
                           .atime_ns = 11,
                           .mtime_ns = 22};
    CHECK_EQ(tapply(&t, &tm, &r), 0);
    CHECK_EQ(r.attr.atime_ns, 11);
    CHECK_EQ(r.attr.mtime_ns, 22);
    CHECK_EQ(t_mkdir(&t, "/d"), 0);
    struct store_cmd dsz = {.op = STORE_OP_SETATTR, .path = "/d", .set_mask = STORE_SET_SIZE};
    CHECK_EQ(tapply(&t, &dsz, NULL), EISDIR);
    struct store_cmd root = {
        .op = STORE_OP_SETATTR, .path = "/", .set_mask = STORE_SET_MODE, .mode = 0700};
    CHECK_EQ(tapply(&t, &root, &r), 0);
    CHECK_EQ(r.attr.mode, S_IFDIR | 0700);
    struct store_cmd miss = {.op = STORE_OP_SETATTR, .path = "/nope", .set_mask = STORE_SET_MODE};
    CHECK_EQ(tapply(&t, &miss, NULL), ENOENT);
    /* Unknown mask bits have no encoding: they never reach the log. */
    struct store_cmd bad = {
        .op = STORE_OP_SETATTR, .path = "/f", .set_mask = 1U << 20, .time_ns = 99};
    CHECK_EQ(tapply(&t, &bad, &r), 0);
    CHECK_EQ(r.attr.ctime_ns, 99);
    CHECK_EQ(r.attr.mtime_ns, 22);
    tstore_fini(&t);
}

static void test_revisions(void)
{
    struct tstore t;
    tstore_init(&t);
    struct store_attr a, d;
    CHECK_EQ(t_revision(&t), 0);
    CHECK_EQ(t_mkdir(&t, "/d"), 0);      /* rev 1 */
    CHECK_EQ(t_put(&t, "/d/k", "1"), 0); /* rev 2 */
    CHECK_EQ(t_put(&t, "/d/k", "2"), 0); /* rev 3 */
    CHECK_EQ(t_put(&t, "/nope/k", "x"), ENOENT);
    CHECK_EQ(t_revision(&t), 3);
    CHECK_EQ(t_stat(&t, "/d/k", &a), 0);
    CHECK_EQ(a.create_revision, 2);
    CHECK_EQ(a.mod_revision, 3);
    CHECK_EQ(a.version, 2);
    CHECK_EQ(t_stat(&t, "/d", &d), 0);
    CHECK_EQ(d.create_revision, 1);
    CHECK_EQ(d.mod_revision, 2);                   /* its list of names changed at rev 2 */
    CHECK_EQ(t_rename(&t, "/d/k", "/d/k2", 0), 0); /* rev 4 */
    CHECK_EQ(t_stat(&t, "/d/k2", &a), 0);
    CHECK_EQ(a.mod_revision, 4);
    CHECK_EQ(a.version, 3);
    CHECK_EQ(a.create_revision, 2);
    CHECK_EQ(t_revision(&t), 4);

    /* Inode numbers are never reused. */
    uint64_t old = a.ino;
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/d/k2"), 0);
    CHECK_EQ(t_put(&t, "/d/k2", "again"), 0);
    CHECK_EQ(t_stat(&t, "/d/k2", &a), 0);
    CHECK(a.ino > old);
    CHECK_EQ(a.version, 1);
    CHECK_EQ(a.create_revision, 6);
    tstore_fini(&t);
}

static void test_compare(void)
{
    struct tstore t;
    tstore_init(&t);
    struct store_result r;
    char buf[32];
    CHECK_EQ(t_put(&t, "/k", "v1"), 0);
    struct store_attr a;
    CHECK_EQ(t_stat(&t, "/k", &a), 0);
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = "/k",
                          .value = "v2",
                          .value_len = 2,
                          .has_expected_revision = true,
                          .expected_revision = a.mod_revision};
    CHECK_EQ(tapply(&t, &c, &r), 0);
    /* The same expected revision again is now stale. */
    c.value = "v3";
    CHECK_EQ(tapply(&t, &c, &r), STORE_ECONFLICT);
    CHECK_EQ(t_get(&t, "/k", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "v2"));
    /* 0 = must not exist. */
    struct store_cmd create = {.op = STORE_OP_PUT,
                               .path = "/k",
                               .value = "x",
                               .value_len = 1,
                               .has_expected_revision = true,
                               .expected_revision = 0};
    CHECK_EQ(tapply(&t, &create, NULL), STORE_ECONFLICT);
    create.path = "/new";
    create.path_len = 0;
    CHECK_EQ(tapply(&t, &create, NULL), 0);
    /* A revision on a missing key is a conflict, not a create. */
    struct store_cmd gone = {.op = STORE_OP_PUT,
                             .path = "/gone",
                             .value = "x",
                             .value_len = 1,
                             .has_expected_revision = true,
                             .expected_revision = 1};
    CHECK_EQ(tapply(&t, &gone, NULL), STORE_ECONFLICT);
    CHECK_EQ(t_stat(&t, "/gone", NULL), ENOENT);
    /* Expected inode: a name reused by another inode is a conflict. */
    CHECK_EQ(t_stat(&t, "/k", &a), 0);
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/k"), 0);
    CHECK_EQ(t_put(&t, "/k", "other"), 0);
    struct store_cmd ap = {.op = STORE_OP_APPEND,
                           .path = "/k",
                           .value = "!",
                           .value_len = 1,
                           .has_expected_ino = true,
                           .expected_ino = a.ino};
    CHECK_EQ(tapply(&t, &ap, NULL), STORE_ECONFLICT);
    struct store_attr b;
    CHECK_EQ(t_stat(&t, "/k", &b), 0);
    ap.expected_ino = b.ino;
    CHECK_EQ(tapply(&t, &ap, NULL), 0);
    CHECK_EQ(t_get(&t, "/k", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "other!"));
    /* Compares guard DELETE, SETATTR and RENAME (of the source) too. */
    struct store_cmd del = {
        .op = STORE_OP_DELETE, .path = "/k", .has_expected_revision = true, .expected_revision = 1};
    CHECK_EQ(tapply(&t, &del, NULL), STORE_ECONFLICT);
    struct store_cmd rn = {.op = STORE_OP_RENAME,
                           .path = "/k",
                           .path2 = "/k2",
                           .has_expected_ino = true,
                           .expected_ino = a.ino};
    CHECK_EQ(tapply(&t, &rn, NULL), STORE_ECONFLICT);
    struct store_cmd sa = {.op = STORE_OP_SETATTR,
                           .path = "/k",
                           .set_mask = STORE_SET_SIZE,
                           .has_expected_ino = true,
                           .expected_ino = a.ino};
    CHECK_EQ(tapply(&t, &sa, NULL), STORE_ECONFLICT);
    CHECK_EQ(t_stat(&t, "/k", &b), 0);
    CHECK_EQ(b.size, 6);
    tstore_fini(&t);
}

static void test_reapply_is_noop(void)
{
    struct tstore t;
    tstore_init(&t);
    char buf[32];
    struct store_result r;
    CHECK_EQ(t_put(&t, "/log", ""), 0);
    struct store_cmd c = {.op = STORE_OP_APPEND,
                          .path = "/log",
                          .path_len = 4,
                          .value = "x",
                          .value_len = 1,
                          .time_ns = 1};
    void *enc;
    size_t len;
    CHECK_EQ(store_cmd_encode(&c, &enc, &len), 0);
    CHECK_EQ(store_apply(t.s, 10, enc, len, &r), 0);
    CHECK(!r.skipped);
    uint64_t rev = r.revision;
    for (uint64_t i = 1; i <= 10; i++) {
        CHECK_EQ(store_apply(t.s, i, enc, len, &r), 0);
        CHECK(r.skipped);
        CHECK_EQ(r.revision, rev);
    }
    CHECK_EQ(t_get(&t, "/log", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "x"));
    struct store_stats st;
    CHECK_EQ(store_get_stats(t.s, &st), 0);
    CHECK_EQ(st.applied_index, 10);
    CHECK_EQ(store_apply(t.s, 11, enc, len, &r), 0);
    CHECK(!r.skipped);
    CHECK_EQ(t_get(&t, "/log", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "xx"));
    free(enc);
    tstore_fini(&t);
}

static void test_batch(void)
{
    struct tstore t;
    tstore_init(&t);
    char buf[32];
    struct store_cmd cmds[4] = {
        {.op = STORE_OP_MKDIR, .path = "/b", .path_len = 2, .mode = 0755},
        {.op = STORE_OP_PUT, .path = "/b/1", .path_len = 4, .value = "one", .value_len = 3},
        {.op = STORE_OP_PUT, .path = "/x/1", .path_len = 4, .value = "no", .value_len = 2},
        {.op = STORE_OP_APPEND, .path = "/b/1", .path_len = 4, .value = "+", .value_len = 1},
    };
    void *enc[5];
    struct store_entry e[5];
    for (int i = 0; i < 4; i++) {
        size_t len;
        CHECK_EQ(store_cmd_encode(&cmds[i], &enc[i], &len), 0);
        e[i] = (struct store_entry){.index = (uint64_t)i + 1, .data = enc[i], .len = len};
    }
    /* A fifth entry that is not a command at all. */
    e[4] = (struct store_entry){.index = 7, .data = "\xff\xff\xff", .len = 3};
    struct store_result r[5];
    CHECK_EQ(store_apply_batch(t.s, e, 5, r), 0);
    CHECK_EQ(r[0].err, 0);
    CHECK_EQ(r[1].err, 0);
    CHECK_EQ(r[2].err, ENOENT);
    CHECK_EQ(r[3].err, 0);
    CHECK_EQ(r[4].err, EINVAL);
    CHECK_EQ(r[0].revision, 1);
    CHECK_EQ(r[1].revision, 2);
    CHECK_EQ(r[2].revision, 2);
    CHECK_EQ(r[3].revision, 3);
    CHECK_EQ(t_get(&t, "/b/1", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "one+"));
    struct store_stats st;
    CHECK_EQ(store_get_stats(t.s, &st), 0);
    CHECK_EQ(st.applied_index, 7);
    /* Indexes must increase within a batch: the batch is refused whole. */
    e[0].index = 9;
    e[1].index = 8;
    CHECK_EQ(store_apply_batch(t.s, e, 2, r), EINVAL);
    CHECK_EQ(store_get_stats(t.s, &st), 0);
    CHECK_EQ(st.applied_index, 7);
    for (int i = 0; i < 4; i++)
        free(enc[i]);
    tstore_fini(&t);
}

struct seen {
    int inode, gone, name, dropped;
    char dropped_data[32];
};

static void on_dropping(void *ctx, const struct store_attr *attr, const void *data, size_t len)
{
    struct seen *s = ctx;
    if (attr->size != len)
        s->dropped += 100;
    s->dropped++;
    snprintf(s->dropped_data, sizeof(s->dropped_data), "%.*s", (int)len, (const char *)data);
}

static void on_changed(void *ctx, const struct store_change *c)
{
    struct seen *s = ctx;
    if (c->kind == STORE_CHANGE_INODE)
        s->inode++;
    else if (c->kind == STORE_CHANGE_INODE_GONE)
        s->gone++;
    else if (c->kind == STORE_CHANGE_NAME && c->parent == STORE_ROOT_INO)
        s->name++;
}

static void test_observer(void)
{
    struct tstore t;
    tstore_init(&t);
    struct seen s = {0};
    struct store_observer obs = {.ctx = &s, .dropping = on_dropping, .changed = on_changed};
    store_set_observer(t.s, &obs);
    CHECK_EQ(t_put(&t, "/a", "old"), 0); /* name(/a), inode(root) */
    CHECK_EQ(s.name, 1);
    CHECK_EQ(s.inode, 1);
    CHECK_EQ(t_put(&t, "/a", "older"), 0); /* inode(a) */
    CHECK_EQ(s.inode, 2);
    CHECK_EQ(t_put(&t, "/b", "new"), 0);
    memset(&s, 0, sizeof(s));
    CHECK_EQ(t_rename(&t, "/b", "/a", 0), 0); /* drops old /a */
    CHECK_EQ(s.dropped, 1);
    CHECK(!strcmp(s.dropped_data, "older"));
    CHECK_EQ(s.gone, 1);
    CHECK_EQ(s.name, 2);
    memset(&s, 0, sizeof(s));
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/nope"), ENOENT); /* no changes */
    CHECK_EQ(s.inode + s.gone + s.name + s.dropped, 0);
    tstore_fini(&t);
}

/* ---- deferred applies (lazy apply) ---- */

static bool defer_it(void *ctx)
{
    (*(int *)ctx)++;
    return false;
}

static bool commit_it(void *ctx)
{
    (*(int *)ctx)++;
    return true;
}

static void *encode_put(const char *path, const char *value, size_t *len)
{
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = path,
                          .path_len = strlen(path),
                          .value = value,
                          .value_len = strlen(value),
                          .mode = 0644,
                          .time_ns = 1};
    void *buf;
    CHECK_EQ(store_cmd_encode(&c, &buf, len), 0);
    return buf;
}

struct reader {
    struct store *s;
    const char *path;
    int found; /* 1 found, 0 ENOENT, -1 other */
};

/* Another thread's view. */
static void *read_other(void *arg)
{
    struct reader *r = arg;
    struct store_txn *t;
    struct store_attr a;
    if (store_txn_begin(r->s, &t)) {
        r->found = -1;
        return NULL;
    }
    int rc = store_resolve(t, r->path, strlen(r->path), &a);
    store_txn_end(t);
    r->found = rc == 0 ? 1 : rc == ENOENT ? 0 : -1;
    return NULL;
}

static int seen_by_other(struct store *s, const char *path)
{
    struct reader r = {.s = s, .path = path};
    pthread_t th;
    pthread_create(&th, NULL, read_other, &r);
    pthread_join(th, NULL);
    return r.found;
}

static void test_deferred(void)
{
    struct tstore t;
    tstore_init(&t);
    store_set_lazy_apply(t.s, true);
    struct seen seen = {0};
    struct store_observer obs = {.ctx = &seen, .changed = on_changed};
    store_set_observer(t.s, &obs);
    int calls = 0;
    size_t len1, len2, len3;
    void *p1 = encode_put("/d1", "one", &len1), *p2 = encode_put("/d2", "two", &len2),
         *p3 = encode_put("/d3", "three", &len3);
    struct store_entry e = {.index = 1, .data = p1, .len = len1};
    struct store_result r[2];
    /* Deferred: decided, but no reader elsewhere sees it, nor is it
     * reported; later batches join it. */
    CHECK_EQ(store_apply_batch_decided(t.s, &e, 1, r, defer_it, &calls), 0);
    CHECK_EQ(calls, 1);
    CHECK_EQ(r[0].err, 0);
    CHECK(store_apply_deferred(t.s));
    CHECK_EQ(store_applied_visible(t.s), 0);
    CHECK_EQ(seen_by_other(t.s, "/d1"), 0);
    CHECK_EQ(seen.name, 0);
    e = (struct store_entry){.index = 2, .data = p2, .len = len2};
    CHECK_EQ(store_apply_batch_decided(t.s, &e, 1, r, defer_it, &calls), 0);
    CHECK_EQ(seen_by_other(t.s, "/d2"), 0);
    /* A batch that fails leaves them in place. */
    struct store_entry bad[2] = {{.index = 4, .data = p3, .len = len3},
                                 {.index = 3, .data = p3, .len = len3}};
    CHECK_EQ(store_apply_batch_decided(t.s, bad, 2, r, defer_it, &calls), EINVAL);
    CHECK(store_apply_deferred(t.s));
    /* Committed: visible everywhere and reported. */
    CHECK_EQ(store_apply_flush(t.s), 0);
    CHECK(!store_apply_deferred(t.s));
    CHECK_EQ(store_applied_visible(t.s), 2);
    CHECK_EQ(seen_by_other(t.s, "/d1"), 1);
    CHECK_EQ(seen_by_other(t.s, "/d2"), 1);
    CHECK_EQ(seen.name, 2);
    CHECK_EQ(store_apply_flush(t.s), 0); /* nothing to do */
    /* A read begun on the applying thread commits them first. */
    e = (struct store_entry){.index = 3, .data = p3, .len = len3};
    CHECK_EQ(store_apply_batch_decided(t.s, &e, 1, r, defer_it, &calls), 0);
    t.index = 3;
    struct store_attr a;
    CHECK_EQ(t_stat(&t, "/d3", &a), 0);
    CHECK(!store_apply_deferred(t.s));
    CHECK_EQ(store_apply_flush_error(t.s), 0);
    CHECK_EQ(store_applied_visible(t.s), 3);
    /* decided saying "now" commits what was deferred before, too. */
    e = (struct store_entry){.index = 4, .data = p1, .len = len1};
    CHECK_EQ(store_apply_batch_decided(t.s, &e, 1, r, defer_it, &calls), 0);
    e = (struct store_entry){.index = 5, .data = p2, .len = len2};
    CHECK_EQ(store_apply_batch_decided(t.s, &e, 1, r, commit_it, &calls), 0);
    CHECK(!store_apply_deferred(t.s));
    CHECK_EQ(store_applied_visible(t.s), 5);
    /* Entries already applied are skipped, deferred or not; none opens a
     * transaction for nothing. */
    CHECK_EQ(store_apply_batch_decided(t.s, &e, 1, r, defer_it, &calls), 0);
    CHECK(r[0].skipped);
    CHECK(!store_apply_deferred(t.s));
    /* Closing commits what is deferred. */
    e = (struct store_entry){.index = 6, .data = p3, .len = len3};
    CHECK_EQ(store_apply_batch_decided(t.s, &e, 1, r, defer_it, &calls), 0);
    store_close(t.s);
    t.s = open_store(t.dir);
    struct store_stats st;
    CHECK_EQ(store_get_stats(t.s, &st), 0);
    CHECK_EQ(st.applied_index, 6);
    free(p1);
    free(p2);
    free(p3);
    tstore_fini(&t);
}

/* A deferred batch, then one that finds no room in the map: the failure
 * loses both (no child transaction keeps the first); applied again, from
 * the first, they commit. */
static void test_deferred_lost_with_failed_batch(void)
{
    char *dir = tmpdir_make();
    struct store_config cfg = {.map_bytes = 2U << 20};
    struct store *s = open_store_cfg(dir, &cfg);
    store_set_lazy_apply(s, true);
    int calls = 0;
    size_t len1, lenb;
    void *p1 = encode_put("/d1", "one", &len1);
    static char value[400000];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = 0;
    struct store_entry e[7];
    void *bigs[6];
    for (int i = 0; i < 6; i++) {
        char path[8];
        snprintf(path, sizeof(path), "/b%d", i);
        bigs[i] = encode_put(path, value, &lenb);
        e[1 + i] = (struct store_entry){.index = 2 + (uint64_t)i, .data = bigs[i], .len = lenb};
    }
    e[0] = (struct store_entry){.index = 1, .data = p1, .len = len1};
    struct store_result r[7];
    CHECK_EQ(store_apply_batch_decided(s, &e[0], 1, r, defer_it, &calls), 0);
    CHECK(store_apply_deferred(s));
    /* 2.4 MB of values in a 2 MiB map */
    CHECK_EQ(store_apply_batch_decided(s, &e[1], 6, r, defer_it, &calls), ENOSPC);
    CHECK(!store_apply_deferred(s));
    CHECK_EQ(store_applied_visible(s), 0);
    CHECK_EQ(seen_by_other(s, "/d1"), 0);
    struct store_stats st;
    CHECK_EQ(store_get_stats(s, &st), 0);
    CHECK_EQ(st.applied_index, 0);
    /* from the first lost one: not skipped, applied and committed */
    CHECK_EQ(store_apply_batch_decided(s, &e[0], 2, r, commit_it, &calls), 0);
    CHECK(!r[0].skipped);
    CHECK_EQ(r[0].err, 0);
    CHECK_EQ(r[1].err, 0);
    CHECK_EQ(store_applied_visible(s), 2);
    CHECK_EQ(seen_by_other(s, "/d1"), 1);
    CHECK_EQ(seen_by_other(s, "/b0"), 1);
    /* the caller's bug changes nothing: what is deferred stays */
    CHECK_EQ(store_apply_batch_decided(s, &e[2], 1, r, defer_it, &calls), 0);
    struct store_entry backwards[2] = {e[4], e[3]};
    CHECK_EQ(store_apply_batch_decided(s, backwards, 2, r, defer_it, &calls), EINVAL);
    CHECK(store_apply_deferred(s));
    CHECK_EQ(store_apply_flush(s), 0);
    CHECK_EQ(store_applied_visible(s), 3);
    for (int i = 0; i < 6; i++)
        free(bigs[i]);
    free(p1);
    store_close(s);
    rm_rf(dir);
    free(dir);
}

/* Two stores fed the same commands hold the same tree: same inodes, times,
 * revisions. */
static void test_deterministic(void)
{
    struct tstore t1, t2;
    tstore_init(&t1);
    tstore_init(&t2);
    struct tstore *ts[2] = {&t1, &t2};
    for (int k = 0; k < 2; k++) {
        CHECK_EQ(t_mkdir(ts[k], "/app"), 0);
        CHECK_EQ(t_put(ts[k], "/app/url", "http://x"), 0);
        CHECK_EQ(t_put(ts[k], "/app/tmp", "y"), 0);
        CHECK_EQ(t_rename(ts[k], "/app/tmp", "/app/url", 0), 0);
        CHECK_EQ(t_mkdir(ts[k], "/other"), 0);
    }
    struct store_attr a1, a2;
    const char *paths[] = {"/", "/app", "/app/url", "/other"};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(t_stat(&t1, paths[i], &a1), 0);
        CHECK_EQ(t_stat(&t2, paths[i], &a2), 0);
        a1.atime_ns = a2.atime_ns = 0; /* the root's times come from its creation */
        if (i == 0)
            a1.mtime_ns = a2.mtime_ns = a1.ctime_ns = a2.ctime_ns = 0;
        CHECK_EQ(a1.ino, a2.ino);
        CHECK_EQ(a1.mode, a2.mode);
        CHECK_EQ(a1.nlink, a2.nlink);
        CHECK_EQ(a1.size, a2.size);
        CHECK_EQ(a1.mtime_ns, a2.mtime_ns);
        CHECK_EQ(a1.ctime_ns, a2.ctime_ns);
        CHECK_EQ(a1.create_revision, a2.create_revision);
        CHECK_EQ(a1.mod_revision, a2.mod_revision);
        CHECK_EQ(a1.version, a2.version);
        CHECK_EQ(a1.parent, a2.parent);
    }
    tstore_fini(&t1);
    tstore_fini(&t2);
}

/* Applies one encoded command at an explicit index. */
static struct store_result at(struct tstore *t, uint64_t index, struct store_cmd *c)
{
    void *buf;
    size_t len;
    struct store_result r;
    if (!c->path_len && c->path)
        c->path_len = strlen(c->path);
    c->time_ns = 7;
    CHECK_EQ(store_cmd_encode(c, &buf, &len), 0);
    CHECK_EQ(store_apply(t->s, index, buf, len, &r), 0);
    free(buf);
    return r;
}

static void test_exactly_once(void)
{
    struct tstore t;
    tstore_init(&t);
    char buf[64];
    CHECK_EQ(t_put(&t, "/log", ""), 0); /* index 1 */
    struct store_cmd ap = {.op = STORE_OP_APPEND,
                           .path = "/log",
                           .value = "x",
                           .value_len = 1,
                           .client_id = 77,
                           .seq = 1};
    struct store_result r1 = at(&t, 2, &ap);
    CHECK_EQ(r1.err, 0);
    CHECK(!r1.duplicate);
    /* The same proposal committed again (a retry across a leader change). */
    struct store_result r2 = at(&t, 3, &ap);
    CHECK(r2.duplicate);
    CHECK_EQ(r2.err, 0);
    CHECK_EQ(r2.revision, r1.revision);
    CHECK(r2.has_attr);
    CHECK_EQ(r2.attr.size, 1);
    CHECK_EQ(t_get(&t, "/log", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "x")); /* applied once */
    /* An older one: refused, nothing applied. */
    ap.seq = 0;
    ap.client_id = 77;
    struct store_cmd older = ap;
    older.seq = 0;
    /* seq 0 with a client id is "older than 1" */
    struct store_result r3 = at(&t, 4, &older);
    CHECK(r3.duplicate);
    CHECK_EQ(r3.err, EALREADY);
    /* The next one applies. */
    ap.seq = 2;
    struct store_result r4 = at(&t, 5, &ap);
    CHECK(!r4.duplicate);
    CHECK_EQ(t_get(&t, "/log", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "xx"));
    /* A failed command's result is the answer to its retries too, even if
     * it would succeed now. */
    struct store_cmd mk = {.op = STORE_OP_PUT,
                           .path = "/d/k",
                           .value = "v",
                           .value_len = 1,
                           .client_id = 78,
                           .seq = 1};
    CHECK_EQ(at(&t, 6, &mk).err, ENOENT);
    CHECK_EQ(t_mkdir(&t, "/d"), 0);
    t.index = 10;
    struct store_result r5 = at(&t, 11, &mk);
    CHECK(r5.duplicate);
    CHECK_EQ(r5.err, ENOENT);
    CHECK_EQ(t_stat(&t, "/d/k", NULL), ENOENT);

    /* Sessions survive a snapshot. */
    char path[600], err[256];
    snprintf(path, sizeof(path), "%s/../img-XXXXXX", t.dir);
    int fd = mkstemp(path);
    unlink(path);
    CHECK_EQ(store_snapshot_write(t.s, fd, NULL), 0);
    struct tstore u;
    tstore_init(&u);
    CHECK_EQ(store_snapshot_install(u.s, fd, NULL, err, sizeof(err)), 0);
    ap.seq = 2;
    struct store_result r6 = at(&u, 20, &ap);
    CHECK(r6.duplicate);
    CHECK_EQ(t_get(&u, "/log", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "xx"));
    close(fd);
    tstore_fini(&u);
    tstore_fini(&t);
}

static void test_sessions_bounded(void)
{
    struct tstore t;
    tstore_init(&t);
    /* STORE_MAX_SESSIONS + 1 clients, one command each, in big batches. */
    const size_t total = STORE_MAX_SESSIONS + 1, batch = 4096;
    struct store_cmd c = {.op = STORE_OP_SETATTR,
                          .path = "/",
                          .path_len = 1,
                          .set_mask = STORE_SET_MODE,
                          .mode = 0755,
                          .time_ns = 1,
                          .seq = 1};
    void **bufs = calloc(batch, sizeof(void *));
    struct store_entry *e = calloc(batch, sizeof(*e));
    struct store_result *r = calloc(batch, sizeof(*r));
    uint64_t index = 0;
    for (size_t done = 0; done < total;) {
        size_t n = total - done < batch ? total - done : batch;
        for (size_t i = 0; i < n; i++) {
            size_t len;
            c.client_id = 1000 + done + i;
            CHECK_EQ(store_cmd_encode(&c, &bufs[i], &len), 0);
            e[i] = (struct store_entry){.index = ++index, .data = bufs[i], .len = len};
        }
        CHECK_EQ(store_apply_batch(t.s, e, n, r), 0);
        for (size_t i = 0; i < n; i++)
            free(bufs[i]);
        done += n;
    }
    /* The first client was forgotten: its retry applies again. The last
     * one is remembered. */
    c.client_id = 1000;
    struct store_result first = at(&t, ++index, &c);
    CHECK(!first.duplicate);
    c.client_id = 1000 + total - 1;
    struct store_result last = at(&t, ++index, &c);
    CHECK(last.duplicate);
    free(bufs);
    free(e);
    free(r);
    tstore_fini(&t);
}

int main(void)
{
    RUN(test_put_get_overwrite);
    RUN(test_put_errors);
    RUN(test_limits);
    RUN(test_append);
    RUN(test_delete);
    RUN(test_mkdir_rmdir);
    RUN(test_rename_files);
    RUN(test_rename_dirs);
    RUN(test_setattr);
    RUN(test_revisions);
    RUN(test_compare);
    RUN(test_reapply_is_noop);
    RUN(test_batch);
    RUN(test_observer);
    RUN(test_deferred);
    RUN(test_deferred_lost_with_failed_batch);
    RUN(test_deterministic);
    RUN(test_exactly_once);
    RUN(test_sessions_bounded);
    CHECK_DONE();
}
