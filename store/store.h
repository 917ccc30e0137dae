/* store.h - the replicated state machine: a key tree in LMDB.
 *
 * The store holds one tree of directories and files (keys and values). It
 * changes only through commands (struct store_cmd), applied in log order by
 * store_apply_batch(): every replica that applies the same commands at the
 * same indexes holds the same tree, inode numbers, revisions and timestamps.
 * Readers use read-only LMDB transactions, which never block the writer.
 *
 * Threads: one thread applies (the node loop); any number of threads read,
 * each with at most one open store_txn at a time (LMDB's rule without
 * MDB_NOTLS).
 *
 * Errors: functions return 0 or a positive POSIX errno. Apply results carry
 * their own errno per command (store_result.err), chosen as follows:
 *   ENOENT        a path component or the target is missing
 *   EEXIST        the target exists (MKDIR, RENAME_NOREPLACE); MEMBER_SET
 *                 with an incarnation other than the one recorded
 *   ENOTDIR       a path component is a file; RMDIR of a file; a directory
 *                 renamed over a file
 *   EISDIR        PUT/APPEND/DELETE/truncate of a directory; a file renamed
 *                 over a directory
 *   ENOTEMPTY     RMDIR of, or RENAME over, a non-empty directory
 *   EINVAL        malformed path or command; a directory moved into itself;
 *                 unknown rename flags
 *   ENAMETOOLONG  a name or the whole path is over the store's limits
 *   EFBIG         a value would exceed the store's max_value_bytes
 *   EBUSY         RMDIR or RENAME of the root
 *   EPERM         creating the reserved name "/.raftfs"
 *   STORE_ECONFLICT  a compare (expected revision or inode) failed
 *   EPROTONOSUPPORT  a command of a newer version than this build knows
 *   E2BIG         a TXN with more than STORE_MAX_TXN_OPS compares and commands
 *   ENOKEY        a lease that does not exist (never granted, revoked,
 *                 expired): PUT/SETATTR with it, LEASE_REVOKE of it
 *   EEXIST        also: LEASE_GRANT of an id that exists
 * A TXN whose branch failed has the failing command's errno, and none of
 * the branch is applied (store_result.txn_failed_op says which one).
 * EXDEV is never returned: the tree is one filesystem.
 */
#ifndef RAFTFS_STORE_H
#define RAFTFS_STORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A failed compare-and-put. ESTALE ("stale file handle") reads right at the
 * fs level too: the value changed since the handle read it. */
#define STORE_ECONFLICT ESTALE
/* store_events: the revisions asked for are no longer in the history. */
#define STORE_ECOMPACTED ERANGE

#define STORE_ROOT_INO 1ULL
/* The newest command version this build applies: 3, an AUTH's (2: a TXN's
 * and a lease's). Every other command is written as
 * STORE_CMD_VERSION_PLAIN, which builds from before TXN apply too. */
#define STORE_CMD_VERSION       3U
#define STORE_CMD_VERSION_TXN   2U
#define STORE_CMD_VERSION_PLAIN 1U
#define STORE_RESERVED_NAME     ".raftfs"

/* Defaults and hard bounds of the limits (store_limits). */
#define STORE_DEFAULT_MAX_VALUE_BYTES (1U << 20)
#define STORE_DEFAULT_MAX_NAME_BYTES  255U
#define STORE_DEFAULT_MAX_PATH_BYTES  4096U
#define STORE_MAX_VALUE_BYTES_BOUND   (64U << 20) /* one value is held in memory */
#define STORE_MAX_NAME_BYTES_BOUND    255U        /* LMDB key = 8-byte parent + name */
#define STORE_MAX_PATH_BYTES_BOUND    65536U
#define STORE_DEFAULT_MAP_BYTES       (4ULL << 30)
/* Clients whose last result is kept for exactly-once application. Part of
 * the replicated semantics: every member must use the same bound. */
#define STORE_MAX_SESSIONS 65536

enum store_type {
    STORE_TYPE_FILE = 1,
    STORE_TYPE_DIR = 2,
};

/* Metadata of one entry. Times are nanoseconds since the epoch. */
struct store_attr {
    uint64_t ino;         /* stable, never reused */
    enum store_type type; /* file or directory */
    uint32_t mode;        /* with S_IFREG / S_IFDIR */
    uint32_t uid, gid;
    uint32_t nlink; /* 1 for files, 2 + subdirectories for dirs */
    uint64_t size;  /* value bytes; 0 for directories */
    int64_t atime_ns, mtime_ns, ctime_ns;
    uint64_t create_revision; /* store revision that created it */
    uint64_t mod_revision;    /* store revision of its last change */
    uint64_t version;         /* changes since creation, 1 at creation */
    uint64_t parent;          /* ino of the parent; the root is its own */
};

/* Limits of one store; fixed when the data directory is created. */
struct store_limits {
    uint32_t max_value_bytes;
    uint32_t max_name_bytes;
    uint32_t max_path_bytes;
};

struct store_config {
    struct store_limits limits; /* used on creation; on open, 0 fields = "as stored",
                                   other values must match what is stored */
    uint64_t map_bytes;         /* LMDB map size; 0 = STORE_DEFAULT_MAP_BYTES */
    uint64_t log_segment_bytes; /* size of the log's segment files; 0 = 16 MiB */
    /* Revisions of change history kept (store_events); 0 = the default. */
    uint64_t history_revisions;
    /* Lazy apply commits (store_set_lazy_apply) without any fsync: for a
     * caller whose Raft log keeps every entry after its last snapshot
     * image. A system crash may then damage the LMDB file, so while open
     * the store keeps DIR/open-boot (this boot's id, fsync'ed), and an
     * open that finds one from another boot rebuilds the store from the
     * image and empties nothing else: the caller applies the log after it
     * (store_rebuilt). Log compaction syncs the tree first (as always). */
    bool unsynced_apply;
    /* The boot id to compare (tests); NULL: /proc/sys/kernel/random/boot_id. */
    const char *boot_id;
    /* Open does not read every value to check it against its inode's
     * checksum (by default it does, and refuses a store where one does not
     * match: EIO). */
    bool no_value_check;
};
#define STORE_DEFAULT_HISTORY_REVISIONS 100000

/* ---- commands ------------------------------------------------------- */

enum store_op {
    STORE_OP_PUT = 1,      /* path, value, mode, uid, gid */
    STORE_OP_APPEND,       /* path, value */
    STORE_OP_DELETE,       /* path */
    STORE_OP_MKDIR,        /* path, mode, uid, gid */
    STORE_OP_RMDIR,        /* path */
    STORE_OP_RENAME,       /* path -> path2, rename_flags */
    STORE_OP_SETATTR,      /* path, set_mask and the fields it names */
    STORE_OP_MEMBER_SET,   /* member_id, path = its address, incarnation */
    STORE_OP_MEMBER_DEL,   /* member_id */
    STORE_OP_TXN,          /* compares, then_ops, else_ops */
    STORE_OP_LEASE_GRANT,  /* lease, ttl_ms */
    STORE_OP_LEASE_REVOKE, /* lease, lease_expired */
    STORE_OP_AUTH,         /* auth_op and the fields it names (store_auth.c) */
};

/* AUTH commands: access control on the client protocol (store_auth.c, and
 * AuthChange in net/raftfs.proto, whose numbers these are). */
enum store_auth_op {
    STORE_AUTH_ENABLE = 0,
    STORE_AUTH_DISABLE,
    STORE_AUTH_USER_ADD,
    STORE_AUTH_USER_DELETE,
    STORE_AUTH_USER_PASSWORD,
    STORE_AUTH_USER_GRANT_ROLE,
    STORE_AUTH_USER_REVOKE_ROLE,
    STORE_AUTH_ROLE_ADD,
    STORE_AUTH_ROLE_DELETE,
    STORE_AUTH_ROLE_GRANT,
    STORE_AUTH_ROLE_REVOKE,
};
#define STORE_AUTH_OP_MAX STORE_AUTH_ROLE_REVOKE

#define STORE_PERM_READ  1U
#define STORE_PERM_WRITE 2U
/* User and role names: 1 to this many bytes, printable ASCII without
 * space, ':' or '/' (EINVAL). */
#define STORE_AUTH_NAME_MAX  64U
#define STORE_AUTH_HASH_MAX  256U   /* a crypt(3) string */
#define STORE_AUTH_MAX_ROLES 64U    /* per user (E2BIG) */
#define STORE_AUTH_MAX_PERMS 256U   /* per role (E2BIG) */
#define STORE_AUTH_ROOT      "root" /* the user ENABLE needs, and the role that may do all */

/* A lease's time to live: 1 ms to about 11.5 days (EINVAL outside). */
#define STORE_LEASE_TTL_MAX_MS (1000ULL * 1000 * 1000)

/* A txn's compares and commands, at most this many in all (E2BIG). */
#define STORE_MAX_TXN_OPS 4096

enum store_cmp_target {
    STORE_CMP_VERSION = 0,
    STORE_CMP_CREATE_REVISION = 1,
    STORE_CMP_MOD_REVISION = 2,
    STORE_CMP_VALUE = 3,
};

enum store_cmp_result {
    STORE_CMP_EQUAL = 0,
    STORE_CMP_NOT_EQUAL = 1,
    STORE_CMP_GREATER = 2,
    STORE_CMP_LESS = 3,
};

/* One condition of a txn on the entry at path (see Compare in
 * net/raftfs.proto): a missing entry has version and revisions 0, and no
 * value (a VALUE compare on it, or on a directory, does not hold). */
struct store_compare {
    const char *path;
    size_t path_len;
    enum store_cmp_target target;
    enum store_cmp_result result;
    uint64_t number;   /* VERSION, CREATE_REVISION, MOD_REVISION */
    const void *value; /* VALUE */
    size_t value_len;
};

#define STORE_RENAME_NOREPLACE 1U /* = RENAME_NOREPLACE */
#define STORE_RENAME_EXCHANGE  2U /* = RENAME_EXCHANGE */

#define STORE_SET_MODE  (1U << 0)
#define STORE_SET_UID   (1U << 1)
#define STORE_SET_GID   (1U << 2)
#define STORE_SET_SIZE  (1U << 3)
#define STORE_SET_ATIME (1U << 4)
#define STORE_SET_MTIME (1U << 5)
#define STORE_SET_LEASE (1U << 6) /* a file's lease (0: none) */

/* A command, as built by a proposer or decoded from a log entry. Paths are
 * absolute ("/a/b"), byte strings with explicit lengths (no NUL needed).
 * All pointers are borrowed: the struct owns nothing. */
struct store_cmd {
    enum store_op op;
    int64_t time_ns;
    const char *path;
    size_t path_len;
    const char *path2; /* RENAME target */
    size_t path2_len;
    const void *value; /* PUT, APPEND */
    size_t value_len;
    uint32_t mode, uid, gid; /* PUT/MKDIR: of a new entry; SETATTR with mask */
    uint32_t rename_flags;
    uint32_t set_mask; /* SETATTR: STORE_SET_* */
    uint64_t size;
    int64_t atime_ns, mtime_ns;
    bool has_expected_revision; /* compare: mod_revision, 0 = must not exist */
    uint64_t expected_revision;
    bool has_expected_ino; /* compare: the path must name this inode */
    uint64_t expected_ino;
    /* Exactly once: client_id != 0 names the proposer, seq its request
     * (increasing per client). See store_result.duplicate. */
    uint64_t client_id, seq;
    uint64_t member_id; /* MEMBER_SET, MEMBER_DEL */
    /* MEMBER_SET: the incarnation of the member's data directory (0: not
     * known). A known one is never replaced by another (EEXIST); 0 clears
     * it. */
    uint64_t incarnation;
    /* TXN: if every compare holds, then_ops are applied in order, else
     * else_ops; all or nothing. The commands inside use only their op and
     * its fields (not time_ns, compares or client ids; no TXN or member
     * op: EINVAL). One revision for the whole txn if it changes anything. */
    const struct store_compare *compares;
    size_t n_compares;
    const struct store_cmd *then_ops;
    size_t n_then;
    const struct store_cmd *else_ops;
    size_t n_else;
    /* PUT with has_lease: attach the file to lease (0: to none); without
     * it a new file has none and an existing one keeps its own. SETATTR
     * with STORE_SET_LEASE: the same for an existing file. LEASE_GRANT:
     * the new lease's id (not 0) and ttl_ms; LEASE_REVOKE: its id, and
     * lease_expired when the leader ends it for want of keep-alives. */
    bool has_lease;
    uint64_t lease;
    uint64_t ttl_ms;
    bool lease_expired;
    /* A client's command (has_user): applied only if user may, when access
     * control is enabled (EPERM: no such user, EACCES: not allowed). */
    bool has_user;
    const char *user;
    size_t user_len;
    /* AUTH: auth_op, and as it names them: auth_name (a user or a role),
     * auth_role, auth_prefix and auth_perm (STORE_PERM_*), auth_hash
     * (has_auth_hash: a crypt(3) string; without it USER_ADD makes a user
     * who can only log in by certificate). */
    enum store_auth_op auth_op;
    const char *auth_name, *auth_role, *auth_prefix, *auth_hash;
    size_t auth_name_len, auth_role_len, auth_prefix_len, auth_hash_len;
    bool has_auth_hash;
    uint32_t auth_perm;
};

/* Encodes cmd (protobuf-c Command, net/raftfs.proto). On success *out is
 * malloc'd (caller frees) and *out_len its length. EINVAL: unknown op;
 * ENOMEM. */
int store_cmd_encode(const struct store_cmd *cmd, void **out, size_t *out_len);

/* A decoded command: cmd points into memory owned by this object. */
struct store_cmd_decoded {
    struct store_cmd cmd;
    void *priv;
    void *priv_txn; /* a TXN's arrays */
};

/* Decodes len bytes. On success fills *out, whose pointers stay valid until
 * store_cmd_decoded_free(out). Errors: EINVAL (not a well-formed Command, no
 * op), EPROTONOSUPPORT (a newer version), ENOMEM. The input need not outlive
 * the result. */
int store_cmd_decode(const void *buf, size_t len, struct store_cmd_decoded *out);
void store_cmd_decoded_free(struct store_cmd_decoded *d);

/* ---- opening -------------------------------------------------------- */

struct store;

/* A file the member keeps in its data directory while it waits to become a
 * voter after joining (cli/cli_mount.c); one of the directory's own names. */
#define STORE_PROMOTE_FILE "promote-pending"
/* Kept for good in the data directory of a member that joined a running
 * cluster (cli/cli_mount.c): it never founds a cluster of its own, also if
 * it restarts before its configuration arrived. One of the directory's own
 * names. */
#define STORE_JOINED_FILE "joined"

/* Opens the store in data directory dir, creating dir and an empty tree if
 * dir is missing or empty. A directory that holds anything else, a store of
 * another format, or a corrupt file is refused: never reinitialised. The
 * directory is locked (flock) for this process: a second opener gets EBUSY.
 * On error, err (if not NULL) holds a one-line explanation for the operator.
 * Errors: EBUSY (in use), ENOTEMPTY (foreign contents), EINVAL (limits differ
 * from the stored ones, or out of bounds), EPROTO (corrupt or unknown
 * format), and errnos of the OS. */
int store_open(struct store **out, const char *dir, const struct store_config *cfg, char *err,
               size_t err_len);

/* Closes the store (no transaction may be open). NULL is accepted. With
 * unsynced_apply it fsyncs the tree and removes DIR/open-boot. */
void store_close(struct store *s);

/* Whether store_open rebuilt the store (unsynced_apply: it was left open
 * by another boot), and from which applied index on the log must be
 * applied again; the old files are in DIR/store.untrusted. */
bool store_rebuilt(const struct store *s, uint64_t *from_index);

/* Which cluster and member this data directory belongs to, recorded at the
 * first start of a member, and its incarnation: a random non-zero number
 * drawn (by the caller) when the identity is first recorded, which tells
 * this data directory from a new one given the same member id (a local
 * record: never replicated, never in a snapshot). All 0 until set; the
 * incarnation is 0 in a record written before incarnations existed. EIO
 * if damaged. */
int store_identity_get(struct store *s, uint64_t *cluster_id, uint64_t *member_id,
                       uint64_t *incarnation);
/* Records the identity (a synced commit). EINVAL for incarnation 0. */
int store_identity_set(struct store *s, uint64_t cluster_id, uint64_t member_id,
                       uint64_t incarnation);

/* The limits in force (as stored). */
void store_get_limits(const struct store *s, struct store_limits *out);

struct store_stats {
    uint64_t applied_index; /* index of the last applied command */
    uint64_t revision;      /* global revision: +1 per successful command */
    uint64_t inodes;        /* entries in the tree, root included */
    uint64_t map_bytes;     /* LMDB map size */
    uint64_t used_bytes;    /* pages in use * page size */
};

/* Errors: EIO (corrupt state record). */
int store_get_stats(struct store *s, struct store_stats *out);

/* Room the store has left, for refusing a write before it cannot fit.
 *
 * LMDB puts a value that does not fit in a page (about half a page) on
 * that many CONSECUTIVE pages, taken from a run of free pages or from the
 * unused end of the map; free pages scattered in between are of no use to
 * it. So besides the total, the model keeps the unused end and the longest
 * runs of consecutive free pages (looked at only when the end is short:
 * STORE_SPACE_TAIL_ENOUGH), and store_space_take places values in it as
 * LMDB would. Estimates, on the safe side: runs that span two free-list
 * records are counted as two, and pages pinned by old readers are
 * counted as free. */
#define STORE_SPACE_RUNS        16
#define STORE_SPACE_TAIL_ENOUGH (64ULL << 20)
struct store_space {
    uint64_t free_bytes; /* the unused end plus every free page, within the disk's room */
    uint64_t page_size;
    uint64_t tail_pages;             /* the unused end of the map (within the disk's room) */
    uint64_t runs[STORE_SPACE_RUNS]; /* longest runs of free pages, longest first */
    size_t n_runs;
};
int store_space(struct store *s, struct store_space *out);
/* Takes the room a value of len bytes will need from sp: false (sp then
 * unchanged) if it has none. Pure. */
bool store_space_take(struct store_space *sp, uint64_t len);

/* ---- applying ------------------------------------------------------- */

/* Result of one command. */
struct store_result {
    int err;           /* 0 or the command's errno (see the table above) */
    bool skipped;      /* index was at or below the applied index: nothing done */
    bool duplicate;    /* (client_id, seq) was applied before: this is that result,
                          nothing was done again (err EALREADY: an older seq),
                          except attr.ino, which is 0: the session record keeps
                          no inode number (docs/store-format.md, sessions) */
    uint64_t revision; /* the store revision after this command */
    bool has_attr;     /* attr is the target's metadata after the change */
    struct store_attr attr;
    uint64_t client_id, seq; /* the command's, to find who waits for it */
    enum store_op op;        /* the command's (0 if it did not decode) */
    /* TXN: whether its compares held (then_ops ran, else else_ops); if err,
     * the 1-based position in that branch of the command that failed (0:
     * the txn itself was refused, e.g. a malformed compare path). */
    bool txn_succeeded;
    uint32_t txn_failed_op;
    /* LEASE_GRANT, LEASE_REVOKE: the lease, and a grant's ttl_ms. */
    uint64_t lease_id, lease_ttl_ms;
};

/* What a batch changed, reported after it committed so that caches (the
 * kernel's) can be invalidated. name points into memory valid only during
 * the callback. */
enum store_change_kind {
    STORE_CHANGE_INODE,      /* ino's value or metadata changed */
    STORE_CHANGE_INODE_GONE, /* ino was deleted */
    STORE_CHANGE_NAME,       /* the name parent/name now names another inode or none */
};

struct store_change {
    enum store_change_kind kind;
    uint64_t ino;
    uint64_t parent;
    const char *name;
    size_t name_len;
    uint64_t client_id; /* of the command that made it (0: none) */
};

struct store_observer {
    void *ctx;
    /* Called inside the applying transaction, before the value of an inode
     * is dropped (DELETE, replacing RENAME): lets a reader that still has
     * the file open keep its content. data is valid during the call only. */
    void (*dropping)(void *ctx, const struct store_attr *attr, const void *data, size_t len);
    /* Called after a batch committed, once per change. */
    void (*changed)(void *ctx, const struct store_change *change);
};

/* Registers the observer (copied); NULL callbacks are skipped. Call before
 * the first apply; not thread-safe against a concurrent apply. */
void store_set_observer(struct store *s, const struct store_observer *obs);

/* One log entry: an encoded command at a log index. */
struct store_entry {
    uint64_t index;
    const void *data;
    size_t len;
    bool noop; /* not a command (a Raft no-op or configuration entry): only
                  the applied index moves */
};

/* Applies n entries, in order, in ONE write transaction that also records
 * the last index as applied, then commits: durably by default, without
 * durability under store_set_lazy_apply (the node sets it: the Raft log is
 * durable first and replays what a crash loses). Entries at or below the
 * applied index are skipped (results[i].skipped); indexes must increase.
 * A command that fails (bad bytes included) gets its errno in results[i]
 * and changes nothing, but its index still counts as applied.
 * Returns 0 when the transaction committed; otherwise nothing of the batch
 * was applied and the error is returned: ENOSPC (map or disk full), EIO
 * (disk error, corrupt records), ENOMEM. */
int store_apply_batch(struct store *s, const struct store_entry *entries, size_t n,
                      struct store_result *results);

/* As store_apply_batch, and calls decided(ctx) once every result is known,
 * before the commit (and its fsync), only if the batch changes anything
 * (not when every entry was skipped). The results are final then: log
 * order decides them, so if the commit fails nothing was applied and a
 * later call with the same entries gives the same results. Readers of the
 * store do not see the batch until it is committed.
 *
 * Deferral, with store_set_lazy_apply only: decided returns whether to
 * commit now. If it returns false, the batch stays in an open transaction
 * that later batches join, committed by store_apply_flush, or by the next
 * batch whose decided returns true, or before any other transaction of the
 * store this thread begins (store_apply_flush_error then tells a failure).
 * A batch that fails, like a commit that fails, loses every deferred
 * batch (nothing of them applied: apply them again from the log, from
 * store_applied_visible() + 1); EINVAL for the caller's bug (indexes that
 * do not increase, another thread) changes nothing. All on one thread;
 * decided NULL commits at once. */
int store_apply_batch_decided(struct store *s, const struct store_entry *entries, size_t n,
                              struct store_result *results, bool (*decided)(void *ctx), void *ctx);

/* Commits deferred batches (0 if there are none). ENOSPC, EIO: none of
 * them is applied. */
int store_apply_flush(struct store *s);
/* Whether batches are deferred now. */
bool store_apply_deferred(const struct store *s);
/* The failure of a commit of deferred batches made before another
 * transaction (store_begin), once; 0 if none. */
int store_apply_flush_error(struct store *s);
/* The applied index readers see (committed); any thread may ask: a read
 * transaction begun after this returned X sees at least index X. */
uint64_t store_applied_visible(const struct store *s);

/* Convenience: one entry. */
int store_apply(struct store *s, uint64_t index, const void *data, size_t len,
                struct store_result *result);

/* With lazy set, apply transactions need not be durable (store_txn_commit:
 * one fsync, of the data pages, and the meta page unsynced): for a caller
 * whose commands are durable elsewhere first (the Raft log, which keeps
 * them until store_log_compact has synced the environment; a system crash
 * loses at most applies that the log replays, and never leaves the file
 * damaged). Off by default. Call from the applying thread only. */
void store_set_lazy_apply(struct store *s, bool lazy);

/* ---- reading -------------------------------------------------------- */

struct store_txn;

/* Begins a read-only snapshot of the tree. At most one per thread at a time.
 * Errors: ENOMEM, EAGAIN (too many readers), EIO. */
int store_txn_begin(struct store *s, struct store_txn **out);
void store_txn_end(struct store_txn *t);

/* Applied index and revision as of this snapshot. */
uint64_t store_txn_applied_index(const struct store_txn *t);
uint64_t store_txn_revision(const struct store_txn *t);

/* Errors of the lookups: ENOENT, ENOTDIR (parent is a file), ENAMETOOLONG,
 * EINVAL (bad name or path), EIO (corrupt record). */
int store_getattr(struct store_txn *t, uint64_t ino, struct store_attr *out);
int store_lookup(struct store_txn *t, uint64_t parent, const char *name, size_t name_len,
                 struct store_attr *out);
int store_resolve(struct store_txn *t, const char *path, size_t path_len, struct store_attr *out);

/* The value of file ino: *data is valid until the transaction ends. EISDIR
 * for a directory. */
int store_read(struct store_txn *t, uint64_t ino, const void **data, size_t *len);

/* The absolute path of ino into buf (NUL-terminated, *len without the NUL).
 * ENAMETOOLONG when it does not fit in cap. */
int store_path(struct store_txn *t, uint64_t ino, char *buf, size_t cap, size_t *len);

/* One directory entry, as listed. name is valid during the callback only. */
struct store_dirent {
    const char *name;
    size_t name_len;
    uint64_t ino;
    enum store_type type;
};

/* Lists directory dir in name order (bytewise), starting after the name
 * `after` (NULL: from the start), calling cb for each entry until cb returns
 * non-zero or the directory ends. A page is "call until the page is full,
 * then resume after the last name", so entries added or removed meanwhile
 * never make the listing skip or repeat others. Errors: ENOENT, ENOTDIR, EIO;
 * or cb's non-zero return is NOT an error (listing just stops). */
int store_list(struct store_txn *t, uint64_t dir, const char *after, size_t after_len,
               int (*cb)(void *ctx, const struct store_dirent *e), void *ctx);

/* ---- leases --------------------------------------------------------- */

/* One lease, as granted. */
struct store_lease {
    uint64_t id;
    uint64_t ttl_ms;
    uint64_t keys; /* files attached to it */
};

/* Lease id, with its ttl and how many files it holds: ENOKEY if none. */
int store_lease_get(struct store_txn *t, uint64_t id, struct store_lease *out);
/* Calls cb for every lease, in id order, until it returns non-zero (that
 * is returned). EIO for a damaged record. */
int store_leases(struct store_txn *t, int (*cb)(void *ctx, const struct store_lease *l), void *ctx);
/* The lease file ino is attached to, 0 if none. */
int store_file_lease(struct store_txn *t, uint64_t ino, uint64_t *lease);

/* ---- change history ------------------------------------------------- */

/* One change of the tree: the command that made revision `revision`
 * (PUT, APPEND, DELETE, MKDIR, RMDIR, RENAME, SETATTR), its path (and
 * RENAME's target), and the entry it changed as it is after the change
 * (the removed one for DELETE/RMDIR; type 0 and zeros if not known). */
struct store_event {
    uint64_t revision;
    enum store_op op;
    const char *path; /* not NUL-terminated */
    size_t path_len;
    const char *path2; /* RENAME's target, else NULL */
    size_t path2_len;
    uint32_t rename_flags;
    enum store_type type;
    uint32_t mode;
    uint64_t ino, size;
};

/* Events of revisions >= from, in order, up to t's revision, to cb (its
 * pointers valid during the call); cb returns 0 to go on, a negative
 * number to stop (then 0 is returned), or an errno to stop with it. The
 * history keeps the last store_config.history_revisions revisions:
 * *compacted (if given) is the revision at or below which events are gone,
 * and STORE_ECOMPACTED is returned if from <= *compacted. Revisions that
 * changed no tree entry have no event. EIO: a damaged record. */
int store_events(struct store_txn *t, uint64_t from,
                 int (*cb)(void *ctx, const struct store_event *ev), void *ctx,
                 uint64_t *compacted);

/* ---- the member directory ------------------------------------------- */

#define STORE_MAX_ADDR_BYTES 255

/* One entry of the member directory; addr (not NUL-terminated) is valid
 * during the callback only. */
struct store_member {
    uint64_t id;
    const char *addr;
    size_t addr_len;
    uint64_t incarnation; /* of its data directory; 0: not known yet */
};

/* Calls cb for each member (id order). Errors: EIO (a damaged record), or
 * cb's non-zero return. */
int store_members(struct store *s, int (*cb)(void *ctx, const struct store_member *m), void *ctx);

/* ---- access control (store_auth.c) ----------------------------------- */

/* Whether access control is enabled (AUTH ENABLE). */
int store_auth_enabled(struct store_txn *t, bool *on);
/* Whether user may do want (STORE_PERM_READ or _WRITE) on path, as of t:
 * 0 (also whenever access control is disabled), EPERM (no such user),
 * EACCES (not allowed), or EIO (a damaged record). */
int store_auth_allowed(struct store_txn *t, const char *user, size_t ulen, const char *path,
                       size_t plen, unsigned want);
/* The same for what only the role "root" may do (members, access control). */
int store_auth_root(struct store_txn *t, const char *user, size_t ulen);
/* user's crypt(3) string, NUL-terminated, into hash: ENOENT (no such
 * user), ENOKEY (the user has no password: certificate only), EIO. */
int store_auth_login(struct store_txn *t, const char *user, size_t ulen, char *hash, size_t cap);
/* Whether prefix covers path: itself or below it ("/" covers all). */
bool store_auth_covers(const char *prefix, size_t plen, const char *path, size_t len);
/* EINVAL unless name is a valid user or role name. */
int store_auth_name_check(const char *name, size_t len);

/* A user (its roles in items) or a role (its prefixes in items, with
 * perms); pointers valid during the callback only. */
struct store_auth_item {
    const char *name;
    size_t name_len;
    bool has_password; /* users */
    size_t n_items;
    const char *const *items;
    const size_t *item_lens;
    const uint32_t *perms; /* roles: STORE_PERM_* of each prefix */
};
/* Calls cb for every user (roles: every role) in name order, or only for
 * the one named only (ENOENT if none). Errors: EIO, or cb's non-zero. */
int store_auth_list(struct store_txn *t, bool roles, const char *only, size_t only_len,
                    int (*cb)(void *ctx, const struct store_auth_item *it), void *ctx);

/* ---- snapshot images ------------------------------------------------ */

/* A snapshot image is the replicated state (the tree, revision, applied
 * index, limits) as of one moment, in a self-checking file (format in
 * store_snapshot.c): what a lagging member installs, what a backup keeps. */
struct store_snapshot_info {
    uint64_t applied_index; /* the image is the state after this index */
    uint64_t revision;
    uint64_t records;
    uint64_t bytes; /* size of the image */
};

/* Writes an image of the current state to fd (from its current offset),
 * from one read transaction (writers go on meanwhile), then fsyncs fd.
 * Errors: write errors of fd, EIO. */
int store_snapshot_write(struct store *s, int fd, struct store_snapshot_info *info);

/* Checks a whole image (from offset 0): structure, order, records,
 * checksum. EPROTO with a reason in err. */
int store_snapshot_check(int fd, struct store_snapshot_info *info, char *err, size_t err_len);

/* Replaces the state with the image in fd, in one write transaction, after
 * checking all of it: a damaged image changes nothing (EPROTO). The limits
 * become the image's. Caches above the store (the kernel's) must be told by
 * the caller. No other transaction may write meanwhile. */
int store_snapshot_install(struct store *s, int fd, struct store_snapshot_info *info, char *err,
                           size_t err_len);

/* ---- checking a data directory (store_check.c) ---------------------- */

/* At most this many problems are passed to store_check's callback; the
 * others are only counted. */
#define STORE_CHECK_MAX_REPORTED 1000

/* What store_check found. */
#define STORE_BOOT_ID_MAX 40 /* a boot id and its NUL (store_boot.c) */

struct store_check_report {
    uint64_t entries;             /* reached from the root, root included */
    uint64_t files, dirs;         /* entries = files + dirs */
    uint64_t revision, applied;   /* of the state record */
    uint64_t log_first, log_last; /* the log holds first..last (empty: last = first - 1) */
    uint64_t log_term;            /* term of entry log_last (the snapshot's at its index; 0) */
    uint64_t digest;              /* of the replicated state (docs/store-format.md) */
    uint64_t problems;            /* found, all of them */
    /* DIR/open-boot: the boot the store was left open in ("" if it was
     * closed cleanly), and whether the next start rebuilds the tree from
     * the snapshot image and the log (another boot, or a failed sync). */
    char open_boot[STORE_BOOT_ID_MAX];
    bool rebuild_at_start;
    struct store_limits limits; /* as recorded (the bounds if damaged) */
};

/* Checks the store in data directory dir, of a stopped member, without
 * changing anything: nothing is written or created, even in a missing or
 * empty directory (docs/store-format.md, "Check and digest", lists what
 * is checked and what the digest covers). Each problem found is passed to
 * problem (if not NULL) as one line "PROBLEM (where)", valid during the
 * call only; the check goes on after each. Returns 0 when the check ran
 * (out->problems says how it went), else an errno with a one-line reason
 * in err: ENOENT, ENOTDIR or EPROTO (not a raftfs data directory, or its
 * store cannot be opened at all), EBUSY (in use by a running process),
 * ENOMEM, EIO and errnos of the OS. A store_open of dir meanwhile, in
 * this process or another, gets EBUSY. */
int store_check(const char *dir, struct store_check_report *out,
                void (*problem)(void *ctx, const char *msg), void *ctx, char *err, size_t err_len);

/* ---- helpers shared with callers ------------------------------------ */

/* Checks an absolute path against the limits: 0, EINVAL (not absolute, empty
 * component, "." or "..", trailing '/', NUL byte) or ENAMETOOLONG. "/" is
 * valid. */
int store_path_check(const char *path, size_t len, const struct store_limits *lim);

/* Checks one name: 0, EINVAL (empty, ".", "..", '/' or NUL) or ENAMETOOLONG. */
int store_name_check(const char *name, size_t len, const struct store_limits *lim);

/* Human-readable name of an op, for logs and tests. */
const char *store_op_name(enum store_op op);
/* The name watchers print for an event's op: "put", "append", "delete",
 * "mkdir", "rmdir", "rename", "setattr" ("?" for any other). */
const char *store_event_op_name(uint32_t op);

#endif
