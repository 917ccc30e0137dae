/* store_internal.h - what the store's files share: struct store, the read
 * transaction, and LMDB helpers. Not for use outside store/. */
#ifndef RAFTFS_STORE_INTERNAL_H
#define RAFTFS_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "store.h"
#include "store_format.h"

/* The LMDB environment's directory in DIR, and the one being made. */
#define STORE_ENV_DIR "store"
#define STORE_ENV_TMP "store.tmp"

/* A change recorded while a batch applies, reported after commit. */
struct store_change_rec {
    enum store_change_kind kind;
    uint64_t ino;
    uint64_t parent;
    size_t name_off; /* into store.change_names */
    size_t name_len;
    uint64_t client_id;
};

struct store {
    char *dir;             /* the data directory */
    bool unsynced;         /* store_config.unsynced_apply */
    bool rebuilt;          /* store_open rebuilt it (store_boot.c) */
    bool sync_failed;      /* an fsync of the tree failed: no more commits (EIO) */
    uint64_t rebuilt_from; /* the image's applied index it was rebuilt from */
    MDB_env *env;
    MDB_dbi meta, inodes, dirents, data;
    MDB_dbi log, raft;             /* an older raftfs's Raft log, moved to wal (store_log.c) */
    struct store_wal *wal;         /* the Raft log (store_wal.c) */
    MDB_dbi sessions, session_lru; /* exactly-once results (store_session.c) */
    MDB_dbi members;               /* the member directory */
    MDB_dbi history;               /* change events by revision (store_history.c) */
    MDB_dbi leases, lease_keys, ino_lease; /* leases and their files (store_lease.c) */
    MDB_dbi auth;                          /* access control (store_auth.c) */
    uint64_t history_keep;                 /* revisions of history kept; 0 = the default */
    struct store_limits limits;
    struct store_observer obs;
    bool lazy_apply;
    /* deferred applies (store_apply_batch_decided): the open transaction,
     * the thread that owns it, the last index applied in it; the index
     * readers see (read from any thread: store_applied_visible); a failed
     * commit not yet reported */
    MDB_txn *apply_txn;
    pthread_t apply_owner;
    uint64_t deferred_index;
    _Atomic uint64_t visible_index; /* set only after the commit that made it so */
    int flush_error;
    int lock_fd;
    /* changes of the batch being applied (only the applying thread) */
    struct store_change_rec *changes;
    size_t n_changes, cap_changes;
    char *change_names;
    size_t names_len, names_cap;
};

struct store_txn {
    struct store *s;
    MDB_txn *txn;
    struct store_state st;
};

/* Commits txn. durable: LMDB's default, the data pages and then the meta page
 * each fsync'ed. Otherwise the meta page is not synced (MDB_NOMETASYNC): one
 * fdatasync, of the data pages, before the meta page that points to them is
 * written, so a system crash may lose this commit (the next synced one makes
 * it durable) but never leaves a meta page pointing at pages that are not on
 * the disk, as MDB_NOSYNC could (LMDB documents that a system crash can then
 * corrupt the database). An errno; the transaction is gone either way. */
int store_txn_commit(struct store *s, MDB_txn *txn, bool durable);
/* The errno of a failed commit: as store_mdb_errno, but a write cut short
 * (EIO) while the disk has less than STORE_FULL_DISK_BYTES free is ENOSPC. */
int store_commit_errno(struct store *s, int mdb_rc);
#define STORE_FULL_DISK_BYTES (16u << 20)
/* LMDB return code -> errno: MDB_MAP_FULL and friends are ENOSPC, damaged
 * files EIO, the rest as LMDB reports them (positive errnos) or EIO. */
int store_mdb_errno(int mdb_rc);
/* Formats a reason into err (if given) and returns rc. */
int store_fail(char *err, size_t err_len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* store_log.c: opens the Raft log in dir/wal, first moving it there from
 * the old LMDB tables if it is still in them (the DBIs must be open). */
int store_log_open(struct store *s, const char *dir, uint64_t seg_bytes, char *err, size_t err_len);
void store_log_close(struct store *s);

/* store_identity.c: DIR/identity, the identity outside LMDB. */
#define STORE_IDENTITY_FILE "identity"
#define STORE_IDENTITY_TMP  "identity.tmp"
struct store_identity {
    uint64_t cluster_id, member_id, incarnation;
};
/* fsync of a file or directory by its path: 0 or the errno. */
int store_fsync_path(const char *path);
/* Replaces DIR/name with buf durably: written as DIR/tmpname, fsync'ed,
 * renamed, the directory fsync'ed. */
int store_file_replace(const char *dir, const char *name, const char *tmpname, const void *buf,
                       size_t len);
/* ENOENT (no file), EIO (damaged), errnos of the OS. */
int store_identity_file_read(const char *dir, struct store_identity *id);
/* Writes it durably (a temporary file, fsync, rename, directory fsync). */
int store_identity_file_write(const char *dir, const struct store_identity *id);
/* The identity record in LMDB's meta table (0s if none). EIO if damaged. */
int store_identity_record(struct store *s, struct store_identity *id);

/* store_boot.c: DIR/open-boot, and the rebuild of a store another boot
 * left open. */
#define STORE_BOOT_FILE     "open-boot"
#define STORE_BOOT_TMP      "open-boot.tmp"
#define STORE_UNTRUSTED_DIR "store.untrusted"
int store_boot_id(const struct store_config *cfg, char out[STORE_BOOT_ID_MAX]);
/* ENOENT (none: closed cleanly), EIO (damaged). */
int store_boot_read(const char *dir, char boot[STORE_BOOT_ID_MAX], struct store_limits *lim);
int store_boot_write(const char *dir, const char *boot, const struct store_limits *lim);
int store_boot_clear(const char *dir);
/* DIR/store -> DIR/store.untrusted (an older one removed). */
int store_boot_set_aside(const char *dir, char *err, size_t err_len);
/* An fsync of the tree failed: pages written since may be lost without
 * a trace once the kernel drops them. With unsynced apply the store takes
 * no more commits (EIO) and DIR/open-boot is made to say so, so that the
 * next start rebuilds it whatever the boot. */
void store_sync_failed(struct store *s);
#define STORE_BOOT_SYNC_FAILED "sync-failed"
/* Installs the image the log starts after into the (new, empty) store. */
int store_boot_rebuild(struct store *s, char *err, size_t err_len);

/* store_auth.c: the check of a client's command (*err 0, EPERM, EACCES)
 * and the AUTH ops (*err: the command's errno), in apply's transaction;
 * the records' decoders (EIO: damaged), for images and checks. */
struct Raftfs__AuthUserRecord;
struct Raftfs__AuthRoleRecord;
int store_auth_command(struct store *s, MDB_txn *txn, const struct store_cmd *c, int *err);
int store_auth_apply(struct store *s, MDB_txn *txn, const struct store_cmd *c, int *err);
int store_auth_conf_decode(const void *v, size_t len, bool *enabled);
int store_auth_user_decode(const void *v, size_t len, struct Raftfs__AuthUserRecord **out);
int store_auth_role_decode(const void *v, size_t len, struct Raftfs__AuthRoleRecord **out);
/* One record of the auth table: 0, or EIO if it is not one apply writes. */
int store_auth_record_check(const void *key, size_t klen, const void *v, size_t vlen);

/* store_lease.c */
int store_lease_decode(const void *rec, size_t len, uint64_t *ttl_ms);
/* ENOKEY if lease id does not exist. */
int store_lease_load(struct store *s, MDB_txn *txn, uint64_t id, uint64_t *ttl_ms);
int store_lease_write(struct store *s, MDB_txn *txn, uint64_t id, uint64_t ttl_ms);
/* Deletes the record only (its files must be gone first); ENOKEY. */
int store_lease_delete(struct store *s, MDB_txn *txn, uint64_t id);
/* The lease file ino holds (0: none). */
int store_lease_of(struct store *s, MDB_txn *txn, uint64_t ino, uint64_t *id);
/* Attaches file ino to lease id (0: detaches it from its own). */
int store_lease_attach(struct store *s, MDB_txn *txn, uint64_t ino, uint64_t id);
/* The files of lease id, malloc'd (caller frees). */
int store_lease_files(struct store *s, MDB_txn *txn, uint64_t id, uint64_t **inos, size_t *n);

/* store_history.c */
/* Does op change the tree (and so make an event)? */
bool store_history_op(enum store_op op);
/* At open, in a write transaction: a history that does not reach revision
 * (none yet, or written by an older build) starts over, compacted there. */
int store_history_open(struct store *s, MDB_txn *txn, uint64_t revision);
/* Empties the history: nothing at or below revision is known (an image
 * installed). */
int store_history_reset(struct store *s, MDB_txn *txn, uint64_t revision);
/* The event of a command that made revision (res: its result); pos: its
 * position among the events of a txn's revision (0 for the first). */
int store_history_add(struct store *s, MDB_txn *txn, uint64_t revision, uint32_t pos,
                      const struct store_cmd *c, const struct store_result *res);
/* The revision of a history key; 0 if the key is malformed. */
uint64_t store_history_key_revision(const void *key, size_t len);
/* After a batch that reached revision and added `added` events: compacts a
 * few of the oldest events and records how far the history reaches. */
int store_history_batch_end(struct store *s, MDB_txn *txn, uint64_t revision, size_t added);
/* Decodes a history record. EIO if malformed. */
int store_event_decode(uint64_t revision, const void *rec, size_t len, struct store_event *out);

/* Begins a transaction (mdb_txn_begin's flags and return code). On the
 * thread holding deferred applies they are committed first (LMDB allows a
 * thread one transaction at a time); a failure of that commit is kept for
 * store_apply_flush_error. */
int store_begin(struct store *s, unsigned flags, MDB_txn **txn);

/* Reads and decodes the state record in txn. 0, EIO. */
int store_state_load(struct store *s, MDB_txn *txn, struct store_state *out);

/* Lookups shared by the readers and the applier (txn may be read or write). */
int store_inode_load(struct store *s, MDB_txn *txn, uint64_t ino, struct store_inode *out);
int store_dirent_get(struct store *s, MDB_txn *txn, uint64_t parent, const char *name,
                     size_t name_len, uint64_t *ino, enum store_type *type);
/* store_session.c: a client's last result. */
struct store_session {
    uint64_t seq;
    uint64_t index; /* log index of its last command */
    struct store_result result;
};
/* ENOENT if the client is unknown; EIO if damaged. */
int store_session_get(struct store *s, MDB_txn *txn, uint64_t client_id, struct store_session *out);
/* Records the result of (client_id, seq) applied at index; evicts the
 * least recently active client past STORE_MAX_SESSIONS. */
int store_session_put(struct store *s, MDB_txn *txn, uint64_t client_id, uint64_t seq,
                      uint64_t index, const struct store_result *res);

/* Resolves an absolute, already checked path to its inode. ENOENT, ENOTDIR, EIO. */
int store_walk(struct store *s, MDB_txn *txn, const char *path, size_t len,
               struct store_inode *out);

#endif
