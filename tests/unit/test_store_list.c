/* test_store_list.c - listing directories in pages: 100,000 keys list
 * completely and in order; pages stay correct while the directory changes. */
#include "store_util.h"

#define NKEYS 100000
#define PAGE  1000

struct page {
    char last[256];
    size_t last_len;
    size_t n;
    size_t limit;
    uint64_t total;
    bool order_ok;
    char prev[256];
    size_t prev_len;
    bool have_prev;
    unsigned char *seen; /* by key number, for "key%06d" names */
    bool dup;
};

static int page_cb(void *ctx, const struct store_dirent *e)
{
    struct page *p = ctx;
    if (p->have_prev) {
        size_t m = p->prev_len < e->name_len ? p->prev_len : e->name_len;
        int c = memcmp(p->prev, e->name, m);
        if (c > 0 || (c == 0 && p->prev_len >= e->name_len))
            p->order_ok = false;
    }
    memcpy(p->prev, e->name, e->name_len);
    p->prev_len = e->name_len;
    p->have_prev = true;
    memcpy(p->last, e->name, e->name_len);
    p->last_len = e->name_len;
    if (p->seen && e->name_len == 9 && !memcmp(e->name, "key", 3)) {
        int k = 0;
        for (int i = 3; i < 9; i++)
            k = k * 10 + (e->name[i] - '0');
        if (p->seen[k])
            p->dup = true;
        p->seen[k] = 1;
    }
    p->total++;
    return ++p->n >= p->limit;
}

/* Applies PUTs of key%06d for [lo, hi) in batches of 1000 per transaction. */
static void fill(struct tstore *t, uint64_t dir_ino, int lo, int hi)
{
    (void)dir_ino;
    char paths[PAGE][32];
    void *enc[PAGE];
    struct store_entry e[PAGE];
    struct store_result r[PAGE];
    for (int base = lo; base < hi; base += PAGE) {
        int n = hi - base < PAGE ? hi - base : PAGE;
        for (int i = 0; i < n; i++) {
            int len = snprintf(paths[i], sizeof(paths[i]), "/big/key%06d", base + i);
            struct store_cmd c = {.op = STORE_OP_PUT,
                                  .path = paths[i],
                                  .path_len = (size_t)len,
                                  .value = "v",
                                  .value_len = 1,
                                  .mode = 0644,
                                  .time_ns = 1};
            size_t elen;
            if (store_cmd_encode(&c, &enc[i], &elen))
                exit(2);
            e[i] = (struct store_entry){.index = ++t->index, .data = enc[i], .len = elen};
        }
        CHECK_EQ(store_apply_batch(t->s, e, (size_t)n, r), 0);
        for (int i = 0; i < n; i++) {
            CHECK_EQ(r[i].err, 0);
            free(enc[i]);
        }
    }
}

static void test_100k(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_mkdir(&t, "/big"), 0);
    struct store_attr d;
    CHECK_EQ(t_stat(&t, "/big", &d), 0);
    fill(&t, d.ino, 0, NKEYS);
    /* A neighbour directory's entries must not leak into the listing. */
    CHECK_EQ(t_mkdir(&t, "/big2"), 0);
    CHECK_EQ(t_put(&t, "/big2/zzz", "x"), 0);

    struct page p = {.order_ok = true, .limit = PAGE};
    p.seen = calloc(NKEYS, 1);
    int pages = 0;
    for (;;) {
        struct store_txn *x;
        CHECK_EQ(store_txn_begin(t.s, &x), 0);
        p.n = 0;
        CHECK_EQ(store_list(x, d.ino, pages ? p.last : NULL, p.last_len, page_cb, &p), 0);
        store_txn_end(x);
        if (p.n == 0)
            break;
        pages++;
    }
    CHECK_EQ(p.total, NKEYS);
    CHECK_EQ(pages, NKEYS / PAGE);
    CHECK(p.order_ok);
    CHECK(!p.dup);
    int missing = 0;
    for (int i = 0; i < NKEYS; i++)
        missing += !p.seen[i];
    CHECK_EQ(missing, 0);
    free(p.seen);
    tstore_fini(&t);
}

static void test_pages_while_changing(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(t_mkdir(&t, "/big"), 0);
    struct store_attr d;
    CHECK_EQ(t_stat(&t, "/big", &d), 0);
    fill(&t, d.ino, 0, 5000);
    struct page p = {.order_ok = true, .limit = 100};
    p.seen = calloc(NKEYS, 1);
    int pages = 0;
    char path[64];
    for (;;) {
        struct store_txn *x;
        CHECK_EQ(store_txn_begin(t.s, &x), 0);
        p.n = 0;
        CHECK_EQ(store_list(x, d.ino, pages ? p.last : NULL, p.last_len, page_cb, &p), 0);
        store_txn_end(x);
        if (p.n == 0)
            break;
        pages++;
        /* Between pages: delete the entry the cursor stands on and one
         * ahead, add one behind: no surviving entry may be skipped or
         * repeated. */
        snprintf(path, sizeof(path), "/big/%.*s", (int)p.last_len, p.last);
        CHECK_EQ(t_simple(&t, STORE_OP_DELETE, path), 0);
        char num[8] = {0};
        memcpy(num, p.last + 3, 6);
        int ahead = atoi(num) + 50;
        if (ahead < 5000) {
            snprintf(path, sizeof(path), "/big/key%06d", ahead);
            CHECK_EQ(t_simple(&t, STORE_OP_DELETE, path), 0);
            p.seen[ahead] = 2; /* deleted before listed: must not appear */
        }
        snprintf(path, sizeof(path), "/big/aaa%d", pages);
        CHECK_EQ(t_put(&t, path, "new"), 0);
    }
    int missing = 0;
    for (int i = 0; i < 5000; i++)
        missing += p.seen[i] == 0;
    CHECK_EQ(missing, 0);
    CHECK(!p.dup); /* also catches a deleted entry (seen = 2) being listed */
    CHECK(p.order_ok);
    free(p.seen);
    tstore_fini(&t);
}

static void test_list_errors(void)
{
    struct tstore t;
    tstore_init(&t);
    struct page p = {.order_ok = true, .limit = 10};
    CHECK_EQ(t_put(&t, "/f", "x"), 0);
    struct store_attr a;
    CHECK_EQ(t_stat(&t, "/f", &a), 0);
    struct store_txn *x;
    CHECK_EQ(store_txn_begin(t.s, &x), 0);
    CHECK_EQ(store_list(x, a.ino, NULL, 0, page_cb, &p), ENOTDIR);
    CHECK_EQ(store_list(x, 12345, NULL, 0, page_cb, &p), ENOENT);
    CHECK_EQ(store_list(x, STORE_ROOT_INO, NULL, 0, page_cb, &p), 0);
    CHECK_EQ(p.total, 1);
    /* Resuming after a name past every entry lists nothing. */
    p.n = 0;
    CHECK_EQ(store_list(x, STORE_ROOT_INO, "zzz", 3, page_cb, &p), 0);
    CHECK_EQ(p.n, 0);
    store_txn_end(x);
    tstore_fini(&t);
}

int main(void)
{
    RUN(test_100k);
    RUN(test_pages_while_changing);
    RUN(test_list_errors);
    CHECK_DONE();
}
