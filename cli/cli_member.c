/* cli_member.c - `raftfs member list|add|add-learner|promote|remove|
 * transfer-leader`, and joining a running cluster for `raftfs mount
 * --join`. Requests go to any member; the client follows the leader's
 * address when a member is not the leader. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "net_client.h"
#include "node.h"

const char cli_member_usage[] =
    "usage: raftfs member list\n"
    "       raftfs member add ID HOST:PORT          a voter (joint consensus)\n"
    "       raftfs member add-learner ID HOST:PORT  a member that gets the log, never votes\n"
    "       raftfs member promote ID                a caught-up learner becomes a voter\n"
    "       raftfs member remove ID\n"
    "       raftfs member transfer-leader ID\n"
    "\n"
    "options: --endpoints HOST:PORT[,...] (default $RAFTFS_ENDPOINTS, else the local\n"
    "cluster's), --timeout SECONDS (default 10)\n"
    "\n"
    "A member added with add or add-learner is then started with\n"
    "'raftfs mount MNT --data DIR --id ID --listen HOST:PORT --join ENDPOINTS'\n"
    "(which can also do the adding itself) and catches up by snapshot.\n"
    "TLS options (for members that use TLS):\n" CLI_TLS_HELP;

/* Why the last member_call found no member to answer (for --join). */
static char last_error[512];

/* Sends one member request; on success *resp (caller frees). Returns an
 * exit status and prints failures. */
static int member_call(const char *endpoints, double timeout_s, Raftfs__MemberRequest__Op op,
                       uint64_t id, const char *addr, Raftfs__ClientResponse **resp, bool quiet)
{
    *resp = NULL;
    struct net_client *c = cli_connect("member", endpoints, timeout_s);
    if (!c)
        return 2;
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__MemberRequest mr = RAFTFS__MEMBER_REQUEST__INIT;
    mr.op = op;
    if (id) {
        mr.has_id = true;
        mr.id = id;
    }
    if (addr) {
        mr.has_address = true;
        mr.address.data = (uint8_t *)addr;
        mr.address.len = strlen(addr);
    }
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_MEMBER;
    req.member = &mr;
    int rc = net_client_call(c, &req, resp);
    if (rc) {
        if (!quiet)
            fprintf(stderr, "raftfs member: %s\n", net_client_error(c));
        snprintf(last_error, sizeof(last_error), "%s", net_client_error(c));
        net_client_close(c);
        return 1;
    }
    net_client_close(c);
    if ((*resp)->err) {
        if (!quiet)
            fprintf(stderr, "raftfs member: %s\n",
                    (*resp)->message ? (*resp)->message : strerror((*resp)->err));
        return 1;
    }
    return 0;
}

static void print_members(const Raftfs__ClientResponse *resp)
{
    if (!resp->status)
        return;
    for (size_t i = 0; i < resp->status->n_members; i++) {
        const Raftfs__MemberStatus *m = resp->status->members[i];
        printf("%llu %s %s\n", (unsigned long long)m->id, m->address ? m->address : "-",
               m->role ? m->role : "-");
    }
}

int cli_member(int argc, char **argv)
{
    static const struct option longopts[] = {{"endpoints", required_argument, NULL, 'e'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {"cacert", required_argument, NULL, CLI_OPT_CACERT},
                                             {"cert", required_argument, NULL, CLI_OPT_CERT},
                                             {"key", required_argument, NULL, CLI_OPT_KEY},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *endpoints = getenv("RAFTFS_ENDPOINTS");
    if (!endpoints || !*endpoints)
        endpoints = CLI_DEFAULT_ENDPOINTS;
    double timeout = 10;
    int c;
    char *end;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            endpoints = optarg;
            break;
        case 't':
            timeout = strtod(optarg, &end);
            if (*end || timeout <= 0 || timeout > 3600) {
                fprintf(stderr, "raftfs member: bad --timeout\n");
                return 2;
            }
            break;
        case CLI_OPT_CACERT:
        case CLI_OPT_CERT:
        case CLI_OPT_KEY:
            cli_tls_option(c, optarg);
            break;
        case 'h':
            fputs(cli_member_usage, stdout);
            return 0;
        default:
            fprintf(stderr, "raftfs member: unknown option\n%s", cli_member_usage);
            return 2;
        }
    }
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos < 1) {
        fputs(cli_member_usage, stderr);
        return 2;
    }
    static const struct {
        const char *name;
        Raftfs__MemberRequest__Op op;
        int args; /* after the verb: 0 none, 1 ID, 2 ID HOST:PORT */
    } verbs[] = {
        {"list", RAFTFS__MEMBER_REQUEST__OP__LIST, 0},
        {"add", RAFTFS__MEMBER_REQUEST__OP__ADD, 2},
        {"add-learner", RAFTFS__MEMBER_REQUEST__OP__ADD_LEARNER, 2},
        {"promote", RAFTFS__MEMBER_REQUEST__OP__PROMOTE, 1},
        {"remove", RAFTFS__MEMBER_REQUEST__OP__REMOVE, 1},
        {"transfer-leader", RAFTFS__MEMBER_REQUEST__OP__TRANSFER, 1},
    };
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(pos[0], verbs[i].name))
            continue;
        if (npos != 1 + verbs[i].args) {
            fprintf(stderr, "raftfs member %s: wrong arguments\n%s", pos[0], cli_member_usage);
            return 2;
        }
        uint64_t id = 0;
        if (verbs[i].args >= 1 && (cli_parse_size(pos[1], UINT64_MAX, &id) || id == 0)) {
            fprintf(stderr, "raftfs member %s: bad member id '%s'\n", pos[0], pos[1]);
            return 2;
        }
        Raftfs__ClientResponse *resp;
        int rc = member_call(endpoints, timeout, verbs[i].op, id,
                             verbs[i].args == 2 ? pos[2] : NULL, &resp, false);
        if (!rc)
            print_members(resp);
        net_client_response_free(resp);
        return rc;
    }
    fprintf(stderr, "raftfs member: unknown verb '%s'\n%s", pos[0], cli_member_usage);
    return 2;
}

int cli_member_join(const char *endpoints, uint64_t id, const char *listen, struct node_config *nc,
                    char *err, size_t err_len)
{
    Raftfs__ClientResponse *resp;
    /* Always in as a learner first: it catches up without weighing on the
     * quorum; cli_member_promote makes it a voter afterwards. */
    int rc = member_call(endpoints, 10, RAFTFS__MEMBER_REQUEST__OP__ADD_LEARNER, id, listen, &resp,
                         true);
    if (rc && !(resp && resp->err == EEXIST)) {
        snprintf(err, err_len, "cannot join through %s: %s", endpoints,
                 resp && resp->message ? resp->message
                 : resp                ? strerror(resp->err)
                 : last_error[0]       ? last_error
                                       : "no member answered");
        net_client_response_free(resp);
        return EPROTO;
    }
    if (!resp->has_cluster_id || !resp->status) {
        snprintf(err, err_len, "cannot join through %s: no cluster id or member list", endpoints);
        net_client_response_free(resp);
        return EPROTO;
    }
    nc->cluster_id = resp->cluster_id;
    nc->joining = true;
    nc->n_members = 0;
    for (size_t i = 0; i < resp->status->n_members && nc->n_members < NODE_MAX_MEMBERS; i++) {
        const Raftfs__MemberStatus *m = resp->status->members[i];
        /* Members of the configuration only: a directory entry of a member
         * that is no longer one may give another member's address an old
         * id (found by tests/chaos, seed 101). */
        if (!m->address || (m->role && !strcmp(m->role, "not a member")))
            continue;
        struct node_member *dst = &nc->members[nc->n_members++];
        dst->id = m->id;
        snprintf(dst->addr, sizeof(dst->addr), "%s", m->address);
    }
    net_client_response_free(resp);
    return 0;
}

int cli_member_promote(const char *endpoints, uint64_t id, int attempts)
{
    for (int i = 0; i < attempts; i++) {
        Raftfs__ClientResponse *resp;
        int rc =
            member_call(endpoints, 5, RAFTFS__MEMBER_REQUEST__OP__PROMOTE, id, NULL, &resp, true);
        int err = resp ? resp->err : 0;
        net_client_response_free(resp);
        if (!rc || err == ENOENT) /* done, or already a voter */
            return 0;
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
    }
    return ETIMEDOUT;
}
