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
    for (uint32_t i = 0; i < RAFT_READ_ROUNDS_MAX; i++) {
        free(ro->rounds[i].reqs);
    }
    free(ro->fwd);
    memset(ro, 0, sizeof(*ro));
}

size_t raft_readonly_pending(const struct readonly *ro)
{
    size_t n = ro->n_wait + ro->n_fwd;
    for (uint32_t i = 0; i < ro->n_rounds; i++) {
        n += ro->rounds[(ro->first + i) % RAFT_READ_ROUNDS_MAX].n;
    }
    return n;
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

uint64_t raft_readonly_round_start(struct readonly *ro, uint64_t index)
{
    assert(ro->n_rounds < RAFT_READ_ROUNDS_MAX);
    struct read_round *rr = &ro->rounds[(ro->first + ro->n_rounds) % RAFT_READ_ROUNDS_MAX];
    assert(rr->n == 0);
    /* Swap the buffers: the waiting reads become the round. */
    struct read_req *tmp = rr->reqs;
    size_t tmp_cap = rr->cap;
    rr->reqs = ro->wait;
    rr->cap = ro->cap_wait;
    rr->n = ro->n_wait;
    ro->wait = tmp;
    ro->cap_wait = tmp_cap;
    ro->n_wait = 0;
    rr->ctx = ro->next_ctx++;
    rr->index = index;
    ro->n_rounds++;
    return rr->ctx;
}

struct read_round *raft_readonly_round_at(const struct readonly *ro, uint32_t i)
{
    assert(i < ro->n_rounds);
    return (struct read_round *)&ro->rounds[(ro->first + i) % RAFT_READ_ROUNDS_MAX];
}

struct read_round *raft_readonly_round_front(struct readonly *ro)
{
    return ro->n_rounds > 0 ? raft_readonly_round_at(ro, 0) : NULL;
}

uint64_t raft_readonly_newest_ctx(const struct readonly *ro)
{
    if (ro->n_rounds == 0) {
        return 0;
    }
    return ro->rounds[(ro->first + ro->n_rounds - 1) % RAFT_READ_ROUNDS_MAX].ctx;
}

void raft_readonly_round_pop(struct readonly *ro)
{
    assert(ro->n_rounds > 0);
    struct read_round *rr = &ro->rounds[ro->first];
    rr->n = 0;
    rr->ctx = 0;
    rr->index = 0;
    ro->first = (ro->first + 1) % RAFT_READ_ROUNDS_MAX;
    ro->n_rounds--;
}

bool raft_readonly_ack(struct readonly *ro, uint64_t id, uint64_t ctx)
{
    if (ctx == 0 || ctx >= ro->next_ctx) {
        return false;
    }
    uint32_t oldest = 0;
    for (uint32_t i = 0; i < ro->n_acks; i++) {
        if (ro->acks[i].id == id) {
            if (ctx > ro->acks[i].ctx) {
                ro->acks[i].ctx = ctx;
            }
            return true;
        }
        if (ro->acks[i].ctx < ro->acks[oldest].ctx) {
            oldest = i;
        }
    }
    /* Full (members come and go): forgetting the stalest answer can only make a round wait
     * for the next one, never end it early. */
    uint32_t k = ro->n_acks < 3 * RAFT_CONF_MAX ? ro->n_acks++ : oldest;
    ro->acks[k] = (struct read_ack){.id = id, .ctx = ctx};
    return true;
}

uint64_t raft_readonly_acked(const struct readonly *ro, uint64_t id)
{
    for (uint32_t i = 0; i < ro->n_acks; i++) {
        if (ro->acks[i].id == id) {
            return ro->acks[i].ctx;
        }
    }
    return 0;
}

void raft_readonly_reset(struct readonly *ro)
{
    while (ro->n_rounds > 0) {
        raft_readonly_round_pop(ro);
    }
    ro->first = 0;
    ro->n_wait = 0;
    ro->n_acks = 0;
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
