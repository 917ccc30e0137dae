/* test_store_cmd.c - the command encoding: round trips of every op, and
 * refusal of truncated, garbled, versionless, future and op-less input. */
#include "check.h"
#include "raftfs.pb-c.h"
#include "store.h"

static void roundtrip(const struct store_cmd *c, struct store_cmd_decoded *d)
{
    void *buf;
    size_t len;
    CHECK_EQ(store_cmd_encode(c, &buf, &len), 0);
    CHECK_EQ(store_cmd_decode(buf, len, d), 0);
    /* Every proper prefix is either refused or decodes to a different
     * command; never a crash (ASan watches). */
    for (size_t n = 0; n < len; n++) {
        struct store_cmd_decoded p;
        if (store_cmd_decode(buf, n, &p) == 0)
            store_cmd_decoded_free(&p);
    }
    free(buf);
}

static void test_ops(void)
{
    struct store_cmd_decoded d;
    struct store_cmd put = {.op = STORE_OP_PUT,
                            .time_ns = -12345,
                            .path = "/a/b",
                            .path_len = 4,
                            .value = "v\0x",
                            .value_len = 3,
                            .mode = 0600,
                            .uid = 5,
                            .gid = 6,
                            .has_expected_revision = true,
                            .expected_revision = 0};
    roundtrip(&put, &d);
    CHECK_EQ(d.cmd.op, STORE_OP_PUT);
    CHECK_EQ(d.cmd.time_ns, -12345);
    CHECK_MEM(d.cmd.path, d.cmd.path_len, "/a/b");
    CHECK_EQ(d.cmd.value_len, 3);
    CHECK(!memcmp(d.cmd.value, "v\0x", 3));
    CHECK_EQ(d.cmd.mode, 0600);
    CHECK_EQ(d.cmd.uid, 5);
    CHECK_EQ(d.cmd.gid, 6);
    CHECK(d.cmd.has_expected_revision);
    CHECK_EQ(d.cmd.expected_revision, 0);
    CHECK(!d.cmd.has_expected_ino);
    store_cmd_decoded_free(&d);

    struct store_cmd rn = {.op = STORE_OP_RENAME,
                           .path = "/x",
                           .path_len = 2,
                           .path2 = "/y",
                           .path2_len = 2,
                           .rename_flags = STORE_RENAME_EXCHANGE,
                           .has_expected_ino = true,
                           .expected_ino = 99};
    roundtrip(&rn, &d);
    CHECK_EQ(d.cmd.op, STORE_OP_RENAME);
    CHECK_MEM(d.cmd.path2, d.cmd.path2_len, "/y");
    CHECK_EQ(d.cmd.rename_flags, STORE_RENAME_EXCHANGE);
    CHECK_EQ(d.cmd.expected_ino, 99);
    store_cmd_decoded_free(&d);

    struct store_cmd sa = {.op = STORE_OP_SETATTR,
                           .path = "/s",
                           .path_len = 2,
                           .set_mask = STORE_SET_SIZE | STORE_SET_MTIME | STORE_SET_GID,
                           .size = 77,
                           .mtime_ns = 88,
                           .gid = 3,
                           .uid = 4};
    roundtrip(&sa, &d);
    CHECK_EQ(d.cmd.set_mask, STORE_SET_SIZE | STORE_SET_MTIME | STORE_SET_GID);
    CHECK_EQ(d.cmd.size, 77);
    CHECK_EQ(d.cmd.mtime_ns, 88);
    CHECK_EQ(d.cmd.gid, 3);
    store_cmd_decoded_free(&d);

    enum store_op ops[] = {STORE_OP_APPEND, STORE_OP_DELETE, STORE_OP_MKDIR, STORE_OP_RMDIR};
    for (size_t i = 0; i < 4; i++) {
        struct store_cmd c = {
            .op = ops[i], .path = "/p", .path_len = 2, .value = "z", .value_len = 1, .mode = 0700};
        roundtrip(&c, &d);
        CHECK_EQ(d.cmd.op, ops[i]);
        CHECK_MEM(d.cmd.path, d.cmd.path_len, "/p");
        store_cmd_decoded_free(&d);
    }
    struct store_cmd bad = {.op = (enum store_op)99};
    void *buf;
    size_t len;
    CHECK_EQ(store_cmd_encode(&bad, &buf, &len), EINVAL);
}

static void test_refused(void)
{
    struct store_cmd_decoded d;
    CHECK_EQ(store_cmd_decode("", 0, &d), EINVAL); /* no required fields */
    CHECK_EQ(store_cmd_decode("\xff\xff\xff\xff", 4, &d), EINVAL);

    /* Version 0, a future version, and no op. */
    Raftfs__Command m = RAFTFS__COMMAND__INIT;
    Raftfs__Delete del = RAFTFS__DELETE__INIT;
    del.path.data = (uint8_t *)"/a";
    del.path.len = 2;
    m.op_case = RAFTFS__COMMAND__OP_DELETE;
    m.delete_ = &del;
    uint8_t buf[128];
    m.version = 0;
    size_t n = raftfs__command__pack(&m, buf);
    CHECK_EQ(store_cmd_decode(buf, n, &d), EINVAL);
    m.version = STORE_CMD_VERSION + 1;
    n = raftfs__command__pack(&m, buf);
    CHECK_EQ(store_cmd_decode(buf, n, &d), EPROTONOSUPPORT);
    m.version = STORE_CMD_VERSION;
    n = raftfs__command__pack(&m, buf);
    CHECK_EQ(store_cmd_decode(buf, n, &d), 0);
    store_cmd_decoded_free(&d);
    m.op_case = RAFTFS__COMMAND__OP__NOT_SET;
    n = raftfs__command__pack(&m, buf);
    CHECK_EQ(store_cmd_decode(buf, n, &d), EINVAL);

    /* Deterministic pseudo-random garbage never crashes the decoder. */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        uint8_t g[64];
        size_t len = (size_t)(x % sizeof(g));
        for (size_t j = 0; j < len; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            g[j] = (uint8_t)x;
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (store_cmd_decode(g, len, &d) == 0)
            store_cmd_decoded_free(&d);
    }
}

int main(void)
{
    RUN(test_ops);
    RUN(test_refused);
    CHECK_DONE();
}
