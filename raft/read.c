/* raft/read.c: ReadIndex (§6.4): rounds on the leader, forwarding on followers, failure paths. */
#include "impl.h"
#include "quorum.h"

bool raft_read_round_due(struct raft *r)
{
    struct readonly *ro = &r->ro;
    return r->role == RAFT_LEADER && ro->n_wait > 0 && ro->n_rounds < r->cfg.max_read_rounds &&
           raft_committed_in_term(r);
}

static bool in_ids(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* Did member id forward one of the round's reads? */
static bool forwarded_by(const struct read_round *rr, uint64_t id)
{
    for (size_t i = 0; i < rr->n; i++) {
        if (rr->reqs[i].from == id) {
            return true;
        }
    }
    return false;
}

/* Whom a round asks: with a single configuration whose voters include the leader, only as
 * many voters as a majority needs besides the leader, those whose latest answer is to the
 * newest context (the ones asked last time, most likely: they are up and answering); every
 * other member's answer would cost it a wake-up and change nothing. Those go to to[] (at most
 * RAFT_CONF_MAX - 1) and the count is returned. Any other case, or with read_round_all: *all,
 * every peer (up to three configurations' worth, more than to[] holds). Safety does not
 * depend on the choice: a round still ends only with a majority's answers to its context.
 * Liveness: should the ones asked not answer, the next tick's heartbeats
 * (raft_leader_heartbeat) carry the newest context to every peer, and those that answer it
 * are asked first from then on. */
static uint32_t read_round_targets(struct raft *r, uint64_t *to, bool *all)
{
    const struct raft_conf *c = &r->conf;
    *all = r->cfg.read_round_all || c->n_voters_old > 0 || !raft_conf_is_voter(c, r->id);
    if (*all) {
        return 0;
    }
    uint32_t n = 0;
    uint32_t need = c->n_voters / 2; /* a majority is need + 1, the leader one of them */
    for (uint32_t i = 0; i < c->n_voters; i++) {
        uint64_t id = c->voters[i];
        if (id == r->id || raft_tracker_get(r, id) == NULL) {
            continue;
        }
        /* Insertion by acknowledged context, newest first; ties keep the voters' order. */
        uint64_t acked = raft_readonly_acked(&r->ro, id);
        uint32_t k = n;
        while (k > 0 && raft_readonly_acked(&r->ro, to[k - 1]) < acked) {
            to[k] = to[k - 1];
            k--;
        }
        to[k] = id;
        n++;
    }
    return n < need ? n : need;
}

int raft_read_maybe_start_round(struct raft *r)
{
    struct readonly *ro = &r->ro;
    if (r->role != RAFT_LEADER || ro->n_wait == 0 || ro->n_rounds >= r->cfg.max_read_rounds) {
        return 0;
    }
#ifndef RAFT_MUTATE_READ_BEFORE_NOOP
    if (!raft_committed_in_term(r)) {
        /* Trap 1: until its no-op commits, the leader's commit index may be behind the
         * one a previous leader already answered reads with. */
        return 0;
    }
#endif
    size_t n = ro->n_wait;
    uint64_t ctx = raft_readonly_round_start(ro, r->log.committed);
    raft_trace_event(r, "read round ctx=%llu index=%llu n=%zu", (unsigned long long)ctx,
                     (unsigned long long)r->log.committed, n);
#ifdef RAFT_MUTATE_READ_NO_ROUND
    for (uint32_t i = 0; i < r->n_prs; i++) {
        raft_readonly_ack(ro, r->prs[i].id, ctx);
    }
#endif
    int rc = raft_read_check_round(r);
    if (rc != 0 || raft_readonly_newest_ctx(ro) != ctx) {
        return rc; /* done already (a single voter) */
    }
    /* Heartbeats carrying the context confirm that we are still the leader (trap 2). A
     * member that forwarded one of the round's reads gets one too, asked or not: its
     * commit index must reach the read index before it can serve the read, and the
     * heartbeat carries it (else it waits for the next append or tick). */
    uint64_t to[RAFT_CONF_MAX];
    bool all;
    uint32_t n_to = read_round_targets(r, to, &all);
    const struct read_round *rr = raft_readonly_round_at(ro, ro->n_rounds - 1);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->id == r->id || (!all && !in_ids(to, n_to, pr->id) && !forwarded_by(rr, pr->id))) {
            continue;
        }
        struct raft_message m = {0};
        m.type = RAFT_MSG_HEARTBEAT;
        m.to = pr->id;
        m.commit = pr->match < r->log.committed ? pr->match : r->log.committed;
        m.context = ctx;
        rc = raft_send_msg(r, &m);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Has a quorum answered ctx, or a later context? The leader counts itself. */
static bool round_confirmed(struct raft *r, uint64_t ctx)
{
    const struct raft_conf *c = &r->conf;
    uint32_t yes = 0, yes_old = 0;
    for (int half = 0; half < 2; half++) {
        const uint64_t *ids = half == 0 ? c->voters : c->voters_old;
        uint32_t n = half == 0 ? c->n_voters : c->n_voters_old;
        uint32_t *count = half == 0 ? &yes : &yes_old;
        for (uint32_t i = 0; i < n; i++) {
#ifndef RAFT_MUTATE_READ_ACK_ANY_ROUND
            *count += ids[i] == r->id || raft_readonly_acked(&r->ro, ids[i]) >= ctx;
#else
            *count += ids[i] == r->id || raft_readonly_acked(&r->ro, ids[i]) != 0;
#endif
        }
    }
    return raft_quorum_joint_vote(raft_quorum_majority_vote(c->n_voters, yes, 0),
                                  raft_quorum_majority_vote(c->n_voters_old, yes_old, 0)) ==
           QUORUM_WON;
}

int raft_read_check_round(struct raft *r)
{
    struct readonly *ro = &r->ro;
    int rc = 0;
    /* Oldest first: a quorum for a round is one for every older round too. */
    struct read_round *rr;
    while (rc == 0 && (rr = raft_readonly_round_front(ro)) != NULL && round_confirmed(r, rr->ctx)) {
        for (size_t i = 0; i < rr->n && rc == 0; i++) {
            struct read_req *q = &rr->reqs[i];
            if (q->from == 0) {
                rc = raft_push_read_state(r, q->cookie, rr->index, 0);
            } else {
                struct raft_message m = {0};
                m.type = RAFT_MSG_READ_INDEX_RESP;
                m.to = q->from;
                m.context = q->context;
                m.index = rr->index;
                rc = raft_send_msg(r, &m);
            }
        }
        raft_trace_event(r, "read round done ctx=%llu", (unsigned long long)rr->ctx);
        raft_readonly_round_pop(ro);
    }
    return rc;
}

int raft_read_index(struct raft *r, uint64_t cookie)
{
    struct readonly *ro = &r->ro;
    if (raft_readonly_pending(ro) >= r->cfg.max_pending_reads) {
        return RAFT_EBUSY;
    }
    if (r->role == RAFT_LEADER) {
        /* The round starts in raft_ready(): every read of this turn shares it. */
        struct read_req q = {.cookie = cookie, .from = 0, .context = 0};
        return raft_readonly_wait_add(ro, &q);
    }
    if (r->leader == 0) {
        return RAFT_ENOTLEADER;
    }
    uint64_t ctx = 0;
    int rc = raft_readonly_fwd_add(ro, cookie, r->leader, &ctx);
    if (rc != 0) {
        return rc;
    }
    struct raft_message m = {0};
    m.type = RAFT_MSG_READ_INDEX;
    m.to = r->leader;
    m.context = ctx;
    return raft_send_msg(r, &m);
}

bool raft_leader_commit_point(struct raft *r, uint64_t *index)
{
    if (r->role != RAFT_LEADER || !raft_committed_in_term(r)) {
        return false;
    }
    *index = r->log.committed;
    return true;
}

int raft_recv_read_index(struct raft *r, const struct raft_message *m)
{
    /* A member outside the configuration (e.g. removed while partitioned) would wait
     * forever for an index it never receives: refuse, it retries elsewhere. */
    if (r->role != RAFT_LEADER || raft_tracker_get(r, m->from) == NULL ||
        raft_readonly_pending(&r->ro) >= r->cfg.max_pending_reads) {
        struct raft_message resp = {0};
        resp.type = RAFT_MSG_READ_INDEX_RESP;
        resp.to = m->from;
        resp.context = m->context;
        resp.reject = true;
        return raft_send_msg(r, &resp);
    }
    struct read_req q = {.cookie = 0, .from = m->from, .context = m->context};
    return raft_readonly_wait_add(&r->ro, &q);
}

int raft_recv_read_index_resp(struct raft *r, const struct raft_message *m)
{
    struct fwd_read f;
    if (!raft_readonly_fwd_take(&r->ro, m->context, &f)) {
        return 0;
    }
    if (m->reject || f.leader != m->from) {
        return raft_push_read_state(r, f.cookie, 0, RAFT_ENOTLEADER);
    }
    return raft_push_read_state(r, f.cookie, m->index, 0);
}

void raft_read_fail_forwarded(struct raft *r, int status)
{
    struct readonly *ro = &r->ro;
    for (size_t i = 0; i < ro->n_fwd; i++) {
        raft_push_read_state(r, ro->fwd[i].cookie, 0, status);
    }
    ro->n_fwd = 0;
}

int raft_read_on_tick(struct raft *r)
{
    struct readonly *ro = &r->ro;
    size_t keep = 0;
    int rc = 0;
    for (size_t i = 0; i < ro->n_fwd; i++) {
        ro->fwd[i].age_ticks++;
        if (ro->fwd[i].age_ticks >= 2 * r->cfg.election_ticks) {
            rc = rc ? rc : raft_push_read_state(r, ro->fwd[i].cookie, 0, RAFT_ETIMEOUT);
        } else {
            ro->fwd[keep++] = ro->fwd[i];
        }
    }
    ro->n_fwd = keep;
    return rc;
}
