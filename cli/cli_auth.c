/* cli_auth.c - access control from the shell: raftfs auth, user and role
 * (changes are AUTH commands, reads AuthRequests), and the login every
 * client command says in its Hello (--user, --password-file,
 * $RAFTFS_USER, $RAFTFS_PASSWORD). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "net_client.h"
#include "raftfs.pb-c.h"
#include "store.h"

const char cli_auth_usage[] =
    "usage: raftfs auth enable|disable|status|whoami\n"
    "       raftfs user add NAME [--new-password-file FILE | --no-password]\n"
    "       raftfs user passwd NAME [--new-password-file FILE | --no-password]\n"
    "       raftfs user delete NAME\n"
    "       raftfs user grant-role NAME ROLE | revoke-role NAME ROLE\n"
    "       raftfs user list | get NAME\n"
    "       raftfs role add NAME | delete NAME\n"
    "       raftfs role grant NAME read|write|readwrite PREFIX | revoke NAME PREFIX\n"
    "       raftfs role list | get NAME\n"
    "\n"
    "Access control on the client protocol (the mounts keep POSIX modes). While it\n"
    "is disabled anyone may set it up; 'auth enable' needs a user root and gives it\n"
    "the role root, which may do everything; then only root may change or read it.\n"
    "A permission on PREFIX covers PREFIX and everything below it.\n"
    "A new password is read from the first line of standard input unless\n"
    "--new-password-file names a file (or --no-password: the user can then log\n"
    "in only with a certificate).\n"
    "\n"
    "Every client command logs in with:\n"
    "  --user NAME[:PASSWORD]   or $RAFTFS_USER (without it: anonymous)\n"
    "  --password-file FILE     its first line is the password (else $RAFTFS_PASSWORD)\n"
    "  --endpoints HOST:PORT[,...]  --timeout SECONDS  as for 'raftfs help client'\n"
    "  --cacert FILE, --cert FILE, --key FILE  TLS, as for 'raftfs help client'\n"
    "\n"
    "Exit status: 0, 1 with the member's reason (Permission denied: not allowed;\n"
    "Operation not permitted: not logged in; ...), 2 usage error.\n";

/* The login of this process (main: cli_auth_take_options). */
static char *login_user, *login_password;

/* The first line of path, without its newline; NULL with errno. */
static char *read_first_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        free(line);
        errno = n < 0 && !ferror(f) ? ENODATA : EIO;
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    return line;
}

static char *read_password_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *p = read_first_line(f);
    int e = errno;
    fclose(f);
    errno = e;
    return p;
}

static int set_login(const char *spec)
{
    const char *colon = strchr(spec, ':');
    free(login_user);
    login_user = colon ? strndup(spec, (size_t)(colon - spec)) : strdup(spec);
    if (colon) {
        free(login_password);
        login_password = strdup(colon + 1);
    }
    return login_user && *login_user ? 0 : EINVAL;
}

int cli_auth_take_options(int *argc, char **argv)
{
    const char *user = getenv("RAFTFS_USER"), *pw = getenv("RAFTFS_PASSWORD");
    if (pw && !(login_password = strdup(pw)))
        return 1;
    if (user && *user && set_login(user)) {
        fprintf(stderr, "raftfs: bad $RAFTFS_USER (NAME or NAME:PASSWORD)\n");
        return 2;
    }
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        const char *val = NULL;
        bool is_user = !strncmp(a, "--user", 6) && (a[6] == 0 || a[6] == '=');
        bool is_pw = !strncmp(a, "--password-file", 15) && (a[15] == 0 || a[15] == '=');
        if (!is_user && !is_pw) {
            argv[out++] = argv[i];
            continue;
        }
        size_t n = is_user ? 6 : 15;
        if (a[n] == '=')
            val = a + n + 1;
        else if (i + 1 < *argc)
            val = argv[++i];
        if (!val || !*val) {
            fprintf(stderr, "raftfs: %s needs a value\n", is_user ? "--user" : "--password-file");
            return 2;
        }
        if (is_user && set_login(val)) {
            fprintf(stderr, "raftfs: bad --user (NAME or NAME:PASSWORD)\n");
            return 2;
        }
        if (is_pw) {
            char *p = read_password_file(val);
            if (!p) {
                fprintf(stderr, "raftfs: --password-file %s: %s\n", val, strerror(errno));
                return 1;
            }
            free(login_password);
            login_password = p;
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

void cli_auth_config(struct net_client_config *cfg)
{
    cfg->user = login_user;
    cfg->password = login_user ? login_password : NULL;
}

/* ---- raftfs auth / user / role ---- */

struct aargs {
    const char *endpoints;
    double timeout_s;
    const char *new_password_file;
    bool no_password;
    int npos;
    char **pos;
};

static int ausage(const char *cmd, const char *msg)
{
    fprintf(stderr, "raftfs %s: %s\nRun 'raftfs help auth' for usage.\n", cmd, msg);
    return 2;
}

static int aparse(int argc, char **argv, struct aargs *a)
{
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"new-password-file", required_argument, NULL, 'p'},
        {"no-password", no_argument, NULL, 'n'},
        {"cacert", required_argument, NULL, CLI_OPT_CACERT},
        {"cert", required_argument, NULL, CLI_OPT_CERT},
        {"key", required_argument, NULL, CLI_OPT_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    a->endpoints = cli_endpoints();
    a->timeout_s = 5;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            a->endpoints = optarg;
            break;
        case 't':
            if (cli_parse_timeout(optarg, &a->timeout_s))
                return ausage(argv[0], "bad --timeout (seconds, up to 3600)");
            break;
        case 'p':
            a->new_password_file = optarg;
            break;
        case 'n':
            a->no_password = true;
            break;
        case CLI_OPT_CACERT:
        case CLI_OPT_CERT:
        case CLI_OPT_KEY:
            cli_tls_option(c, optarg);
            break;
        case 'h':
            fputs(cli_auth_usage, stdout);
            exit(0);
        default:
            return ausage(argv[0], "unknown or incomplete option");
        }
    }
    a->npos = argc - optind;
    a->pos = argv + optind;
    return 0;
}

static int report(const char *cmd, int err, const char *msg)
{
    fprintf(stderr, "raftfs %s: %s%s%s\n", cmd, strerror(err), msg && *msg ? ": " : "",
            msg ? msg : "");
    return 1;
}

/* Sends req to a member: 0 with *resp (the caller frees it) when the member
 * served it, else 1 after printing why. */
static int auth_call(const char *cmd, const struct aargs *a, Raftfs__ClientRequest *req,
                     Raftfs__ClientResponse **resp)
{
    struct net_client *c = cli_connect(cmd, a->endpoints, a->timeout_s);
    if (!c)
        return 1;
    int rc = 0;
    *resp = NULL;
    if (net_client_call(c, req, resp)) {
        fprintf(stderr, "raftfs %s: %s\n", cmd, net_client_error(c));
        rc = 1;
    } else if ((*resp)->err) {
        rc = report(cmd, (*resp)->err, (*resp)->message);
        net_client_response_free(*resp);
        *resp = NULL;
    }
    net_client_close(c);
    return rc;
}

/* Sends one AuthChange; prints nothing on success. */
static int change(const char *cmd, const struct aargs *a, Raftfs__AuthChange *au)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__Command w = RAFTFS__COMMAND__INIT;
    w.version = STORE_CMD_VERSION;
    w.op_case = RAFTFS__COMMAND__OP_AUTH;
    w.auth = au;
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_WRITE;
    req.write = &w;
    Raftfs__ClientResponse *resp;
    int rc = auth_call(cmd, a, &req, &resp);
    net_client_response_free(resp);
    return rc;
}

static void bytes(ProtobufCBinaryData *b, protobuf_c_boolean *has, const char *s)
{
    *has = true;
    b->data = (uint8_t *)s;
    b->len = strlen(s);
}

/* Reads access control; prints what came back. */
static int query(const char *cmd, const struct aargs *a, Raftfs__AuthRequest__Op op,
                 const char *name)
{
    Raftfs__ClientRequest req = RAFTFS__CLIENT_REQUEST__INIT;
    Raftfs__AuthRequest ar = RAFTFS__AUTH_REQUEST__INIT;
    ar.op = op;
    if (name) {
        ar.has_name = true;
        ar.name.data = (uint8_t *)name;
        ar.name.len = strlen(name);
    }
    req.op_case = RAFTFS__CLIENT_REQUEST__OP_AUTH;
    req.auth = &ar;
    Raftfs__ClientResponse *resp;
    int rc = auth_call(cmd, a, &req, &resp);
    if (!rc && !resp->auth) {
        fprintf(stderr, "raftfs %s: the member sent no answer\n", cmd);
        rc = 1;
    } else if (!rc) {
        const Raftfs__AuthReply *r = resp->auth;
        static const char *const perm_names[] = {"none", "read", "write", "readwrite"};
        switch (op) {
        case RAFTFS__AUTH_REQUEST__OP__STATUS:
            printf("%s\n", r->enabled ? "enabled" : "disabled");
            break;
        case RAFTFS__AUTH_REQUEST__OP__WHO_AM_I:
            printf("%.*s\n", (int)r->user.len, r->user.len ? (const char *)r->user.data : "");
            break;
        case RAFTFS__AUTH_REQUEST__OP__USER_LIST:
        case RAFTFS__AUTH_REQUEST__OP__ROLE_LIST:
            for (size_t i = 0; i < r->n_items; i++)
                printf("%.*s\n", (int)r->items[i]->name.len, (const char *)r->items[i]->name.data);
            break;
        case RAFTFS__AUTH_REQUEST__OP__USER_GET:
            for (size_t i = 0; i < r->n_items; i++) {
                const Raftfs__AuthItem *it = r->items[i];
                printf("user: %.*s\npassword: %s\nroles:", (int)it->name.len,
                       (const char *)it->name.data, it->has_password ? "yes" : "no (certificate)");
                for (size_t j = 0; j < it->n_roles; j++)
                    printf(" %.*s", (int)it->roles[j].len, (const char *)it->roles[j].data);
                printf("\n");
            }
            break;
        case RAFTFS__AUTH_REQUEST__OP__ROLE_GET:
            for (size_t i = 0; i < r->n_items; i++) {
                const Raftfs__AuthItem *it = r->items[i];
                printf("role: %.*s\n", (int)it->name.len, (const char *)it->name.data);
                for (size_t j = 0; j < it->n_perms; j++)
                    printf("%s %.*s\n", perm_names[it->perms[j]->perm & 3],
                           (int)it->perms[j]->prefix.len, (const char *)it->perms[j]->prefix.data);
            }
            break;
        default:
            break;
        }
    }
    net_client_response_free(resp);
    return rc;
}

/* The password of user add / passwd: NULL for --no-password; exits on
 * failure. */
static int new_password(const char *cmd, const struct aargs *a, char **out)
{
    *out = NULL;
    if (a->no_password)
        return a->new_password_file ? ausage(cmd, "--no-password or --new-password-file") : 0;
    char *p =
        a->new_password_file ? read_password_file(a->new_password_file) : read_first_line(stdin);
    if (!p) {
        fprintf(stderr, "raftfs %s: cannot read the new password from %s: %s\n", cmd,
                a->new_password_file ? a->new_password_file : "standard input", strerror(errno));
        return 1;
    }
    if (!*p) {
        free(p);
        return ausage(cmd, "an empty password (use --no-password for none)");
    }
    *out = p;
    return 0;
}

static int perm_of(const char *s)
{
    return !strcmp(s, "read")                            ? 1
           : !strcmp(s, "write")                         ? 2
           : !strcmp(s, "readwrite") || !strcmp(s, "rw") ? 3
                                                         : 0;
}

int cli_auth(int argc, char **argv)
{
    const char *cmd = argv[0];
    struct aargs a = {0};
    int rc = aparse(argc, argv, &a);
    if (rc)
        return rc;
    if (a.npos < 1)
        return ausage(cmd, "missing subcommand");
    const char *sub = a.pos[0];
    const char *name = a.npos > 1 ? a.pos[1] : NULL;
    int want = 1; /* positional arguments after the subcommand */
    Raftfs__AuthChange au = RAFTFS__AUTH_CHANGE__INIT;
    bool is_change = true;
    Raftfs__AuthRequest__Op q = RAFTFS__AUTH_REQUEST__OP__STATUS;
    char *pw = NULL;
    if (!strcmp(cmd, "auth")) {
        want = 0;
        if (!strcmp(sub, "enable"))
            au.op = RAFTFS__AUTH_CHANGE__OP__ENABLE;
        else if (!strcmp(sub, "disable"))
            au.op = RAFTFS__AUTH_CHANGE__OP__DISABLE;
        else if (!strcmp(sub, "status"))
            is_change = false, q = RAFTFS__AUTH_REQUEST__OP__STATUS;
        else if (!strcmp(sub, "whoami"))
            is_change = false, q = RAFTFS__AUTH_REQUEST__OP__WHO_AM_I;
        else
            return ausage(cmd, "unknown subcommand");
    } else if (!strcmp(cmd, "user")) {
        if (!strcmp(sub, "add") || !strcmp(sub, "passwd")) {
            au.op = sub[0] == 'a' ? RAFTFS__AUTH_CHANGE__OP__USER_ADD
                                  : RAFTFS__AUTH_CHANGE__OP__USER_PASSWORD;
        } else if (!strcmp(sub, "delete")) {
            au.op = RAFTFS__AUTH_CHANGE__OP__USER_DELETE;
        } else if (!strcmp(sub, "grant-role") || !strcmp(sub, "revoke-role")) {
            au.op = sub[0] == 'g' ? RAFTFS__AUTH_CHANGE__OP__USER_GRANT_ROLE
                                  : RAFTFS__AUTH_CHANGE__OP__USER_REVOKE_ROLE;
            want = 2;
        } else if (!strcmp(sub, "list")) {
            is_change = false, q = RAFTFS__AUTH_REQUEST__OP__USER_LIST, want = 0;
        } else if (!strcmp(sub, "get")) {
            is_change = false, q = RAFTFS__AUTH_REQUEST__OP__USER_GET;
        } else {
            return ausage(cmd, "unknown subcommand");
        }
    } else {
        if (!strcmp(sub, "add")) {
            au.op = RAFTFS__AUTH_CHANGE__OP__ROLE_ADD;
        } else if (!strcmp(sub, "delete")) {
            au.op = RAFTFS__AUTH_CHANGE__OP__ROLE_DELETE;
        } else if (!strcmp(sub, "grant")) {
            au.op = RAFTFS__AUTH_CHANGE__OP__ROLE_GRANT;
            want = 3;
        } else if (!strcmp(sub, "revoke")) {
            au.op = RAFTFS__AUTH_CHANGE__OP__ROLE_REVOKE;
            want = 2;
        } else if (!strcmp(sub, "list")) {
            is_change = false, q = RAFTFS__AUTH_REQUEST__OP__ROLE_LIST, want = 0;
        } else if (!strcmp(sub, "get")) {
            is_change = false, q = RAFTFS__AUTH_REQUEST__OP__ROLE_GET;
        } else {
            return ausage(cmd, "unknown subcommand");
        }
    }
    if (a.npos - 1 != want)
        return ausage(cmd, a.npos - 1 < want ? "missing arguments" : "too many arguments");
    bool pw_op = au.op == RAFTFS__AUTH_CHANGE__OP__USER_ADD ||
                 au.op == RAFTFS__AUTH_CHANGE__OP__USER_PASSWORD;
    if ((a.no_password || a.new_password_file) && !(is_change && pw_op))
        return ausage(cmd, "--no-password and --new-password-file are for user add and passwd");
    if (name && store_auth_name_check(name, strlen(name)))
        return ausage(cmd, "a name is 1 to 64 printable ASCII bytes without space, ':' or '/'");
    if (!is_change)
        return query(cmd, &a, q, name);
    if (name)
        bytes(&au.name, &au.has_name, name);
    if (au.op == RAFTFS__AUTH_CHANGE__OP__USER_GRANT_ROLE ||
        au.op == RAFTFS__AUTH_CHANGE__OP__USER_REVOKE_ROLE) {
        if (store_auth_name_check(a.pos[2], strlen(a.pos[2])))
            return ausage(cmd, "a bad role name");
        bytes(&au.role, &au.has_role, a.pos[2]);
    }
    if (au.op == RAFTFS__AUTH_CHANGE__OP__ROLE_GRANT) {
        int p = perm_of(a.pos[2]);
        if (!p)
            return ausage(cmd, "the permission is read, write or readwrite");
        au.has_perm = true;
        au.perm = (uint32_t)p;
        bytes(&au.prefix, &au.has_prefix, a.pos[3]);
    }
    if (au.op == RAFTFS__AUTH_CHANGE__OP__ROLE_REVOKE)
        bytes(&au.prefix, &au.has_prefix, a.pos[2]);
    if (au.has_prefix && au.prefix.data[0] != '/')
        return ausage(cmd, "PREFIX must be absolute (start with /)");
    if (pw_op && (rc = new_password(cmd, &a, &pw)))
        return rc;
    if (pw)
        bytes(&au.password, &au.has_password, pw);
    rc = change(cmd, &a, &au);
    if (pw) {
        explicit_bzero(pw, strlen(pw));
        free(pw);
    }
    return rc;
}
