/* store_env.c - opening a data directory: creation, format and corruption
 * checks, the process lock, limits. */
#include "fault.h"
#include "store_internal.h"
#include "store_wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define STORE_LOCK_FILE "raftfs.lock"

int store_fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int store_commit_errno(struct store *s, int mdb_rc)
{
    int rc = store_mdb_errno(mdb_rc);
    /* LMDB reports a write of its pages cut short as EIO (a failed one
     * gives the write's own errno). The map is a sparse file, so pages at
     * its end need new blocks: on a full disk the write is cut short, and
     * that is a lack of room, which callers wait out, not a disk error
     * they fail closed on (found by tests/chaos: diskfull). The commit was
     * aborted and the meta page not written: the file is as before. Not
     * for MDB_PANIC, after which nothing commits again. */
    if (mdb_rc == EIO && s->lock_fd >= 0) {
        struct statvfs vfs;
        if (fstatvfs(s->lock_fd, &vfs) == 0 &&
            (uint64_t)vfs.f_bavail * vfs.f_frsize < STORE_FULL_DISK_BYTES)
            rc = ENOSPC;
    }
    return rc;
}

int store_txn_commit(struct store *s, MDB_txn *txn, bool durable)
{
    /* Unsynced: no fsync at all (store_boot.c makes that safe); else one,
     * of the data pages. */
    unsigned flag = s->unsynced ? MDB_NOSYNC : MDB_NOMETASYNC;
    if (s->sync_failed) {
        mdb_txn_abort(txn);
        return EIO; /* store_sync_failed: the tree cannot be trusted any more */
    }
    if (!durable)
        mdb_env_set_flags(s->env, flag, 1);
    int f = fault_at(FAULT_TREE_COMMIT);
    int rc = f ? (mdb_txn_abort(txn), f) : mdb_txn_commit(txn);
    if (!durable)
        mdb_env_set_flags(s->env, flag, 0);
    return store_commit_errno(s, rc);
}

int store_mdb_errno(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_PAGE_FULL:
        return ENOSPC;
    case MDB_READERS_FULL:
        return EAGAIN;
    case MDB_NOTFOUND:
        return ENOENT;
    default:
        if (rc > 0)
            return rc; /* an errno from the OS: EIO, ENOSPC, ENOMEM ... */
        return EIO;    /* MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID, ... */
    }
}

static int limits_check(const struct store_limits *l)
{
    if (l->max_value_bytes == 0 || l->max_value_bytes > STORE_MAX_VALUE_BYTES_BOUND ||
        l->max_name_bytes == 0 || l->max_name_bytes > STORE_MAX_NAME_BYTES_BOUND ||
        l->max_path_bytes < 2 || l->max_path_bytes > STORE_MAX_PATH_BYTES_BOUND)
        return EINVAL;
    return 0;
}

int store_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) ? errno : 0;
    close(fd);
    return rc;
}

/* What a data directory holds: only our own names (and lost+found, for a
 * directory that is the root of its own filesystem) make it ours or empty. */
static int scan_dir(const char *dir, bool *has_store, bool *has_tmp, bool *has_id_tmp, char *err,
                    size_t err_len)
{
    bool has_wal = false;
    *has_id_tmp = false;
    DIR *d = opendir(dir);
    if (!d)
        return store_fail(err, err_len, errno, "cannot open data directory %s: %s", dir,
                          strerror(errno));
    int rc = 0;
    struct dirent *e;
    *has_store = *has_tmp = false;
    errno = 0;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, STORE_LOCK_FILE) ||
            !strcmp(n, "raftfs.log") || !strcmp(n, "snapshots") || !strcmp(n, "lost+found") ||
            !strcmp(n, STORE_PROMOTE_FILE) || !strcmp(n, STORE_JOINED_FILE) ||
            !strcmp(n, STORE_IDENTITY_FILE))
            continue;
        if (!strcmp(n, STORE_BOOT_FILE) || !strcmp(n, STORE_BOOT_TMP) ||
            !strcmp(n, STORE_UNTRUSTED_DIR))
            continue;                         /* store_boot.c */
        if (!strcmp(n, STORE_IDENTITY_TMP)) { /* a write cut short: removed at open */
            *has_id_tmp = true;
            continue;
        }
        if (!strcmp(n, STORE_ENV_DIR)) {
            *has_store = true;
            continue;
        }
        if (!strcmp(n, STORE_ENV_TMP)) {
            *has_tmp = true;
            continue;
        }
        if (!strcmp(n, STORE_WAL_TMP)) /* a move cut short: store_log_open removes it */
            continue;
        if (!strcmp(n, STORE_WAL_DIR)) {
            has_wal = true;
            continue;
        }
        rc = store_fail(err, err_len, ENOTEMPTY,
                        "data directory %s holds '%s' and no raftfs store: refusing to use a "
                        "foreign directory (give an empty or new directory)",
                        dir, n);
        break;
    }
    if (!rc && errno)
        rc = store_fail(err, err_len, errno, "cannot read data directory %s: %s", dir,
                        strerror(errno));
    if (!rc && has_wal && !*has_store)
        rc = store_fail(err, err_len, EPROTO,
                        "data directory %s holds a Raft log (" STORE_WAL_DIR
                        "/) but no store (" STORE_ENV_DIR "/): it is damaged; refusing to start",
                        dir);
    closedir(d);
    return rc;
}

static int lock_dir(const char *dir, int *out_fd, char *err, size_t err_len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return store_fail(err, err_len, errno, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        if (n > 0)
            pid[strcspn(pid, "\n")] = 0;
        else
            pid[0] = 0;
        close(fd);
        if (e == EWOULDBLOCK)
            return store_fail(err, err_len, EBUSY,
                              "data directory %s is in use by another raftfs process (pid %s)", dir,
                              pid[0] ? pid : "unknown");
        return store_fail(err, err_len, e, "cannot lock %s: %s", path, strerror(e));
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return store_fail(err, err_len, e, "cannot write %s: %s", path, strerror(e));
    }
    *out_fd = fd;
    return 0;
}

/* Removes a store.tmp left by a creation that crashed: it never held
 * anything but an empty tree, as it is renamed into place only when done. */
static int remove_tmp(const char *dir, char *err, size_t err_len)
{
    char path[4096];
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s/%s", dir, STORE_ENV_TMP, files[i]);
        if (unlink(path) && errno != ENOENT)
            return store_fail(err, err_len, errno, "cannot remove %s: %s", path, strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_ENV_TMP);
    if (rmdir(path))
        return store_fail(err, err_len, errno,
                          "cannot remove the unfinished %s (%s): remove it by hand if it is yours",
                          path, strerror(errno));
    return 0;
}

static int env_create(MDB_env **out, const char *path, uint64_t map_bytes)
{
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc)
        return rc;
    if ((rc = mdb_env_set_mapsize(env, (size_t)map_bytes)) || (rc = mdb_env_set_maxdbs(env, 16)) ||
        (rc = mdb_env_set_maxreaders(env, 512))) {
        mdb_env_close(env);
        return rc;
    }
    /* Durable defaults: every commit is synced (no MDB_NOSYNC/NOMETASYNC).
     * MDB_NORDAHEAD: random access, readahead only wastes page cache. */
    rc = mdb_env_open(env, path, MDB_NORDAHEAD, 0600);
    if (rc) {
        mdb_env_close(env);
        return rc;
    }
    /* LMDB opens the data file without O_CLOEXEC: the mount's fusermount3
     * (and any other child) would hold it for as long as it lives. */
    mdb_filehandle_t fd;
    if (mdb_env_get_fd(env, &fd) == 0 && fd >= 0)
        fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    *out = env;
    return 0;
}

static int now_ns_init(int64_t *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *out = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    return 0;
}

/* Creates an empty tree in dir/store.tmp and renames it to dir/store. */
static int create_store(const char *dir, const struct store_limits *lim, uint64_t map_bytes,
                        char *err, size_t err_len)
{
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof(tmp), "%s/%s", dir, STORE_ENV_TMP);
    snprintf(final, sizeof(final), "%s/%s", dir, STORE_ENV_DIR);
    if (mkdir(tmp, 0700))
        return store_fail(err, err_len, errno, "cannot create %s: %s", tmp, strerror(errno));
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    int rc = env_create(&env, tmp, map_bytes);
    if (rc)
        goto fail_mdb;
    MDB_dbi meta, inodes, dirents, data, log, raft, sessions, lru, members;
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta)) ||
        (rc = mdb_dbi_open(txn, "inodes", MDB_CREATE, &inodes)) ||
        (rc = mdb_dbi_open(txn, "dirents", MDB_CREATE, &dirents)) ||
        (rc = mdb_dbi_open(txn, "data", MDB_CREATE, &data)) ||
        (rc = mdb_dbi_open(txn, "log", MDB_CREATE, &log)) ||
        (rc = mdb_dbi_open(txn, "raft", MDB_CREATE, &raft)) ||
        (rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &sessions)) ||
        (rc = mdb_dbi_open(txn, "session_lru", MDB_CREATE, &lru)) ||
        (rc = mdb_dbi_open(txn, "members", MDB_CREATE, &members)))
        goto fail_mdb;

    unsigned char fmt[STORE_FORMAT_LEN];
    store_format_encode(STORE_FORMAT_VERSION, fmt);
    unsigned char limbuf[STORE_LIMITS_REC_LEN];
    store_limits_encode(lim, limbuf);
    struct store_state st = {.applied_index = 0, .revision = 0, .next_ino = 2, .inodes = 1};
    unsigned char stbuf[STORE_STATE_REC_LEN];
    store_state_encode(&st, stbuf);

    struct store_inode root = {0};
    int64_t now;
    now_ns_init(&now);
    root.attr.ino = STORE_ROOT_INO;
    root.attr.type = STORE_TYPE_DIR;
    root.attr.mode = S_IFDIR | 0755;
    root.attr.uid = (uint32_t)getuid();
    root.attr.gid = (uint32_t)getgid();
    root.attr.nlink = 2;
    root.attr.atime_ns = root.attr.mtime_ns = root.attr.ctime_ns = now;
    root.attr.parent = STORE_ROOT_INO;
    unsigned char rootbuf[STORE_INODE_REC_MAX], rootkey[8];
    size_t rootlen = store_inode_encode(&root, rootbuf);
    store_u64be_put(rootkey, STORE_ROOT_INO);

    MDB_val k, val;
    k.mv_data = "format", k.mv_size = 6, val.mv_data = fmt, val.mv_size = sizeof(fmt);
    if ((rc = mdb_put(txn, meta, &k, &val, 0)))
        goto fail_mdb;
    k.mv_data = "limits", k.mv_size = 6, val.mv_data = limbuf, val.mv_size = sizeof(limbuf);
    if ((rc = mdb_put(txn, meta, &k, &val, 0)))
        goto fail_mdb;
    k.mv_data = "state", k.mv_size = 5, val.mv_data = stbuf, val.mv_size = sizeof(stbuf);
    if ((rc = mdb_put(txn, meta, &k, &val, 0)))
        goto fail_mdb;
    k.mv_data = rootkey, k.mv_size = 8, val.mv_data = rootbuf, val.mv_size = rootlen;
    if ((rc = mdb_put(txn, inodes, &k, &val, 0)))
        goto fail_mdb;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc)
        goto fail_mdb;
    mdb_env_close(env);
    env = NULL;
    if (rename(tmp, final))
        return store_fail(err, err_len, errno, "cannot rename %s to %s: %s", tmp, final,
                          strerror(errno));
    if ((rc = store_fsync_path(dir)))
        return store_fail(err, err_len, rc, "cannot sync %s: %s", dir, strerror(rc));
    return 0;

fail_mdb:
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return store_fail(err, err_len, store_mdb_errno(rc), "cannot create a store in %s: %s", tmp,
                      mdb_strerror(rc));
}

/* Format 1 to 2: moves every value from the "data" table to the inodes
 * table, next to its inode record (store_value_key), and records format 2,
 * in one synced transaction: a crash leaves format 1 whole, moved again at
 * the next start. */
static int values_move(struct store *s)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = store_begin(s, 0, &txn);
    if (rc)
        return store_mdb_errno(rc);
    if ((rc = mdb_cursor_open(txn, s->data, &cur)))
        goto fail;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        unsigned char kb[STORE_VALUE_KEY_LEN];
        store_value_key(store_u64be_get(k.mv_data), kb);
        MDB_val nk = {.mv_size = sizeof(kb), .mv_data = kb};
        if ((rc = mdb_put(txn, s->inodes, &nk, &v, MDB_NOOVERWRITE)))
            break;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        goto fail;
    unsigned char fmt[STORE_FORMAT_LEN];
    store_format_encode(STORE_FORMAT_VERSION, fmt);
    MDB_val fk = {.mv_size = 6, .mv_data = "format"}, fv = {.mv_size = sizeof(fmt), .mv_data = fmt};
    if ((rc = mdb_drop(txn, s->data, 0)) || (rc = mdb_put(txn, s->meta, &fk, &fv, 0)))
        goto fail;
    return store_txn_commit(s, txn, true);
fail:
    mdb_txn_abort(txn);
    return rc == MDB_KEYEXIST ? EIO : store_mdb_errno(rc);
}

/* Opens dir/store and checks that it is a raftfs store we can read. */
static int open_existing(struct store *s, const char *dir, const struct store_config *cfg,
                         char *err, size_t err_len)
{
    char path[4096], data[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_ENV_DIR);
    snprintf(data, sizeof(data), "%s/data.mdb", path);
    struct stat sb;
    /* LMDB would create a missing data.mdb: check first, never reinitialise. */
    if (stat(data, &sb))
        return store_fail(err, err_len, EPROTO,
                          "%s is missing (%s): the store is damaged; refusing to start", data,
                          strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return store_fail(err, err_len, EPROTO, "%s is not a regular file: refusing to start",
                          data);
    /* LMDB initialises an empty file as a new environment: a store file
     * shorter than its two meta pages is damaged, never new. */
    if (sb.st_size < 2 * 4096)
        return store_fail(err, err_len, EPROTO,
                          "%s is truncated (%lld bytes): the store is damaged; refusing to start",
                          data, (long long)sb.st_size);

    int rc = env_create(&s->env, path, cfg->map_bytes ? cfg->map_bytes : STORE_DEFAULT_MAP_BYTES);
    if (rc) {
        s->env = NULL;
        return store_fail(
            err, err_len,
            rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ? EPROTO : store_mdb_errno(rc),
            "%s is not a usable LMDB file (%s): refusing to start", data, mdb_strerror(rc));
    }
    MDB_txn *txn;
    if ((rc = store_begin(s, MDB_RDONLY, &txn)))
        return store_fail(err, err_len, store_mdb_errno(rc), "%s: cannot read: %s", data,
                          mdb_strerror(rc));
    const char *what = NULL;
    if ((rc = mdb_dbi_open(txn, "meta", 0, &s->meta)) ||
        (rc = mdb_dbi_open(txn, "inodes", 0, &s->inodes)) ||
        (rc = mdb_dbi_open(txn, "dirents", 0, &s->dirents)) ||
        (rc = mdb_dbi_open(txn, "data", 0, &s->data))) {
        mdb_txn_abort(txn);
        return store_fail(err, err_len, EPROTO,
                          "%s is not a raftfs store (missing tables: %s): refusing to start", data,
                          mdb_strerror(rc));
    }
    MDB_val k = {.mv_size = 6, .mv_data = "format"}, v;
    uint32_t version;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc || store_format_decode(v.mv_data, v.mv_size, &version)) {
        what = "no raftfs format record";
        goto corrupt;
    }
    if (!store_format_readable(version)) {
        mdb_txn_abort(txn);
        return store_fail(err, err_len, EPROTO,
                          "%s has store format %u, this build reads formats %u and %u: refusing "
                          "to start",
                          data, version, STORE_FORMAT_VALUES_APART, STORE_FORMAT_VERSION);
    }
    k.mv_data = "limits", k.mv_size = 6;
    if (mdb_get(txn, s->meta, &k, &v) || store_limits_decode(v.mv_data, v.mv_size, &s->limits)) {
        what = "bad limits record";
        goto corrupt;
    }
    struct store_state st;
    if (store_state_load(s, txn, &st)) {
        what = "bad state record";
        goto corrupt;
    }
    s->visible_index = st.applied_index;
    struct store_inode root;
    if (store_inode_load(s, txn, STORE_ROOT_INO, &root) || root.attr.type != STORE_TYPE_DIR) {
        what = "bad root directory";
        goto corrupt;
    }
    /* Commit, not abort: LMDB keeps DBI handles opened in a transaction
     * only if that transaction commits. */
    if ((rc = mdb_txn_commit(txn)))
        return store_fail(err, err_len, store_mdb_errno(rc), "%s: cannot read: %s", data,
                          mdb_strerror(rc));
    /* The Raft log tables (created here for stores made before they
     * existed: an empty log is the truth for those). */
    if ((rc = store_begin(s, 0, &txn)))
        return store_fail(err, err_len, store_mdb_errno(rc), "%s: cannot open the log: %s", data,
                          mdb_strerror(rc));
    if ((rc = mdb_dbi_open(txn, "log", MDB_CREATE, &s->log)) ||
        (rc = mdb_dbi_open(txn, "raft", MDB_CREATE, &s->raft)) ||
        (rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &s->sessions)) ||
        (rc = mdb_dbi_open(txn, "session_lru", MDB_CREATE, &s->session_lru)) ||
        (rc = mdb_dbi_open(txn, "members", MDB_CREATE, &s->members)) ||
        (rc = mdb_dbi_open(txn, "history", MDB_CREATE, &s->history)) ||
        (rc = mdb_dbi_open(txn, "leases", MDB_CREATE, &s->leases)) ||
        (rc = mdb_dbi_open(txn, "lease_keys", MDB_CREATE, &s->lease_keys)) ||
        (rc = mdb_dbi_open(txn, "ino_lease", MDB_CREATE, &s->ino_lease)) ||
        (rc = mdb_dbi_open(txn, "auth", MDB_CREATE, &s->auth))) {
        mdb_txn_abort(txn);
        return store_fail(err, err_len, store_mdb_errno(rc), "%s: cannot open the log: %s", data,
                          mdb_strerror(rc));
    }
    s->history_keep = cfg->history_revisions;
    if ((rc = store_history_open(s, txn, st.revision))) {
        mdb_txn_abort(txn);
        return store_fail(err, err_len, rc, "%s: cannot open the change history: %s", data,
                          strerror(rc));
    }
    if ((rc = mdb_txn_commit(txn)))
        return store_fail(err, err_len, store_mdb_errno(rc), "%s: cannot open the log: %s", data,
                          mdb_strerror(rc));
    if (version == STORE_FORMAT_VALUES_APART && (rc = values_move(s)))
        return store_fail(err, err_len, rc,
                          "%s: cannot move the values next to their inodes (store format %u to "
                          "%u): %s",
                          data, STORE_FORMAT_VALUES_APART, STORE_FORMAT_VERSION, strerror(rc));
    if ((rc = store_log_open(s, dir, cfg->log_segment_bytes, err, err_len))) {
        if (rc != EIO)
            return rc;
        char why[512];
        snprintf(why, sizeof(why), "%s", err ? err : "");
        return store_fail(err, err_len, EPROTO, "the Raft log is damaged (%s): refusing to start",
                          why);
    }

    const struct store_limits *want = &cfg->limits;
    if ((want->max_value_bytes && want->max_value_bytes != s->limits.max_value_bytes) ||
        (want->max_name_bytes && want->max_name_bytes != s->limits.max_name_bytes) ||
        (want->max_path_bytes && want->max_path_bytes != s->limits.max_path_bytes))
        return store_fail(err, err_len, EINVAL,
                          "limits differ from those this data directory was created with "
                          "(max value %u, name %u, path %u bytes); they are fixed at creation",
                          s->limits.max_value_bytes, s->limits.max_name_bytes,
                          s->limits.max_path_bytes);
    return 0;

corrupt:
    mdb_txn_abort(txn);
    return store_fail(err, err_len, EPROTO,
                      "%s is damaged or not a raftfs store (%s): refusing to start", data, what);
}

/* A rebuild that failed: the new store goes, the untrusted one comes back. */
static void restore_untrusted(const char *dir)
{
    char store[4200], aside[4200];
    snprintf(store, sizeof(store), "%s/%s", dir, STORE_ENV_DIR);
    snprintf(aside, sizeof(aside), "%s/%s", dir, STORE_UNTRUSTED_DIR);
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    char path[4300];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", store, files[i]);
        unlink(path);
    }
    rmdir(store);
    rename(aside, store);
}

bool store_rebuilt(const struct store *s, uint64_t *from_index)
{
    if (from_index)
        *from_index = s->rebuilt_from;
    return s->rebuilt;
}

static int identity_open(struct store *s, bool has_tmp, char *err, size_t err_len);

/* Every file's value against its inode record's checksum (records
 * written by builds from before it have none), in one pass over the
 * inodes table: a value follows its inode record (store_value_key). EIO
 * naming the first file that does not match: LMDB keeps no checksum of
 * its own pages, so this is how a flipped byte in the tree is seen. */
static int verify_values(struct store *s, char *err, size_t err_len)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    /* The map is opened without readahead (MDB_NORDAHEAD: random access
     * later, and LMDB's descriptor is marked so), so a cold scan would
     * fault in one page at a time. Read the used part of the file into the
     * page cache first, through a descriptor of our own: a 260 MB tree
     * took 4.4 s cold without this, about 1 s with it. */
    MDB_envinfo info;
    MDB_stat st;
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s/data.mdb", s->dir, STORE_ENV_DIR);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = malloc(1U << 20);
    if (fd >= 0 && buf && !mdb_env_info(s->env, &info) && !mdb_env_stat(s->env, &st)) {
        /* readahead(2) only starts reads that may not be done when the scan
         * gets there (measured: no gain); a plain sequential read is. */
        uint64_t used = (info.me_last_pgno + 1) * (uint64_t)st.ms_psize;
        (void)posix_fadvise(fd, 0, (off_t)used, POSIX_FADV_SEQUENTIAL);
        for (uint64_t off = 0; off < used;) {
            ssize_t n = pread(fd, buf, 1U << 20, (off_t)off);
            if (n <= 0)
                break; /* the scan reads what is left its own way */
            off += (uint64_t)n;
        }
    }
    free(buf);
    if (fd >= 0)
        close(fd);
    int rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc)
        return store_fail(err, err_len, store_mdb_errno(rc), "cannot read the store: %s",
                          mdb_strerror(rc));
    if ((rc = mdb_cursor_open(txn, s->inodes, &cur))) {
        mdb_txn_abort(txn);
        return store_fail(err, err_len, store_mdb_errno(rc), "cannot read the store: %s",
                          mdb_strerror(rc));
    }
    MDB_val k, v;
    uint64_t ino = 0, bad = 0;
    uint32_t crc = 0; /* of the last file inode read, 0: none to check */
    while (!bad && !(rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
        if (k.mv_size == 8) {
            struct store_inode in;
            ino = store_u64be_get(k.mv_data);
            crc = 0;
            if (store_inode_decode(v.mv_data, v.mv_size, &in))
                bad = ino; /* the tree's check says more: raftfs check */
            else if (in.attr.type == STORE_TYPE_FILE)
                crc = in.value_crc;
        } else if (store_is_value_key(k.mv_data, k.mv_size) && crc &&
                   store_u64be_get(k.mv_data) == ino) {
            if (store_value_crc(v.mv_data, v.mv_size) != crc)
                bad = ino;
            crc = 0;
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (bad)
        return store_fail(
            err, err_len, EIO,
            "%s/store/data.mdb: inode %llu's record or value does not match its "
            "checksum: the store is damaged, refusing to start (raftfs check --data says more; "
            "restore this member from a backup, or remove it and add it anew)",
            s->dir, (unsigned long long)bad);
    if (rc != MDB_NOTFOUND)
        return store_fail(err, err_len, store_mdb_errno(rc), "cannot read the store: %s",
                          mdb_strerror(rc));
    return 0;
}

int store_open(struct store **out, const char *dir, const struct store_config *cfg_in, char *err,
               size_t err_len)
{
    struct store_config cfg = cfg_in ? *cfg_in : (struct store_config){0};
    int rc;
    char boot[STORE_BOOT_ID_MAX] = "";
    bool untrusted = false;
    if (err && err_len)
        err[0] = 0;
    if (strlen(dir) > 3000)
        return store_fail(err, err_len, ENAMETOOLONG, "data directory path too long");

    struct stat sb;
    if (stat(dir, &sb)) {
        if (errno != ENOENT)
            return store_fail(err, err_len, errno, "cannot use data directory %s: %s", dir,
                              strerror(errno));
        if (mkdir(dir, 0700))
            return store_fail(err, err_len, errno, "cannot create data directory %s: %s", dir,
                              strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        return store_fail(err, err_len, ENOTDIR, "data directory %s is not a directory", dir);
    }

    bool has_store = false, has_tmp = false, has_id_tmp = false;
    if ((rc = scan_dir(dir, &has_store, &has_tmp, &has_id_tmp, err, err_len)))
        return rc;

    struct store *s = calloc(1, sizeof(*s));
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return store_fail(err, err_len, ENOMEM, "out of memory");
    }
    s->lock_fd = -1;
    if ((rc = lock_dir(dir, &s->lock_fd, err, err_len)))
        goto fail_free;

    /* Unsynced apply: a store another boot left open is not trusted
     * (store_boot.c): moved aside and made again from the image and log. */
    if (cfg.unsynced_apply) {
        if ((rc = store_boot_id(&cfg, boot))) {
            rc = store_fail(err, err_len, rc, "cannot read this boot's id: %s", strerror(rc));
            goto fail_free;
        }
        char was[STORE_BOOT_ID_MAX];
        struct store_limits lim;
        rc = store_boot_read(dir, was, &lim);
        if (rc && rc != ENOENT && rc != EIO) {
            rc = store_fail(err, err_len, rc, "cannot read %s/%s: %s", dir, STORE_BOOT_FILE,
                            strerror(rc));
            goto fail_free;
        }
        if (has_store && (rc == EIO || (!rc && strcmp(was, boot)))) {
            if (rc == EIO) { /* damaged: its limits are unknown */
                rc = store_fail(err, err_len, EPROTO,
                                "%s/%s is damaged and the store may be too: refusing to start", dir,
                                STORE_BOOT_FILE);
                goto fail_free;
            }
            if ((rc = store_boot_set_aside(dir, err, err_len)))
                goto fail_free;
            untrusted = true;
            has_store = false;
            cfg.limits = lim;
        }
        rc = 0;
    }
    if (!has_store) {
        struct store_limits lim = cfg.limits;
        if (!lim.max_value_bytes)
            lim.max_value_bytes = STORE_DEFAULT_MAX_VALUE_BYTES;
        if (!lim.max_name_bytes)
            lim.max_name_bytes = STORE_DEFAULT_MAX_NAME_BYTES;
        if (!lim.max_path_bytes)
            lim.max_path_bytes = STORE_DEFAULT_MAX_PATH_BYTES;
        if (limits_check(&lim)) {
            rc = store_fail(err, err_len, EINVAL,
                            "limits out of bounds: value 1..%u, name 1..%u, path 2..%u bytes",
                            STORE_MAX_VALUE_BYTES_BOUND, STORE_MAX_NAME_BYTES_BOUND,
                            STORE_MAX_PATH_BYTES_BOUND);
            goto fail_free;
        }
        if (has_tmp && (rc = remove_tmp(dir, err, err_len)))
            goto fail_free;
        if ((rc = create_store(dir, &lim, cfg.map_bytes ? cfg.map_bytes : STORE_DEFAULT_MAP_BYTES,
                               err, err_len)))
            goto fail_free;
    }
    if ((rc = open_existing(s, dir, &cfg, err, err_len)))
        goto fail_free;
    if ((rc = identity_open(s, has_id_tmp, err, err_len)))
        goto fail_free;
    if (untrusted && (rc = store_boot_rebuild(s, err, err_len)))
        goto fail_free;
    if (!cfg.no_value_check && (rc = verify_values(s, err, err_len)))
        goto fail_free;
    if (cfg.unsynced_apply) {
        /* Before any unsynced commit: this boot has the store open. */
        if ((rc = store_boot_write(dir, boot, &s->limits))) {
            rc = store_fail(err, err_len, rc, "cannot write %s/%s: %s", dir, STORE_BOOT_FILE,
                            strerror(rc));
            goto fail_free;
        }
        s->unsynced = true;
    }
    if (untrusted) {
        s->rebuilt = true;
        s->rebuilt_from = store_applied_visible(s);
    }
    *out = s;
    return 0;

fail_free:
    store_close(s);
    if (untrusted)
        restore_untrusted(dir); /* nothing lost: the old store is back */
    return rc;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->apply_txn)
        store_apply_flush(s); /* if it fails, the log applies them again */
    /* Unsynced: closed cleanly once the tree is on the disk. If the sync
     * fails the marker stays, and another boot rebuilds the store. */
    if (s->unsynced && s->env && !s->sync_failed) {
        int f = fault_at(FAULT_TREE_SYNC);
        if (!(f ? f : mdb_env_sync(s->env, 1)))
            store_boot_clear(s->dir);
        else
            store_sync_failed(s);
    }
    store_log_close(s);
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* drops the flock */
    free(s->changes);
    free(s->change_names);
    free(s->dir);
    free(s);
}

void store_get_limits(const struct store *s, struct store_limits *out)
{
    *out = s->limits;
}

void store_set_observer(struct store *s, const struct store_observer *obs)
{
    s->obs = *obs;
}

int store_get_stats(struct store *s, struct store_stats *out)
{
    MDB_txn *txn;
    int rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc)
        return store_mdb_errno(rc);
    struct store_state st;
    rc = store_state_load(s, txn, &st);
    mdb_txn_abort(txn);
    if (rc)
        return rc;
    MDB_envinfo info;
    MDB_stat mst;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &mst);
    out->applied_index = st.applied_index;
    out->revision = st.revision;
    out->inodes = st.inodes;
    out->map_bytes = info.me_mapsize;
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * mst.ms_psize;
    return 0;
}

/* The identity record: u64 LE cluster id, member id, incarnation (16 bytes,
 * without the incarnation, when written before incarnations existed). */
#define IDENTITY_OLD_LEN 16
#define IDENTITY_LEN     24

int store_identity_record(struct store *s, struct store_identity *id)
{
    MDB_txn *txn;
    int rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc)
        return store_mdb_errno(rc);
    MDB_val k = {.mv_size = 8, .mv_data = "identity"}, v;
    memset(id, 0, sizeof(*id));
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    } else if (rc) {
        rc = store_mdb_errno(rc);
    } else if (v.mv_size != IDENTITY_OLD_LEN && v.mv_size != IDENTITY_LEN) {
        rc = EIO;
    } else {
        const unsigned char *p = v.mv_data;
        bool has_inc = v.mv_size == IDENTITY_LEN;
        for (int i = 7; i >= 0; i--) {
            id->cluster_id = (id->cluster_id << 8) | p[i];
            id->member_id = (id->member_id << 8) | p[8 + i];
            if (has_inc)
                id->incarnation = (id->incarnation << 8) | p[16 + i];
        }
        if (has_inc && !id->incarnation)
            rc = EIO;
    }
    mdb_txn_abort(txn);
    return rc;
}

int store_identity_get(struct store *s, uint64_t *cluster_id, uint64_t *member_id,
                       uint64_t *incarnation)
{
    struct store_identity id;
    int rc = s->dir ? store_identity_file_read(s->dir, &id) : ENOENT;
    if (rc == ENOENT)
        rc = store_identity_record(s, &id); /* a store from before the file */
    if (rc)
        id = (struct store_identity){0};
    *cluster_id = id.cluster_id;
    *member_id = id.member_id;
    *incarnation = id.incarnation;
    return rc;
}

/* At open: a leftover temporary file goes; a record without a file (a
 * store from before it, or a crash between the two writes) gets one; a
 * file and a record that disagree refuse the directory. */
static int identity_open(struct store *s, bool has_tmp, char *err, size_t err_len)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s/" STORE_IDENTITY_TMP, s->dir);
    if (has_tmp && unlink(tmp) && errno != ENOENT)
        return store_fail(err, err_len, errno, "cannot remove %s: %s", tmp, strerror(errno));
    struct store_identity file, rec;
    int rec_rc = store_identity_record(s, &rec); /* damaged: store_identity_get says so */
    int rc = store_identity_file_read(s->dir, &file);
    if (rc == ENOENT) {
        if (rec_rc || !rec.incarnation)
            return 0; /* nothing to copy (or one from before incarnations: the node adds it) */
        if ((rc = store_identity_file_write(s->dir, &rec)))
            return store_fail(err, err_len, rc, "%s: cannot write %s: %s", s->dir,
                              STORE_IDENTITY_FILE, strerror(rc));
        return 0;
    }
    if (rc)
        return store_fail(err, err_len, rc == EIO ? EPROTO : rc,
                          "%s/%s is damaged (%s): refusing to start", s->dir, STORE_IDENTITY_FILE,
                          strerror(rc));
    if (!rec_rc && rec.incarnation && memcmp(&rec, &file, sizeof(rec)))
        return store_fail(err, err_len, EPROTO,
                          "%s/%s and the store's identity record disagree (member %llu, "
                          "incarnation %016llx against member %llu, %016llx): refusing to start",
                          s->dir, STORE_IDENTITY_FILE, (unsigned long long)file.member_id,
                          (unsigned long long)file.incarnation, (unsigned long long)rec.member_id,
                          (unsigned long long)rec.incarnation);
    return 0;
}

int store_identity_set(struct store *s, uint64_t cluster_id, uint64_t member_id,
                       uint64_t incarnation)
{
    if (!incarnation)
        return EINVAL;
    unsigned char buf[IDENTITY_LEN];
    for (int i = 0; i < 8; i++) {
        buf[i] = (unsigned char)(cluster_id >> (8 * i));
        buf[8 + i] = (unsigned char)(member_id >> (8 * i));
        buf[16 + i] = (unsigned char)(incarnation >> (8 * i));
    }
    MDB_txn *txn;
    int rc = store_begin(s, 0, &txn);
    if (rc)
        return store_mdb_errno(rc);
    MDB_val k = {.mv_size = 8, .mv_data = "identity"},
            v = {.mv_size = IDENTITY_LEN, .mv_data = buf};
    if ((rc = mdb_put(txn, s->meta, &k, &v, 0))) {
        mdb_txn_abort(txn);
        return store_mdb_errno(rc);
    }
    if ((rc = mdb_txn_commit(txn)))
        return store_mdb_errno(rc);
    struct store_identity id = {cluster_id, member_id, incarnation};
    return s->dir ? store_identity_file_write(s->dir, &id) : 0;
}

/* Keeps the longest runs in sp->runs (longest first). */
static void note_run(struct store_space *sp, uint64_t len)
{
    if (sp->n_runs == STORE_SPACE_RUNS && sp->runs[STORE_SPACE_RUNS - 1] >= len)
        return;
    size_t i = sp->n_runs < STORE_SPACE_RUNS ? sp->n_runs++ : STORE_SPACE_RUNS - 1;
    while (i > 0 && sp->runs[i - 1] < len) {
        sp->runs[i] = sp->runs[i - 1];
        i--;
    }
    sp->runs[i] = len;
}

int store_space(struct store *s, struct store_space *out)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(s->env, &info);
    if (!rc)
        rc = mdb_env_stat(s->env, &st);
    if (rc)
        return store_mdb_errno(rc);
    struct store_space sp = {.page_size = st.ms_psize};
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    uint64_t tail = info.me_mapsize > used ? info.me_mapsize - used : 0;
    /* The map is a sparse file: its end needs room on the disk too. */
    struct statvfs vfs;
    if (s->lock_fd >= 0 && fstatvfs(s->lock_fd, &vfs) == 0) {
        if (fault_at(FAULT_SPACE))
            vfs.f_bavail = 0; /* a test's full disk */
        uint64_t disk = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (tail > disk)
            tail = disk;
    }
    sp.tail_pages = tail / st.ms_psize;
    bool want_runs = tail < STORE_SPACE_TAIL_ENOUGH;
    /* The free list: records of page numbers, each an ID list whose first
     * word is its length, sorted. */
    uint64_t free_pages = 0;
    MDB_txn *txn;
    if ((rc = store_begin(s, MDB_RDONLY, &txn)))
        return store_mdb_errno(rc);
    MDB_cursor *cur;
    if (!mdb_cursor_open(txn, 0, &cur)) {
        MDB_val k, v;
        for (int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !r;
             r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (v.mv_size < sizeof(size_t))
                continue;
            size_t ids[1];
            memcpy(ids, v.mv_data, sizeof(ids));
            size_t n = ids[0];
            if (n > v.mv_size / sizeof(size_t) - 1)
                n = v.mv_size / sizeof(size_t) - 1; /* never read past it */
            free_pages += n;
            if (!want_runs)
                continue;
            const unsigned char *p = (const unsigned char *)v.mv_data + sizeof(size_t);
            uint64_t run = 0;
            size_t prev = 0;
            for (size_t i = 0; i < n; i++) {
                size_t id;
                memcpy(&id, p + i * sizeof(size_t), sizeof(id));
                if (run && (id + 1 == prev || id == prev + 1)) {
                    run++;
                } else {
                    if (run)
                        note_run(&sp, run);
                    run = 1;
                }
                prev = id;
            }
            if (run)
                note_run(&sp, run);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    sp.free_bytes = tail + free_pages * st.ms_psize;
    *out = sp;
    return 0;
}

bool store_space_take(struct store_space *sp, uint64_t len)
{
    uint64_t ps = sp->page_size ? sp->page_size : 4096;
    /* A value up to about half a page lives in a leaf: a page or two if
     * the leaf splits, from anywhere. Larger ones need consecutive pages
     * (LMDB's overflow pages: a 16-byte header, then the value). */
    bool small = len + 64 <= ps / 2;
    uint64_t pages = small ? 2 : (len + 16 + ps - 1) / ps;
    uint64_t bytes = pages * ps;
    if (bytes > sp->free_bytes)
        return false;
    if (!small) {
        /* Best fit: the shortest run that holds it, else the map's end
         * (unless the end is so long that runs were not looked at). */
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < sp->n_runs; i++)
            if (sp->runs[i] >= pages && (best == SIZE_MAX || sp->runs[i] < sp->runs[best]))
                best = i;
        if (best != SIZE_MAX) {
            uint64_t rest = sp->runs[best] - pages;
            for (size_t i = best; i + 1 < sp->n_runs; i++)
                sp->runs[i] = sp->runs[i + 1];
            sp->n_runs--;
            if (rest)
                note_run(sp, rest);
        } else if (sp->tail_pages >= pages) {
            sp->tail_pages -= pages;
        } else {
            return false;
        }
    } else if (sp->tail_pages >= pages) {
        sp->tail_pages -= pages;
    }
    sp->free_bytes -= bytes;
    return true;
}

int store_members(struct store *s, int (*cb)(void *ctx, const struct store_member *m), void *ctx)
{
    MDB_txn *txn;
    int rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc)
        return store_mdb_errno(rc);
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->members, &cur))) {
        mdb_txn_abort(txn);
        return store_mdb_errno(rc);
    }
    MDB_val k, v;
    int r = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc && !r;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct store_member m;
        if (k.mv_size != 8 ||
            store_member_decode(v.mv_data, v.mv_size, &m.addr, &m.addr_len, &m.incarnation)) {
            r = EIO;
            break;
        }
        m.id = store_u64be_get(k.mv_data);
        r = cb(ctx, &m);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (r)
        return r;
    return rc == MDB_NOTFOUND ? 0 : store_mdb_errno(rc);
}
