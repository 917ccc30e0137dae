/* fuzz_wal.c - the Raft log's files (store/store_wal.c), as a member finds
 * them at its next start: store_wal_open replays any bytes given as one or
 * two segment files of wal/, and must either refuse them (EIO, with the
 * place in err) or give a log whose every entry reads back (bounds, term,
 * entries), which takes a new batch and opens again to the same log.
 *
 * The input: a byte of flags, then the segments' bytes after their
 * 32-byte headers. Headers and batch CRCs are set by the target unless a
 * flag says not to, so that the fuzzer spends its time on batch headers
 * (sequence numbers, lengths) and the records (entries, hard state,
 * snapshot) rather than on CRC-32C; the unfixed case checks the CRCs.
 * The directory is on tmpfs, made once per process and emptied per input;
 * new segments are of the smallest size (64 KiB), which keeps an append
 * that needs one cheap.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_crc.h"
#include "store_le.h"
#include "store_wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* From store_wal.c (the format is docs/store-format.md's). */
#define SEG_HDR     32
#define BATCH_HDR   32
#define BATCH_MAGIC 0x4257524cu

#define F_READ_ONLY 0x01 /* open read only (as the offline check does) */
#define F_RAW       0x02 /* no header or CRC set by the target */
#define F_TWO       0x04 /* two segments, split where the next byte says */
#define F_ZEROS     0x08 /* zeros after the bytes, as in a segment made whole */
#define F_APPEND    0x10 /* after an open, append and open again */
#define F_SEQ_GAP   0x20 /* the second segment's number skips one */

static char wal[64];

static void wal_clear(void)
{
    DIR *d = opendir(wal);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            char p[128];
            snprintf(p, sizeof(p), "%s/%s", wal, de->d_name);
            unlink(p);
        }
    closedir(d);
}

static void wal_remove(void)
{
    wal_clear();
    rmdir(wal);
}

static void wal_make(void)
{
    snprintf(wal, sizeof(wal), "/dev/shm/raftfs-fuzz-wal.XXXXXX");
    if (!mkdtemp(wal)) {
        snprintf(wal, sizeof(wal), "/tmp/raftfs-fuzz-wal.XXXXXX");
        if (!mkdtemp(wal))
            abort();
    }
    atexit(wal_remove);
}

/* Sets the CRCs of the batches that follow one another from off. */
static void fix_batches(uint8_t *seg, size_t size, size_t off)
{
    while (off + BATCH_HDR <= size && get32(seg + off) == BATCH_MAGIC) {
        uint32_t len = get32(seg + off + 16);
        if (len % 8 || len > size - off - BATCH_HDR)
            return;
        put32(seg + off + 20, store_crc32c(0, seg + off + BATCH_HDR, len));
        put32(seg + off + 4, store_crc32c(0, seg + off + 8, BATCH_HDR - 8));
        off += BATCH_HDR + len;
    }
}

static void seg_write(uint64_t seq, const uint8_t *p, size_t len, uint8_t flags)
{
    size_t hdr = flags & F_RAW ? 0 : SEG_HDR, zeros = flags & F_ZEROS ? 256 : 0;
    size_t size = hdr + len + zeros;
    uint8_t *seg = calloc(1, size ? size : 1);
    if (!seg)
        abort();
    if (hdr) {
        memcpy(seg, "raftfswl", 8);
        put32(seg + 8, 1);
        put64(seg + 16, seq);
        put32(seg + 12, store_crc32c(0, seg + 16, SEG_HDR - 16));
    }
    memcpy(seg + hdr, p, len);
    if (!(flags & F_RAW))
        fix_batches(seg, size, SEG_HDR);
    char path[128];
    snprintf(path, sizeof(path), "%s/%016llx.seg", wal, (unsigned long long)seq);
    FILE *f = fopen(path, "we");
    if (!f || (size && fwrite(seg, 1, size, f) != size) || fclose(f))
        abort();
    free(seg);
}

struct view {
    uint64_t first, last;
    struct store_hard_state hs;
    struct store_log_snapshot snap;
};

/* Everything the open log holds reads back, and agrees with itself. */
static void wal_read_all(struct store_wal *w, struct view *v)
{
    store_wal_bounds(w, &v->first, &v->last);
    store_wal_hard_state(w, &v->hs);
    store_wal_snapshot(w, &v->snap);
    if (v->first != v->snap.index + 1 || v->last < v->snap.index || v->snap.conf_len > 1024)
        abort();
    uint64_t term;
    if (v->snap.index && (store_wal_term(w, v->snap.index, &term) || term != v->snap.term))
        abort();
    if (v->snap.index > 1 && store_wal_term(w, v->snap.index - 1, &term) != STORE_ECOMPACTED)
        abort();
    if (v->last < UINT64_MAX && store_wal_term(w, v->last + 1, &term) != ENOENT)
        abort();
    if (v->last < v->first)
        return;
    struct store_log_entry *e;
    size_t n;
    uint64_t lo = v->first;
    while (lo <= v->last) {
        if (store_wal_entries(w, lo, v->last + 1, 1 << 16, &e, &n) || n == 0 ||
            n > v->last + 1 - lo)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (e[i].index != lo + i || store_wal_term(w, e[i].index, &term) || term != e[i].term ||
                (e[i].len && !e[i].data))
                abort();
            volatile uint8_t sum = 0; /* touch every byte: ASan sees a read past it */
            for (size_t j = 0; j < e[i].len; j++)
                sum ^= ((const uint8_t *)e[i].data)[j];
            (void)sum;
        }
        lo += n;
        free(e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (!wal[0])
        wal_make();
    wal_clear();
    uint8_t flags = data[0];
    uint64_t seq = 1 + (data[1] & 3);
    data += 2;
    size -= 2;
    if ((flags & F_TWO) && size) {
        size_t cut = data[0] * (size - 1) / 255 + 1;
        seg_write(seq, data + 1, cut - 1, flags);
        seg_write(seq + 1 + !!(flags & F_SEQ_GAP), data + cut, size - cut, flags);
    } else {
        seg_write(seq, data, size, flags);
    }
    struct store_wal *w;
    char err[256] = "";
    int rc = store_wal_open(wal, flags & F_READ_ONLY, STORE_WAL_SEG_MIN, &w, err, sizeof(err));
    if (getenv("FUZZ_WAL_TRACE"))
        fprintf(stderr, "fuzz_wal: open: %d %s\n", rc, err);
    if (rc) {
        if (rc != EIO || !err[0])
            abort(); /* damage is EIO, said where */
        return 0;
    }
    struct view v;
    wal_read_all(w, &v);
    if (!(flags & F_APPEND) || (flags & F_READ_ONLY) || v.last == UINT64_MAX ||
        v.last >= ((uint64_t)1 << 62)) {
        store_wal_close(w);
        return 0;
    }
    /* The log goes on where it ends: a new entry, then the same log plus it
     * after another open. */
    struct store_hard_state hs = {.term = v.hs.term + 1, .vote = 2, .commit = v.hs.commit};
    struct store_log_entry e = {
        .index = v.last + 1, .term = v.snap.term + 1, .type = 1, .data = "new", .len = 3};
    rc = store_wal_append(w, &hs, &e, 1);
    store_wal_close(w);
    if (rc)
        abort();
    if (store_wal_open(wal, false, STORE_WAL_SEG_MIN, &w, err, sizeof(err))) {
        fprintf(stderr, "fuzz_wal: the log does not open after an append: %s\n", err);
        abort();
    }
    struct view v2;
    wal_read_all(w, &v2);
    if (v2.last != v.last + 1 || v2.first != v.first || v2.hs.term != hs.term ||
        v2.snap.index != v.snap.index)
        abort();
    store_wal_close(w);
    return 0;
}
