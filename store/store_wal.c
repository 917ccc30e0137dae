/* store_wal.c - the Raft log in append-only segment files (store_wal.h).
 *
 * Why not LMDB: a durable LMDB commit syncs twice (the data pages, then the
 * meta page), about 1.2 ms here under load; a write into a file whose blocks
 * exist already, then one fdatasync, costs about 0.25 ms. Every write a
 * client makes waits for one log write on the leader and one on a follower
 * (docs/benchmarks.md).
 *
 * Files, in wal/: segments named by a sequence number (16 hex digits,
 * ".seg"), each created whole — a header, then zeros to its size — synced
 * and renamed into place, so that writing a batch later changes no file
 * size and fdatasync has no metadata to write. Once the last segment is
 * half full, a helper thread makes the next one (as SEQ.tmp), so the
 * writer only renames it when the time comes instead of stopping to write
 * and sync 16 MiB. A segment holds batches one
 * after another; a batch is a header with its own CRC-32C (magic, sequence
 * number, payload length, payload CRC) and a payload of records: an entry,
 * the hard state, or the snapshot the log starts after. Each batch is one
 * pwrite and one fdatasync, and the next is written only after that sync, so
 * a crash can tear only the last batch written; after it the segment holds
 * zeros. At open, a batch that fails its checks at the end of the last
 * segment is a torn write: it is dropped and its bytes zeroed. Any other
 * damage (a bad batch followed by a good one, a segment missing in the
 * middle, a record that contradicts the log) is EIO: the member fails closed.
 *
 * A new segment starts with a copy of the snapshot and hard state records,
 * so that the segments before it can be deleted once the snapshot covers
 * their entries. The replay therefore may begin with entries whose
 * predecessors were deleted; it accepts that only until a snapshot record
 * reaches them, and refuses a log whose entries do not follow its snapshot.
 *
 * Readers see the log through an index in memory (term, type, segment and
 * offset of every entry) under a read-write lock, and read entries with
 * pread, one read per run of entries in a segment. The segments are mapped
 * only to be replayed at open: mapped pages that were read would count in
 * the process's resident memory (issue 6 compares it with etcd's).
 */
#include "store_wal.h"
#include "store_le.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "store_crc.h"
#include "store_internal.h"

#define SEG_MAGIC     "raftfswl"
#define SEG_VERSION   1
#define SEG_HDR       32 /* magic[8] | u32 version | u32 crc of 16..31 | u64 seq | u64 0 */
#define BATCH_MAGIC   0x4257524cu
#define BATCH_HDR     32 /* u32 magic | u32 crc of 8..31 | u64 seq | u32 len | u32 crc | u64 0 */
#define REC_HDR       8  /* u8 kind | u8 0 | u16 0 | u32 body length; body padded to 8 */
#define REC_ENTRY     1  /* u64 index | u64 term | u32 type | u32 0 | data */
#define REC_HARD      2  /* u64 term | u64 vote | u64 commit */
#define REC_SNAP      3  /* u64 index | u64 term | u64 size | u32 flags | u32 conf len | conf */
#define ENTRY_BODY    24
#define HARD_BODY     24
#define SNAP_BODY     32
#define SNAP_DROP_ALL 1u
#define ZERO_CHUNK    (1u << 20)

struct seg {
    uint64_t seq;
    int fd;
    unsigned char *map;
    size_t size;
    uint64_t max_index; /* the highest live entry it holds (0: none) */
};

struct ent {
    uint64_t term;
    uint64_t off; /* of the data, in its segment */
    uint64_t seg; /* the segment's sequence number */
    uint32_t type;
    uint32_t len;
};

struct store_wal {
    pthread_rwlock_t lock; /* readers vs. the index's and segments' changes */
    int dir_fd;
    bool read_only;
    int broken; /* an errno once a write failed in a way that cannot be undone */
    uint64_t seg_bytes;
    struct seg *segs; /* ascending, consecutive sequence numbers; the last is written */
    size_t n_segs, cap_segs;
    size_t write_off; /* in the last segment */
    uint64_t next_batch;
    struct store_log_snapshot snap;
    struct store_hard_state hs;
    struct ent *ents; /* ents[head .. head + n): indexes base .. base + n - 1 */
    size_t head, n, cap;
    uint64_t base;
    unsigned char *buf; /* the batch being built (the writer's) */
    size_t buf_cap;
    char note[256];
    /* The next segment, made ahead by a thread of its own (spare_main) so
     * that the writer does not stop to write 16 MiB of zeros and sync them
     * when a segment fills up. Set before the thread starts and read after
     * it is joined: no lock. */
    pthread_t spare_thread;
    bool spare_running;
    uint64_t made_ahead, made_in_place; /* segments, for tests and counters */
    uint64_t spare_seq;
    size_t spare_size;
    int spare_fd, spare_rc;
};

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

#define fail store_fail

static void seg_name(char *out, size_t len, uint64_t seq, const char *suffix)
{
    snprintf(out, len, "%016" PRIx64 "%s", seq, suffix);
}

/* ---- the index in memory -------------------------------------------- */

static uint64_t last_index(const struct store_wal *w)
{
    return w->n ? w->base + w->n - 1 : w->snap.index;
}

static struct ent *ent_at(struct store_wal *w, uint64_t index)
{
    return &w->ents[w->head + (index - w->base)];
}

/* Keeps entries below index (drops index and later ones). */
static void truncate_from(struct store_wal *w, uint64_t index)
{
    if (w->n && index < w->base + w->n)
        w->n = index > w->base ? (size_t)(index - w->base) : 0;
}

/* Drops entries up to and including index. */
static void drop_through(struct store_wal *w, uint64_t index)
{
    if (!w->n || index < w->base)
        return;
    if (index >= w->base + w->n - 1) {
        w->n = 0;
        w->head = 0;
        return;
    }
    size_t k = (size_t)(index - w->base + 1);
    w->head += k;
    w->n -= k;
    w->base = index + 1;
}

static int push_entry(struct store_wal *w, uint64_t index, const struct ent *e)
{
    if (!w->n) {
        w->head = 0;
        w->base = index;
    }
    if (w->head + w->n == w->cap) {
        if (w->head > w->cap / 2) { /* room at the front: move down */
            memmove(w->ents, w->ents + w->head, w->n * sizeof(*w->ents));
            w->head = 0;
        } else {
            size_t cap = w->cap ? w->cap * 2 : 1024;
            struct ent *p = realloc(w->ents, cap * sizeof(*p));
            if (!p)
                return ENOMEM;
            w->ents = p;
            w->cap = cap;
        }
    }
    w->ents[w->head + w->n++] = *e;
    return 0;
}

static struct seg *seg_of(struct store_wal *w, uint64_t seq)
{
    return &w->segs[seq - w->segs[0].seq];
}

/* ---- segments -------------------------------------------------------- */

static int seg_map(struct seg *sg)
{
    sg->map = mmap(NULL, sg->size, PROT_READ, MAP_SHARED, sg->fd, 0);
    if (sg->map == MAP_FAILED) {
        sg->map = NULL;
        return errno;
    }
    return 0;
}

static void seg_release(struct seg *sg)
{
    if (sg->map)
        munmap(sg->map, sg->size);
    if (sg->fd >= 0)
        close(sg->fd);
    sg->map = NULL;
    sg->fd = -1;
}

static int push_seg(struct store_wal *w, const struct seg *sg)
{
    if (w->n_segs == w->cap_segs) {
        size_t cap = w->cap_segs ? w->cap_segs * 2 : 8;
        struct seg *p = realloc(w->segs, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        w->segs = p;
        w->cap_segs = cap;
    }
    w->segs[w->n_segs++] = *sg;
    return 0;
}

/* Writes len zero bytes at off. */
static int write_zeros(int fd, uint64_t off, uint64_t len)
{
    static const unsigned char zeros[ZERO_CHUNK];
    while (len) {
        size_t k = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;
        ssize_t r = fault_pwrite(FAULT_LOG_WRITE, fd, zeros, k, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EIO;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t len, uint64_t off)
{
    while (len) {
        ssize_t r = fault_pwrite(FAULT_LOG_WRITE, fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EIO;
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int read_all(int fd, unsigned char *p, size_t len, uint64_t off)
{
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EIO; /* the file is shorter than the index says */
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Writes segment seq of size bytes as SEQ.tmp (a header, then zeros),
 * synced: 0 with *fd, or an errno with nothing left behind. */
static int seg_prepare(int dir_fd, uint64_t seq, size_t size, int *out_fd)
{
    char tmp[40];
    seg_name(tmp, sizeof(tmp), seq, ".tmp");
    int fd = openat(dir_fd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    unsigned char hdr[SEG_HDR] = {0};
    memcpy(hdr, SEG_MAGIC, 8);
    put32(hdr + 8, SEG_VERSION);
    put64(hdr + 16, seq);
    put32(hdr + 12, store_crc32c(0, hdr + 16, SEG_HDR - 16));
    int rc = write_all(fd, hdr, sizeof(hdr), 0);
    if (!rc)
        rc = write_zeros(fd, SEG_HDR, size - SEG_HDR);
    if (!rc && fault_fdatasync(FAULT_LOG_SYNC, fd))
        rc = errno;
    if (rc) {
        close(fd);
        unlinkat(dir_fd, tmp, 0);
        return rc;
    }
    *out_fd = fd;
    return 0;
}

/* Renames a prepared SEQ.tmp into place, durably. */
static int seg_publish(struct store_wal *w, uint64_t seq, int fd, size_t size, struct seg *out)
{
    char tmp[40], name[40];
    seg_name(tmp, sizeof(tmp), seq, ".tmp");
    seg_name(name, sizeof(name), seq, ".seg");
    int rc = 0;
    if (fault_renameat(FAULT_LOG_RENAME, w->dir_fd, tmp, w->dir_fd, name))
        rc = errno;
    if (!rc && fault_fsync(FAULT_LOG_SYNC, w->dir_fd))
        rc = errno;
    if (rc) {
        close(fd);
        unlinkat(w->dir_fd, tmp, 0);
        return rc;
    }
    *out = (struct seg){.seq = seq, .fd = fd, .size = size};
    return 0;
}

/* Creates segment seq of size bytes, durable. ENOSPC if there is no room
 * (nothing is left behind). */
static int seg_create(struct store_wal *w, uint64_t seq, size_t size, struct seg *out)
{
    int fd = -1;
    int rc = seg_prepare(w->dir_fd, seq, size, &fd);
    if (!rc)
        rc = seg_publish(w, seq, fd, size, out);
    /* A full disk shows as ENOSPC, or on some file systems EDQUOT. */
    return rc == EDQUOT ? ENOSPC : rc;
}

static void *spare_main(void *arg)
{
    struct store_wal *w = arg;
    pthread_setname_np(pthread_self(), "raftfs-wal");
    w->spare_fd = -1;
    w->spare_rc = seg_prepare(w->dir_fd, w->spare_seq, w->spare_size, &w->spare_fd);
    return NULL;
}

/* Starts making the segment after the last one (of the standard size),
 * once per segment: called when the last one is half full, so an idle log
 * keeps no spare and a short one (tests, a new member) none at all. */
static void spare_start(struct store_wal *w)
{
    if (w->read_only || w->spare_running || w->broken)
        return;
    uint64_t seq = w->n_segs ? w->segs[w->n_segs - 1].seq + 1 : 1;
    if (seq == w->spare_seq)
        return; /* tried already (and it failed, or was taken) */
    w->spare_seq = seq;
    w->spare_size = w->seg_bytes;
    w->spare_fd = -1;
    w->spare_rc = 0;
    w->spare_running = !pthread_create(&w->spare_thread, NULL, spare_main, w);
}

/* Waits for the spare, if one is being made: true if it was made (its fd
 * in w->spare_fd, the file SEQ.tmp). */
static bool spare_wait(struct store_wal *w)
{
    if (!w->spare_running)
        return false;
    pthread_join(w->spare_thread, NULL);
    w->spare_running = false;
    return !w->spare_rc;
}

/* Removes a spare made and not used. */
static void spare_drop(struct store_wal *w)
{
    char tmp[40];
    seg_name(tmp, sizeof(tmp), w->spare_seq, ".tmp");
    close(w->spare_fd);
    unlinkat(w->dir_fd, tmp, 0);
}

/* Hands the spare over if it is segment seq of size bytes and was made;
 * ENOENT if not (a spare of another size is removed). */
static int spare_take(struct store_wal *w, uint64_t seq, size_t size, struct seg *out)
{
    if (!spare_wait(w))
        return ENOENT;
    if (w->spare_seq != seq || w->spare_size != size) {
        spare_drop(w);
        return ENOENT;
    }
    return seg_publish(w, seq, w->spare_fd, size, out);
}

/* ---- records ---------------------------------------------------------- */

static int ensure_buf(struct store_wal *w, size_t need)
{
    if (need <= w->buf_cap)
        return 0;
    size_t cap = w->buf_cap ? w->buf_cap : 4096;
    while (cap < need)
        cap *= 2;
    unsigned char *p = fault_realloc(w->buf, cap);
    if (!p)
        return ENOMEM;
    w->buf = p;
    w->buf_cap = cap;
    return 0;
}

static size_t rec_hard(unsigned char *p, const struct store_hard_state *hs)
{
    memset(p, 0, REC_HDR);
    p[0] = REC_HARD;
    put32(p + 4, HARD_BODY);
    put64(p + REC_HDR, hs->term);
    put64(p + REC_HDR + 8, hs->vote);
    put64(p + REC_HDR + 16, hs->commit);
    return REC_HDR + HARD_BODY;
}

static size_t rec_snap(unsigned char *p, const struct store_log_snapshot *s, bool drop_all)
{
    size_t body = SNAP_BODY + s->conf_len;
    memset(p, 0, REC_HDR + pad8(body));
    p[0] = REC_SNAP;
    put32(p + 4, (uint32_t)body);
    put64(p + REC_HDR, s->index);
    put64(p + REC_HDR + 8, s->term);
    put64(p + REC_HDR + 16, s->size);
    put32(p + REC_HDR + 24, drop_all ? SNAP_DROP_ALL : 0);
    put32(p + REC_HDR + 28, (uint32_t)s->conf_len);
    memcpy(p + REC_HDR + SNAP_BODY, s->conf, s->conf_len);
    return REC_HDR + pad8(body);
}

static size_t rec_entry(unsigned char *p, const struct store_log_entry *e)
{
    size_t body = ENTRY_BODY + e->len;
    memset(p, 0, REC_HDR);
    p[0] = REC_ENTRY;
    put32(p + 4, (uint32_t)body);
    put64(p + REC_HDR, e->index);
    put64(p + REC_HDR + 8, e->term);
    put32(p + REC_HDR + 16, e->type);
    put32(p + REC_HDR + 20, 0);
    if (e->len)
        memcpy(p + REC_HDR + ENTRY_BODY, e->data, e->len);
    size_t padded = pad8(body);
    memset(p + REC_HDR + body, 0, padded - body);
    return REC_HDR + padded;
}

#define PROLOGUE_MAX (REC_HDR + SNAP_BODY + STORE_LOG_CONF_MAX + 8 + REC_HDR + HARD_BODY)

/* ---- applying records (the replay and the writer share these rules) --- */

struct replay {
    bool anchored; /* the entries follow the snapshot (not only a deleted prefix) */
};

static void seg_max_reset(struct store_wal *w)
{
    for (size_t i = 0; i < w->n_segs; i++)
        w->segs[i].max_index = 0;
}

/* An entry record at (seg, data offset). rp: the replay's state, NULL when
 * the writer applies what it checked already. */
static int apply_entry(struct store_wal *w, struct replay *rp, uint64_t index, const struct ent *e)
{
    /* UINT64_MAX leaves no next index: the bounds (last + 1) would wrap. */
    if (index <= w->snap.index || index == UINT64_MAX)
        return EIO;
    if (rp && !rp->anchored) {
        /* The segments before this one may have been deleted: the first
         * entries need not follow the snapshot this segment started with. */
        if (!w->n || index < w->base || index > last_index(w) + 1)
            w->n = 0;
        else
            truncate_from(w, index);
    } else {
        if (index > last_index(w) + 1 || (w->n && index < w->base))
            return EIO;
        truncate_from(w, index);
    }
    int rc = push_entry(w, index, e);
    if (rc)
        return rc;
    if (rp && w->base == w->snap.index + 1)
        rp->anchored = true;
    struct seg *sg = seg_of(w, e->seg);
    if (index > sg->max_index)
        sg->max_index = index;
    return 0;
}

static int apply_snap(struct store_wal *w, struct replay *rp, const struct store_log_snapshot *s,
                      bool drop_all)
{
    /* UINT64_MAX: the first index after it (index + 1) would wrap to 0. */
    if (s->index < w->snap.index || s->index == UINT64_MAX)
        return EIO;
    w->snap = *s;
    if (drop_all) {
        w->n = 0;
        w->head = 0;
        seg_max_reset(w);
    } else {
        drop_through(w, s->index);
    }
    /* Anchored once entries follow it, or none can precede it any more;
     * an empty window after a plain snapshot (a new segment's copy) is
     * decided by the next entry. */
    if (rp && (drop_all || (w->n && w->base == s->index + 1)))
        rp->anchored = true;
    return 0;
}

/* Decodes and applies the records of one batch's payload. */
static int apply_payload(struct store_wal *w, struct replay *rp, const struct seg *sg, size_t off,
                         size_t len)
{
    const unsigned char *p = sg->map + off, *end = p + len;
    while (p < end) {
        if (end - p < REC_HDR || p[1] || p[2] || p[3])
            return EIO;
        uint32_t body = get32(p + 4);
        if ((size_t)(end - p - REC_HDR) < pad8(body))
            return EIO;
        const unsigned char *b = p + REC_HDR;
        int rc;
        switch (p[0]) {
        case REC_ENTRY: {
            if (body < ENTRY_BODY || get32(b + 20))
                return EIO;
            struct ent e = {.term = get64(b + 8),
                            .type = get32(b + 16),
                            .seg = sg->seq,
                            .off = (uint64_t)(b + ENTRY_BODY - sg->map),
                            .len = body - ENTRY_BODY};
            rc = apply_entry(w, rp, get64(b), &e);
            break;
        }
        case REC_HARD:
            if (body != HARD_BODY)
                return EIO;
            w->hs = (struct store_hard_state){
                .term = get64(b), .vote = get64(b + 8), .commit = get64(b + 16)};
            rc = 0;
            break;
        case REC_SNAP: {
            uint32_t flags = get32(b + 24), conf_len = get32(b + 28);
            if (body < SNAP_BODY || conf_len > STORE_LOG_CONF_MAX || body != SNAP_BODY + conf_len ||
                (flags & ~SNAP_DROP_ALL))
                return EIO;
            struct store_log_snapshot s = {
                .index = get64(b), .term = get64(b + 8), .size = get64(b + 16)};
            memcpy(s.conf, b + SNAP_BODY, conf_len);
            s.conf_len = conf_len;
            rc = apply_snap(w, rp, &s, flags & SNAP_DROP_ALL);
            break;
        }
        default:
            return EIO;
        }
        if (rc)
            return rc;
        p += REC_HDR + pad8(body);
    }
    return 0;
}

/* ---- the replay --------------------------------------------------------- */

static bool all_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

/* Is there a batch header at off that checks? (seq: its sequence number) */
static bool header_ok(const struct seg *sg, size_t off, uint64_t *seq, uint32_t *len)
{
    if (off + BATCH_HDR > sg->size)
        return false;
    const unsigned char *h = sg->map + off;
    if (get32(h) != BATCH_MAGIC || get32(h + 4) != store_crc32c(0, h + 8, BATCH_HDR - 8))
        return false;
    *seq = get64(h + 8);
    *len = get32(h + 16);
    return !get64(h + 24) && *len % 8 == 0 && *len <= sg->size - off - BATCH_HDR;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sequence numbers of the segments in the directory, sorted; leftover
 * .tmp files (a creation cut short) are removed unless read_only. */
static int list_segments(struct store_wal *w, uint64_t **out, size_t *n_out, char *err,
                         size_t err_len)
{
    int fd = dup(w->dir_fd);
    if (fd < 0)
        return fail(err, err_len, errno, "wal/: %s", strerror(errno));
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return fail(err, err_len, errno, "wal/: %s", strerror(errno));
    }
    rewinddir(d);
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, ".."))
            continue;
        size_t len = strlen(nm);
        char *endp;
        uint64_t seq = len == 20 ? strtoull(nm, &endp, 16) : 0;
        bool hex16 = len == 20 && endp == nm + 16;
        if (hex16 && !strcmp(nm + 16, ".tmp")) {
            if (!w->read_only)
                unlinkat(w->dir_fd, nm, 0);
            continue;
        }
        if (!hex16 || strcmp(nm + 16, ".seg") || seq == 0) {
            rc = fail(err, err_len, EIO, "wal/%s: not a file of the log", nm);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *p = realloc(seqs, cap * sizeof(*p));
            if (!p) {
                rc = ENOMEM;
                break;
            }
            seqs = p;
        }
        seqs[n++] = seq;
    }
    closedir(d);
    if (rc) {
        free(seqs);
        return rc;
    }
    if (n)
        qsort(seqs, n, sizeof(*seqs), cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (seqs[i] != seqs[i - 1] + 1) {
            uint64_t missing = seqs[i - 1] + 1;
            free(seqs);
            return fail(err, err_len, EIO, "wal/: segment %016" PRIx64 " is missing", missing);
        }
    *out = seqs;
    *n_out = n;
    return 0;
}

static int open_segment(struct store_wal *w, uint64_t seq, char *err, size_t err_len)
{
    char name[40];
    seg_name(name, sizeof(name), seq, ".seg");
    int fd = openat(w->dir_fd, name, (w->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return fail(err, err_len, errno, "wal/%s: %s", name, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return fail(err, err_len, e, "wal/%s: %s", name, strerror(e));
    }
    struct seg sg = {.seq = seq, .fd = fd, .size = (size_t)st.st_size};
    if (st.st_size < SEG_HDR + BATCH_HDR) {
        close(fd);
        return fail(err, err_len, EIO, "wal/%s: too short (%lld bytes)", name,
                    (long long)st.st_size);
    }
    int rc = seg_map(&sg);
    if (rc) {
        close(fd);
        return fail(err, err_len, rc, "wal/%s: cannot map: %s", name, strerror(rc));
    }
    const unsigned char *h = sg.map;
    if (memcmp(h, SEG_MAGIC, 8) || get32(h + 8) != SEG_VERSION ||
        get32(h + 12) != store_crc32c(0, h + 16, SEG_HDR - 16) || get64(h + 16) != seq ||
        get64(h + 24)) {
        seg_release(&sg);
        return fail(err, err_len, EIO, "wal/%s: not a segment of the log (bad header)", name);
    }
    if ((rc = push_seg(w, &sg))) {
        seg_release(&sg);
        return rc;
    }
    return 0;
}

/* Replays segment i; for the last one, finds where writing goes on. */
static int replay_segment(struct store_wal *w, struct replay *rp, size_t i, char *err,
                          size_t err_len)
{
    struct seg *sg = &w->segs[i];
    bool last = i == w->n_segs - 1;
    size_t off = SEG_HDR;
    char name[40];
    seg_name(name, sizeof(name), sg->seq, ".seg");
    for (;;) {
        if (off + BATCH_HDR > sg->size)
            break;
        uint64_t seq = 0;
        uint32_t len = 0;
        bool hdr = false, ok = false;
        if (all_zero(sg->map + off, BATCH_HDR)) {
            /* The end of what was written here; in the last segment, only
             * zeros may follow (a batch torn before its header). */
            if (!last || all_zero(sg->map + off, sg->size - off))
                break;
        } else {
            hdr = header_ok(sg, off, &seq, &len) && (!w->next_batch || seq == w->next_batch);
            ok =
                hdr && get32(sg->map + off + 20) == store_crc32c(0, sg->map + off + BATCH_HDR, len);
        }
        if (!ok) {
            /* A torn write is possible only at the very end of the log:
             * in the last segment, with no good batch after it (a torn
             * batch's own payload, user data, is not searched). */
            bool later = false;
            size_t from = hdr ? off + BATCH_HDR + len : off + 8;
            for (size_t o = from; !later && o + BATCH_HDR <= sg->size; o += 8) {
                uint64_t s2;
                uint32_t l2;
                later = header_ok(sg, o, &s2, &l2) && (!w->next_batch || s2 >= w->next_batch);
            }
            if (!last || later)
                return fail(err, err_len, EIO,
                            "wal/%s: batch at offset %zu is damaged and a later one is not: "
                            "the log is corrupt",
                            name, off);
            snprintf(w->note, sizeof(w->note),
                     "discarded the last batch of the log (wal/%s offset %zu), torn by a crash "
                     "before it was acknowledged",
                     name, off);
            if (!w->read_only) {
                int rc = write_zeros(sg->fd, off, sg->size - off);
                if (!rc && fault_fdatasync(FAULT_LOG_SYNC, sg->fd))
                    rc = errno;
                if (rc)
                    return fail(err, err_len, rc, "wal/%s: cannot clear a torn batch: %s", name,
                                strerror(rc));
            }
            break;
        }
        int rc = apply_payload(w, rp, sg, off + BATCH_HDR, len);
        if (rc)
            return fail(err, err_len, rc == ENOMEM ? ENOMEM : EIO,
                        "wal/%s: batch at offset %zu contradicts the log before it%s", name, off,
                        rc == ENOMEM ? " (out of memory)" : "");
        w->next_batch = seq + 1;
        off += BATCH_HDR + len;
    }
    if (last)
        w->write_off = off;
    else if (off + BATCH_HDR <= sg->size && !all_zero(sg->map + off, sg->size - off))
        return fail(err, err_len, EIO, "wal/%s: data after the end of its batches", name);
    return 0;
}

int store_wal_open(const char *dir, bool read_only, uint64_t seg_bytes, struct store_wal **out,
                   char *err, size_t err_len)
{
    struct store_wal *w = calloc(1, sizeof(*w));
    if (!w)
        return fail(err, err_len, ENOMEM, "out of memory");
    w->read_only = read_only;
    w->seg_bytes = seg_bytes ? seg_bytes : STORE_WAL_SEG_BYTES;
    if (w->seg_bytes < STORE_WAL_SEG_MIN)
        w->seg_bytes = STORE_WAL_SEG_MIN;
    w->next_batch = 0;
    pthread_rwlock_init(&w->lock, NULL);
    w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dir_fd < 0) {
        int e = errno;
        free(w);
        return fail(err, err_len, e, "%s: %s", dir, strerror(e));
    }
    uint64_t *seqs = NULL;
    size_t n = 0;
    int rc = list_segments(w, &seqs, &n, err, err_len);
    for (size_t i = 0; !rc && i < n; i++)
        rc = open_segment(w, seqs[i], err, err_len);
    free(seqs);
    struct replay rp = {0};
    for (size_t i = 0; !rc && i < w->n_segs; i++)
        rc = replay_segment(w, &rp, i, err, err_len);
    if (!rc && w->n && w->base != w->snap.index + 1)
        rc = fail(err, err_len, EIO,
                  "wal/: the log's entries start at %" PRIu64
                  ", not right after its snapshot at %" PRIu64,
                  w->base, w->snap.index);
    if (rc) {
        store_wal_close(w);
        return rc;
    }
    if (!w->next_batch)
        w->next_batch = 1;
    /* The mappings served the replay only: entries are read with pread,
     * so the log's pages are not counted in this process's memory. */
    for (size_t i = 0; i < w->n_segs; i++) {
        if (w->segs[i].map)
            munmap(w->segs[i].map, w->segs[i].size);
        w->segs[i].map = NULL;
    }
    *out = w;
    return 0;
}

void store_wal_close(struct store_wal *w)
{
    if (!w)
        return;
    if (spare_wait(w))
        spare_drop(w);
    for (size_t i = 0; i < w->n_segs; i++)
        seg_release(&w->segs[i]);
    if (w->dir_fd >= 0)
        close(w->dir_fd);
    pthread_rwlock_destroy(&w->lock);
    free(w->segs);
    free(w->ents);
    free(w->buf);
    free(w);
}

const char *store_wal_note(const struct store_wal *w)
{
    return w->note;
}

/* ---- writing ------------------------------------------------------------ */

/* Writes the payload in w->buf + BATCH_HDR (len bytes, prologue included
 * when a new segment was started) as one batch, and syncs it. */
static int write_batch(struct store_wal *w, size_t len)
{
    unsigned char *h = w->buf;
    memset(h, 0, BATCH_HDR);
    put32(h, BATCH_MAGIC);
    put64(h + 8, w->next_batch);
    put32(h + 16, (uint32_t)len);
    put32(h + 20, store_crc32c(0, h + BATCH_HDR, len));
    put32(h + 4, store_crc32c(0, h + 8, BATCH_HDR - 8));
    struct seg *sg = &w->segs[w->n_segs - 1];
    int rc = write_all(sg->fd, h, BATCH_HDR + len, w->write_off);
    if (!rc && fault_fdatasync(FAULT_LOG_SYNC, sg->fd))
        rc = errno;
    if (rc) {
        /* Nothing written since the last good sync can be trusted now
         * (a failed fdatasync may have dropped the pages): stop writing. */
        w->broken = EIO;
        return EIO;
    }
    return 0;
}

/* Makes room for a batch of payload bytes: a new segment if the current one
 * cannot hold it. *prologue: the bytes of the copies that must open the
 * payload (written into w->buf + BATCH_HDR). */
static int make_room(struct store_wal *w, size_t payload, size_t *prologue)
{
    *prologue = 0;
    if (w->n_segs && w->write_off + BATCH_HDR + payload + BATCH_HDR <= w->segs[w->n_segs - 1].size)
        return 0;
    /* A new segment: the snapshot and hard state first, then the payload,
     * and room for the zero header that ends it. */
    size_t pro = REC_HDR + pad8(SNAP_BODY + w->snap.conf_len) + REC_HDR + HARD_BODY;
    size_t need = SEG_HDR + BATCH_HDR + pro + payload + BATCH_HDR;
    size_t size = w->seg_bytes;
    if (need > size)
        size = (need + 4095) & ~(size_t)4095;
    struct seg sg;
    uint64_t seq = w->n_segs ? w->segs[w->n_segs - 1].seq + 1 : 1;
    int rc = spare_take(w, seq, size, &sg);
    if (!rc)
        w->made_ahead++;
    if (rc == ENOENT && !(rc = seg_create(w, seq, size, &sg)))
        w->made_in_place++;
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&w->lock);
    rc = push_seg(w, &sg);
    pthread_rwlock_unlock(&w->lock);
    if (rc) {
        seg_release(&sg);
        char name[40];
        seg_name(name, sizeof(name), seq, ".seg");
        unlinkat(w->dir_fd, name, 0);
        return rc;
    }

    w->write_off = SEG_HDR;
    unsigned char *p = w->buf + BATCH_HDR;
    p += rec_snap(p, &w->snap, false);
    p += rec_hard(p, &w->hs);
    *prologue = (size_t)(p - (w->buf + BATCH_HDR));
    return 0;
}

int store_wal_append(struct store_wal *w, const struct store_hard_state *hs,
                     const struct store_log_entry *e, size_t n)
{
    if (w->read_only)
        return EROFS;
    if (w->broken)
        return w->broken;
    if (!hs && !n)
        return 0;
    size_t payload = hs ? REC_HDR + HARD_BODY : 0;
    if (n) {
        if (e[0].index <= w->snap.index || e[0].index > last_index(w) + 1)
            return EINVAL;
        for (size_t i = 0; i < n; i++) {
            if (e[i].index != e[0].index + i || e[i].index == UINT64_MAX ||
                e[i].len > UINT32_MAX - ENTRY_BODY - 8)
                return EINVAL;
            payload += REC_HDR + pad8(ENTRY_BODY + e[i].len);
        }
    }
    if (payload > UINT32_MAX - PROLOGUE_MAX)
        return EINVAL;
    int rc = ensure_buf(w, BATCH_HDR + PROLOGUE_MAX + payload);
    if (rc)
        return rc == ENOMEM ? ENOSPC : rc;
    size_t pro;
    if ((rc = make_room(w, payload, &pro)))
        return rc;
    struct seg *sg = &w->segs[w->n_segs - 1];
    unsigned char *start = w->buf + BATCH_HDR, *p = start + pro;
    if (hs)
        p += rec_hard(p, hs);
    unsigned char *first_entry = p;
    for (size_t i = 0; i < n; i++)
        p += rec_entry(p, &e[i]);
    size_t len = (size_t)(p - start);
    if ((rc = write_batch(w, len)))
        return rc;
    /* Into the index. */
    uint64_t data_base = w->write_off + BATCH_HDR + (uint64_t)(first_entry - start);
    pthread_rwlock_wrlock(&w->lock);
    if (hs)
        w->hs = *hs;
    if (n)
        truncate_from(w, e[0].index);
    uint64_t off = data_base;
    for (size_t i = 0; i < n && !rc; i++) {
        struct ent en = {.term = e[i].term,
                         .type = e[i].type,
                         .seg = sg->seq,
                         .off = off + REC_HDR + ENTRY_BODY,
                         .len = (uint32_t)e[i].len};
        rc = push_entry(w, e[i].index, &en);
        off += REC_HDR + pad8(ENTRY_BODY + e[i].len);
    }
    if (n && e[n - 1].index > sg->max_index)
        sg->max_index = e[n - 1].index;
    pthread_rwlock_unlock(&w->lock);
    w->write_off += BATCH_HDR + len;
    if (w->write_off > w->segs[w->n_segs - 1].size / 2)
        spare_start(w);
    w->next_batch++;
    if (rc) { /* the index lost entries the file holds: reopen to recover */
        w->broken = EIO;
        return EIO;
    }
    return 0;
}

int store_wal_compact(struct store_wal *w, const struct store_log_snapshot *snap, bool drop_all)
{
    if (w->read_only)
        return EROFS;
    if (w->broken)
        return w->broken;
    if (snap->conf_len > STORE_LOG_CONF_MAX || snap->index < w->snap.index ||
        snap->index == UINT64_MAX)
        return EINVAL;
    size_t payload = REC_HDR + pad8(SNAP_BODY + snap->conf_len);
    int rc = ensure_buf(w, BATCH_HDR + PROLOGUE_MAX + payload);
    if (rc)
        return rc == ENOMEM ? ENOSPC : rc;
    size_t pro;
    if ((rc = make_room(w, payload, &pro)))
        return rc;
    unsigned char *start = w->buf + BATCH_HDR;
    size_t len = pro + rec_snap(start + pro, snap, drop_all);
    if ((rc = write_batch(w, len)))
        return rc;
    w->write_off += BATCH_HDR + len;
    if (w->write_off > w->segs[w->n_segs - 1].size / 2)
        spare_start(w);
    w->next_batch++;
    /* The segments before the last that hold no entry after the snapshot
     * go, oldest first (the last one's prologue or records carry the
     * snapshot and hard state on). */
    pthread_rwlock_wrlock(&w->lock);
    apply_snap(w, NULL, snap, drop_all);
    size_t k = 0;
    while (k + 1 < w->n_segs && w->segs[k].max_index <= snap->index)
        k++;
    struct seg gone[k ? k : 1];
    memcpy(gone, w->segs, k * sizeof(*gone));
    memmove(w->segs, w->segs + k, (w->n_segs - k) * sizeof(*w->segs));
    w->n_segs -= k;
    pthread_rwlock_unlock(&w->lock);
    for (size_t i = 0; i < k; i++) {
        char name[40];
        seg_name(name, sizeof(name), gone[i].seq, ".seg");
        seg_release(&gone[i]);
        unlinkat(w->dir_fd, name, 0);
    }
    if (k)
        fsync(w->dir_fd); /* a segment that comes back is replayed harmlessly */
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

void store_wal_hard_state(struct store_wal *w, struct store_hard_state *out)
{
    pthread_rwlock_rdlock(&w->lock);
    *out = w->hs;
    pthread_rwlock_unlock(&w->lock);
}

void store_wal_snapshot(struct store_wal *w, struct store_log_snapshot *out)
{
    pthread_rwlock_rdlock(&w->lock);
    *out = w->snap;
    pthread_rwlock_unlock(&w->lock);
}

void store_wal_bounds(struct store_wal *w, uint64_t *first, uint64_t *last)
{
    pthread_rwlock_rdlock(&w->lock);
    *first = w->snap.index + 1;
    *last = last_index(w);
    pthread_rwlock_unlock(&w->lock);
}

int store_wal_term(struct store_wal *w, uint64_t index, uint64_t *term)
{
    int rc = 0;
    pthread_rwlock_rdlock(&w->lock);
    if (index < w->snap.index)
        rc = STORE_ECOMPACTED;
    else if (index == w->snap.index)
        *term = w->snap.term; /* 0 for the empty log's sentinel */
    else if (index > last_index(w))
        rc = ENOENT;
    else
        *term = ent_at(w, index)->term;
    pthread_rwlock_unlock(&w->lock);
    return rc;
}

int store_wal_entries(struct store_wal *w, uint64_t lo, uint64_t hi, size_t max_bytes,
                      struct store_log_entry **out, size_t *n)
{
    if (hi <= lo)
        return EINVAL;
    int rc = 0;
    pthread_rwlock_rdlock(&w->lock);
    if (lo <= w->snap.index) {
        rc = STORE_ECOMPACTED;
        goto out;
    }
    if (hi - 1 > last_index(w)) {
        rc = ENOENT;
        goto out;
    }
    size_t count = 0, bytes = 0;
    for (uint64_t i = lo; i < hi; i++) {
        size_t len = ent_at(w, i)->len;
        if (count && bytes + len > max_bytes)
            break;
        bytes += len;
        count++;
    }
    struct store_log_entry *arr = malloc(count * sizeof(*arr) + bytes + 1);
    if (!arr) {
        rc = ENOMEM;
        goto out;
    }
    unsigned char *data = (unsigned char *)(arr + count), *span = NULL;
    size_t span_cap = 0;
    for (size_t i = 0; i < count;) {
        /* A run of entries in one segment is one read, from the first's
         * data to the last's end (record headers between them). */
        const struct ent *first = ent_at(w, lo + i);
        size_t j = i + 1;
        while (j < count && ent_at(w, lo + j)->seg == first->seg &&
               ent_at(w, lo + j)->off > ent_at(w, lo + j - 1)->off)
            j++;
        const struct ent *last = ent_at(w, lo + j - 1);
        size_t len = (size_t)(last->off + last->len - first->off);
        if (len > span_cap) {
            unsigned char *p = realloc(span, len);
            if (!p) {
                rc = ENOMEM;
                break;
            }
            span = p;
            span_cap = len;
        }
        if (len && (rc = read_all(seg_of(w, first->seg)->fd, span, len, first->off)))
            break;
        for (size_t k = i; k < j; k++) {
            const struct ent *en = ent_at(w, lo + k);
            arr[k] = (struct store_log_entry){
                .index = lo + k, .term = en->term, .type = en->type, .data = data, .len = en->len};
            if (en->len)
                memcpy(data, span + (en->off - first->off), en->len);
            data += en->len;
        }
        i = j;
    }
    free(span);
    if (rc) {
        free(arr);
        rc = rc == ENOMEM ? ENOMEM : EIO;
        goto out;
    }
    *out = arr;
    *n = count;
out:
    pthread_rwlock_unlock(&w->lock);
    return rc;
}

void store_wal_made(const struct store_wal *w, uint64_t *ahead, uint64_t *in_place)
{
    *ahead = w->made_ahead;
    *in_place = w->made_in_place;
}

void store_wal_usage(struct store_wal *w, size_t *segments, uint64_t *bytes)
{
    pthread_rwlock_rdlock(&w->lock);
    *segments = w->n_segs;
    *bytes = 0;
    for (size_t i = 0; i < w->n_segs; i++)
        *bytes += w->segs[i].size;
    pthread_rwlock_unlock(&w->lock);
}
