/* cli_backup.c - the backup file of `raftfs snapshot`: its header, and
 * reading a file back whole before anything trusts it.
 *
 * Format (version 1, little endian): a header, then a snapshot image
 * exactly as a member keeps and sends it (store/store_snapshot.c, which
 * ends with its own record count and CRC-32C), and nothing after it:
 *   0   "raftfs-backup" and three NULs (16)
 *   16  u32 version (1)
 *   20  u32 header bytes (64)
 *   24  u64 index      the image is the state after this log entry
 *   32  u64 term       of that entry
 *   40  u64 revision
 *   48  u64 image bytes (the file is 64 + this long)
 *   56  u32 zero
 *   60  u32 CRC-32C of bytes 0..59
 * The image carries no term (a member's image is named snap-INDEX-TERM):
 * the header adds it, with its own CRC. A file is good only if the header
 * passes its CRC, the size is exact, the image passes
 * store_snapshot_check (its CRC, its order, every record decodes) and
 * agrees with the header on index, revision and size.
 *
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_backup.h"
#include "store.h"
#include "store_crc.h"

#define BACKUP_MAGIC     "raftfs-backup"
#define BACKUP_VERSION   CLI_BACKUP_VERSION
#define BACKUP_HDR_LEN   CLI_BACKUP_HDR_LEN
#define COPY_CHUNK_BYTES (1U << 20)

void cli_seterr(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void cli_backup_header(const struct cli_backup *b, unsigned char h[CLI_BACKUP_HDR_LEN])
{
    memset(h, 0, BACKUP_HDR_LEN);
    memcpy(h, BACKUP_MAGIC, sizeof(BACKUP_MAGIC));
    put32(h + 16, BACKUP_VERSION);
    put32(h + 20, BACKUP_HDR_LEN);
    put64(h + 24, b->index);
    put64(h + 32, b->term);
    put64(h + 40, b->revision);
    put64(h + 48, b->image_bytes);
    put32(h + 60, store_crc32c(0, h, 60));
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t k = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno;
        if (k == 0)
            return EPROTO; /* short */
        got += (size_t)k;
    }
    return 0;
}

int cli_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno;
        done += (size_t)k;
    }
    return 0;
}

/* An unnamed file in dir, open for reading and writing. */
static int tmpfile_in(const char *dir, int *fd, char *err, size_t err_len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/.raftfs-image-XXXXXX", dir);
    int f = mkostemp(path, O_CLOEXEC);
    if (f < 0) {
        int e = errno;
        cli_seterr(err, err_len, "cannot make a temporary file in %s: %s", dir, strerror(e));
        return e;
    }
    unlink(path);
    *fd = f;
    return 0;
}

const char *cli_tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

int cli_backup_read(const char *path, const char *tmp, struct cli_backup *b, int *image_fd,
                    char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        cli_seterr(err, err_len, "cannot open: %s", strerror(e));
        return e;
    }
    int rc, out = -1;
    unsigned char h[BACKUP_HDR_LEN];
    struct stat st;
    if (fstat(fd, &st)) {
        rc = errno;
        cli_seterr(err, err_len, "cannot stat: %s", strerror(rc));
        goto close_fd;
    }
    if ((rc = pread_all(fd, h, sizeof(h), 0)) || memcmp(h, BACKUP_MAGIC, sizeof(BACKUP_MAGIC))) {
        cli_seterr(err, err_len, "not a raftfs backup (no backup header%s)",
                   rc == EPROTO ? ": file too short" : "");
        rc = rc && rc != EPROTO ? rc : EPROTO;
        goto close_fd;
    }
    if (get32(h + 60) != store_crc32c(0, h, 60)) {
        cli_seterr(err, err_len, "damaged: the backup header fails its checksum");
        rc = EPROTO;
        goto close_fd;
    }
    if (get32(h + 16) != BACKUP_VERSION || get32(h + 20) != BACKUP_HDR_LEN) {
        cli_seterr(err, err_len, "backup format version %u, this build reads %u", get32(h + 16),
                   BACKUP_VERSION);
        rc = EPROTO;
        goto close_fd;
    }
    b->index = get64(h + 24);
    b->term = get64(h + 32);
    b->revision = get64(h + 40);
    b->image_bytes = get64(h + 48);
    if ((uint64_t)st.st_size != BACKUP_HDR_LEN + b->image_bytes) {
        cli_seterr(err, err_len, "%s: %llu bytes, the header says %llu",
                   (uint64_t)st.st_size < BACKUP_HDR_LEN + b->image_bytes ? "truncated"
                                                                          : "damaged (too long)",
                   (unsigned long long)st.st_size,
                   (unsigned long long)(BACKUP_HDR_LEN + b->image_bytes));
        rc = EPROTO;
        goto close_fd;
    }
    if ((rc = tmpfile_in(tmp, &out, err, err_len)))
        goto close_fd;
    char *buf = malloc(COPY_CHUNK_BYTES);
    if (!buf) {
        rc = ENOMEM;
        cli_seterr(err, err_len, "out of memory");
        goto close_out;
    }
    for (uint64_t off = 0; off < b->image_bytes && !rc;) {
        size_t n = b->image_bytes - off < COPY_CHUNK_BYTES ? (size_t)(b->image_bytes - off)
                                                           : COPY_CHUNK_BYTES;
        if ((rc = pread_all(fd, buf, n, (off_t)(BACKUP_HDR_LEN + off))) ||
            (rc = cli_pwrite_all(out, buf, n, (off_t)off)))
            cli_seterr(err, err_len, "cannot copy the image: %s", strerror(rc));
        off += n;
    }
    free(buf);
    if (rc)
        goto close_out;
    struct store_snapshot_info info;
    char why[256] = "";
    if ((rc = store_snapshot_check(out, &info, why, sizeof(why)))) {
        cli_seterr(err, err_len, "damaged: %s", why);
        goto close_out;
    }
    if (info.applied_index != b->index || info.revision != b->revision ||
        info.bytes != b->image_bytes) {
        cli_seterr(err, err_len,
                   "damaged: the image (index %llu, revision %llu) is not the one the "
                   "header names (index %llu, revision %llu)",
                   (unsigned long long)info.applied_index, (unsigned long long)info.revision,
                   (unsigned long long)b->index, (unsigned long long)b->revision);
        rc = EPROTO;
        goto close_out;
    }
    if (image_fd) {
        *image_fd = out;
        out = -1;
    }
close_out:
    if (out >= 0)
        close(out);
close_fd:
    close(fd);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void cli_rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
