/* net_client.c - blocking client of the client protocol. */
#include "net_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net_conn.h"
#include "net_frame.h"
#include "net_wire.h"

#define NET_CLIENT_DEFAULT_TIMEOUT_MS 5000
#define NET_CLIENT_DEFAULT_MAX_FRAME  (80U << 20)

struct net_client {
    struct net_addr eps[NET_CLIENT_MAX_ENDPOINTS];
    char names[NET_CLIENT_MAX_ENDPOINTS][128];
    size_t n_eps;
    size_t cur; /* endpoint in use or to try next */
    int fd;     /* connected and greeted, or -1 */
    uint64_t cluster_id;
    int timeout_ms;
    size_t max_frame;
    uint64_t client_id, next_seq, next_id;
    uint8_t *in;
    size_t in_len, in_cap;
    char *user, *password; /* the login said in every Hello (NULL: anonymous) */
    struct net_tls *tls;   /* NULL: plaintext */
    SSL *ssl;              /* the connection's TLS session */
    char why[256];         /* the last failure in words, when strerror says less */
    bool refused;          /* the last connect was refused (TLS or Hello), not failed */
    char err[512];
};

static void set_err(struct net_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(struct net_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int net_client_open(struct net_client **out, const struct net_client_config *cfg, char *err,
                    size_t err_len)
{
    struct net_client *c = calloc(1, sizeof(*c));
    if (!c)
        return ENOMEM;
    c->fd = -1;
    c->cluster_id = cfg->cluster_id;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : NET_CLIENT_DEFAULT_TIMEOUT_MS;
    c->max_frame = cfg->max_frame ? cfg->max_frame : NET_CLIENT_DEFAULT_MAX_FRAME;
    char *list = strdup(cfg->endpoints ? cfg->endpoints : "");
    int rc = list ? 0 : ENOMEM;
    char *save = NULL;
    for (char *e = list ? strtok_r(list, ",", &save) : NULL; e && !rc;
         e = strtok_r(NULL, ",", &save)) {
        if (c->n_eps == NET_CLIENT_MAX_ENDPOINTS) {
            snprintf(err, err_len, "more than %d endpoints", NET_CLIENT_MAX_ENDPOINTS);
            rc = EINVAL;
            break;
        }
        rc = net_addr_parse(e, &c->eps[c->n_eps], err, err_len);
        if (!rc)
            snprintf(c->names[c->n_eps++], sizeof(c->names[0]), "%s", e);
    }
    free(list);
    if (!rc && c->n_eps == 0) {
        snprintf(err, err_len, "no endpoints given");
        rc = EINVAL;
    }
    if (!rc && cfg->user &&
        (!(c->user = strdup(cfg->user)) ||
         (cfg->password && !(c->password = strdup(cfg->password))))) {
        snprintf(err, err_len, "out of memory");
        rc = ENOMEM;
    }
    if (!rc && net_tls_wanted(&cfg->tls)) {
        struct net_tls_config tc = cfg->tls;
        tc.require_client_cert = false;
        rc = net_tls_new(&tc, &c->tls, err, err_len);
    }
    if (rc) {
        free(c->user);
        free(c->password);
        free(c);
        return rc;
    }
    /* A random client id: (client_id, seq) names each write for dedup. */
    if (getrandom(&c->client_id, sizeof(c->client_id), 0) != sizeof(c->client_id))
        c->client_id = (uint64_t)mono_ms() ^ ((uint64_t)getpid() << 32);
    c->next_seq = 1;
    c->next_id = 1;
    *out = c;
    return 0;
}

static void disconnect(struct net_client *c)
{
    if (c->ssl) {
        SSL_free(c->ssl); /* no close_notify: a blocking client may not wait */
        c->ssl = NULL;
    }
    ERR_clear_error();
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->in_len = 0;
}

void net_client_next_endpoint(struct net_client *c)
{
    disconnect(c);
    c->cur = (c->cur + 1) % c->n_eps;
}

void net_client_close(struct net_client *c)
{
    if (!c)
        return;
    disconnect(c);
    net_tls_free(c->tls);
    free(c->in);
    free(c->user);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c);
}

const char *net_client_error(const struct net_client *c)
{
    return c->err;
}

void net_client_response_free(Raftfs__ClientResponse *resp)
{
    if (resp)
        raftfs__client_response__free_unpacked(resp, NULL);
}

/* Waits for fd to be ready for events until deadline. 0, ETIMEDOUT, errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n == 0)
            return ETIMEDOUT;
        if (errno != EINTR)
            return errno;
    }
}

/* An SSL call returned ret: 0 to call it again once fd is ready (waited
 * for here), or the errno that ends the connection, with the reason kept. */
static int tls_wait(struct net_client *c, int ret, int64_t deadline)
{
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ)
        return wait_fd(c->fd, POLLIN, deadline);
    if (e == SSL_ERROR_WANT_WRITE)
        return wait_fd(c->fd, POLLOUT, deadline);
    char why[200];
    int rc = net_tls_failure(c->ssl, ret, e, why, sizeof(why));
    if (rc == 0)
        return ECONNRESET; /* closed (close_notify or end of stream) */
    if (rc == EPROTO)
        snprintf(c->why, sizeof(c->why), "TLS: %.160s%s", why,
                 strstr(why, "certificate required")
                     ? " (the member wants a client certificate: --cert and --key)"
                     : "");
    return rc;
}

static int tls_write_all(struct net_client *c, const uint8_t *p, size_t len, int64_t deadline)
{
    while (len) {
        ERR_clear_error();
        int n = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int rc = tls_wait(c, n, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

static int write_all(struct net_client *c, const uint8_t *p, size_t len, int64_t deadline)
{
    if (c->ssl)
        return tls_write_all(c, p, len, deadline);
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c->fd, POLLOUT, deadline);
            if (rc)
                return rc;
            continue;
        }
        return n < 0 ? errno : EPIPE;
    }
    return 0;
}

static int send_env(struct net_client *c, const Raftfs__Envelope *env, int64_t deadline)
{
    size_t n = raftfs__envelope__get_packed_size(env);
    if (n > c->max_frame)
        return EMSGSIZE;
    uint8_t *buf = malloc(n + NET_FRAME_HEADER_BYTES);
    if (!buf)
        return ENOMEM;
    net_frame_header(buf, (uint32_t)n);
    raftfs__envelope__pack(env, buf + NET_FRAME_HEADER_BYTES);
    int rc = write_all(c, buf, n + NET_FRAME_HEADER_BYTES, deadline);
    free(buf);
    return rc;
}

/* Reads one Envelope. */
static int recv_env(struct net_client *c, Raftfs__Envelope **out, int64_t deadline)
{
    for (;;) {
        const uint8_t *payload;
        size_t plen, used;
        int rc = net_frame_parse(c->in, c->in_len, c->max_frame, &payload, &plen, &used);
        if (rc == 0) {
            Raftfs__Envelope *env = net_wire_unpack(payload, plen);
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
            if (!env)
                return EPROTO;
            *out = env;
            return 0;
        }
        if (rc != EAGAIN) {
            /* A TLS record where a frame should be: a TLS member. */
            if (!c->ssl && c->in_len >= 2 && (c->in[0] == 0x15 || c->in[0] == 0x16) &&
                c->in[1] == 0x03) {
                snprintf(c->why, sizeof(c->why),
                         "the member speaks TLS: give its CA with --cacert FILE (and --cert, "
                         "--key if it asks for a client certificate)");
                return EPROTO;
            }
            return rc;
        }
        if (c->in_cap - c->in_len < 65536) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 65536;
            uint8_t *p = realloc(c->in, cap);
            if (!p)
                return ENOMEM;
            c->in = p;
            c->in_cap = cap;
        }
        if (c->ssl) {
            size_t room = c->in_cap - c->in_len;
            ERR_clear_error();
            int n = SSL_read(c->ssl, c->in + c->in_len, room > INT32_MAX ? INT32_MAX : (int)room);
            if (n > 0)
                c->in_len += (size_t)n;
            else if ((rc = tls_wait(c, n, deadline)))
                return rc;
            continue;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n == 0)
            return ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return errno;
        if ((rc = wait_fd(c->fd, POLLIN, deadline)))
            return rc;
    }
}

/* The reason of a failure with endpoint i: what was kept, or rc's text. */
static void fail_err(struct net_client *c, size_t i, int rc)
{
    if (c->why[0])
        set_err(c, "%s: %s", c->names[i], c->why);
    else
        set_err(c, "%s: %s", c->names[i], strerror(rc));
    c->why[0] = 0;
}

/* The TLS handshake with endpoint i, whose certificate must name its host. */
static int tls_handshake(struct net_client *c, size_t i, int64_t deadline)
{
    char host[128];
    if (net_tls_host_of(c->names[i], host, sizeof(host))) {
        snprintf(c->why, sizeof(c->why), "no host to check its certificate against");
        return EINVAL;
    }
    char why[200];
    int rc = net_tls_session_new(c->tls, c->fd, host, &c->ssl, why, sizeof(why));
    if (rc) {
        snprintf(c->why, sizeof(c->why), "%s", why);
        return rc;
    }
    for (;;) {
        ERR_clear_error();
        int ret = SSL_do_handshake(c->ssl);
        if (ret == 1)
            return 0;
        if ((rc = tls_wait(c, ret, deadline))) {
            if (!c->why[0] && rc != ETIMEDOUT)
                snprintf(c->why, sizeof(c->why),
                         "TLS handshake failed: %s (is the member speaking TLS?)",
                         rc == ECONNRESET ? "the member closed the connection" : strerror(rc));
            else if (!strncmp(c->why, "TLS: ", 5)) {
                char copy[sizeof(c->why)];
                snprintf(copy, sizeof(copy), "%s", c->why + 5);
                snprintf(c->why, sizeof(c->why), "TLS handshake failed: %.220s", copy);
            }
            /* OpenSSL failed it (a certificate refused one way or the
             * other, or no TLS there), not the network (a member going
             * down, a timeout): every retry would say the same. */
            c->refused = rc == EPROTO;
            return rc;
        }
    }
}

/* Connects to endpoint i and says Hello. */
static int connect_ep(struct net_client *c, size_t i, int64_t deadline)
{
    int fd;
    c->why[0] = 0;
    c->refused = false;
    int rc = net_dial(&c->eps[i], &fd);
    if (rc) {
        set_err(c, "%s: %s", c->names[i], strerror(rc));
        return rc;
    }
    c->fd = fd;
    if ((rc = wait_fd(fd, POLLOUT, deadline)))
        goto fail;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
        rc = soerr;
        goto fail;
    }
    if (c->tls && (rc = tls_handshake(c, i, deadline)))
        goto fail;
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__Hello hello = RAFTFS__HELLO__INIT;
    hello.protocol_version = NET_WIRE_VERSION;
    hello.cluster_id = c->cluster_id;
    if (c->user) {
        hello.has_user = true;
        hello.user.data = (uint8_t *)c->user;
        hello.user.len = strlen(c->user);
        hello.has_password = c->password != NULL;
        hello.password.data = (uint8_t *)c->password;
        hello.password.len = c->password ? strlen(c->password) : 0;
    }
    env.body_case = RAFTFS__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    Raftfs__Envelope *reply;
    if ((rc = send_env(c, &env, deadline)) || (rc = recv_env(c, &reply, deadline))) {
        /* A TLS 1.3 member that refuses this client's certificate (or its
         * lack of one) says so after the client's handshake is done: the
         * Hello may fail to go out first. Its alert may be waiting. */
        if (c->ssl && !c->why[0] && (rc == ECONNRESET || rc == EPIPE)) {
            Raftfs__Envelope *late = NULL;
            if (recv_env(c, &late, mono_ms() + 100) == 0)
                net_wire_free(late);
        }
        /* OpenSSL failed the session after the handshake: the member's
         * alert refused this client's certificate. Final, as a refusal at
         * the handshake is: a join through a member that refused it went
         * on retrying for its 10 s (tests/bats/tls.bats). */
        if (c->ssl && !strncmp(c->why, "TLS: ", 5)) {
            char copy[sizeof(c->why)];
            snprintf(copy, sizeof(copy), "%s", c->why + 5);
            snprintf(c->why, sizeof(c->why), "TLS session refused by the member: %.200s", copy);
            c->refused = true;
        }
        /* A TLS member drops a plaintext Hello at its handshake. */
        if (!c->tls && !c->why[0] && (rc == ECONNRESET || rc == EPIPE))
            snprintf(c->why, sizeof(c->why),
                     "%s at the Hello (if the member uses TLS, give its CA with --cacert FILE)",
                     strerror(rc));
        goto fail;
    }
    if (reply->body_case != RAFTFS__ENVELOPE__BODY_HELLO_REPLY || !reply->hello_reply->ok) {
        set_err(c, "%s refused the connection: %s", c->names[i],
                reply->body_case == RAFTFS__ENVELOPE__BODY_HELLO_REPLY && reply->hello_reply->error
                    ? reply->hello_reply->error
                    : "unexpected answer");
        /* A refused login is final: every member would refuse it. */
        c->refused = true;
        rc = reply->body_case == RAFTFS__ENVELOPE__BODY_HELLO_REPLY &&
                     reply->hello_reply->has_err && reply->hello_reply->err == EPERM
                 ? EPERM
                 : EPROTO;
        net_wire_free(reply);
        disconnect(c);
        return rc;
    }
    net_wire_free(reply);
    c->cur = i;
    return 0;
fail:
    fail_err(c, i, rc);
    disconnect(c);
    return rc;
}

/* The endpoint index of a leader hint, adding it if new. */
static size_t endpoint_of(struct net_client *c, const char *addr)
{
    for (size_t i = 0; i < c->n_eps; i++)
        if (!strcmp(c->names[i], addr))
            return i;
    char err[128];
    size_t slot = c->n_eps < NET_CLIENT_MAX_ENDPOINTS ? c->n_eps : NET_CLIENT_MAX_ENDPOINTS - 1;
    if (net_addr_parse(addr, &c->eps[slot], err, sizeof(err)))
        return c->cur;
    snprintf(c->names[slot], sizeof(c->names[0]), "%s", addr);
    if (slot == c->n_eps)
        c->n_eps++;
    return slot;
}

static int call(struct net_client *c, Raftfs__ClientRequest *req, Raftfs__ClientResponse **out);

int net_client_call(struct net_client *c, Raftfs__ClientRequest *req, Raftfs__ClientResponse **out)
{
    if (req->op_case == RAFTFS__CLIENT_REQUEST__OP_WRITE) {
        req->has_client_id = req->has_seq = true;
        req->client_id = c->client_id;
        req->seq = c->next_seq++;
    }
    return call(c, req, out);
}

int net_client_call_as(struct net_client *c, Raftfs__ClientRequest *req, uint64_t client_id,
                       uint64_t seq, Raftfs__ClientResponse **out)
{
    req->has_client_id = req->has_seq = true;
    req->client_id = client_id;
    req->seq = seq;
    return call(c, req, out);
}

int net_client_next(struct net_client *c, uint64_t id, int timeout_ms, Raftfs__ClientResponse **out)
{
    if (c->fd < 0) {
        set_err(c, "not connected");
        return ENOTCONN;
    }
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        Raftfs__Envelope *reply = NULL;
        int rc = recv_env(c, &reply, deadline);
        if (rc) {
            if (rc != ETIMEDOUT) {
                fail_err(c, c->cur, rc);
                disconnect(c);
            }
            return rc;
        }
        if (reply->body_case == RAFTFS__ENVELOPE__BODY_RESPONSE && reply->response->id == id) {
            *out = reply->response;
            reply->response = NULL;
            reply->body_case = RAFTFS__ENVELOPE__BODY__NOT_SET;
            net_wire_free(reply);
            return 0;
        }
        net_wire_free(reply);
    }
}

static int call(struct net_client *c, Raftfs__ClientRequest *req, Raftfs__ClientResponse **out)
{
    int64_t deadline = mono_ms() + c->timeout_ms;
    req->id = c->next_id++;
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    env.body_case = RAFTFS__ENVELOPE__BODY_REQUEST;
    env.request = req;
    int rc = ETIMEDOUT;
    int backoff_ms = 10;
    c->err[0] = 0;
    bool stay = true;    /* the next connection goes to c->cur, not the one after */
    size_t refusals = 0; /* endpoints in a row that refused us (TLS, Hello) */
    for (size_t attempt = 0; mono_ms() < deadline; attempt++) {
        if (c->fd < 0) {
            size_t i = stay ? c->cur : (c->cur + 1) % c->n_eps;
            stay = false;
            if ((rc = connect_ep(c, i, deadline))) {
                c->cur = i;
                /* Refused by every endpoint in turn (a certificate, a
                 * cluster, a login): trying again until the deadline would
                 * only say the same later. */
                refusals = c->refused ? refusals + 1 : 0;
                if (rc == EPERM || refusals >= c->n_eps)
                    return rc;
                /* Every endpoint failed once: wait a little before the next round. */
                if (attempt && attempt % c->n_eps == 0) {
                    struct timespec ts = {0, (long)backoff_ms * 1000000};
                    nanosleep(&ts, NULL);
                    backoff_ms = backoff_ms < 500 ? backoff_ms * 2 : 500;
                }
                continue;
            }
        }
        if ((rc = send_env(c, &env, deadline))) {
            fail_err(c, c->cur, rc);
            disconnect(c);
            continue;
        }
        Raftfs__Envelope *reply = NULL;
        for (;;) {
            if ((rc = recv_env(c, &reply, deadline)))
                break;
            if (reply->body_case == RAFTFS__ENVELOPE__BODY_RESPONSE &&
                reply->response->id == req->id)
                break;
            net_wire_free(reply); /* a late answer to an earlier, abandoned call */
            reply = NULL;
        }
        if (rc) {
            fail_err(c, c->cur, rc);
            disconnect(c);
            continue;
        }
        Raftfs__ClientResponse *resp = reply->response;
        /* A member that cannot serve it but knows the leader: go there. */
        if (resp->leader_address && resp->leader_address[0] && resp->err) {
            size_t to = endpoint_of(c, resp->leader_address);
            net_wire_free(reply);
            disconnect(c);
            c->cur = to;
            stay = true;
            continue;
        }
        /* Detach the response from its envelope. */
        reply->response = NULL;
        reply->body_case = RAFTFS__ENVELOPE__BODY__NOT_SET;
        net_wire_free(reply);
        *out = resp;
        return 0;
    }
    if (!c->err[0])
        set_err(c, "no endpoint answered within %d ms", c->timeout_ms);
    return rc ? rc : ETIMEDOUT;
}
