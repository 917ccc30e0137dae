/* raft/check.c: raft_check(), the check-everything invariant function the simulator runs after each
 * step. */
#include <stdarg.h>
#include <stdio.h>

#include "impl.h"

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t len, const char *fmt, ...)
{
    if (why != NULL && len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            return fail(why, why_len, __VA_ARGS__);                                                \
        }                                                                                          \
    } while (0)

static int check_log(const struct raft *r, char *why, size_t why_len)
{
    const struct raft_log *l = &r->log;
    uint64_t last = l->stable + l->n;
    CHECK(l->err == 0, "storage error %d", l->err);
    CHECK(l->applied <= l->committed, "applied %llu > committed %llu",
          (unsigned long long)l->applied, (unsigned long long)l->committed);
    CHECK(l->applied <= l->stable, "applied %llu > stable %llu", (unsigned long long)l->applied,
          (unsigned long long)l->stable);
    CHECK(l->committed <= last, "committed %llu > last %llu", (unsigned long long)l->committed,
          (unsigned long long)last);
    CHECK(l->stable <= l->handed && l->handed <= last, "stable %llu handed %llu last %llu",
          (unsigned long long)l->stable, (unsigned long long)l->handed, (unsigned long long)last);
    for (size_t i = 0; i < l->n; i++) {
        CHECK(l->ents[i].index == l->stable + 1 + i, "unstable entry %zu has index %llu", i,
              (unsigned long long)l->ents[i].index);
        CHECK(i == 0 || l->ents[i].term >= l->ents[i - 1].term, "terms decrease at %llu",
              (unsigned long long)l->ents[i].index);
        CHECK(l->ents[i].term <= r->term, "entry %llu has future term %llu",
              (unsigned long long)l->ents[i].index, (unsigned long long)l->ents[i].term);
    }
    CHECK(l->has_snap == (r->install_pending || r->install_out), "pending snapshot flags disagree");
    return 0;
}

static int check_conf(const struct raft *r, char *why, size_t why_len)
{
    CHECK(raft_conf_valid(&r->conf, true), "invalid configuration");
    CHECK(r->committed_conf_index <= r->log.committed, "committed conf index %llu > commit",
          (unsigned long long)r->committed_conf_index);
    for (size_t i = 0; i < r->n_conf_log; i++) {
        CHECK(r->conf_log[i].index > r->log.committed, "conf log entry %llu not above commit",
              (unsigned long long)r->conf_log[i].index);
        CHECK(i == 0 || r->conf_log[i].index > r->conf_log[i - 1].index, "conf log unordered");
        CHECK(r->conf_log[i].index <= r->log.stable + r->log.n, "conf log beyond last");
    }
    const struct raft_conf *want =
        r->n_conf_log > 0 ? &r->conf_log[r->n_conf_log - 1].conf : &r->committed_conf;
    CHECK(raft_conf_equal(want, &r->conf), "conf is not the latest in the log");
    return 0;
}

static int check_progress(const struct raft *r, const struct progress *pr, char *why,
                          size_t why_len)
{
    uint64_t last = r->log.stable + r->log.n;
    CHECK(pr->match < pr->next, "pr %llu match %llu >= next %llu", (unsigned long long)pr->id,
          (unsigned long long)pr->match, (unsigned long long)pr->next);
    CHECK(pr->match <= last && pr->next <= last + 1, "pr %llu beyond log",
          (unsigned long long)pr->id);
    CHECK(pr->count <= pr->cap, "pr %llu window overflow", (unsigned long long)pr->id);
    size_t bytes = 0;
    for (uint32_t i = 0; i < pr->count; i++) {
        const struct inflight *f = &pr->ring[(pr->start + i) % pr->cap];
        bytes += f->bytes;
        CHECK(f->last < pr->next && f->last > pr->match, "pr %llu stale in-flight %llu",
              (unsigned long long)pr->id, (unsigned long long)f->last);
    }
    CHECK(bytes == pr->bytes, "pr %llu in-flight bytes %zu != %zu", (unsigned long long)pr->id,
          bytes, pr->bytes);
    if (pr->state != PROGRESS_REPLICATE) {
        CHECK(pr->count == 0 && pr->bytes == 0, "pr %llu window used in state %s",
              (unsigned long long)pr->id, raft_progress_state_name(pr->state));
    }
    if (pr->state == PROGRESS_SNAPSHOT) {
        CHECK(pr->snap_index > 0 && pr->snap_offset <= pr->snap_size,
              "pr %llu bad snapshot transfer", (unsigned long long)pr->id);
    } else {
        CHECK(!pr->snap_chunk_out, "pr %llu chunk out outside SNAPSHOT",
              (unsigned long long)pr->id);
    }
    return 0;
}

int raft_check(const struct raft *r, char *why, size_t why_len)
{
    int rc = check_log(r, why, why_len);
    if (rc != 0) {
        return rc;
    }
    rc = check_conf(r, why, why_len);
    if (rc != 0) {
        return rc;
    }
    CHECK(raft_readonly_pending(&r->ro) <= r->cfg.max_pending_reads, "too many pending reads");
    switch (r->role) {
    case RAFT_LEADER: {
        CHECK(r->leader == r->id && r->vote == r->id, "leader without own vote/leadership");
        uint64_t ids[3 * RAFT_CONF_MAX];
        uint32_t n = raft_conf_all_ids(&r->conf, ids);
        CHECK(r->n_prs == n, "tracker has %u members, conf %u", r->n_prs, n);
        for (uint32_t i = 0; i < n; i++) {
            bool found = false;
            for (uint32_t j = 0; j < r->n_prs; j++) {
                found = found || r->prs[j].id == ids[i];
            }
            CHECK(found, "member %llu not tracked", (unsigned long long)ids[i]);
        }
        for (uint32_t i = 0; i < r->n_prs; i++) {
            if (r->prs[i].id != r->id) {
                rc = check_progress(r, &r->prs[i], why, why_len);
                if (rc != 0) {
                    return rc;
                }
            }
        }
        for (size_t i = 0; i < r->n_props; i++) {
            CHECK(r->props[i].index > r->log.applied, "applied proposal still pending");
            CHECK(i == 0 || r->props[i].index > r->props[i - 1].index, "proposals unordered");
        }
        for (uint32_t i = 0; i < r->ro.n_rounds; i++) {
            const struct read_round *rr = raft_readonly_round_at(&r->ro, i);
            CHECK(rr->index <= r->log.committed, "read round beyond commit");
            if (i > 0) {
                const struct read_round *prev = raft_readonly_round_at(&r->ro, i - 1);
                CHECK(rr->ctx > prev->ctx && rr->index >= prev->index, "read rounds unordered");
            }
        }
        CHECK(r->ro.n_rounds <= r->cfg.max_read_rounds, "too many read rounds");
        if (r->transfer_target != 0) {
            CHECK(raft_conf_is_voter(&r->conf, r->transfer_target), "transfer to non-voter");
        }
        break;
    }
    case RAFT_CANDIDATE:
        CHECK(r->vote == r->id && r->leader == 0, "candidate without own vote");
        /* fallthrough */
    case RAFT_PRE_CANDIDATE:
    case RAFT_FOLLOWER:
        CHECK(r->n_prs == 0 && r->n_props == 0 && r->ro.n_rounds == 0 && r->ro.n_wait == 0 &&
                  r->transfer_target == 0,
              "leader state held by a non-leader");
        if (r->role != RAFT_FOLLOWER) {
            CHECK(r->ro.n_fwd == 0, "forwarded reads without a leader");
        }
        break;
    }
    return 0;
}
