/* test_net_tls.c - net/ over TLS: framed connections echo small and
 * maximal frames (many records, partial writes) with both certificates
 * verified; a certificate of another CA, a missing client certificate
 * where one is required, and garbage instead of a ClientHello each close
 * only their connection with OpenSSL's reason (and leak nothing under
 * ASan); key files that others may read are refused; the blocking client
 * (net_client) fails its handshake with a reason. Certificates are made
 * with the openssl command in a temporary directory. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "net_client.h"
#include "net_conn.h"
#include "net_frame.h"
#include "net_loop.h"
#include "net_tls.h"

static char dir[64];

static char *path(const char *name)
{
    static char bufs[64][128]; /* a test holds a few at once */
    static int next;
    char *b = bufs[next++ % 64];
    snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
    return b;
}

/* A CA, and certificates it signs, with the openssl command. */
static int make_certs(void)
{
    snprintf(dir, sizeof(dir), "/tmp/raftfs-tls-unit.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    char cmd[4096];
    snprintf(
        cmd, sizeof(cmd),
        "set -e; cd %s\n"
        "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1.key; }\n"
        "ca() { key $1; openssl req -x509 -new -key $1.key -out $1.crt -days 2 -subj /CN=$1; }\n"
        "crt() { key $1; openssl req -new -key $1.key -out $1.csr -subj /CN=$1\n"
        "  printf \"$3\" > $1.ext\n"
        "  openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key -CAcreateserial -days 2 "
        "-extfile $1.ext -out $1.crt; }\n"
        "ca ca; ca other\n"
        "crt server ca 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n'\n"
        "crt client ca 'extendedKeyUsage=clientAuth\\n'\n"
        "crt stranger other "
        "'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n'\n"
        "chmod 600 *.key\n",
        dir);
    FILE *sh = popen("sh >/dev/null 2>&1", "w");
    if (!sh)
        return 1;
    fputs(cmd, sh);
    return pclose(sh) == 0 ? 0 : 1;
}

static void remove_certs(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) {
        /* nothing more to do */
    }
}

static struct net_tls *tls_of(const char *cert, const char *ca, bool require)
{
    char c[32], k[32];
    snprintf(c, sizeof(c), "%s.crt", cert ? cert : "");
    snprintf(k, sizeof(k), "%s.key", cert ? cert : "");
    struct net_tls_config cfg = {.cert_file = cert ? path(c) : NULL,
                                 .key_file = cert ? path(k) : NULL,
                                 .ca_file = path(ca),
                                 .require_client_cert = require};
    struct net_tls *t = NULL;
    char err[256];
    int rc = net_tls_new(&cfg, &t, err, sizeof(err));
    if (rc)
        fprintf(stderr, "net_tls_new: %s\n", err);
    CHECK_EQ(rc, 0);
    return t;
}

/* ---- a server and a client on one loop ---- */

struct side {
    struct net_conn *conn;
    int frames, closed, close_err, connected;
    size_t bytes;
    bool echo, verified;
    char tls_err[256];
};

struct world {
    struct net_loop *l;
    int lfd;
    struct net_tls *server_tls;
    struct side server, client;
    int closes, stop_after_closes;
    int want_frames; /* the client's: stop once they came back */
};

static struct world *cur;

static int side_frame(struct net_conn *c, const uint8_t *p, size_t len, void *ctx)
{
    struct side *s = ctx;
    s->frames++;
    s->bytes += len;
    s->verified = net_conn_peer_verified(c);
    if (s->echo)
        return net_conn_send(c, p, len) == 0 ? 0 : EIO;
    if (s == &cur->client && s->frames == cur->want_frames)
        net_loop_stop(cur->l);
    return 0;
}

static void side_close(struct net_conn *c, int err, void *ctx)
{
    struct side *s = ctx;
    const char *why = net_conn_tls_error(c);
    snprintf(s->tls_err, sizeof(s->tls_err), "%s", why ? why : "");
    s->conn = NULL;
    s->closed++;
    s->close_err = err;
    if (++cur->closes >= cur->stop_after_closes)
        net_loop_stop(cur->l);
}

static void side_connect(struct net_conn *c, void *ctx)
{
    struct side *s = ctx;
    s->connected++;
    s->verified = net_conn_peer_verified(c);
}

static const struct net_conn_ops side_ops = {
    .on_connect = side_connect, .on_frame = side_frame, .on_close = side_close};

static struct net_conn_limits limits = {.max_frame = 1 << 20, .max_queued = 8 << 20};

static void on_accept(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    struct world *w = ctx;
    int cfd;
    (void)fd, (void)events;
    if (net_accept(w->lfd, &cfd, NULL) == 0)
        CHECK_EQ(net_conn_new_tls(l, cfd, false, &limits, &side_ops, &w->server, w->server_tls,
                                  NULL, &w->server.conn),
                 0);
}

static void world_init(struct world *w, struct net_tls *server_tls)
{
    memset(w, 0, sizeof(*w));
    cur = w;
    w->server_tls = server_tls;
    w->server.echo = true;
    CHECK_EQ(net_loop_new(&w->l), 0);
    struct net_addr a;
    char err[128];
    CHECK_EQ(net_addr_parse("127.0.0.1:0", &a, err, sizeof(err)), 0);
    CHECK_EQ(net_listen(&a, 16, &w->lfd), 0);
    CHECK_EQ(net_loop_watch(w->l, w->lfd, EPOLLIN, on_accept, w), 0);
}

static struct net_addr world_addr(struct world *w)
{
    struct net_addr bound = {.len = sizeof(bound.sa)};
    getsockname(w->lfd, (struct sockaddr *)&bound.sa, &bound.len);
    return bound;
}

static void world_dial(struct world *w, struct net_tls *client_tls, const char *host)
{
    struct net_addr a = world_addr(w);
    int fd;
    CHECK_EQ(net_dial(&a, &fd), 0);
    CHECK_EQ(net_conn_new_tls(w->l, fd, true, &limits, &side_ops, &w->client, client_tls, host,
                              &w->client.conn),
             0);
}

static void world_fini(struct world *w)
{
    net_loop_unwatch(w->l, w->lfd);
    close(w->lfd);
    if (w->server.conn)
        net_conn_close(w->server.conn, 0, false);
    if (w->client.conn)
        net_conn_close(w->client.conn, 0, false);
    net_loop_free(w->l);
}

static void test_tls_echo(void)
{
    struct net_tls *st = tls_of("server", "ca.crt", true);
    struct net_tls *ct = tls_of("client", "ca.crt", false);
    struct world w;
    world_init(&w, st);
    world_dial(&w, ct, "127.0.0.1");
    static uint8_t big[1 << 20];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 13);
    struct net_counters k = {0};
    net_conn_set_counters(w.client.conn, &k);
    /* Queued before the handshake: sent once it is done. Big frames span
     * many records and fill the socket: partial writes, moved buffers. */
    for (int i = 0; i < 100; i++)
        CHECK_EQ(net_conn_send(w.client.conn, "hello", 5), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(net_conn_send(w.client.conn, big, sizeof(big)), 0);
    CHECK_EQ(net_conn_send(w.client.conn, "", 0), 0);
    w.want_frames = 105;
    w.stop_after_closes = 1;
    CHECK_EQ(net_loop_run(w.l), 0);
    CHECK_EQ(w.client.connected, 1);
    CHECK(w.client.verified); /* the server's certificate, for 127.0.0.1 */
    CHECK(w.server.verified); /* the client's */
    CHECK_EQ(w.client.frames, 105);
    CHECK_EQ(w.client.bytes, 500 + 4 * sizeof(big));
    CHECK_EQ(w.server.frames, 105);
    uint64_t in, out;
    net_counters_load(&k, &in, &out);
    CHECK_EQ(out, 500 + 4 * sizeof(big) + 105 * 4);
    CHECK_EQ(in, out);
    /* A clean close (close_notify) is a clean end of stream on the other side. */
    w.closes = 0;
    w.stop_after_closes = 2;
    net_conn_close(w.client.conn, 0, true);
    net_loop_run(w.l);
    CHECK_EQ(w.server.closed, 1);
    CHECK_EQ(w.server.close_err, 0);
    CHECK_EQ(w.server.tls_err[0], 0);
    world_fini(&w);
    net_tls_free(st);
    net_tls_free(ct);
}

/* One handshake that must fail: both sides close, each with a reason. */
static void refused_case(struct net_tls *st, struct net_tls *ct, const char *host,
                         const char *server_says, const char *client_says)
{
    struct world w;
    world_init(&w, st);
    world_dial(&w, ct, host);
    CHECK_EQ(net_conn_send(w.client.conn, "secret", 6), 0);
    w.stop_after_closes = 2;
    CHECK_EQ(net_loop_run(w.l), 0);
    CHECK_EQ(w.server.frames, 0); /* nothing got through */
    CHECK_EQ(w.server.closed, 1);
    CHECK_EQ(w.client.closed, 1);
    CHECK(w.server.close_err != 0);
    CHECK(w.client.close_err != 0);
    if (!strstr(w.server.tls_err, server_says) || !strstr(w.client.tls_err, client_says))
        fprintf(stderr, "server: '%s'\nclient: '%s'\n", w.server.tls_err, w.client.tls_err);
    CHECK(strstr(w.server.tls_err, server_says) != NULL);
    CHECK(strstr(w.client.tls_err, client_says) != NULL);
    world_fini(&w);
}

static void test_tls_refusals(void)
{
    struct net_tls *st = tls_of("server", "ca.crt", true);
    struct net_tls *st_open = tls_of("server", "ca.crt", false);
    struct net_tls *stranger = tls_of("stranger", "ca.crt", false);
    struct net_tls *anon = tls_of(NULL, "ca.crt", false);
    struct net_tls *client = tls_of("client", "ca.crt", false);
    struct net_tls *trusts_other = tls_of("client", "other.crt", false);
    /* A client whose certificate another CA signed: refused by the server
     * even when client certificates are optional (shown, so verified). */
    refused_case(st_open, stranger, "127.0.0.1", "certificate verify failed", "alert unknown ca");
    /* No client certificate where one is required. */
    refused_case(st, anon, "127.0.0.1", "peer did not return a certificate",
                 "certificate required");
    /* A server whose certificate the client's CA did not sign. */
    refused_case(st, trusts_other, "127.0.0.1", "alert unknown ca", "certificate verify failed");
    /* The server's certificate does not name the host dialed. */
    refused_case(st, client, "127.0.0.2", "alert", "certificate verify failed");
    net_tls_free(st);
    net_tls_free(st_open);
    net_tls_free(stranger);
    net_tls_free(anon);
    net_tls_free(client);
    net_tls_free(trusts_other);
}

/* Garbage where a ClientHello should be: the connection closes with a
 * reason, nothing is delivered, nothing leaks. */
static void garbage_case(const char *bytes, size_t len)
{
    struct net_tls *st = tls_of("server", "ca.crt", false);
    struct world w;
    world_init(&w, st);
    w.stop_after_closes = 1;
    struct net_addr a = world_addr(&w);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a.sa, a.len), 0);
    CHECK_EQ(write(fd, bytes, len), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    CHECK_EQ(net_loop_run(w.l), 0);
    CHECK_EQ(w.server.closed, 1);
    CHECK_EQ(w.server.frames, 0);
    CHECK(w.server.close_err != 0);
    CHECK(!strncmp(w.server.tls_err, "TLS handshake failed: ", 22));
    close(fd);
    world_fini(&w);
    net_tls_free(st);
}

static void test_tls_garbage(void)
{
    uint8_t frame[16];
    net_frame_header(frame, 6);
    memcpy(frame + 4, "\x0a\x04\x08\x01\x10\x00", 6);
    garbage_case((const char *)frame, 10); /* a plaintext Hello frame */
    garbage_case("GET / HTTP/1.0\r\n\r\n", 18);
    garbage_case("\x16\x03\x01\xff\xff", 5);       /* a record header that promises too much */
    garbage_case("\x16\x03\x01\x00\x05hello", 10); /* a record that is no handshake */
    garbage_case("", 0);                           /* nothing, then the end */
}

static void test_tls_key_files(void)
{
    char err[256];
    CHECK_EQ(net_tls_check_key_file(path("server.key"), err, sizeof(err)), 0);
    CHECK_EQ(chmod(path("server.key"), 0640), 0);
    CHECK_EQ(net_tls_check_key_file(path("server.key"), err, sizeof(err)), EACCES);
    CHECK(strstr(err, "group") != NULL);
    struct net_tls_config cfg = {
        .cert_file = path("server.crt"), .key_file = path("server.key"), .ca_file = path("ca.crt")};
    struct net_tls *t = NULL;
    CHECK_EQ(net_tls_new(&cfg, &t, err, sizeof(err)), EACCES);
    CHECK(t == NULL);
    CHECK_EQ(chmod(path("server.key"), 0604), 0);
    CHECK_EQ(net_tls_check_key_file(path("server.key"), err, sizeof(err)), EACCES);
    CHECK(strstr(err, "others") != NULL);
    CHECK_EQ(chmod(path("server.key"), 0600), 0);
    /* A key that does not match the certificate; a file that is missing. */
    cfg.key_file = path("client.key");
    CHECK_EQ(net_tls_new(&cfg, &t, err, sizeof(err)), EINVAL);
    CHECK(strstr(err, "does not match") != NULL);
    cfg.key_file = path("server.key");
    cfg.ca_file = path("missing.crt");
    CHECK_EQ(net_tls_new(&cfg, &t, err, sizeof(err)), EINVAL);
    CHECK(strstr(err, "No such file") != NULL);
    cfg.ca_file = path("ca.crt");
    int rc = net_tls_new(&cfg, &t, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s\n", err);
    CHECK_EQ(rc, 0);
    net_tls_free(t);
}

static void test_tls_host_of(void)
{
    char h[64];
    CHECK_EQ(net_tls_host_of("127.0.0.1:7000", h, sizeof(h)), 0);
    CHECK(!strcmp(h, "127.0.0.1"));
    CHECK_EQ(net_tls_host_of("[::1]:7000", h, sizeof(h)), 0);
    CHECK(!strcmp(h, "::1"));
    CHECK_EQ(net_tls_host_of("db.example:1", h, sizeof(h)), 0);
    CHECK(!strcmp(h, "db.example"));
    CHECK_EQ(net_tls_host_of("nohost", h, sizeof(h)), EINVAL);
    CHECK_EQ(net_tls_host_of(":7000", h, sizeof(h)), EINVAL);
}

/* The blocking client against a TLS server that it does not trust, and
 * as plaintext against one that speaks TLS: each fails with a reason. */
struct serve_arg {
    struct world *w;
};

static void *serve(void *arg)
{
    struct world *w = arg;
    net_loop_run(w->l);
    return NULL;
}

static void client_case(struct net_tls_config *tc, const char *want)
{
    struct net_tls *st = tls_of("server", "ca.crt", false);
    struct world w;
    world_init(&w, st);
    w.stop_after_closes = 1000; /* the test stops it */
    struct net_addr a = world_addr(&w);
    char ep[64], err[256];
    net_addr_format(&a, ep, sizeof(ep));
    pthread_t th;
    pthread_create(&th, NULL, serve, &w);
    struct net_client_config cfg = {.endpoints = ep, .timeout_ms = 300, .tls = *tc};
    struct net_client *c;
    CHECK_EQ(net_client_open(&c, &cfg, err, sizeof(err)), 0);
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__StatusRequest sr = RAFTFS__STATUS_REQUEST__INIT;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_STATUS;
    req.status = &sr;
    Raftfs__ClientResponse *resp = NULL;
    CHECK(net_client_call(c, &req, &resp) != 0);
    if (!strstr(net_client_error(c), want))
        fprintf(stderr, "client: '%s'\n", net_client_error(c));
    CHECK(strstr(net_client_error(c), want) != NULL);
    net_client_close(c);
    net_loop_stop(w.l);
    pthread_join(th, NULL);
    world_fini(&w);
    net_tls_free(st);
}

static void test_tls_client(void)
{
    struct net_tls_config other = {.ca_file = path("other.crt")};
    client_case(&other, "TLS handshake failed: certificate verify failed");
    struct net_tls_config plain = {0};
    client_case(&plain, "--cacert");
}

int main(void)
{
    if (make_certs()) {
        fprintf(stderr, "cannot make certificates with openssl in %s\n", dir);
        remove_certs();
        return 1;
    }
    RUN(test_tls_host_of);
    RUN(test_tls_echo);
    RUN(test_tls_refusals);
    RUN(test_tls_garbage);
    RUN(test_tls_client);
    RUN(test_tls_key_files);
    remove_certs();
    CHECK_DONE();
}
