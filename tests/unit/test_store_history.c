/* test_store_history.c - the change history (store_history.c): one event
 * per revision that changed the tree, in order, compacted to the last
 * history_revisions, reset by an image install and by a store whose
 * history does not reach its revision. */
#include <fcntl.h>
#include <lmdb.h>

#include "store_util.h"

#define MAX_EV 64

struct got {
    size_t n;
    struct {
        uint64_t revision;
        enum store_op op;
        enum store_type type;
        char path[64], path2[64];
        uint64_t size;
    } ev[MAX_EV];
    size_t stop_after; /* 0: never */
};

static int collect(void *ctx, const struct store_event *ev)
{
    struct got *g = ctx;
    if (g->n == MAX_EV)
        return ENOSPC;
    g->ev[g->n].revision = ev->revision;
    g->ev[g->n].op = ev->op;
    g->ev[g->n].type = ev->type;
    g->ev[g->n].size = ev->size;
    snprintf(g->ev[g->n].path, sizeof(g->ev[0].path), "%.*s", (int)ev->path_len, ev->path);
    snprintf(g->ev[g->n].path2, sizeof(g->ev[0].path2), "%.*s", (int)ev->path2_len,
             ev->path2 ? ev->path2 : "");
    g->n++;
    return g->stop_after && g->n == g->stop_after ? -1 : 0;
}

static int events(struct store *s, uint64_t from, struct got *g, uint64_t *compacted)
{
    struct store_txn *t;
    memset(g->ev, 0, sizeof(g->ev));
    g->n = 0;
    if (store_txn_begin(s, &t))
        exit(2);
    int rc = store_events(t, from, collect, g, compacted);
    store_txn_end(t);
    return rc;
}

static uint64_t revision(struct store *s)
{
    struct store_stats st;
    if (store_get_stats(s, &st))
        exit(2);
    return st.revision;
}

static void test_events_in_order(void)
{
    struct tstore t;
    tstore_init(&t);
    uint64_t compacted = 99;
    struct got g = {0};
    CHECK_EQ(events(t.s, 1, &g, &compacted), 0);
    CHECK_EQ(compacted, 0);
    CHECK_EQ(g.n, 0);

    CHECK_EQ(t_mkdir(&t, "/app"), 0);
    CHECK_EQ(t_put(&t, "/app/url", "http://a"), 0);
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/app/missing"), ENOENT); /* no event */
    CHECK_EQ(t_rename(&t, "/app/url", "/app/db", 0), 0);
    struct store_cmd ap = {.op = STORE_OP_APPEND, .path = "/app/db", .value = "+x", .value_len = 2};
    CHECK_EQ(tapply(&t, &ap, NULL), 0);
    struct store_cmd ch = {
        .op = STORE_OP_SETATTR, .path = "/app/db", .set_mask = STORE_SET_MODE, .mode = 0600};
    CHECK_EQ(tapply(&t, &ch, NULL), 0);
    /* The member directory bumps no tree entry: no event. */
    struct store_cmd ms = {.op = STORE_OP_MEMBER_SET, .member_id = 9, .path = "127.0.0.1:1"};
    CHECK_EQ(tapply(&t, &ms, NULL), 0);
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/app/db"), 0);
    CHECK_EQ(t_simple(&t, STORE_OP_RMDIR, "/app"), 0);

    CHECK_EQ(events(t.s, 1, &g, &compacted), 0);
    CHECK_EQ(compacted, 0);
    static const enum store_op want[] = {STORE_OP_MKDIR,  STORE_OP_PUT,     STORE_OP_RENAME,
                                         STORE_OP_APPEND, STORE_OP_SETATTR, STORE_OP_DELETE,
                                         STORE_OP_RMDIR};
    CHECK_EQ(g.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < g.n && i < sizeof(want) / sizeof(want[0]); i++) {
        CHECK_EQ(g.ev[i].op, want[i]);
        if (i)
            CHECK(g.ev[i].revision > g.ev[i - 1].revision);
    }
    CHECK(!strcmp(g.ev[0].path, "/app") && g.ev[0].type == STORE_TYPE_DIR);
    CHECK(!strcmp(g.ev[1].path, "/app/url") && g.ev[1].size == 8);
    CHECK(!strcmp(g.ev[2].path, "/app/url") && !strcmp(g.ev[2].path2, "/app/db"));
    CHECK_EQ(g.ev[3].size, 10);
    CHECK(!strcmp(g.ev[5].path, "/app/db"));
    CHECK_EQ(g.ev[6].revision, revision(t.s));

    /* From a later revision; and a callback that stops early. */
    CHECK_EQ(events(t.s, g.ev[4].revision, &g, NULL), 0);
    CHECK_EQ(g.n, 3);
    CHECK_EQ(g.ev[0].op, STORE_OP_SETATTR);
    g.stop_after = 1;
    CHECK_EQ(events(t.s, 1, &g, NULL), 0);
    CHECK_EQ(g.n, 1);
    g.stop_after = 0;
    CHECK_EQ(events(t.s, revision(t.s) + 1, &g, NULL), 0);
    CHECK_EQ(g.n, 0);
    tstore_fini(&t);
}

static void test_compaction(void)
{
    struct tstore t;
    t.dir = tmpdir_make();
    struct store_config cfg = {.history_revisions = 5};
    t.s = open_store_cfg(t.dir, &cfg);
    t.index = 0;
    char path[32];
    for (int i = 0; i < 20; i++) {
        snprintf(path, sizeof(path), "/k%d", i);
        CHECK_EQ(t_put(&t, path, "v"), 0);
    }
    uint64_t rev = revision(t.s), compacted = 0;
    struct got g = {0};
    CHECK_EQ(events(t.s, rev - 4, &g, &compacted), 0);
    CHECK_EQ(compacted, rev - 5);
    CHECK_EQ(g.n, 5);
    CHECK(!strcmp(g.ev[4].path, "/k19"));
    CHECK_EQ(events(t.s, rev - 5, &g, &compacted), STORE_ECOMPACTED);
    CHECK_EQ(events(t.s, 1, &g, &compacted), STORE_ECOMPACTED);

    /* Kept across a restart; a larger limit keeps more from then on. */
    store_close(t.s);
    cfg.history_revisions = 100;
    t.s = open_store_cfg(t.dir, &cfg);
    CHECK_EQ(events(t.s, rev - 4, &g, &compacted), 0);
    CHECK_EQ(compacted, rev - 5);
    CHECK_EQ(g.n, 5);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(t_put(&t, "/again", "v"), 0);
    CHECK_EQ(events(t.s, rev - 4, &g, &compacted), 0);
    CHECK_EQ(g.n, 15);

    /* A smaller limit set at a restart is reached a few events at a time. */
    store_close(t.s);
    cfg.history_revisions = 1;
    t.s = open_store_cfg(t.dir, &cfg);
    CHECK_EQ(t_put(&t, "/again", "w"), 0);
    rev = revision(t.s);
    CHECK_EQ(events(t.s, rev, &g, &compacted), 0);
    CHECK_EQ(compacted, rev - 1);
    CHECK_EQ(g.n, 1);
    tstore_fini(&t);
}

/* A store whose history does not reach its revision (an older build
 * applied without one) starts the history over at its revision. */
static void test_gap_resets(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_put(&t, "/a", "1"), 0);
    CHECK_EQ(t_put(&t, "/b", "2"), 0);
    uint64_t rev = revision(t.s);
    store_close(t.s);
    /* As an older build would leave it: no "history" record. */
    char path[4200];
    snprintf(path, sizeof(path), "%s/store", t.dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    CHECK_EQ(mdb_env_create(&env), 0);
    CHECK_EQ(mdb_env_set_maxdbs(env, 16), 0);
    CHECK_EQ(mdb_env_open(env, path, 0, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val k = {.mv_size = 7, .mv_data = "history"};
    CHECK_EQ(mdb_del(txn, meta, &k, NULL), 0);
    CHECK_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    t.s = open_store(t.dir);
    uint64_t compacted = 0;
    struct got g = {0};
    CHECK_EQ(events(t.s, rev, &g, &compacted), STORE_ECOMPACTED);
    CHECK_EQ(compacted, rev);
    CHECK_EQ(t_put(&t, "/c", "3"), 0);
    CHECK_EQ(events(t.s, rev + 1, &g, &compacted), 0);
    CHECK_EQ(g.n, 1);
    CHECK(!strcmp(g.ev[0].path, "/c"));
    tstore_fini(&t);
}

/* An installed image: nothing before its revision is known here. */
static void test_install_resets(void)
{
    struct tstore a, b;
    tstore_init(&a);
    tstore_init(&b);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(t_put(&a, "/x", "v"), 0);
    CHECK_EQ(t_put(&b, "/only-b", "v"), 0);
    char img[4200];
    snprintf(img, sizeof(img), "%s/image", a.dir);
    int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    struct store_snapshot_info info;
    CHECK_EQ(store_snapshot_write(a.s, fd, &info), 0);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    char err[256];
    CHECK_EQ(store_snapshot_install(b.s, fd, &info, err, sizeof(err)), 0);
    close(fd);
    uint64_t compacted = 0;
    struct got g = {0};
    CHECK_EQ(events(b.s, 1, &g, &compacted), STORE_ECOMPACTED);
    CHECK_EQ(compacted, info.revision);
    b.index = info.applied_index;
    CHECK_EQ(t_put(&b, "/after", "v"), 0);
    CHECK_EQ(events(b.s, info.revision + 1, &g, &compacted), 0);
    CHECK_EQ(g.n, 1);
    CHECK(!strcmp(g.ev[0].path, "/after"));
    tstore_fini(&a);
    tstore_fini(&b);
}

/* The names watchers print. */
static void test_event_op_names(void)
{
    const char *want[] = {"?", "put", "append", "delete", "mkdir", "rmdir", "rename", "setattr"};
    for (uint32_t op = 0; op < 8; op++)
        CHECK(!strcmp(store_event_op_name(op), want[op]));
    CHECK(!strcmp(store_event_op_name(STORE_OP_MEMBER_SET), "?"));
    CHECK(!strcmp(store_event_op_name(1000), "?"));
}

int main(void)
{
    RUN(test_events_in_order);
    RUN(test_compaction);
    RUN(test_gap_resets);
    RUN(test_install_resets);
    RUN(test_event_op_names);
    CHECK_DONE();
}
