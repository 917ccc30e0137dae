/* tests/sim/lincheck.c: linearizability checker for single registers (Wing-Gong search, memoised).
 */
#include "lincheck.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/*
 * Wing & Gong's search with Lowe's memoisation: a configuration is the set of operations
 * already linearised (a bitset) plus the register value; the same configuration reached along
 * another order is never explored twice. An operation may be linearised next only if it was
 * invoked before every not-yet-linearised operation with a known answer completed.
 */

struct memo {
    uint64_t *done;
    uint64_t *state;
    uint8_t *used;
    size_t cap;
    size_t n;
};

struct search {
    const struct lin_op *ops;
    size_t n;
    uint64_t required; /* ops with a known answer */
    struct memo memo;
};

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    z = (z ^ (z >> 29)) * 0xBF58476D1CE4E5B9ull;
    return z ^ (z >> 32);
}

static bool memo_grow(struct memo *m)
{
    struct memo bigger = {0};
    bigger.cap = m->cap ? m->cap * 2 : 1024;
    bigger.done = calloc(bigger.cap, sizeof(uint64_t));
    bigger.state = calloc(bigger.cap, sizeof(uint64_t));
    bigger.used = calloc(bigger.cap, 1);
    if (!bigger.done || !bigger.state || !bigger.used) {
        abort();
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->used[i]) {
            continue;
        }
        size_t h = mix(m->done[i], m->state[i]) & (bigger.cap - 1);
        while (bigger.used[h]) {
            h = (h + 1) & (bigger.cap - 1);
        }
        bigger.used[h] = 1;
        bigger.done[h] = m->done[i];
        bigger.state[h] = m->state[i];
        bigger.n++;
    }
    free(m->done);
    free(m->state);
    free(m->used);
    *m = bigger;
    return true;
}

/* Inserts (done, state); returns false if it was already there. */
static bool memo_insert(struct memo *m, uint64_t done, uint64_t state)
{
    if (2 * (m->n + 1) > m->cap) {
        memo_grow(m);
    }
    size_t h = mix(done, state) & (m->cap - 1);
    while (m->used[h]) {
        if (m->done[h] == done && m->state[h] == state) {
            return false;
        }
        h = (h + 1) & (m->cap - 1);
    }
    m->used[h] = 1;
    m->done[h] = done;
    m->state[h] = state;
    m->n++;
    return true;
}

static bool search(struct search *s, uint64_t done, uint64_t state)
{
    if ((done & s->required) == s->required) {
        return true;
    }
    if (!memo_insert(&s->memo, done, state)) {
        return false;
    }
    uint64_t horizon = LIN_NEVER;
    for (size_t i = 0; i < s->n; i++) {
        if (!(done >> i & 1) && s->ops[i].complete < horizon) {
            horizon = s->ops[i].complete;
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct lin_op *op = &s->ops[i];
        if ((done >> i & 1) || op->invoke >= horizon) {
            continue;
        }
        uint64_t bit = (uint64_t)1 << i;
        if (op->write) {
            if (search(s, done | bit, op->value)) {
                return true;
            }
        } else if (op->value == state && search(s, done | bit, state)) {
            return true;
        }
    }
    return false;
}

bool lin_check(const struct lin_op *all, size_t n_all, uint64_t initial)
{
    assert(n_all <= LIN_MAX_OPS);
    /* A write with an unknown outcome whose value no read returned can always be left out
     * (taking it out never breaks a read), so only the observed ones are searched: this
     * keeps the search small when many writes timed out. */
    struct lin_op ops[LIN_MAX_OPS];
    size_t n = 0;
    for (size_t i = 0; i < n_all; i++) {
        bool keep = !all[i].write || all[i].complete != LIN_NEVER;
        for (size_t j = 0; j < n_all && !keep; j++) {
            keep = !all[j].write && all[j].value == all[i].value;
        }
        if (keep) {
            ops[n++] = all[i];
        }
    }
    struct search s = {.ops = ops, .n = n, .required = 0};
    for (size_t i = 0; i < n; i++) {
        assert(ops[i].write || ops[i].complete != LIN_NEVER);
        assert(ops[i].invoke < ops[i].complete);
        if (ops[i].complete != LIN_NEVER) {
            s.required |= (uint64_t)1 << i;
        }
    }
    bool ok = search(&s, 0, initial);
    free(s.memo.done);
    free(s.memo.state);
    free(s.memo.used);
    return ok;
}
