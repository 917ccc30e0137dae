/* cli_recover.c - `raftfs recover --force-new-cluster`: a member whose
 * cluster lost its majority for good becomes a cluster of one, keeping its
 * state and its log (etcd's --force-new-cluster).
 *
 * Design notes
 * 1. The member is stopped: store_open takes the data directory's lock, so
 *    a directory in use is refused (EBUSY) and no server starts meanwhile.
 * 2. Nothing is removed. A configuration entry naming this member as the
 *    only voter is appended after the last entry of its log, in a term
 *    above every term it has seen (the hard state's and the last entry's),
 *    with a hard state of that term, a vote for itself and a commit index
 *    at that entry, in one synced log write. Raft takes the latest
 *    configuration in the log (raft/membership.c) and the commit index
 *    from the hard state, so at its next start the member is the only
 *    voter, every entry of its log is committed and is applied, and it
 *    elects itself.
 * 3. So every entry this member holds is kept and applied, also those it
 *    never learnt were committed: their writes were never acknowledged
 *    (or were, if the lost members had committed them), so applying them
 *    is the outcome a client that timed out had to expect. Entries
 *    committed only by the lost members, which this member never
 *    received, are gone.
 * 4. The member keeps its id, its cluster id and its data directory's
 *    incarnation: new members join it with `raftfs member add` / --join.
 *    Once it leads, it deletes the lost members from the replicated member
 *    directory itself, as for any member no longer in the configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_backup.h"
#include "raft.h"
#include "store.h"
#include "store_log.h"

const char cli_recover_usage[] =
    "usage: raftfs recover --force-new-cluster --data DIR\n"
    "\n"
    "For a cluster that lost its majority for good (members' machines or data\n"
    "directories gone): makes the stopped member of DIR the only voter of its\n"
    "cluster, keeping its state and its whole log, so that it starts alone\n"
    "('raftfs mount MNT --data DIR --id N') and serves; add members again with\n"
    "'raftfs member add' / 'raftfs mount --join'.\n"
    "\n"
    "DATA LOSS: writes committed only on the lost members are gone. Every entry\n"
    "in this member's log is kept and applied, also entries that were never\n"
    "committed (a write that timed out may appear). Never start the lost\n"
    "members again on their old data directories: they would form a second\n"
    "cluster with the same id.\n"
    "\n"
    "DIR must not be in use by a running member.\n";

static int rusage(const char *msg)
{
    fprintf(stderr, "raftfs recover: %s\nRun 'raftfs help recover' for usage.\n", msg);
    return 2;
}

static int force_new_cluster(const char *dir)
{
    char path[4200], err[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/store", dir);
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "raftfs recover: %s: not a raftfs data directory (no store/)\n", dir);
        return 1;
    }
    struct store_config cfg = {0};
    cfg.unsynced_apply = true; /* as the node opens it: a rebuild is done as at its start */
    struct store *s;
    int rc = store_open(&s, dir, &cfg, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "raftfs recover: %s\n", err);
        return 1;
    }
    uint64_t cluster, member, incarnation, first, last, last_term = 0;
    struct store_hard_state hs;
    struct store_stats ss;
    if ((rc = store_identity_get(s, &cluster, &member, &incarnation)) || (!cluster && !member)) {
        cli_seterr(err, sizeof(err), "cannot read its identity: %s",
                   rc ? strerror(rc) : "none recorded (never started)");
        goto fail;
    }
    if ((rc = store_get_stats(s, &ss)) || (rc = store_log_hard_state(s, &hs)) ||
        (rc = store_log_bounds(s, &first, &last)) ||
        (last && (rc = store_log_term(s, last, &last_term)))) {
        cli_seterr(err, sizeof(err), "cannot read the Raft log: %s", strerror(rc));
        goto fail;
    }
    struct raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    conf.voters[0] = member;
    conf.n_voters = 1;
    uint8_t buf[4 + 8 * 3 * RAFT_CONF_MAX];
    raft_conf_encode(&conf, buf);
    uint64_t term = (hs.term > last_term ? hs.term : last_term) + 1;
    struct store_log_entry e = {.index = last + 1,
                                .term = term,
                                .type = RAFT_ENTRY_CONF,
                                .data = buf,
                                .len = raft_conf_encoded_size(&conf)};
    struct store_hard_state nhs = {.term = term, .vote = member, .commit = last + 1};
    fprintf(stderr,
            "raftfs recover: WARNING: forcing a new cluster: member %llu of %s becomes the only "
            "voter of cluster %016llx.\n"
            "raftfs recover: WARNING: writes committed only on the other members are LOST; the "
            "%llu entries of this member's log after its applied index %llu are kept and will "
            "be applied, also any that were never committed.\n"
            "raftfs recover: WARNING: never start the old members again on their old data "
            "directories; add new ones with 'raftfs member add' / --join.\n",
            (unsigned long long)member, dir, (unsigned long long)cluster,
            (unsigned long long)(last > ss.applied_index ? last - ss.applied_index : 0),
            (unsigned long long)ss.applied_index);
    if ((rc = store_log_persist(s, &nhs, &e, 1, true))) {
        cli_seterr(err, sizeof(err), "cannot write the log: %s", strerror(rc));
        goto fail;
    }
    store_close(s);
    printf("raftfs recover: %s: member %llu is now the only voter (configuration entry %llu, "
           "term %llu); start it with: raftfs mount MOUNTPOINT --data %s --id %llu\n",
           dir, (unsigned long long)member, (unsigned long long)(last + 1),
           (unsigned long long)term, dir, (unsigned long long)member);
    return 0;
fail:
    store_close(s);
    fprintf(stderr, "raftfs recover: %s: %s (nothing changed)\n", dir, err);
    return 1;
}

int cli_recover(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"force-new-cluster", no_argument, NULL, 'f'},
        {"data", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    bool force = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            force = true;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'h':
            fputs(cli_recover_usage, stdout);
            return 0;
        default:
            return rusage(optopt ? "unknown or incomplete option" : "unknown option");
        }
    }
    if (optind < argc)
        return rusage("unexpected argument");
    if (!force)
        return rusage("say --force-new-cluster (the only recovery there is)");
    if (!dir || !*dir)
        return rusage("missing --data");
    return force_new_cluster(dir);
}
