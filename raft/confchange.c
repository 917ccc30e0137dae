/* raft/confchange.c: pure configuration transitions (simple, enter joint, leave joint). */
#include "confchange.h"

#include <assert.h>
#include <string.h>

#include "conf.h"

static void set_remove(uint64_t *ids, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            ids[i] = ids[*n - 1];
            (*n)--;
            return;
        }
    }
}

static int set_add(uint64_t *ids, uint32_t *n, uint64_t id)
{
    if (*n >= RAFT_CONF_MAX) {
        return RAFT_EINVAL;
    }
    ids[(*n)++] = id;
    return 0;
}

int raft_confchange_apply(const struct raft_conf *cur, const struct raft_change *changes, size_t n,
                          struct raft_conf *out)
{
    int rc = 0;
    struct raft_conf next;
    memset(&next, 0, sizeof(next));
    if (raft_conf_is_joint(cur)) {
        return RAFT_ECONFPENDING;
    }
    if (n == 0 || n > 2 * RAFT_CONF_MAX) {
        return RAFT_EINVAL;
    }
    memcpy(next.voters, cur->voters, sizeof(next.voters));
    next.n_voters = cur->n_voters;
    memcpy(next.learners, cur->learners, sizeof(next.learners));
    next.n_learners = cur->n_learners;

    for (size_t i = 0; i < n; i++) {
        uint64_t id = changes[i].id;
        if (id == 0) {
            return RAFT_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (changes[j].id == id) {
                return RAFT_EINVAL;
            }
        }
        bool voter = raft_conf_set_has(next.voters, next.n_voters, id);
        bool learner = raft_conf_set_has(next.learners, next.n_learners, id);
        switch (changes[i].type) {
        case RAFT_CHANGE_ADD_VOTER:
            if (voter) {
                return RAFT_EINVAL;
            }
            set_remove(next.learners, &next.n_learners, id);
            rc = set_add(next.voters, &next.n_voters, id);
            break;
        case RAFT_CHANGE_ADD_LEARNER:
            if (learner) {
                return RAFT_EINVAL;
            }
            set_remove(next.voters, &next.n_voters, id);
            rc = set_add(next.learners, &next.n_learners, id);
            break;
        case RAFT_CHANGE_REMOVE:
            if (!voter && !learner) {
                return RAFT_EINVAL;
            }
            set_remove(next.voters, &next.n_voters, id);
            set_remove(next.learners, &next.n_learners, id);
            break;
        default:
            return RAFT_EINVAL;
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (next.n_voters == 0) {
        return RAFT_EINVAL;
    }
    if (!raft_conf_set_equal(next.voters, next.n_voters, cur->voters, cur->n_voters)) {
        /* §4.3: the voter set changes through C_old,new so that no two majorities of the old
         * and the new set can decide independently, whatever the change. */
        memcpy(next.voters_old, cur->voters, sizeof(next.voters_old));
        next.n_voters_old = cur->n_voters;
    }
    assert(raft_conf_valid(&next, false));
    *out = next;
    return 0;
}

void raft_confchange_leave_joint(const struct raft_conf *cur, struct raft_conf *out)
{
    assert(raft_conf_is_joint(cur));
    *out = *cur;
    memset(out->voters_old, 0, sizeof(out->voters_old));
    out->n_voters_old = 0;
    assert(raft_conf_valid(out, false));
}
