/* raft/readonly.c: ReadIndex bookkeeping: waiting reads, the heartbeat round in flight, forwarded
 * reads. */
#include "readonly.h"

#include "impl.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void raft_readonly_init(struct readonly *ro, uint64_t fwd_base)
{
    memset(ro, 0, sizeof(*ro));
    ro->next_ctx = 1;
    ro->next_fwd_ctx = fwd_base;
}

void raft_readonly_close(struct readonly *ro)
{
    free(ro->wait);
    free(ro->round);
    free(ro->fwd);
    memset(ro, 0, sizeof(*ro));
}

size_t raft_readonly_pending(const struct readonly *ro)
{
    return ro->n_wait + ro->n_round + ro->n_fwd;
}

int raft_readonly_wait_add(struct readonly *ro, const struct read_req *req)
{
    int rc = raft_grow_array((void **)&ro->wait, &ro->cap_wait, ro->n_wait + 1, sizeof(*ro->wait));
    if (rc != 0) {
        return rc;
    }
    ro->wait[ro->n_wait++] = *req;
    return 0;
}

uint64_t raft_readonly_round_start(struct readonly *ro, uint64_t index, uint64_t self)
{
    assert(!ro->active && ro->n_round == 0);
    /* Swap the buffers: the waiting reads become the round. */
    struct read_req *tmp = ro->round;
    size_t tmp_cap = ro->cap_round;
    ro->round = ro->wait;
    ro->cap_round = ro->cap_wait;
    ro->n_round = ro->n_wait;
    ro->wait = tmp;
    ro->cap_wait = tmp_cap;
    ro->n_wait = 0;
    ro->active = true;
    ro->round_ctx = ro->next_ctx++;
    ro->round_index = index;
    ro->n_acks = 0;
    ro->acks[ro->n_acks++] = self;
    return ro->round_ctx;
}

bool raft_readonly_round_acked_by(const struct readonly *ro, uint64_t id)
{
    for (uint32_t i = 0; i < ro->n_acks; i++) {
        if (ro->acks[i] == id) {
            return true;
        }
    }
    return false;
}

bool raft_readonly_round_ack(struct readonly *ro, uint64_t id, uint64_t ctx)
{
    if (!ro->active || ctx != ro->round_ctx || raft_readonly_round_acked_by(ro, id) ||
        ro->n_acks >= 3 * RAFT_CONF_MAX) {
        return false;
    }
    ro->acks[ro->n_acks++] = id;
    return true;
}

void raft_readonly_round_end(struct readonly *ro)
{
    ro->active = false;
    ro->n_round = 0;
    ro->n_acks = 0;
    ro->round_ctx = 0;
    ro->round_index = 0;
}

int raft_readonly_fwd_add(struct readonly *ro, uint64_t cookie, uint64_t leader, uint64_t *context)
{
    int rc = raft_grow_array((void **)&ro->fwd, &ro->cap_fwd, ro->n_fwd + 1, sizeof(*ro->fwd));
    if (rc != 0) {
        return rc;
    }
    struct fwd_read *f = &ro->fwd[ro->n_fwd++];
    if (ro->next_fwd_ctx == 0) {
        ro->next_fwd_ctx++; /* 0 means "no context" on the wire */
    }
    f->context = ro->next_fwd_ctx++;
    f->cookie = cookie;
    f->leader = leader;
    f->age_ticks = 0;
    *context = f->context;
    return 0;
}

bool raft_readonly_fwd_take(struct readonly *ro, uint64_t context, struct fwd_read *out)
{
    for (size_t i = 0; i < ro->n_fwd; i++) {
        if (ro->fwd[i].context == context) {
            *out = ro->fwd[i];
            memmove(&ro->fwd[i], &ro->fwd[i + 1], (ro->n_fwd - i - 1) * sizeof(*ro->fwd));
            ro->n_fwd--;
            return true;
        }
    }
    return false;
}
