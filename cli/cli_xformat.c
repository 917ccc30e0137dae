/* cli_xformat.c - an export's entries as JSON or as a tar archive, and
 * back (cli_export.h).
 *
 * JSON: one object, its entries one per line:
 *   {"format": "raftfs-export", "version": 1, "prefix": "/app", "revision": 42,
 *    "entries": [
 *   {"path": "/app", "type": "dir", "mode": "0755", "uid": 0, ...},
 *   {"path": "/app/url", "type": "file", ..., "value": "http://a"}
 *   ]}
 * A path or value that is not UTF-8 is written base64 as path_base64 or
 * value_base64 instead.
 *
 * tar: POSIX pax (ustar blocks; a pax header where a path is over 100
 * bytes or an id over 2097151); entries are the paths without their
 * leading '/', directories with a trailing one, the root itself left out;
 * a global header's comment says "raftfs export of PREFIX at revision R".
 * Read back: regular files and directories only, from any tar (GNU long
 * names too), "./" and leading '/' dropped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli_export.h"
#include "cli_json.h"

void cli_xset_free(struct xset *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->e[i].path);
        free(x->e[i].value);
    }
    free(x->e);
    free(x->prefix);
    memset(x, 0, sizeof(*x));
}

int cli_xset_add(struct xset *x, const struct xentry *e)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        struct xentry *p = realloc(x->e, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        x->e = p;
        x->cap = cap;
    }
    struct xentry *d = &x->e[x->n];
    *d = *e;
    d->path = malloc(e->path_len + 1);
    d->value = NULL;
    if (!d->path)
        return ENOMEM;
    memcpy(d->path, e->path, e->path_len);
    d->path[e->path_len] = 0;
    if (!e->dir) {
        if (!(d->value = malloc(e->value_len ? e->value_len : 1))) {
            free(d->path);
            return ENOMEM;
        }
        if (e->value_len)
            memcpy(d->value, e->value, e->value_len);
    }
    x->n++;
    return 0;
}

/* ---- JSON ---- */

static void put_bytes(FILE *f, const char *key, const uint8_t *p, size_t len)
{
    if (cli_utf8_valid(p, len)) {
        fprintf(f, "\"%s\": ", key);
        cli_json_put_string(f, p, len);
    } else {
        fprintf(f, "\"%s_base64\": ", key);
        cli_json_put_base64(f, p, len);
    }
}

int cli_xset_write_json(const struct xset *x, FILE *f)
{
    fprintf(f, "{\"format\": \"raftfs-export\", \"version\": 1, ");
    put_bytes(f, "prefix", (const uint8_t *)x->prefix, x->prefix_len);
    fprintf(f, ", \"revision\": %" PRIu64 ", \"entries\": [\n", x->revision);
    for (size_t i = 0; i < x->n; i++) {
        const struct xentry *e = &x->e[i];
        fputc('{', f);
        put_bytes(f, "path", (const uint8_t *)e->path, e->path_len);
        fprintf(f,
                ", \"type\": \"%s\", \"mode\": \"%04o\", \"uid\": %u, \"gid\": %u, "
                "\"mtime_ns\": %" PRId64 ", \"create_revision\": %" PRIu64
                ", \"mod_revision\": %" PRIu64 ", \"version\": %" PRIu64,
                e->dir ? "dir" : "file", e->mode & 07777, e->uid, e->gid, e->mtime_ns,
                e->create_revision, e->mod_revision, e->version);
        if (!e->dir) {
            fprintf(f, ", \"size\": %zu, ", e->value_len);
            put_bytes(f, "value", e->value, e->value_len);
        }
        fprintf(f, "}%s\n", i + 1 < x->n ? "," : "");
    }
    fprintf(f, "]}\n");
    return ferror(f) ? EIO : 0;
}

/* A string member, or its _base64 form, as bytes (malloc'd, NUL after). */
static int get_bytes(const struct cli_json *o, const char *key, char **out, size_t *len,
                     bool required, const char **why)
{
    const struct cli_json *v = cli_json_get(o, key);
    char k64[32];
    snprintf(k64, sizeof(k64), "%s_base64", key);
    const struct cli_json *b = cli_json_get(o, k64);
    *out = NULL;
    *len = 0;
    if (v && b)
        return *why = "both a value and its _base64 form", EINVAL;
    if (v) {
        if (v->type != CLI_JSON_STRING)
            return *why = "a string is expected", EINVAL;
        if (!(*out = malloc(v->len + 1)))
            return ENOMEM;
        memcpy(*out, v->s, v->len + 1);
        *len = v->len;
        return 0;
    }
    if (b) {
        uint8_t *d;
        if (b->type != CLI_JSON_STRING || cli_base64_decode(b->s, b->len, &d, len))
            return *why = "bad base64", EINVAL;
        char *p = realloc(d, *len + 1);
        if (!p) {
            free(d);
            return ENOMEM;
        }
        p[*len] = 0;
        *out = p;
        return 0;
    }
    if (required)
        return *why = "a member is missing", EINVAL;
    return 0;
}

static bool get_u64(const struct cli_json *o, const char *key, uint64_t max, uint64_t *out)
{
    const struct cli_json *v = cli_json_get(o, key);
    if (!v) {
        *out = 0;
        return true;
    }
    if (v->type != CLI_JSON_NUMBER || !v->is_uint || v->u > max)
        return false;
    *out = v->u;
    return true;
}

int cli_xset_read_json(const char *text, size_t len, struct xset *x, char *err, size_t err_len)
{
    struct cli_json root;
    memset(x, 0, sizeof(*x));
    int rc = cli_json_parse(text, len, &root, err, err_len);
    if (rc)
        return rc;
    const char *why = NULL;
    const struct cli_json *fmt = cli_json_get(&root, "format");
    const struct cli_json *entries = cli_json_get(&root, "entries");
    const struct cli_json *ver = cli_json_get(&root, "version");
    if (!fmt || fmt->type != CLI_JSON_STRING || strcmp(fmt->s, "raftfs-export")) {
        why = "not a raftfs export (\"format\": \"raftfs-export\" is missing)";
    } else if (!ver || !ver->is_uint || ver->u != 1) {
        why = "an export format version this build does not know (it knows 1)";
    } else if (!entries || entries->type != CLI_JSON_ARRAY) {
        why = "\"entries\" is missing or not an array";
    } else if ((rc = get_bytes(&root, "prefix", &x->prefix, &x->prefix_len, true, &why))) {
        why = why ? why : "prefix";
    } else if (!get_u64(&root, "revision", UINT64_MAX, &x->revision)) {
        why = "\"revision\" is not a number";
    }
    if (why || rc) {
        snprintf(err, err_len, "%s", why ? why : strerror(rc));
        cli_json_free(&root);
        cli_xset_free(x);
        return rc ? rc : EINVAL;
    }
    for (size_t i = 0; i < entries->n && !rc; i++) {
        const struct cli_json *o = &entries->items[i];
        struct xentry e = {0};
        char *path = NULL, *value = NULL;
        size_t pl = 0, vl = 0;
        const struct cli_json *type = cli_json_get(o, "type");
        const struct cli_json *mode = cli_json_get(o, "mode");
        uint64_t uid, gid, cr, mr, vv;
        char *end;
        if (o->type != CLI_JSON_OBJECT) {
            why = "an entry is not an object";
            rc = EINVAL;
        } else if ((rc = get_bytes(o, "path", &path, &pl, true, &why))) {
            why = why ? why : "path";
        } else if (!type || type->type != CLI_JSON_STRING ||
                   (strcmp(type->s, "dir") && strcmp(type->s, "file"))) {
            why = "\"type\" must be \"dir\" or \"file\"";
            rc = EINVAL;
        } else if (!mode || mode->type != CLI_JSON_STRING ||
                   (e.mode = (uint32_t)strtoul(mode->s, &end, 8), *end) || !mode->len ||
                   e.mode > 07777) {
            why = "\"mode\" must be an octal string such as \"0644\"";
            rc = EINVAL;
        } else if (!get_u64(o, "uid", UINT32_MAX, &uid) || !get_u64(o, "gid", UINT32_MAX, &gid) ||
                   !get_u64(o, "create_revision", UINT64_MAX, &cr) ||
                   !get_u64(o, "mod_revision", UINT64_MAX, &mr) ||
                   !get_u64(o, "version", UINT64_MAX, &vv)) {
            why = "uid, gid, create_revision, mod_revision and version are numbers";
            rc = EINVAL;
        } else if ((rc = get_bytes(o, "value", &value, &vl, false, &why))) {
            why = why ? why : "value";
        } else if ((value != NULL) == !strcmp(type->s, "dir")) {
            why = !strcmp(type->s, "dir") ? "a directory has no value" : "a file needs a value";
            rc = EINVAL;
        } else {
            const struct cli_json *mt = cli_json_get(o, "mtime_ns");
            if (mt && mt->type == CLI_JSON_NUMBER)
                e.mtime_ns = strtoll(mt->s, NULL, 10);
            e.path = path;
            e.path_len = pl;
            e.dir = !strcmp(type->s, "dir");
            e.uid = (uint32_t)uid;
            e.gid = (uint32_t)gid;
            e.create_revision = cr;
            e.mod_revision = mr;
            e.version = vv;
            e.value = (uint8_t *)value;
            e.value_len = vl;
            rc = cli_xset_add(x, &e);
        }
        free(path);
        free(value);
        if (rc)
            snprintf(err, err_len, "entry %zu: %s", i + 1, why ? why : strerror(rc));
    }
    cli_json_free(&root);
    if (rc)
        cli_xset_free(x);
    return rc;
}

/* ---- tar ---- */

#define TAR_BLOCK 512

/* v as size - 1 octal digits and a NUL (v must fit). */
static void octal(char *field, size_t size, uint64_t v)
{
    field[size - 1] = 0;
    for (size_t i = size - 1; i-- > 0; v >>= 3)
        field[i] = (char)('0' + (v & 7));
}

static int put_header(FILE *f, const char *name, size_t name_len, char type, uint32_t mode,
                      uint32_t uid, uint32_t gid, uint64_t size, int64_t mtime_s)
{
    unsigned char h[TAR_BLOCK];
    memset(h, 0, sizeof(h));
    memcpy(h, name, name_len < 100 ? name_len : 100);
    octal((char *)h + 100, 8, mode & 07777);
    octal((char *)h + 108, 8, uid <= 07777777 ? uid : 0);
    octal((char *)h + 116, 8, gid <= 07777777 ? gid : 0);
    octal((char *)h + 124, 12, size);
    octal((char *)h + 136, 12, mtime_s > 0 ? (uint64_t)mtime_s : 0);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    octal((char *)h + 148, 7, sum); /* six digits, a NUL, then the space */
    h[155] = ' ';
    return fwrite(h, 1, TAR_BLOCK, f) == TAR_BLOCK ? 0 : EIO;
}

static int put_data(FILE *f, const void *p, size_t len)
{
    static const char zeros[TAR_BLOCK];
    if (len && fwrite(p, 1, len, f) != len)
        return EIO;
    size_t pad = (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK;
    return pad && fwrite(zeros, 1, pad, f) != pad ? EIO : 0;
}

/* Appends one pax record "LEN key=value\n" to *buf. */
static int pax_add(char **buf, size_t *len, const char *key, const char *val, size_t vl)
{
    size_t body = 1 + strlen(key) + 1 + vl + 1, n = body + 1;
    char digits[24];
    while ((size_t)snprintf(digits, sizeof(digits), "%zu", n) + body != n)
        n = (size_t)snprintf(digits, sizeof(digits), "%zu", n) + body;
    char *p = realloc(*buf, *len + n);
    if (!p)
        return ENOMEM;
    *buf = p;
    int w = snprintf(p + *len, n, "%s %s=", digits, key);
    memcpy(p + *len + w, val, vl);
    p[*len + n - 1] = '\n';
    *len += n;
    return 0;
}

int cli_xset_write_tar(const struct xset *x, FILE *f)
{
    char *pax = NULL;
    size_t pl = 0;
    char comment[64];
    int rc = 0;
    snprintf(comment, sizeof(comment), " at revision %" PRIu64, x->revision);
    size_t cl = strlen("raftfs export of ") + x->prefix_len + strlen(comment);
    char *c = malloc(cl + 1);
    if (!c)
        return ENOMEM;
    snprintf(c, cl + 1, "raftfs export of %.*s%s", (int)x->prefix_len, x->prefix, comment);
    if (!(rc = pax_add(&pax, &pl, "comment", c, cl)) &&
        !(rc = put_header(f, "pax_global_header", 17, 'g', 0644, 0, 0, pl, 0)))
        rc = put_data(f, pax, pl);
    free(c);
    for (size_t i = 0; i < x->n && !rc; i++) {
        const struct xentry *e = &x->e[i];
        if (e->path_len == 1)
            continue; /* the root: the archive itself */
        size_t nl = e->path_len - 1 + e->dir;
        char *name = malloc(nl + 1);
        if (!name) {
            rc = ENOMEM;
            break;
        }
        memcpy(name, e->path + 1, e->path_len - 1);
        if (e->dir)
            name[nl - 1] = '/';
        name[nl] = 0;
        free(pax);
        pax = NULL;
        pl = 0;
        char num[24];
        if (nl > 100 || memchr(name, 0, nl))
            rc = pax_add(&pax, &pl, "path", name, nl);
        if (!rc && e->uid > 07777777)
            rc = pax_add(&pax, &pl, "uid", num, (size_t)snprintf(num, sizeof(num), "%u", e->uid));
        if (!rc && e->gid > 07777777)
            rc = pax_add(&pax, &pl, "gid", num, (size_t)snprintf(num, sizeof(num), "%u", e->gid));
        if (!rc && pl && !(rc = put_header(f, "PaxHeader", 9, 'x', 0644, 0, 0, pl, 0)))
            rc = put_data(f, pax, pl);
        int64_t mt = e->mtime_ns / 1000000000;
        if (!rc)
            rc = put_header(f, name, nl, e->dir ? '5' : '0', e->mode, e->uid, e->gid,
                            e->dir ? 0 : e->value_len, mt);
        if (!rc && !e->dir)
            rc = put_data(f, e->value, e->value_len);
        free(name);
    }
    free(pax);
    static const char end[2 * TAR_BLOCK];
    if (!rc && fwrite(end, 1, sizeof(end), f) != sizeof(end))
        rc = EIO;
    return rc ? rc : ferror(f) ? EIO : 0;
}

static bool parse_octal(const unsigned char *p, size_t size, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < size && p[i] == ' ')
        i++;
    if (i < size && (p[i] & 0x80))
        return false; /* GNU base-256: not for values of this size */
    bool any = false;
    for (; i < size && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v >> 60)
            return false;
        v = v * 8 + (uint64_t)(p[i] - '0');
        any = true;
    }
    for (; i < size; i++)
        if (p[i] != ' ' && p[i] != 0)
            return false;
    *out = v;
    return any || p[0] == 0;
}

/* Parses pax records: path, uid, gid, comment (sets prefix/revision when
 * it is raftfs's). */
static int pax_parse(const uint8_t *p, size_t len, char **path, size_t *path_len, int64_t *uid,
                     int64_t *gid, struct xset *x)
{
    size_t at = 0;
    while (at < len) {
        size_t n = 0, k = at;
        while (k < len && p[k] >= '0' && p[k] <= '9' && n < (1u << 30))
            n = n * 10 + (size_t)(p[k++] - '0');
        if (k == at || k >= len || p[k] != ' ' || n < 5 || at + n > len || p[at + n - 1] != '\n')
            return EINVAL;
        const uint8_t *kv = p + k + 1, *stop = p + at + n - 1;
        const uint8_t *eq = memchr(kv, '=', (size_t)(stop - kv));
        if (!eq)
            return EINVAL;
        size_t kl = (size_t)(eq - kv), vl = (size_t)(stop - eq - 1);
        const char *val = (const char *)eq + 1;
        char num[24];
        if (kl == 4 && !memcmp(kv, "path", 4)) {
            free(*path);
            if (!(*path = malloc(vl + 1)))
                return ENOMEM;
            memcpy(*path, val, vl);
            (*path)[vl] = 0;
            *path_len = vl;
        } else if ((kl == 3 && !memcmp(kv, "uid", 3)) || (kl == 3 && !memcmp(kv, "gid", 3))) {
            if (!vl || vl >= sizeof(num))
                return EINVAL;
            memcpy(num, val, vl);
            num[vl] = 0;
            char *end;
            unsigned long long v = strtoull(num, &end, 10);
            if (*end || v > UINT32_MAX)
                return EINVAL;
            *(kv[0] == 'u' ? uid : gid) = (int64_t)v;
        } else if (kl == 7 && !memcmp(kv, "comment", 7) && x && vl > 17 &&
                   !memcmp(val, "raftfs export of ", 17)) {
            const char *pre = val + 17;
            const char *at_rev = NULL;
            for (const char *q = val + vl - 13; q >= pre && !at_rev; q--)
                if (!memcmp(q, " at revision ", 13))
                    at_rev = q;
            if (at_rev && at_rev + 13 < val + vl) {
                size_t rl = (size_t)(val + vl - (at_rev + 13));
                if (rl < sizeof(num)) {
                    memcpy(num, at_rev + 13, rl);
                    num[rl] = 0;
                    x->revision = strtoull(num, NULL, 10);
                }
                free(x->prefix);
                x->prefix_len = (size_t)(at_rev - pre);
                if (!(x->prefix = malloc(x->prefix_len + 1)))
                    return ENOMEM;
                memcpy(x->prefix, pre, x->prefix_len);
                x->prefix[x->prefix_len] = 0;
            }
        }
        at += n;
    }
    return 0;
}

/* "./a/b/", "/a/b" -> "/a/b"; false for "..", empty components. "." and
 * "./" give "/". */
static bool normalize(const char *name, size_t len, char **out, size_t *out_len)
{
    char *p = malloc(len + 2);
    if (!p)
        return false;
    size_t n = 0;
    p[n++] = '/';
    size_t i = 0;
    while (i < len) {
        while (i < len && name[i] == '/')
            i++;
        size_t s = i;
        while (i < len && name[i] != '/')
            i++;
        size_t cl = i - s;
        if (!cl || (cl == 1 && name[s] == '.'))
            continue;
        if (cl == 2 && name[s] == '.' && name[s + 1] == '.') {
            free(p);
            return false;
        }
        if (n > 1)
            p[n++] = '/';
        memcpy(p + n, name + s, cl);
        n += cl;
    }
    p[n] = 0;
    *out = p;
    *out_len = n;
    return true;
}

int cli_xset_read_tar(const uint8_t *data, size_t len, struct xset *x, char *err, size_t err_len)
{
    memset(x, 0, sizeof(*x));
    size_t at = 0;
    char *long_name = NULL;
    size_t long_len = 0;
    int64_t uid = -1, gid = -1;
    int rc = 0;
    const char *why = NULL;
    static const uint8_t zero[TAR_BLOCK];
    if (err_len)
        err[0] = 0;
    while (!rc) {
        if (at + TAR_BLOCK > len) {
            why = at == len ? "the archive ends without its end blocks" : "a truncated header";
            rc = EINVAL;
            break;
        }
        const uint8_t *h = data + at;
        if (!memcmp(h, zero, TAR_BLOCK))
            break; /* the end */
        unsigned sum = 0;
        int ssum = 0;
        for (size_t i = 0; i < TAR_BLOCK; i++) {
            unsigned char b = i >= 148 && i < 156 ? ' ' : h[i];
            sum += b;
            ssum += (signed char)b;
        }
        uint64_t want, size, mode, hu, hg, mtime;
        if (!parse_octal(h + 148, 8, &want) || (want != sum && (int64_t)want != ssum)) {
            why = "a header's checksum is wrong (not a tar archive, or damaged)";
            rc = EINVAL;
            break;
        }
        if (memcmp(h + 257, "ustar", 5)) {
            why = "not a ustar/pax archive";
            rc = EINVAL;
            break;
        }
        if (!parse_octal(h + 124, 12, &size) || !parse_octal(h + 100, 8, &mode) ||
            !parse_octal(h + 108, 8, &hu) || !parse_octal(h + 116, 8, &hg) ||
            !parse_octal(h + 136, 12, &mtime) || size > len - at - TAR_BLOCK) {
            why = "a header has a bad number, or data past the end";
            rc = EINVAL;
            break;
        }
        const uint8_t *body = h + TAR_BLOCK;
        size_t next = at + TAR_BLOCK + (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
        if (next > len) {
            why = "an entry's data is truncated";
            rc = EINVAL;
            break;
        }
        char type = (char)h[156];
        if (type == 'x' || type == 'g') {
            /* A global header's path and ids are not used. */
            char *gpath = NULL;
            size_t glen;
            int64_t gu, gg;
            if (type == 'x')
                rc = pax_parse(body, size, &long_name, &long_len, &uid, &gid, NULL);
            else
                rc = pax_parse(body, size, &gpath, &glen, &gu, &gg, x);
            free(gpath);
            if (rc)
                why = "a malformed pax header";
            at = next;
            continue;
        }
        if (type == 'L') {
            free(long_name);
            size_t nl = strnlen((const char *)body, size);
            if (!(long_name = malloc(nl + 1))) {
                rc = ENOMEM;
                break;
            }
            memcpy(long_name, body, nl);
            long_name[nl] = 0;
            long_len = nl;
            at = next;
            continue;
        }
        char namebuf[257];
        const char *name = long_name;
        size_t nl = long_len;
        if (!name) {
            size_t pfx = strnlen((const char *)h + 345, 155), base = strnlen((const char *)h, 100);
            nl = 0;
            if (pfx) {
                memcpy(namebuf, h + 345, pfx);
                namebuf[pfx] = '/';
                nl = pfx + 1;
            }
            memcpy(namebuf + nl, h, base);
            nl += base;
            namebuf[nl] = 0;
            name = namebuf;
        }
        if (type != '0' && type != '\0' && type != '5') {
            snprintf(err, err_len,
                     "at byte %zu (%.*s): neither a file nor a directory (a link, a "
                     "device...): not supported",
                     at, (int)(nl < 200 ? nl : 200), name);
            rc = EINVAL;
            break;
        }
        bool dir = type == '5' || (nl && name[nl - 1] == '/');
        struct xentry e = {.dir = dir,
                           .mode = (uint32_t)(mode & 07777),
                           .uid = uid >= 0 ? (uint32_t)uid : (uint32_t)hu,
                           .gid = gid >= 0 ? (uint32_t)gid : (uint32_t)hg,
                           .mtime_ns = (int64_t)mtime * 1000000000LL,
                           .value = (uint8_t *)body,
                           .value_len = dir ? 0 : size};
        if (!normalize(name, nl, &e.path, &e.path_len)) {
            why = "a path with \"..\"";
            rc = EINVAL;
        } else if (e.dir && size) {
            why = "a directory with data";
            rc = EINVAL;
        } else if (!(e.path_len == 1 && e.dir)) { /* "./": the root, left out */
            rc = cli_xset_add(x, &e);
        }
        free(e.path);
        free(long_name);
        long_name = NULL;
        uid = gid = -1;
        if (rc && !why)
            why = strerror(rc);
        if (rc)
            snprintf(err, err_len, "at byte %zu (%.*s): %s", at, (int)(nl < 200 ? nl : 200), name,
                     why);
        at = next;
    }
    free(long_name);
    if (rc && why && !*err)
        snprintf(err, err_len, "at byte %zu: %s", at, why);
    if (!rc && !x->prefix) {
        if (!(x->prefix = strdup("/")))
            rc = ENOMEM;
        x->prefix_len = 1;
    }
    if (rc)
        cli_xset_free(x);
    return rc;
}
