/* wiretest.c - client protocol requests the CLI cannot make, for the bats
 * suites.
 *
 *   wiretest append-twice ENDPOINT1 ENDPOINT2 PATH TEXT
 *       sends ONE append (a fixed client id and sequence number) to
 *       ENDPOINT1, then the very same request to ENDPOINT2, as a client
 *       retrying after a leader change would; prints each answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_client.h"
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

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "append-twice")) {
        int rc = send_append(argv[2], argv[4], argv[5]);
        if (!rc)
            rc = send_append(argv[3], argv[4], argv[5]);
        return rc;
    }
    fprintf(stderr, "usage: wiretest append-twice ENDPOINT1 ENDPOINT2 PATH TEXT\n");
    return 2;
}
