/* tests/sim/disk.c: in-memory raft storage with a durable part, unsynced writes, torn crashes. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        abort();
    }
    return p;
}

uint64_t entry_chain(uint64_t prev, const struct raft_entry *e)
{
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < e->len; i++) {
        h = (h ^ e->data[i]) * 1099511628211ull;
    }
    uint64_t z = prev ^ (e->term * 0x9E3779B97F4A7C15ull) ^ (e->index << 7) ^ e->type ^ h;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void copy_entry(struct sim_entry *dst, const struct sim_entry *src)
{
    *dst = *src;
    dst->e.data = NULL;
    if (src->e.len > 0) {
        dst->e.data = xmalloc(src->e.len);
        memcpy(dst->e.data, src->e.data, src->e.len);
    }
}

static void slog_truncate(struct sim_log *l, size_t keep)
{
    for (size_t i = keep; i < l->n; i++) {
        free(l->v[i].e.data);
    }
    if (keep < l->n) {
        l->n = keep;
    }
}

static void slog_push(struct sim_log *l, const struct sim_entry *e)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (l->v == NULL) {
            abort();
        }
    }
    copy_entry(&l->v[l->n++], e);
}

static void slog_free(struct sim_log *l)
{
    slog_truncate(l, 0);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Drops the first k entries. */
static void slog_drop_front(struct sim_log *l, size_t k)
{
    if (k > l->n) {
        k = l->n;
    }
    if (k == 0) {
        return;
    }
    for (size_t i = 0; i < k; i++) {
        free(l->v[i].e.data);
    }
    memmove(l->v, l->v + k, (l->n - k) * sizeof(*l->v));
    l->n -= k;
}

void disk_init(struct sim_disk *d)
{
    memset(d, 0, sizeof(*d));
}

static void free_write(struct sim_write *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->ents[i].e.data);
    }
    free(w->ents);
}

static void drop_pending(struct sim_disk *d)
{
    for (size_t i = 0; i < d->n_pending; i++) {
        free_write(&d->pending[i]);
    }
    d->n_pending = 0;
}

void disk_free(struct sim_disk *d)
{
    drop_pending(d);
    free(d->pending);
    slog_free(&d->dur);
    slog_free(&d->cur);
    free(d->snap_data);
    memset(d, 0, sizeof(*d));
}

uint64_t disk_last_index(const struct sim_disk *d)
{
    return d->snap.index + d->cur.n;
}

const struct sim_entry *disk_entry(const struct sim_disk *d, uint64_t index)
{
    if (index <= d->snap.index || index > disk_last_index(d)) {
        return NULL;
    }
    return &d->cur.v[index - d->snap.index - 1];
}

/* Writes ents into l (replacing every entry at or after ents[0]); entries at or below the
 * snapshot are skipped. */
static void apply_write(struct sim_disk *d, struct sim_log *l, const struct sim_entry *ents,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t idx = ents[i].e.index;
        if (idx <= d->snap.index) {
            continue;
        }
        size_t pos = (size_t)(idx - d->snap.index - 1);
        assert(pos <= l->n);
        slog_truncate(l, pos);
        slog_push(l, &ents[i]);
    }
}

void disk_write(struct sim_disk *d, const struct raft_entry *ents, size_t n, uint64_t sync_at)
{
    if (n == 0) {
        return;
    }
    struct sim_write w = {.first = ents[0].index, .n = n, .sync_at = sync_at};
    if (d->n_pending > 0 && d->pending[d->n_pending - 1].sync_at > w.sync_at) {
        w.sync_at = d->pending[d->n_pending - 1].sync_at; /* fsyncs complete in order */
    }
    w.ents = xmalloc(n * sizeof(*w.ents));
    uint64_t prev = d->snap_chain;
    if (ents[0].index - 1 > d->snap.index) {
        const struct sim_entry *p = disk_entry(d, ents[0].index - 1);
        assert(p != NULL);
        prev = p->chain;
    }
    for (size_t i = 0; i < n; i++) {
        w.ents[i].e = ents[i];
        w.ents[i].chain = entry_chain(prev, &ents[i]);
        prev = w.ents[i].chain;
        if (ents[i].len > 0) {
            w.ents[i].e.data = xmalloc(ents[i].len);
            memcpy(w.ents[i].e.data, ents[i].data, ents[i].len);
        }
    }
    apply_write(d, &d->cur, w.ents, w.n);
    if (d->n_pending == d->cap_pending) {
        d->cap_pending = d->cap_pending ? d->cap_pending * 2 : 8;
        d->pending = realloc(d->pending, d->cap_pending * sizeof(*d->pending));
        if (d->pending == NULL) {
            abort();
        }
    }
    d->pending[d->n_pending++] = w;
}

bool disk_sync(struct sim_disk *d, uint64_t now, uint64_t *index, uint64_t *term)
{
    if (d->n_pending == 0 || d->pending[0].sync_at > now) {
        return false;
    }
    struct sim_write *w = &d->pending[0];
    apply_write(d, &d->dur, w->ents, w->n);
    *index = w->ents[w->n - 1].e.index;
    *term = w->ents[w->n - 1].e.term;
    free_write(w);
    memmove(d->pending, d->pending + 1, (d->n_pending - 1) * sizeof(*d->pending));
    d->n_pending--;
    return true;
}

void disk_crash(struct sim_disk *d, bool torn, struct sim_rng *g)
{
    if (torn && d->n_pending > 0) {
        /* Part of the batch reached the platter: whole earlier writes and a prefix of one. */
        size_t whole = (size_t)rng_below(g, d->n_pending);
        for (size_t i = 0; i < whole; i++) {
            apply_write(d, &d->dur, d->pending[i].ents, d->pending[i].n);
        }
        struct sim_write *w = &d->pending[whole];
        apply_write(d, &d->dur, w->ents, (size_t)rng_below(g, w->n + 1));
    }
    drop_pending(d);
    slog_truncate(&d->cur, 0);
    for (size_t i = 0; i < d->dur.n; i++) {
        slog_push(&d->cur, &d->dur.v[i]);
    }
}

void disk_install(struct sim_disk *d, const struct raft_snapshot_meta *meta, const uint8_t *data,
                  uint64_t chain)
{
    drop_pending(d);
    slog_truncate(&d->dur, 0);
    slog_truncate(&d->cur, 0);
    free(d->snap_data);
    d->snap_data = xmalloc(meta->size);
    if (meta->size > 0) {
        memcpy(d->snap_data, data, meta->size);
    }
    d->snap = *meta;
    d->snap_chain = chain;
}

void disk_compact(struct sim_disk *d, const struct raft_snapshot_meta *meta, uint8_t *data,
                  uint64_t chain)
{
    assert(meta->index > d->snap.index && meta->index <= d->snap.index + d->dur.n);
    size_t k = (size_t)(meta->index - d->snap.index);
    slog_drop_front(&d->dur, k);
    slog_drop_front(&d->cur, k);
    free(d->snap_data);
    d->snap_data = data;
    d->snap = *meta;
    d->snap_chain = chain;
}

/* ---- struct raft_storage over the disk ---- */

static int st_hard_state(void *ctx, struct raft_hard_state *out)
{
    struct sim_disk *d = ctx;
    *out = d->hs;
    return 0;
}

static int st_first_index(void *ctx, uint64_t *out)
{
    struct sim_disk *d = ctx;
    *out = d->snap.index + 1;
    return 0;
}

static int st_last_index(void *ctx, uint64_t *out)
{
    *out = disk_last_index(ctx);
    return 0;
}

static int st_term(void *ctx, uint64_t index, uint64_t *out)
{
    struct sim_disk *d = ctx;
    if (index == d->snap.index) {
        *out = d->snap.term;
        return 0;
    }
    if (index < d->snap.index) {
        return RAFT_ECOMPACTED;
    }
    const struct sim_entry *e = disk_entry(d, index);
    if (e == NULL) {
        return RAFT_EUNAVAILABLE;
    }
    *out = e->e.term;
    return 0;
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes,
                      struct raft_entry **out, size_t *n)
{
    struct sim_disk *d = ctx;
    if (lo <= d->snap.index) {
        return RAFT_ECOMPACTED;
    }
    if (hi > disk_last_index(d) + 1 || lo >= hi) {
        return RAFT_EUNAVAILABLE;
    }
    struct raft_entry *res = xmalloc((size_t)(hi - lo) * sizeof(*res));
    size_t count = 0, bytes = 0;
    for (uint64_t i = lo; i < hi; i++) {
        const struct sim_entry *e = disk_entry(d, i);
        if (count > 0 && bytes + e->e.len > max_bytes) {
            break;
        }
        res[count] = e->e;
        res[count].data = NULL;
        if (e->e.len > 0) {
            res[count].data = xmalloc(e->e.len);
            memcpy(res[count].data, e->e.data, e->e.len);
        }
        bytes += e->e.len;
        count++;
    }
    *out = res;
    *n = count;
    return 0;
}

static int st_snapshot_meta(void *ctx, struct raft_snapshot_meta *out)
{
    struct sim_disk *d = ctx;
    *out = d->snap;
    return 0;
}

static int st_snapshot_read(void *ctx, uint64_t index, uint64_t term, uint64_t offset,
                            size_t max_len, uint8_t **data, size_t *len)
{
    struct sim_disk *d = ctx;
    if (index != d->snap.index || term != d->snap.term || d->snap.index == 0) {
        return RAFT_ESNAPGONE;
    }
    if (offset > d->snap.size) {
        return RAFT_EINVAL;
    }
    size_t n = (size_t)(d->snap.size - offset);
    if (n > max_len) {
        n = max_len;
    }
    *data = xmalloc(n);
    if (n > 0) {
        memcpy(*data, d->snap_data + offset, n);
    }
    *len = n;
    return 0;
}

void disk_storage(struct sim_disk *d, struct raft_storage *st)
{
    st->ctx = d;
    st->hard_state = st_hard_state;
    st->first_index = st_first_index;
    st->last_index = st_last_index;
    st->term = st_term;
    st->entries = st_entries;
    st->snapshot_meta = st_snapshot_meta;
    st->snapshot_read = st_snapshot_read;
}
