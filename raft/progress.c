/* raft/progress.c: the leader's view of each member: probe/replicate/snapshot and in-flight window.
 */
#include "progress.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

int raft_progress_init(struct progress *pr, uint64_t id, uint64_t next, uint32_t cap)
{
    assert(cap > 0 && next > 0);
    memset(pr, 0, sizeof(*pr));
    pr->ring = calloc(cap, sizeof(*pr->ring));
    if (pr->ring == NULL) {
        return RAFT_ENOMEM;
    }
    pr->id = id;
    pr->cap = cap;
    pr->next = next;
    pr->state = PROGRESS_PROBE;
    return 0;
}

void raft_progress_free(struct progress *pr)
{
    free(pr->ring);
    pr->ring = NULL;
}

void raft_progress_inflight_reset(struct progress *pr)
{
    pr->start = 0;
    pr->count = 0;
    pr->bytes = 0;
}

static void reset_state(struct progress *pr, enum progress_state s)
{
    raft_progress_inflight_reset(pr);
    pr->probe_sent = false;
    pr->state = s;
    pr->snap_index = 0;
    pr->snap_term = 0;
    pr->snap_size = 0;
    pr->snap_offset = 0;
    pr->snap_chunk_out = false;
    pr->snap_answered = false;
}

void raft_progress_become_probe(struct progress *pr)
{
    /* Coming back from a snapshot, the member has at least the snapshot's entries once it
     * said so; otherwise resume right after the last known match. */
    uint64_t next = pr->match + 1;
    if (pr->state == PROGRESS_SNAPSHOT && pr->snap_index + 1 > next) {
        next = pr->snap_index + 1;
    }
    reset_state(pr, PROGRESS_PROBE);
    pr->next = next;
}

void raft_progress_abort_snapshot(struct progress *pr)
{
    uint64_t next = pr->match + 1;
    reset_state(pr, PROGRESS_PROBE);
    pr->next = next;
}

void raft_progress_become_replicate(struct progress *pr)
{
    reset_state(pr, PROGRESS_REPLICATE);
    pr->next = pr->match + 1;
}

void raft_progress_become_snapshot(struct progress *pr, uint64_t index, uint64_t term,
                                   uint64_t size)
{
    reset_state(pr, PROGRESS_SNAPSHOT);
    pr->snap_index = index;
    pr->snap_term = term;
    pr->snap_size = size;
}

bool raft_progress_maybe_update(struct progress *pr, uint64_t n)
{
    bool updated = false;
    if (pr->match < n) {
        pr->match = n;
        pr->probe_sent = false;
        updated = true;
    }
    if (pr->next < n + 1) {
        pr->next = n + 1;
    }
    return updated;
}

bool raft_progress_maybe_decrease(struct progress *pr, uint64_t rejected, uint64_t next_hint)
{
    if (pr->state == PROGRESS_REPLICATE) {
        /* In pipeline mode any rejection at or below match is a late answer to an old
         * message: the member already accepted more. */
        if (rejected <= pr->match) {
            return false;
        }
        pr->next = pr->match + 1;
        return true;
    }
    /* PROBE (and SNAPSHOT): only the answer to the probe in flight counts. */
    if (pr->next == 0 || rejected != pr->next - 1) {
        return false;
    }
    uint64_t next = next_hint < rejected ? next_hint : rejected;
    if (next < pr->match + 1) {
        next = pr->match + 1;
    }
    if (next < 1) {
        next = 1;
    }
    pr->next = next;
    pr->probe_sent = false;
    return true;
}

bool raft_progress_is_paused(const struct progress *pr, size_t max_bytes)
{
    switch (pr->state) {
    case PROGRESS_PROBE:
        return pr->probe_sent;
    case PROGRESS_REPLICATE:
        return pr->count >= pr->cap || pr->bytes >= max_bytes;
    case PROGRESS_SNAPSHOT:
        return true;
    }
    return true;
}

void raft_progress_inflight_add(struct progress *pr, uint64_t last, size_t bytes)
{
    assert(pr->count < pr->cap);
    uint32_t slot = (pr->start + pr->count) % pr->cap;
    pr->ring[slot].last = last;
    pr->ring[slot].bytes = bytes;
    pr->count++;
    pr->bytes += bytes;
}

void raft_progress_inflight_free_to(struct progress *pr, uint64_t index)
{
    while (pr->count > 0 && pr->ring[pr->start].last <= index) {
        assert(pr->bytes >= pr->ring[pr->start].bytes);
        pr->bytes -= pr->ring[pr->start].bytes;
        pr->start = (pr->start + 1) % pr->cap;
        pr->count--;
    }
    if (pr->count == 0) {
        pr->start = 0;
        assert(pr->bytes == 0);
    }
}

const char *raft_progress_state_name(enum progress_state s)
{
    switch (s) {
    case PROGRESS_PROBE:
        return "probe";
    case PROGRESS_REPLICATE:
        return "replicate";
    case PROGRESS_SNAPSHOT:
        return "snapshot";
    }
    return "?";
}
