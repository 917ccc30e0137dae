/* net_conn.c - framed, buffered non-blocking connections, in plaintext or
 * TLS; sockets.
 *
 * TLS sits between the buffers and the socket: the same input and output
 * buffers hold plaintext frames, and where a plaintext connection calls
 * read and send, a TLS one calls SSL_read and SSL_write (over net_tls's
 * socket BIO). A TLS connection first runs its handshake (handshaking):
 * like a connecting one, it queues frames and writes nothing until done.
 * OpenSSL may need the socket the other way round (a read that must write
 * first, a write that must read first): tls_read_wants_out and
 * tls_write_wants_in remember it, and the next event of that kind retries.
 * Plaintext connections take none of these paths: one test of c->ssl per
 * read and per write.
 */
#include "net_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "fault.h"
#include "net_frame.h"
#include "net_tls.h"

#define NET_CONN_READ_CHUNK      (64U << 10)
#define NET_CONN_READS_PER_EVENT 4 /* slices per readiness event: fairness */
#define NET_CONN_DEFAULT_QUEUED  (64ULL << 20)

struct net_conn {
    struct net_loop *loop;
    int fd;
    struct net_conn_limits lim;
    struct net_conn_ops ops;
    void *ctx;
    bool connecting;
    bool closed;
    bool flush_scheduled;
    bool want_out; /* EPOLLOUT is being watched */
    char peer[64];
    struct net_counters *counters; /* may be NULL */

    SSL *ssl;                 /* NULL: plaintext */
    bool tls_client;          /* TLS: dialed (on_connect once the handshake is done) */
    bool handshaking;         /* TLS: nothing is written before it is done */
    bool tls_read_wants_out;  /* SSL_read waits for the socket to take a write */
    bool tls_write_wants_in;  /* SSL_write waits for input */
    bool tls_broken;          /* a fatal TLS error: no close_notify */
    bool read_more_scheduled; /* TLS: plaintext left inside OpenSSL after a fair share */
    bool peer_verified;       /* TLS: the other side's certificate verified */
    char tls_err[200];        /* TLS: why it failed ("" if it did not) */

    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_off, out_len, out_cap; /* unsent bytes are out[out_off, out_len) */
};

static void conn_free_later(struct net_loop *l, void *ctx)
{
    struct net_conn *c = ctx;
    (void)l;
    free(c->in);
    free(c->out);
    free(c);
}

static void conn_io(struct net_loop *l, int fd, uint32_t events, void *ctx);

static void set_out_interest(struct net_conn *c, bool want)
{
    if (c->want_out == want || c->closed)
        return;
    c->want_out = want;
    net_loop_set_events(c->loop, c->fd, EPOLLIN | (want ? EPOLLOUT : 0));
}

static void finish_close(struct net_conn *c, int err)
{
    if (c->closed)
        return;
    c->closed = true;
    net_loop_unwatch(c->loop, c->fd);
    if (c->ssl) {
        /* close_notify, best effort, unless TLS itself failed */
        if (!c->handshaking && !c->tls_broken)
            SSL_shutdown(c->ssl);
        ERR_clear_error();
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    c->fd = -1;
    if (c->ops.on_close)
        c->ops.on_close(c, err, c->ctx);
    /* Freed after every callback of this turn has run. */
    if (net_loop_defer(c->loop, conn_free_later, c)) {
        /* Out of memory for the deferral: leak rather than use after free. */
    }
}

/* A TLS call failed (ret, SSL_get_error's e): keeps the reason, returns
 * the errno to close with. */
static int tls_fail(struct net_conn *c, int ret, int e)
{
    char why[160];
    int rc = net_tls_failure(c->ssl, ret, e, why, sizeof(why));
    c->tls_broken = true;
    if (rc == 0) {
        /* the other side closed: in a handshake, that is a refusal */
        rc = c->handshaking ? EPROTO : EPIPE;
        snprintf(why, sizeof(why), "the other side closed the connection%s",
                 c->handshaking ? " (is it speaking TLS? does it accept this certificate?)" : "");
    }
    if (rc == EPROTO || c->handshaking)
        snprintf(c->tls_err, sizeof(c->tls_err), "%s%s",
                 c->handshaking ? "TLS handshake failed: " : "TLS: ", why);
    return rc;
}

static int tls_write_out(struct net_conn *c)
{
    c->tls_write_wants_in = false;
    while (c->out_off < c->out_len) {
        size_t len = c->out_len - c->out_off;
        ERR_clear_error();
        int n = SSL_write(c->ssl, c->out + c->out_off, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE) {
                set_out_interest(c, true);
                return 0;
            }
            if (e == SSL_ERROR_WANT_READ) {
                c->tls_write_wants_in = true;
                return 0;
            }
            return tls_fail(c, n, e);
        }
        c->out_off += (size_t)n;
        if (c->counters)
            __atomic_fetch_add(&c->counters->bytes_out, (uint64_t)n, __ATOMIC_RELAXED);
    }
    c->out_off = c->out_len = 0;
    set_out_interest(c, c->tls_read_wants_out);
    return 0;
}

/* Writes what is queued. 0, or the errno that broke the connection. */
static int write_out(struct net_conn *c)
{
    if (c->ssl)
        return tls_write_out(c);
    while (c->out_off < c->out_len) {
        /* send, not write: a peer gone raises no SIGPIPE, whatever the
         * process does with the signal (found by tests/fuzz: client, whose
         * process died of it). */
        ssize_t n = fault_send(FAULT_NET_SEND, c->fd, c->out + c->out_off, c->out_len - c->out_off,
                               MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_out_interest(c, true);
                return 0;
            }
            return errno;
        }
        c->out_off += (size_t)n;
        if (c->counters)
            __atomic_fetch_add(&c->counters->bytes_out, (uint64_t)n, __ATOMIC_RELAXED);
    }
    c->out_off = c->out_len = 0;
    set_out_interest(c, false);
    return 0;
}

static void flush_cb(struct net_loop *l, void *ctx)
{
    struct net_conn *c = ctx;
    (void)l;
    c->flush_scheduled = false;
    if (c->closed || c->connecting || c->handshaking)
        return;
    int rc = write_out(c);
    if (rc)
        finish_close(c, rc);
}

static int conn_new(struct net_loop *l, int fd, bool connecting, const struct net_conn_limits *lim,
                    const struct net_conn_ops *ops, void *ctx, SSL *ssl, bool tls_client,
                    struct net_conn **out)
{
    struct net_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        SSL_free(ssl);
        close(fd);
        return ENOMEM;
    }
    c->loop = l;
    c->fd = fd;
    c->lim.max_frame = lim && lim->max_frame ? lim->max_frame : NET_FRAME_DEFAULT_MAX;
    c->lim.max_queued = lim && lim->max_queued ? lim->max_queued : NET_CONN_DEFAULT_QUEUED;
    c->ops = *ops;
    c->ctx = ctx;
    c->connecting = connecting;
    c->ssl = ssl;
    c->tls_client = tls_client;
    c->handshaking = ssl != NULL;
    /* A client speaks first: its handshake starts once the socket is writable. */
    c->want_out = connecting || tls_client;
    struct net_addr peer = {.len = sizeof(peer.sa)};
    if (getpeername(fd, (struct sockaddr *)&peer.sa, &peer.len) == 0)
        net_addr_format(&peer, c->peer, sizeof(c->peer));
    else
        snprintf(c->peer, sizeof(c->peer), "fd %d", fd);
    int rc = net_loop_watch(l, fd, EPOLLIN | (c->want_out ? EPOLLOUT : 0), conn_io, c);
    if (rc) {
        SSL_free(ssl);
        close(fd);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int net_conn_new(struct net_loop *l, int fd, bool connecting, const struct net_conn_limits *lim,
                 const struct net_conn_ops *ops, void *ctx, struct net_conn **out)
{
    return conn_new(l, fd, connecting, lim, ops, ctx, NULL, false, out);
}

int net_conn_new_tls(struct net_loop *l, int fd, bool connecting, const struct net_conn_limits *lim,
                     const struct net_conn_ops *ops, void *ctx, struct net_tls *tls,
                     const char *host, struct net_conn **out)
{
    SSL *ssl;
    char err[160];
    int rc = net_tls_session_new(tls, fd, host, &ssl, err, sizeof(err));
    if (rc) {
        close(fd);
        return rc;
    }
    return conn_new(l, fd, connecting, lim, ops, ctx, ssl, host != NULL, out);
}

int net_conn_send(struct net_conn *c, const void *payload, size_t len)
{
    if (c->closed)
        return EPIPE;
    if (len > c->lim.max_frame)
        return EMSGSIZE;
    size_t pending = c->out_len - c->out_off;
    if (pending + NET_FRAME_HEADER_BYTES + len > c->lim.max_queued)
        return ENOBUFS;
    /* Drop what was sent, then make room. */
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, pending);
        c->out_off = 0;
        c->out_len = pending;
    }
    size_t need = c->out_len + NET_FRAME_HEADER_BYTES + len;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p)
            return ENOMEM;
        c->out = p;
        c->out_cap = cap;
    }
    net_frame_header(c->out + c->out_len, (uint32_t)len);
    if (len)
        memcpy(c->out + c->out_len + NET_FRAME_HEADER_BYTES, payload, len);
    c->out_len = need;
    if (!c->flush_scheduled && !c->connecting && !c->handshaking) {
        if (net_loop_defer(c->loop, flush_cb, c))
            return ENOMEM;
        c->flush_scheduled = true;
    }
    return 0;
}

void net_conn_flush(struct net_conn *c)
{
    if (c->closed || c->connecting || c->handshaking || c->out_off == c->out_len)
        return;
    int rc = write_out(c);
    if (rc)
        finish_close(c, rc);
}

void net_conn_close(struct net_conn *c, int err, bool flush)
{
    if (c->closed)
        return;
    if (flush && !c->connecting && !c->handshaking)
        write_out(c); /* best effort: whatever the socket takes now */
    finish_close(c, err);
}

/* Cuts whole frames out of the input buffer. False if the connection
 * closed meanwhile. */
static bool deliver(struct net_conn *c)
{
    size_t off = 0;
    while (!c->closed) {
        const uint8_t *payload;
        size_t plen, used;
        int rc =
            net_frame_parse(c->in + off, c->in_len - off, c->lim.max_frame, &payload, &plen, &used);
        if (rc == EAGAIN)
            break;
        if (rc) {
            finish_close(c, rc);
            return false;
        }
        rc = c->ops.on_frame(c, payload, plen, c->ctx);
        if (rc) {
            /* Answers queued so far (an error reply) still go out. */
            net_conn_close(c, rc, true);
            return false;
        }
        off += used;
    }
    if (c->closed)
        return false;
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return true;
}

/* Makes room for a read of up to a chunk. False if the connection closed
 * (out of memory). */
static bool make_room(struct net_conn *c)
{
    if (c->in_cap - c->in_len < NET_CONN_READ_CHUNK) {
        /* Never more than one frame and a chunk: the header decides. */
        size_t cap = c->in_cap ? c->in_cap * 2 : NET_CONN_READ_CHUNK;
        size_t limit = c->lim.max_frame + NET_FRAME_HEADER_BYTES + NET_CONN_READ_CHUNK;
        if (cap > limit)
            cap = limit;
        if (cap > c->in_cap) {
            uint8_t *p = realloc(c->in, cap);
            if (!p) {
                finish_close(c, ENOMEM);
                return false;
            }
            c->in = p;
            c->in_cap = cap;
        }
    }
    if (c->in_cap == c->in_len) {
        finish_close(c, EMSGSIZE); /* cannot happen: deliver() drains frames */
        return false;
    }
    return true;
}

static void tls_read_in(struct net_conn *c);

static void read_in(struct net_conn *c)
{
    if (c->ssl) {
        tls_read_in(c);
        return;
    }
    for (int slice = 0; slice < NET_CONN_READS_PER_EVENT && !c->closed; slice++) {
        if (!make_room(c))
            return;
        size_t room = c->in_cap - c->in_len;
        ssize_t n = fault_read(FAULT_NET_RECV, c->fd, c->in + c->in_len, room);
        if (n == 0) {
            /* End of stream; half a frame left behind is a truncated frame. */
            finish_close(c, c->in_len ? EPROTO : 0);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                finish_close(c, errno);
            return;
        }
        c->in_len += (size_t)n;
        if (c->counters)
            __atomic_fetch_add(&c->counters->bytes_in, (uint64_t)n, __ATOMIC_RELAXED);
        if (!deliver(c))
            return;
        if ((size_t)n < room)
            return; /* drained the socket */
    }
}

static void read_more_cb(struct net_loop *l, void *ctx)
{
    struct net_conn *c = ctx;
    (void)l;
    c->read_more_scheduled = false;
    if (!c->closed)
        tls_read_in(c);
}

/* read_in over TLS. SSL_read returns one record (16 KiB at most) a call,
 * so a slice is read in several calls; the socket is drained once OpenSSL
 * wants to read. */
static void tls_read_in(struct net_conn *c)
{
    c->tls_read_wants_out = false;
    bool drained = false;
    for (int slice = 0; slice < NET_CONN_READS_PER_EVENT && !c->closed; slice++) {
        if (!make_room(c))
            return;
        size_t room = c->in_cap - c->in_len, got = 0;
        int ret = 1, e = SSL_ERROR_NONE;
        while (got < room) {
            size_t want = room - got;
            ERR_clear_error();
            ret =
                SSL_read(c->ssl, c->in + c->in_len + got, want > INT32_MAX ? INT32_MAX : (int)want);
            if (ret <= 0) {
                e = SSL_get_error(c->ssl, ret);
                break;
            }
            got += (size_t)ret;
        }
        if (got) {
            c->in_len += got;
            if (c->counters)
                __atomic_fetch_add(&c->counters->bytes_in, (uint64_t)got, __ATOMIC_RELAXED);
            if (!deliver(c))
                return;
        }
        if (ret > 0)
            continue; /* the buffer filled: another slice */
        if (e == SSL_ERROR_WANT_READ) {
            drained = true;
            break;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            c->tls_read_wants_out = true;
            set_out_interest(c, true);
            return;
        }
        char why[160];
        int rc = net_tls_failure(c->ssl, ret, e, why, sizeof(why));
        if (rc == 0) {
            /* End of stream; half a frame left behind is a truncated frame. */
            c->tls_broken = e != SSL_ERROR_ZERO_RETURN;
            finish_close(c, c->in_len ? EPROTO : 0);
            return;
        }
        c->tls_broken = true;
        if (rc == EPROTO)
            snprintf(c->tls_err, sizeof(c->tls_err), "TLS: %s", why);
        finish_close(c, rc);
        return;
    }
    if (c->closed)
        return;
    /* Stopped for fairness with plaintext already inside OpenSSL: epoll
     * will not tell of it, so come back at the end of the turn. */
    if (!drained && SSL_has_pending(c->ssl) && !c->read_more_scheduled &&
        net_loop_defer(c->loop, read_more_cb, c) == 0)
        c->read_more_scheduled = true;
    if (!c->tls_read_wants_out && c->out_off == c->out_len)
        set_out_interest(c, false);
}

/* Drives the TLS handshake; once done: on_connect (dialed), then what was
 * queued meanwhile goes out, then any input that came with it is read. */
static void tls_handshake(struct net_conn *c)
{
    ERR_clear_error();
    int ret = SSL_do_handshake(c->ssl);
    if (ret != 1) {
        int e = SSL_get_error(c->ssl, ret);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            set_out_interest(c, e == SSL_ERROR_WANT_WRITE);
            return;
        }
        finish_close(c, tls_fail(c, ret, e));
        return;
    }
    c->handshaking = false;
    c->peer_verified = net_tls_peer_verified(c->ssl);
    set_out_interest(c, false);
    if (c->tls_client && c->ops.on_connect) {
        c->ops.on_connect(c, c->ctx);
        if (c->closed)
            return;
    }
    int rc = write_out(c);
    if (rc) {
        finish_close(c, rc);
        return;
    }
    tls_read_in(c);
}

static void conn_io(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    struct net_conn *c = ctx;
    (void)l, (void)fd;
    if (c->connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
            finish_close(c, err ? err : errno);
            return;
        }
        c->connecting = false;
        struct net_addr peer = {.len = sizeof(peer.sa)};
        if (getpeername(c->fd, (struct sockaddr *)&peer.sa, &peer.len) == 0)
            net_addr_format(&peer, c->peer, sizeof(c->peer));
        if (c->ssl) {
            tls_handshake(c); /* on_connect once it is done */
            return;
        }
        if (c->ops.on_connect)
            c->ops.on_connect(c, c->ctx);
        if (c->closed)
            return;
        /* Frames queued while connecting go out now. */
        int rc = write_out(c);
        if (rc)
            finish_close(c, rc);
        return;
    }
    if (c->handshaking) {
        tls_handshake(c);
        return;
    }
    if ((events & EPOLLIN) || (c->tls_read_wants_out && (events & EPOLLOUT)))
        read_in(c);
    if (c->closed)
        return;
    if ((events & EPOLLOUT) || (c->tls_write_wants_in && (events & EPOLLIN))) {
        int rc = write_out(c);
        if (rc) {
            finish_close(c, rc);
            return;
        }
    }
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        finish_close(c, err ? err : ECONNRESET);
    }
}

bool net_conn_is_open(const struct net_conn *c)
{
    return !c->closed;
}

size_t net_conn_queued(const struct net_conn *c)
{
    return c->out_len - c->out_off;
}

void *net_conn_ctx(const struct net_conn *c)
{
    return c->ctx;
}

void net_conn_set_ctx(struct net_conn *c, void *ctx)
{
    c->ctx = ctx;
}

const char *net_conn_peer(const struct net_conn *c)
{
    return c->peer;
}

bool net_conn_peer_verified(const struct net_conn *c)
{
    return c->peer_verified;
}

int net_conn_peer_names(const struct net_conn *c, const char *host)
{
    return c->ssl && c->peer_verified ? net_tls_peer_names(c->ssl, host) : ENOENT;
}

int net_conn_peer_cn(const struct net_conn *c, char *buf, size_t len)
{
    return c->ssl && c->peer_verified ? net_tls_peer_cn(c->ssl, buf, len) : ENOENT;
}

const char *net_conn_tls_error(const struct net_conn *c)
{
    return c->tls_err[0] ? c->tls_err : NULL;
}

void net_conn_set_counters(struct net_conn *c, struct net_counters *k)
{
    c->counters = k;
}

void net_counters_load(const struct net_counters *k, uint64_t *in, uint64_t *out)
{
    *in = __atomic_load_n(&k->bytes_in, __ATOMIC_RELAXED);
    *out = __atomic_load_n(&k->bytes_out, __ATOMIC_RELAXED);
}

/* ---- sockets ---- */

int net_addr_parse(const char *s, struct net_addr *out, char *err, size_t err_len)
{
    char host[256];
    const char *port;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host)) {
            snprintf(err, err_len, "bad address '%s' (want [V6]:PORT)", s);
            return EINVAL;
        }
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host)) {
            snprintf(err, err_len, "bad address '%s' (want HOST:PORT)", s);
            return EINVAL;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535) {
        snprintf(err, err_len, "bad port in '%s'", s);
        return EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        snprintf(err, err_len, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return EINVAL;
    }
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void net_addr_format(const struct net_addr *a, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (a->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

bool net_addr_is_loopback(const struct net_addr *a)
{
    if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->sa.ss_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)&a->sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(v6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127;
    }
    return false;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int net_listen(const struct net_addr *addr, int backlog, int *out_fd)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) || listen(fd, backlog)) {
        int e = errno;
        close(fd);
        return e;
    }
    *out_fd = fd;
    return 0;
}

int net_accept(int listen_fd, int *fd, struct net_addr *peer)
{
    struct net_addr local;
    if (!peer)
        peer = &local;
    peer->len = sizeof(peer->sa);
    for (;;) {
        int c = accept4(listen_fd, (struct sockaddr *)&peer->sa, &peer->len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            nodelay(c);
            *fd = c;
            return 0;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        return errno == EWOULDBLOCK ? EAGAIN : errno;
    }
}

int net_dial(const struct net_addr *addr, int *out_fd)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    nodelay(fd);
    if (connect(fd, (const struct sockaddr *)&addr->sa, addr->len) && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return e;
    }
    *out_fd = fd;
    return 0;
}
