/* store_format.h - the on-disk records of the store (pure encode/decode).
 *
 * LMDB databases of one store (docs/store-format.md has the full layout):
 *   meta     "format" -> STORE_FORMAT_MAGIC + u32 format version
 *            "limits" -> u32 max_value, u32 max_name, u32 max_path
 *            "state"  -> store_state record (applied index, revision, ...)
 *   inodes   u64be ino -> inode record
 *            u64be ino ++ 'v' -> a file's value bytes (format 2)
 *   dirents  u64be parent ++ name -> u64le ino ++ u8 type
 *   data     u64be ino -> the value bytes (format 1; empty in format 2)
 *   members  u64be member id -> member record (address, incarnation)
 * Every record starts with a version byte; decoders check lengths and
 * versions and return EIO on anything else, so a damaged record is reported,
 * never trusted.
 */
#ifndef RAFTFS_STORE_FORMAT_H
#define RAFTFS_STORE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_FORMAT_MAGIC        "raftfs-store"
#define STORE_FORMAT_MAGIC_LEN    12
#define STORE_FORMAT_VERSION      2U
#define STORE_FORMAT_VALUES_APART 1U /* values in "data": moved at open */
#define STORE_FORMAT_LEN          (STORE_FORMAT_MAGIC_LEN + 4)

#define STORE_INODE_REC_VERSION 1
#define STORE_INODE_HDR_LEN     88
#define STORE_INODE_REC_MAX     (STORE_INODE_HDR_LEN + STORE_MAX_NAME_BYTES_BOUND)
#define STORE_STATE_REC_VERSION 1
#define STORE_STATE_REC_LEN     40
#define STORE_LIMITS_REC_LEN    12
#define STORE_DIRENT_VAL_LEN    9
#define STORE_DIRENT_KEY_MAX    (8 + STORE_MAX_NAME_BYTES_BOUND)

/* The store's own counters, one record updated by every applying txn. */
struct store_state {
    uint64_t applied_index;
    uint64_t revision;
    uint64_t next_ino;
    uint64_t inodes;
};

/* An inode record: attributes plus the entry's own name (its key in the
 * parent), so that an inode's path can be rebuilt by walking up. */
struct store_inode {
    struct store_attr attr;
    char name[STORE_MAX_NAME_BYTES_BOUND];
    size_t name_len;
    /* A file's value checksum (store_value_crc), in bytes 28..31 of the
     * record, which builds from before it wrote as zeros and never read:
     * 0 means not known (a record written by such a build). */
    uint32_t value_crc;
};

/* The checksum an inode record keeps of its file's value: CRC-32C, and
 * 0xffffffff where that is 0 (0 means "not known"). */
uint32_t store_value_crc(const void *data, size_t len);

void store_u64be_put(unsigned char *p, uint64_t v);
uint64_t store_u64be_get(const unsigned char *p);

/* A file's value is kept in the inodes table right after its inode record,
 * under the inode's key followed by this byte: a write that changes both
 * rewrites one page of the tree, not one in each of two tables (format 2;
 * format 1 kept values in "data", docs/store-format.md). */
#define STORE_VALUE_KEY_TAG 'v'
#define STORE_VALUE_KEY_LEN 9

/* Writes ino's value key into kb (STORE_VALUE_KEY_LEN bytes). */
static inline void store_value_key(uint64_t ino, unsigned char *kb)
{
    store_u64be_put(kb, ino);
    kb[8] = STORE_VALUE_KEY_TAG;
}

/* Is this key of the inodes table a value's (rather than an inode's)? */
static inline bool store_is_value_key(const void *key, size_t len)
{
    return len == STORE_VALUE_KEY_LEN && ((const unsigned char *)key)[8] == STORE_VALUE_KEY_TAG;
}

/* The "format" record of meta: STORE_FORMAT_LEN bytes for version. */
void store_format_encode(uint32_t version, unsigned char *buf);
/* Its version: 0, or EIO for a record that is not raftfs's. */
int store_format_decode(const void *buf, size_t len, uint32_t *version);
/* Can this build open a store of this format (moving format 1's values)? */
static inline bool store_format_readable(uint32_t version)
{
    return version == STORE_FORMAT_VERSION || version == STORE_FORMAT_VALUES_APART;
}

/* buf must hold STORE_INODE_REC_MAX bytes; returns the record length. */
size_t store_inode_encode(const struct store_inode *in, unsigned char *buf);
/* 0 or EIO. */
int store_inode_decode(const void *buf, size_t len, struct store_inode *out);

void store_state_encode(const struct store_state *st, unsigned char buf[STORE_STATE_REC_LEN]);
int store_state_decode(const void *buf, size_t len, struct store_state *out);

void store_limits_encode(const struct store_limits *l, unsigned char buf[STORE_LIMITS_REC_LEN]);
int store_limits_decode(const void *buf, size_t len, struct store_limits *out);

/* Dirent key: returns its length (8 + name_len). buf: STORE_DIRENT_KEY_MAX. */
size_t store_dirent_key(uint64_t parent, const char *name, size_t name_len, unsigned char *buf);
void store_dirent_val_encode(uint64_t ino, enum store_type type,
                             unsigned char buf[STORE_DIRENT_VAL_LEN]);
int store_dirent_val_decode(const void *buf, size_t len, uint64_t *ino, enum store_type *type);

/* Member directory record (key: u64be member id): the address, then,
 * when the member's incarnation is known, NUL, u8 version, u64 LE
 * incarnation (STORE_MEMBER_SUFFIX_LEN bytes). A record without the suffix
 * (written before incarnations, or while not known) reads as incarnation
 * 0. buf: STORE_MEMBER_REC_MAX bytes; addr_len 1 to STORE_MAX_ADDR_BYTES.
 * Returns the record length. */
#define STORE_MEMBER_REC_VERSION 1
#define STORE_MEMBER_SUFFIX_LEN  10
#define STORE_MEMBER_REC_MAX     (STORE_MAX_ADDR_BYTES + STORE_MEMBER_SUFFIX_LEN)
size_t store_member_encode(const char *addr, size_t addr_len, uint64_t incarnation,
                           unsigned char *buf);
/* 0 or EIO; *addr points into buf. */
int store_member_decode(const void *buf, size_t len, const char **addr, size_t *addr_len,
                        uint64_t *incarnation);

#endif
