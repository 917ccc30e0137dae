/* node_member.c - membership: the member directory (who is at which
 * address) kept in step with the configuration, and the operations an
 * operator asks the leader for (add, add a learner, promote, remove,
 * transfer leadership).
 *
 * Design notes
 * 1. Raft's configuration holds member ids only; the address of each is in
 *    the member directory, replicated with the tree (MEMBER_SET and
 *    MEMBER_DEL commands), so that every member, also one that joined
 *    later, can reach every other one. Before the directory has entries
 *    (a new cluster), the founders' --peers are the directory.
 * 2. Adding writes the address first, then proposes the configuration
 *    change; removing proposes the change first, then deletes the address.
 *    The leader also fills in directory entries missing for members it
 *    knows the address of (the founders), so the directory becomes
 *    complete by itself.
 * 3. Every operation runs on the loop thread and answers once: when the
 *    change is complete, or with an error (EAGAIN: not the leader, or a
 *    learner not caught up yet; EBUSY: another change is in progress;
 *    EEXIST, ENOENT, EINVAL; ETIMEDOUT). Complete means the configuration
 *    is settled: a change of voters commits a joint configuration first,
 *    which the leader then leaves by itself; only when that is committed
 *    too is the new member a voter like the others (or the removed one
 *    needed by no majority). Until then `member list` shows it "joining"
 *    or "leaving". Should this member stop leading meanwhile, the change
 *    has committed and the next leader completes it: the answer is then
 *    given at once.
 * 4. Incarnations. Each data directory has a random incarnation (store
 *    identity, drawn when it is created), which a member sends in its
 *    Hello. The leader writes into the directory the incarnation of each
 *    member of the configuration whose entry has none: its own, and those
 *    from the Hellos of its inbound connections (node_peer.incarnation).
 *    Once recorded, every member refuses a Hello of that id with another
 *    incarnation (node_client.c hello_ok): a member whose data directory
 *    was lost and that comes back under its old id, with term 0, no vote
 *    and an empty log, could otherwise vote twice in a term or help elect
 *    a leader without committed entries. It must be removed and added as
 *    a new member. Between its first contact and the commit of its
 *    incarnation a member is not protected so (docs/architecture.md).
 *    Adding a member (MEMBER_SET without incarnation) clears a stale one;
 *    a recorded incarnation is never replaced by another (store: EEXIST).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

enum member_stage { STAGE_SET_ADDR, STAGE_CONF, STAGE_SETTLE, STAGE_DEL_ADDR };

struct node_member_task {
    struct node *n;
    enum node_member_op op;
    uint64_t id;
    char addr[STORE_MAX_ADDR_BYTES + 1];
    uint64_t incarnation; /* MEMBER_SET: 0 (not known) but when recording one */
    node_done_fn done;
    void *ctx;
    enum member_stage stage;
    uint64_t cookie;      /* of the configuration change, in STAGE_CONF */
    uint64_t deadline_ms; /* STAGE_SETTLE: ETIMEDOUT after it */
    struct node_member_task *next;
};

static int raft_errno(int rc)
{
    switch (rc) {
    case RAFT_OK:
        return 0;
    case RAFT_ECONFPENDING:
    case RAFT_ETRANSFER:
    case RAFT_EBUSY:
        return EBUSY;
    case RAFT_EINVAL:
        return EINVAL;
    case RAFT_ENOMEM:
        return ENOMEM;
    default:
        return EAGAIN; /* not the leader, not ready, not caught up: retry */
    }
}

/* The completion of a directory write whose task is gone: nothing to do. */
static void orphan_done(void *ctx, int rc, const struct store_result *res)
{
    (void)ctx, (void)rc, (void)res;
}

static void finish(struct node *n, struct node_member_task *m, int rc)
{
    for (struct node_member_task **pp = &n->member_ops; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    /* A directory write of the task may still be pending (a task finished
     * early, by node_member_removed): its completion must not reach m. */
    for (struct node_req *r = n->pending; r; r = r->next)
        if (r->ctx == m) {
            r->done = orphan_done;
            r->ctx = NULL;
        }
    m->done(m->ctx, rc, NULL);
    free(m);
}

/* Submits MEMBER_SET or MEMBER_DEL for m->id as the node's own command. */
static int submit_dir(struct node *n, struct node_member_task *m, bool set, node_done_fn done)
{
    struct store_cmd c = {.op = set ? STORE_OP_MEMBER_SET : STORE_OP_MEMBER_DEL,
                          .time_ns = 1,
                          .member_id = m->id,
                          .path = set ? m->addr : "",
                          .path_len = set ? strlen(m->addr) : 0,
                          .incarnation = set ? m->incarnation : 0,
                          .client_id = n->member_client_id,
                          .seq = ++n->member_seq};
    void *data;
    size_t len;
    int rc = store_cmd_encode(&c, &data, &len);
    if (rc)
        return rc;
    struct node_req *r = node_req_propose_new(data, len, c.client_id, c.seq, done, m);
    if (!r)
        return ENOMEM;
    r->deadline_ms = net_now_ms() + n->cfg.timeout_ms;
    node_raft_enqueue(n, r);
    return 0;
}

static void conf_change(struct node *n, struct node_member_task *m)
{
    struct raft_change ch = {.id = m->id};
    switch (m->op) {
    case NODE_MEMBER_ADD:
    case NODE_MEMBER_PROMOTE:
        ch.type = RAFT_CHANGE_ADD_VOTER;
        break;
    case NODE_MEMBER_ADD_LEARNER:
        ch.type = RAFT_CHANGE_ADD_LEARNER;
        break;
    default:
        ch.type = RAFT_CHANGE_REMOVE;
        break;
    }
    m->stage = STAGE_CONF;
    m->cookie = ++n->next_cookie;
    int rc = raft_conf_change(n->raft, &ch, 1, m->cookie);
    if (rc)
        finish(n, m, raft_errno(rc));
}

static void addr_done(void *ctx, int rc, const struct store_result *res)
{
    struct node_member_task *m = ctx;
    struct node *n = m->n;
    if (!rc && res->err)
        rc = res->err;
    /* Removing: a member whose address was never written down (a founder
     * removed before the leader filled the directory in) has none to
     * delete; that is done too. */
    if (rc == ENOENT && m->stage == STAGE_DEL_ADDR)
        rc = 0;
    if (rc) {
        finish(n, m, rc);
        return;
    }
    if (m->stage == STAGE_SET_ADDR)
        conf_change(n, m);
    else
        finish(n, m, 0); /* STAGE_DEL_ADDR: the removal is complete */
}

void node_member_conf_result(struct node *n, uint64_t cookie, int status)
{
    struct node_member_task *m = n->member_ops;
    while (m && !(m->stage == STAGE_CONF && m->cookie == cookie))
        m = m->next;
    if (!m)
        return;
    if (status) {
        finish(n, m, raft_errno(status));
        return;
    }
    m->stage = STAGE_SETTLE;
    m->deadline_ms = net_now_ms() + n->cfg.timeout_ms;
    node_member_settle(n);
}

static void settled(struct node *n, struct node_member_task *m)
{
    if (m->op == NODE_MEMBER_REMOVE) {
        m->stage = STAGE_DEL_ADDR;
        int rc = submit_dir(n, m, false, addr_done);
        if (rc)
            finish(n, m, rc);
        return;
    }
    finish(n, m, 0);
}

void node_member_settle(struct node *n)
{
    bool done = !raft_conf_changing(n->raft) || raft_role(n->raft) != RAFT_LEADER;
    uint64_t now = net_now_ms();
    for (struct node_member_task *m = n->member_ops, *next; m; m = next) {
        next = m->next;
        if (m->stage != STAGE_SETTLE)
            continue;
        if (done)
            settled(n, m);
        else if (now >= m->deadline_ms)
            finish(n, m, ETIMEDOUT);
    }
}

static bool in_conf(const struct raft_conf *c, uint64_t id)
{
    return raft_conf_is_voter(c, id) || raft_conf_is_learner(c, id);
}

int node_member_change(struct node *n, enum node_member_op op, uint64_t id, const char *addr,
                       node_done_fn done, void *ctx)
{
    if (raft_role(n->raft) != RAFT_LEADER)
        return EAGAIN;
    if (!id)
        return EINVAL;
    const struct raft_conf *conf = raft_conf(n->raft);
    if (op == NODE_MEMBER_TRANSFER)
        return raft_errno(raft_transfer_leader(n->raft, id));
    if ((op == NODE_MEMBER_ADD || op == NODE_MEMBER_ADD_LEARNER) && in_conf(conf, id))
        return EEXIST;
    /* A member in plaintext dials only loopback addresses unless allowed
     * (node.c, tls_open): it would send the tree to the new member in the
     * clear. The new member refuses to start there anyway. */
    struct net_addr na;
    char nwhy[128];
    if ((op == NODE_MEMBER_ADD || op == NODE_MEMBER_ADD_LEARNER) && !n->tls &&
        !n->cfg.allow_plaintext && addr && !net_addr_parse(addr, &na, nwhy, sizeof(nwhy)) &&
        !net_addr_is_loopback(&na)) {
        node_log(NODE_LOG_WARN,
                 "refusing to add member %llu at %s: this member speaks plaintext, and that "
                 "address is not loopback (TLS, or --allow-plaintext)",
                 (unsigned long long)id, addr);
        return EPERM;
    }
    if ((op == NODE_MEMBER_PROMOTE && !raft_conf_is_learner(conf, id)) ||
        (op == NODE_MEMBER_REMOVE && !in_conf(conf, id)))
        return ENOENT;
    struct node_member_task *m = calloc(1, sizeof(*m));
    if (!m)
        return ENOMEM;
    m->n = n;
    m->op = op;
    m->id = id;
    m->done = done;
    m->ctx = ctx;
    m->next = n->member_ops;
    n->member_ops = m;
    if (op == NODE_MEMBER_ADD || op == NODE_MEMBER_ADD_LEARNER) {
        struct net_addr a;
        char why[128];
        if (!addr || !*addr || strlen(addr) > STORE_MAX_ADDR_BYTES ||
            net_addr_parse(addr, &a, why, sizeof(why))) {
            finish(n, m, EINVAL);
            return 0;
        }
        snprintf(m->addr, sizeof(m->addr), "%s", addr);
        m->stage = STAGE_SET_ADDR;
        int rc = submit_dir(n, m, true, addr_done);
        if (rc)
            finish(n, m, rc);
        return 0;
    }
    conf_change(n, m);
    return 0;
}

/* ---- the directory ---- */

struct dir_acc {
    struct node_member list[NODE_MAX_MEMBERS];
    size_t n;
};

static int dir_cb(void *ctx, const struct store_member *m)
{
    struct dir_acc *acc = ctx;
    if (acc->n == NODE_MAX_MEMBERS || m->addr_len >= sizeof(acc->list[0].addr))
        return 0;
    acc->list[acc->n].id = m->id;
    memcpy(acc->list[acc->n].addr, m->addr, m->addr_len);
    acc->list[acc->n].addr[m->addr_len] = 0;
    acc->list[acc->n].incarnation = m->incarnation;
    acc->n++;
    return 0;
}

struct inc_find {
    uint64_t id, incarnation;
};

static int inc_cb(void *ctx, const struct store_member *m)
{
    struct inc_find *f = ctx;
    if (m->id == f->id)
        f->incarnation = m->incarnation;
    return 0;
}

int node_member_incarnation(struct node *n, uint64_t id, uint64_t *out)
{
    struct inc_find f = {.id = id};
    int rc = store_members(n->store, inc_cb, &f);
    *out = rc ? 0 : f.incarnation;
    return rc;
}

int node_members_list(struct node *n, struct node_member *out, size_t *count)
{
    struct dir_acc acc = {.n = 0};
    int rc = store_members(n->store, dir_cb, &acc);
    if (rc)
        return rc;
    /* The founders' --peers stand in for entries not written yet (a new
     * cluster; a member added before the leader wrote the founders down,
     * node_members_tick, must not hide them), but only while they are in
     * the configuration: one removed before its entry was written is not
     * brought back. */
    const struct raft_conf *conf = &n->applied_conf;
    bool conf_known = conf->n_voters > 0;
    for (size_t i = 0; i < n->cfg.n_members && acc.n < NODE_MAX_MEMBERS; i++) {
        const struct node_member *m = &n->cfg.members[i];
        bool listed = false;
        for (size_t j = 0; j < acc.n && !listed; j++)
            listed = acc.list[j].id == m->id;
        if (!listed && (!conf_known || in_conf(conf, m->id)))
            acc.list[acc.n++] = *m;
    }
    /* Addresses learnt from answers (node_member_learn), for members the
     * directory does not have yet; dropped once it has them. */
    size_t keep = 0;
    for (size_t i = 0; i < n->n_learned; i++) {
        bool listed = false;
        for (size_t j = 0; j < acc.n && !listed; j++)
            listed = acc.list[j].id == n->learned[i].id;
        if (listed)
            continue;
        n->learned[keep++] = n->learned[i];
        if (acc.n < NODE_MAX_MEMBERS)
            acc.list[acc.n++] = n->learned[i];
    }
    n->n_learned = keep;
    memcpy(out, acc.list, acc.n * sizeof(acc.list[0]));
    *count = acc.n;
    return 0;
}

void node_member_learn(struct node *n, uint64_t id, const char *addr)
{
    struct node_member list[NODE_MAX_MEMBERS];
    size_t count = 0;
    if (node_members_list(n, list, &count))
        return;
    for (size_t i = 0; i < count; i++)
        if (list[i].id == id)
            return; /* known (from the directory, or learnt before) */
    if (n->n_learned == NODE_MAX_MEMBERS || strlen(addr) >= sizeof(n->learned[0].addr))
        return;
    n->learned[n->n_learned].id = id;
    snprintf(n->learned[n->n_learned].addr, sizeof(n->learned[0].addr), "%s", addr);
    n->learned[n->n_learned].incarnation = 0;
    n->n_learned++;
    node_log(NODE_LOG_INFO,
             "member %llu answers at %s, which the member directory here does not know yet: "
             "reaching it there",
             (unsigned long long)id, addr);
    n->peers_resync = true; /* not here: the caller holds a peer */
}

const char *node_member_addr(struct node *n, uint64_t id, char *buf, size_t len)
{
    struct node_member list[NODE_MAX_MEMBERS];
    size_t count = 0;
    if (node_members_list(n, list, &count))
        return NULL;
    for (size_t i = 0; i < count; i++)
        if (list[i].id == id) {
            snprintf(buf, len, "%s", list[i].addr);
            return buf;
        }
    return NULL;
}

void node_members_sync(struct node *n)
{
    struct node_member list[NODE_MAX_MEMBERS];
    size_t count = 0;
    if (node_members_list(n, list, &count))
        return;
    /* Peers = the directory (but this member). */
    for (size_t i = 0; i < count; i++)
        if (list[i].id != n->cfg.id)
            node_peer_set(n, list[i].id, list[i].addr);
    for (size_t i = 0; i < n->n_peers; i++) {
        bool keep = !n->peers[i].id;
        for (size_t j = 0; j < count && !keep; j++)
            keep = list[j].id == n->peers[i].id;
        if (!keep)
            node_peer_remove(n, n->peers[i].id);
    }
}

static void ignore_done(void *ctx, int rc, const struct store_result *res)
{
    struct node_member_task *m = ctx;
    (void)rc, (void)res;
    free(m);
}

void node_members_tick(struct node *n)
{
    if (raft_role(n->raft) != RAFT_LEADER)
        return;
    uint64_t now = net_now_ms();
    if (now < n->next_dir_check_ms)
        return;
    /* Soon again while the configuration is not known yet or the
     * directory lacks someone (a new cluster: members may be added or
     * removed right away, and a founder without an entry has no address
     * to delete); every 2 s once it is complete. */
    n->next_dir_check_ms = now + 300;
    /* Members in the configuration without an address in the directory,
     * whose address this leader knows (the founders): write it down. And
     * members whose entry has no incarnation yet, when this leader knows
     * it (its own; another's from its Hello): write it down. */
    struct dir_acc acc = {.n = 0};
    if (store_members(n->store, dir_cb, &acc))
        return;
    const struct raft_conf *c = &n->applied_conf;
    uint64_t ids[2 * RAFT_CONF_MAX];
    size_t nids = 0;
    for (uint32_t i = 0; i < c->n_voters; i++)
        ids[nids++] = c->voters[i];
    for (uint32_t i = 0; i < c->n_learners; i++)
        ids[nids++] = c->learners[i];
    bool complete = nids > 0;
    for (size_t i = 0; i < nids; i++) {
        const struct node_member *entry = NULL;
        for (size_t j = 0; j < acc.n; j++)
            if (acc.list[j].id == ids[i])
                entry = &acc.list[j];
        if (!entry || !entry->incarnation)
            complete = false;
        uint64_t inc = 0;
        if (ids[i] == n->cfg.id) {
            inc = n->incarnation;
        } else {
            const struct node_peer *p = node_peer_find(n, ids[i]);
            inc = p ? p->incarnation : 0;
        }
        if (entry && (entry->incarnation || !inc))
            continue; /* nothing to add */
        const char *addr = entry ? entry->addr : NULL;
        for (size_t j = 0; j < n->cfg.n_members && !addr; j++)
            if (n->cfg.members[j].id == ids[i])
                addr = n->cfg.members[j].addr;
        if (!addr)
            continue;
        struct node_member_task *m = calloc(1, sizeof(*m));
        if (!m)
            return;
        m->n = n;
        m->id = ids[i];
        m->incarnation = inc;
        snprintf(m->addr, sizeof(m->addr), "%s", addr);
        if (inc)
            node_log(NODE_LOG_INFO, "recording member %llu's incarnation %016llx",
                     (unsigned long long)ids[i], (unsigned long long)inc);
        if (submit_dir(n, m, true, ignore_done))
            free(m);
    }
    /* Entries of members that a configuration removed (a leader that
     * removed itself stopped before deleting its own). Not while a change
     * is under way or one of this member's own is in progress (adding
     * writes the address first). */
    const struct raft_conf *latest = raft_conf(n->raft);
    bool sweep = n->n_dir_removed && !n->member_ops && !raft_conf_changing(n->raft);
    for (size_t j = 0; j < acc.n && sweep; j++) {
        uint64_t id = acc.list[j].id;
        bool removed = false;
        for (size_t r = 0; r < n->n_dir_removed; r++)
            removed |= n->dir_removed[r] == id;
        if (!removed || in_conf(c, id) || in_conf(latest, id))
            continue;
        struct node_member_task *m = calloc(1, sizeof(*m));
        if (!m)
            return;
        m->n = n;
        m->id = id;
        node_log(NODE_LOG_INFO, "deleting the address of member %llu: not a member",
                 (unsigned long long)id);
        if (submit_dir(n, m, false, ignore_done))
            free(m);
    }
    if (sweep)
        n->n_dir_removed = 0; /* deleted, or not in the directory, or back in */
    if (complete)
        n->next_dir_check_ms = now + 2000;
}

void node_member_removed(struct node *n)
{
    /* This member's own removal is complete once it applied it: the next
     * leader deletes its address (node_members_tick). Other changes asked
     * here cannot go on. */
    while (n->member_ops) {
        struct node_member_task *m = n->member_ops;
        bool self = m->op == NODE_MEMBER_REMOVE && m->id == n->cfg.id &&
                    (m->stage == STAGE_SETTLE || m->stage == STAGE_DEL_ADDR);
        finish(n, m, self ? 0 : ESHUTDOWN);
    }
}
