/* cli.h - the subcommands of the raftfs binary. Each returns the process's
 * exit status (0, 1 runtime failure, 2 usage error). */
#ifndef RAFTFS_CLI_H
#define RAFTFS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The members of examples/local-cluster.sh. */
#define CLI_DEFAULT_ENDPOINTS "127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403"

struct node_config;

extern const char cli_mount_usage[];
extern const char cli_member_usage[];

/* raftfs member ... (argv[0] is "member"). */
int cli_member(int argc, char **argv);
/* Joins through endpoints as learner id at listen: fills nc's cluster id,
 * members and joining flag. EPROTO with a reason in err. */
int cli_member_join(const char *endpoints, uint64_t id, const char *listen, struct node_config *nc,
                    char *err, size_t err_len);
/* Asks for id's promotion until it is a voter (attempts x 200 ms). */
int cli_member_promote(const char *endpoints, uint64_t id, int attempts);
extern const char cli_client_usage[];

/* put, get, del, mkdir, ls, status (argv[0] is the command); -1 if argv[0]
 * is none of them. */
int cli_client(int argc, char **argv);
bool cli_client_known(const char *cmd);

/* raftfs watch (argv[0] is "watch"). */
extern const char cli_watch_usage[];
int cli_watch(int argc, char **argv);

/* raftfs export and import (argv[0] is "export" or "import"). */
extern const char cli_export_usage[];
int cli_export(int argc, char **argv);

/* raftfs lease (argv[0] is "lease"). */
extern const char cli_lease_usage[];
int cli_lease(int argc, char **argv);
/* A lease id: 1 to 16 hex digits (0x allowed), not 0. EINVAL. */
int cli_parse_lease_id(const char *s, uint64_t *out);

/* raftfs txn (argv[0] is "txn"). */
extern const char cli_txn_usage[];
int cli_txn(int argc, char **argv);

/* Sends cmd (any store command, encoded as the log holds it) as a write
 * through c: net_client_call's result and *resp. EINVAL/E2BIG: cmd does
 * not encode. */
struct net_client;
struct store_cmd;
struct Raftfs__ClientResponse;
int cli_write_cmd(struct net_client *c, const struct store_cmd *cmd,
                  struct Raftfs__ClientResponse **resp);

/* raftfs bench (argv[0] is "bench"). */
extern const char cli_bench_usage[];
int cli_bench(int argc, char **argv);

/* raftfs check (argv[0] is "check"): the offline check of a data directory. */
extern const char cli_check_usage[];
int cli_check(int argc, char **argv);

/* raftfs auth, user and role (argv[0] is which). */
extern const char cli_auth_usage[];
int cli_auth(int argc, char **argv);
/* Takes --user NAME[:PASSWORD] and --password-file FILE out of argv (up to
 * a "--"), after $RAFTFS_USER and $RAFTFS_PASSWORD: the login of every
 * client command. 0, or an exit status. */
int cli_auth_take_options(int *argc, char **argv);
/* Sets cfg's login from them (NULL: anonymous). */
struct net_client_config;
void cli_auth_config(struct net_client_config *cfg);
/* --peers ID=HOST:PORT,... into members (NODE_MAX_MEMBERS at most);
 * non-zero with a reason in err (a usage error). cli_peers.c. */
struct node_member;
int cli_parse_peers(const char *peers, struct node_member *members, size_t *n, char *err,
                    size_t err_len);
/* The cluster id of a cluster founded by members (none: a member alone)
 * with token (NULL: none), as `raftfs mount` derives it. */
uint64_t cli_cluster_id(const struct node_member *members, size_t n, const char *token);

/* raftfs snapshot save|status|restore (argv[0] is "snapshot") and raftfs
 * recover (argv[0] is "recover"). */
extern const char cli_snapshot_usage[];
int cli_snapshot(int argc, char **argv);
/* raftfs snapshot restore FILE --data DIR --id N --peers ... (cli_restore.c):
 * the exit status. */
struct cli_restore_args {
    const char *file, *data, *peers, *token;
    uint64_t id;
};
int cli_snapshot_restore(const struct cli_restore_args *a);
extern const char cli_recover_usage[];
int cli_recover(int argc, char **argv);

/* Rebuilds the replicated state of stopped member dir (checked: r) from
 * its snapshot image and log up to r->applied, in a scratch directory
 * under $TMPDIR, and gives its digest. With the reason in err: ENOENT,
 * there is nothing to rebuild from; EAGAIN, the scratch directory could
 * not be made or filled (room, memory); other errnos: the rebuild failed
 * on what dir holds.
 * cli_check_rebuild.c. */
struct store_check_report;
int cli_check_rebuild(const char *dir, const struct store_check_report *r, uint64_t *digest,
                      char *err, size_t err_len);

/* argv[0] is "mount". */
int cli_mount(int argc, char **argv);
void cli_version(void);

/* The members to talk to: $RAFTFS_ENDPOINTS, else CLI_DEFAULT_ENDPOINTS. */
const char *cli_endpoints(void);

/* TLS for the client commands, as etcdctl names it: --cacert FILE (the CA
 * that signs the members' certificates), --cert FILE and --key FILE (a
 * client certificate, for members that want one), else $RAFTFS_CACERT,
 * $RAFTFS_CERT and $RAFTFS_KEY. TLS is used when a CA or a certificate is
 * given. One set per process, as the endpoints. The options' getopt
 * values, for each command's table, and their help lines: */
enum { CLI_OPT_CACERT = 0x7f00, CLI_OPT_CERT, CLI_OPT_KEY };
#define CLI_TLS_HELP                                                                               \
    "  --cacert FILE                TLS: the CA that signs the members' certificates\n"            \
    "                               (default $RAFTFS_CACERT)\n"                                    \
    "  --cert FILE, --key FILE      TLS: a client certificate and its key, for members\n"          \
    "                               that want one (default $RAFTFS_CERT, $RAFTFS_KEY)\n"
/* Takes one of the CLI_OPT_* options (opt) and its file. */
void cli_tls_option(int opt, const char *file);
/* Sets the TLS files given so far, for what cli_tls_config returns (the
 * mount: its own certificate, for --join and for promoting itself). */
void cli_tls_set(const char *cacert, const char *cert, const char *key);
/* Fills cfg->tls from the options, else the environment. */
struct net_client_config;
void cli_tls_config(struct net_client_config *cfg);
/* A client of endpoints, with this process's login and TLS files (the
 * options above): NULL after printing "raftfs WHAT: why" (bad endpoints or
 * files: a usage error for most commands). */
struct net_client *cli_connect(const char *what, const char *endpoints, double timeout_s);
/* A --timeout in seconds, more than 0 and at most 3600. 0 or EINVAL. */
int cli_parse_timeout(const char *s, double *out);

/* Parses "123", "64K", "1M", "4G", "1T" (powers of 1024) into *out, at most
 * max. 0 or EINVAL (junk, negative, overflow, above max). */
int cli_parse_size(const char *s, uint64_t max, uint64_t *out);

#endif
