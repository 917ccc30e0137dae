/* test_node_client.c - the client protocol end to end over loopback: the
 * C client library against a node's listener (put, get, list pages,
 * status, errors), and hostile connections (garbage, oversized and
 * truncated frames, requests before Hello, wrong version or cluster) that
 * must close only themselves while the member keeps serving; a member's
 * Hello with another incarnation than the directory records is refused;
 * backup images (SnapshotRequest) within their bounds. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "fault.h"
#include "net_client.h"
#include "net_frame.h"
#include "net_wire.h"
#include "net_util.h"
#include "node.h"
#include "store_util.h"

#define CLIENT_PASSWORD_MAX_TEST 1024 /* node_client.c's CLIENT_PASSWORD_MAX */

static uint64_t start_history; /* store_config.history_revisions of the next start_node */
/* The next start_node's id and members (0: a cluster of one, id 1). */
static uint64_t start_id;
static struct node_member start_members[4];
static size_t start_n_members;

/* A node on loopback: at addr with start_id's configuration if start_id is
 * set, else a cluster of one at a free port written into addr. */
static struct node *start_node(char **dir, char *addr, size_t addr_len)
{
    *dir = tmpdir_make();
    struct node *n;
    char err[256];
    struct node_config cfg = {.data_dir = *dir, .cluster_id = 42, .listen = addr};
    if (start_id) {
        cfg.id = start_id;
        cfg.n_members = start_n_members;
        memcpy(cfg.members, start_members, start_n_members * sizeof(start_members[0]));
    } else {
        free_addr(addr, addr_len);
    }
    cfg.store.history_revisions = start_history;
    CHECK_EQ(node_open(&n, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(node_start(n), 0);
    return n;
}

static Raftfs__ClientResponse *put(struct net_client *c, const char *path, const char *value)
{
    Raftfs__ClientResponse *resp;
    CHECK_EQ(client_put(c, path, value, &resp), 0);
    return resp;
}

static Raftfs__ClientResponse *get(struct net_client *c, const char *path)
{
    Raftfs__ClientResponse *resp;
    CHECK_EQ(client_get(c, path, &resp), 0);
    return resp;
}

static void test_roundtrip(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 3000};
    struct net_client *c;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);

    Raftfs__ClientResponse *r = put(c, "/k", "value");
    CHECK_EQ(r->err, 0);
    CHECK(r->has_revision && r->revision == 1);
    CHECK(r->attr && r->attr->mode == (S_IFREG | 0640));
    net_client_response_free(r);
    r = get(c, "/k");
    CHECK_EQ(r->err, 0);
    CHECK(r->has_value);
    CHECK_MEM(r->value.data, r->value.len, "value");
    CHECK(r->attr && r->attr->mod_revision == 1 && r->attr->version == 1);
    net_client_response_free(r);
    r = get(c, "/missing");
    CHECK_EQ(r->err, ENOENT);
    net_client_response_free(r);
    r = put(c, "/no/parent", "x");
    CHECK_EQ(r->err, ENOENT);
    net_client_response_free(r);
    r = put(c, "relative", "x");
    CHECK_EQ(r->err, EINVAL);
    net_client_response_free(r);

    /* A listing of 2,500 names arrives in pages of at most 1,000. */
    char path[64];
    for (int i = 0; i < 2500; i++) {
        snprintf(path, sizeof(path), "/n%04d", i);
        r = put(c, path, "v");
        CHECK_EQ(r->err, 0);
        net_client_response_free(r);
    }
    size_t total = 0;
    int pages = 0;
    char after[64] = "";
    for (bool more = true; more; pages++) {
        Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
        Raftfs__ListRequest lr = RAFTFS__LIST_REQUEST__INIT;
        lr.path.data = (uint8_t *)"/";
        lr.path.len = 1;
        if (after[0]) {
            lr.has_after = true;
            lr.after.data = (uint8_t *)after;
            lr.after.len = strlen(after);
        }
        req.op_case = RAFTFS__CLIENT_REQUEST__OP_LIST;
        req.list = &lr;
        CHECK_EQ(net_client_call(c, &req, &r), 0);
        CHECK_EQ(r->err, 0);
        CHECK(r->n_entries <= 1000);
        total += r->n_entries;
        more = r->more;
        if (r->n_entries) {
            Raftfs__Dirent *last = r->entries[r->n_entries - 1];
            snprintf(after, sizeof(after), "%.*s", (int)last->name.len, last->name.data);
        }
        net_client_response_free(r);
    }
    CHECK_EQ(total, 2501); /* and "/k" */
    CHECK_EQ(pages, 3);

    Raftfs__ClientRequest sreq = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__StatusRequest sr = RAFTFS__STATUS_REQUEST__INIT;
    sreq.op_case = RAFTFS__CLIENT_REQUEST__OP_STATUS;
    sreq.status = &sr;
    CHECK_EQ(net_client_call(c, &sreq, &r), 0);
    CHECK(r->status && r->status->id == 1 && !strcmp(r->status->role, "leader"));
    /* The configuration entry, the leader's no-op, and 2,503 writes (failed
     * ones take indexes too). */
    CHECK_EQ(r->status->applied, 2505);
    CHECK_EQ(r->status->commit, 2505);
    net_client_response_free(r);

    net_client_close(c);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* A raw connection: sends bytes, returns what came back before the member
 * closed it (or 1 s passed). */
static size_t raw(const char *addr, const void *bytes, size_t len, uint8_t *out, size_t cap,
                  bool *closed)
{
    struct net_addr a;
    char err[128];
    net_addr_parse(addr, &a, err, sizeof(err));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a.sa, a.len), 0);
    if (len)
        CHECK_EQ(write(fd, bytes, len), (ssize_t)len);
    shutdown(fd, SHUT_WR); /* so that a truncated frame is seen as one */
    size_t got = 0;
    *closed = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0)
            break;
        ssize_t n = read(fd, out + got, cap - got);
        if (n <= 0) {
            *closed = n == 0 || errno == ECONNRESET;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    return got;
}

static size_t frame_env(const Raftfs__Envelope *env, uint8_t *buf)
{
    size_t n = raftfs__envelope__pack(env, buf + 4);
    net_frame_header(buf, (uint32_t)n);
    return n + 4;
}

static Raftfs__Envelope *reply_of(const uint8_t *buf, size_t len)
{
    const uint8_t *p;
    size_t plen, used;
    if (net_frame_parse(buf, len, 1 << 20, &p, &plen, &used))
        return NULL;
    return net_wire_unpack(p, plen);
}

static void test_hostile(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    uint8_t buf[4096], out[4096];
    bool closed;

    /* Garbage that is not a frame of an Envelope. */
    memcpy(buf, "\x00\x00\x00\x05hello", 9);
    raw(addr, buf, 9, out, sizeof(out), &closed);
    CHECK(closed);
    /* A frame larger than the member accepts. */
    net_frame_header(buf, 0x7fffffff);
    raw(addr, buf, 4, out, sizeof(out), &closed);
    CHECK(closed);
    /* A truncated frame, then the end of stream. */
    net_frame_header(buf, 100);
    raw(addr, buf, 10, out, sizeof(out), &closed);
    CHECK(closed);
    /* A request before the Hello. */
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__StatusRequest sr = RAFTFS__STATUS_REQUEST__INIT;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_STATUS;
    req.status = &sr;
    env.body_case = RAFTFS__ENVELOPE__BODY_REQUEST;
    env.request = &req;
    size_t len = frame_env(&env, buf);
    size_t got = raw(addr, buf, len, out, sizeof(out), &closed);
    CHECK(closed);
    CHECK_EQ(got, 0);
    /* Wrong version, wrong cluster, a member id (peers need --peers): a
     * HelloReply that says why, then the close. */
    Raftfs__Hello hello = RAFTFS__HELLO__INIT;
    env.body_case = RAFTFS__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    struct {
        uint32_t version;
        uint64_t cluster, member;
        const char *why;
    } cases[] = {{2, 42, 0, "protocol version"}, {1, 7, 0, "cluster"}, {1, 42, 5, "not a member"}};
    for (size_t i = 0; i < 3; i++) {
        hello.protocol_version = cases[i].version;
        hello.cluster_id = cases[i].cluster;
        hello.has_member_id = cases[i].member != 0;
        hello.member_id = cases[i].member;
        len = frame_env(&env, buf);
        got = raw(addr, buf, len, out, sizeof(out), &closed);
        CHECK(closed);
        Raftfs__Envelope *r = reply_of(out, got);
        CHECK(r && r->body_case == RAFTFS__ENVELOPE__BODY_HELLO_REPLY);
        if (r && r->body_case == RAFTFS__ENVELOPE__BODY_HELLO_REPLY) {
            CHECK(!r->hello_reply->ok);
            CHECK(r->hello_reply->error && strstr(r->hello_reply->error, cases[i].why));
        }
        net_wire_free(r);
    }
    /* A second Hello after a good one closes too. */
    hello.protocol_version = 1;
    hello.cluster_id = 0; /* clients may not know the cluster */
    hello.has_member_id = false;
    len = frame_env(&env, buf);
    memcpy(buf + len, buf, len);
    got = raw(addr, buf, 2 * len, out, sizeof(out), &closed);
    CHECK(closed);
    Raftfs__Envelope *r = reply_of(out, got);
    CHECK(r && r->body_case == RAFTFS__ENVELOPE__BODY_HELLO_REPLY && r->hello_reply->ok);
    net_wire_free(r);

    /* After all that the member still serves. */
    struct net_client_config cfg = {.endpoints = addr, .timeout_ms = 3000};
    struct net_client *c;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    Raftfs__ClientResponse *resp = put(c, "/still", "here");
    CHECK_EQ(resp->err, 0);
    net_client_response_free(resp);
    /* A member request whose address is present but empty (protobuf-c
     * gives it no buffer) is refused, not read. */
    Raftfs__ClientRequest mreq = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__MemberRequest mr = RAFTFS__MEMBER_REQUEST__INIT;
    mr.op = RAFTFS__MEMBER_REQUEST__OP__ADD_LEARNER;
    mr.has_id = true;
    mr.id = 9;
    mr.has_address = true;
    mreq.op_case = RAFTFS__CLIENT_REQUEST__OP_MEMBER;
    mreq.member = &mr;
    CHECK_EQ(net_client_call(c, &mreq, &resp), 0);
    CHECK_EQ(resp->err, EINVAL);
    CHECK(resp->message && strstr(resp->message, "address"));
    net_client_response_free(resp);
    net_client_close(c);

    /* A client of another cluster is refused with the reason. */
    cfg.cluster_id = 7;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    Raftfs__ClientRequest g = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__GetRequest gr = RAFTFS__GET_REQUEST__INIT;
    gr.path.data = (uint8_t *)"/still";
    gr.path.len = 6;
    g.op_case = RAFTFS__CLIENT_REQUEST__OP_GET;
    g.get = &gr;
    CHECK(net_client_call(c, &g, &resp) != 0);
    CHECK(strstr(net_client_error(c), "cluster") != NULL);
    net_client_close(c);

    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* A raw Hello from member `member` (incarnation: 0 = none); returns the
 * reply's error, or NULL for a reply that is ok. */
/* A member's Hello saying its build and command version (NULL, 0: a
 * build from before they were said). */
static char *hello_as_build(const char *addr, uint64_t member, uint64_t incarnation,
                            const char *build, uint32_t cmd_version)
{
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__Hello hello = RAFTFS__HELLO__INIT;
    uint8_t buf[256], out[4096];
    bool closed;
    hello.protocol_version = 1;
    hello.cluster_id = 42;
    hello.has_member_id = true;
    hello.member_id = member;
    hello.has_incarnation = incarnation != 0;
    hello.incarnation = incarnation;
    hello.build = (char *)build;
    hello.has_command_version = cmd_version != 0;
    hello.command_version = cmd_version;
    env.body_case = RAFTFS__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    size_t len = frame_env(&env, buf);
    size_t got = raw(addr, buf, len, out, sizeof(out), &closed);
    Raftfs__Envelope *r = reply_of(out, got);
    CHECK(r && r->body_case == RAFTFS__ENVELOPE__BODY_HELLO_REPLY);
    char *why = NULL;
    if (r && r->body_case == RAFTFS__ENVELOPE__BODY_HELLO_REPLY && !r->hello_reply->ok)
        why = strdup(r->hello_reply->error ? r->hello_reply->error : "");
    if (why)
        CHECK(closed); /* a refusal closes the connection */
    net_wire_free(r);
    return why;
}

static char *hello_as(const char *addr, uint64_t member, uint64_t incarnation)
{
    return hello_as_build(addr, member, incarnation, "0.1.0", STORE_CMD_VERSION);
}

static void set_member(struct node *n, uint64_t id, const char *addr, uint64_t incarnation)
{
    struct store_cmd c = {.op = STORE_OP_MEMBER_SET,
                          .member_id = id,
                          .path = addr,
                          .path_len = strlen(addr),
                          .incarnation = incarnation,
                          .time_ns = 1};
    struct store_result r;
    CHECK_EQ(node_propose(n, &c, &r), 0);
    CHECK_EQ(r.err, 0);
}

struct dir_find {
    uint64_t id, incarnation;
    bool found;
};

static int dir_find_cb(void *ctx, const struct store_member *m)
{
    struct dir_find *f = ctx;
    if (m->id == f->id)
        f->found = true, f->incarnation = m->incarnation;
    return 0;
}

/* A member whose Hello carries another incarnation than the directory
 * records (or none) lost its state: refused, saying what to do. Unknown
 * incarnations (0) let any Hello in. The leader records its own. */
static void test_hello_incarnation(void)
{
    char *dir, addr[64];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    /* Peers that are members but not reachable: nobody listens there. */
    set_member(n, 5, "127.0.0.1:1", 0x1234);
    set_member(n, 6, "127.0.0.1:2", 0);

    char *why = hello_as(addr, 5, 0x9999);
    CHECK(why && strstr(why, "member 5 came back with a new data directory"));
    CHECK(why && strstr(why, "incarnation 0000000000009999, the cluster knows 0000000000001234"));
    CHECK(why && strstr(why, "raftfs member remove 5"));
    free(why);
    why = hello_as(addr, 5, 0); /* none: a build from before, or a forgery */
    CHECK(why && strstr(why, "came back with a new data directory (incarnation none"));
    free(why);
    why = hello_as(addr, 5, 0x1234);
    CHECK(why == NULL);
    free(why);
    why = hello_as(addr, 6, 0x5678);
    CHECK(why == NULL);
    free(why);
    why = hello_as(addr, 6, 0);
    CHECK(why == NULL);
    free(why);
    why = hello_as(addr, 7, 0x1234); /* not a member at all */
    CHECK(why && strstr(why, "not a member"));
    free(why);

    /* The leader (this one) writes its own incarnation into its entry
     * (checked every 2 s). */
    set_member(n, 1, addr, 0);
    uint64_t c, m, inc = 0;
    CHECK_EQ(store_identity_get(node_store(n), &c, &m, &inc), 0);
    CHECK(inc != 0);
    struct dir_find f = {.id = 1};
    for (int i = 0; i < 100 && !f.incarnation; i++) {
        usleep(50000);
        f.found = false;
        CHECK_EQ(store_members(node_store(n), dir_find_cb, &f), 0);
    }
    CHECK(f.found);
    CHECK(f.incarnation == inc);

    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* A member says its build in its Hello; status shows it, and a command
 * newer than a member applies is refused before it reaches the log. */
static void test_version_guard(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    set_member(n, 5, "127.0.0.1:1", 0);
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 3000};
    struct net_client *c;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command w = RAFTFS__COMMAND__INIT;
    Raftfs__AuthChange au = RAFTFS__AUTH_CHANGE__INIT;
    au.op = RAFTFS__AUTH_CHANGE__OP__ROLE_ADD;
    au.has_name = true;
    au.name.data = (uint8_t *)"r";
    au.name.len = 1;
    w.version = STORE_CMD_VERSION;
    w.op_case = RAFTFS__COMMAND__OP_AUTH;
    w.auth = &au;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = &w;
    Raftfs__ClientResponse *r = NULL;

    /* Member 5, not heard from: not known to be old (its Hello will say). */
    CHECK(hello_as_build(addr, 5, 0, NULL, 0) == NULL); /* a build from before: up to 2 */
    CHECK_EQ(net_client_call(c, &req, &r), 0);
    CHECK(r && r->err == EPROTONOSUPPORT);
    CHECK(r && r->message && strstr(r->message, "member 5 runs raftfs before 0.1.0") &&
          strstr(r->message, "version 3"));
    net_client_response_free(r);
    /* A plain command still goes through (a cluster of one: this member). */
    r = put(c, "/k", "v");
    CHECK_EQ(r->err, 0);
    net_client_response_free(r);
    struct node_status st;
    node_get_status(n, &st);
    CHECK_EQ(st.n_members, 1); /* the directory's member 5 is not a voter */

    /* Upgraded: it says so, and the command goes. */
    CHECK(hello_as_build(addr, 5, 0, "0.1.0", STORE_CMD_VERSION) == NULL);
    r = NULL;
    CHECK_EQ(net_client_call(c, &req, &r), 0);
    CHECK(r && r->err == 0);
    net_client_response_free(r);
    node_get_status(n, &st);
    CHECK_MEM(st.members[0].build, strlen(st.members[0].build), RAFTFS_VERSION);
    CHECK_EQ(st.members[0].command_version, STORE_CMD_VERSION);
    net_client_close(c);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* An AUTH change through c (password: a client's, which the member hashes;
 * hash: one the client made itself, which the member must refuse). */
static int auth_change(struct net_client *c, Raftfs__AuthChange__Op op, const char *name,
                       const void *password, size_t pw_len, const char *hash,
                       Raftfs__ClientResponse **resp)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command w = RAFTFS__COMMAND__INIT;
    Raftfs__AuthChange au = RAFTFS__AUTH_CHANGE__INIT;
    au.op = op;
    au.has_name = name != NULL;
    au.name.data = (uint8_t *)name;
    au.name.len = name ? strlen(name) : 0;
    au.has_password = password != NULL;
    au.password.data = (uint8_t *)password;
    au.password.len = pw_len;
    au.has_password_hash = hash != NULL;
    au.password_hash.data = (uint8_t *)hash;
    au.password_hash.len = hash ? strlen(hash) : 0;
    w.version = STORE_CMD_VERSION;
    w.op_case = RAFTFS__COMMAND__OP_AUTH;
    w.auth = &au;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = &w;
    *resp = NULL;
    return net_client_call(c, &req, resp);
}

/* A client logged in as user (NULL: anonymous) with password. */
static struct net_client *login_as(const char *addr, const char *user, const char *password)
{
    struct net_client_config cfg = {.endpoints = addr,
                                    .cluster_id = 42,
                                    .timeout_ms = 3000,
                                    .user = user,
                                    .password = password};
    struct net_client *c;
    char err[256];
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    return c;
}

/* Bad input on the client port under access control: malformed logins,
 * passwords and hashes a client may not send, and a command forging
 * another user; each refused, nothing changed, the member still serving. */
static void test_auth_bad_input(void)
{
    char *dir, addr[64];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    struct net_client *anon = login_as(addr, NULL, NULL);
    Raftfs__ClientResponse *r;
    char big[CLIENT_PASSWORD_MAX_TEST + 2];
    memset(big, 'p', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    /* passwords a member refuses to hash; a hash it refuses to take */
    CHECK_EQ(auth_change(anon, RAFTFS__AUTH_CHANGE__OP__USER_ADD, "root", "", 0, NULL, &r), 0);
    CHECK(r && r->err == EINVAL);
    net_client_response_free(r);
    CHECK_EQ(auth_change(anon, RAFTFS__AUTH_CHANGE__OP__USER_ADD, "root", "a\0b", 3, NULL, &r), 0);
    CHECK(r && r->err == EINVAL);
    net_client_response_free(r);
    CHECK_EQ(
        auth_change(anon, RAFTFS__AUTH_CHANGE__OP__USER_ADD, "root", big, strlen(big), NULL, &r),
        0);
    CHECK(r && r->err == EINVAL);
    net_client_response_free(r);
    CHECK_EQ(auth_change(anon, RAFTFS__AUTH_CHANGE__OP__USER_ADD, "root", NULL, 0, "$6$x$y", &r),
             0);
    CHECK(r && r->err == EINVAL);
    net_client_response_free(r);
    CHECK_EQ(auth_change(anon, RAFTFS__AUTH_CHANGE__OP__USER_ADD, "root", "pw", 2, "$6$x$y", &r),
             0);
    CHECK(r && r->err == EINVAL);
    net_client_response_free(r);
    /* none of them made the user: a good one now */
    CHECK_EQ(auth_change(anon, RAFTFS__AUTH_CHANGE__OP__USER_ADD, "root", "pw", 2, NULL, &r), 0);
    CHECK(r && r->err == 0);
    net_client_response_free(r);
    CHECK_EQ(auth_change(anon, RAFTFS__AUTH_CHANGE__OP__ENABLE, NULL, NULL, 0, NULL, &r), 0);
    CHECK(r && r->err == 0);
    net_client_response_free(r);
    /* malformed logins: refused at the Hello, as a wrong password is */
    const char *bad[][2] = {{"a b", "pw"}, {"a:b", "pw"},     {"", "pw"},      {"root", NULL},
                            {"root", ""},  {"root", "wrong"}, {"nobody", "pw"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct net_client *c = login_as(addr, bad[i][0], bad[i][1]);
        CHECK_EQ(client_put(c, "/x", "v", &r), EPERM);
        CHECK(strstr(net_client_error(c), "authentication failed") != NULL);
        net_client_close(c);
    }
    /* a command that names another user: the member stamps its own */
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command cmd = RAFTFS__COMMAND__INIT;
    Raftfs__Put p = RAFTFS__PUT__INIT;
    cmd.version = STORE_CMD_VERSION_PLAIN;
    p.path.data = (uint8_t *)"/forged";
    p.path.len = 7;
    p.value.data = (uint8_t *)"v";
    p.value.len = 1;
    p.mode = 0644;
    cmd.op_case = RAFTFS__COMMAND__OP_PUT;
    cmd.put = &p;
    cmd.has_user = true;
    cmd.user.data = (uint8_t *)"root";
    cmd.user.len = 4;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = &cmd;
    r = NULL;
    CHECK_EQ(net_client_call(anon, &req, &r), 0);
    CHECK(r && r->err == EPERM);
    net_client_response_free(r);
    /* root may; the anonymous connection still may not, and nothing forged */
    struct net_client *root = login_as(addr, "root", "pw");
    CHECK_EQ(client_put(root, "/x", "v", &r), 0);
    CHECK(r && r->err == 0);
    net_client_response_free(r);
    CHECK_EQ(client_get(root, "/forged", &r), 0);
    CHECK(r && r->err == ENOENT);
    net_client_response_free(r);
    CHECK_EQ(client_get(anon, "/x", &r), 0);
    CHECK(r && r->err == EPERM);
    net_client_response_free(r);
    net_client_close(root);
    net_client_close(anon);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* Starts a watch of prefix from revision `from` on c; returns its id, and
 * the revision it starts after in *start. */
static uint64_t watch(struct net_client *c, const char *prefix, uint64_t from, bool values,
                      uint64_t *start, int *err)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__WatchRequest w = RAFTFS__WATCH_REQUEST__INIT;
    w.prefix.data = (uint8_t *)prefix;
    w.prefix.len = strlen(prefix);
    w.has_from_revision = from != 0;
    w.from_revision = from;
    w.has_values = true;
    w.values = values;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WATCH;
    req.watch = &w;
    Raftfs__ClientResponse *resp = NULL;
    CHECK_EQ(net_client_call(c, &req, &resp), 0);
    *err = resp ? resp->err : -1;
    *start = resp && resp->has_revision ? resp->revision : 0;
    net_client_response_free(resp);
    return req.id;
}

/* Reads events of stream id until `want` came or 2 s passed; "REV OP PATH
 * [PATH2] [=VALUE]" lines into out. */
static size_t events_of(struct net_client *c, uint64_t id, size_t want, char *out, size_t cap,
                        uint64_t *last)
{
    size_t got = 0, len = 0;
    out[0] = 0;
    while (got < want) {
        Raftfs__ClientResponse *r = NULL;
        if (net_client_next(c, id, 2000, &r))
            break;
        for (size_t i = 0; i < r->n_events; i++, got++) {
            const Raftfs__Event *e = r->events[i];
            len += (size_t)snprintf(
                out + len, cap - len, "%llu %u %.*s%s%.*s%s%.*s\n", (unsigned long long)e->revision,
                e->op, (int)e->path.len, e->path.data, e->has_path2 ? " " : "",
                e->has_path2 ? (int)e->path2.len : 0, e->has_path2 ? (char *)e->path2.data : "",
                e->has_value ? " =" : "", e->has_value ? (int)e->value.len : 0,
                e->has_value ? (char *)e->value.data : "");
            *last = e->revision;
        }
        net_client_response_free(r);
    }
    return got;
}

static void test_watch(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 3000};
    struct net_client *w, *c;
    CHECK_EQ(net_client_open(&w, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    net_client_response_free(put(c, "/before", "0"));
    uint64_t start = 0, last = 0;
    int e = 0;
    uint64_t id = watch(w, "/app", 0, true, &start, &e);
    CHECK_EQ(e, 0);
    CHECK(start > 0);
    net_client_response_free(put(c, "/app", "not a directory but the prefix itself"));
    net_client_response_free(put(c, "/apple", "not under /app"));
    net_client_response_free(put(c, "/app", "again"));
    char text[4096];
    CHECK_EQ(events_of(w, id, 2, text, sizeof(text), &last), 2);
    /* The first event's value is sent only if it was still current when
     * the event went out (not once replaced); the second's is. */
    char want1[64], want2[64];
    snprintf(want1, sizeof(want1), "%llu 1 /app", (unsigned long long)start + 1);
    snprintf(want2, sizeof(want2), "\n%llu 1 /app =again\n", (unsigned long long)start + 3);
    CHECK(!strncmp(text, want1, strlen(want1)));
    CHECK(strstr(text, want2) != NULL);
    CHECK(strstr(text, "apple") == NULL);

    /* Resumed from a revision: the same events, none missed or repeated. */
    struct net_client *w2;
    CHECK_EQ(net_client_open(&w2, &cfg, err, sizeof(err)), 0);
    uint64_t id2 = watch(w2, "/", start + 1, false, &start, &e);
    CHECK_EQ(e, 0);
    CHECK_EQ(events_of(w2, id2, 3, text, sizeof(text), &last), 3);
    CHECK(strstr(text, "/apple") != NULL);
    net_client_close(w2);

    /* A prefix that is not a path is refused. */
    CHECK_EQ(net_client_open(&w2, &cfg, err, sizeof(err)), 0);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__WatchRequest wr = RAFTFS__WATCH_REQUEST__INIT;
    wr.prefix.data = (uint8_t *)"no/slash";
    wr.prefix.len = 8;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WATCH;
    req.watch = &wr;
    Raftfs__ClientResponse *resp = NULL;
    CHECK_EQ(net_client_call(w2, &req, &resp), 0);
    CHECK_EQ(resp->err, EINVAL);
    net_client_response_free(resp);
    net_client_close(w2);

    net_client_close(w);
    net_client_close(c);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* A txn over the client protocol: its response says which branch ran, and
 * a watch gets its revision whole, also when it is larger than a
 * response's usual batch of events. */
static void test_watch_txn(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 5000};
    struct net_client *w, *c;
    CHECK_EQ(net_client_open(&w, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    net_client_response_free(put(c, "/before", "0"));
    uint64_t start = 0;
    int e = 0;
    uint64_t id = watch(w, "/", 0, false, &start, &e);
    CHECK_EQ(e, 0);
    enum { N = 1500 };
    static struct store_cmd ops[N];
    static char paths[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/t%04d", i);
        ops[i] = (struct store_cmd){.op = STORE_OP_PUT,
                                    .path = paths[i],
                                    .path_len = strlen(paths[i]),
                                    .value = "v",
                                    .value_len = 1,
                                    .mode = 0644};
    }
    struct store_compare k = {.path = "/before",
                              .path_len = 7,
                              .target = STORE_CMP_VALUE,
                              .result = STORE_CMP_EQUAL,
                              .value = "0",
                              .value_len = 1};
    struct store_cmd txn = {
        .op = STORE_OP_TXN, .compares = &k, .n_compares = 1, .then_ops = ops, .n_then = N};
    void *buf;
    size_t len;
    CHECK_EQ(store_cmd_encode(&txn, &buf, &len), 0);
    Raftfs__Command *m = raftfs__command__unpack(NULL, len, buf);
    free(buf);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = m;
    Raftfs__ClientResponse *resp = NULL;
    CHECK_EQ(net_client_call(c, &req, &resp), 0);
    CHECK_EQ(resp->err, 0);
    CHECK(resp->has_succeeded && resp->succeeded);
    CHECK(!resp->has_failed_op);
    CHECK_EQ(resp->revision, start + 1);
    net_client_response_free(resp);
    net_client_response_free(put(c, "/after", "1"));
    /* Every event of the txn's revision in one response. */
    size_t got = 0, responses_with_txn = 0;
    bool after = false;
    while (!after) {
        Raftfs__ClientResponse *r = NULL;
        if (net_client_next(w, id, 3000, &r))
            break;
        size_t here = 0;
        for (size_t i = 0; i < r->n_events; i++) {
            if (r->events[i]->revision == start + 1)
                here++;
            else if (r->events[i]->revision == start + 2)
                after = true;
        }
        got += here;
        responses_with_txn += here > 0;
        net_client_response_free(r);
    }
    CHECK_EQ(got, N);
    CHECK_EQ(responses_with_txn, 1);
    CHECK(after);
    /* The compare no longer holds: no branch, told so. */
    struct store_cmd none = {.op = STORE_OP_TXN, .compares = &k, .n_compares = 1};
    k.value = "1";
    CHECK_EQ(store_cmd_encode(&none, &buf, &len), 0);
    raftfs__command__free_unpacked(m, NULL);
    m = raftfs__command__unpack(NULL, len, buf);
    free(buf);
    req.write = m;
    req.has_client_id = req.has_seq = false;
    CHECK_EQ(net_client_call(c, &req, &resp), 0);
    CHECK_EQ(resp->err, 0);
    CHECK(resp->has_succeeded && !resp->succeeded);
    net_client_response_free(resp);
    raftfs__command__free_unpacked(m, NULL);
    net_client_close(w);
    net_client_close(c);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* Sends cmd as a write: its errno, or -1 if no answer. */
static int write_cmd(struct net_client *c, const struct store_cmd *cmd)
{
    void *buf;
    size_t len;
    if (store_cmd_encode(cmd, &buf, &len))
        return -1;
    Raftfs__Command *m = raftfs__command__unpack(NULL, len, buf);
    free(buf);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = m;
    Raftfs__ClientResponse *resp = NULL;
    int rc = net_client_call(c, &req, &resp) ? -1 : resp->err;
    net_client_response_free(resp);
    raftfs__command__free_unpacked(m, NULL);
    return rc;
}

/* One export page (limit: bytes a page, 0 for the default). */
static Raftfs__ClientResponse *export_page(struct net_client *c, const char *prefix, uint64_t rev,
                                           const char *after, uint32_t limit)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__ExportRequest x = RAFTFS__EXPORT_REQUEST__INIT;
    x.prefix.data = (uint8_t *)prefix;
    x.prefix.len = strlen(prefix);
    x.has_revision = rev != 0;
    x.revision = rev;
    if (after) {
        x.has_after = true;
        x.after.data = (uint8_t *)after;
        x.after.len = strlen(after);
    }
    x.has_limit_bytes = limit != 0;
    x.limit_bytes = limit;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_EXPORT;
    req.export = &x;
    Raftfs__ClientResponse *resp = NULL;
    CHECK_EQ(net_client_call(c, &req, &resp), 0);
    return resp;
}

/* A whole export in pages of about limit bytes: "PATH[=VALUE]" lines. */
static int export_all(struct net_client *c, const char *prefix, uint64_t *rev, uint32_t limit,
                      char *out, size_t cap, int *pages)
{
    char after[256] = "";
    size_t len = 0;
    out[0] = 0;
    *pages = 0;
    for (;;) {
        Raftfs__ClientResponse *r = export_page(c, prefix, *rev, after[0] ? after : NULL, limit);
        if (!r)
            return EIO;
        int err = r->err;
        if (!err) {
            (*pages)++;
            *rev = r->revision;
            for (size_t i = 0; i < r->n_export_entries; i++) {
                const Raftfs__ExportEntry *e = r->export_entries[i];
                len += (size_t)snprintf(out + len, cap - len, "%.*s%s%.*s\n", (int)e->path.len,
                                        e->path.data, e->has_value ? "=" : "/",
                                        e->has_value ? (int)e->value.len : 0,
                                        e->has_value ? (char *)e->value.data : "");
                snprintf(after, sizeof(after), "%.*s", (int)e->path.len, e->path.data);
            }
        }
        bool more = !err && r->more;
        net_client_response_free(r);
        if (err || !more)
            return err;
    }
}

/* Exports: a prefix's entries in pre-order, in pages that resume after a
 * path, all as of one revision while nothing at, under or above the
 * prefix changes; refused once something does. */
static void test_export(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 3000};
    struct net_client *c;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    const char *dirs[] = {"/app", "/app/b", "/app/b/deep", "/app/c", "/other"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        struct store_cmd mk = {
            .op = STORE_OP_MKDIR, .path = dirs[i], .path_len = strlen(dirs[i]), .mode = 0755};
        CHECK_EQ(write_cmd(c, &mk), 0);
    }
    net_client_response_free(put(c, "/app/a", "1"));
    net_client_response_free(put(c, "/app/b/deep/x", "2"));
    net_client_response_free(put(c, "/app/b/y", "3"));
    net_client_response_free(put(c, "/app/z", "4"));
    net_client_response_free(put(c, "/apple", "not under /app"));
    const char *want = "/app/\n/app/a=1\n/app/b/\n/app/b/deep/\n/app/b/deep/x=2\n/app/b/y=3\n"
                       "/app/c/\n/app/z=4\n";
    char text[4096];
    int pages;
    uint64_t rev = 0;
    CHECK_EQ(export_all(c, "/app", &rev, 0, text, sizeof(text), &pages), 0);
    CHECK(!strcmp(text, want));
    CHECK_EQ(pages, 1);
    /* One entry a page: the same, resumed after each path. */
    uint64_t r1 = 0;
    CHECK_EQ(export_all(c, "/app", &r1, 1, text, sizeof(text), &pages), 0);
    CHECK(!strcmp(text, want));
    CHECK_EQ(pages, 9); /* 8 entries, then an empty last page */
    CHECK_EQ(r1, rev);
    /* Changes elsewhere leave the revision good for /app. */
    net_client_response_free(put(c, "/other/k", "v"));
    net_client_response_free(put(c, "/apple", "again"));
    uint64_t r2 = rev;
    CHECK_EQ(export_all(c, "/app", &r2, 1, text, sizeof(text), &pages), 0);
    CHECK(!strcmp(text, want));
    CHECK_EQ(r2, rev);
    /* A change under it: that revision is gone for /app, with where. */
    Raftfs__ClientResponse *w = put(c, "/app/b/y", "changed");
    uint64_t changed_at = w->revision;
    net_client_response_free(w);
    Raftfs__ClientResponse *r = export_page(c, "/app", rev, "/app/b", 0);
    CHECK_EQ(r->err, ESTALE);
    CHECK_EQ(r->revision, changed_at);
    net_client_response_free(r);
    /* ... but not for /app/c, and the latest revision works for /app. */
    uint64_t rc_ = rev;
    CHECK_EQ(export_all(c, "/app/c", &rc_, 0, text, sizeof(text), &pages), 0);
    CHECK(!strcmp(text, "/app/c/\n"));
    uint64_t latest = 0;
    CHECK_EQ(export_all(c, "/app/b/deep", &latest, 0, text, sizeof(text), &pages), 0);
    CHECK_EQ(latest, changed_at);
    /* A change above it (an ancestor renamed) counts too. */
    struct store_cmd rn = {.op = STORE_OP_RENAME,
                           .path = "/other",
                           .path_len = 6,
                           .path2 = "/app/c/moved",
                           .path2_len = 12};
    CHECK_EQ(write_cmd(c, &rn), 0);
    r = export_page(c, "/app/c", rev, NULL, 0);
    CHECK_EQ(r->err, ESTALE);
    net_client_response_free(r);
    /* Refusals: a revision not reached, no such prefix, bad paths. */
    r = export_page(c, "/app", latest + 1000, NULL, 0);
    CHECK_EQ(r->err, EAGAIN);
    net_client_response_free(r);
    r = export_page(c, "/nope", 0, NULL, 0);
    CHECK_EQ(r->err, ENOENT);
    net_client_response_free(r);
    r = export_page(c, "app", 0, NULL, 0);
    CHECK_EQ(r->err, EINVAL);
    net_client_response_free(r);
    r = export_page(c, "/app", 0, "/apple", 0);
    CHECK_EQ(r->err, EINVAL);
    net_client_response_free(r);
    r = export_page(c, "/app/b", 0, "/app", 0);
    CHECK_EQ(r->err, EINVAL);
    net_client_response_free(r);
    /* A file prefix is one entry; the root is everything. */
    uint64_t r3 = 0;
    CHECK_EQ(export_all(c, "/apple", &r3, 0, text, sizeof(text), &pages), 0);
    CHECK(!strcmp(text, "/apple=again\n"));
    r3 = 0;
    CHECK_EQ(export_all(c, "/", &r3, 1, text, sizeof(text), &pages), 0);
    const char *head = "//\n/app/\n/app/a=1\n";
    CHECK(!strncmp(text, head, strlen(head)));
    CHECK(strstr(text, "\n/apple=again\n") != NULL);
    CHECK(strstr(text, "\n/app/c/moved/k=v\n") != NULL);
    /* A page of more than 64 entries (the page's arrays grow as it fills:
     * each entry's attributes must move with them; found by fuzz_client). */
    struct store_cmd mk = {.op = STORE_OP_MKDIR, .path = "/many", .path_len = 5, .mode = 0755};
    CHECK_EQ(write_cmd(c, &mk), 0);
    for (int i = 0; i < 150; i++) {
        char p[32], v[32];
        snprintf(p, sizeof(p), "/many/f%03d", i);
        snprintf(v, sizeof(v), "value %d", i);
        net_client_response_free(put(c, p, v));
    }
    r = export_page(c, "/many", 0, NULL, 0);
    CHECK_EQ(r->err, 0);
    CHECK_EQ(r->n_export_entries, 151);
    CHECK(!r->more);
    for (size_t i = 1; i < r->n_export_entries; i++) {
        const Raftfs__ExportEntry *e = r->export_entries[i];
        CHECK(e->attr && !e->attr->dir && e->attr->size == e->value.len && e->attr->ino);
    }
    net_client_response_free(r);
    net_client_close(c);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

static int lease_req(struct net_client *c, Raftfs__LeaseRequest__Op op, uint64_t id,
                     Raftfs__ClientResponse **out)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__LeaseRequest lr = RAFTFS__LEASE_REQUEST__INIT;
    lr.op = op;
    lr.has_id = true;
    lr.id = id;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_LEASE;
    req.lease = &lr;
    Raftfs__ClientResponse *resp = NULL;
    if (net_client_call(c, &req, &resp))
        return -1;
    int rc = resp->err;
    if (out)
        *out = resp;
    else
        net_client_response_free(resp);
    return rc;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int get_err(struct net_client *c, const char *path)
{
    Raftfs__ClientResponse *r = get(c, path);
    int e = r ? r->err : -1;
    net_client_response_free(r);
    return e;
}

/* Leases on one member: the leader's clock expires a lease no sooner than
 * ttl after its last keep-alive, and its keys go with it; keep-alives keep
 * it; a revoke ends it at once. */
static void test_leases(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 3000};
    struct net_client *c;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    struct store_cmd g = {.op = STORE_OP_LEASE_GRANT, .lease = 77, .ttl_ms = 600};
    CHECK_EQ(write_cmd(c, &g), 0);
    CHECK_EQ(write_cmd(c, &g), EEXIST);
    struct store_cmd p = {.op = STORE_OP_PUT,
                          .path = "/svc",
                          .path_len = 4,
                          .value = "up",
                          .value_len = 2,
                          .mode = 0644,
                          .has_lease = true,
                          .lease = 77};
    CHECK_EQ(write_cmd(c, &p), 0);
    p.lease = 78;
    p.path = "/other";
    p.path_len = 6;
    CHECK_EQ(write_cmd(c, &p), ENOKEY);
    /* Kept alive for 1.5 s, more than twice its ttl. */
    double last = mono_s(), start = last;
    while (mono_s() - start < 1.5) {
        last = mono_s();
        Raftfs__ClientResponse *r = NULL;
        CHECK_EQ(lease_req(c, RAFTFS__LEASE_REQUEST__OP__KEEP_ALIVE, 77, &r), 0);
        CHECK(r && r->n_leases == 1 && r->leases[0]->ttl_ms == 600 && r->leases[0]->keys == 1);
        net_client_response_free(r);
        CHECK_EQ(get_err(c, "/svc"), 0);
        usleep(200000);
    }
    Raftfs__ClientResponse *r = NULL;
    CHECK_EQ(lease_req(c, RAFTFS__LEASE_REQUEST__OP__TIME_TO_LIVE, 77, &r), 0);
    CHECK(r && r->n_leases == 1 && r->leases[0]->remaining_ms > 0 &&
          r->leases[0]->remaining_ms <= 600);
    net_client_response_free(r);
    CHECK_EQ(lease_req(c, RAFTFS__LEASE_REQUEST__OP__LIST, 0, &r), 0);
    CHECK(r && r->n_leases == 1 && r->leases[0]->id == 77);
    net_client_response_free(r);
    /* Then left alone: gone, not before its ttl. */
    double gone = 0;
    while (mono_s() - last < 5) {
        if (get_err(c, "/svc") == ENOENT) {
            gone = mono_s();
            break;
        }
        usleep(20000);
    }
    CHECK(gone > 0);
    CHECK(gone - last >= 0.6);
    CHECK_EQ(lease_req(c, RAFTFS__LEASE_REQUEST__OP__KEEP_ALIVE, 77, NULL), ENOKEY);
    CHECK_EQ(lease_req(c, RAFTFS__LEASE_REQUEST__OP__TIME_TO_LIVE, 77, NULL), ENOKEY);
    /* A revoke, long before the ttl: at once. */
    g.lease = 79;
    g.ttl_ms = 60000;
    CHECK_EQ(write_cmd(c, &g), 0);
    p.lease = 79;
    CHECK_EQ(write_cmd(c, &p), 0);
    CHECK_EQ(get_err(c, "/other"), 0);
    struct store_cmd rv = {.op = STORE_OP_LEASE_REVOKE, .lease = 79};
    CHECK_EQ(write_cmd(c, &rv), 0);
    CHECK_EQ(get_err(c, "/other"), ENOENT);
    CHECK_EQ(write_cmd(c, &rv), ENOKEY);
    net_client_close(c);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* A watch from revisions the history no longer holds: ERANGE, with the
 * compacted revision, and the stream ends. */
static void test_watch_compacted(void)
{
    char *dir, addr[64], err[256];
    start_history = 2;
    struct node *n = start_node(&dir, addr, sizeof(addr));
    start_history = 0;
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 3000};
    struct net_client *c;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    uint64_t rev = 0;
    for (int i = 0; i < 5; i++) {
        Raftfs__ClientResponse *r = put(c, "/k", "v");
        rev = r->revision;
        net_client_response_free(r);
    }
    uint64_t start = 0;
    int e = 0;
    uint64_t id = watch(c, "/", 1, false, &start, &e);
    CHECK_EQ(e, 0); /* the watch is made; then its history is found gone */
    Raftfs__ClientResponse *r = NULL;
    CHECK_EQ(net_client_next(c, id, 2000, &r), 0);
    CHECK(r && r->err == ERANGE && r->has_compact_revision && r->compact_revision == rev - 2);
    net_client_response_free(r);
    /* From just after the compacted revision: the two kept. */
    id = watch(c, "/", rev - 1, false, &start, &e);
    uint64_t last = 0;
    char text[1024];
    CHECK_EQ(events_of(c, id, 2, text, sizeof(text), &last), 2);
    CHECK_EQ(last, rev);
    net_client_close(c);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* A member whose directory is behind (the image it installed predates a
 * member replacing another at the same address) dials the old id there,
 * is refused by the new one, and learns where that one is, so that it can
 * answer it (found by tests/chaos, seed 101: a learner that could not
 * acknowledge the leader's snapshot stayed a learner for 100 s). */
static void test_learns_unknown_member(void)
{
    char *dir_a, *dir_b, addr_a[64], addr_b[64], err[256];
    free_addr(addr_a, sizeof(addr_a));
    free_addr(addr_b, sizeof(addr_b));
    /* B is member 12, at the address the directory of A gives member 11. */
    start_id = 12;
    start_n_members = 1;
    start_members[0] = (struct node_member){.id = 12};
    snprintf(start_members[0].addr, sizeof(start_members[0].addr), "%s", addr_b);
    struct node *b = start_node(&dir_b, addr_b, sizeof(addr_b));
    start_id = 1;
    start_n_members = 2;
    start_members[0] = (struct node_member){.id = 1};
    snprintf(start_members[0].addr, sizeof(start_members[0].addr), "%s", addr_a);
    start_members[1] = (struct node_member){.id = 11};
    snprintf(start_members[1].addr, sizeof(start_members[1].addr), "%s", addr_b);
    struct node *a = start_node(&dir_a, addr_a, sizeof(addr_a));
    start_id = 0;
    start_n_members = 0;
    /* A's member list (answered on its loop) comes to show 12 at B. */
    struct net_client_config cfg = {.endpoints = addr_a, .cluster_id = 42, .timeout_ms = 3000};
    struct net_client *c;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    bool found = false;
    for (int i = 0; i < 100 && !found; i++) {
        Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
        Raftfs__MemberRequest mr = RAFTFS__MEMBER_REQUEST__INIT;
        mr.op = RAFTFS__MEMBER_REQUEST__OP__LIST;
        req.op_case = RAFTFS__CLIENT_REQUEST__OP_MEMBER;
        req.member = &mr;
        Raftfs__ClientResponse *resp = NULL;
        if (net_client_call(c, &req, &resp) == 0 && resp->status)
            for (size_t k = 0; k < resp->status->n_members; k++) {
                const Raftfs__MemberStatus *m = resp->status->members[k];
                found |= m->id == 12 && m->address && !strcmp(m->address, addr_b);
            }
        net_client_response_free(resp);
        if (!found) {
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    CHECK(found);
    net_client_close(c);
    node_close(a);
    node_close(b);
    rm_rf(dir_a);
    rm_rf(dir_b);
    free(dir_a);
    free(dir_b);
}

/* One SnapshotRequest on c: the member's errno, the response in *out. */
static int snap_req(struct net_client *c, uint64_t offset, uint32_t limit,
                    Raftfs__ClientResponse **out)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__SnapshotRequest sr = RAFTFS__SNAPSHOT_REQUEST__INIT;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_SNAPSHOT;
    req.snapshot = &sr;
    sr.has_offset = true;
    sr.offset = offset;
    if (limit) {
        sr.has_limit_bytes = true;
        sr.limit_bytes = limit;
    }
    int rc = net_client_call(c, &req, out);
    CHECK_EQ(rc, 0);
    return rc ? rc : (*out)->err;
}

/* SnapshotRequest: an image of one applied index, read in chunks bounded
 * by the member (at most 4 MiB and half its frame limit) while writes go
 * on, that passes store_snapshot_check; ESTALE past its end or without
 * one; at most two images at once (EBUSY), freed with their connection. */
static void test_snapshot_request(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 5000};
    struct net_client *c[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(net_client_open(&c[i], &cfg, err, sizeof(err)), 0);
    /* Values of 900 KiB: an image of more than one largest chunk. */
    char *big = malloc(900 * 1024 + 1);
    memset(big, 'v', 900 * 1024);
    big[900 * 1024] = 0;
    char path[32];
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof(path), "/big%d", i);
        net_client_response_free(put(c[0], path, big));
    }
    /* Without an image, and before the first request, there is none. */
    Raftfs__ClientResponse *r;
    CHECK_EQ(snap_req(c[0], 10, 0, &r), ESTALE);
    net_client_response_free(r);
    CHECK_EQ(snap_req(c[0], 0, 64U << 20, &r), 0);
    CHECK(r->snapshot != NULL);
    uint64_t size = 0, index = 0, revision = 0;
    if (r->snapshot) {
        size = r->snapshot->size;
        index = r->snapshot->index;
        revision = r->snapshot->revision;
        CHECK(r->snapshot->term >= 1);
    }
    CHECK(size > 4U << 20);
    CHECK(r->value.len <= 4U << 20 && r->value.len >= 1U << 20); /* capped, not the 64 MiB asked */
    CHECK(r->has_more && r->more);
    char *image_dir = tmpdir_make(), image_path[4200];
    snprintf(image_path, sizeof(image_path), "%s/image", image_dir);
    int fd = open(image_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    uint64_t off = 0;
    bool more = true;
    /* Writes go on meanwhile: the image stays the one of its index. */
    net_client_response_free(put(c[1], "/after", "x"));
    while (more) {
        if (off) {
            CHECK_EQ(snap_req(c[0], off, 0, &r), 0);
            CHECK(r->snapshot == NULL);
            CHECK(r->value.len <= 1U << 20); /* the default chunk */
        }
        CHECK_EQ(pwrite(fd, r->value.data, r->value.len, (off_t)off), (ssize_t)r->value.len);
        off += r->value.len;
        more = r->has_more && r->more;
        CHECK(r->value.len > 0 || !more);
        net_client_response_free(r);
        if (off > size)
            break;
    }
    CHECK_EQ(off, size);
    struct store_snapshot_info info;
    char why[256];
    CHECK_EQ(store_snapshot_check(fd, &info, why, sizeof(why)), 0);
    CHECK_EQ(info.applied_index, index);
    CHECK_EQ(info.revision, revision);
    CHECK_EQ(info.bytes, size);
    close(fd);
    CHECK_EQ(snap_req(c[0], size + 1, 0, &r), ESTALE);
    net_client_response_free(r);
    /* Two images at once, not three; a closed connection frees its own. */
    CHECK_EQ(snap_req(c[1], 0, 0, &r), 0);
    CHECK(r->snapshot && r->snapshot->revision > revision);
    net_client_response_free(r);
    CHECK_EQ(snap_req(c[2], 0, 0, &r), EBUSY);
    net_client_response_free(r);
    net_client_close(c[0]);
    int got = EBUSY;
    for (int i = 0; i < 100 && got == EBUSY; i++) {
        got = snap_req(c[2], 0, 0, &r);
        net_client_response_free(r);
        if (got == EBUSY)
            usleep(10000);
    }
    CHECK_EQ(got, 0);
    net_client_close(c[1]);
    net_client_close(c[2]);
    free(big);
    rm_rf(image_dir);
    free(image_dir);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

/* Hello and a SnapshotRequest at offset 0 on a new socket, not waiting
 * for the answer: the caller closes the socket (or the node) while the
 * image may still be written. */
static int snapshot_ask_raw(const char *addr)
{
    struct net_addr a;
    char err[128];
    net_addr_parse(addr, &a, err, sizeof(err));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a.sa, a.len), 0);
    uint8_t buf[256];
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__Hello hello = RAFTFS__HELLO__INIT;
    hello.protocol_version = NET_WIRE_VERSION;
    hello.cluster_id = 42;
    env.body_case = RAFTFS__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    size_t len = frame_env(&env, buf);
    Raftfs__Envelope renv = RAFTFS__ENVELOPE__INIT;
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__SnapshotRequest sr = RAFTFS__SNAPSHOT_REQUEST__INIT;
    req.id = 1;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_SNAPSHOT;
    req.snapshot = &sr;
    renv.body_case = RAFTFS__ENVELOPE__BODY_REQUEST;
    renv.request = &req;
    len += frame_env(&renv, buf + len);
    CHECK_EQ(write(fd, buf, len), (ssize_t)len);
    return fd;
}

/* Images being written when their client leaves, or when the node
 * closes: dropped, nothing leaks or waits for ever (ASan, the timeout). */
static void test_snapshot_abandoned(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 5000};
    struct net_client *c;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    char path[32];
    for (int i = 0; i < 200; i++) {
        snprintf(path, sizeof(path), "/k%d", i);
        net_client_response_free(put(c, path, "a value of some bytes"));
    }
    for (int i = 0; i < 20; i++)
        close(snapshot_ask_raw(addr));
    /* Both slots free again once those are dropped. */
    Raftfs__ClientResponse *r;
    int got = EBUSY;
    for (int i = 0; i < 200 && got == EBUSY; i++) {
        got = snap_req(c, 0, 0, &r);
        net_client_response_free(r);
        if (got == EBUSY)
            usleep(10000);
    }
    CHECK_EQ(got, 0);
    int fds[2] = {snapshot_ask_raw(addr), snapshot_ask_raw(addr)};
    net_client_close(c);
    node_close(n); /* with images maybe still being written */
    close(fds[0]);
    close(fds[1]);
    rm_rf(dir);
    free(dir);
}

static void test_client_errors(void)
{
    char err[256];
    struct net_client *c;
    struct net_client_config cfg = {.endpoints = "nonsense", .timeout_ms = 300};
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), EINVAL);
    cfg.endpoints = "";
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), EINVAL);
    /* Nobody listens: the call fails within its timeout. */
    cfg.endpoints = "127.0.0.1:1,127.0.0.1:2";
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__StatusRequest sr = RAFTFS__STATUS_REQUEST__INIT;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_STATUS;
    req.status = &sr;
    Raftfs__ClientResponse *resp;
    int rc = net_client_call(c, &req, &resp);
    CHECK(rc == ECONNREFUSED || rc == ETIMEDOUT);
    CHECK(strstr(net_client_error(c), "127.0.0.1:") != NULL);
    net_client_close(c);
}

/* A client's put is answered before its apply is committed (deferred up
 * to 2 ms). A read on the loop thread commits deferred applies first: here
 * the watch pump at the end of the put's own turn. If that commit fails
 * (ENOSPC) they are lost, and must be made again from the log before the
 * next batch. A mount's write, proposed as soon as the put is answered and
 * committed at once, used to be applied over the older state in the next
 * turn and committed with a hole that the visible index passed: the
 * acknowledged put was gone for good (node_raft.c lost_deferred). */
static void test_lost_deferred_applies(void)
{
    char *dir, addr[64], err[256];
    struct node *n = start_node(&dir, addr, sizeof(addr));
    struct net_client_config cfg = {.endpoints = addr, .cluster_id = 42, .timeout_ms = 5000};
    struct net_client *c, *w;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    CHECK_EQ(net_client_open(&w, &cfg, err, sizeof(err)), 0);
    uint64_t start = 0;
    int e = 0;
    watch(w, "/", 0, false, &start, &e);
    CHECK_EQ(e, 0);
    char path[32];
    for (int round = 0; round < 5; round++) {
        snprintf(path, sizeof(path), "/put%d", round);
        fault_arm(FAULT_TREE_COMMIT, 1, ENOSPC, false, FAULT_ONCE);
        Raftfs__ClientResponse *r = put(c, path, "acknowledged");
        CHECK_EQ(r->err, 0);
        net_client_response_free(r);
        snprintf(path, sizeof(path), "/mount%d", round);
        struct store_cmd m = {.op = STORE_OP_PUT,
                              .path = path,
                              .path_len = strlen(path),
                              .value = "x",
                              .value_len = 1,
                              .time_ns = 1};
        struct store_result res;
        CHECK_EQ(node_propose(n, &m, &res), 0);
        CHECK_EQ(res.err, 0);
        CHECK(fault_fired());
        fault_disarm();
        snprintf(path, sizeof(path), "/put%d", round);
        r = get(c, path);
        CHECK_EQ(r->err, 0);
        CHECK(r->has_value);
        if (r->has_value)
            CHECK_MEM(r->value.data, r->value.len, "acknowledged");
        net_client_response_free(r);
    }
    net_client_close(w);
    net_client_close(c);
    node_close(n);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    RUN(test_roundtrip);
    RUN(test_hostile);
    RUN(test_hello_incarnation);
    RUN(test_lost_deferred_applies);
    RUN(test_version_guard);
    RUN(test_auth_bad_input);
    RUN(test_client_errors);
    RUN(test_watch);
    RUN(test_watch_compacted);
    RUN(test_watch_txn);
    RUN(test_export);
    RUN(test_leases);
    RUN(test_learns_unknown_member);
    RUN(test_snapshot_request);
    RUN(test_snapshot_abandoned);
    CHECK_DONE();
}
