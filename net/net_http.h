/* net_http.h - a small HTTP server for a member's operational endpoints
 * (metrics, health), on libmicrohttpd's own thread.
 *
 * Opening binds and listens, and starts no thread, so that a busy or bad
 * address refuses the mount before it exists (and before the process may
 * have more threads than one: fs_session.c); starting runs libmicrohttpd's
 * polling thread, which calls the handler for every GET or HEAD request.
 * Any other method is answered 405 here, with "Allow: GET, HEAD".
 *
 * Limits: at most NET_HTTP_MAX_CONNECTIONS connections at once (more are
 * refused by libmicrohttpd), each closed after NET_HTTP_TIMEOUT_S idle
 * seconds; request bodies are never read.
 */
#ifndef RAFTFS_NET_HTTP_H
#define RAFTFS_NET_HTTP_H

#include <stddef.h>

#define NET_HTTP_MAX_CONNECTIONS 16
#define NET_HTTP_TIMEOUT_S       10

struct net_http;

/* What the handler answers: status (e.g. 200, 404, 503), a content type
 * (a static string; NULL: text/plain) and a body the server takes over
 * (malloc'd; NULL with len 0: empty). */
struct net_http_reply {
    int status;
    const char *content_type;
    char *body;
    size_t len;
};

/* Called on the server's thread with the request's path (no query string);
 * fills out (status 0 is answered 500). Must not block for long: one
 * request at a time is served. */
typedef void (*net_http_fn)(void *ctx, const char *path, struct net_http_reply *out);

/* Binds and listens on addr ("HOST:PORT" or "[V6]:PORT"). Errors, with a
 * reason in err: EINVAL (not an address), or the socket's errno
 * (EADDRINUSE, EADDRNOTAVAIL, EACCES...). */
int net_http_open(struct net_http **out, const char *addr, char *err, size_t err_len);

/* Starts serving: fn(ctx, ...) for each request from now on, until
 * net_http_close. ENOMEM or EIO if libmicrohttpd cannot start. */
int net_http_start(struct net_http *h, net_http_fn fn, void *ctx);

/* Stops serving (waits for the thread; a request in progress finishes),
 * closes the socket and frees h. NULL is accepted. */
void net_http_close(struct net_http *h);

#endif
