/* cli_check.c - `raftfs check`: the offline consistency check of a stopped
 * member's data directory, and the digest of its replicated state
 * (store_check; what it checks: docs/store-format.md, "Check and digest"),
 * then the tree compared with the state rebuilt from the directory's
 * snapshot image and log (cli_check_rebuild.c).
 *
 * Output: one line per problem, "raftfs check: DIR: PROBLEM (where)", or,
 * when there is none, one summary line ending with the digest; with --json
 * one object instead (the same fields, "ok", and "problems" when not ok).
 * Exit status: 0 no problem, 1 problems or the directory cannot be checked,
 * 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli.h"
#include "cli_json.h"
#include "store.h"

const char cli_check_usage[] =
    "usage: raftfs check --data DIR [--json]\n"
    "\n"
    "Checks the data directory of a stopped member, without changing it: the\n"
    "tree (every entry reached once from the root, its records agree), the Raft\n"
    "log (checksums, no gaps, terms), the snapshot image, sessions and the member\n"
    "directory. Prints each problem on a line, or one 'ok' line with a digest of\n"
    "the replicated state: members that applied the same entries print the same\n"
    "digest. A store left open (its server killed, or the machine down) is noted,\n"
    "with whether the next start rebuilds its tree. A directory in use by a\n"
    "running server is refused.\n"
    "\n"
    "Then, as the tree's pages carry no checksum, the state is rebuilt from the\n"
    "snapshot image and the log (which carry CRCs) in a scratch directory under\n"
    "$TMPDIR (room for another copy of the tree) and compared by digest: a\n"
    "flipped byte in a value or an attribute is found there.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR   the data directory (required)\n"
    "  --json           print one JSON object instead\n"
    "  --no-rebuild     skip the rebuild (faster; damage to values goes unseen)\n"
    "\n"
    "Exit status: 0 no problem, 1 problems found or DIR cannot be checked (not\n"
    "a raftfs data directory, in use), 2 on a usage error.\n";

static int usage_error(const char *msg)
{
    fprintf(stderr, "raftfs check: %s\n\n%s", msg, cli_check_usage);
    return 2;
}

/* The problems, kept for the JSON output. */
struct problems {
    const char *dir;
    bool json;
    char **lines;
    size_t n, cap;
    bool lost; /* out of memory: some were not kept */
};

static void on_problem(void *ctx, const char *msg)
{
    struct problems *p = ctx;
    if (!p->json) {
        printf("raftfs check: %s: %s\n", p->dir, msg);
        return;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        char **lines = realloc(p->lines, cap * sizeof(*lines));
        if (!lines) {
            p->lost = true;
            return;
        }
        p->lines = lines;
        p->cap = cap;
    }
    char *copy = strdup(msg);
    if (!copy) {
        p->lost = true;
        return;
    }
    p->lines[p->n++] = copy;
}

/* s as a JSON string (messages are ASCII: store_check escapes names). */
static void json_string(const char *s)
{
    cli_json_put_string(stdout, (const uint8_t *)s, strlen(s));
}

static void print_json(const char *dir, int rc, const char *err, const struct store_check_report *r,
                       const struct problems *p, bool compared, const char *note)
{
    bool ok = !rc && !r->problems;
    printf("{\"dir\": ");
    json_string(dir);
    printf(", \"ok\": %s", ok ? "true" : "false");
    if (!rc)
        printf(", \"entries\": %llu, \"files\": %llu, \"dirs\": %llu, \"revision\": %llu, "
               "\"applied\": %llu, \"log_first\": %llu, \"log_last\": %llu, \"log_term\": %llu, "
               "\"digest\": \"%016llx\"",
               (unsigned long long)r->entries, (unsigned long long)r->files,
               (unsigned long long)r->dirs, (unsigned long long)r->revision,
               (unsigned long long)r->applied, (unsigned long long)r->log_first,
               (unsigned long long)r->log_last, (unsigned long long)r->log_term,
               (unsigned long long)r->digest);
    if (!rc)
        printf(", \"rebuilt\": %s", compared ? "true" : "false");
    if (!rc && *note) {
        printf(", \"note\": ");
        json_string(note);
    }
    if (!rc && r->open_boot[0]) {
        printf(", \"open_boot\": ");
        json_string(r->open_boot);
        printf(", \"rebuild_at_start\": %s", r->rebuild_at_start ? "true" : "false");
    }
    if (!ok) {
        printf(", \"problem_count\": %llu, \"problems\": [",
               (unsigned long long)(rc ? 1 : r->problems));
        if (rc) {
            json_string(err);
        } else {
            for (size_t i = 0; i < p->n; i++) {
                if (i)
                    printf(", ");
                json_string(p->lines[i]);
            }
        }
        printf("]");
    }
    printf("}\n");
}

/* A store left open (DIR/open-boot): what the next start will do. */
static void print_note(const char *dir, const struct store_check_report *r)
{
    if (!r->open_boot[0])
        return;
    if (!strcmp(r->open_boot, "sync-failed"))
        printf("raftfs check: %s: note: a sync of the tree failed: the next start rebuilds it "
               "from the snapshot image and the log (the tree checked here may be damaged)\n",
               dir);
    else if (r->rebuild_at_start)
        printf("raftfs check: %s: note: left open by another boot (%s): the next start "
               "rebuilds the tree from the snapshot image and the log (the tree checked here "
               "may be damaged)\n",
               dir, r->open_boot);
    else
        printf("raftfs check: %s: note: left open by this boot (the server was killed, not "
               "stopped): the next start takes the tree as it is\n",
               dir);
}

int cli_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"no-rebuild", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    bool json = false, rebuild = true;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'n':
            rebuild = false;
            break;
        case 'h':
            fputs(cli_check_usage, stdout);
            return 0;
        default:
            return usage_error(optopt ? "unknown or incomplete option" : "unknown option");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument");
    if (!dir || !*dir)
        return usage_error("missing --data");

    struct problems p = {.dir = dir, .json = json};
    struct store_check_report r;
    char err[512];
    /* Held shared across both steps: no server starts in between (one
     * that runs makes store_check say so). */
    char lock[4200];
    snprintf(lock, sizeof(lock), "%s/raftfs.lock", dir);
    int lfd = open(lock, O_RDONLY | O_CLOEXEC);
    if (lfd >= 0 && flock(lfd, LOCK_SH | LOCK_NB)) {
        close(lfd);
        lfd = -1;
    }
    int rc = store_check(dir, &r, on_problem, &p, err, sizeof(err));
    char note[600] = "";
    bool compared = false; /* the tree was compared with the rebuilt state */
    if (!rc && !r.problems && rebuild && !r.rebuild_at_start) {
        uint64_t want;
        char why[512];
        int rrc = cli_check_rebuild(dir, &r, &want, why, sizeof(why));
        compared = rrc == 0;
        if (rrc == ENOENT || rrc == EAGAIN) {
            snprintf(note, sizeof(note), "not compared with its image and log: %s", why);
        } else if (rrc) {
            char msg[600];
            snprintf(msg, sizeof(msg),
                     "the state cannot be rebuilt from the snapshot image and the log: %s", why);
            on_problem(&p, msg);
            r.problems++;
        } else if (want != r.digest) {
            char msg[300];
            snprintf(msg, sizeof(msg),
                     "the tree is not the state its snapshot image and log give (digest %016llx, "
                     "rebuilt %016llx): damaged (store/data.mdb)",
                     (unsigned long long)r.digest, (unsigned long long)want);
            on_problem(&p, msg);
            r.problems++;
        }
    }
    if (lfd >= 0)
        close(lfd);
    if (!json && !rc && *note)
        printf("raftfs check: %s: note: %s\n", dir, note);
    if (json) {
        print_json(dir, rc, err, &r, &p, compared, note);
    } else if (rc) {
        fprintf(stderr, "raftfs check: %s: %s\n", dir, err);
    } else if (print_note(dir, &r), r.problems) {
        if (r.problems > STORE_CHECK_MAX_REPORTED)
            printf("raftfs check: %s: and %llu more problems\n", dir,
                   (unsigned long long)(r.problems - STORE_CHECK_MAX_REPORTED));
    } else {
        printf("raftfs check: %s: ok: %llu entries (%llu files, %llu dirs), revision %llu, "
               "applied %llu, log %llu..%llu (term %llu), digest %016llx\n",
               dir, (unsigned long long)r.entries, (unsigned long long)r.files,
               (unsigned long long)r.dirs, (unsigned long long)r.revision,
               (unsigned long long)r.applied, (unsigned long long)r.log_first,
               (unsigned long long)r.log_last, (unsigned long long)r.log_term,
               (unsigned long long)r.digest);
    }
    if (json && (rc || r.problems))
        fprintf(stderr, "raftfs check: %s: %s\n", dir,
                rc ? err : "problems found (see \"problems\")");
    for (size_t i = 0; i < p.n; i++)
        free(p.lines[i]);
    free(p.lines);
    if (p.lost)
        fprintf(stderr, "raftfs check: out of memory: some problems are not listed\n");
    return rc || r.problems ? 1 : 0;
}
