/* raft/impl.h: the private state of struct raft and the internal calls between core files. */
#ifndef RAFT_IMPL_H
#define RAFT_IMPL_H

#include "conf.h"
#include "log.h"
#include "progress.h"
#include "raft.h"
#include "readonly.h"

/*
 * Design notes (numbered invariants, checked by raft_check in check.c):
 *  1. role == LEADER implies leader == id and id is a voter of conf... or it is stepping down
 *     at the next commit of a configuration that excludes it (§4.2.2).
 *  2. vote is only ever set once per term (hard state persisted before any message leaves).
 *  3. conf is the latest configuration entry in the log (§4.1: used as soon as appended),
 *     committed_conf the latest one at or below committed; conf_log holds the configuration
 *     entries above committed, in index order, so a truncation can roll conf back (trap 8).
 *  4. On a leader, prs has exactly one progress per member of conf; on others n_prs == 0.
 *  5. All in-flight counters (progress windows, snapshot chunks, read rounds, forwarded reads,
 *     pending proposals) are empty on a member that is not leader, except forwarded reads.
 *
 * Role transitions (legal ones, asserted in become_*):
 *   follower      -> pre-candidate (election timeout, pre_vote), candidate (timeout or
 *                    TIMEOUT_NOW), follower (new term / new leader)
 *   pre-candidate -> candidate (pre-vote won), follower
 *   candidate     -> leader (vote won), candidate or pre-candidate (timeout), follower
 *   leader        -> follower (higher term, CheckQuorum, removed, transfer)
 */

/* The largest term or log index taken from a peer. No real cluster comes near it (2^62), and it
 * keeps index + 1 and term + 1 from wrapping: a message beyond it is malformed. */
#define RAFT_PEER_MAX ((uint64_t)1 << 62)

struct conf_entry {
    uint64_t index;
    struct raft_conf conf;
};

struct pending_prop {
    uint64_t cookie;
    uint64_t index;
    uint64_t term;
};

struct raft {
    struct raft_config cfg;
    struct raft_log log;
    uint64_t id;
    uint64_t term;
    uint64_t vote;
    uint64_t leader;
    enum raft_role role;
    struct raft_hard_state last_hs; /* last hard state handed out (or loaded) */

    struct raft_conf conf;
    struct raft_conf committed_conf;
    uint64_t committed_conf_index;
    struct conf_entry *conf_log;
    size_t n_conf_log;
    size_t cap_conf_log;

    struct progress *prs; /* leader only */
    uint32_t n_prs;

    uint32_t election_elapsed;
    uint32_t heartbeat_elapsed;
    uint32_t randomized_timeout;
    uint64_t rng;
    uint64_t votes_yes[3 * RAFT_CONF_MAX];
    uint32_t n_votes_yes;
    uint64_t votes_no[3 * RAFT_CONF_MAX];
    uint32_t n_votes_no;
    bool campaign_transfer; /* this candidacy comes from TIMEOUT_NOW */

    uint64_t transfer_target;
    uint32_t transfer_elapsed;

    /* follower: highest index verified against the current leader in this term, and the
     * highest acknowledgement sent for it */
    uint64_t ack_index;
    uint64_t acked_index;

    /* follower: snapshot being received */
    bool recv_active;
    struct raft_snapshot_meta recv_snap;
    uint64_t recv_offset;
    uint64_t recv_from; /* the leader sending it, and its term: two leaders' images of */
    uint64_t recv_term; /* the same index need not be byte-identical */
    bool chunk_pending; /* a chunk waits for the next ready */
    struct raft_snapshot_chunk chunk;
    bool install_pending; /* an install waits for the next ready */
    bool install_out;     /* handed out, not yet advanced */

    struct raft_message *msgs;
    size_t n_msgs;
    size_t cap_msgs;
    struct raft_read_state *reads;
    size_t n_reads;
    size_t cap_reads;
    struct raft_proposal_result *results;
    size_t n_results;
    size_t cap_results;
    struct pending_prop *props;
    size_t n_props;
    size_t cap_props;
    struct readonly ro;

    bool ready_out;      /* a ready was returned and not yet advanced */
    uint64_t removed_at; /* leader: index of the committed conf that removed it, else 0 */
    char line[512];
};

/* trace.c */
void raft_trace_event(struct raft *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* raft.c */
int raft_grow_array(void **p, size_t *cap, size_t want, size_t size);
void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader);
void raft_become_pre_candidate(struct raft *r);
void raft_become_candidate(struct raft *r, bool transfer);
int raft_become_leader(struct raft *r);
void raft_reset_election_timer(struct raft *r);
bool raft_self_is_voter(const struct raft *r);
bool raft_self_can_campaign(const struct raft *r);
int raft_send_msg(struct raft *r, struct raft_message *m); /* takes ownership of m's buffers */
int raft_push_read_state(struct raft *r, uint64_t cookie, uint64_t index, int status);
int raft_push_result(struct raft *r, uint64_t cookie, uint64_t index, uint64_t term, int status);
bool raft_committed_in_term(struct raft *r);
void raft_fail_pending(struct raft *r, int status); /* proposals and reads, leader side */

/* election.c */
int raft_election_campaign(struct raft *r, bool pre, bool transfer);
int raft_recv_vote(struct raft *r, const struct raft_message *m);
int raft_recv_vote_resp(struct raft *r, const struct raft_message *m);

/* replicate.c (leader) */
int raft_leader_flush(struct raft *r);
int raft_leader_bcast_heartbeat(struct raft *r);
int raft_leader_maybe_commit(struct raft *r);
int raft_recv_append_resp(struct raft *r, const struct raft_message *m);
int raft_recv_heartbeat_resp(struct raft *r, const struct raft_message *m);
int raft_recv_snapshot_resp(struct raft *r, const struct raft_message *m);
struct progress *raft_tracker_get(struct raft *r, uint64_t id);
int raft_tracker_rebuild(struct raft *r);
void raft_tracker_clear(struct raft *r);

/* recv_append.c (follower) */
int raft_recv_append(struct raft *r, const struct raft_message *m);
int raft_recv_heartbeat(struct raft *r, const struct raft_message *m);
int raft_follower_send_ack(struct raft *r, bool force);

/* recv_snapshot.c (follower) */
int raft_recv_snapshot(struct raft *r, const struct raft_message *m);

/* membership.c */
int raft_membership_init(struct raft *r);
int raft_membership_on_append(struct raft *r, const struct raft_entry *e);
void raft_membership_on_truncate(struct raft *r, uint64_t from_index);
int raft_membership_on_commit(struct raft *r);
void raft_membership_on_restore(struct raft *r, const struct raft_snapshot_meta *meta);
bool raft_membership_change_pending(const struct raft *r);
void raft_membership_close(struct raft *r);

/* read.c */
int raft_read_on_tick(struct raft *r);
int raft_read_maybe_start_round(struct raft *r);
bool raft_read_round_due(struct raft *r);
int raft_read_check_round(struct raft *r);
int raft_recv_read_index(struct raft *r, const struct raft_message *m);
int raft_recv_read_index_resp(struct raft *r, const struct raft_message *m);
void raft_read_fail_forwarded(struct raft *r, int status);

/* transfer.c */
int raft_transfer_on_progress(struct raft *r, struct progress *pr);
int raft_recv_timeout_now(struct raft *r, const struct raft_message *m);
void raft_transfer_abort(struct raft *r, const char *why);

/* ready.c */
int raft_log_append_leader(struct raft *r, uint32_t type, const void *data, size_t len,
                           uint64_t *index);

#endif
