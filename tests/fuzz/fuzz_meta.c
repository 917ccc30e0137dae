/* fuzz_meta.c - the store's metadata records, as read back from the disk
 * after a crash or from a damaged data directory: the identity file
 * (store_identity.c), the open-boot marker (store_boot.c), and the LMDB
 * records store_open and every read decode (store_format.c, leases,
 * history events). The hard state and the snapshot the log starts after
 * are records of the Raft log: fuzz_wal covers them; a snapshot image is
 * fuzz_snapshot's.
 *
 * The first byte picks the reader; the rest is the file or record, from
 * an exactly sized copy (a read past it is an ASan report). For the two
 * files a bit of the first byte asks the target to set the CRC the file
 * ends with, so that the fields behind it get fuzzed too. Every reader
 * returns 0 or EIO (the files: or ENOENT), never crashes; what a decoder
 * accepts encodes (where there is an encoder) and decodes again to the
 * same fields.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_crc.h"
#include "store_internal.h"
#include "store_le.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void dir_remove(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void dir_make(void)
{
    static char shm[] = "/dev/shm/raftfs-fuzz-meta.XXXXXX", tmp[] = "/tmp/raftfs-fuzz-meta.XXXXXX";
    dir = mkdtemp(shm);
    if (!dir)
        dir = mkdtemp(tmp);
    if (!dir)
        abort();
    atexit(dir_remove);
}

/* Writes the file name in dir, its last 4 bytes the CRC-32C of the bytes
 * before them if fix (and it is long enough). */
static void file_put(const char *name, const uint8_t *p, size_t len, bool fix, size_t crc_at)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    uint8_t *b = malloc(len + 4);
    if (!b)
        abort();
    memcpy(b, p, len);
    if (fix && len >= crc_at + 4)
        put32(b + crc_at, store_crc32c(0, b, crc_at));
    FILE *f = fopen(path, "we");
    if (!f || (len && fwrite(b, 1, len, f) != len) || fclose(f))
        abort();
    free(b);
}

static void same_inode(const struct store_inode *a, const struct store_inode *b)
{
    const struct store_attr *x = &a->attr, *y = &b->attr;
    if (x->type != y->type || x->mode != y->mode || x->uid != y->uid || x->gid != y->gid ||
        x->size != y->size || x->nlink != y->nlink || x->atime_ns != y->atime_ns ||
        x->mtime_ns != y->mtime_ns || x->ctime_ns != y->ctime_ns ||
        x->create_revision != y->create_revision || x->mod_revision != y->mod_revision ||
        x->version != y->version || x->parent != y->parent || a->name_len != b->name_len ||
        memcmp(a->name, b->name, a->name_len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    if (!dir)
        dir_make();
    uint8_t which = data[0];
    bool fix = which & 0x80;
    size_t len = size - 1;
    uint8_t *p = malloc(len ? len : 1); /* exactly sized */
    if (!p)
        abort();
    memcpy(p, data + 1, len);
    int rc = 0;
    switch (which % 10) {
    case 0: { /* DIR/identity: 44 bytes, CRC at 40 */
        struct store_identity id;
        file_put(STORE_IDENTITY_FILE, p, len, fix, 40);
        rc = store_identity_file_read(dir, &id);
        if (rc && rc != EIO)
            abort();
        if (!rc && !id.incarnation)
            abort();
        break;
    }
    case 1: { /* DIR/open-boot: 72 bytes, CRC at 68 */
        char boot[STORE_BOOT_ID_MAX];
        struct store_limits lim;
        file_put(STORE_BOOT_FILE, p, len, fix, 68);
        rc = store_boot_read(dir, boot, &lim);
        if (rc && rc != EIO)
            abort();
        if (!rc && !memchr(boot, 0, sizeof(boot)))
            abort(); /* the boot id is a string */
        break;
    }
    case 2: {
        struct store_inode in, again;
        unsigned char buf[STORE_INODE_REC_MAX];
        rc = store_inode_decode(p, len, &in);
        if (!rc) {
            size_t n = store_inode_encode(&in, buf);
            if (store_inode_decode(buf, n, &again))
                abort();
            same_inode(&in, &again);
        }
        break;
    }
    case 3: {
        struct store_state st, again;
        unsigned char buf[STORE_STATE_REC_LEN];
        rc = store_state_decode(p, len, &st);
        if (!rc) {
            store_state_encode(&st, buf);
            if (store_state_decode(buf, sizeof(buf), &again) || memcmp(&st, &again, sizeof(st)))
                abort();
        }
        break;
    }
    case 4: {
        struct store_limits l, again;
        unsigned char buf[STORE_LIMITS_REC_LEN];
        rc = store_limits_decode(p, len, &l);
        if (!rc) {
            store_limits_encode(&l, buf);
            if (store_limits_decode(buf, sizeof(buf), &again) ||
                l.max_value_bytes != again.max_value_bytes ||
                l.max_name_bytes != again.max_name_bytes ||
                l.max_path_bytes != again.max_path_bytes)
                abort();
        }
        break;
    }
    case 5: {
        uint64_t ino, ino2;
        enum store_type type, type2;
        unsigned char buf[STORE_DIRENT_VAL_LEN];
        rc = store_dirent_val_decode(p, len, &ino, &type);
        if (!rc) {
            store_dirent_val_encode(ino, type, buf);
            if (store_dirent_val_decode(buf, sizeof(buf), &ino2, &type2) || ino != ino2 ||
                type != type2)
                abort();
        }
        break;
    }
    case 6: {
        const char *addr, *addr2;
        size_t alen, alen2;
        uint64_t inc, inc2;
        unsigned char buf[STORE_MEMBER_REC_MAX];
        rc = store_member_decode(p, len, &addr, &alen, &inc);
        if (!rc) {
            if (alen < 1 || alen > STORE_MAX_ADDR_BYTES || addr < (char *)p ||
                addr + alen > (char *)p + len)
                abort();
            size_t n = store_member_encode(addr, alen, inc, buf);
            if (store_member_decode(buf, n, &addr2, &alen2, &inc2) || alen != alen2 ||
                memcmp(addr, addr2, alen) || inc != inc2)
                abort();
        }
        break;
    }
    case 7: {
        uint64_t ttl;
        rc = store_lease_decode(p, len, &ttl);
        break;
    }
    case 8: {
        struct store_event ev;
        rc = store_event_decode(1 + (len & 7), p, len, &ev);
        if (!rc &&
            ((ev.path_len && (ev.path < (char *)p || ev.path + ev.path_len > (char *)p + len)) ||
             (ev.path2_len && (ev.path2 < (char *)p || ev.path2 + ev.path2_len > (char *)p + len))))
            abort(); /* an event's paths point into the record */
        break;
    }
    default: {
        uint32_t version;
        rc = store_format_decode(p, len, &version);
        break;
    }
    }
    if (rc && rc != EIO && rc != EINVAL)
        abort();
    free(p);
    return 0;
}
