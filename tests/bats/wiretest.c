/* wiretest.c - client protocol requests the CLI cannot make, for the bats
 * suites.
 *
 *   wiretest append-twice ENDPOINT1 ENDPOINT2 PATH TEXT
 *       sends ONE append (a fixed client id and sequence number) to
 *       ENDPOINT1, then the very same request to ENDPOINT2, as a client
 *       retrying after a leader change would; prints each answer.
 *
 *   wiretest peer-hello ENDPOINT CLUSTER MEMBER CACERT [CERT KEY]
 *       over TLS (trusting CACERT, showing CERT if given), says the Hello
 *       of member MEMBER of cluster CLUSTER (hex) and prints the answer:
 *       "ok", or "refused: REASON" (exit status 1).
 */
#include <errno.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_client.h"
#include "net_frame.h"
#include "net_tls.h"
#include "net_wire.h"
#include "store.h"

static int send_append(const char *endpoint, const char *path, const char *text)
{
    struct net_client_config cfg = {.endpoints = endpoint, .timeout_ms = 5000};
    struct net_client *c;
    char err[256];
    if (net_client_open(&c, &cfg, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command cmd = RAFTFS__COMMAND__INIT;
    Raftfs__Append ap = RAFTFS__APPEND__INIT;
    cmd.version = STORE_CMD_VERSION_PLAIN;
    ap.path.data = (uint8_t *)path;
    ap.path.len = strlen(path);
    ap.value.data = (uint8_t *)text;
    ap.value.len = strlen(text);
    cmd.op_case = RAFTFS__COMMAND__OP_APPEND;
    cmd.append = &ap;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = &cmd;
    /* The same (client_id, seq) on both members: one request, retried. */
    Raftfs__ClientResponse *resp;
    int rc = net_client_call_as(c, &req, 0x5eed5eed5eedULL, 1, &resp);
    if (rc) {
        printf("%s: %s\n", endpoint, net_client_error(c));
        net_client_close(c);
        return 1;
    }
    printf("%s: err %d revision %llu\n", endpoint, resp->err, (unsigned long long)resp->revision);
    net_client_response_free(resp);
    net_client_close(c);
    return 0;
}

/* A member's Hello over TLS, on a blocking socket. */
static int peer_hello(const char *endpoint, const char *cluster, const char *member,
                      const char *cacert, const char *cert, const char *key)
{
    struct net_tls_config tc = {.ca_file = cacert, .cert_file = cert, .key_file = key};
    struct net_tls *t;
    struct net_addr a;
    char err[256], host[128];
    if (net_tls_new(&tc, &t, err, sizeof(err)) || net_addr_parse(endpoint, &a, err, sizeof(err)) ||
        net_tls_host_of(endpoint, host, sizeof(host))) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    int fd = socket(a.sa.ss_family, SOCK_STREAM, 0);
    SSL *s = NULL;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a.sa, a.len) ||
        net_tls_session_new(t, fd, host, &s, err, sizeof(err)) || SSL_connect(s) != 1) {
        printf("%s: cannot connect over TLS\n", endpoint);
        return 2;
    }
    Raftfs__Envelope env = RAFTFS__ENVELOPE__INIT;
    Raftfs__Hello hello = RAFTFS__HELLO__INIT;
    hello.protocol_version = NET_WIRE_VERSION;
    hello.cluster_id = strtoull(cluster, NULL, 16);
    hello.has_member_id = true;
    hello.member_id = strtoull(member, NULL, 10);
    env.body_case = RAFTFS__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    uint8_t buf[4096];
    size_t n = raftfs__envelope__get_packed_size(&env), len = 0;
    net_frame_header(buf, (uint32_t)n);
    raftfs__envelope__pack(&env, buf + NET_FRAME_HEADER_BYTES);
    int rc = 2;
    if (SSL_write(s, buf, (int)(n + NET_FRAME_HEADER_BYTES)) <= 0) {
        printf("%s: cannot send\n", endpoint);
        goto out;
    }
    for (;;) {
        const uint8_t *payload;
        size_t plen, used;
        if (net_frame_parse(buf, len, sizeof(buf), &payload, &plen, &used) == 0) {
            Raftfs__Envelope *r = net_wire_unpack(payload, plen);
            if (!r || r->body_case != RAFTFS__ENVELOPE__BODY_HELLO_REPLY) {
                printf("unexpected answer\n");
            } else if (r->hello_reply->ok) {
                printf("ok\n");
                rc = 0;
            } else {
                printf("refused: %s\n", r->hello_reply->error ? r->hello_reply->error : "");
                rc = 1;
            }
            net_wire_free(r);
            break;
        }
        int k = SSL_read(s, buf + len, (int)(sizeof(buf) - len));
        if (k <= 0) {
            printf("%s: closed without an answer\n", endpoint);
            break;
        }
        len += (size_t)k;
    }
out:
    SSL_free(s);
    close(fd);
    net_tls_free(t);
    return rc;
}

int main(int argc, char **argv)
{
    if ((argc == 6 || argc == 8) && !strcmp(argv[1], "peer-hello"))
        return peer_hello(argv[2], argv[3], argv[4], argv[5], argc == 8 ? argv[6] : NULL,
                          argc == 8 ? argv[7] : NULL);
    if (argc == 6 && !strcmp(argv[1], "append-twice")) {
        int rc = send_append(argv[2], argv[4], argv[5]);
        if (!rc)
            rc = send_append(argv[3], argv[4], argv[5]);
        return rc;
    }
    fprintf(stderr, "usage: wiretest append-twice ENDPOINT1 ENDPOINT2 PATH TEXT\n"
                    "       wiretest peer-hello ENDPOINT CLUSTER MEMBER CACERT [CERT KEY]\n");
    return 2;
}
