/* net_client.h - the C client library of the raftfs client protocol, used
 * by the CLI and the benchmark. Blocking, one request at a time per client
 * object (open several for concurrency).
 *
 * It connects to one of the configured endpoints, says Hello, and sends
 * requests. When an endpoint fails (refused, reset, timed out) it tries the
 * next one; when a member answers with a leader hint it goes there. A write
 * keeps its (client_id, seq) across those retries, so that a member that
 * deduplicates applies it once. It stops before the timeout when every
 * endpoint in turn refused it outright: a TLS handshake that OpenSSL
 * failed (a certificate, or no TLS there), or a refused Hello; a refused
 * login stops it at once.
 */
#ifndef RAFTFS_NET_CLIENT_H
#define RAFTFS_NET_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "net_tls.h"
#include "raftfs.pb-c.h"

#define NET_CLIENT_MAX_ENDPOINTS 16

struct net_client;

struct net_client_config {
    const char *endpoints; /* "HOST:PORT[,HOST:PORT...]" */
    uint64_t cluster_id;   /* 0: any cluster */
    int timeout_ms;        /* for one whole call, retries included (default 5000) */
    size_t max_frame;      /* largest response accepted (default 80 MiB) */
    /* A login said in every Hello (access control); NULL: anonymous. A
     * refused login is EPERM ("authentication failed"), at once. */
    const char *user, *password;
    /* TLS when a CA or a certificate is given (net_tls_wanted): the
     * member's certificate is verified against tls.ca_file (else the
     * system's CAs) and the endpoint's host; tls.cert_file/key_file are
     * shown to members that ask for a client certificate. */
    struct net_tls_config tls;
};

/* Parses the endpoints and, with TLS, reads the certificate files (no
 * connection yet). EINVAL (or EACCES: a key file others may read) with a
 * reason in err. */
int net_client_open(struct net_client **out, const struct net_client_config *cfg, char *err,
                    size_t err_len);
void net_client_close(struct net_client *c);

/* Sends req (its id, client_id and seq are set here) and waits for the
 * answer. Returns 0 with *resp (free with net_client_response_free) whose
 * err field carries the member's result, or the errno of the last failure
 * when no endpoint answered within the timeout (ETIMEDOUT, ECONNREFUSED,
 * EPROTO for a refused Hello or a failed TLS handshake, EPERM for a refused
 * login...), with a reason in the client's last error. */
int net_client_call(struct net_client *c, Raftfs__ClientRequest *req,
                    Raftfs__ClientResponse **resp);
void net_client_response_free(Raftfs__ClientResponse *resp);

/* As net_client_call, but a write goes out as (client_id, seq) instead of
 * the client's own numbering: for tests of exactly-once application. */
int net_client_call_as(struct net_client *c, Raftfs__ClientRequest *req, uint64_t client_id,
                       uint64_t seq, Raftfs__ClientResponse **resp);

/* Streams (WatchRequest): net_client_call starts one and returns its first
 * response; req->id is then the stream's id. Each net_client_next returns
 * the stream's next response, waiting at most timeout_ms: ETIMEDOUT if none
 * came (the stream goes on), another errno if the connection broke (the
 * stream is gone: start it again). Responses to other ids are dropped. */
int net_client_next(struct net_client *c, uint64_t id, int timeout_ms,
                    Raftfs__ClientResponse **out);

/* Drops the connection; the next call goes to the next endpoint (a stream
 * whose member went silent). */
void net_client_next_endpoint(struct net_client *c);

/* The reason of the last failure ("" if none). */
const char *net_client_error(const struct net_client *c);

#endif
