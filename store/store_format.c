/* store_format.c - encoding and checked decoding of the store's records. */
#include "store_format.h"
#include "store_crc.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

void store_u64be_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t store_u64be_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Inode record v1, little endian:
 *   0 u8 version  1 u8 type  2 u16 name_len  4 u32 mode  8 u32 uid  12 u32 gid
 *  16 u64 size   24 u32 nlink 28 u32 zero   32 i64 atime 40 i64 mtime
 *  48 i64 ctime  56 u64 create_rev  64 u64 mod_rev  72 u64 version
 *  80 u64 parent 88 name bytes */
void store_format_encode(uint32_t version, unsigned char *buf)
{
    memcpy(buf, STORE_FORMAT_MAGIC, STORE_FORMAT_MAGIC_LEN);
    for (int i = 0; i < 4; i++)
        buf[STORE_FORMAT_MAGIC_LEN + i] = (unsigned char)(version >> (8 * i));
}

int store_format_decode(const void *vbuf, size_t len, uint32_t *version)
{
    const unsigned char *buf = vbuf;
    if (len != STORE_FORMAT_LEN || memcmp(buf, STORE_FORMAT_MAGIC, STORE_FORMAT_MAGIC_LEN))
        return EIO;
    const unsigned char *f = buf + STORE_FORMAT_MAGIC_LEN;
    *version = (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 24;
    return 0;
}

size_t store_inode_encode(const struct store_inode *in, unsigned char *buf)
{
    const struct store_attr *a = &in->attr;
    buf[0] = STORE_INODE_REC_VERSION;
    buf[1] = (unsigned char)a->type;
    put_u16(buf + 2, (uint16_t)in->name_len);
    put_u32(buf + 4, a->mode);
    put_u32(buf + 8, a->uid);
    put_u32(buf + 12, a->gid);
    put_u64(buf + 16, a->size);
    put_u32(buf + 24, a->nlink);
    put_u32(buf + 28, a->type == STORE_TYPE_FILE ? in->value_crc : 0);
    put_u64(buf + 32, (uint64_t)a->atime_ns);
    put_u64(buf + 40, (uint64_t)a->mtime_ns);
    put_u64(buf + 48, (uint64_t)a->ctime_ns);
    put_u64(buf + 56, a->create_revision);
    put_u64(buf + 64, a->mod_revision);
    put_u64(buf + 72, a->version);
    put_u64(buf + 80, a->parent);
    memcpy(buf + STORE_INODE_HDR_LEN, in->name, in->name_len);
    return STORE_INODE_HDR_LEN + in->name_len;
}

int store_inode_decode(const void *vbuf, size_t len, struct store_inode *out)
{
    const unsigned char *buf = vbuf;
    if (len < STORE_INODE_HDR_LEN || buf[0] != STORE_INODE_REC_VERSION)
        return EIO;
    size_t name_len = get_u16(buf + 2);
    if (name_len > STORE_MAX_NAME_BYTES_BOUND || len != STORE_INODE_HDR_LEN + name_len)
        return EIO;
    struct store_attr *a = &out->attr;
    memset(a, 0, sizeof(*a));
    switch (buf[1]) {
    case STORE_TYPE_FILE:
        a->type = STORE_TYPE_FILE;
        break;
    case STORE_TYPE_DIR:
        a->type = STORE_TYPE_DIR;
        break;
    default:
        return EIO;
    }
    a->mode = get_u32(buf + 4);
    uint32_t want_fmt = a->type == STORE_TYPE_DIR ? S_IFDIR : S_IFREG;
    if ((a->mode & S_IFMT) != want_fmt)
        return EIO;
    a->uid = get_u32(buf + 8);
    a->gid = get_u32(buf + 12);
    a->size = get_u64(buf + 16);
    a->nlink = get_u32(buf + 24);
    out->value_crc = a->type == STORE_TYPE_FILE ? get_u32(buf + 28) : 0;
    a->atime_ns = (int64_t)get_u64(buf + 32);
    a->mtime_ns = (int64_t)get_u64(buf + 40);
    a->ctime_ns = (int64_t)get_u64(buf + 48);
    a->create_revision = get_u64(buf + 56);
    a->mod_revision = get_u64(buf + 64);
    a->version = get_u64(buf + 72);
    a->parent = get_u64(buf + 80);
    memcpy(out->name, buf + STORE_INODE_HDR_LEN, name_len);
    out->name_len = name_len;
    return 0;
}

/* State record v1: u8 version, 7 zero bytes, then u64 applied, revision,
 * next_ino, inodes. */
void store_state_encode(const struct store_state *st, unsigned char buf[STORE_STATE_REC_LEN])
{
    memset(buf, 0, 8);
    buf[0] = STORE_STATE_REC_VERSION;
    put_u64(buf + 8, st->applied_index);
    put_u64(buf + 16, st->revision);
    put_u64(buf + 24, st->next_ino);
    put_u64(buf + 32, st->inodes);
}

int store_state_decode(const void *vbuf, size_t len, struct store_state *out)
{
    const unsigned char *buf = vbuf;
    if (len != STORE_STATE_REC_LEN || buf[0] != STORE_STATE_REC_VERSION)
        return EIO;
    out->applied_index = get_u64(buf + 8);
    out->revision = get_u64(buf + 16);
    out->next_ino = get_u64(buf + 24);
    out->inodes = get_u64(buf + 32);
    if (out->next_ino <= STORE_ROOT_INO || out->inodes == 0)
        return EIO;
    return 0;
}

void store_limits_encode(const struct store_limits *l, unsigned char buf[STORE_LIMITS_REC_LEN])
{
    put_u32(buf, l->max_value_bytes);
    put_u32(buf + 4, l->max_name_bytes);
    put_u32(buf + 8, l->max_path_bytes);
}

int store_limits_decode(const void *vbuf, size_t len, struct store_limits *out)
{
    const unsigned char *buf = vbuf;
    if (len != STORE_LIMITS_REC_LEN)
        return EIO;
    out->max_value_bytes = get_u32(buf);
    out->max_name_bytes = get_u32(buf + 4);
    out->max_path_bytes = get_u32(buf + 8);
    if (out->max_value_bytes == 0 || out->max_value_bytes > STORE_MAX_VALUE_BYTES_BOUND ||
        out->max_name_bytes == 0 || out->max_name_bytes > STORE_MAX_NAME_BYTES_BOUND ||
        out->max_path_bytes < 2 || out->max_path_bytes > STORE_MAX_PATH_BYTES_BOUND)
        return EIO;
    return 0;
}

size_t store_dirent_key(uint64_t parent, const char *name, size_t name_len, unsigned char *buf)
{
    store_u64be_put(buf, parent);
    memcpy(buf + 8, name, name_len);
    return 8 + name_len;
}

void store_dirent_val_encode(uint64_t ino, enum store_type type,
                             unsigned char buf[STORE_DIRENT_VAL_LEN])
{
    put_u64(buf, ino);
    buf[8] = (unsigned char)type;
}

int store_dirent_val_decode(const void *vbuf, size_t len, uint64_t *ino, enum store_type *type)
{
    const unsigned char *buf = vbuf;
    if (len != STORE_DIRENT_VAL_LEN)
        return EIO;
    *ino = get_u64(buf);
    if (*ino <= STORE_ROOT_INO)
        return EIO;
    if (buf[8] == STORE_TYPE_FILE)
        *type = STORE_TYPE_FILE;
    else if (buf[8] == STORE_TYPE_DIR)
        *type = STORE_TYPE_DIR;
    else
        return EIO;
    return 0;
}

/* Member record: the address (1 to 255 bytes, no NUL), then, once the
 * member's incarnation is known, a NUL byte, u8 version 1 and the u64
 * incarnation. A record without the suffix (every record written before
 * incarnations) has incarnation 0; a build from before reads the address
 * up to the NUL and ignores the rest. */
size_t store_member_encode(const char *addr, size_t addr_len, uint64_t incarnation,
                           unsigned char *buf)
{
    memcpy(buf, addr, addr_len);
    if (!incarnation)
        return addr_len;
    buf[addr_len] = 0;
    buf[addr_len + 1] = STORE_MEMBER_REC_VERSION;
    put_u64(buf + addr_len + 2, incarnation);
    return addr_len + STORE_MEMBER_SUFFIX_LEN;
}

int store_member_decode(const void *vbuf, size_t len, const char **addr, size_t *addr_len,
                        uint64_t *incarnation)
{
    const unsigned char *buf = vbuf;
    const unsigned char *nul = memchr(buf, 0, len);
    size_t alen = nul ? (size_t)(nul - buf) : len;
    uint64_t inc = 0;
    if (nul) {
        if (len - alen != STORE_MEMBER_SUFFIX_LEN || nul[1] != STORE_MEMBER_REC_VERSION)
            return EIO;
        inc = get_u64(nul + 2);
        if (!inc)
            return EIO; /* written without the suffix when 0 */
    }
    if (alen == 0 || alen > STORE_MAX_ADDR_BYTES)
        return EIO;
    *addr = (const char *)buf;
    *addr_len = alen;
    *incarnation = inc;
    return 0;
}

uint32_t store_value_crc(const void *data, size_t len)
{
    uint32_t crc = store_crc32c(0, data, len);
    return crc ? crc : 0xffffffffU;
}
