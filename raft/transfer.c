/* raft/transfer.c: leadership transfer (§3.10): catch the target up, then TIMEOUT_NOW. */
#include "impl.h"

void raft_transfer_abort(struct raft *r, const char *why)
{
    if (r->transfer_target == 0) {
        return;
    }
    raft_trace_event(r, "transfer abort to=%llu %s", (unsigned long long)r->transfer_target, why);
    r->transfer_target = 0;
    r->transfer_elapsed = 0;
}

static int send_timeout_now(struct raft *r, uint64_t to)
{
    struct raft_message m = {0};
    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.to = to;
    raft_trace_event(r, "transfer timeout_now to=%llu", (unsigned long long)to);
    return raft_send_msg(r, &m);
}

int raft_transfer_leader(struct raft *r, uint64_t target)
{
    if (r->role != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (target == r->id || !raft_conf_is_voter(&r->conf, target)) {
        return RAFT_EINVAL;
    }
    if (r->transfer_target != 0) {
        return r->transfer_target == target ? 0 : RAFT_ETRANSFER;
    }
    struct progress *pr = raft_tracker_get(r, target);
    if (pr == NULL) {
        return RAFT_EINVAL;
    }
    r->transfer_target = target;
    r->transfer_elapsed = 0;
    raft_trace_event(r, "transfer start to=%llu match=%llu", (unsigned long long)target,
                     (unsigned long long)pr->match);
    return raft_transfer_on_progress(r, pr);
}

int raft_transfer_on_progress(struct raft *r, struct progress *pr)
{
    if (r->transfer_target == 0 || pr->id != r->transfer_target ||
        pr->match != raft_log_last_index(&r->log)) {
        return 0;
    }
    /* The target holds our whole log: it can win an election right away. New proposals are
     * refused meanwhile, so the log does not grow past it again. */
    return send_timeout_now(r, pr->id);
}

int raft_recv_timeout_now(struct raft *r, const struct raft_message *m)
{
    if (r->role == RAFT_LEADER || m->from != r->leader || !raft_self_is_voter(r)) {
        raft_trace_event(r, "ignore timeout_now from=%llu", (unsigned long long)m->from);
        return 0;
    }
    /* Skip PreVote: the leader asked for this election, and the vote requests carry the
     * transfer flag so that members in lease with the old leader do not ignore them. */
    return raft_election_campaign(r, false, true);
}
