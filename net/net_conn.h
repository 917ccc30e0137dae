/* net_conn.h - a framed, buffered, non-blocking TCP connection on a
 * net_loop, and the sockets under it (listen, dial, addresses).
 *
 * Input: bytes are read as they come and cut into frames (net_frame.h);
 * each whole frame is handed to on_frame. A frame over max_frame closes the
 * connection (EMSGSIZE). A peer that sends a lot is read in bounded slices
 * per turn so it cannot starve the others.
 * Output: net_conn_send queues a frame and returns at once; everything
 * queued in a turn is written together at the end of the turn (one writev
 * per connection). The queue is bounded (max_queued): a slow or dead peer
 * makes net_conn_send fail with ENOBUFS instead of growing memory or
 * blocking anyone.
 * Lifetime: net_conn_close (or an error) calls on_close exactly once; the
 * struct is freed at the end of that turn, so a callback may close its own
 * connection and return safely.
 * TLS (net_conn_new_tls): the same, over a TLS session. The handshake runs
 * first; frames queued meanwhile go out once it is done. A handshake (or a
 * later TLS error) that fails closes the connection with EPROTO (or the
 * socket's errno) and net_conn_tls_error says why, in OpenSSL's words.
 */
#ifndef RAFTFS_NET_CONN_H
#define RAFTFS_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net_loop.h"

struct net_conn;

struct net_conn_limits {
    size_t max_frame;  /* largest payload accepted or sent (default NET_FRAME_DEFAULT_MAX) */
    size_t max_queued; /* output bytes queued at most (default 64 MiB) */
};

struct net_conn_ops {
    /* A dialed connection is established (may be NULL). */
    void (*on_connect)(struct net_conn *c, void *ctx);
    /* One whole frame; payload valid during the call. Return 0, or an errno
     * to close the connection (a frame that makes no sense). */
    int (*on_frame)(struct net_conn *c, const uint8_t *payload, size_t len, void *ctx);
    /* Closed: err 0 for a clean end of stream (or net_conn_close(c, 0)),
     * else why (ECONNREFUSED, ECONNRESET, EMSGSIZE, ETIMEDOUT...). */
    void (*on_close)(struct net_conn *c, int err, void *ctx);
};

/* Takes over fd (a connected, or with `connecting` a connecting,
 * non-blocking socket) and watches it. On error fd is closed. ENOMEM. */
int net_conn_new(struct net_loop *l, int fd, bool connecting, const struct net_conn_limits *lim,
                 const struct net_conn_ops *ops, void *ctx, struct net_conn **out);

struct net_tls;

/* As net_conn_new, but speaking TLS with tls's context (net_tls.h): as
 * the server for an accepted socket (host NULL), or as the client of a
 * dialed one, where the server's certificate must name host (an IP
 * address or a DNS name, no port). on_connect (dialed) comes once the
 * handshake is done. tls must outlive the connection. On error fd is
 * closed. ENOMEM, EINVAL (host). */
int net_conn_new_tls(struct net_loop *l, int fd, bool connecting, const struct net_conn_limits *lim,
                     const struct net_conn_ops *ops, void *ctx, struct net_tls *tls,
                     const char *host, struct net_conn **out);

/* Queues one frame. Errors: EPIPE (closed or closing), EMSGSIZE (over
 * max_frame), ENOBUFS (the queue is full: the message is dropped), ENOMEM. */
int net_conn_send(struct net_conn *c, const void *payload, size_t len);

/* Writes what is queued now, as much as the socket takes without blocking,
 * instead of at the end of the loop turn (the rest goes then, as usual).
 * For a caller about to block (an fsync) that wants its frames on the way
 * meanwhile. An error closes the connection, as it would later. */
void net_conn_flush(struct net_conn *c);

/* Closes: queued output is dropped unless flush is true, in which case it
 * is written first (best effort, without blocking). on_close(err) follows
 * at once. Idempotent. */
void net_conn_close(struct net_conn *c, int err, bool flush);

bool net_conn_is_open(const struct net_conn *c);
size_t net_conn_queued(const struct net_conn *c);
void *net_conn_ctx(const struct net_conn *c);
void net_conn_set_ctx(struct net_conn *c, void *ctx);
/* The peer's address as text ("127.0.0.1:7000"), for logs. */
const char *net_conn_peer(const struct net_conn *c);
/* TLS: the other side presented a certificate that verified against the
 * CA (set once the handshake is done; false on plaintext). */
bool net_conn_peer_verified(const struct net_conn *c);
/* TLS: could its verified certificate serve as host's (net_tls_peer_names)?
 * 0, ENOENT (no TLS, or no verified certificate), EACCES or EPERM. */
int net_conn_peer_names(const struct net_conn *c, const char *host);
/* TLS: the common name of that verified certificate (net_tls_peer_cn):
 * 0, or ENOENT (none: plaintext, no certificate, no single CN), EINVAL,
 * ERANGE. */
int net_conn_peer_cn(const struct net_conn *c, char *buf, size_t len);
/* Why TLS failed ("TLS handshake failed: certificate verify failed
 * (unable to get local issuer certificate)"), or NULL if it did not (or
 * the connection is plaintext). Valid until the connection is freed (in
 * on_close, for instance). */
const char *net_conn_tls_error(const struct net_conn *c);

/* Byte counters a connection adds what it reads and writes to (socket
 * bytes, frame headers included; with TLS, the frames' bytes, not the
 * records'), atomically: another thread may read them
 * with net_counters_load. Several connections may share one. */
struct net_counters {
    uint64_t bytes_in, bytes_out;
};
/* From now on c counts into k (NULL: stops counting). Loop thread. */
void net_conn_set_counters(struct net_conn *c, struct net_counters *k);
void net_counters_load(const struct net_counters *k, uint64_t *in, uint64_t *out);

/* ---- sockets ---- */

struct net_addr {
    struct sockaddr_storage sa;
    socklen_t len;
};

/* Parses "HOST:PORT" or "[V6]:PORT" (HOST may be a name, resolved now).
 * EINVAL with a reason in err. */
int net_addr_parse(const char *s, struct net_addr *out, char *err, size_t err_len);
/* Text form of an address. */
void net_addr_format(const struct net_addr *a, char *buf, size_t len);
/* Is a in 127.0.0.0/8 or ::1 (or ::ffff:127.0.0.0/104)? 0.0.0.0 is not. */
bool net_addr_is_loopback(const struct net_addr *a);

/* A listening, non-blocking socket bound to addr (SO_REUSEADDR). errno. */
int net_listen(const struct net_addr *addr, int backlog, int *out_fd);
/* Accepts one connection (non-blocking, TCP_NODELAY): *fd, or EAGAIN when
 * none is waiting, or another errno. */
int net_accept(int listen_fd, int *fd, struct net_addr *peer);
/* Starts a non-blocking connect (TCP_NODELAY): *fd is connecting (give it
 * to net_conn_new with connecting = true). errno. */
int net_dial(const struct net_addr *addr, int *fd);

#endif
