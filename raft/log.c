/* raft/log.c: the core's view of the log: storage (durable) plus the unstable tail in memory. */
#include "log.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static int record(struct raft_log *l, int rc)
{
    if (rc != 0 && rc != RAFT_ECOMPACTED && rc != RAFT_EUNAVAILABLE && l->err == 0) {
        l->err = rc;
    }
    return rc;
}

int raft_log_init(struct raft_log *l, struct raft_storage *st)
{
    memset(l, 0, sizeof(*l));
    l->st = st;
    uint64_t last = 0;
    int rc = st->last_index(st->ctx, &last);
    if (rc != 0) {
        return rc;
    }
    l->stable = last;
    l->handed = last;
    return 0;
}

void raft_entries_free(struct raft_entry *ents, size_t n)
{
    if (ents == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(ents[i].data);
    }
    free(ents);
}

void raft_log_close(struct raft_log *l)
{
    raft_entries_free(l->ents, l->n);
    l->ents = NULL;
    l->n = 0;
    l->cap = 0;
    free(l->writes);
    l->writes = NULL;
    l->n_writes = 0;
    l->cap_writes = 0;
}

int raft_entry_copy(struct raft_entry *dst, const struct raft_entry *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->len > 0) {
        dst->data = malloc(src->len);
        if (dst->data == NULL) {
            return RAFT_ENOMEM;
        }
        memcpy(dst->data, src->data, src->len);
    }
    return 0;
}

uint64_t raft_log_last_index(const struct raft_log *l)
{
    return l->stable + l->n;
}

int raft_log_entry_term(struct raft_log *l, uint64_t index, uint64_t *term)
{
    if (index > l->stable) {
        if (index - l->stable > l->n) {
            return RAFT_EUNAVAILABLE;
        }
        *term = l->ents[index - l->stable - 1].term;
        return 0;
    }
    if (l->has_snap) {
        if (index == l->snap.index) {
            *term = l->snap.term;
            return 0;
        }
        return RAFT_ECOMPACTED;
    }
    return record(l, l->st->term(l->st->ctx, index, term));
}

uint64_t raft_log_last_term(struct raft_log *l)
{
    uint64_t t = 0;
    if (raft_log_entry_term(l, raft_log_last_index(l), &t) != 0) {
        return 0;
    }
    return t;
}

bool raft_log_match_term(struct raft_log *l, uint64_t index, uint64_t term)
{
    uint64_t t = 0;
    return raft_log_entry_term(l, index, &t) == 0 && t == term;
}

uint64_t raft_log_first_index(struct raft_log *l)
{
    if (l->has_snap) {
        return l->snap.index + 1;
    }
    uint64_t first = 1;
    record(l, l->st->first_index(l->st->ctx, &first));
    return first;
}

bool raft_log_is_up_to_date(struct raft_log *l, uint64_t last_index, uint64_t last_term)
{
    uint64_t my_term = raft_log_last_term(l);
    return last_term > my_term || (last_term == my_term && last_index >= raft_log_last_index(l));
}

int raft_log_entries(struct raft_log *l, uint64_t lo, uint64_t hi, size_t max_bytes,
                     struct raft_entry **out, size_t *n)
{
    int rc = 0;
    struct raft_entry *res = NULL;
    size_t count = 0;
    size_t bytes = 0;
    *out = NULL;
    *n = 0;
    if (lo >= hi) {
        return 0;
    }
    if (hi > raft_log_last_index(l) + 1) {
        return RAFT_EUNAVAILABLE;
    }
    if (lo <= l->stable && l->has_snap) {
        return RAFT_ECOMPACTED;
    }
    res = calloc(hi - lo, sizeof(*res));
    if (res == NULL) {
        return RAFT_ENOMEM;
    }
    if (lo <= l->stable) {
        uint64_t shi = hi < l->stable + 1 ? hi : l->stable + 1;
        struct raft_entry *got = NULL;
        size_t ngot = 0;
        rc = record(l, l->st->entries(l->st->ctx, lo, shi, max_bytes, &got, &ngot));
        if (rc != 0) {
            goto err_res;
        }
        if (ngot == 0 || ngot > shi - lo || got[0].index != lo) {
            raft_entries_free(got, ngot);
            rc = record(l, RAFT_ECORRUPT);
            goto err_res;
        }
        for (size_t i = 0; i < ngot; i++) {
            res[count++] = got[i];
            bytes += got[i].len;
        }
        free(got); /* the data now belong to res */
        if (ngot < shi - lo || bytes >= max_bytes) {
            goto done;
        }
    }
    for (uint64_t i = lo + count; i < hi; i++) {
        const struct raft_entry *e = &l->ents[i - l->stable - 1];
        if (count > 0 && bytes + e->len > max_bytes) {
            break;
        }
        rc = raft_entry_copy(&res[count], e);
        if (rc != 0) {
            goto err_res;
        }
        count++;
        bytes += e->len;
    }
done:
    *out = res;
    *n = count;
    return 0;
err_res:
    raft_entries_free(res, count);
    return rc;
}

static int reserve(struct raft_log *l, size_t want)
{
    if (want <= l->cap) {
        return 0;
    }
    size_t cap = l->cap ? l->cap * 2 : 64;
    while (cap < want) {
        cap *= 2;
    }
    struct raft_entry *p = realloc(l->ents, cap * sizeof(*p));
    if (p == NULL) {
        return RAFT_ENOMEM;
    }
    l->ents = p;
    l->cap = cap;
    return 0;
}

int raft_log_append(struct raft_log *l, const struct raft_entry *ents, size_t n)
{
    if (n == 0) {
        return 0;
    }
    uint64_t first = ents[0].index;
    assert(first >= 1 && first <= raft_log_last_index(l) + 1);
    assert(first > l->committed);
    if (first <= l->stable) {
        /* Durable entries are being replaced: the storage write of these entries will
         * truncate them; until it is durable nothing at or above first counts as stable. */
        raft_entries_free(l->ents, l->n);
        l->ents = NULL;
        l->n = 0;
        l->cap = 0;
        l->stable = first - 1;
    } else {
        size_t keep = (size_t)(first - l->stable - 1);
        for (size_t i = keep; i < l->n; i++) {
            free(l->ents[i].data);
        }
        l->n = keep;
    }
    if (l->handed > first - 1) {
        l->handed = first - 1;
    }
    int rc = reserve(l, l->n + n);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        assert(ents[i].index == first + i);
        rc = raft_entry_copy(&l->ents[l->n], &ents[i]);
        if (rc != 0) {
            return rc;
        }
        l->n++;
    }
    return 0;
}

uint64_t raft_log_find_conflict(struct raft_log *l, const struct raft_entry *ents, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!raft_log_match_term(l, ents[i].index, ents[i].term)) {
            return ents[i].index;
        }
    }
    return 0;
}

int raft_log_handed_write(struct raft_log *l, uint64_t first, uint64_t last, uint64_t term)
{
    if (l->n_writes == l->cap_writes) {
        size_t cap = l->cap_writes ? l->cap_writes * 2 : 16;
        struct raft_log_write *p = realloc(l->writes, cap * sizeof(*p));
        if (p == NULL) {
            return RAFT_ENOMEM;
        }
        l->writes = p;
        l->cap_writes = cap;
    }
    l->writes[l->n_writes].first = first;
    l->writes[l->n_writes].last = last;
    l->writes[l->n_writes].term = term;
    l->n_writes++;
    return 0;
}

bool raft_log_stable_to(struct raft_log *l, uint64_t index, uint64_t term)
{
    size_t k = 0;
    while (k < l->n_writes && (l->writes[k].last != index || l->writes[k].term != term)) {
        k++;
    }
    if (k == l->n_writes) {
        return false;
    }
    /* Writes become durable in order: this one and every earlier one are. */
    k++;
    memmove(l->writes, l->writes + k, (l->n_writes - k) * sizeof(*l->writes));
    l->n_writes -= k;
    uint64_t to = l->handed;
    for (size_t i = 0; i < l->n_writes; i++) {
        if (l->writes[i].first <= l->writes[i].last && l->writes[i].first - 1 < to) {
            to = l->writes[i].first - 1;
        }
    }
#ifdef RAFT_MUTATE_PERSIST_NO_TERM_CHECK
    to = index < l->handed ? index : l->handed;
#endif
    if (to <= l->stable) {
        return false;
    }
    index = to;
    size_t drop = (size_t)(index - l->stable);
    for (size_t i = 0; i < drop; i++) {
        free(l->ents[i].data);
    }
    memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(*l->ents));
    l->n -= drop;
    l->stable = index;
    return true;
}

void raft_log_restore(struct raft_log *l, const struct raft_snapshot_meta *meta)
{
    raft_entries_free(l->ents, l->n);
    l->ents = NULL;
    l->n = 0;
    l->cap = 0;
    l->has_snap = true;
    l->snap = *meta;
    l->stable = meta->index;
    l->handed = meta->index;
    /* Writes handed out before the install cover nothing any more; their notices (if any
     * come) still match them rather than a later write of the same (index, term). */
    for (size_t i = 0; i < l->n_writes; i++) {
        l->writes[i].first = l->writes[i].last + 1;
    }
    l->committed = meta->index;
    l->applied = meta->index;
}

void raft_log_snapshot_done(struct raft_log *l)
{
    l->has_snap = false;
}
