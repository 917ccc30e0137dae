/* test_store_txn.c - STORE_OP_TXN (store_apply.c): compares choose a
 * branch, the branch applies all or nothing in one revision, each change
 * is one event of that revision, a retried txn gets its first result, and
 * the history is compacted a whole revision at a time. */
#include "raftfs.pb-c.h"
#include "store_util.h"

static struct store_cmd op_put(const char *path, const char *value)
{
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = path,
                          .path_len = strlen(path),
                          .value = value,
                          .value_len = strlen(value),
                          .mode = 0644};
    return c;
}

static struct store_cmd op_path(enum store_op op, const char *path)
{
    struct store_cmd c = {.op = op, .path = path, .path_len = strlen(path), .mode = 0755};
    return c;
}

static struct store_compare cmp_num(const char *path, enum store_cmp_target target,
                                    enum store_cmp_result result, uint64_t number)
{
    struct store_compare k = {.path = path,
                              .path_len = strlen(path),
                              .target = target,
                              .result = result,
                              .number = number};
    return k;
}

static struct store_compare cmp_value(const char *path, enum store_cmp_result result,
                                      const char *value)
{
    struct store_compare k = {.path = path,
                              .path_len = strlen(path),
                              .target = STORE_CMP_VALUE,
                              .result = result,
                              .value = value,
                              .value_len = strlen(value)};
    return k;
}

static int txn(struct tstore *t, const struct store_compare *k, size_t nk,
               const struct store_cmd *then, size_t nthen, const struct store_cmd *els,
               size_t nelse, struct store_result *res)
{
    struct store_cmd c = {.op = STORE_OP_TXN,
                          .compares = k,
                          .n_compares = nk,
                          .then_ops = then,
                          .n_then = nthen,
                          .else_ops = els,
                          .n_else = nelse};
    return tapply(t, &c, res);
}

struct evs {
    size_t n;
    uint64_t rev[64];
    char path[64][32];
};

static int collect(void *ctx, const struct store_event *ev)
{
    struct evs *g = ctx;
    if (g->n == 64)
        return ENOSPC;
    g->rev[g->n] = ev->revision;
    snprintf(g->path[g->n], sizeof(g->path[0]), "%.*s", (int)ev->path_len, ev->path);
    g->n++;
    return 0;
}

static int events(struct store *s, uint64_t from, struct evs *g, uint64_t *compacted)
{
    struct store_txn *x;
    g->n = 0;
    if (store_txn_begin(s, &x))
        exit(2);
    int rc = store_events(x, from, collect, g, compacted);
    store_txn_end(x);
    return rc;
}

static void test_then_and_else(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_put(&t, "/mode", "blue"), 0);
    uint64_t r0 = t_revision(&t);
    struct store_compare k = cmp_value("/mode", STORE_CMP_EQUAL, "blue");
    struct store_cmd then[] = {op_put("/b", "x"), op_put("/mode", "green")};
    struct store_cmd els[] = {op_put("/c", "y")};
    struct store_result res;
    CHECK_EQ(txn(&t, &k, 1, then, 2, els, 1, &res), 0);
    CHECK(res.txn_succeeded);
    CHECK_EQ(res.txn_failed_op, 0);
    /* One revision for the whole txn, on every entry it touched. */
    CHECK_EQ(res.revision, r0 + 1);
    CHECK_EQ(t_revision(&t), r0 + 1);
    struct store_attr a, b;
    CHECK_EQ(t_stat(&t, "/mode", &a), 0);
    CHECK_EQ(t_stat(&t, "/b", &b), 0);
    CHECK_EQ(a.mod_revision, r0 + 1);
    CHECK_EQ(b.mod_revision, r0 + 1);
    CHECK_EQ(t_stat(&t, "/c", NULL), ENOENT);
    char buf[32];
    CHECK_EQ(t_get(&t, "/mode", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "green"));
    /* Each change is an event of that revision, in the txn's order. */
    struct evs g;
    CHECK_EQ(events(t.s, r0 + 1, &g, NULL), 0);
    CHECK_EQ(g.n, 2);
    CHECK_EQ(g.rev[0], r0 + 1);
    CHECK_EQ(g.rev[1], r0 + 1);
    CHECK(!strcmp(g.path[0], "/b"));
    CHECK(!strcmp(g.path[1], "/mode"));

    /* Now the compare fails: the else branch runs. */
    CHECK_EQ(txn(&t, &k, 1, then, 2, els, 1, &res), 0);
    CHECK(!res.txn_succeeded);
    CHECK_EQ(t_stat(&t, "/c", NULL), 0);
    CHECK_EQ(t_revision(&t), r0 + 2);
    CHECK_EQ(t_stat(&t, "/b", &a), 0);
    CHECK_EQ(a.mod_revision, r0 + 1);
    /* A later revision's events follow the txn's. */
    CHECK_EQ(events(t.s, r0 + 1, &g, NULL), 0);
    CHECK_EQ(g.n, 3);
    CHECK_EQ(g.rev[2], r0 + 2);
    /* The offline check accepts a txn's history keys. */
    store_close(t.s);
    struct store_check_report rep;
    char err[256];
    CHECK_EQ(store_check(t.dir, &rep, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(rep.problems, 0);
    t.s = open_store(t.dir);
    tstore_fini(&t);
}

static void test_failing_compare_changes_nothing(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_put(&t, "/a", "1"), 0);
    uint64_t r0 = t_revision(&t);
    struct store_compare k[] = {cmp_value("/a", STORE_CMP_EQUAL, "1"),
                                cmp_num("/a", STORE_CMP_VERSION, STORE_CMP_GREATER, 1)};
    struct store_cmd then[] = {op_put("/a", "2"), op_path(STORE_OP_MKDIR, "/d")};
    struct store_result res;
    CHECK_EQ(txn(&t, k, 2, then, 2, NULL, 0, &res), 0);
    CHECK(!res.txn_succeeded);
    CHECK_EQ(res.revision, r0);
    CHECK_EQ(t_revision(&t), r0);
    char buf[8];
    CHECK_EQ(t_get(&t, "/a", buf, sizeof(buf)), 0);
    CHECK(!strcmp(buf, "1"));
    CHECK_EQ(t_stat(&t, "/d", NULL), ENOENT);
    struct evs g;
    CHECK_EQ(events(t.s, r0 + 1, &g, NULL), 0);
    CHECK_EQ(g.n, 0);
    tstore_fini(&t);
}

static void test_failing_op_rolls_back(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_put(&t, "/keep", "v"), 0);
    struct store_stats before;
    CHECK_EQ(store_get_stats(t.s, &before), 0);
    struct store_cmd then[] = {op_put("/x", "1"), op_path(STORE_OP_MKDIR, "/d"),
                               op_path(STORE_OP_DELETE, "/keep"), op_put("/no/such", "y")};
    struct store_result res;
    CHECK_EQ(txn(&t, NULL, 0, then, 4, NULL, 0, &res), ENOENT);
    CHECK(res.txn_succeeded);
    CHECK_EQ(res.txn_failed_op, 4);
    CHECK_EQ(t_stat(&t, "/x", NULL), ENOENT);
    CHECK_EQ(t_stat(&t, "/d", NULL), ENOENT);
    CHECK_EQ(t_stat(&t, "/keep", NULL), 0);
    struct store_stats after;
    CHECK_EQ(store_get_stats(t.s, &after), 0);
    CHECK_EQ(after.revision, before.revision);
    CHECK_EQ(after.inodes, before.inodes);
    /* Inode numbers were not used up: the next entry gets the one /x had. */
    struct store_attr root;
    CHECK_EQ(t_stat(&t, "/", &root), 0);
    CHECK_EQ(root.mod_revision, before.revision);
    CHECK_EQ(t_put(&t, "/y", "1"), 0);
    struct store_attr y, keep;
    CHECK_EQ(t_stat(&t, "/y", &y), 0);
    CHECK_EQ(t_stat(&t, "/keep", &keep), 0);
    CHECK_EQ(y.ino, keep.ino + 1);
    struct evs g;
    CHECK_EQ(events(t.s, before.revision + 1, &g, NULL), 0);
    CHECK_EQ(g.n, 1); /* /y only */
    /* The same ops in an order that works: all of them. */
    struct store_cmd ok[] = {op_path(STORE_OP_MKDIR, "/no"), op_put("/no/such", "y"),
                             op_path(STORE_OP_DELETE, "/keep")};
    CHECK_EQ(txn(&t, NULL, 0, ok, 3, NULL, 0, &res), 0);
    CHECK_EQ(t_stat(&t, "/no/such", NULL), 0);
    CHECK_EQ(t_stat(&t, "/keep", NULL), ENOENT);
    tstore_fini(&t);
}

static void test_compare_kinds(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_mkdir(&t, "/dir"), 0);
    CHECK_EQ(t_put(&t, "/k", "m"), 0);
    CHECK_EQ(t_put(&t, "/k", "m2"), 0); /* version 2 */
    struct store_attr k;
    CHECK_EQ(t_stat(&t, "/k", &k), 0);
    struct {
        struct store_compare c;
        bool holds;
    } cases[] = {
        {cmp_num("/k", STORE_CMP_VERSION, STORE_CMP_EQUAL, 2), true},
        {cmp_num("/k", STORE_CMP_VERSION, STORE_CMP_LESS, 2), false},
        {cmp_num("/k", STORE_CMP_VERSION, STORE_CMP_GREATER, 1), true},
        {cmp_num("/k", STORE_CMP_MOD_REVISION, STORE_CMP_EQUAL, k.mod_revision), true},
        {cmp_num("/k", STORE_CMP_MOD_REVISION, STORE_CMP_NOT_EQUAL, k.mod_revision), false},
        {cmp_num("/k", STORE_CMP_CREATE_REVISION, STORE_CMP_EQUAL, k.create_revision), true},
        {cmp_num("/k", STORE_CMP_CREATE_REVISION, STORE_CMP_LESS, k.create_revision), false},
        /* A missing entry: version and revisions 0, no value. */
        {cmp_num("/nope", STORE_CMP_VERSION, STORE_CMP_EQUAL, 0), true},
        {cmp_num("/nope/deeper", STORE_CMP_MOD_REVISION, STORE_CMP_EQUAL, 0), true},
        {cmp_num("/k/under-a-file", STORE_CMP_VERSION, STORE_CMP_EQUAL, 0), true},
        {cmp_value("/nope", STORE_CMP_NOT_EQUAL, "x"), false},
        {cmp_value("/nope", STORE_CMP_EQUAL, ""), false},
        /* Values compare bytewise, a prefix before a longer value. */
        {cmp_value("/k", STORE_CMP_EQUAL, "m2"), true},
        {cmp_value("/k", STORE_CMP_GREATER, "m"), true},
        {cmp_value("/k", STORE_CMP_LESS, "m3"), true},
        {cmp_value("/k", STORE_CMP_LESS, "m2"), false},
        {cmp_value("/k", STORE_CMP_NOT_EQUAL, "m"), true},
        /* A directory has no value; its version counts its changes. */
        {cmp_value("/dir", STORE_CMP_EQUAL, ""), false},
        {cmp_num("/dir", STORE_CMP_VERSION, STORE_CMP_EQUAL, 1), true},
        {cmp_num("/", STORE_CMP_VERSION, STORE_CMP_GREATER, 0), true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct store_result res;
        int rc = txn(&t, &cases[i].c, 1, NULL, 0, NULL, 0, &res);
        CHECK_EQ(rc, 0);
        if (res.txn_succeeded != cases[i].holds)
            fprintf(stderr, "compare case %zu\n", i);
        CHECK_EQ(res.txn_succeeded, cases[i].holds);
    }
    /* A malformed path refuses the whole txn. */
    struct store_compare bad = cmp_num("relative", STORE_CMP_VERSION, STORE_CMP_EQUAL, 0);
    struct store_cmd then[] = {op_put("/z", "1")};
    struct store_result res;
    CHECK_EQ(txn(&t, &bad, 1, then, 1, then, 1, &res), EINVAL);
    CHECK_EQ(res.txn_failed_op, 0);
    CHECK_EQ(t_stat(&t, "/z", NULL), ENOENT);
    tstore_fini(&t);
}

static void test_retry_gets_first_result(void)
{
    struct tstore t;
    tstore_init(&t);
    struct store_compare k = cmp_num("/a", STORE_CMP_VERSION, STORE_CMP_EQUAL, 0);
    struct store_cmd then[] = {op_put("/a", "1"), op_put("/missing/x", "1")};
    struct store_cmd c = {.op = STORE_OP_TXN,
                          .compares = &k,
                          .n_compares = 1,
                          .then_ops = then,
                          .n_then = 2,
                          .client_id = 77,
                          .seq = 1,
                          .time_ns = 1};
    void *buf;
    size_t len;
    CHECK_EQ(store_cmd_encode(&c, &buf, &len), 0);
    struct store_result r1, r2;
    CHECK_EQ(store_apply(t.s, ++t.index, buf, len, &r1), 0);
    CHECK_EQ(r1.err, ENOENT);
    CHECK(r1.txn_succeeded);
    CHECK_EQ(r1.txn_failed_op, 2);
    CHECK_EQ(store_apply(t.s, ++t.index, buf, len, &r2), 0);
    CHECK(r2.duplicate);
    CHECK_EQ(r2.err, ENOENT);
    CHECK_EQ(r2.op, STORE_OP_TXN);
    CHECK(r2.txn_succeeded);
    CHECK_EQ(r2.txn_failed_op, 2);
    free(buf);
    tstore_fini(&t);
}

struct drops {
    int n;
    uint64_t ino;
};

static void on_drop(void *ctx, const struct store_attr *attr, const void *data, size_t len)
{
    struct drops *d = ctx;
    (void)data, (void)len;
    d->n++;
    d->ino = attr->ino;
}

static void test_drop_told_only_when_applied(void)
{
    struct tstore t;
    tstore_init(&t);
    struct drops d = {0};
    struct store_observer obs = {.ctx = &d, .dropping = on_drop};
    store_set_observer(t.s, &obs);
    CHECK_EQ(t_put(&t, "/a", "v"), 0);
    struct store_attr a;
    CHECK_EQ(t_stat(&t, "/a", &a), 0);
    struct store_cmd fails[] = {op_path(STORE_OP_DELETE, "/a"), op_put("/none/x", "1")};
    CHECK_EQ(txn(&t, NULL, 0, fails, 2, NULL, 0, NULL), ENOENT);
    CHECK_EQ(d.n, 0); /* /a is still there: nobody may think it gone */
    struct store_cmd works[] = {op_path(STORE_OP_DELETE, "/a")};
    CHECK_EQ(txn(&t, NULL, 0, works, 1, NULL, 0, NULL), 0);
    CHECK_EQ(d.n, 1);
    CHECK_EQ(d.ino, a.ino);
    tstore_fini(&t);
}

static void test_codec_refusals(void)
{
    struct store_cmd then[] = {op_put("/a", "1")};
    struct store_cmd c = {.op = STORE_OP_TXN, .then_ops = then, .n_then = 1};
    void *buf;
    size_t len;
    struct store_cmd_decoded d;
    CHECK_EQ(store_cmd_encode(&c, &buf, &len), 0);
    CHECK_EQ(store_cmd_decode(buf, len, &d), 0);
    CHECK_EQ(d.cmd.op, STORE_OP_TXN);
    CHECK_EQ(d.cmd.n_then, 1);
    CHECK_EQ(d.cmd.then_ops[0].op, STORE_OP_PUT);
    CHECK_MEM(d.cmd.then_ops[0].path, d.cmd.then_ops[0].path_len, "/a");
    store_cmd_decoded_free(&d);
    /* A txn is version 2 (older builds refuse it), any other command 1
     * (older builds apply it). */
    Raftfs__Command *m = raftfs__command__unpack(NULL, len, buf);
    CHECK(m && m->version == STORE_CMD_VERSION_TXN && m->txn->then[0]->version == 1);
    raftfs__command__free_unpacked(m, NULL);
    free(buf);
    CHECK_EQ(store_cmd_encode(&then[0], &buf, &len), 0);
    m = raftfs__command__unpack(NULL, len, buf);
    CHECK(m && m->version == STORE_CMD_VERSION_PLAIN && STORE_CMD_VERSION_PLAIN == 1);
    raftfs__command__free_unpacked(m, NULL);
    free(buf);
    /* A txn in a txn, or too many ops, are refused. */
    struct store_cmd inner[] = {c};
    struct store_cmd nested = {.op = STORE_OP_TXN, .then_ops = inner, .n_then = 1};
    CHECK_EQ(store_cmd_encode(&nested, &buf, &len), EINVAL);
    struct store_cmd *many = calloc(STORE_MAX_TXN_OPS + 1, sizeof(*many));
    for (size_t i = 0; i <= STORE_MAX_TXN_OPS; i++)
        many[i] = op_put("/a", "1");
    struct store_cmd big = {.op = STORE_OP_TXN, .then_ops = many, .n_then = STORE_MAX_TXN_OPS + 1};
    CHECK_EQ(store_cmd_encode(&big, &buf, &len), E2BIG);
    big.n_then = STORE_MAX_TXN_OPS;
    CHECK_EQ(store_cmd_encode(&big, &buf, &len), 0);
    CHECK_EQ(store_cmd_decode(buf, len, &d), 0);
    CHECK_EQ(d.cmd.n_then, STORE_MAX_TXN_OPS);
    store_cmd_decoded_free(&d);
    free(buf);
    free(many);
    /* Member and lease ops inside are refused. */
    struct store_cmd inside[] = {{.op = STORE_OP_MEMBER_DEL, .member_id = 3},
                                 {.op = STORE_OP_LEASE_GRANT, .lease = 1, .ttl_ms = 10},
                                 {.op = STORE_OP_LEASE_REVOKE, .lease = 1}};
    for (size_t i = 0; i < 3; i++) {
        struct store_cmd t = {.op = STORE_OP_TXN, .then_ops = &inside[i], .n_then = 1};
        CHECK_EQ(store_cmd_encode(&t, &buf, &len), EINVAL);
    }
}

/* Compaction removes a txn's revision whole: a watcher never sees half of
 * one. */
static void test_compaction_keeps_revisions_whole(void)
{
    char *dir = tmpdir_make();
    struct store_config cfg = {.history_revisions = 1};
    struct tstore t = {.dir = dir, .s = open_store_cfg(dir, &cfg)};
    struct store_cmd ops[40];
    char paths[40][8];
    for (int i = 0; i < 40; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/k%02d", i);
        ops[i] = op_put(paths[i], "v");
    }
    CHECK_EQ(txn(&t, NULL, 0, ops, 40, NULL, 0, NULL), 0);
    uint64_t r = t_revision(&t);
    struct evs g;
    uint64_t compacted;
    CHECK_EQ(events(t.s, r, &g, &compacted), 0);
    CHECK_EQ(g.n, 40);
    /* One event added: a budget of 18 deletions, and the txn's 40 go
     * together. */
    CHECK_EQ(t_put(&t, "/next", "v"), 0);
    CHECK_EQ(events(t.s, r + 1, &g, &compacted), 0);
    CHECK_EQ(compacted, r);
    CHECK_EQ(g.n, 1);
    CHECK_EQ(events(t.s, r, &g, &compacted), STORE_ECOMPACTED);
    tstore_fini(&t);
}

int main(void)
{
    RUN(test_then_and_else);
    RUN(test_failing_compare_changes_nothing);
    RUN(test_failing_op_rolls_back);
    RUN(test_compare_kinds);
    RUN(test_retry_gets_first_result);
    RUN(test_drop_told_only_when_applied);
    RUN(test_codec_refusals);
    RUN(test_compaction_keeps_revisions_whole);
    CHECK_DONE();
}
