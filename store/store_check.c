/* store_check.c - the offline check of a stopped member's data directory
 * (fsck) and the digest of its replicated state (store_check in store.h;
 * the invariants and the digest are listed in docs/store-format.md, "Check
 * and digest"). Here: opening read only, the meta records, sessions and the
 * member directory, and the order of the whole; the tree, the log and the
 * digest have their own files (store_check_tree.c, store_check_log.c,
 * store_check_digest.c).
 *
 * Design notes
 * 1. Read only. The environment is opened MDB_RDONLY | MDB_NOLOCK: the data
 *    file is opened read-only and lock.mdb is not touched, so nothing in
 *    the directory changes and nothing is created (a missing or empty
 *    directory is "not a raftfs data directory", never initialised).
 *    Without LMDB's locks no writer may run meanwhile: the check takes a
 *    shared flock on DIR/raftfs.lock, which a serving process holds
 *    exclusively from start to exit, so a directory in use is refused
 *    (EBUSY) and no server can start during the check. A missing
 *    raftfs.lock is not created (nobody holds it).
 * 2. One read transaction: every record is seen as of one moment.
 * 3. Every problem is reported, once, as "PROBLEM (where)", and the check
 *    goes on: one damaged record must not hide the others. Tree records
 *    carry no checksum; log records (CRC-32C) and the snapshot image
 *    (store_snapshot_check) do, and are verified.
 * 4. The digest hashes the replicated state only (docs/store-format.md),
 *    in an order fixed by the state itself (breadth first from the root,
 *    each directory in name order; tables in key order), so that members
 *    that applied the same entries print the same digest.
 */
#include "raftfs.pb-c.h"
#include "store_check_internal.h"
#include "store_le.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSION_LRU_KEY 16

/* ---- reporting ---- */

void store_check_problem(struct store_checker *c, const char *fmt, ...)
{
    if (c->rep->problems++ >= STORE_CHECK_MAX_REPORTED || !c->problem)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->problem(c->ctx, msg);
}

const char *store_check_show(const void *p, size_t len, char buf[STORE_CHECK_SHOW_BUF])
{
    const unsigned char *s = p;
    size_t o = 0;
    for (size_t i = 0; i < len && i < STORE_CHECK_SHOW_MAX; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' && s[i] != '\'')
            buf[o++] = (char)s[i];
        else
            o += (size_t)snprintf(buf + o, 5, "\\x%02x", s[i]);
    }
    if (len > STORE_CHECK_SHOW_MAX)
        buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o] = 0;
    return buf;
}

void store_check_unreadable(struct store_checker *c, const char *table, int mrc)
{
    store_check_problem(c, "table cannot be read: %s (%s)", mdb_strerror(mrc), table);
}

/* ---- opening, read only ---- */

/* Takes a shared lock on DIR/raftfs.lock (*fd -1 if there is none). */
static int lock_shared(const char *dir, int *fd, char *err, size_t err_len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/raftfs.lock", dir);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        if (errno == ENOENT)
            return 0;
        return store_fail(err, err_len, errno, "cannot open %s: %s", path, strerror(errno));
    }
    if (flock(*fd, LOCK_SH | LOCK_NB) == 0)
        return 0;
    int e = errno;
    char pid[32] = "";
    ssize_t n = pread(*fd, pid, sizeof(pid) - 1, 0);
    pid[n > 0 ? n : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    close(*fd);
    *fd = -1;
    if (e == EWOULDBLOCK)
        return store_fail(err, err_len, EBUSY,
                          "in use by a running raftfs process (pid %s): stop it before checking",
                          pid[0] ? pid : "unknown");
    return store_fail(err, err_len, e, "cannot lock %s: %s", path, strerror(e));
}

/* Opens a table that older stores may lack (read only: not created). */
static int dbi_optional(MDB_txn *txn, const char *name, MDB_dbi *dbi, bool *have)
{
    int rc = mdb_dbi_open(txn, name, 0, dbi);
    *have = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int open_readonly(struct store_checker *c, const char *dir, char *err, size_t err_len)
{
    struct stat sb;
    if (strlen(dir) > 3000)
        return store_fail(err, err_len, ENAMETOOLONG, "data directory path too long");
    if (stat(dir, &sb))
        return store_fail(err, err_len, errno,
                          errno == ENOENT ? "not a raftfs data directory (%s)"
                                          : "cannot use it: %s",
                          strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return store_fail(err, err_len, ENOTDIR, "not a raftfs data directory (not a directory)");
    char path[4200], data[4300];
    snprintf(path, sizeof(path), "%s/store", dir);
    snprintf(data, sizeof(data), "%s/data.mdb", path);
    if (stat(path, &sb) || !S_ISDIR(sb.st_mode)) {
        snprintf(data, sizeof(data), "%s/store.tmp", dir);
        return store_fail(err, err_len, EPROTO, "not a raftfs data directory (%s)",
                          stat(data, &sb) == 0 ? "only an unfinished store.tmp in it"
                                               : "no store in it");
    }

    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return store_fail(err, err_len, ENOMEM, "out of memory");
    s->lock_fd = -1;
    c->s = s;
    int rc = lock_shared(dir, &s->lock_fd, err, err_len);
    if (rc)
        return rc;
    /* LMDB would create a missing data file, and take an empty one for a
     * new environment. */
    if (stat(data, &sb))
        return store_fail(err, err_len, EPROTO,
                          "store/data.mdb is missing (%s): the store is damaged", strerror(errno));
    if (!S_ISREG(sb.st_mode) || sb.st_size < 2 * 4096)
        return store_fail(err, err_len, EPROTO,
                          "store/data.mdb is not a regular file of two pages or more: the store is "
                          "damaged");
    if ((rc = mdb_env_create(&s->env)) || (rc = mdb_env_set_maxdbs(s->env, 16))) {
        mdb_env_close(s->env);
        s->env = NULL;
        return store_fail(err, err_len, store_mdb_errno(rc), "cannot open the store: %s",
                          mdb_strerror(rc));
    }
    if ((rc = mdb_env_open(s->env, path, MDB_RDONLY | MDB_NOLOCK | MDB_NORDAHEAD, 0600))) {
        mdb_env_close(s->env);
        s->env = NULL;
        return store_fail(err, err_len,
                          rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ? EPROTO : EIO,
                          "store/data.mdb is not a usable LMDB file (%s): the store is damaged",
                          mdb_strerror(rc));
    }
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)))
        return store_fail(err, err_len, store_mdb_errno(rc), "cannot read the store: %s",
                          mdb_strerror(rc));
    if ((rc = mdb_dbi_open(txn, "meta", 0, &s->meta)) ||
        (rc = mdb_dbi_open(txn, "inodes", 0, &s->inodes)) ||
        (rc = mdb_dbi_open(txn, "dirents", 0, &s->dirents)) ||
        (rc = mdb_dbi_open(txn, "data", 0, &s->data))) {
        mdb_txn_abort(txn);
        return store_fail(err, err_len, EPROTO, "not a raftfs store (missing tables: %s)",
                          mdb_strerror(rc));
    }
    if ((rc = dbi_optional(txn, "log", &s->log, &c->have_log)) ||
        (rc = dbi_optional(txn, "raft", &s->raft, &c->have_raft)) ||
        (rc = dbi_optional(txn, "sessions", &s->sessions, &c->have_sessions)) ||
        (rc = dbi_optional(txn, "session_lru", &s->session_lru, &c->have_lru)) ||
        (rc = dbi_optional(txn, "members", &s->members, &c->have_members)) ||
        (rc = dbi_optional(txn, "history", &s->history, &c->have_history)) ||
        (rc = dbi_optional(txn, "leases", &s->leases, &c->have_leases)) ||
        (rc = dbi_optional(txn, "lease_keys", &s->lease_keys, &c->have_lease_keys)) ||
        (rc = dbi_optional(txn, "ino_lease", &s->ino_lease, &c->have_ino_lease)) ||
        (rc = dbi_optional(txn, "auth", &s->auth, &c->have_auth))) {
        mdb_txn_abort(txn);
        return store_fail(err, err_len, EIO, "cannot read the store's tables: %s",
                          mdb_strerror(rc));
    }
    MDB_val k = {.mv_size = 6, .mv_data = "format"}, v;
    uint32_t version;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc || store_format_decode(v.mv_data, v.mv_size, &version)) {
        mdb_txn_abort(txn);
        return store_fail(err, err_len, EPROTO, "not a raftfs store (no raftfs format record)");
    }
    if (!store_format_readable(version)) {
        mdb_txn_abort(txn);
        return store_fail(err, err_len, EPROTO,
                          "store format %u, this build reads formats %u and %u", version,
                          STORE_FORMAT_VALUES_APART, STORE_FORMAT_VERSION);
    }
    /* Format 1 (values in "data") is checked as it is: a start moves them. */
    c->values_apart = version == STORE_FORMAT_VALUES_APART;
    /* Commit, not abort: LMDB keeps DBI handles opened in a transaction
     * only if that transaction commits (nothing is written). */
    if ((rc = mdb_txn_commit(txn)))
        return store_fail(err, err_len, store_mdb_errno(rc), "cannot read the store: %s",
                          mdb_strerror(rc));
    return 0;
}

/* ---- meta ---- */

static void check_meta(struct store_checker *c)
{
    struct store *s = c->s;
    MDB_val k = {.mv_size = 6, .mv_data = "limits"}, v;
    int rc = mdb_get(c->txn, s->meta, &k, &v);
    if (rc || store_limits_decode(v.mv_data, v.mv_size, &c->lim)) {
        store_check_problem(c, "the limits record is %s (meta)", rc ? "missing" : "damaged");
        c->lim = (struct store_limits){STORE_MAX_VALUE_BYTES_BOUND, STORE_MAX_NAME_BYTES_BOUND,
                                       STORE_MAX_PATH_BYTES_BOUND};
    }
    s->limits = c->lim;
    rc = store_state_load(s, c->txn, &c->st);
    c->have_state = rc == 0;
    if (rc)
        store_check_problem(c, "the state record is missing or damaged (meta)");
    c->rep->revision = c->st.revision;
    c->rep->applied = c->st.applied_index;
}

/* ---- sessions and the member directory ---- */

static void check_sessions(struct store_checker *c)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = 0;
    if (c->have_sessions && !(rc = mdb_cursor_open(c->txn, c->s->sessions, &cur))) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            c->n_sessions++;
            if (k.mv_size != 8 || !store_u64be_get(k.mv_data)) {
                store_check_problem(c, "a session record has a bad key (sessions)");
                continue;
            }
            uint64_t id = store_u64be_get(k.mv_data);
            struct store_session sess;
            if (store_session_get(c->s, c->txn, id, &sess)) {
                store_check_problem(c, "session record does not decode (client %llu)",
                                    (unsigned long long)id);
                continue;
            }
            if (c->have_state && sess.index > c->st.applied_index)
                store_check_problem(
                    c, "session of a command at index %llu, above the applied %llu (client %llu)",
                    (unsigned long long)sess.index, (unsigned long long)c->st.applied_index,
                    (unsigned long long)id);
            if (c->have_state && sess.result.revision > c->st.revision)
                store_check_problem(
                    c, "session result at revision %llu, above the store's %llu (client %llu)",
                    (unsigned long long)sess.result.revision, (unsigned long long)c->st.revision,
                    (unsigned long long)id);
            unsigned char lk[SESSION_LRU_KEY];
            store_u64be_put(lk, sess.index);
            store_u64be_put(lk + 8, id);
            MDB_val lkey = {.mv_size = sizeof(lk), .mv_data = lk}, lval;
            if (!c->have_lru || mdb_get(c->txn, c->s->session_lru, &lkey, &lval))
                store_check_problem(
                    c, "session has no session_lru record at its index %llu (client %llu)",
                    (unsigned long long)sess.index, (unsigned long long)id);
            store_digest_session(c, id, &sess);
        }
        mdb_cursor_close(cur);
    }
    if (c->have_sessions && rc != MDB_NOTFOUND)
        store_check_unreadable(c, "sessions", rc);
    if (c->n_sessions > STORE_MAX_SESSIONS)
        store_check_problem(c, "%llu sessions, more than the %d kept (sessions)",
                            (unsigned long long)c->n_sessions, STORE_MAX_SESSIONS);

    uint64_t n_lru = 0;
    if (c->have_lru && !(rc = mdb_cursor_open(c->txn, c->s->session_lru, &cur))) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            n_lru++;
            if (k.mv_size != SESSION_LRU_KEY || v.mv_size != 0) {
                store_check_problem(c, "a session_lru record is malformed (session_lru)");
                continue;
            }
            uint64_t index = store_u64be_get(k.mv_data),
                     id = store_u64be_get((const unsigned char *)k.mv_data + 8);
            struct store_session sess;
            int src = c->have_sessions ? store_session_get(c->s, c->txn, id, &sess) : ENOENT;
            if (src == EIO)
                continue; /* a damaged session, reported */
            if (src || sess.index != index)
                store_check_problem(
                    c,
                    "session_lru record of index %llu names no session at that index "
                    "(client %llu)",
                    (unsigned long long)index, (unsigned long long)id);
        }
        mdb_cursor_close(cur);
    }
    if (c->have_lru && rc != MDB_NOTFOUND)
        store_check_unreadable(c, "session_lru", rc);
}

static void check_members(struct store_checker *c)
{
    if (!c->have_members)
        return;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(c->txn, c->s->members, &cur);
    if (!rc) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 8 || !store_u64be_get(k.mv_data)) {
                store_check_problem(c, "a member record has a bad key (members)");
                continue;
            }
            uint64_t id = store_u64be_get(k.mv_data), inc;
            const char *addr;
            size_t addr_len;
            if (store_member_decode(v.mv_data, v.mv_size, &addr, &addr_len, &inc)) {
                store_check_problem(c, "member record does not decode (member %llu)",
                                    (unsigned long long)id);
                continue;
            }
            store_digest_member(c, id, addr, addr_len, inc);
        }
        mdb_cursor_close(cur);
    }
    if (rc != MDB_NOTFOUND)
        store_check_unreadable(c, "members", rc);
}

/* Access control: records that decode as apply writes them, and the
 * roles users hold exist. Digested in key order. */
static void check_auth(struct store_checker *c)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    if (!c->have_auth || (rc = mdb_cursor_open(c->txn, c->s->auth, &cur)))
        return;
    while (!(rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
        const char *key = k.mv_data;
        if (store_auth_record_check(k.mv_data, k.mv_size, v.mv_data, v.mv_size)) {
            store_check_problem(c, "an access-control record does not decode (auth, key %.*s)",
                                (int)(k.mv_size < 65 ? k.mv_size : 65), key);
            continue;
        }
        store_digest_auth(c, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (key[0] != 'u')
            continue;
        Raftfs__AuthUserRecord *u;
        if (store_auth_user_decode(v.mv_data, v.mv_size, &u))
            continue;
        for (size_t i = 0; i < u->n_roles; i++) {
            unsigned char rk[1 + STORE_AUTH_NAME_MAX];
            rk[0] = 'r';
            memcpy(rk + 1, u->roles[i].data, u->roles[i].len);
            MDB_val q = {.mv_size = 1 + u->roles[i].len, .mv_data = rk}, qv;
            if (mdb_get(c->txn, c->s->auth, &q, &qv))
                store_check_problem(c, "user %.*s holds role %.*s, which is missing (auth)",
                                    (int)k.mv_size - 1, key + 1, (int)u->roles[i].len,
                                    (const char *)u->roles[i].data);
        }
        raftfs__auth_user_record__free_unpacked(u, NULL);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        store_check_unreadable(c, "auth", rc);
}

/* Leases: records that decode; every file attached to one (ino_lease) is
 * a file of the tree, its lease exists, and lease_keys says the same;
 * lease_keys holds nothing else. Digested: leases, then attachments. */
static void check_leases(struct store_checker *c)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    uint64_t attached = 0, pairs = 0, ttl;
    if (c->have_leases && !(rc = mdb_cursor_open(c->txn, c->s->leases, &cur))) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint64_t id = k.mv_size == 8 ? store_u64be_get(k.mv_data) : 0;
            if (!id || store_lease_decode(v.mv_data, v.mv_size, &ttl)) {
                store_check_problem(c, "a lease record does not decode (leases, lease %llu)",
                                    (unsigned long long)id);
                continue;
            }
            store_digest_lease(c, id, ttl);
        }
        mdb_cursor_close(cur);
        if (rc != MDB_NOTFOUND)
            store_check_unreadable(c, "leases", rc);
    }
    if (c->have_ino_lease && !(rc = mdb_cursor_open(c->txn, c->s->ino_lease, &cur))) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint64_t ino = k.mv_size == 8 ? store_u64be_get(k.mv_data) : 0;
            uint64_t id = v.mv_size == 8 ? store_u64be_get(v.mv_data) : 0;
            struct store_inode in;
            unsigned char pair[16];
            store_u64be_put(pair, id);
            store_u64be_put(pair + 8, ino);
            MDB_val pk = {.mv_size = 16, .mv_data = pair}, pv;
            attached++;
            if (!ino || !id)
                store_check_problem(c, "a file's lease record is malformed (ino_lease)");
            else if (store_inode_load(c->s, c->txn, ino, &in) || in.attr.type != STORE_TYPE_FILE)
                store_check_problem(c, "inode %llu holds lease %llu but is not a file (ino_lease)",
                                    (unsigned long long)ino, (unsigned long long)id);
            else if (store_lease_load(c->s, c->txn, id, &ttl))
                store_check_problem(c, "inode %llu holds lease %llu, which is missing (ino_lease)",
                                    (unsigned long long)ino, (unsigned long long)id);
            else if (!c->have_lease_keys || mdb_get(c->txn, c->s->lease_keys, &pk, &pv))
                store_check_problem(c, "lease %llu does not list inode %llu (lease_keys)",
                                    (unsigned long long)id, (unsigned long long)ino);
            else
                store_digest_lease_file(c, ino, id);
        }
        mdb_cursor_close(cur);
        if (rc != MDB_NOTFOUND)
            store_check_unreadable(c, "ino_lease", rc);
    }
    if (c->have_lease_keys && !(rc = mdb_cursor_open(c->txn, c->s->lease_keys, &cur))) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            pairs++;
        mdb_cursor_close(cur);
        if (rc != MDB_NOTFOUND)
            store_check_unreadable(c, "lease_keys", rc);
    }
    /* Every pair was matched from ino_lease: as many as it has. */
    if (pairs != attached)
        store_check_problem(c, "lease_keys has %llu records, ino_lease %llu (lease_keys)",
                            (unsigned long long)pairs, (unsigned long long)attached);
}

/* The change history (local: not digested): its record, and events that
 * decode, in (compacted, revision]. A store written by a build without one
 * has neither table nor record. */
static void check_history(struct store_checker *c)
{
    MDB_val k = {.mv_size = 7, .mv_data = "history"}, v;
    int rc = mdb_get(c->txn, c->s->meta, &k, &v);
    if (rc == MDB_NOTFOUND && !c->have_history)
        return;
    if (rc || v.mv_size != 16) {
        store_check_problem(c, "the history record is %s (meta history)",
                            rc ? "missing" : "damaged");
        return;
    }
    uint64_t compacted = get64(v.mv_data), complete = get64((const unsigned char *)v.mv_data + 8);
    if (compacted > complete || (c->have_state && complete > c->st.revision))
        store_check_problem(c,
                            "the history record says events (%llu, %llu], the revision is %llu "
                            "(meta history)",
                            (unsigned long long)compacted, (unsigned long long)complete,
                            (unsigned long long)c->st.revision);
    if (!c->have_history)
        return;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(c->txn, c->s->history, &cur))) {
        store_check_unreadable(c, "history", rc);
        return;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct store_event ev;
        uint64_t r = store_history_key_revision(k.mv_data, k.mv_size);
        if (!r || store_event_decode(r, v.mv_data, v.mv_size, &ev)) {
            store_check_problem(c, "an event does not decode (history, revision %llu)",
                                (unsigned long long)r);
            continue;
        }
        if (r <= compacted || r > complete)
            store_check_problem(c, "event of revision %llu outside (%llu, %llu] (history)",
                                (unsigned long long)r, (unsigned long long)compacted,
                                (unsigned long long)complete);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        store_check_unreadable(c, "history", rc);
}

/* ---- the whole check ---- */

int store_check(const char *dir, struct store_check_report *out,
                void (*on_problem)(void *ctx, const char *msg), void *ctx, char *err,
                size_t err_len)
{
    struct store_checker c = {.dir = dir, .rep = out, .problem = on_problem, .ctx = ctx};
    memset(out, 0, sizeof(*out));
    if (err && err_len)
        err[0] = 0;
    int rc = open_readonly(&c, dir, err, err_len);
    if (rc)
        goto out;
    /* The identity (local: not digested) decodes, in the file and in the
     * record, and they agree. */
    struct store_identity file, rec;
    int rec_rc = store_identity_record(c.s, &rec);
    int file_rc = store_identity_file_read(dir, &file);
    if (rec_rc)
        store_check_problem(&c, "the identity record is damaged (meta identity)");
    if (file_rc && file_rc != ENOENT)
        store_check_problem(&c, "the identity file is damaged (%s)", STORE_IDENTITY_FILE);
    else if (!file_rc && !rec_rc && rec.incarnation && memcmp(&file, &rec, sizeof(rec)))
        store_check_problem(&c, "the identity file and record disagree (%s)", STORE_IDENTITY_FILE);
    /* Left open (killed, or the machine went down): said, not a problem;
     * a damaged marker is one (the start refuses it). */
    char boot[STORE_BOOT_ID_MAX], now[STORE_BOOT_ID_MAX];
    struct store_limits blim;
    int brc = store_boot_read(dir, boot, &blim);
    if (brc == EIO) {
        store_check_problem(&c, "the open-boot marker is damaged (%s)", STORE_BOOT_FILE);
    } else if (!brc) {
        snprintf(out->open_boot, sizeof(out->open_boot), "%s", boot);
        out->rebuild_at_start =
            !strcmp(boot, STORE_BOOT_SYNC_FAILED) || store_boot_id(NULL, now) || strcmp(boot, now);
    }
    if ((rc = mdb_txn_begin(c.s->env, NULL, MDB_RDONLY, &c.txn))) {
        rc = store_fail(err, err_len, store_mdb_errno(rc), "cannot read the store: %s",
                        mdb_strerror(rc));
        goto out;
    }
    store_digest_init(&c);
    check_meta(&c);
    store_digest_state(&c);
    if ((rc = store_check_tree(&c))) {
        store_fail(err, err_len, rc, "cannot check the tree: %s", strerror(rc));
        goto out;
    }
    check_sessions(&c);
    check_members(&c);
    check_leases(&c);
    check_auth(&c);
    check_history(&c);
    store_check_log(&c);
    out->digest = store_digest_final(&c);
    out->limits = c.lim;
out:
    if (c.txn)
        mdb_txn_abort(c.txn);
    free(c.inos.slots);
    store_close(c.s); /* closes the environment and drops the lock */
    return rc;
}
