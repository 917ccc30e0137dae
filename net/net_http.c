/* net_http.c - the operational HTTP endpoints' server: libmicrohttpd on
 * its own polling thread, over a socket bound by net_http_open. */
#include "net_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_conn.h"

struct net_http {
    int fd; /* the listening socket; libmicrohttpd's once started */
    struct MHD_Daemon *d;
    net_http_fn fn;
    void *ctx;
};

int net_http_open(struct net_http **out, const char *addr, char *err, size_t err_len)
{
    struct net_addr a;
    int rc = net_addr_parse(addr, &a, err, err_len);
    if (rc)
        return rc;
    struct net_http *h = calloc(1, sizeof(*h));
    if (!h)
        return ENOMEM;
    if ((rc = net_listen(&a, NET_HTTP_MAX_CONNECTIONS, &h->fd))) {
        snprintf(err, err_len, "cannot listen on %s: %s", addr, strerror(rc));
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* Queues one answer and drops our reference to it. */
static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *type, char *body,
                              size_t len, bool allow)
{
    struct MHD_Response *r = body
                                 ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
                                 : MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO; /* the connection is closed */
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type ? type : "text/plain");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct net_http *h = cls;
    (void)version;
    (void)upload;
    (void)con_cls;
    /* A body, if any, is never read: the answer goes at once (and
     * libmicrohttpd closes the connection rather than read the rest). */
    *upload_size = 0;
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
        char *body = strdup("method not allowed\n");
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, body, body ? strlen(body) : 0, true);
    }
    struct net_http_reply rep = {0};
    h->fn(h->ctx, url, &rep);
    if (!rep.status) {
        free(rep.body);
        rep = (struct net_http_reply){.status = MHD_HTTP_INTERNAL_SERVER_ERROR};
    }
    return answer(c, rep.status, rep.content_type, rep.body, rep.len, false);
}

int net_http_start(struct net_http *h, net_http_fn fn, void *ctx)
{
    h->fn = fn;
    h->ctx = ctx;
    h->d =
        MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request,
                         h, MHD_OPTION_LISTEN_SOCKET, h->fd, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)NET_HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)NET_HTTP_TIMEOUT_S, MHD_OPTION_END);
    if (!h->d)
        return errno ? errno : EIO;
    return 0;
}

void net_http_close(struct net_http *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d); /* closes the listening socket too */
    else
        close(h->fd);
    free(h);
}
