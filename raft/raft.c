/* raft/raft.c: lifecycle, role transitions, tick, and the step dispatcher with the term rules. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "impl.h"

const char *raft_strerror(int rc)
{
    switch (rc) {
    case RAFT_OK:
        return "ok";
    case RAFT_ENOTLEADER:
        return "not the leader";
    case RAFT_ETRANSFER:
        return "leadership transfer in progress";
    case RAFT_ECONFPENDING:
        return "a configuration change is pending";
    case RAFT_ENOTREADY:
        return "leader has not committed an entry of its term yet";
    case RAFT_EBUSY:
        return "too many pending requests";
    case RAFT_ELEADERLOST:
        return "leadership lost";
    case RAFT_ETIMEOUT:
        return "forwarded request timed out";
    case RAFT_ECATCHUP:
        return "learner has not caught up";
    case RAFT_EINVAL:
        return "invalid argument";
    case RAFT_ENOMEM:
        return "out of memory";
    case RAFT_ETOOBIG:
        return "proposal too big";
    case RAFT_ECOMPACTED:
        return "entry compacted";
    case RAFT_EUNAVAILABLE:
        return "entry unavailable";
    case RAFT_ESNAPGONE:
        return "snapshot no longer current";
    case RAFT_ECORRUPT:
        return "storage inconsistent";
    case RAFT_ESTORAGE:
        return "storage error";
    }
    return "unknown error";
}

bool raft_error_retryable(int rc)
{
    return rc >= RAFT_ENOTLEADER && rc <= RAFT_ECATCHUP;
}

void raft_config_init(struct raft_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 1;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
    cfg->max_msg_bytes = 1 << 20;
    cfg->max_inflight_msgs = 64;
    cfg->max_inflight_bytes = 8 << 20;
    cfg->max_snapshot_chunk = 256 << 10;
    cfg->max_apply_bytes = 4 << 20;
    cfg->max_pending_reads = 4096;
    cfg->max_read_rounds = 1;
    cfg->max_pending_proposals = 65536;
    cfg->promote_max_lag = 0;
}

int raft_grow_array(void **p, size_t *cap, size_t want, size_t size)
{
    if (want <= *cap) {
        return 0;
    }
    size_t c = *cap ? *cap * 2 : 16;
    while (c < want) {
        c *= 2;
    }
    void *q = realloc(*p, c * size);
    if (q == NULL) {
        return RAFT_ENOMEM;
    }
    *p = q;
    *cap = c;
    return 0;
}

static uint64_t splitmix64(uint64_t *state)
{
    /* splitmix64: deterministic, seeded from the configuration only. */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rng_next(struct raft *r)
{
    return splitmix64(&r->rng);
}

void raft_reset_election_timer(struct raft *r)
{
    r->election_elapsed = 0;
    /* §3.4: randomised in [election_ticks, 2*election_ticks) to split votes rarely. */
    r->randomized_timeout = r->cfg.election_ticks + (uint32_t)(rng_next(r) % r->cfg.election_ticks);
}

bool raft_self_is_voter(const struct raft *r)
{
    return raft_conf_is_voter(&r->conf, r->id);
}

bool raft_self_can_campaign(const struct raft *r)
{
    /* A voter of the latest configuration campaigns; so does a voter of the committed one
     * that the latest (uncommitted) one removes: if the only members that could commit the
     * removal lack it (lost in a crash), they need this member's log to make progress. Votes
     * are still counted in the latest configuration only (§4.1), so this is safe; once the
     * removal is committed here the member stops. */
    return raft_conf_is_voter(&r->conf, r->id) || raft_conf_is_voter(&r->committed_conf, r->id);
}

bool raft_committed_in_term(struct raft *r)
{
    uint64_t t = 0;
    return raft_log_entry_term(&r->log, r->log.committed, &t) == 0 && t == r->term;
}

static void message_free(struct raft_message *m)
{
    raft_entries_free(m->entries, m->n_entries);
    free(m->data);
    m->entries = NULL;
    m->data = NULL;
}

int raft_send_msg(struct raft *r, struct raft_message *m)
{
    m->from = r->id;
    if (m->term == 0) {
        m->term = r->term;
    }
    int rc = raft_grow_array((void **)&r->msgs, &r->cap_msgs, r->n_msgs + 1, sizeof(*r->msgs));
    if (rc != 0) {
        message_free(m);
        return rc;
    }
    r->msgs[r->n_msgs++] = *m;
    return 0;
}

int raft_push_read_state(struct raft *r, uint64_t cookie, uint64_t index, int status)
{
    int rc = raft_grow_array((void **)&r->reads, &r->cap_reads, r->n_reads + 1, sizeof(*r->reads));
    if (rc != 0) {
        return rc;
    }
    r->reads[r->n_reads].cookie = cookie;
    r->reads[r->n_reads].index = index;
    r->reads[r->n_reads].status = status;
    r->n_reads++;
    raft_trace_event(r, "read_state cookie=%llu index=%llu status=%d", (unsigned long long)cookie,
                     (unsigned long long)index, status);
    return 0;
}

int raft_push_result(struct raft *r, uint64_t cookie, uint64_t index, uint64_t term, int status)
{
    int rc = raft_grow_array((void **)&r->results, &r->cap_results, r->n_results + 1,
                             sizeof(*r->results));
    if (rc != 0) {
        return rc;
    }
    struct raft_proposal_result *res = &r->results[r->n_results++];
    res->cookie = cookie;
    res->index = index;
    res->term = term;
    res->status = status;
    return 0;
}

void raft_fail_pending(struct raft *r, int status)
{
    for (size_t i = 0; i < r->n_props; i++) {
        raft_push_result(r, r->props[i].cookie, r->props[i].index, r->props[i].term, status);
    }
    if (r->n_props > 0) {
        raft_trace_event(r, "proposals_failed n=%zu status=%d", r->n_props, status);
    }
    r->n_props = 0;
    struct readonly *ro = &r->ro;
    for (uint32_t k = 0; k <= ro->n_rounds; k++) {
        const struct read_round *rr = k < ro->n_rounds ? raft_readonly_round_at(ro, k) : NULL;
        const struct read_req *reqs = rr ? rr->reqs : ro->wait;
        size_t n = rr ? rr->n : ro->n_wait;
        for (size_t i = 0; i < n; i++) {
            if (reqs[i].from == 0) {
                raft_push_read_state(r, reqs[i].cookie, 0, status);
            } else {
                struct raft_message m = {0};
                m.type = RAFT_MSG_READ_INDEX_RESP;
                m.to = reqs[i].from;
                m.context = reqs[i].context;
                m.reject = true;
                raft_send_msg(r, &m);
            }
        }
    }
    raft_readonly_reset(ro);
}

/* Legal role transitions (see impl.h). */
__attribute__((unused)) static bool transition_legal(enum raft_role from, enum raft_role to)
{
    static const bool table[4][4] = {
        /* to:            F     P      C      L */
        /* F */ {true, true, true, false},
        /* P */ {true, true, true, false},
        /* C */ {true, true, true, true},
        /* L */ {true, false, false, false},
    };
    return table[from][to];
}

void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader)
{
    assert(transition_legal(r->role, RAFT_FOLLOWER));
    assert(term >= r->term);
    if (r->role == RAFT_LEADER) {
        /* Trap 14 and 13: every pending proposal and read fails with a retryable error and
         * every per-follower window is released with the tracker. */
        raft_fail_pending(r, RAFT_ELEADERLOST);
        raft_tracker_clear(r);
        r->transfer_target = 0;
        r->transfer_elapsed = 0;
        r->removed_at = 0;
    }
    if (term != r->term || leader != r->leader || r->role != RAFT_FOLLOWER) {
        r->ack_index = 0;
        r->acked_index = 0;
    }
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
    if (leader != r->leader) {
        raft_read_fail_forwarded(r, RAFT_ENOTLEADER);
    }
    /* A follower that only learns a higher term from a candidate it may reject keeps its
     * election timer running: otherwise two candidates with stale logs that keep bumping the
     * term would forever silence the members that hold the longer logs (no PreVote). */
    bool restart_timer = r->role != RAFT_FOLLOWER || leader != 0;
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->campaign_transfer = false;
    if (restart_timer) {
        raft_reset_election_timer(r);
    }
    raft_trace_event(r, "become follower leader=%llu", (unsigned long long)leader);
}

static void votes_reset(struct raft *r)
{
    r->n_votes_yes = 0;
    r->n_votes_no = 0;
    r->votes_yes[r->n_votes_yes++] = r->id;
}

void raft_become_pre_candidate(struct raft *r)
{
    assert(transition_legal(r->role, RAFT_PRE_CANDIDATE));
    r->role = RAFT_PRE_CANDIDATE;
    r->leader = 0;
    raft_read_fail_forwarded(r, RAFT_ENOTLEADER);
    votes_reset(r);
    raft_reset_election_timer(r);
    raft_trace_event(r, "become pre-candidate");
}

void raft_become_candidate(struct raft *r, bool transfer)
{
    assert(transition_legal(r->role, RAFT_CANDIDATE));
    r->term++;
    r->vote = r->id;
    r->role = RAFT_CANDIDATE;
    r->leader = 0;
    r->campaign_transfer = transfer;
    r->ack_index = 0;
    r->acked_index = 0;
    raft_read_fail_forwarded(r, RAFT_ENOTLEADER);
    votes_reset(r);
    raft_reset_election_timer(r);
    raft_trace_event(r, "become candidate%s", transfer ? " transfer" : "");
}

int raft_become_leader(struct raft *r)
{
    assert(transition_legal(r->role, RAFT_LEADER));
    assert(r->n_props == 0 && raft_readonly_pending(&r->ro) == 0);
    r->role = RAFT_LEADER;
    r->leader = r->id;
    r->heartbeat_elapsed = 0;
    r->election_elapsed = 0;
    r->transfer_target = 0;
    r->removed_at = 0;
    int rc = raft_tracker_rebuild(r);
    if (rc != 0) {
        return rc;
    }
    raft_trace_event(r, "become leader last=%llu",
                     (unsigned long long)raft_log_last_index(&r->log));
    /* §8: a no-op of the new term lets the leader learn what is committed and is the first
     * entry it may commit by counting (trap 1). */
    uint64_t index = 0;
    return raft_log_append_leader(r, RAFT_ENTRY_NOOP, NULL, 0, &index);
}

static int load_state(struct raft *r)
{
    struct raft_storage *st = &r->cfg.storage;
    struct raft_hard_state hs = {0};
    struct raft_snapshot_meta snap;
    memset(&snap, 0, sizeof(snap));
    int rc = st->hard_state(st->ctx, &hs);
    if (rc != 0) {
        return rc;
    }
    rc = st->snapshot_meta(st->ctx, &snap);
    if (rc != 0) {
        return rc;
    }
    rc = raft_log_init(&r->log, st);
    if (rc != 0) {
        return rc;
    }
    uint64_t last = raft_log_last_index(&r->log);
    if (last < snap.index || (snap.index > 0 && !raft_conf_valid(&snap.conf, false))) {
        return RAFT_ECORRUPT;
    }
    r->term = hs.term;
    r->vote = hs.vote;
    uint64_t commit = hs.commit > snap.index ? hs.commit : snap.index;
    /* The commit index may have been made durable ahead of entries that were then lost in
     * a crash (they were never acknowledged, so others hold them): clamp. */
    if (commit > last) {
        commit = last;
    }
    uint64_t applied = r->cfg.applied > snap.index ? r->cfg.applied : snap.index;
    if (applied > last) {
        return RAFT_ECORRUPT;
    }
    if (commit < applied) {
        commit = applied;
    }
    r->log.committed = commit;
    r->log.applied = applied;
    r->last_hs.term = r->term;
    r->last_hs.vote = r->vote;
    r->last_hs.commit = hs.commit;
    rc = raft_membership_init(r);
    if (rc != 0) {
        return rc;
    }
    bool fresh = hs.term == 0 && hs.vote == 0 && last == 0 && snap.index == 0;
    if (fresh && r->cfg.bootstrap.n_voters > 0) {
        /* The founding configuration becomes entry 1 of term 1, identical on every founder
         * (same bootstrap), committed by construction. */
        uint8_t buf[4 + 8 * 3 * RAFT_CONF_MAX];
        raft_conf_encode(&r->cfg.bootstrap, buf);
        struct raft_entry e = {.term = 1,
                               .index = 1,
                               .type = RAFT_ENTRY_CONF,
                               .len = (uint32_t)raft_conf_encoded_size(&r->cfg.bootstrap),
                               .data = buf};
        r->term = 1;
        rc = raft_log_append(&r->log, &e, 1);
        if (rc != 0) {
            return rc;
        }
        rc = raft_membership_on_append(r, &e);
        if (rc != 0) {
            return rc;
        }
        r->log.committed = 1;
        rc = raft_membership_on_commit(r);
        if (rc != 0) {
            return rc;
        }
    }
    return r->log.err;
}

int raft_new(const struct raft_config *cfg, struct raft **out)
{
    int rc = 0;
    *out = NULL;
    const struct raft_storage *st = &cfg->storage;
    if (cfg->id == 0 || st->hard_state == NULL || st->first_index == NULL ||
        st->last_index == NULL || st->term == NULL || st->entries == NULL ||
        st->snapshot_meta == NULL || st->snapshot_read == NULL ||
        !raft_conf_valid(&cfg->bootstrap, true)) {
        return RAFT_EINVAL;
    }
    struct raft *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return RAFT_ENOMEM;
    }
    struct raft_config def;
    raft_config_init(&def);
    r->cfg = *cfg;
    if (r->cfg.election_ticks == 0) {
        r->cfg.election_ticks = def.election_ticks;
    }
    if (r->cfg.heartbeat_ticks == 0) {
        r->cfg.heartbeat_ticks = def.heartbeat_ticks;
    }
    if (r->cfg.heartbeat_ticks >= r->cfg.election_ticks) {
        rc = RAFT_EINVAL;
        goto err_free;
    }
#define DEFAULT(f)                                                                                 \
    do {                                                                                           \
        if (r->cfg.f == 0) {                                                                       \
            r->cfg.f = def.f;                                                                      \
        }                                                                                          \
    } while (0)
    DEFAULT(max_msg_bytes);
    DEFAULT(max_inflight_msgs);
    DEFAULT(max_inflight_bytes);
    DEFAULT(max_snapshot_chunk);
    DEFAULT(max_apply_bytes);
    DEFAULT(max_pending_reads);
    DEFAULT(max_read_rounds);
    DEFAULT(max_pending_proposals);
#undef DEFAULT
    if (r->cfg.max_read_rounds > RAFT_READ_ROUNDS_MAX) {
        rc = RAFT_EINVAL;
        goto err_free;
    }
    r->id = cfg->id;
    r->rng = cfg->seed ^ (cfg->id * 0xD6E8FEB86659FD93ull);
    r->role = RAFT_FOLLOWER;
    /* Drawn from a copy of the generator so that the election timeouts stay as they were. */
    uint64_t fwd_rng = r->rng ^ 0x5DEECE66Dull;
    raft_readonly_init(&r->ro, splitmix64(&fwd_rng));
    rc = load_state(r);
    if (rc != 0) {
        goto err_state;
    }
    raft_reset_election_timer(r);
    raft_trace_event(r, "start commit=%llu applied=%llu last=%llu",
                     (unsigned long long)r->log.committed, (unsigned long long)r->log.applied,
                     (unsigned long long)raft_log_last_index(&r->log));
    *out = r;
    return 0;
err_state:
    raft_membership_close(r);
    raft_log_close(&r->log);
    raft_readonly_close(&r->ro);
err_free:
    free(r);
    return rc;
}

void raft_free(struct raft *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n_msgs; i++) {
        message_free(&r->msgs[i]);
    }
    free(r->msgs);
    free(r->reads);
    free(r->results);
    free(r->props);
    free(r->chunk.data);
    raft_tracker_clear(r);
    raft_membership_close(r);
    raft_readonly_close(&r->ro);
    raft_log_close(&r->log);
    free(r);
}

static bool quorum_active(struct raft *r)
{
    uint32_t yes = 0, yes_old = 0;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        bool active = pr->id == r->id || pr->recent_active;
        if (active && raft_conf_set_has(r->conf.voters, r->conf.n_voters, pr->id)) {
            yes++;
        }
        if (active && raft_conf_set_has(r->conf.voters_old, r->conf.n_voters_old, pr->id)) {
            yes_old++;
        }
    }
    bool ok = yes >= r->conf.n_voters / 2 + 1;
    if (r->conf.n_voters_old > 0) {
        ok = ok && yes_old >= r->conf.n_voters_old / 2 + 1;
    }
    return ok;
}

static int tick_leader(struct raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->transfer_target != 0) {
        r->transfer_elapsed++;
    }
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum) {
            bool ok = quorum_active(r);
            for (uint32_t i = 0; i < r->n_prs; i++) {
                r->prs[i].recent_active = false;
            }
            if (!ok) {
                /* §6.2: without hearing from a majority for an election timeout the leader
                 * steps down, so clients can find the real leader. */
                raft_trace_event(r, "check_quorum failed");
                raft_become_follower(r, r->term, 0);
                return 0;
            }
        }
        if (r->transfer_target != 0 && r->transfer_elapsed >= r->cfg.election_ticks) {
            raft_transfer_abort(r, "timeout");
        }
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        return raft_leader_bcast_heartbeat(r);
    }
    return 0;
}

int raft_tick(struct raft *r)
{
    int rc = 0;
    if (r->role == RAFT_LEADER) {
        rc = tick_leader(r);
    } else {
        r->election_elapsed++;
        rc = raft_read_on_tick(r);
        if (rc == 0 && raft_self_can_campaign(r) && r->election_elapsed >= r->randomized_timeout) {
            rc = raft_election_campaign(r, r->cfg.pre_vote, false);
        }
    }
    return rc != 0 ? rc : r->log.err;
}

bool raft_advance_election(struct raft *r, uint32_t ticks)
{
    if (r->role != RAFT_FOLLOWER || r->leader != 0)
        return false;
    r->election_elapsed += ticks;
    return true;
}

static bool from_leader_type(uint32_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT || type == RAFT_MSG_SNAPSHOT;
}

/* Handles a message whose term is below ours. */
static int step_stale(struct raft *r, const struct raft_message *m)
{
    struct raft_message resp = {0};
    resp.to = m->from;
    if (from_leader_type(m->type)) {
        /* A deposed leader (e.g. back from a partition) learns the newer term from the
         * answer and steps down; without it, with PreVote and CheckQuorum, it could keep
         * others from ever hearing from it again. */
        resp.type = RAFT_MSG_APPEND_RESP;
        resp.reject = true;
        return raft_send_msg(r, &resp);
    }
    if (m->type == RAFT_MSG_PREVOTE) {
        resp.type = RAFT_MSG_PREVOTE_RESP;
        resp.reject = true;
        return raft_send_msg(r, &resp);
    }
    raft_trace_event(r, "ignore stale type=%u from=%llu term=%llu", m->type,
                     (unsigned long long)m->from, (unsigned long long)m->term);
    return 0;
}

/* §4.2.3 leader stickiness: heard from a leader within the minimum election timeout. Kept
 * independent of CheckQuorum so that a removed member that never learned of its removal
 * cannot depose a healthy leader even when PreVote and CheckQuorum are off. */
static bool in_lease(const struct raft *r)
{
    return r->leader != 0 && r->election_elapsed < r->cfg.election_ticks;
}

int raft_step(struct raft *r, const struct raft_message *m)
{
    int rc = 0;
    if (m->type == 0 || m->type > RAFT_MSG_TYPE_MAX || m->from == 0 || m->from == r->id ||
        m->to != r->id || m->term == 0 || m->term > RAFT_PEER_MAX) {
        raft_trace_event(r, "ignore malformed type=%u from=%llu", m->type,
                         (unsigned long long)m->from);
        return 0;
    }
    if (m->term > r->term) {
        bool vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
        if (vote_req && !m->transfer && in_lease(r)) {
            /* §4.2.3 / §9.6: a member that hears from a live leader ignores campaigns, so a
             * rejoining member cannot disrupt the cluster. TIMEOUT_NOW campaigns bypass this
             * (trap 10). */
            raft_trace_event(r, "ignore %s from=%llu in lease",
                             m->type == RAFT_MSG_VOTE ? "vote" : "prevote",
                             (unsigned long long)m->from);
            return 0;
        }
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* A pre-vote never changes terms: the request carries term+1 of the
             * candidate, a grant carries the requested term. */
        } else {
            raft_become_follower(r, m->term, from_leader_type(m->type) ? m->from : 0);
        }
    } else if (m->term < r->term) {
        rc = step_stale(r, m);
        return rc != 0 ? rc : r->log.err;
    }

    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        if (r->role == RAFT_LEADER) {
            raft_trace_event(r, "ignore second leader=%llu", (unsigned long long)m->from);
            break;
        }
        if (r->role != RAFT_FOLLOWER || r->leader == 0) {
            raft_become_follower(r, r->term, m->from);
        } else if (r->leader != m->from) {
            raft_trace_event(r, "ignore leader=%llu known=%llu", (unsigned long long)m->from,
                             (unsigned long long)r->leader);
            break;
        }
        r->election_elapsed = 0;
        if (m->type == RAFT_MSG_APPEND) {
            rc = raft_recv_append(r, m);
        } else if (m->type == RAFT_MSG_HEARTBEAT) {
            rc = raft_recv_heartbeat(r, m);
        } else {
            rc = raft_recv_snapshot(r, m);
        }
        break;
    case RAFT_MSG_APPEND_RESP:
        rc = raft_recv_append_resp(r, m);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        rc = raft_recv_heartbeat_resp(r, m);
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        rc = raft_recv_snapshot_resp(r, m);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        rc = raft_recv_vote(r, m);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        rc = raft_recv_vote_resp(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        rc = raft_recv_timeout_now(r, m);
        break;
    case RAFT_MSG_READ_INDEX:
        rc = raft_recv_read_index(r, m);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        rc = raft_recv_read_index_resp(r, m);
        break;
    default:
        break;
    }
    return rc != 0 ? rc : r->log.err;
}

int raft_propose(struct raft *r, const void *data, size_t len, uint64_t cookie, uint64_t *index,
                 uint64_t *term)
{
    uint64_t idx = 0;
    if (r->role != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (r->transfer_target != 0) {
        return RAFT_ETRANSFER;
    }
    if (len > r->cfg.max_msg_bytes || len > UINT32_MAX) {
        return RAFT_ETOOBIG;
    }
    if (cookie != 0 && r->n_props >= r->cfg.max_pending_proposals) {
        return RAFT_EBUSY;
    }
    int rc = raft_log_append_leader(r, RAFT_ENTRY_NORMAL, data, len, &idx);
    if (rc != 0) {
        return rc;
    }
    if (cookie != 0) {
        rc = raft_grow_array((void **)&r->props, &r->cap_props, r->n_props + 1, sizeof(*r->props));
        if (rc != 0) {
            return rc;
        }
        r->props[r->n_props].cookie = cookie;
        r->props[r->n_props].index = idx;
        r->props[r->n_props].term = r->term;
        r->n_props++;
    }
    if (index != NULL) {
        *index = idx;
    }
    if (term != NULL) {
        *term = r->term;
    }
    return 0;
}

uint64_t raft_id(const struct raft *r)
{
    return r->id;
}

enum raft_role raft_role(const struct raft *r)
{
    return r->role;
}

uint64_t raft_term(const struct raft *r)
{
    return r->term;
}

uint64_t raft_leader(const struct raft *r)
{
    return r->leader;
}

uint64_t raft_commit_index(const struct raft *r)
{
    return r->log.committed;
}

uint64_t raft_last_index(const struct raft *r)
{
    return raft_log_last_index(&r->log);
}

uint64_t raft_applied_index(const struct raft *r)
{
    return r->log.applied;
}

const struct raft_conf *raft_conf(const struct raft *r)
{
    return &r->conf;
}

const struct raft_conf *raft_conf_committed(const struct raft *r)
{
    return &r->committed_conf;
}

bool raft_conf_changing(const struct raft *r)
{
    return raft_membership_change_pending(r);
}

int raft_member_match(const struct raft *r, uint64_t id, uint64_t *match)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == id) {
            *match = r->prs[i].match;
            return 0;
        }
    }
    return RAFT_EINVAL;
}

int raft_log_term(struct raft *r, uint64_t index, uint64_t *term)
{
    return raft_log_entry_term(&r->log, index, term);
}
