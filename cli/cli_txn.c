/* cli_txn.c - `raftfs txn`: several changes as one command, chosen by
 * compares (etcd's Txn), read as lines from standard input or a file:
 *
 *   if value /app/mode == "blue"
 *   if version /app/lock == 0
 *   then put /app/mode "green"
 *   then del /app/old
 *   else put /app/conflict "yes"
 *
 * The txn is parsed whole before anything is sent: a line that does not
 * parse is reported with its number and nothing is sent. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "net_client.h"
#include "store.h"

const char cli_txn_usage[] =
    "usage: raftfs txn [--file FILE] [--endpoints HOST:PORT,...] [--timeout SECONDS]\n"
    "\n"
    "Reads a txn from FILE (default standard input), one line each:\n"
    "  if TARGET PATH OP ARG   a compare; all must hold for the `then` lines to run\n"
    "      TARGET: value | version | mod | create   (mod: mod_revision,\n"
    "              create: create_revision; a missing key has version 0)\n"
    "      OP: == != > <      ARG: a number, or for value a word or \"quoted\" text\n"
    "  if exists PATH          the same as: if version PATH > 0\n"
    "  if missing PATH         the same as: if version PATH == 0\n"
    "  then CHANGE             applied, in order, if every compare holds\n"
    "  else CHANGE             applied, in order, if one does not\n"
    "      CHANGE: put PATH VALUE | append PATH VALUE | del PATH | mkdir PATH\n"
    "              | rmdir PATH | mv FROM TO\n"
    "A word starting with # starts a comment (quote a value that starts with #).\n"
    "In \"quoted\" text, \\n \\t \\\" \\\\ and \\xHH are escapes.\n"
    "\n"
    "The branch is all or nothing: if one change fails, none is applied. The\n"
    "whole txn (at most 4096 lines) must fit in one command (about the largest\n"
    "value, 1 MiB by default).\n"
    "\n"
    "Prints SUCCESS or FAILURE (which branch ran) and the revision. Exit status:\n"
    "0 the compares held and `then` was applied; 3 they did not and `else` was\n"
    "applied; 1 a change failed (nothing applied) or no member answered; 2 usage.\n"
    "TLS options (for members that use TLS):\n" CLI_TLS_HELP;

/* A parsed txn: its compares and commands point into `text`. */
struct txn_text {
    char *text;
    struct store_compare *cmp;
    size_t n_cmp;
    struct store_cmd *ops; /* then commands first, then else commands */
    size_t n_then, n_else;
    struct store_cmd *els;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Takes the next token of *p (a word, or "quoted" text decoded in place).
 * Returns false at the end of the line; *bad on a malformed token. */
static bool token(char **p, const char **tok, size_t *len, bool *bad)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s || *s == '#')
        return false; /* the end, or a comment to the end of the line */
    if (*s != '"') {
        char *start = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        *tok = start;
        *len = (size_t)(s - start);
        if (*s)
            *s++ = 0;
        *p = s;
        return true;
    }
    char *in = s + 1, *out = s + 1;
    *tok = out;
    for (;;) {
        char c = *in++;
        if (!c) {
            *bad = true; /* no closing quote */
            return false;
        }
        if (c == '"')
            break;
        if (c == '\\') {
            char e = *in++;
            int h1, h2;
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case '"':
            case '\\':
                c = e;
                break;
            case 'x':
                h1 = hexval(in[0]);
                h2 = h1 < 0 ? -1 : hexval(in[1]);
                if (h2 < 0) {
                    *bad = true;
                    return false;
                }
                c = (char)(h1 * 16 + h2);
                in += 2;
                break;
            default:
                *bad = true;
                return false;
            }
        }
        *out++ = c;
    }
    *len = (size_t)(out - *tok);
    if (*in && *in != ' ' && *in != '\t') {
        *bad = true; /* text glued to the closing quote */
        return false;
    }
    *p = in;
    return true;
}

/* Reads a whole file (or standard input for NULL). */
static int slurp(const char *file, char **out)
{
    FILE *f = file ? fopen(file, "r") : stdin;
    if (!f)
        return errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : ENOMEM;
    while (!rc) {
        if (n + 1 >= cap) {
            char *q = cap > (64u << 20) ? NULL : realloc(buf, cap * 2);
            if (!q) {
                rc = cap > (64u << 20) ? EFBIG : ENOMEM;
                break;
            }
            buf = q;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f))
                rc = EIO;
            break;
        }
    }
    if (file)
        fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        free(buf);
        return EINVAL;
    }
    *out = buf;
    return 0;
}

static int parse_change(char **p, struct store_cmd *c, const char **why)
{
    const char *verb, *a1, *a2;
    size_t vl, l1, l2;
    bool bad = false;
    if (!token(p, &verb, &vl, &bad))
        return *why = "a change is missing", EINVAL;
    if (!token(p, &a1, &l1, &bad))
        return *why = bad ? "malformed quoted text" : "PATH is missing", EINVAL;
    memset(c, 0, sizeof(*c));
    c->path = a1;
    c->path_len = l1;
    c->value = "";
    c->uid = getuid();
    c->gid = getgid();
    bool two = false;
    if (!strcmp(verb, "put") || !strcmp(verb, "append")) {
        c->op = verb[0] == 'p' ? STORE_OP_PUT : STORE_OP_APPEND;
        c->mode = 0644;
        two = true;
    } else if (!strcmp(verb, "mv")) {
        c->op = STORE_OP_RENAME;
        two = true;
    } else if (!strcmp(verb, "del")) {
        c->op = STORE_OP_DELETE;
    } else if (!strcmp(verb, "mkdir")) {
        c->op = STORE_OP_MKDIR;
        c->mode = 0755;
    } else if (!strcmp(verb, "rmdir")) {
        c->op = STORE_OP_RMDIR;
    } else {
        return *why = "unknown change (put, append, del, mkdir, rmdir, mv)", EINVAL;
    }
    if (two) {
        if (!token(p, &a2, &l2, &bad))
            return *why = bad                        ? "malformed quoted text"
                          : c->op == STORE_OP_RENAME ? "TO is missing"
                                                     : "VALUE is missing",
                   EINVAL;
        if (c->op == STORE_OP_RENAME) {
            c->path2 = a2;
            c->path2_len = l2;
        } else {
            c->value = a2;
            c->value_len = l2;
        }
    }
    if (a1[0] != '/' || (c->path2 && c->path2[0] != '/'))
        return *why = "paths must be absolute (start with /)", EINVAL;
    if (token(p, &a1, &l1, &bad) || bad)
        return *why = bad ? "malformed quoted text" : "too many words", EINVAL;
    return 0;
}

static int parse_compare(char **p, struct store_compare *k, const char **why)
{
    const char *target, *path, *op, *arg;
    size_t tl, pl, ol, al;
    bool bad = false;
    memset(k, 0, sizeof(*k));
    if (!token(p, &target, &tl, &bad) || !token(p, &path, &pl, &bad))
        return *why = bad ? "malformed quoted text" : "expected: if TARGET PATH OP ARG", EINVAL;
    k->path = path;
    k->path_len = pl;
    if (path[0] != '/')
        return *why = "paths must be absolute (start with /)", EINVAL;
    if (!strcmp(target, "exists") || !strcmp(target, "missing")) {
        k->target = STORE_CMP_VERSION;
        k->result = target[0] == 'e' ? STORE_CMP_GREATER : STORE_CMP_EQUAL;
        k->number = 0;
    } else {
        if (!strcmp(target, "value"))
            k->target = STORE_CMP_VALUE;
        else if (!strcmp(target, "version"))
            k->target = STORE_CMP_VERSION;
        else if (!strcmp(target, "mod") || !strcmp(target, "mod_revision"))
            k->target = STORE_CMP_MOD_REVISION;
        else if (!strcmp(target, "create") || !strcmp(target, "create_revision"))
            k->target = STORE_CMP_CREATE_REVISION;
        else
            return *why = "unknown TARGET (value, version, mod, create, exists, missing)", EINVAL;
        if (!token(p, &op, &ol, &bad) || !token(p, &arg, &al, &bad))
            return *why = bad ? "malformed quoted text" : "expected: if TARGET PATH OP ARG", EINVAL;
        if (!strcmp(op, "==") || !strcmp(op, "="))
            k->result = STORE_CMP_EQUAL;
        else if (!strcmp(op, "!="))
            k->result = STORE_CMP_NOT_EQUAL;
        else if (!strcmp(op, ">"))
            k->result = STORE_CMP_GREATER;
        else if (!strcmp(op, "<"))
            k->result = STORE_CMP_LESS;
        else
            return *why = "unknown OP (==, !=, >, <)", EINVAL;
        if (k->target == STORE_CMP_VALUE) {
            k->value = arg;
            k->value_len = al;
        } else {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(arg, &end, 10);
            if (errno || *end || !al || arg[0] == '-')
                return *why = "ARG must be a number", EINVAL;
            k->number = v;
        }
    }
    if (token(p, &arg, &al, &bad) || bad)
        return *why = bad ? "malformed quoted text" : "too many words", EINVAL;
    return 0;
}

static void txn_text_free(struct txn_text *t)
{
    free(t->text);
    free(t->cmp);
    free(t->ops);
    memset(t, 0, sizeof(*t));
}

/* Parses text (taken over) into t; on a bad line prints it and returns 2. */
static int parse_txn(char *text, const char *name, struct txn_text *t)
{
    memset(t, 0, sizeof(*t));
    t->text = text;
    size_t lines = 1;
    for (const char *q = text; *q; q++)
        lines += *q == '\n';
    t->cmp = calloc(lines, sizeof(*t->cmp));
    struct store_cmd *then = calloc(lines, sizeof(*then));
    t->els = calloc(lines, sizeof(*t->els));
    if (!t->cmp || !then || !t->els) {
        free(then);
        free(t->els);
        t->els = NULL;
        fprintf(stderr, "raftfs txn: out of memory\n");
        return 1;
    }
    size_t lineno = 0;
    char *p = text;
    int rc = 0;
    while (p && *p && !rc) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        lineno++;
        char *line = p;
        p = nl ? nl + 1 : NULL;
        const char *kw, *why = "malformed quoted text";
        size_t kl;
        bool bad = false;
        char *q = line;
        if (!token(&q, &kw, &kl, &bad)) {
            if (!bad)
                continue; /* blank, or a comment */
            rc = EINVAL;
        } else if (!strcmp(kw, "if")) {
            if (t->n_then || t->n_else) {
                why = "compares come before the changes";
                rc = EINVAL;
            } else {
                rc = parse_compare(&q, &t->cmp[t->n_cmp++], &why);
            }
        } else if (!strcmp(kw, "then")) {
            if (t->n_else) {
                why = "`then` changes come before `else` ones";
                rc = EINVAL;
            } else {
                rc = parse_change(&q, &then[t->n_then++], &why);
            }
        } else if (!strcmp(kw, "else")) {
            rc = parse_change(&q, &t->els[t->n_else++], &why);
        } else {
            why = "a line starts with if, then or else";
            rc = EINVAL;
        }
        if (rc)
            fprintf(stderr, "raftfs txn: %s:%zu: %s\n", name, lineno, why);
    }
    if (!rc && t->n_cmp + t->n_then + t->n_else > STORE_MAX_TXN_OPS) {
        fprintf(stderr, "raftfs txn: %s: more than %d compares and changes\n", name,
                STORE_MAX_TXN_OPS);
        rc = EINVAL;
    }
    if (!rc && !t->n_then && !t->n_else) {
        fprintf(stderr, "raftfs txn: %s: no changes (then/else lines)\n", name);
        rc = EINVAL;
    }
    /* One array: then commands, else commands. */
    t->ops = then;
    if (!rc) {
        memcpy(then + t->n_then, t->els, t->n_else * sizeof(*then));
        free(t->els);
        t->els = then + t->n_then;
    } else {
        free(t->els);
        t->els = NULL;
    }
    return rc ? 2 : 0;
}

int cli_write_cmd(struct net_client *c, const struct store_cmd *cmd,
                  struct Raftfs__ClientResponse **resp)
{
    void *buf;
    size_t len;
    int rc = store_cmd_encode(cmd, &buf, &len);
    if (rc)
        return rc;
    Raftfs__Command *m = raftfs__command__unpack(NULL, len, buf);
    free(buf);
    if (!m)
        return ENOMEM;
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = m;
    rc = net_client_call(c, &req, resp);
    raftfs__command__free_unpacked(m, NULL);
    return rc;
}

static const char *op_word(enum store_op op)
{
    switch (op) {
    case STORE_OP_PUT:
        return "put";
    case STORE_OP_APPEND:
        return "append";
    case STORE_OP_DELETE:
        return "del";
    case STORE_OP_MKDIR:
        return "mkdir";
    case STORE_OP_RMDIR:
        return "rmdir";
    case STORE_OP_RENAME:
        return "mv";
    default:
        return "?";
    }
}

int cli_txn(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},
        {"endpoints", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"cacert", required_argument, NULL, CLI_OPT_CACERT},
        {"cert", required_argument, NULL, CLI_OPT_CERT},
        {"key", required_argument, NULL, CLI_OPT_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *endpoints = cli_endpoints();
    double timeout_s = 5;
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (o) {
        case 'f':
            file = optarg;
            break;
        case 'e':
            endpoints = optarg;
            break;
        case 't':
            if (cli_parse_timeout(optarg, &timeout_s)) {
                fprintf(stderr, "raftfs txn: bad --timeout (seconds, up to 3600)\n");
                return 2;
            }
            break;
        case CLI_OPT_CACERT:
        case CLI_OPT_CERT:
        case CLI_OPT_KEY:
            cli_tls_option(o, optarg);
            break;
        case 'h':
            fputs(cli_txn_usage, stdout);
            return 0;
        default:
            fprintf(stderr, "raftfs txn: unknown or incomplete option\n"
                            "Run 'raftfs help txn' for usage.\n");
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "raftfs txn: no arguments expected (the txn is read from --file or "
                        "standard input)\n");
        return 2;
    }
    char *text = NULL;
    int rc = slurp(file, &text);
    if (rc) {
        fprintf(stderr, "raftfs txn: cannot read %s: %s\n", file ? file : "standard input",
                rc == EINVAL ? "it holds a NUL byte" : strerror(rc));
        return rc == EINVAL ? 2 : 1;
    }
    struct txn_text t;
    if ((rc = parse_txn(text, file ? file : "stdin", &t))) {
        txn_text_free(&t);
        return rc;
    }
    struct store_cmd cmd = {.op = STORE_OP_TXN,
                            .time_ns = now_ns(),
                            .compares = t.cmp,
                            .n_compares = t.n_cmp,
                            .then_ops = t.ops,
                            .n_then = t.n_then,
                            .else_ops = t.els,
                            .n_else = t.n_else};
    struct net_client *c = cli_connect("txn", endpoints, timeout_s);
    if (!c) {
        txn_text_free(&t);
        return 2;
    }
    Raftfs__ClientResponse *resp = NULL;
    rc = cli_write_cmd(c, &cmd, &resp);
    int status = 1;
    if (rc) {
        fprintf(stderr, "raftfs txn: %s\n",
                *net_client_error(c) ? net_client_error(c) : strerror(rc));
    } else if (resp->err) {
        uint32_t k = resp->has_failed_op ? resp->failed_op : 0;
        bool then = resp->has_succeeded && resp->succeeded;
        const struct store_cmd *ops = then ? t.ops : t.els;
        size_t n = then ? t.n_then : t.n_else;
        if (k && k <= n)
            fprintf(stderr, "raftfs txn: %s #%u (%s %.*s): %s; nothing was applied\n",
                    then ? "then" : "else", k, op_word(ops[k - 1].op), (int)ops[k - 1].path_len,
                    ops[k - 1].path, strerror(resp->err));
        else if (resp->err == EFBIG)
            fprintf(stderr, "raftfs txn: the txn is larger than one command may be (%s)\n",
                    strerror(resp->err));
        else
            fprintf(stderr, "raftfs txn: %s%s%s\n", strerror(resp->err), resp->message ? ": " : "",
                    resp->message ? resp->message : "");
    } else if (!resp->has_succeeded) {
        fprintf(stderr, "raftfs txn: the member does not know txns (an older build?)\n");
    } else {
        printf("%s\nrevision %llu\n", resp->succeeded ? "SUCCESS" : "FAILURE",
               (unsigned long long)resp->revision);
        status = resp->succeeded ? 0 : 3;
    }
    net_client_response_free(resp);
    net_client_close(c);
    txn_text_free(&t);
    return status;
}
