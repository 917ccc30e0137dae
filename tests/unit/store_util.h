/* store_util.h - helpers for the store's unit tests: temporary data
 * directories and one-line command application. */
#ifndef RAFTFS_STORE_UTIL_H
#define RAFTFS_STORE_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "store.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* rm -r path (no error if missing). */
static inline void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Temporary directories on /dev/shm unless TMPDIR says otherwise: for
 * tests of logic, not of the disk, that make hundreds of them. */
static inline void tmpdir_prefer_shm(void)
{
    struct stat sb;
    if (!getenv("TMPDIR") && !stat("/dev/shm", &sb) && S_ISDIR(sb.st_mode))
        setenv("TMPDIR", "/dev/shm", 0);
}

/* A fresh temporary directory; the caller rm_rf()s and frees it. */
static inline char *tmpdir_make(void)
{
    const char *base = getenv("TMPDIR");
    char *p;
    if (asprintf(&p, "%s/raftfs-test-XXXXXX", base ? base : "/tmp") < 0 || !mkdtemp(p)) {
        perror("mkdtemp");
        exit(2);
    }
    return p;
}

static inline struct store *open_store_cfg(const char *dir, const struct store_config *cfg)
{
    struct store *s = NULL;
    char err[512];
    int rc = store_open(&s, dir, cfg, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "store_open(%s): %s (%s)\n", dir, err, strerror(rc));
        exit(2);
    }
    return s;
}

static inline struct store *open_store(const char *dir)
{
    return open_store_cfg(dir, NULL);
}

/* A test store with its own index counter. */
struct tstore {
    char *dir;
    struct store *s;
    uint64_t index;
};

static inline void tstore_init(struct tstore *t)
{
    t->dir = tmpdir_make();
    t->s = open_store(t->dir);
    t->index = 0;
}

static inline void tstore_fini(struct tstore *t)
{
    store_close(t->s);
    rm_rf(t->dir);
    free(t->dir);
}

/* Encodes and applies cmd at the next index; returns the command's errno
 * (the batch must commit, else the test aborts). */
static inline int tapply(struct tstore *t, struct store_cmd *cmd, struct store_result *res)
{
    void *buf;
    size_t len;
    struct store_result local;
    if (!res)
        res = &local;
    if (!cmd->path_len && cmd->path)
        cmd->path_len = strlen(cmd->path);
    if (!cmd->path2_len && cmd->path2)
        cmd->path2_len = strlen(cmd->path2);
    if (!cmd->time_ns)
        cmd->time_ns = 1700000000000000000LL + (int64_t)t->index;
    if (store_cmd_encode(cmd, &buf, &len)) {
        fprintf(stderr, "encode failed\n");
        exit(2);
    }
    int rc = store_apply(t->s, ++t->index, buf, len, res);
    free(buf);
    if (rc) {
        fprintf(stderr, "store_apply: %s\n", strerror(rc));
        exit(2);
    }
    return res->err;
}

static inline int t_put(struct tstore *t, const char *path, const char *value)
{
    struct store_cmd c = {
        .op = STORE_OP_PUT, .path = path, .value = value, .value_len = strlen(value), .mode = 0644};
    return tapply(t, &c, NULL);
}

static inline int t_mkdir(struct tstore *t, const char *path)
{
    struct store_cmd c = {.op = STORE_OP_MKDIR, .path = path, .mode = 0755};
    return tapply(t, &c, NULL);
}

static inline int t_simple(struct tstore *t, enum store_op op, const char *path)
{
    struct store_cmd c = {.op = op, .path = path};
    return tapply(t, &c, NULL);
}

static inline int t_rename(struct tstore *t, const char *from, const char *to, uint32_t flags)
{
    struct store_cmd c = {.op = STORE_OP_RENAME, .path = from, .path2 = to, .rename_flags = flags};
    return tapply(t, &c, NULL);
}

/* Resolves path; returns errno. */
static inline int t_stat(struct tstore *t, const char *path, struct store_attr *a)
{
    struct store_txn *x;
    struct store_attr local;
    if (store_txn_begin(t->s, &x))
        exit(2);
    int rc = store_resolve(x, path, strlen(path), a ? a : &local);
    store_txn_end(x);
    return rc;
}

/* Reads path's value into buf (NUL-terminated); returns errno. */
static inline int t_get(struct tstore *t, const char *path, char *buf, size_t cap)
{
    struct store_txn *x;
    struct store_attr a;
    if (store_txn_begin(t->s, &x))
        exit(2);
    int rc = store_resolve(x, path, strlen(path), &a);
    if (!rc) {
        const void *d;
        size_t n;
        rc = store_read(x, a.ino, &d, &n);
        if (!rc) {
            if (n >= cap)
                n = cap - 1;
            memcpy(buf, d, n);
            buf[n] = 0;
        }
    }
    store_txn_end(x);
    return rc;
}

static inline uint64_t t_revision(struct tstore *t)
{
    struct store_stats st;
    if (store_get_stats(t->s, &st))
        exit(2);
    return st.revision;
}

#endif
