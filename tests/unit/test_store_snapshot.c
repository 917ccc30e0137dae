/* test_store_snapshot.c - snapshot images: CRC-32C, an image installed in
 * another store reproduces the tree exactly and the store goes on from it;
 * damaged images (every truncation point sampled, flipped bytes, foreign
 * headers, trailing bytes) are refused and change nothing; an image taken
 * while writes go on is consistent. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "store_crc.h"
#include "store_util.h"

static void test_crc(void)
{
    CHECK_EQ(store_crc32c(0, "123456789", 9), 0xe3069283U);
    CHECK_EQ(store_crc32c(0, "", 0), 0);
    /* Continuing over pieces equals one pass. */
    uint32_t c = store_crc32c(0, "1234", 4);
    CHECK_EQ(store_crc32c(c, "56789", 5), 0xe3069283U);
    /* The instruction and the table agree at every length and alignment. */
    static unsigned char buf[4096 + 8];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    int differ = 0;
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len <= 4096; len += len < 64 ? 1 : 61)
            differ += store_crc32c(7, buf + off, len) != store_crc32c_table(7, buf + off, len);
    CHECK_EQ(differ, 0);
    CHECK_EQ(store_crc32c_table(0, "123456789", 9), 0xe3069283U);
}

static struct tstore make_tree(uint32_t max_value)
{
    struct tstore t = {.dir = tmpdir_make()};
    struct store_config cfg = {.limits = {.max_value_bytes = max_value}};
    t.s = open_store_cfg(t.dir, &cfg);
    CHECK_EQ(t_mkdir(&t, "/app"), 0);
    CHECK_EQ(t_mkdir(&t, "/app/db"), 0);
    CHECK_EQ(t_put(&t, "/app/db/url", "postgres://x"), 0);
    CHECK_EQ(t_put(&t, "/top", "v"), 0);
    CHECK_EQ(t_put(&t, "/empty", ""), 0);
    char path[32];
    for (int i = 0; i < 300; i++) {
        snprintf(path, sizeof(path), "/app/k%03d", i);
        CHECK_EQ(t_put(&t, path, path), 0);
    }
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/app/k007"), 0);
    CHECK_EQ(t_rename(&t, "/app/k008", "/app/db/moved", 0), 0);
    return t;
}

static int image_of(struct store *s, struct store_snapshot_info *info, const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/../image-XXXXXX", dir);
    int fd = mkstemp(path);
    unlink(path);
    CHECK_EQ(store_snapshot_write(s, fd, info), 0);
    return fd;
}

/* Every path of a, with attributes and value, is in b alike. */
static int compare_cb(void *ctx, const struct store_dirent *e);

struct cmp {
    struct store_txn *ta, *tb;
    int diffs;
    int visited;
};

static void compare_dir(struct cmp *c, uint64_t ino)
{
    CHECK_EQ(store_list(c->ta, ino, NULL, 0, compare_cb, c), 0);
}

static int compare_cb(void *ctx, const struct store_dirent *e)
{
    struct cmp *c = ctx;
    struct store_attr a, b;
    c->visited++;
    if (store_getattr(c->ta, e->ino, &a) || store_getattr(c->tb, e->ino, &b)) {
        c->diffs++;
        return 0;
    }
    if (a.mode != b.mode || a.size != b.size || a.mod_revision != b.mod_revision ||
        a.version != b.version || a.parent != b.parent || a.mtime_ns != b.mtime_ns ||
        a.nlink != b.nlink)
        c->diffs++;
    if (a.type == STORE_TYPE_FILE) {
        const void *da, *db;
        size_t la, lb;
        if (store_read(c->ta, a.ino, &da, &la) || store_read(c->tb, b.ino, &db, &lb) || la != lb ||
            memcmp(da, db, la))
            c->diffs++;
    } else {
        compare_dir(c, a.ino);
    }
    return 0;
}

static void test_roundtrip(void)
{
    struct tstore a = make_tree(4u << 20);
    /* A value bigger than the reader's buffer half. */
    char *big = malloc(3u << 20);
    for (size_t i = 0; i < (3u << 20); i++)
        big[i] = (char)(i * 31);
    struct store_cmd c = {
        .op = STORE_OP_PUT, .path = "/big", .value = big, .value_len = 3u << 20, .mode = 0600};
    CHECK_EQ(tapply(&a, &c, NULL), 0);
    struct store_snapshot_info wi, ci, ii;
    int fd = image_of(a.s, &wi, a.dir);
    char err[256];
    CHECK_EQ(store_snapshot_check(fd, &ci, err, sizeof(err)), 0);
    CHECK_EQ(ci.applied_index, a.index);
    CHECK_EQ(ci.records, wi.records);
    CHECK_EQ(ci.bytes, wi.bytes);

    /* A store with other content: replaced entirely. */
    struct tstore b;
    tstore_init(&b);
    CHECK_EQ(t_put(&b, "/stale", "old"), 0);
    CHECK_EQ(store_snapshot_install(b.s, fd, &ii, err, sizeof(err)), 0);
    CHECK_EQ(ii.applied_index, a.index);
    CHECK_EQ(t_stat(&b, "/stale", NULL), ENOENT);
    struct store_stats sa, sb;
    CHECK_EQ(store_get_stats(a.s, &sa), 0);
    CHECK_EQ(store_get_stats(b.s, &sb), 0);
    CHECK_EQ(sb.applied_index, sa.applied_index);
    CHECK_EQ(sb.revision, sa.revision);
    CHECK_EQ(sb.inodes, sa.inodes);
    struct store_limits lb;
    store_get_limits(b.s, &lb);
    CHECK_EQ(lb.max_value_bytes, 4u << 20); /* the image's limits */
    struct cmp cm = {0};
    CHECK_EQ(store_txn_begin(a.s, &cm.ta), 0);
    CHECK_EQ(store_txn_begin(b.s, &cm.tb), 0);
    compare_dir(&cm, STORE_ROOT_INO);
    CHECK_EQ(cm.diffs, 0);
    CHECK_EQ(cm.visited, (int)sa.inodes - 1);
    store_txn_end(cm.ta);
    store_txn_end(cm.tb);

    /* Both go on alike from the image: same indexes, inodes, revisions. */
    b.index = a.index;
    CHECK_EQ(t_put(&a, "/after", "x"), 0);
    CHECK_EQ(t_put(&b, "/after", "x"), 0);
    struct store_attr x, y;
    CHECK_EQ(t_stat(&a, "/after", &x), 0);
    CHECK_EQ(t_stat(&b, "/after", &y), 0);
    CHECK_EQ(x.ino, y.ino);
    CHECK_EQ(x.mod_revision, y.mod_revision);
    /* Indexes at or below the image's are applied already. */
    struct store_result r;
    CHECK_EQ(store_apply(b.s, 1, "junk", 4, &r), 0);
    CHECK(r.skipped);
    close(fd);
    free(big);
    tstore_fini(&a);
    tstore_fini(&b);
}

/* Installs damaged copies of a good image; each must be refused and the
 * target store stay as it was. */
static void test_damaged(void)
{
    struct tstore a = make_tree(STORE_DEFAULT_MAX_VALUE_BYTES);
    struct store_snapshot_info info;
    int fd = image_of(a.s, &info, a.dir);
    size_t len = (size_t)info.bytes;
    unsigned char *img = malloc(len);
    CHECK_EQ(pread(fd, img, len, 0), (ssize_t)len);
    close(fd);

    struct tstore b;
    tstore_init(&b);
    CHECK_EQ(t_put(&b, "/mine", "keep"), 0);
    char path[600], err[256], buf[16];
    snprintf(path, sizeof(path), "%s/../damaged-XXXXXX", b.dir);
    int dfd = mkstemp(path);
    unlink(path);

    /* Truncations: every byte near both ends, and a spread in between. */
    int refused = 0, tries = 0;
    for (size_t cut = 0; cut < len; cut += (cut < 64 || cut > len - 64) ? 1 : 97) {
        CHECK_EQ(ftruncate(dfd, 0), 0);
        CHECK_EQ(pwrite(dfd, img, cut, 0), (ssize_t)cut);
        tries++;
        refused += store_snapshot_install(b.s, dfd, NULL, err, sizeof(err)) == EPROTO;
    }
    CHECK_EQ(refused, tries);
    /* Flipped bytes anywhere: the checksum (or the structure) catches it. */
    refused = tries = 0;
    for (size_t at = 0; at < len; at += 53) {
        img[at] ^= 0x5a;
        CHECK_EQ(ftruncate(dfd, 0), 0);
        CHECK_EQ(pwrite(dfd, img, len, 0), (ssize_t)len);
        img[at] ^= 0x5a;
        tries++;
        refused += store_snapshot_install(b.s, dfd, NULL, err, sizeof(err)) == EPROTO;
    }
    CHECK_EQ(refused, tries);
    /* Trailing bytes. */
    CHECK_EQ(ftruncate(dfd, 0), 0);
    CHECK_EQ(pwrite(dfd, img, len, 0), (ssize_t)len);
    CHECK_EQ(pwrite(dfd, "x", 1, (off_t)len), 1);
    CHECK_EQ(store_snapshot_install(b.s, dfd, NULL, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "after the trailer") != NULL);
    /* Something else entirely. */
    CHECK_EQ(ftruncate(dfd, 0), 0);
    CHECK_EQ(pwrite(dfd, "hello world, not an image at all", 32, 0), 32);
    CHECK_EQ(store_snapshot_check(dfd, NULL, err, sizeof(err)), EPROTO);
    CHECK(strstr(err, "not a raftfs snapshot") != NULL);

    /* b is as it was. */
    CHECK_EQ(t_get(&b, "/mine", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "keep"));
    CHECK_EQ(t_stat(&b, "/app", NULL), ENOENT);
    close(dfd);
    free(img);
    tstore_fini(&a);
    tstore_fini(&b);
}

struct churn {
    struct tstore *t;
    volatile int stop;
    int applied;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    char path[32];
    for (int i = 0; !c->stop && i < 5000; i++) {
        snprintf(path, sizeof(path), "/c%d", i % 200);
        if (i % 3 == 2)
            t_simple(c->t, STORE_OP_DELETE, path);
        else
            t_put(c->t, path, "churn");
        c->applied++;
    }
    return NULL;
}

static void test_consistent_while_writing(void)
{
    struct tstore a;
    tstore_init(&a);
    struct churn ch = {.t = &a};
    pthread_t th;
    pthread_create(&th, NULL, churn_main, &ch);
    for (int round = 0; round < 5; round++) {
        struct store_snapshot_info info;
        int fd = image_of(a.s, &info, a.dir);
        /* The image's own counters match its records: installing it
         * elsewhere gives a store whose inode count is what it lists. */
        struct tstore b;
        tstore_init(&b);
        char err[256];
        CHECK_EQ(store_snapshot_install(b.s, fd, NULL, err, sizeof(err)), 0);
        struct store_stats st;
        CHECK_EQ(store_get_stats(b.s, &st), 0);
        struct cmp cm = {0};
        CHECK_EQ(store_txn_begin(b.s, &cm.ta), 0);
        cm.tb = cm.ta; /* compared with itself: counts the entries */
        compare_dir(&cm, STORE_ROOT_INO);
        store_txn_end(cm.ta);
        CHECK_EQ(cm.visited, (int)st.inodes - 1);
        CHECK_EQ(st.applied_index, info.applied_index);
        close(fd);
        tstore_fini(&b);
    }
    ch.stop = 1;
    pthread_join(th, NULL);
    CHECK(ch.applied > 0);
    tstore_fini(&a);
}

int main(void)
{
    RUN(test_crc);
    RUN(test_roundtrip);
    RUN(test_damaged);
    RUN(test_consistent_while_writing);
    CHECK_DONE();
}
