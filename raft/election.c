/* raft/election.c: campaigns (PreVote and Vote), granting votes, and counting them (§3.4, §9.6). */
#include <assert.h>
#include <string.h>

#include "impl.h"
#include "quorum.h"

static enum quorum_result tally(struct raft *r)
{
    const struct raft_conf *c = &r->conf;
    enum quorum_result res[2];
    for (int half = 0; half < 2; half++) {
        const uint64_t *ids = half == 0 ? c->voters : c->voters_old;
        uint32_t n = half == 0 ? c->n_voters : c->n_voters_old;
        uint32_t yes = 0, no = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (raft_conf_set_has(r->votes_yes, r->n_votes_yes, ids[i])) {
                yes++;
            } else if (raft_conf_set_has(r->votes_no, r->n_votes_no, ids[i])) {
                no++;
            }
        }
        res[half] = raft_quorum_majority_vote(n, yes, no);
    }
    return raft_quorum_joint_vote(res[0], res[1]);
}

int raft_election_campaign(struct raft *r, bool pre, bool transfer)
{
    assert(r->role != RAFT_LEADER);
    if (!raft_self_can_campaign(r)) {
        return 0;
    }
    uint32_t type;
    uint64_t term;
    if (pre) {
        raft_become_pre_candidate(r);
        type = RAFT_MSG_PREVOTE;
        term = r->term + 1;
    } else {
        raft_become_candidate(r, transfer);
        type = RAFT_MSG_VOTE;
        term = r->term;
    }
    enum quorum_result res = tally(r);
    if (res == QUORUM_WON) {
        /* A single-voter configuration wins at once. */
        return pre ? raft_election_campaign(r, false, transfer) : raft_become_leader(r);
    }
    uint64_t ids[3 * RAFT_CONF_MAX];
    uint32_t n = raft_conf_all_ids(&r->conf, ids);
    uint64_t last_index = raft_log_last_index(&r->log);
    uint64_t last_term = raft_log_last_term(&r->log);
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == r->id || !raft_conf_is_voter(&r->conf, ids[i])) {
            continue;
        }
        struct raft_message m = {0};
        m.type = type;
        m.to = ids[i];
        m.term = term;
        m.last_index = last_index;
        m.last_term = last_term;
        m.transfer = transfer;
        int rc = raft_send_msg(r, &m);
        if (rc != 0) {
            return rc;
        }
    }
    raft_trace_event(r, "campaign %s term=%llu last=%llu/%llu", pre ? "prevote" : "vote",
                     (unsigned long long)term, (unsigned long long)last_index,
                     (unsigned long long)last_term);
    return 0;
}

int raft_recv_vote(struct raft *r, const struct raft_message *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can_vote;
    if (pre) {
        /* Granting a pre-vote promises nothing: the member would vote in that term. */
        can_vote = m->term > r->term || r->vote == m->from || (r->vote == 0 && r->leader == 0);
    } else {
        /* §3.4: at most one vote per term (the vote is persisted before the answer leaves). */
        can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0);
#ifdef RAFT_MUTATE_DOUBLE_VOTE
        can_vote = true;
#endif
    }
    bool up_to_date = raft_log_is_up_to_date(&r->log, m->last_index, m->last_term);
    struct raft_message resp = {0};
    resp.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    resp.to = m->from;
    if (can_vote && up_to_date) {
        if (pre) {
            /* Trap 10: the grant carries the request's term, so the pre-candidate can match
             * it to its campaign; our own term does not change. */
            resp.term = m->term;
        } else {
            r->vote = m->from;
            raft_reset_election_timer(r);
        }
        raft_trace_event(r, "grant %s to=%llu", pre ? "prevote" : "vote",
                         (unsigned long long)m->from);
    } else {
        resp.reject = true;
        raft_trace_event(r, "reject %s to=%llu vote=%llu up_to_date=%d", pre ? "prevote" : "vote",
                         (unsigned long long)m->from, (unsigned long long)r->vote, up_to_date);
    }
    return raft_send_msg(r, &resp);
}

int raft_recv_vote_resp(struct raft *r, const struct raft_message *m)
{
    if (m->type == RAFT_MSG_PREVOTE_RESP) {
        if (r->role != RAFT_PRE_CANDIDATE || (!m->reject && m->term != r->term + 1)) {
            return 0;
        }
    } else if (r->role != RAFT_CANDIDATE || m->term != r->term) {
        return 0;
    }
    if (!raft_conf_is_voter(&r->conf, m->from) ||
        raft_conf_set_has(r->votes_yes, r->n_votes_yes, m->from) ||
        raft_conf_set_has(r->votes_no, r->n_votes_no, m->from)) {
        return 0;
    }
    if (m->reject) {
        r->votes_no[r->n_votes_no++] = m->from;
    } else {
        r->votes_yes[r->n_votes_yes++] = m->from;
    }
    enum quorum_result res = tally(r);
    if (res == QUORUM_WON) {
        if (r->role == RAFT_PRE_CANDIDATE) {
            return raft_election_campaign(r, false, r->campaign_transfer);
        }
        return raft_become_leader(r);
    }
    if (res == QUORUM_LOST) {
        raft_trace_event(r, "campaign lost");
        raft_become_follower(r, r->term, 0);
    }
    return 0;
}
