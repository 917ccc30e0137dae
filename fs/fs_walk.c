/* fs_walk.c - the names each calling thread's path walk went through (see
 * fs_walk.h). A small table of slots, one per thread with unchecked steps,
 * searched in full (it is small, and a slot is freed as soon as its walk is
 * checked). */
#include "fs_walk.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A thread that is gone never ends its walk: its slot may be taken back.
 * Unsure (no /proc) counts as alive: a step is never dropped unchecked. */
static bool proc_alive(uint32_t tid)
{
    char path[32];
    if (access("/proc/self", F_OK) != 0)
        return true;
    snprintf(path, sizeof path, "/proc/%u", tid);
    return access(path, F_OK) == 0 || errno != ENOENT;
}

int fs_walks_init(struct fs_walks *w, size_t cap)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    w->alive = proc_alive;
    w->scan_gap_ns = 1000000000ULL;
    if (cap && (!(w->tids = calloc(cap, sizeof(*w->tids))) ||
                !(w->slots = calloc(cap, sizeof(*w->slots))))) {
        free(w->tids);
        w->tids = NULL;
        return ENOMEM;
    }
    w->cap = cap;
    return 0;
}

void fs_walks_free(struct fs_walks *w)
{
    free(w->tids);
    free(w->slots);
    w->tids = NULL;
    w->slots = NULL;
    w->cap = 0;
    pthread_mutex_destroy(&w->mu);
}

/* tid's slot (tid 0: a free one), or -1. */
static ptrdiff_t find(const struct fs_walks *w, uint32_t tid)
{
    for (size_t i = 0; i < w->cap; i++)
        if (w->tids[i] == tid)
            return (ptrdiff_t)i;
    return -1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A free slot for tid, taking back those of threads that are gone. */
static struct fs_walk_slot *take(struct fs_walks *w, uint32_t tid)
{
    ptrdiff_t i = find(w, 0);
    if (i < 0 && w->alive) {
        uint64_t now = now_ns();
        if (!w->last_scan_ns || now - w->last_scan_ns >= w->scan_gap_ns) {
            w->last_scan_ns = now;
            for (size_t j = 0; i < 0 && j < w->cap; j++)
                if (!w->alive(w->tids[j]))
                    i = (ptrdiff_t)j;
        }
    }
    if (i < 0)
        return NULL;
    w->tids[i] = tid;
    w->slots[i].n = 0;
    return &w->slots[i];
}

static struct fs_walk_slot *slot_of(struct fs_walks *w, uint32_t tid)
{
    ptrdiff_t i = find(w, tid);
    return i < 0 ? NULL : &w->slots[i];
}

int fs_walk_add(struct fs_walks *w, uint32_t tid, uint64_t parent, const char *name, size_t len,
                uint64_t ino)
{
    if (!tid || len > FS_WALK_NAME_MAX)
        return EINVAL;
    pthread_mutex_lock(&w->mu);
    struct fs_walk_slot *s = slot_of(w, tid);
    if (!s)
        s = take(w, tid);
    if (!s) {
        pthread_mutex_unlock(&w->mu);
        return ENOSPC;
    }
    /* The walk goes on from the last step that reached parent (the one
     * before, or an earlier one after ".."); from no step: a new walk. */
    uint32_t k = s->n;
    while (k > 0 && s->steps[k - 1].ino != parent)
        k--;
    if (k == FS_WALK_STEPS) {
        pthread_mutex_unlock(&w->mu);
        return ENOSPC;
    }
    struct fs_walk_step *st = &s->steps[k];
    st->parent = parent;
    st->ino = ino;
    st->len = (uint8_t)len;
    memcpy(st->name, name, len);
    s->n = k + 1;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

bool fs_walk_pending(struct fs_walks *w, uint32_t tid, uint64_t ino)
{
    if (!tid)
        return false;
    pthread_mutex_lock(&w->mu);
    struct fs_walk_slot *s = slot_of(w, tid);
    bool yes = s && s->n && s->steps[s->n - 1].ino == ino;
    pthread_mutex_unlock(&w->mu);
    return yes;
}

int fs_walk_check(struct fs_walks *w, uint32_t tid, uint64_t ino, fs_walk_holds holds, void *ctx)
{
    if (!tid)
        return 0;
    struct fs_walk_step steps[FS_WALK_STEPS];
    uint32_t n = 0;
    pthread_mutex_lock(&w->mu);
    ptrdiff_t i = find(w, tid);
    if (i >= 0) {
        struct fs_walk_slot *s = &w->slots[i];
        if (s->n && (!ino || s->steps[s->n - 1].ino == ino)) {
            n = s->n;
            memcpy(steps, s->steps, n * sizeof(steps[0]));
        }
        s->n = 0;
        w->tids[i] = 0;
    }
    pthread_mutex_unlock(&w->mu);
    for (uint32_t k = 0; k < n; k++)
        if (!holds(ctx, &steps[k]))
            return ESTALE;
    return 0;
}
