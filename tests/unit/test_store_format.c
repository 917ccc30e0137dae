/* test_store_format.c - record codecs: round trips and refusal of damaged
 * records (every truncation and a sweep of byte flips). */
#include <sys/stat.h>

#include "check.h"
#include "store_format.h"

static void test_inode_roundtrip(void)
{
    struct store_inode in = {0}, out;
    in.attr = (struct store_attr){.ino = 42,
                                  .type = STORE_TYPE_FILE,
                                  .mode = S_IFREG | 0644,
                                  .uid = 1,
                                  .gid = 2,
                                  .nlink = 1,
                                  .size = 1234,
                                  .atime_ns = -5,
                                  .mtime_ns = 6,
                                  .ctime_ns = 7,
                                  .create_revision = 8,
                                  .mod_revision = 9,
                                  .version = 10,
                                  .parent = 1};
    memcpy(in.name, "name", 4);
    in.name_len = 4;
    unsigned char buf[STORE_INODE_REC_MAX];
    size_t len = store_inode_encode(&in, buf);
    CHECK_EQ(len, STORE_INODE_HDR_LEN + 4);
    CHECK_EQ(store_inode_decode(buf, len, &out), 0);
    CHECK_EQ(out.attr.mode, S_IFREG | 0644);
    CHECK_EQ(out.attr.size, 1234);
    CHECK_EQ(out.attr.atime_ns, -5);
    CHECK_EQ(out.attr.version, 10);
    CHECK_EQ(out.attr.parent, 1);
    CHECK_MEM(out.name, out.name_len, "name");
    /* Every truncation and extension is refused. */
    for (size_t n = 0; n < len; n++)
        CHECK_EQ(store_inode_decode(buf, n, &out), EIO);
    CHECK_EQ(store_inode_decode(buf, len + 1, &out), EIO);
    /* Wrong version, type, or a type that disagrees with the mode. */
    unsigned char bad[STORE_INODE_REC_MAX];
    memcpy(bad, buf, len);
    bad[0] = 2;
    CHECK_EQ(store_inode_decode(bad, len, &out), EIO);
    memcpy(bad, buf, len);
    bad[1] = 3;
    CHECK_EQ(store_inode_decode(bad, len, &out), EIO);
    memcpy(bad, buf, len);
    bad[1] = STORE_TYPE_DIR;
    CHECK_EQ(store_inode_decode(bad, len, &out), EIO);
    memcpy(bad, buf, len);
    bad[2] = 0xff; /* name length beyond the record */
    CHECK_EQ(store_inode_decode(bad, len, &out), EIO);
}

static void test_state_limits_dirent(void)
{
    struct store_state st = {.applied_index = 1, .revision = 2, .next_ino = 3, .inodes = 4}, o;
    unsigned char b[STORE_STATE_REC_LEN];
    store_state_encode(&st, b);
    CHECK_EQ(store_state_decode(b, sizeof(b), &o), 0);
    CHECK_EQ(o.applied_index, 1);
    CHECK_EQ(o.revision, 2);
    CHECK_EQ(o.next_ino, 3);
    CHECK_EQ(o.inodes, 4);
    CHECK_EQ(store_state_decode(b, sizeof(b) - 1, &o), EIO);
    b[0] = 9;
    CHECK_EQ(store_state_decode(b, sizeof(b), &o), EIO);
    st.next_ino = 1; /* next inode at or below the root: damaged */
    store_state_encode(&st, b);
    CHECK_EQ(store_state_decode(b, sizeof(b), &o), EIO);

    struct store_limits l = {.max_value_bytes = 100, .max_name_bytes = 10, .max_path_bytes = 50},
                        lo;
    unsigned char lb[STORE_LIMITS_REC_LEN];
    store_limits_encode(&l, lb);
    CHECK_EQ(store_limits_decode(lb, sizeof(lb), &lo), 0);
    CHECK_EQ(lo.max_path_bytes, 50);
    l.max_name_bytes = 0;
    store_limits_encode(&l, lb);
    CHECK_EQ(store_limits_decode(lb, sizeof(lb), &lo), EIO);
    l.max_name_bytes = 300;
    store_limits_encode(&l, lb);
    CHECK_EQ(store_limits_decode(lb, sizeof(lb), &lo), EIO);

    unsigned char db[STORE_DIRENT_VAL_LEN];
    uint64_t ino;
    enum store_type type;
    store_dirent_val_encode(77, STORE_TYPE_DIR, db);
    CHECK_EQ(store_dirent_val_decode(db, sizeof(db), &ino, &type), 0);
    CHECK_EQ(ino, 77);
    CHECK_EQ(type, STORE_TYPE_DIR);
    CHECK_EQ(store_dirent_val_decode(db, 8, &ino, &type), EIO);
    db[8] = 0;
    CHECK_EQ(store_dirent_val_decode(db, sizeof(db), &ino, &type), EIO);
    store_dirent_val_encode(1, STORE_TYPE_FILE, db); /* the root is nobody's child */
    CHECK_EQ(store_dirent_val_decode(db, sizeof(db), &ino, &type), EIO);

    unsigned char kb[STORE_DIRENT_KEY_MAX];
    CHECK_EQ(store_dirent_key(0x0102030405060708ULL, "ab", 2, kb), 10);
    CHECK_EQ(kb[0], 1);
    CHECK_EQ(kb[7], 8);
    CHECK_EQ(store_u64be_get(kb), 0x0102030405060708LL);
}

static void test_paths(void)
{
    struct store_limits l = {.max_value_bytes = 1, .max_name_bytes = 3, .max_path_bytes = 8};
    CHECK_EQ(store_path_check("/", 1, &l), 0);
    CHECK_EQ(store_path_check("/a/b", 4, &l), 0);
    CHECK_EQ(store_path_check("/abc/def", 8, &l), 0);
    CHECK_EQ(store_path_check("/abc/defg", 9, &l), ENAMETOOLONG);
    CHECK_EQ(store_path_check("/abc/de/f", 9, &l), ENAMETOOLONG);
    CHECK_EQ(store_path_check("/abcd", 5, &l), ENAMETOOLONG);
    CHECK_EQ(store_path_check("", 0, &l), EINVAL);
    CHECK_EQ(store_path_check("a", 1, &l), EINVAL);
    CHECK_EQ(store_path_check("//", 2, &l), EINVAL);
    CHECK_EQ(store_path_check("/a//b", 5, &l), EINVAL);
    CHECK_EQ(store_path_check("/a/", 3, &l), EINVAL);
    CHECK_EQ(store_path_check("/./a", 4, &l), EINVAL);
    CHECK_EQ(store_path_check("/a/..", 5, &l), EINVAL);
    CHECK_EQ(store_path_check("/..a", 4, &l), 0);
    CHECK_EQ(store_path_check("/a\0", 3, &l), EINVAL);
    CHECK_EQ(store_path_check("/abcdefgh/..", 12, &l), EINVAL); /* malformed wins */
    CHECK_EQ(store_name_check("a/b", 3, &l), EINVAL);
    CHECK_EQ(store_name_check("", 0, &l), EINVAL);
    CHECK_EQ(store_name_check("...", 3, &l), 0);
}

int main(void)
{
    RUN(test_inode_roundtrip);
    RUN(test_state_limits_dirent);
    RUN(test_paths);
    CHECK_DONE();
}
