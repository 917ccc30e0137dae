/* fs_known.c - the kernel's references to inodes, counted (fs_known.h).
 *
 * An open-addressing table (linear probing, deletion by shifting back the
 * run that follows), grown at half full. If it cannot grow, the table
 * gives up for good and every change is told, as before it existed: a
 * missed invalidation would be a stale cache, an extra one costs little.
 */
#include "fs_known.h"

#include <stdlib.h>

static size_t slot_of(const struct fs_known *k, uint64_t ino)
{
    return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 17) & (k->cap - 1);
}

void fs_known_init(struct fs_known *k, uint64_t always)
{
    *k = (struct fs_known){.always = always};
    pthread_mutex_init(&k->mu, NULL);
}

void fs_known_fini(struct fs_known *k)
{
    free(k->slots);
    k->slots = NULL;
    pthread_mutex_destroy(&k->mu);
}

static struct fs_known_slot *find(struct fs_known *k, uint64_t ino)
{
    if (!k->cap)
        return NULL;
    for (size_t i = slot_of(k, ino);; i = (i + 1) & (k->cap - 1)) {
        if (k->slots[i].ino == ino)
            return &k->slots[i];
        if (!k->slots[i].ino)
            return NULL;
    }
}

static void put(struct fs_known *k, uint64_t ino, uint64_t count)
{
    size_t i = slot_of(k, ino);
    while (k->slots[i].ino)
        i = (i + 1) & (k->cap - 1);
    k->slots[i] = (struct fs_known_slot){.ino = ino, .count = count};
}

static bool grow(struct fs_known *k)
{
    size_t cap = k->cap ? k->cap * 2 : 1024;
    struct fs_known_slot *old = k->slots, *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return false;
    size_t old_cap = k->cap;
    k->slots = slots;
    k->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].ino)
            put(k, old[i].ino, old[i].count);
    free(old);
    return true;
}

static void remove_at(struct fs_known *k, size_t i)
{
    /* Shift back every later entry of the run that may not stay behind
     * the hole (its home slot is not in (hole, its place]). */
    size_t hole = i;
    for (size_t j = (i + 1) & (k->cap - 1); k->slots[j].ino; j = (j + 1) & (k->cap - 1)) {
        size_t home = slot_of(k, k->slots[j].ino);
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            k->slots[hole] = k->slots[j];
            hole = j;
        }
    }
    k->slots[hole] = (struct fs_known_slot){0};
    k->n--;
}

uint64_t fs_known_gen(struct fs_known *k)
{
    pthread_mutex_lock(&k->mu);
    uint64_t g = k->gen;
    pthread_mutex_unlock(&k->mu);
    return g;
}

bool fs_known_ref(struct fs_known *k, uint64_t ino, uint64_t gen)
{
    pthread_mutex_lock(&k->mu);
    if (ino != k->always && !k->nomem) {
        struct fs_known_slot *s = find(k, ino);
        if (s) {
            s->count++;
        } else if ((k->n + 1) * 2 > k->cap && !grow(k)) {
            k->nomem = true;
        } else {
            put(k, ino, 1);
            k->n++;
        }
    }
    bool same = k->gen == gen;
    pthread_mutex_unlock(&k->mu);
    return same;
}

void fs_known_forget(struct fs_known *k, uint64_t ino, uint64_t n)
{
    pthread_mutex_lock(&k->mu);
    struct fs_known_slot *s = k->nomem ? NULL : find(k, ino);
    if (s) {
        if (s->count > n)
            s->count -= n;
        else
            remove_at(k, (size_t)(s - k->slots));
    }
    pthread_mutex_unlock(&k->mu);
}

bool fs_known_changed(struct fs_known *k, uint64_t ino)
{
    pthread_mutex_lock(&k->mu);
    bool held = ino == k->always || k->nomem || find(k, ino);
    if (held) {
        k->told++;
    } else {
        k->skipped++;
        k->gen++;
    }
    pthread_mutex_unlock(&k->mu);
    return held;
}

void fs_known_stats(struct fs_known *k, size_t *held, uint64_t *told, uint64_t *skipped)
{
    pthread_mutex_lock(&k->mu);
    *held = k->n;
    *told = k->told;
    *skipped = k->skipped;
    pthread_mutex_unlock(&k->mu);
}
