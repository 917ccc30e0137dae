/* test_store_lease.c - leases in the store (store_lease.c, store_apply.c):
 * granting, attaching files by PUT, SETATTR and inside a txn, detaching on
 * delete and replace, revoking (the files deleted in one revision), and a
 * snapshot image carrying them. */
#include <fcntl.h>

#include "store_util.h"

static int grant(struct tstore *t, uint64_t id, uint64_t ttl)
{
    struct store_cmd c = {.op = STORE_OP_LEASE_GRANT, .lease = id, .ttl_ms = ttl};
    return tapply(t, &c, NULL);
}

static int lease_revoke(struct tstore *t, uint64_t id, struct store_result *res)
{
    struct store_cmd c = {.op = STORE_OP_LEASE_REVOKE, .lease = id};
    return tapply(t, &c, res);
}

static int put_leased(struct tstore *t, const char *path, const char *v, bool has, uint64_t id)
{
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = path,
                          .value = v,
                          .value_len = strlen(v),
                          .mode = 0644,
                          .has_lease = has,
                          .lease = id};
    return tapply(t, &c, NULL);
}

static uint64_t lease_of(struct tstore *t, const char *path)
{
    struct store_attr a;
    struct store_txn *x;
    uint64_t id = 99999;
    if (t_stat(t, path, &a) || store_txn_begin(t->s, &x))
        return 99999;
    CHECK_EQ(store_file_lease(x, a.ino, &id), 0);
    store_txn_end(x);
    return id;
}

static int lease_info(struct store *s, uint64_t id, struct store_lease *l)
{
    struct store_txn *x;
    if (store_txn_begin(s, &x))
        exit(2);
    int rc = store_lease_get(x, id, l);
    store_txn_end(x);
    return rc;
}

static void test_grant(void)
{
    struct tstore t;
    tstore_init(&t);
    uint64_t r0 = t_revision(&t);
    CHECK_EQ(grant(&t, 0, 1000), EINVAL);
    CHECK_EQ(grant(&t, 5, 0), EINVAL);
    CHECK_EQ(grant(&t, 5, STORE_LEASE_TTL_MAX_MS + 1), EINVAL);
    CHECK_EQ(grant(&t, 5, 1000), 0);
    CHECK_EQ(grant(&t, 5, 2000), EEXIST);
    CHECK_EQ(grant(&t, 6, STORE_LEASE_TTL_MAX_MS), 0);
    CHECK_EQ(t_revision(&t), r0); /* the tree did not change */
    struct store_lease l;
    CHECK_EQ(lease_info(t.s, 5, &l), 0);
    CHECK_EQ(l.ttl_ms, 1000);
    CHECK_EQ(l.keys, 0);
    CHECK_EQ(lease_info(t.s, 7, &l), ENOKEY);
    tstore_fini(&t);
}

static void test_attach_and_detach(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(grant(&t, 1, 1000), 0);
    CHECK_EQ(grant(&t, 2, 1000), 0);
    CHECK_EQ(t_mkdir(&t, "/svc"), 0);
    /* An unknown lease refuses the put: nothing written. */
    CHECK_EQ(put_leased(&t, "/svc/a", "x", true, 9), ENOKEY);
    CHECK_EQ(t_stat(&t, "/svc/a", NULL), ENOENT);
    CHECK_EQ(put_leased(&t, "/svc/a", "x", true, 1), 0);
    CHECK_EQ(lease_of(&t, "/svc/a"), 1);
    /* A put without one keeps it; with 2 moves it; with 0 detaches. */
    CHECK_EQ(put_leased(&t, "/svc/a", "y", false, 0), 0);
    CHECK_EQ(lease_of(&t, "/svc/a"), 1);
    CHECK_EQ(put_leased(&t, "/svc/a", "z", true, 2), 0);
    CHECK_EQ(lease_of(&t, "/svc/a"), 2);
    struct store_lease l;
    CHECK_EQ(lease_info(t.s, 1, &l), 0);
    CHECK_EQ(l.keys, 0);
    CHECK_EQ(lease_info(t.s, 2, &l), 0);
    CHECK_EQ(l.keys, 1);
    CHECK_EQ(put_leased(&t, "/svc/a", "w", true, 0), 0);
    CHECK_EQ(lease_of(&t, "/svc/a"), 0);
    /* SETATTR attaches an existing file, not a directory. */
    uint64_t r = t_revision(&t);
    struct store_cmd sa = {
        .op = STORE_OP_SETATTR, .path = "/svc/a", .set_mask = STORE_SET_LEASE, .lease = 1};
    CHECK_EQ(tapply(&t, &sa, NULL), 0);
    CHECK_EQ(lease_of(&t, "/svc/a"), 1);
    CHECK_EQ(t_revision(&t), r + 1);
    sa.lease = 8;
    CHECK_EQ(tapply(&t, &sa, NULL), ENOKEY);
    struct store_cmd sd = {
        .op = STORE_OP_SETATTR, .path = "/svc", .set_mask = STORE_SET_LEASE, .lease = 1};
    CHECK_EQ(tapply(&t, &sd, NULL), EISDIR);
    /* Deleting a file, or replacing it by a rename, lets go of it; a file
     * moved keeps its lease. */
    CHECK_EQ(put_leased(&t, "/svc/b", "b", true, 1), 0);
    CHECK_EQ(lease_info(t.s, 1, &l), 0);
    CHECK_EQ(l.keys, 2);
    CHECK_EQ(t_simple(&t, STORE_OP_DELETE, "/svc/b"), 0);
    CHECK_EQ(lease_info(t.s, 1, &l), 0);
    CHECK_EQ(l.keys, 1);
    CHECK_EQ(t_put(&t, "/svc/c", "c"), 0);
    CHECK_EQ(t_rename(&t, "/svc/c", "/svc/a", 0), 0); /* replaces the leased one */
    CHECK_EQ(lease_info(t.s, 1, &l), 0);
    CHECK_EQ(l.keys, 0);
    CHECK_EQ(put_leased(&t, "/svc/d", "d", true, 2), 0);
    CHECK_EQ(t_rename(&t, "/svc/d", "/moved", 0), 0);
    CHECK_EQ(lease_of(&t, "/moved"), 2);
    tstore_fini(&t);
}

struct evcount {
    int n, deletes;
    uint64_t rev;
};

static int count_events(void *ctx, const struct store_event *ev)
{
    struct evcount *g = ctx;
    g->n++;
    g->deletes += ev->op == STORE_OP_DELETE;
    g->rev = ev->revision;
    return 0;
}

static void test_revoke_deletes_together(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(grant(&t, 3, 1000), 0);
    CHECK_EQ(t_mkdir(&t, "/svc"), 0);
    CHECK_EQ(t_mkdir(&t, "/other"), 0);
    CHECK_EQ(put_leased(&t, "/svc/a", "1", true, 3), 0);
    CHECK_EQ(put_leased(&t, "/other/b", "2", true, 3), 0);
    /* Inside a txn too. */
    struct store_cmd ops[] = {{.op = STORE_OP_PUT,
                               .path = "/svc/c",
                               .path_len = 6,
                               .value = "3",
                               .value_len = 1,
                               .mode = 0644,
                               .has_lease = true,
                               .lease = 3}};
    struct store_cmd txn = {.op = STORE_OP_TXN, .then_ops = ops, .n_then = 1};
    CHECK_EQ(tapply(&t, &txn, NULL), 0);
    CHECK_EQ(t_put(&t, "/svc/keep", "not leased"), 0);
    uint64_t r = t_revision(&t);
    struct store_result res;
    CHECK_EQ(lease_revoke(&t, 3, &res), 0);
    CHECK_EQ(res.revision, r + 1);
    CHECK_EQ(t_stat(&t, "/svc/a", NULL), ENOENT);
    CHECK_EQ(t_stat(&t, "/other/b", NULL), ENOENT);
    CHECK_EQ(t_stat(&t, "/svc/c", NULL), ENOENT);
    CHECK_EQ(t_stat(&t, "/svc/keep", NULL), 0);
    struct store_lease l;
    CHECK_EQ(lease_info(t.s, 3, &l), ENOKEY);
    CHECK_EQ(lease_revoke(&t, 3, NULL), ENOKEY);
    CHECK_EQ(put_leased(&t, "/svc/a", "again", true, 3), ENOKEY);
    /* Three DELETE events, all of the revoke's revision. */
    struct store_txn *x;
    CHECK_EQ(store_txn_begin(t.s, &x), 0);
    struct evcount got = {0};
    CHECK_EQ(store_events(x, r + 1, count_events, &got, NULL), 0);
    store_txn_end(x);
    CHECK_EQ(got.n, 3);
    CHECK_EQ(got.deletes, 3);
    CHECK_EQ(got.rev, r + 1);
    /* A lease with no files: revoked without a revision. */
    CHECK_EQ(grant(&t, 4, 10), 0);
    CHECK_EQ(lease_revoke(&t, 4, &res), 0);
    CHECK_EQ(res.revision, r + 1);
    tstore_fini(&t);
}

static void test_snapshot_carries_leases(void)
{
    struct tstore a, b;
    tstore_init(&a);
    tstore_init(&b);
    CHECK_EQ(grant(&a, 11, 3000), 0);
    CHECK_EQ(put_leased(&a, "/k", "v", true, 11), 0);
    char img[600], *imgdir = tmpdir_make();
    snprintf(img, sizeof(img), "%s/img", imgdir);
    int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    struct store_snapshot_info info;
    CHECK_EQ(store_snapshot_write(a.s, fd, &info), 0);
    char err[256];
    CHECK_EQ(store_snapshot_install(b.s, fd, &info, err, sizeof(err)), 0);
    close(fd);
    rm_rf(imgdir);
    free(imgdir);
    b.index = info.applied_index;
    struct store_lease l;
    CHECK_EQ(lease_info(b.s, 11, &l), 0);
    CHECK_EQ(l.ttl_ms, 3000);
    CHECK_EQ(l.keys, 1);
    CHECK_EQ(lease_of(&b, "/k"), 11);
    /* The same digest, and the revoke works on the copy. */
    store_close(a.s);
    store_close(b.s);
    struct store_check_report ra, rb;
    CHECK_EQ(store_check(a.dir, &ra, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(store_check(b.dir, &rb, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(ra.problems, 0);
    CHECK_EQ(rb.problems, 0);
    CHECK(ra.digest == rb.digest);
    a.s = open_store(a.dir);
    b.s = open_store(b.dir);
    CHECK_EQ(lease_revoke(&b, 11, NULL), 0);
    CHECK_EQ(t_stat(&b, "/k", NULL), ENOENT);
    tstore_fini(&a);
    tstore_fini(&b);
}

int main(void)
{
    RUN(test_grant);
    RUN(test_attach_and_detach);
    RUN(test_revoke_deletes_together);
    RUN(test_snapshot_carries_leases);
    CHECK_DONE();
}
