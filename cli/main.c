/* main.c - the raftfs command: git-style subcommands.
 *
 * Exit status: 0 success, 1 a runtime failure (reported on stderr), 2 a
 * usage error. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: raftfs COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  mount MOUNTPOINT --data DIR [OPTIONS]  serve the tree in DIR at MOUNTPOINT\n"
    "  put PATH [VALUE]                       write a key (VALUE or standard input)\n"
    "  get PATH                               print a key's value\n"
    "  del PATH                               remove a key or an empty directory\n"
    "  mkdir PATH                             make a directory\n"
    "  ls [PATH]                              list a directory\n"
    "  status                                 the state of a member\n"
    "  watch PREFIX [--exec CMD]              print (or act on) changes as they commit\n"
    "  txn [--file FILE]                      compares and then/else changes, one command\n"
    "  export PREFIX [--format json|tar]      every key under PREFIX as of one revision\n"
    "  import [FILE] [--to PATH]              load an export (or a tar) as one txn\n"
    "  lease grant|keep-alive|revoke|ttl|list  keys that expire unless kept alive\n"
    "  member list|add|add-learner|promote|remove|transfer-leader ...\n"
    "                                         change or show the members\n"
    "  bench [--op put|get|sget] [--clients N] [--value-size B] [--duration S]\n"
    "                                         measure ops/s and latency (closed loop)\n"
    "  auth enable|disable|status|whoami      access control on the client protocol\n"
    "  user add|delete|passwd|grant-role|revoke-role|list|get ...\n"
    "  role add|delete|grant|revoke|list|get ...\n"
    "                                         its users and roles\n"
    "  check --data DIR [--json]              check a stopped member's data directory\n"
    "                                         and print a digest of its state\n"
    "  snapshot save|status|restore FILE ...  back up a running cluster, check a backup,\n"
    "                                         seed a new cluster's data directory from one\n"
    "  recover --force-new-cluster --data DIR  make a stopped member a cluster of one\n"
    "                                         (when a majority is lost for good)\n"
    "  version                                print the version and formats\n"
    "  help [COMMAND]                         show help\n"
    "\n"
    "Run 'raftfs help mount' for the mount options, 'raftfs help client' for the\n"
    "others (they talk to a member's --listen port: --endpoints HOST:PORT; they log\n"
    "in with --user NAME[:PASSWORD] and --password-file FILE: 'raftfs help auth').\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    /* Every command that talks to a member may log in (mount: to --join). */
    if (strcmp(cmd, "check") && strcmp(cmd, "help") && strcmp(cmd, "version")) {
        int rc = cli_auth_take_options(&argc, argv);
        if (rc)
            return rc;
    }
    if (!strcmp(cmd, "mount"))
        return cli_mount(argc - 1, argv + 1);
    if (!strcmp(cmd, "member"))
        return cli_member(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "watch"))
        return cli_watch(argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return cli_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "snapshot"))
        return cli_snapshot(argc - 1, argv + 1);
    if (!strcmp(cmd, "recover"))
        return cli_recover(argc - 1, argv + 1);
    if (!strcmp(cmd, "txn"))
        return cli_txn(argc - 1, argv + 1);
    if (!strcmp(cmd, "lease"))
        return cli_lease(argc - 1, argv + 1);
    if (!strcmp(cmd, "auth") || !strcmp(cmd, "user") || !strcmp(cmd, "role"))
        return cli_auth(argc - 1, argv + 1);
    if (!strcmp(cmd, "export") || !strcmp(cmd, "import"))
        return cli_export(argc - 1, argv + 1);
    int rc = cli_client(argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        cli_version();
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2 && !strcmp(argv[2], "mount")) {
            fputs(cli_mount_usage, stdout);
            return 0;
        }
        if (argc > 2 && !strcmp(argv[2], "bench")) {
            fputs(cli_bench_usage, stdout);
            return 0;
        }
        if (argc > 2 && !strcmp(argv[2], "watch")) {
            fputs(cli_watch_usage, stdout);
            return 0;
        }
        if (argc > 2 && (!strcmp(argv[2], "export") || !strcmp(argv[2], "import"))) {
            fputs(cli_export_usage, stdout);
            return 0;
        }
        if (argc > 2 && !strcmp(argv[2], "lease")) {
            fputs(cli_lease_usage, stdout);
            return 0;
        }
        if (argc > 2 && !strcmp(argv[2], "txn")) {
            fputs(cli_txn_usage, stdout);
            return 0;
        }
        if (argc > 2 && !strcmp(argv[2], "check")) {
            fputs(cli_check_usage, stdout);
            return 0;
        }
        if (argc > 2 &&
            (!strcmp(argv[2], "auth") || !strcmp(argv[2], "user") || !strcmp(argv[2], "role"))) {
            fputs(cli_auth_usage, stdout);
            return 0;
        }
        if (argc > 2 && !strcmp(argv[2], "snapshot")) {
            fputs(cli_snapshot_usage, stdout);
            return 0;
        }
        if (argc > 2 && !strcmp(argv[2], "recover")) {
            fputs(cli_recover_usage, stdout);
            return 0;
        }
        if (argc > 2 && !strcmp(argv[2], "member")) {
            fputs(cli_member_usage, stdout);
            return 0;
        }
        if (argc > 2 && (!strcmp(argv[2], "client") || cli_client_known(argv[2]))) {
            fputs(cli_client_usage, stdout);
            return 0;
        }
        if (argc > 2) {
            fprintf(stderr, "raftfs: no help for '%s'\n", argv[2]);
            return 2;
        }
        fputs(usage_text, stdout);
        return 0;
    }
    fprintf(stderr, "raftfs: unknown command '%s'\n\n%s", cmd, usage_text);
    return 2;
}
