/* node_export.c - ExportRequest: every entry under a prefix as of one
 * revision, a page at a time, for `raftfs export`.
 *
 * Design notes
 * 1. Stateless pages: each is read in its own read transaction on the loop
 *    thread (node_client.c serves it after the read's barrier), at most
 *    about limit_bytes of paths and values, so no page holds the loop or
 *    an LMDB reader for long and a client may go on at another member.
 * 2. One revision for all pages: the store keeps only the latest values,
 *    but its change history (store_events) says whether anything that
 *    could change the entries under the prefix happened after revision R:
 *    an event at, under or above the prefix (a rename of an ancestor moves
 *    the whole subtree). If none did, the subtree now IS the subtree as of
 *    R, on this member and on every other one that applied R. If one did,
 *    the page is refused (ESTALE) and the client starts again.
 * 3. Order: the prefix itself, then pre-order, each directory's names
 *    bytewise (store_list). A page ends after an entry; the next resumes
 *    after that path: its children next if it is a directory, else its
 *    next sibling, and so on up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

#define EXPORT_DEFAULT_LIMIT (1u << 20)
#define EXPORT_MAX_LIMIT     (8u << 20)

struct page {
    struct store_txn *t;
    Raftfs__ExportEntry *ents;
    Raftfs__Attr *attrs;
    char **paths;
    size_t n, cap;
    size_t bytes, limit;
    bool full;
    char *buf; /* the path being walked */
    size_t cap_path;
};

/* Is a the same path as b, or above or below it? */
static bool related(const char *a, size_t al, const char *b, size_t bl)
{
    if (al == 1 || bl == 1) /* the root is above everything */
        return true;
    size_t m = al < bl ? al : bl;
    if (memcmp(a, b, m))
        return false;
    return al == bl || (al > bl ? a[bl] : b[al]) == '/';
}

struct since {
    const char *prefix;
    size_t len;
    uint64_t at;
};

static int since_cb(void *ctx, const struct store_event *e)
{
    struct since *s = ctx;
    if (related(e->path, e->path_len, s->prefix, s->len) ||
        (e->path2 && related(e->path2, e->path2_len, s->prefix, s->len))) {
        s->at = e->revision;
        return -1;
    }
    return 0;
}

static int grow(struct page *pg)
{
    if (pg->n < pg->cap)
        return 0;
    size_t cap = pg->cap ? pg->cap * 2 : 64;
    Raftfs__ExportEntry *e = realloc(pg->ents, cap * sizeof(*e));
    if (!e)
        return ENOMEM;
    pg->ents = e;
    Raftfs__Attr *a = realloc(pg->attrs, cap * sizeof(*a));
    if (!a)
        return ENOMEM;
    pg->attrs = a;
    /* The entries point at their attributes, which may have moved (found
     * by tests/fuzz: client, an export page of more than 64 entries sent
     * freed memory). */
    for (size_t i = 0; i < pg->n; i++)
        pg->ents[i].attr = &pg->attrs[i];
    char **p = realloc(pg->paths, cap * sizeof(*p));
    if (!p)
        return ENOMEM;
    pg->paths = p;
    pg->cap = cap;
    return 0;
}

/* Adds the entry at pg->buf[0..len) to the page. */
static int emit(struct page *pg, size_t len, const struct store_attr *a)
{
    int rc = grow(pg);
    if (rc)
        return rc;
    char *path = malloc(len + 1);
    if (!path)
        return ENOMEM;
    memcpy(path, pg->buf, len);
    path[len] = 0;
    Raftfs__ExportEntry *e = &pg->ents[pg->n];
    raftfs__export_entry__init(e);
    node_attr_to_wire(a, &pg->attrs[pg->n]);
    e->attr = &pg->attrs[pg->n];
    e->path.data = (uint8_t *)path;
    e->path.len = len;
    pg->paths[pg->n] = path;
    pg->n++;
    if (a->type == STORE_TYPE_FILE) {
        const void *d;
        size_t vl;
        if ((rc = store_read(pg->t, a->ino, &d, &vl)))
            return rc;
        e->has_value = true;
        e->value.data = (uint8_t *)(vl ? d : "");
        e->value.len = vl;
        pg->bytes += vl;
    }
    pg->bytes += len + 64;
    if (pg->bytes >= pg->limit)
        pg->full = true;
    return 0;
}

static int walk_children(struct page *pg, uint64_t dir, size_t len, const char *rest,
                         size_t rest_len);

struct list_ctx {
    struct page *pg;
    size_t len; /* of the directory's path in pg->buf */
    int err;
};

/* Appends "/name" to the directory's path at len; the new length. */
static size_t child_path(struct page *pg, size_t len, const char *name, size_t nl)
{
    size_t at = len == 1 ? 1 : len + 1; /* the root's children: "/name" */
    pg->buf[len] = '/';
    memcpy(pg->buf + at, name, nl);
    return at + nl;
}

static int list_cb(void *ctx, const struct store_dirent *d)
{
    struct list_ctx *lc = ctx;
    struct page *pg = lc->pg;
    struct store_attr a;
    size_t cl = child_path(pg, lc->len, d->name, d->name_len);
    int rc = store_getattr(pg->t, d->ino, &a);
    if (!rc)
        rc = emit(pg, cl, &a);
    if (!rc && !pg->full && a.type == STORE_TYPE_DIR)
        rc = walk_children(pg, a.ino, cl, NULL, 0);
    if (rc) {
        lc->err = rc;
        return 1;
    }
    return pg->full ? 1 : 0;
}

/* The entries below directory dir (path pg->buf[0..len)) in pre-order;
 * rest (not NULL): resume after the entry at that path below dir
 * ("name/name2..."). */
static int walk_children(struct page *pg, uint64_t dir, size_t len, const char *rest,
                         size_t rest_len)
{
    const char *after = NULL;
    size_t after_len = 0;
    if (rest) {
        const char *slash = memchr(rest, '/', rest_len);
        size_t nl = slash ? (size_t)(slash - rest) : rest_len;
        struct store_attr a;
        int rc = store_lookup(pg->t, dir, rest, nl, &a);
        if (rc == ENOENT || rc == EINVAL)
            return STORE_ECONFLICT; /* gone: the history check missed nothing, so a bad resume */
        if (rc)
            return rc;
        if (a.type == STORE_TYPE_DIR) {
            size_t cl = child_path(pg, len, rest, nl);
            rc = walk_children(pg, a.ino, cl, slash ? slash + 1 : NULL,
                               slash ? rest_len - nl - 1 : 0);
            if (rc || pg->full)
                return rc;
        } else if (slash) {
            return STORE_ECONFLICT;
        }
        after = rest;
        after_len = nl;
    }
    struct list_ctx lc = {.pg = pg, .len = len};
    int rc = store_list(pg->t, dir, after, after_len, list_cb, &lc);
    return rc ? rc : lc.err;
}

void node_export_page(struct store *s, const Raftfs__ExportRequest *x,
                      void (*send)(void *ctx, Raftfs__ClientResponse *resp), void *ctx,
                      Raftfs__ClientResponse *resp)
{
    struct page pg = {0};
    const char *prefix = (const char *)x->prefix.data;
    size_t plen = x->prefix.len;
    struct store_limits lim;
    store_get_limits(s, &lim);
    int rc = store_path_check(prefix, plen, &lim);
    const char *after = x->has_after ? (const char *)x->after.data : NULL;
    size_t alen = x->has_after ? x->after.len : 0;
    /* after must be the prefix or below it. */
    if (!rc && after &&
        (store_path_check(after, alen, &lim) || !related(after, alen, prefix, plen) || alen < plen))
        rc = EINVAL;
    if (rc) {
        resp->err = rc;
        resp->message = "bad prefix or resume path";
        send(ctx, resp);
        return;
    }
    pg.limit = x->has_limit_bytes && x->limit_bytes ? x->limit_bytes : EXPORT_DEFAULT_LIMIT;
    if (pg.limit > EXPORT_MAX_LIMIT)
        pg.limit = EXPORT_MAX_LIMIT;
    pg.cap_path = (size_t)lim.max_path_bytes + lim.max_name_bytes + 2;
    if (!(pg.buf = malloc(pg.cap_path))) {
        resp->err = ENOMEM;
        send(ctx, resp);
        return;
    }
    if ((rc = store_txn_begin(s, &pg.t))) {
        free(pg.buf);
        resp->err = rc;
        send(ctx, resp);
        return;
    }
    uint64_t cur = store_txn_revision(pg.t);
    uint64_t rev = x->has_revision && x->revision ? x->revision : cur;
    resp->has_revision = true;
    resp->revision = rev;
    struct since since = {.prefix = prefix, .len = plen};
    uint64_t compacted = 0;
    if (rev > cur) {
        rc = EAGAIN;
        resp->message = "that revision is not reached on this member yet";
    } else if (rev < cur) {
        rc = store_events(pg.t, rev + 1, since_cb, &since, &compacted);
        if (rc == STORE_ECOMPACTED) {
            resp->message = "the change history no longer reaches back to that revision";
            resp->has_compact_revision = true;
            resp->compact_revision = compacted;
        } else if (!rc && since.at) {
            rc = STORE_ECONFLICT;
            resp->message = "the prefix changed after that revision";
            resp->revision = since.at;
        }
    }
    struct store_attr a;
    if (!rc && !(rc = store_resolve(pg.t, prefix, plen, &a))) {
        memcpy(pg.buf, prefix, plen);
        if (!after)
            rc = emit(&pg, plen, &a);
        if (!rc && !pg.full && a.type == STORE_TYPE_DIR) {
            const char *rest = NULL;
            size_t rest_len = 0;
            if (after && alen > plen) {
                rest = after + (plen == 1 ? 1 : plen + 1);
                rest_len = alen - (size_t)(rest - after);
            }
            rc = walk_children(&pg, a.ino, plen, rest, rest_len);
        } else if (!rc && after && alen > plen) {
            rc = EINVAL; /* below a file */
        }
    }
    if (rc) {
        resp->err = rc;
        if (rc == ENOENT)
            resp->message = "no such prefix";
    } else {
        Raftfs__ExportEntry **ptrs = malloc((pg.n + 1) * sizeof(*ptrs));
        if (!ptrs) {
            resp->err = ENOMEM;
        } else {
            for (size_t i = 0; i < pg.n; i++)
                ptrs[i] = &pg.ents[i];
            resp->n_export_entries = pg.n;
            resp->export_entries = ptrs;
            resp->has_more = true;
            resp->more = pg.full;
        }
    }
    send(ctx, resp); /* copies the values out of the map */
    free(resp->export_entries);
    resp->export_entries = NULL;
    resp->n_export_entries = 0;
    store_txn_end(pg.t);
    for (size_t i = 0; i < pg.n; i++)
        free(pg.paths[i]);
    free(pg.paths);
    free(pg.ents);
    free(pg.attrs);
    free(pg.buf);
}
