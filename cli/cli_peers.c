/* cli_peers.c - the founding members (--peers ID=HOST:PORT,...) and the
 * cluster id derived from them, shared by `raftfs mount` and `raftfs
 * snapshot restore`: members restored from one image with the same
 * --peers and --cluster-token form the cluster a fresh mount would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "node.h"

/* FNV-1a, 64 bits: the cluster id is a digest of the founding members. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int cli_parse_peers(const char *peers, struct node_member *members, size_t *n, char *err,
                    size_t err_len)
{
    char *list = strdup(peers), *save = NULL;
    if (!list) {
        snprintf(err, err_len, "out of memory");
        return 1;
    }
    int rc = 0;
    *n = 0;
    for (char *e = strtok_r(list, ",", &save); e && !rc; e = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(e, '=');
        char *end;
        unsigned long long id = eq ? strtoull(e, &end, 10) : 0;
        if (!eq || end != eq || id == 0 || strlen(eq + 1) == 0 ||
            strlen(eq + 1) >= sizeof(members[0].addr)) {
            snprintf(err, err_len, "bad --peers entry '%s' (want ID=HOST:PORT)", e);
            rc = 1;
            break;
        }
        if (*n == NODE_MAX_MEMBERS) {
            snprintf(err, err_len, "more than %d members in --peers", NODE_MAX_MEMBERS);
            rc = 1;
            break;
        }
        for (size_t i = 0; i < *n && !rc; i++)
            if (members[i].id == id) {
                snprintf(err, err_len, "member %llu twice in --peers", id);
                rc = 1;
            }
        struct node_member *m = &members[(*n)++];
        memset(m, 0, sizeof(*m));
        m->id = id;
        snprintf(m->addr, sizeof(m->addr), "%s", eq + 1);
    }
    free(list);
    return rc;
}

uint64_t cli_cluster_id(const struct node_member *members, size_t n, const char *token)
{
    /* A digest of the founding members (sorted by id) and the optional
     * token, the same on every founder. */
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *tok = token ? token : "";
    const char *kind = n ? "raftfs-cluster" : "raftfs-single";
    h = fnv1a(h, kind, strlen(kind) + 1);
    h = fnv1a(h, tok, strlen(tok) + 1);
    for (uint64_t next = 1, done = 0; done < n; next++) {
        for (size_t i = 0; i < n; i++) {
            if (members[i].id != next)
                continue;
            char line[160];
            int len =
                snprintf(line, sizeof(line), "%llu=%s", (unsigned long long)next, members[i].addr);
            h = fnv1a(h, line, (size_t)len + 1);
            done++;
        }
        if (next > NODE_MAX_MEMBERS * 1000ULL)
            break;
    }
    return h;
}
