/* raft/raft.h: public API of the pure Raft consensus core (no I/O, clock, threads or globals). */
#ifndef RAFT_RAFT_H
#define RAFT_RAFT_H

/*
 * The core is a deterministic state machine in the style of etcd's raft package. The caller
 * (node/ in production, tests/sim/ in the simulator) drives it:
 *
 *   raft_tick()            once per tick of the caller's clock (the core never reads a clock);
 *   raft_step()            for every message received from a peer;
 *   raft_propose(), raft_read_index(), raft_conf_change(), raft_transfer_leader()
 *                          for local requests;
 *   raft_ready()           to collect the work the core wants done, then
 *   raft_advance()         once that batch has been handed over (see "ready contract");
 *   raft_persisted()       when log entries handed out earlier are durable.
 *
 * Ready contract (docs/raft.md has the long form):
 *   1. rd.hard_state (if rd.hard_state_changed), rd.snapshot_chunk (if rd.has_snapshot_chunk)
 *      and rd.snapshot (if rd.has_snapshot, install it: state machine image + storage reset to
 *      the snapshot, every old log entry discarded) must be durable BEFORE any of rd.messages
 *      is sent. The chunk is written before the install when both are present.
 *   2. rd.entries are appended to the log after the snapshot (if any). Writing entry i replaces
 *      every stored entry with index >= i. They may be written asynchronously, in order of the
 *      readies; once the rd.entries of a ready are durable, call raft_persisted() with the
 *      (index, term) of the last of them (one call may cover several readies written in order).
 *      No message in any ready depends on rd.entries being durable: acknowledgements wait for
 *      raft_persisted(). rd.must_sync says whether an fsync is needed (entries or hard state
 *      term/vote changed).
 *   3. rd.messages may be sent in any order once (1) holds; losing them is harmless.
 *   4. rd.committed are applied to the state machine in order. rd.proposals and rd.reads
 *      report outcomes: complete a proposal waiter after applying rd.committed; answer a read
 *      once the state machine has applied rd.reads[i].index.
 *   5. raft_advance(r, &rd) releases the batch; every pointer in rd becomes invalid.
 *
 * Storage (struct raft_storage) is read synchronously by the core. It must show every entry
 * written so far (durable or not) and reflect a snapshot installed from a ready. The core never
 * reads an entry above the last index it knows to be durable.
 *
 * Thread-safety: none. One struct raft is used by one thread at a time.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes. 0 is success. "retryable" errors mean: try again later, possibly elsewhere. */
enum {
    RAFT_OK = 0,
    RAFT_ENOTLEADER = 1,    /* retryable: this member is not the leader (raft_leader() hints) */
    RAFT_ETRANSFER = 2,     /* retryable: a leadership transfer is in progress */
    RAFT_ECONFPENDING = 3,  /* retryable: a configuration change is still uncommitted/joint */
    RAFT_ENOTREADY = 4,     /* retryable: new leader has not yet committed an entry of its term */
    RAFT_EBUSY = 5,         /* retryable: a configured bound (pending reads/proposals) is full */
    RAFT_ELEADERLOST = 6,   /* retryable: leadership lost, outcome of a proposal unknown */
    RAFT_ETIMEOUT = 7,      /* retryable: a forwarded read got no answer in time */
    RAFT_ECATCHUP = 8,      /* retryable: learner not caught up enough to be promoted */
    RAFT_EINVAL = 9,        /* invalid argument (bad configuration change, unknown member...) */
    RAFT_ENOMEM = 10,       /* out of memory */
    RAFT_ETOOBIG = 11,      /* a proposal larger than max_msg_bytes */
    RAFT_ECOMPACTED = 12,   /* storage: index is below the first available entry */
    RAFT_EUNAVAILABLE = 13, /* storage: index is above the last entry */
    RAFT_ESNAPGONE = 14,    /* storage: the requested snapshot is no longer the current one */
    RAFT_ECORRUPT = 15,     /* storage returned inconsistent data */
    RAFT_ESTORAGE = 16,     /* storage I/O error */
};

/* Returns a static string naming rc. Never NULL. */
const char *raft_strerror(int rc);
/* True for the errors marked "retryable" above. */
bool raft_error_retryable(int rc);

/* Maximum number of ids in each member set of a configuration. */
#define RAFT_CONF_MAX 16

/*
 * A cluster configuration. Member ids are non-zero. While a joint configuration is in force
 * (§4.3 of the Raft dissertation: C_old,new) voters_old is non-empty and decisions need a
 * majority of voters AND a majority of voters_old. A learner receives the log but never votes;
 * learners may overlap voters_old (a voter being demoted) but never voters.
 */
struct raft_conf {
    uint64_t voters[RAFT_CONF_MAX];
    uint64_t voters_old[RAFT_CONF_MAX];
    uint64_t learners[RAFT_CONF_MAX];
    uint32_t n_voters;
    uint32_t n_voters_old;
    uint32_t n_learners;
};

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1, /* application command */
    RAFT_ENTRY_NOOP = 2,   /* appended by each new leader; the application ignores it */
    RAFT_ENTRY_CONF = 3,   /* configuration: data is raft_conf_encode() output */
};

/* A log entry. data is owned by whoever owns the array the entry sits in (see each use). */
struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint32_t type; /* enum raft_entry_type */
    uint32_t len;
    uint8_t *data;
};

/* Snapshot metadata: the state machine image at (index, term) and the configuration in force
 * at that index, which is always a committed one (trap 8). size is the image size in bytes. */
struct raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    uint64_t size;
    struct raft_conf conf;
};

struct raft_hard_state {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
};

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,
    RAFT_MSG_APPEND_RESP = 2,
    RAFT_MSG_VOTE = 3,
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PREVOTE = 5,
    RAFT_MSG_PREVOTE_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7,
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_SNAPSHOT = 9,
    RAFT_MSG_SNAPSHOT_RESP = 10,
    RAFT_MSG_TIMEOUT_NOW = 11,
    RAFT_MSG_READ_INDEX = 12,
    RAFT_MSG_READ_INDEX_RESP = 13,
};
#define RAFT_MSG_TYPE_MAX 13

/*
 * One peer message. Every message carries type, from, to, term. The other fields used by each
 * type (all others are zero):
 *   APPEND           prev_index, prev_term, commit, entries/n_entries
 *   APPEND_RESP      reject, index (accept: last index now durable and matching the leader;
 *                    reject: the rejected prev_index), hint_index, hint_term (reject only)
 *   VOTE, PREVOTE    last_index, last_term, transfer (campaign caused by TIMEOUT_NOW)
 *   VOTE_RESP,
 *   PREVOTE_RESP     reject
 *   HEARTBEAT        commit, context (ReadIndex round, 0 = none)
 *   HEARTBEAT_RESP   context
 *   SNAPSHOT         snap (metadata), offset, data/len (one chunk), done (last chunk)
 *   SNAPSHOT_RESP    snap.index, snap.term, offset (next offset the receiver expects),
 *                    reject (chunk not taken), done (snapshot applied; index = last durable
 *                    matching index)
 *   TIMEOUT_NOW      (nothing)
 *   READ_INDEX       context (follower's unique id of the forwarded read)
 *   READ_INDEX_RESP  context, index (read index), reject (leader cannot serve it)
 * Messages handed to raft_step() are read only during the call (the core copies what it keeps).
 */
struct raft_message {
    uint32_t type;
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t prev_index;
    uint64_t prev_term;
    uint64_t commit;
    uint64_t index;
    uint64_t hint_index;
    uint64_t hint_term;
    uint64_t last_index;
    uint64_t last_term;
    uint64_t context;
    uint64_t offset;
    bool reject;
    bool transfer;
    bool done;
    struct raft_entry *entries;
    size_t n_entries;
    struct raft_snapshot_meta snap;
    uint8_t *data;
    size_t len;
};

/*
 * Log storage, implemented by the caller (LMDB in node/, memory in the simulator). Every call
 * returns 0 or an error; RAFT_ESTORAGE (or any code) makes the calling raft_* function fail
 * with that code. Indexes: first_index = snapshot index + 1 (1 without snapshot),
 * last_index = index of the last written entry (snapshot index when the log is empty).
 */
struct raft_storage {
    void *ctx;
    /* Durable hard state; all zero for a new member. */
    int (*hard_state)(void *ctx, struct raft_hard_state *out);
    int (*first_index)(void *ctx, uint64_t *out);
    int (*last_index)(void *ctx, uint64_t *out);
    /* Term of entry index. index == snapshot index gives the snapshot's term. Returns
     * RAFT_ECOMPACTED below the snapshot index and RAFT_EUNAVAILABLE above last_index. */
    int (*term)(void *ctx, uint64_t index, uint64_t *out);
    /* Entries [lo, hi) but stopping once their total data exceeds max_bytes (at least one
     * entry is returned). *out is a malloc()ed array whose entries' data are each malloc()ed
     * (NULL when len is 0); the core takes ownership and frees them. Errors as for term(). */
    int (*entries)(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes, struct raft_entry **out,
                   size_t *n);
    /* Metadata of the current snapshot; index 0 means there is none. */
    int (*snapshot_meta)(void *ctx, struct raft_snapshot_meta *out);
    /* Up to max_len bytes of the current snapshot image from offset. *data is malloc()ed and
     * owned by the core afterwards. RAFT_ESNAPGONE if (index, term) is not the current one. */
    int (*snapshot_read)(void *ctx, uint64_t index, uint64_t term, uint64_t offset, size_t max_len,
                         uint8_t **data, size_t *len);
};

struct raft_config {
    uint64_t id;              /* this member's id, non-zero */
    uint32_t election_ticks;  /* base election timeout; randomised in [e, 2e) (default 10) */
    uint32_t heartbeat_ticks; /* leader heartbeat interval, < election_ticks (default 1) */
    /* Seeds the election timeout randomisation and the contexts of forwarded reads. Pass a
     * different value at every start of a member (e.g. from getrandom()): a late answer to a
     * read forwarded before a restart must not match one forwarded after it. */
    uint64_t seed;
    uint64_t applied;               /* last index the state machine applied (restart input) */
    bool pre_vote;                  /* §9.6 PreVote */
    bool check_quorum;              /* §6.2 leader steps down without a majority of contact */
    size_t max_msg_bytes;           /* entry bytes per APPEND (default 1 MiB) */
    uint32_t max_inflight_msgs;     /* APPEND messages in flight per follower (default 64) */
    size_t max_inflight_bytes;      /* entry bytes in flight per follower (default 8 MiB) */
    size_t max_snapshot_chunk;      /* bytes per SNAPSHOT chunk (default 256 KiB) */
    size_t max_apply_bytes;         /* committed entry bytes per ready (default 4 MiB) */
    uint32_t max_pending_reads;     /* queued ReadIndex requests (default 4096) */
    uint32_t max_read_rounds;       /* ReadIndex rounds in flight at once (default 1: a read
                                     * waits for the round out to end; at most 16) */
    bool read_round_all;            /* a round asks every peer, not only a majority's worth
                                     * of voters (those that answered last) */
    uint32_t max_pending_proposals; /* tracked proposals awaiting outcome (default 65536) */
    uint64_t promote_max_lag;       /* a learner is promoted only if match + lag >= last index */
    /* Configuration for a brand-new member whose storage is empty (no hard state, entries or
     * snapshot): the founding members all pass the same one; a member that joins later
     * passes an empty one and receives the configuration from the leader. */
    struct raft_conf bootstrap;
    struct raft_storage storage;
    /* Tracer (may be NULL): one stable line per event, no wall clock, no trailing newline;
     * the line is valid only during the call. */
    void (*trace)(void *ctx, const char *line);
    void *trace_ctx;
};

/* Fills cfg with defaults (all zero, then the defaults documented above). */
void raft_config_init(struct raft_config *cfg);

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
};

/* Outcome of a read requested with raft_read_index(). status 0: serve the read once the
 * state machine has applied index. Otherwise a retryable error; index is 0. */
struct raft_read_state {
    uint64_t cookie;
    uint64_t index;
    int status;
};

/* Outcome of a proposal or configuration change made on this member while leader. status 0:
 * the entry (index, term) is committed and is among this ready's committed entries (or was
 * in an earlier one). RAFT_ELEADERLOST: leadership was lost; the entry may or may not commit
 * later, the client retries (applications dedupe with a client id + sequence number). */
struct raft_proposal_result {
    uint64_t cookie;
    uint64_t index;
    uint64_t term;
    int status;
};

/* One chunk of an incoming snapshot, to be written at offset into the image being received
 * for (snap.index, snap.term). An offset 0 chunk starts a new image (discard any other). */
struct raft_snapshot_chunk {
    struct raft_snapshot_meta snap;
    uint64_t offset;
    uint8_t *data;
    size_t len;
    bool last;
};

/* A batch of work. All pointers are owned by the core and valid until raft_advance(). */
struct raft_ready {
    bool hard_state_changed;
    struct raft_hard_state hard_state;
    bool must_sync;
    bool has_snapshot_chunk;
    struct raft_snapshot_chunk snapshot_chunk;
    bool has_snapshot; /* install the image assembled from the chunks for snapshot.index */
    struct raft_snapshot_meta snapshot;
    struct raft_entry *entries;
    size_t n_entries;
    struct raft_entry *committed;
    size_t n_committed;
    struct raft_message *messages;
    size_t n_messages;
    struct raft_read_state *reads;
    size_t n_reads;
    struct raft_proposal_result *proposals;
    size_t n_proposals;
};

/* Opaque handle. */
struct raft;

/*
 * Creates a core from cfg (copied) and the state found in cfg->storage. Errors: RAFT_EINVAL
 * (bad config), RAFT_ENOMEM, storage errors, RAFT_ECORRUPT (storage contradicts itself, e.g.
 * applied beyond the last entry). *out is freed with raft_free().
 */
int raft_new(const struct raft_config *cfg, struct raft **out);
void raft_free(struct raft *r);

/* One tick of the caller's clock. Returns 0 or a storage error. */
int raft_tick(struct raft *r);

/* Moves a follower's election timer on by `ticks` ticks, as that many ticks would, without
 * the campaign they could start: the next raft_tick campaigns if the timer has run out. For
 * a member that knows no leader and has just reached a majority of the voters at its start
 * (etcd's initial election tick advance). Use it with PreVote: without, a member restarted
 * into a live cluster campaigns at once and deposes the leader (tests/sim seed 3584 lost
 * liveness so). Returns whether it moved: not for a leader, a candidate, or a follower that
 * knows a leader. */
bool raft_advance_election(struct raft *r, uint32_t ticks);

/* Processes one message from a peer. Bad or stale input is ignored or answered, never
 * asserted on; only storage errors and RAFT_ENOMEM are returned. */
int raft_step(struct raft *r, const struct raft_message *m);

/*
 * Appends an application command (copied) on the leader. index and term (may be NULL) receive
 * its position; the outcome arrives later as a raft_proposal_result carrying cookie (0 = do
 * not track). Errors: RAFT_ENOTLEADER, RAFT_ETRANSFER, RAFT_ETOOBIG, RAFT_EBUSY, RAFT_ENOMEM.
 */
int raft_propose(struct raft *r, const void *data, size_t len, uint64_t cookie, uint64_t *index,
                 uint64_t *term);

/*
 * Requests a linearizable read point (§6.4 ReadIndex). The answer arrives as a
 * raft_read_state carrying cookie. On a follower it is forwarded to the leader. Errors:
 * RAFT_ENOTLEADER (no leader known), RAFT_EBUSY, RAFT_ENOMEM.
 */
int raft_read_index(struct raft *r, uint64_t cookie);

/* The index a ReadIndex round of this leader would start from, without the
 * round: its commit index, once it has committed an entry of its term
 * (before that, an earlier leader may have answered reads past it). Not a
 * read point by itself: a leader deposed without knowing it yet would read
 * behind. For callers that confirm leadership in another way (a write of
 * theirs that this leader commits in this term, after the call). Returns
 * false on a follower, a candidate, or a leader that has not yet committed
 * an entry of its term. */
bool raft_leader_commit_point(struct raft *r, uint64_t *index);

enum raft_change_type {
    RAFT_CHANGE_ADD_VOTER = 1,   /* add a voter, or promote a learner */
    RAFT_CHANGE_ADD_LEARNER = 2, /* add a learner, or demote a voter */
    RAFT_CHANGE_REMOVE = 3,
};
struct raft_change {
    uint32_t type;
    uint64_t id;
};

/*
 * Proposes a membership change made of n single changes applied together. A change of the
 * voter set goes through a joint configuration (§4.3) that the leader leaves automatically
 * once it commits; learner-only changes take one entry. Errors: RAFT_ENOTLEADER,
 * RAFT_ETRANSFER, RAFT_ENOTREADY, RAFT_ECONFPENDING (one change at a time), RAFT_ECATCHUP,
 * RAFT_EINVAL (the changes do not make sense against the current configuration), RAFT_EBUSY,
 * RAFT_ENOMEM.
 */
int raft_conf_change(struct raft *r, const struct raft_change *changes, size_t n, uint64_t cookie);

/*
 * Starts a leadership transfer to voter target (§3.10). Errors: RAFT_ENOTLEADER, RAFT_EINVAL
 * (target is self or not a voter), RAFT_ETRANSFER (another transfer in progress).
 */
int raft_transfer_leader(struct raft *r, uint64_t target);

/* True when raft_ready() would return a non-empty batch. */
bool raft_has_ready(const struct raft *r);
/* Fills rd (see the ready contract above). Errors: storage errors, RAFT_ENOMEM; on error rd
 * is empty and the core is unchanged. */
int raft_ready(struct raft *r, struct raft_ready *rd);
/* Releases rd, which must be the last batch returned by raft_ready(). */
void raft_advance(struct raft *r, struct raft_ready *rd);

/* The rd.entries of the ready whose last entry is (index, term) are durable, and so are those
 * of every earlier ready. Entries count as durable only once their latest write is: a notice
 * naming no ready's last entry, or one whose entries a later ready rewrites while that write
 * is pending, advances nothing for them (trap 6). Returns 0 or a storage error. */
int raft_persisted(struct raft *r, uint64_t index, uint64_t term);

/* Hands over the messages the core queued since the last raft_ready(), also while that
 * ready is held: for example the acknowledgement raft_persisted() queues, which can then
 * leave before the held ready's rd.committed are applied. They may be sent once everything
 * contract 1 asks of every ready handed out is durable. *out (NULL when *n is 0) is the
 * caller's, to release with raft_messages_free(). */
void raft_take_messages(struct raft *r, struct raft_message **out, size_t *n);
void raft_messages_free(struct raft_message *m, size_t n);

/* Read-only accessors. */
uint64_t raft_id(const struct raft *r);
enum raft_role raft_role(const struct raft *r);
uint64_t raft_term(const struct raft *r);
uint64_t raft_leader(const struct raft *r); /* 0 when unknown */
uint64_t raft_commit_index(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
uint64_t raft_applied_index(const struct raft *r); /* last index handed out in committed */
/* The configuration in force (latest in the log, committed or not). */
const struct raft_conf *raft_conf(const struct raft *r);
/* The latest configuration this member knows to be committed (at or below its commit index).
 * It equals raft_conf() and is not joint once a change is complete as far as this member can
 * tell; a follower learns that a change committed only from the leader. */
const struct raft_conf *raft_conf_committed(const struct raft *r);
/* True while a membership change is under way as far as this member knows: a configuration
 * entry in its log is not yet known committed, or the committed one is joint. */
bool raft_conf_changing(const struct raft *r);
/* Term of the entry at index in this member's log, durable or not. Errors: RAFT_ECOMPACTED,
 * RAFT_EUNAVAILABLE, storage errors. */
int raft_log_term(struct raft *r, uint64_t index, uint64_t *term);
/* Leader only: progress of a member (0 = not tracked): match index. */
int raft_member_match(const struct raft *r, uint64_t id, uint64_t *match);

/* Checks every internal invariant; returns 0, or -1 and a description in why. */
int raft_check(const struct raft *r, char *why, size_t why_len);

/* Configuration helpers (pure). */
bool raft_conf_is_voter(const struct raft_conf *c, uint64_t id);
bool raft_conf_is_learner(const struct raft_conf *c, uint64_t id);
bool raft_conf_is_joint(const struct raft_conf *c);
/* Serialised size of c; raft_conf_encode writes exactly that many bytes into buf. */
size_t raft_conf_encoded_size(const struct raft_conf *c);
void raft_conf_encode(const struct raft_conf *c, uint8_t *buf);
/* Decodes and validates; RAFT_ECORRUPT on malformed input. */
int raft_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *out);

#endif
