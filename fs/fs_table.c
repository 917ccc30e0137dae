/* fs_table.c - local state of inodes with open files: their writers (for
 * getattr sizes and revision rebasing) and the values of inodes deleted
 * while open. One mutex; never held while waiting for the node. */
#include "fs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FS_TABLE_MIN_BUCKETS 64

static size_t bucket_of(const struct fs *fs, uint64_t ino)
{
    return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> 7) & (fs->nbuckets - 1);
}

int fs_table_init(struct fs *fs)
{
    fs->nbuckets = FS_TABLE_MIN_BUCKETS;
    fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
    if (!fs->buckets)
        return ENOMEM;
    pthread_mutex_init(&fs->mu, NULL);
    return 0;
}

void fs_table_fini(struct fs *fs)
{
    for (size_t i = 0; i < fs->nbuckets; i++) {
        struct fs_istate *is = fs->buckets[i];
        while (is) {
            struct fs_istate *next = is->next;
            free(is->orphan);
            free(is);
            is = next;
        }
    }
    free(fs->buckets);
    fs->buckets = NULL;
    pthread_mutex_destroy(&fs->mu);
}

static struct fs_istate *find(struct fs *fs, uint64_t ino)
{
    struct fs_istate *is = fs->buckets[bucket_of(fs, ino)];
    while (is && is->ino != ino)
        is = is->next;
    return is;
}

static void grow(struct fs *fs)
{
    size_t n = fs->nbuckets * 2;
    struct fs_istate **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* keep the longer chains */
    size_t old_n = fs->nbuckets;
    struct fs_istate **old = fs->buckets;
    fs->buckets = b;
    fs->nbuckets = n;
    for (size_t i = 0; i < old_n; i++) {
        struct fs_istate *is = old[i];
        while (is) {
            struct fs_istate *next = is->next;
            size_t k = bucket_of(fs, is->ino);
            is->next = b[k];
            b[k] = is;
            is = next;
        }
    }
    free(old);
}

int fs_table_open(struct fs *fs, struct fs_handle *h)
{
    pthread_mutex_lock(&fs->mu);
    struct fs_istate *is = find(fs, h->ino);
    if (!is) {
        is = calloc(1, sizeof(*is));
        if (!is) {
            pthread_mutex_unlock(&fs->mu);
            return ENOMEM;
        }
        is->ino = h->ino;
        if (fs->count >= fs->nbuckets)
            grow(fs);
        size_t k = bucket_of(fs, h->ino);
        is->next = fs->buckets[k];
        fs->buckets[k] = is;
        fs->count++;
    }
    is->opens++;
    h->is = is;
    if (h->writable) {
        h->next_writer = is->writers;
        is->writers = h;
    }
    pthread_mutex_unlock(&fs->mu);
    return 0;
}

bool fs_table_release(struct fs *fs, struct fs_handle *h)
{
    pthread_mutex_lock(&fs->mu);
    struct fs_istate *is = h->is;
    if (h->writable) {
        struct fs_handle **pp = &is->writers;
        while (*pp && *pp != h)
            pp = &(*pp)->next_writer;
        if (*pp)
            *pp = h->next_writer;
    }
    if (--is->opens == 0) {
        struct fs_istate **pp = &fs->buckets[bucket_of(fs, is->ino)];
        while (*pp != is)
            pp = &(*pp)->next;
        *pp = is->next;
        fs->count--;
        free(is->orphan);
        free(is);
    }
    h->is = NULL;
    bool free_now = h->borrows == 0;
    pthread_mutex_unlock(&fs->mu);
    return free_now;
}

pid_t fs_tgid_of(pid_t tid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    pid_t tgid = 0;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "Tgid:", 5)) {
            tgid = (pid_t)atoi(line + 5);
            break;
        }
    }
    fclose(f);
    return tgid;
}

/* Is writer h the one `tid` (through fh) works with? The same handle, the
 * same thread, or the same process. Table lock held. */
static bool is_callers(struct fs_handle *h, uint64_t fh, pid_t tid, pid_t *tgid)
{
    if (fh && (uint64_t)(uintptr_t)h == fh)
        return true;
    if (h->opener == tid)
        return true;
    if (!*tgid)
        *tgid = fs_tgid_of(tid);
    if (!h->opener_tgid)
        h->opener_tgid = fs_tgid_of(h->opener);
    return *tgid && h->opener_tgid == *tgid;
}

bool fs_table_writer_size(struct fs *fs, uint64_t ino, uint64_t fh, pid_t tid, uint64_t *size)
{
    bool found = false;
    pid_t tgid = 0;
    pthread_mutex_lock(&fs->mu);
    struct fs_istate *is = find(fs, ino);
    for (struct fs_handle *h = is ? is->writers : NULL; h; h = h->next_writer) {
        if (!atomic_load(&h->closed) && is_callers(h, fh, tid, &tgid)) {
            *size = atomic_load(&h->stat_size);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return found;
}

struct fs_handle *fs_table_writer_of(struct fs *fs, uint64_t ino, pid_t tid)
{
    struct fs_handle *found = NULL;
    pid_t tgid = 0;
    pthread_mutex_lock(&fs->mu);
    struct fs_istate *is = find(fs, ino);
    for (struct fs_handle *h = is ? is->writers : NULL; h; h = h->next_writer) {
        if (!h->append && !atomic_load(&h->closed) && is_callers(h, 0, tid, &tgid)) {
            found = h;
            h->borrows++;
            break;
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return found;
}

bool fs_table_writer_unborrow(struct fs *fs, struct fs_handle *h)
{
    pthread_mutex_lock(&fs->mu);
    bool last = --h->borrows == 0 && !h->is;
    pthread_mutex_unlock(&fs->mu);
    return last;
}

void fs_table_rebase(struct fs *fs, uint64_t ino, uint64_t old_rev, uint64_t new_rev)
{
    pthread_mutex_lock(&fs->mu);
    struct fs_istate *is = find(fs, ino);
    for (struct fs_handle *h = is ? is->writers : NULL; h; h = h->next_writer) {
        uint64_t expect = old_rev;
        if (h->has_expected_revision)
            atomic_compare_exchange_strong(&h->expected_revision, &expect, new_rev);
    }
    pthread_mutex_unlock(&fs->mu);
}

int fs_table_orphan_read(struct fs *fs, uint64_t ino, off_t off, size_t size, char **out,
                         size_t *len)
{
    int rc = ENOENT;
    pthread_mutex_lock(&fs->mu);
    struct fs_istate *is = find(fs, ino);
    if (is && is->orphaned) {
        size_t n = 0;
        if ((uint64_t)off < is->orphan_len) {
            n = is->orphan_len - (size_t)off;
            if (n > size)
                n = size;
        }
        *out = malloc(n ? n : 1);
        if (!*out) {
            rc = ENOMEM;
        } else {
            if (n)
                memcpy(*out, (char *)is->orphan + off, n);
            *len = n;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

int fs_table_orphan_attr(struct fs *fs, uint64_t ino, struct store_attr *out)
{
    int rc = ENOENT;
    pthread_mutex_lock(&fs->mu);
    struct fs_istate *is = find(fs, ino);
    if (is && is->orphaned) {
        *out = is->orphan_attr;
        rc = 0;
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

void fs_table_dropping(void *ctx, const struct store_attr *attr, const void *data, size_t len)
{
    struct fs *fs = ctx;
    uint64_t ino = attr->ino;
    pthread_mutex_lock(&fs->mu);
    struct fs_istate *is = find(fs, ino);
    if (is && !is->orphaned) {
        void *copy = malloc(len ? len : 1);
        if (copy) {
            if (len)
                memcpy(copy, data, len);
            is->orphan = copy;
            is->orphan_len = len;
            is->orphan_attr = *attr;
            is->orphan_attr.nlink = 0;
            is->orphaned = true;
        }
        /* Out of memory: readers of the deleted file get ESTALE. */
    }
    pthread_mutex_unlock(&fs->mu);
}
