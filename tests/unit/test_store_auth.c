/* test_store_auth.c - access control in the store (store_auth.c): users,
 * roles and permissions as AUTH commands make them, the check of a
 * client's command where it falls in the log (revocation holds from that
 * index on), reads checked by store_auth_allowed, the rules that keep the
 * root usable, images and the check carrying the records, and the
 * encoding refusing a password in the log. */
#include <fcntl.h>

#include "raftfs.pb-c.h"
#include "store_util.h"

static int auth(struct tstore *t, enum store_auth_op op, const char *name, const char *role,
                const char *prefix, uint32_t perm, const char *hash, const char *as)
{
    struct store_cmd c = {.op = STORE_OP_AUTH,
                          .auth_op = op,
                          .auth_name = name,
                          .auth_name_len = name ? strlen(name) : 0,
                          .auth_role = role,
                          .auth_role_len = role ? strlen(role) : 0,
                          .auth_prefix = prefix,
                          .auth_prefix_len = prefix ? strlen(prefix) : 0,
                          .auth_perm = perm,
                          .has_auth_hash = hash != NULL,
                          .auth_hash = hash,
                          .auth_hash_len = hash ? strlen(hash) : 0,
                          .has_user = as != NULL,
                          .user = as,
                          .user_len = as ? strlen(as) : 0};
    return tapply(t, &c, NULL);
}

/* A client's PUT as user (NULL: a mount's, unchecked). */
static int put_as(struct tstore *t, const char *path, const char *user)
{
    struct store_cmd c = {.op = STORE_OP_PUT,
                          .path = path,
                          .value = "v",
                          .value_len = 1,
                          .mode = 0644,
                          .has_user = user != NULL,
                          .user = user,
                          .user_len = user ? strlen(user) : 0};
    return tapply(t, &c, NULL);
}

static int allowed(struct tstore *t, const char *user, const char *path, unsigned want)
{
    struct store_txn *x;
    if (store_txn_begin(t->s, &x))
        exit(2);
    int rc = store_auth_allowed(x, user, strlen(user), path, strlen(path), want);
    store_txn_end(x);
    return rc;
}

/* root (password "h-root"), alice with role app: read-write on /app,
 * read on /shared; access control enabled. */
static void setup(struct tstore *t)
{
    tstore_init(t);
    CHECK_EQ(auth(t, STORE_AUTH_USER_ADD, "root", NULL, NULL, 0, "h-root", NULL), 0);
    CHECK_EQ(auth(t, STORE_AUTH_USER_ADD, "alice", NULL, NULL, 0, "h-alice", NULL), 0);
    CHECK_EQ(auth(t, STORE_AUTH_ROLE_ADD, "app", NULL, NULL, 0, NULL, NULL), 0);
    CHECK_EQ(auth(t, STORE_AUTH_ROLE_GRANT, "app", NULL, "/app", 3, NULL, NULL), 0);
    CHECK_EQ(auth(t, STORE_AUTH_ROLE_GRANT, "app", NULL, "/shared", STORE_PERM_READ, NULL, NULL),
             0);
    CHECK_EQ(auth(t, STORE_AUTH_USER_GRANT_ROLE, "alice", "app", NULL, 0, NULL, NULL), 0);
    CHECK_EQ(t_mkdir(t, "/app"), 0);
    CHECK_EQ(t_mkdir(t, "/shared"), 0);
    CHECK_EQ(auth(t, STORE_AUTH_ENABLE, NULL, NULL, NULL, 0, NULL, NULL), 0);
}

static void test_disabled_checks_nothing(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(put_as(&t, "/a", ""), 0);
    CHECK_EQ(put_as(&t, "/b", "nobody"), 0);
    CHECK_EQ(allowed(&t, "nobody", "/a", STORE_PERM_WRITE), 0);
    /* ENABLE needs the user root. */
    CHECK_EQ(auth(&t, STORE_AUTH_ENABLE, NULL, NULL, NULL, 0, NULL, NULL), ENOENT);
    CHECK_EQ(put_as(&t, "/c", ""), 0);
    tstore_fini(&t);
}

static void test_prefixes_and_perms(void)
{
    struct tstore t;
    setup(&t);
    CHECK_EQ(put_as(&t, "/app/url", "alice"), 0);
    CHECK_EQ(put_as(&t, "/app", "alice"), EISDIR);      /* allowed, and then the tree says */
    CHECK_EQ(put_as(&t, "/apple", "alice"), EACCES);    /* a prefix is whole components */
    CHECK_EQ(put_as(&t, "/shared/x", "alice"), EACCES); /* read only there */
    CHECK_EQ(put_as(&t, "/x", ""), EPERM);              /* nobody logged in */
    CHECK_EQ(put_as(&t, "/x", "mallory"), EPERM);       /* no such user */
    CHECK_EQ(put_as(&t, "/x", "root"), 0);              /* root may do all */
    CHECK_EQ(put_as(&t, "/y", NULL), 0);                /* a mount's own: not checked */
    CHECK_EQ(allowed(&t, "alice", "/shared/x", STORE_PERM_READ), 0);
    CHECK_EQ(allowed(&t, "alice", "/shared", STORE_PERM_READ), 0);
    CHECK_EQ(allowed(&t, "alice", "/shared/x", STORE_PERM_WRITE), EACCES);
    CHECK_EQ(allowed(&t, "alice", "/", STORE_PERM_READ), EACCES);
    CHECK_EQ(allowed(&t, "nobody", "/app", STORE_PERM_READ), EPERM);
    /* A rename needs write on both ends. */
    struct store_cmd rn = {.op = STORE_OP_RENAME,
                           .path = "/app/url",
                           .path2 = "/shared/url",
                           .has_user = true,
                           .user = "alice",
                           .user_len = 5};
    CHECK_EQ(tapply(&t, &rn, NULL), EACCES);
    CHECK_EQ(t_stat(&t, "/app/url", NULL), 0);
    /* A txn: read on its compares, write on every op of both branches. */
    struct store_compare cmp = {.path = "/shared/x", .path_len = 9, .target = STORE_CMP_VERSION};
    struct store_cmd then = {.op = STORE_OP_PUT, .path = "/app/t", .path_len = 6, .value = ""};
    struct store_cmd other = {.op = STORE_OP_PUT, .path = "/x", .path_len = 2, .value = ""};
    struct store_cmd txn = {.op = STORE_OP_TXN,
                            .compares = &cmp,
                            .n_compares = 1,
                            .then_ops = &then,
                            .n_then = 1,
                            .has_user = true,
                            .user = "alice",
                            .user_len = 5};
    CHECK_EQ(tapply(&t, &txn, NULL), 0);
    txn.else_ops = &other;
    txn.n_else = 1; /* not the branch taken, still checked */
    CHECK_EQ(tapply(&t, &txn, NULL), EACCES);
    cmp.path = "/x";
    cmp.path_len = 2;
    txn.n_else = 0;
    CHECK_EQ(tapply(&t, &txn, NULL), EACCES);
    tstore_fini(&t);
}

static void test_revocation_holds_from_its_index(void)
{
    struct tstore t;
    setup(&t);
    uint64_t r0 = t_revision(&t);
    CHECK_EQ(put_as(&t, "/app/a", "alice"), 0);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_REVOKE, "app", NULL, "/app", 0, NULL, "root"), 0);
    CHECK_EQ(put_as(&t, "/app/b", "alice"), EACCES);
    CHECK_EQ(t_stat(&t, "/app/b", NULL), ENOENT);
    CHECK_EQ(t_revision(&t), r0 + 1); /* the refused one moved nothing */
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_GRANT, "app", NULL, "/app", STORE_PERM_WRITE, NULL, "root"),
             0);
    CHECK_EQ(put_as(&t, "/app/b", "alice"), 0);
    CHECK_EQ(allowed(&t, "alice", "/app/b", STORE_PERM_READ), EACCES); /* write only */
    /* Taking the role from the user, or deleting it, or the user. */
    CHECK_EQ(auth(&t, STORE_AUTH_USER_REVOKE_ROLE, "alice", "app", NULL, 0, NULL, "root"), 0);
    CHECK_EQ(put_as(&t, "/app/c", "alice"), EACCES);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_REVOKE_ROLE, "alice", "app", NULL, 0, NULL, "root"), ENOENT);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_GRANT_ROLE, "alice", "app", NULL, 0, NULL, "root"), 0);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_DELETE, "app", NULL, NULL, 0, NULL, "root"), 0);
    CHECK_EQ(put_as(&t, "/app/c", "alice"), EACCES);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_DELETE, "alice", NULL, NULL, 0, NULL, "root"), 0);
    CHECK_EQ(put_as(&t, "/app/c", "alice"), EPERM);
    tstore_fini(&t);
}

static void test_only_root_manages(void)
{
    struct tstore t;
    setup(&t);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_GRANT, "app", NULL, "/", 3, NULL, "alice"), EACCES);
    CHECK_EQ(auth(&t, STORE_AUTH_DISABLE, NULL, NULL, NULL, 0, NULL, "alice"), EACCES);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, "bob", NULL, NULL, 0, "h", ""), EPERM);
    struct store_cmd m = {.op = STORE_OP_MEMBER_DEL,
                          .member_id = 3,
                          .has_user = true,
                          .user = "alice",
                          .user_len = 5};
    CHECK_EQ(tapply(&t, &m, NULL), EACCES);
    /* The root stays usable while access control is on. */
    CHECK_EQ(auth(&t, STORE_AUTH_USER_DELETE, "root", NULL, NULL, 0, NULL, "root"), EBUSY);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_REVOKE_ROLE, "root", "root", NULL, 0, NULL, "root"), EBUSY);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_DELETE, "root", NULL, NULL, 0, NULL, "root"), EBUSY);
    /* Root may; a mount's command is not checked. */
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, "bob", NULL, NULL, 0, NULL, "root"), 0);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, "bob", NULL, NULL, 0, NULL, NULL), EEXIST);
    CHECK_EQ(auth(&t, STORE_AUTH_DISABLE, NULL, NULL, NULL, 0, NULL, "root"), 0);
    CHECK_EQ(put_as(&t, "/free", ""), 0);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_DELETE, "root", NULL, NULL, 0, NULL, NULL), 0);
    tstore_fini(&t);
}

static void test_bad_changes(void)
{
    struct tstore t;
    tstore_init(&t);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, "", NULL, NULL, 0, NULL, NULL), EINVAL);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, "a:b", NULL, NULL, 0, NULL, NULL), EINVAL);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, "a b", NULL, NULL, 0, NULL, NULL), EINVAL);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, "a/b", NULL, NULL, 0, NULL, NULL), EINVAL);
    char long_name[STORE_AUTH_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = 0;
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, long_name, NULL, NULL, 0, NULL, NULL), EINVAL);
    long_name[STORE_AUTH_NAME_MAX] = 0;
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, long_name, NULL, NULL, 0, NULL, NULL), 0);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, "u", NULL, NULL, 0, "", NULL), EINVAL);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_ADD, "r", NULL, NULL, 0, NULL, NULL), 0);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_ADD, "r", NULL, NULL, 0, NULL, NULL), EEXIST);
    const char *bad[] = {"", "a", "/a/", "//", "/a//b", "/./a", "/a/..", "/a/."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK_EQ(auth(&t, STORE_AUTH_ROLE_GRANT, "r", NULL, bad[i], 1, NULL, NULL), EINVAL);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_GRANT, "r", NULL, "/a", 0, NULL, NULL), EINVAL);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_GRANT, "r", NULL, "/a", 4, NULL, NULL), EINVAL);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_GRANT, "nope", NULL, "/a", 1, NULL, NULL), ENOENT);
    CHECK_EQ(auth(&t, STORE_AUTH_ROLE_REVOKE, "r", NULL, "/a", 0, NULL, NULL), ENOENT);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_GRANT_ROLE, long_name, "nope", NULL, 0, NULL, NULL), ENOENT);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_GRANT_ROLE, "nope", "r", NULL, 0, NULL, NULL), ENOENT);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_PASSWORD, "nope", NULL, NULL, 0, "h", NULL), ENOENT);
    /* Bounds: roles per user, prefixes per role. */
    char name[16];
    for (unsigned i = 0; i <= STORE_AUTH_MAX_ROLES; i++) {
        snprintf(name, sizeof(name), "r%03u", i);
        CHECK_EQ(auth(&t, STORE_AUTH_ROLE_ADD, name, NULL, NULL, 0, NULL, NULL), 0);
        CHECK_EQ(auth(&t, STORE_AUTH_USER_GRANT_ROLE, long_name, name, NULL, 0, NULL, NULL),
                 i < STORE_AUTH_MAX_ROLES ? 0 : E2BIG);
    }
    for (unsigned i = 0; i <= STORE_AUTH_MAX_PERMS; i++) {
        snprintf(name, sizeof(name), "/p%03u", i);
        CHECK_EQ(auth(&t, STORE_AUTH_ROLE_GRANT, "r", NULL, name, 1, NULL, NULL),
                 i < STORE_AUTH_MAX_PERMS ? 0 : E2BIG);
    }
    tstore_fini(&t);
}

static int collect(void *ctx, const struct store_auth_item *it)
{
    char *out = ctx;
    size_t n = strlen(out);
    n += (size_t)snprintf(out + n, 512 - n, "%.*s%s:", (int)it->name_len, it->name,
                          it->has_password ? "*" : "");
    for (size_t i = 0; i < it->n_items; i++)
        n += (size_t)snprintf(out + n, 512 - n, "%.*s=%u,", (int)it->item_lens[i], it->items[i],
                              it->perms[i]);
    snprintf(out + n, 512 - n, ";");
    return 0;
}

static void test_listing_and_login(void)
{
    struct tstore t;
    setup(&t);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_ADD, "cert", NULL, NULL, 0, NULL, "root"), 0);
    struct store_txn *x;
    CHECK_EQ(store_txn_begin(t.s, &x), 0);
    char out[512] = "";
    CHECK_EQ(store_auth_list(x, false, NULL, 0, collect, out), 0);
    CHECK_MEM(out, strlen(out), "alice*:app=0,;cert:;root*:root=0,;");
    out[0] = 0;
    CHECK_EQ(store_auth_list(x, true, NULL, 0, collect, out), 0);
    CHECK_MEM(out, strlen(out), "app:/app=3,/shared=1,;root:;");
    out[0] = 0;
    CHECK_EQ(store_auth_list(x, true, "app", 3, collect, out), 0);
    CHECK_MEM(out, strlen(out), "app:/app=3,/shared=1,;");
    CHECK_EQ(store_auth_list(x, true, "nope", 4, collect, out), ENOENT);
    char hash[STORE_AUTH_HASH_MAX + 1];
    CHECK_EQ(store_auth_login(x, "alice", 5, hash, sizeof(hash)), 0);
    CHECK_MEM(hash, strlen(hash), "h-alice");
    CHECK_EQ(store_auth_login(x, "cert", 4, hash, sizeof(hash)), ENOKEY);
    CHECK_EQ(store_auth_login(x, "nope", 4, hash, sizeof(hash)), ENOENT);
    bool on;
    CHECK_EQ(store_auth_enabled(x, &on), 0);
    CHECK(on);
    store_txn_end(x);
    /* A new password; none (certificate only). */
    CHECK_EQ(auth(&t, STORE_AUTH_USER_PASSWORD, "alice", NULL, NULL, 0, "h2", "root"), 0);
    CHECK_EQ(auth(&t, STORE_AUTH_USER_PASSWORD, "cert", NULL, NULL, 0, NULL, "root"), 0);
    CHECK_EQ(store_txn_begin(t.s, &x), 0);
    CHECK_EQ(store_auth_login(x, "alice", 5, hash, sizeof(hash)), 0);
    CHECK_MEM(hash, strlen(hash), "h2");
    store_txn_end(x);
    tstore_fini(&t);
}

static void test_image_and_check_carry_it(void)
{
    struct tstore a, b;
    setup(&a);
    tstore_init(&b);
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
    CHECK_EQ(put_as(&b, "/app/x", "alice"), 0);
    CHECK_EQ(put_as(&b, "/x", "alice"), EACCES);
    CHECK_EQ(put_as(&a, "/app/x", "alice"), 0);
    store_close(a.s);
    store_close(b.s);
    struct store_check_report ra, rb;
    CHECK_EQ(store_check(a.dir, &ra, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(store_check(b.dir, &rb, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(ra.problems, 0);
    CHECK_EQ(rb.problems, 0);
    CHECK(ra.digest == rb.digest);
    /* The digest covers access control: one more role, another digest. */
    a.s = open_store(a.dir);
    CHECK_EQ(auth(&a, STORE_AUTH_ROLE_ADD, "extra", NULL, NULL, 0, NULL, "root"), 0);
    store_close(a.s);
    CHECK_EQ(store_check(a.dir, &ra, NULL, NULL, err, sizeof(err)), 0);
    CHECK(ra.digest != rb.digest);
    a.s = open_store(a.dir);
    b.s = open_store(b.dir);
    tstore_fini(&a);
    tstore_fini(&b);
}

/* A password is never in the log: a command carrying one does not decode;
 * an AUTH op needs version 3; a txn's ops may not carry a user. */
static void test_encoding_rules(void)
{
    Raftfs__Command m = RAFTFS__COMMAND__INIT;
    Raftfs__AuthChange au = RAFTFS__AUTH_CHANGE__INIT;
    au.op = RAFTFS__AUTH_CHANGE__OP__USER_ADD;
    au.has_name = 1;
    au.name.data = (uint8_t *)"u";
    au.name.len = 1;
    au.has_password = 1;
    au.password.data = (uint8_t *)"secret";
    au.password.len = 6;
    m.version = STORE_CMD_VERSION;
    m.op_case = RAFTFS__COMMAND__OP_AUTH;
    m.auth = &au;
    uint8_t buf[256];
    size_t n = raftfs__command__pack(&m, buf);
    struct store_cmd_decoded d;
    CHECK_EQ(store_cmd_decode(buf, n, &d), EINVAL);
    au.has_password = 0;
    n = raftfs__command__pack(&m, buf);
    CHECK_EQ(store_cmd_decode(buf, n, &d), 0);
    CHECK_EQ(d.cmd.op, STORE_OP_AUTH);
    CHECK_EQ(d.cmd.auth_op, STORE_AUTH_USER_ADD);
    CHECK_EQ(d.cmd.auth_name_len, 1);
    store_cmd_decoded_free(&d);
    m.version = STORE_CMD_VERSION_TXN;
    n = raftfs__command__pack(&m, buf);
    CHECK_EQ(store_cmd_decode(buf, n, &d), EINVAL);
    /* Encoded by the store: version 3, and the user round-trips. */
    struct store_cmd c = {.op = STORE_OP_AUTH,
                          .auth_op = STORE_AUTH_DISABLE,
                          .has_user = true,
                          .user = "",
                          .user_len = 0};
    void *out;
    size_t len;
    CHECK_EQ(store_cmd_encode(&c, &out, &len), 0);
    Raftfs__Command *got = raftfs__command__unpack(NULL, len, out);
    CHECK(got && got->version == STORE_CMD_VERSION && got->has_user && !got->user.len);
    raftfs__command__free_unpacked(got, NULL);
    CHECK_EQ(store_cmd_decode(out, len, &d), 0);
    CHECK(d.cmd.has_user && d.cmd.user_len == 0 && d.cmd.user);
    store_cmd_decoded_free(&d);
    free(out);
    /* A plain PUT with a user stays version 1 (older builds ignore it). */
    struct store_cmd p = {.op = STORE_OP_PUT,
                          .path = "/a",
                          .path_len = 2,
                          .value = "",
                          .has_user = true,
                          .user = "u",
                          .user_len = 1};
    CHECK_EQ(store_cmd_encode(&p, &out, &len), 0);
    got = raftfs__command__unpack(NULL, len, out);
    CHECK(got && got->version == STORE_CMD_VERSION_PLAIN);
    raftfs__command__free_unpacked(got, NULL);
    free(out);
    /* Inside a txn an op may not carry a user. */
    Raftfs__Command inner = RAFTFS__COMMAND__INIT, outer = RAFTFS__COMMAND__INIT;
    Raftfs__Delete del = RAFTFS__DELETE__INIT;
    del.path.data = (uint8_t *)"/a";
    del.path.len = 2;
    inner.version = 1;
    inner.op_case = RAFTFS__COMMAND__OP_DELETE;
    inner.delete_ = &del;
    inner.has_user = 1;
    Raftfs__Command *ops[1] = {&inner};
    Raftfs__Txn txn = RAFTFS__TXN__INIT;
    txn.n_then = 1;
    txn.then = ops;
    outer.version = STORE_CMD_VERSION_TXN;
    outer.op_case = RAFTFS__COMMAND__OP_TXN;
    outer.txn = &txn;
    n = raftfs__command__pack(&outer, buf);
    CHECK_EQ(store_cmd_decode(buf, n, &d), EINVAL);
    inner.has_user = 0;
    n = raftfs__command__pack(&outer, buf);
    CHECK_EQ(store_cmd_decode(buf, n, &d), 0);
    store_cmd_decoded_free(&d);
}

int main(void)
{
    tmpdir_prefer_shm();
    RUN(test_disabled_checks_nothing);
    RUN(test_prefixes_and_perms);
    RUN(test_revocation_holds_from_its_index);
    RUN(test_only_root_manages);
    RUN(test_bad_changes);
    RUN(test_listing_and_login);
    RUN(test_image_and_check_carry_it);
    RUN(test_encoding_rules);
    CHECK_DONE();
}
