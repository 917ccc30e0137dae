/* store_check_tree.c - the check of the tree: every inode record decodes;
 * walking from the root (breadth first, each directory in name order),
 * every dirent names an existing inode of its type, that records this
 * parent and name, reached once; counts, sizes, nlinks and revisions agree;
 * then whatever the walk did not reach is reported (orphans: the store
 * keeps no unlinked inode, an open handle keeps its content in memory).
 * Each entry is fed to the digest as it is reached. */
#include "store_check_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- a set of inode numbers ---- */

enum {
    INO_FILE = 1,
    INO_DIR = 2,
    INO_DAMAGED = 4, /* its record does not decode (reported) */
    INO_REACHED = 8, /* named by a dirent met walking from the root */
};

static size_t ino_hash(uint64_t ino, size_t cap)
{
    return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

static struct ino_slot *ino_find(const struct ino_set *set, uint64_t ino)
{
    if (!set->cap)
        return NULL;
    for (size_t i = ino_hash(ino, set->cap);; i = (i + 1) & (set->cap - 1)) {
        if (set->slots[i].ino == ino)
            return &set->slots[i];
        if (!set->slots[i].ino)
            return NULL;
    }
}

/* Adds ino (not yet in the set). ENOMEM. */
static int ino_add(struct ino_set *set, uint64_t ino, unsigned flags)
{
    if ((set->n + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 1024;
        struct ino_slot *slots = calloc(cap, sizeof(*slots));
        if (!slots)
            return ENOMEM;
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slots[i].ino)
                continue;
            size_t j = ino_hash(set->slots[i].ino, cap);
            while (slots[j].ino)
                j = (j + 1) & (cap - 1);
            slots[j] = set->slots[i];
        }
        free(set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    size_t i = ino_hash(ino, set->cap);
    while (set->slots[i].ino)
        i = (i + 1) & (set->cap - 1);
    set->slots[i] = (struct ino_slot){.ino = ino, .flags = flags};
    set->n++;
    return 0;
}

/* ---- the tree ---- */

/* Every inode record: decodes, key, below next_ino. Builds c->inos. */
static int scan_inodes(struct store_checker *c)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(c->txn, c->s->inodes, &cur);
    if (rc) {
        store_check_unreadable(c, "inodes", rc);
        return 0;
    }
    MDB_val k, v;
    uint64_t count = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!c->values_apart && store_is_value_key(k.mv_data, k.mv_size))
            continue; /* a value: checked with its file, or reported as loose below */
        count++;
        if (k.mv_size != 8) {
            store_check_problem(c, "an inode record has a %zu-byte key (inodes)", k.mv_size);
            continue;
        }
        uint64_t ino = store_u64be_get(k.mv_data);
        struct store_inode in;
        unsigned flags;
        if (ino == 0 || store_inode_decode(v.mv_data, v.mv_size, &in)) {
            store_check_problem(c, "inode record does not decode (inode %llu)",
                                (unsigned long long)ino);
            flags = INO_DAMAGED;
        } else {
            flags = in.attr.type == STORE_TYPE_DIR ? INO_DIR : INO_FILE;
        }
        if (c->have_state && ino >= c->st.next_ino)
            store_check_problem(c,
                                "inode number at or above the next one to give, %llu (inode %llu)",
                                (unsigned long long)c->st.next_ino, (unsigned long long)ino);
        if (ino && (rc = ino_add(&c->inos, ino, flags))) {
            mdb_cursor_close(cur);
            return rc;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        store_check_unreadable(c, "inodes", rc);
    if (c->have_state && count != c->st.inodes)
        store_check_problem(c, "%llu inode records, the state record counts %llu (meta)",
                            (unsigned long long)count, (unsigned long long)c->st.inodes);
    return 0;
}

/* The checks of one entry's own attributes. */
static void check_attr(struct store_checker *c, const struct store_attr *a, const char *where)
{
    bool root = a->ino == STORE_ROOT_INO;
    if (!root && (a->create_revision == 0 || a->version == 0))
        store_check_problem(c, "create revision %llu, version %llu: both start at 1 (%s)",
                            (unsigned long long)a->create_revision, (unsigned long long)a->version,
                            where);
    if (a->mod_revision < a->create_revision)
        store_check_problem(c, "mod revision %llu below create revision %llu (%s)",
                            (unsigned long long)a->mod_revision,
                            (unsigned long long)a->create_revision, where);
    if (c->have_state && a->mod_revision > c->st.revision)
        store_check_problem(c, "mod revision %llu above the store's revision %llu (%s)",
                            (unsigned long long)a->mod_revision, (unsigned long long)c->st.revision,
                            where);
    if (a->type == STORE_TYPE_DIR && a->size != 0)
        store_check_problem(c, "directory of size %llu, not 0 (%s)", (unsigned long long)a->size,
                            where);
    if (a->type == STORE_TYPE_FILE && a->nlink != 1)
        store_check_problem(c, "file with nlink %u, not 1 (%s)", a->nlink, where);
    if (a->type == STORE_TYPE_FILE && a->size > c->lim.max_value_bytes)
        store_check_problem(c, "file of %llu bytes, over the store's limit of %u (%s)",
                            (unsigned long long)a->size, c->lim.max_value_bytes, where);
}

/* A file's value: present, as long as the inode says, matching the
 * inode's checksum of it (when it has one); hashed. */
static void check_value(struct store_checker *c, const struct store_attr *a, uint32_t crc,
                        const char *path, size_t path_len, const char *where)
{
    unsigned char kb[STORE_VALUE_KEY_LEN];
    store_value_key(a->ino, kb);
    MDB_val k = {.mv_size = c->values_apart ? 8 : STORE_VALUE_KEY_LEN, .mv_data = kb},
            v = {.mv_size = 0, .mv_data = NULL};
    int rc = mdb_get(c->txn, c->values_apart ? c->s->data : c->s->inodes, &k, &v);
    if (rc == MDB_NOTFOUND)
        store_check_problem(c, "file has no value record (%s)", where);
    else if (rc)
        store_check_unreadable(c, c->values_apart ? "data" : "inodes", rc);
    else if (v.mv_size != a->size)
        store_check_problem(c, "value of %zu bytes, the inode says %llu (%s)", v.mv_size,
                            (unsigned long long)a->size, where);
    else if (crc && store_value_crc(v.mv_data, v.mv_size) != crc)
        store_check_problem(c, "value does not match its checksum: damaged (%s)", where);
    store_digest_entry(c, path, path_len, a, v.mv_data, v.mv_size);
}

struct dir_item {
    uint64_t ino;
    char *path; /* malloc'd */
    size_t path_len;
};

struct dir_queue {
    struct dir_item *items;
    size_t head, n, cap;
};

static int queue_push(struct dir_queue *q, uint64_t ino, const char *path, size_t len)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct dir_item *p = realloc(q->items, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        q->items = p;
        q->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return ENOMEM;
    memcpy(copy, path, len);
    copy[len] = 0;
    q->items[q->n++] = (struct dir_item){.ino = ino, .path = copy, .path_len = len};
    return 0;
}

/* Checks directory d (reached at d->path) and every entry in it; queues
 * its subdirectories. */
static int check_dir(struct store_checker *c, const struct dir_item *d, struct dir_queue *q)
{
    struct store_inode dir;
    char where[STORE_CHECK_SHOW_BUF], where2[STORE_CHECK_SHOW_BUF];
    int rc = store_inode_load(c->s, c->txn, d->ino, &dir);
    if (rc)
        return rc == ENOENT ? EIO : rc; /* it was there a moment ago, same txn */
    size_t cap = d->path_len + 1 + STORE_MAX_NAME_BYTES_BOUND + 1;
    char *path = malloc(cap);
    if (!path)
        return ENOMEM;
    size_t base = d->path_len;
    memcpy(path, d->path, base);
    if (base > 1)
        path[base++] = '/';

    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(c->txn, c->s->dirents, &cur))) {
        free(path);
        store_check_unreadable(c, "dirents", rc);
        return 0;
    }
    unsigned char kb[8];
    store_u64be_put(kb, d->ino);
    MDB_val k = {.mv_size = 8, .mv_data = kb}, v;
    uint32_t subdirs = 0;
    int mrc;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !mrc;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 8 || memcmp(k.mv_data, kb, 8))
            break;
        const char *name = (const char *)k.mv_data + 8;
        size_t name_len = k.mv_size - 8;
        if (name_len > STORE_MAX_NAME_BYTES_BOUND) {
            store_check_problem(c, "dirent of a %zu-byte name under %s (dirents)", name_len,
                                store_check_show(d->path, d->path_len, where));
            continue;
        }
        memcpy(path + base, name, name_len);
        size_t len = base + name_len;
        path[len] = 0;
        store_check_show(path, len, where);
        if (store_name_check(name, name_len, &c->lim))
            store_check_problem(c, "bad name in a dirent (%s)", where);
        uint64_t ino;
        enum store_type type;
        if (store_dirent_val_decode(v.mv_data, v.mv_size, &ino, &type)) {
            store_check_problem(c, "dirent does not decode (%s)", where);
            continue;
        }
        struct ino_slot *slot = ino_find(&c->inos, ino);
        if (!slot) {
            store_check_problem(c, "dirent names inode %llu, which does not exist (%s)",
                                (unsigned long long)ino, where);
            continue;
        }
        if (slot->flags & INO_REACHED) {
            store_check_problem(c, "inode %llu is reached a second time (%s)",
                                (unsigned long long)ino, where);
            continue;
        }
        slot->flags |= INO_REACHED;
        if (slot->flags & INO_DAMAGED)
            continue; /* reported by scan_inodes */
        struct store_inode in;
        if ((rc = store_inode_load(c->s, c->txn, ino, &in)))
            break;
        if (in.attr.type != type)
            store_check_problem(c, "dirent says %s, inode %llu is a %s (%s)",
                                type == STORE_TYPE_DIR ? "directory" : "file",
                                (unsigned long long)ino,
                                in.attr.type == STORE_TYPE_DIR ? "directory" : "file", where);
        if (in.attr.parent != d->ino || in.name_len != name_len || memcmp(in.name, name, name_len))
            store_check_problem(
                c, "inode %llu records parent %llu and name '%s', not where it is (%s)",
                (unsigned long long)ino, (unsigned long long)in.attr.parent,
                store_check_show(in.name, in.name_len, where2), where);
        check_attr(c, &in.attr, where);
        if (in.attr.type == STORE_TYPE_DIR) {
            c->rep->dirs++;
            subdirs++;
            store_digest_entry(c, path, len, &in.attr, NULL, 0);
            if ((rc = queue_push(q, ino, path, len)))
                break;
        } else {
            c->rep->files++;
            check_value(c, &in.attr, in.value_crc, path, len, where);
        }
    }
    mdb_cursor_close(cur);
    free(path);
    if (rc)
        return rc;
    if (mrc && mrc != MDB_NOTFOUND)
        store_check_unreadable(c, "dirents", mrc);
    store_check_show(d->path, d->path_len, where);
    if (dir.attr.nlink != 2 + subdirs)
        store_check_problem(c, "directory nlink %u, with %u subdirectories it must be %u (%s)",
                            dir.attr.nlink, subdirs, 2 + subdirs, where);
    return 0;
}

/* Walks the tree from the root, breadth first. */
static int walk_tree(struct store_checker *c)
{
    struct ino_slot *slot = ino_find(&c->inos, STORE_ROOT_INO);
    if (!slot) {
        store_check_problem(c, "the root directory is missing (inode 1)");
        return 0;
    }
    slot->flags |= INO_REACHED;
    if (slot->flags & INO_DAMAGED)
        return 0;
    struct store_inode root;
    int rc = store_inode_load(c->s, c->txn, STORE_ROOT_INO, &root);
    if (rc)
        return rc == ENOENT ? EIO : rc;
    if (root.attr.type != STORE_TYPE_DIR) {
        store_check_problem(c, "the root is not a directory (/)");
        return 0;
    }
    if (root.attr.parent != STORE_ROOT_INO || root.name_len)
        store_check_problem(
            c, "the root records parent %llu and a %zu-byte name, not itself and none (/)",
            (unsigned long long)root.attr.parent, root.name_len);
    check_attr(c, &root.attr, "/");
    c->rep->dirs++;
    store_digest_entry(c, "/", 1, &root.attr, NULL, 0);
    struct dir_queue q = {0};
    rc = queue_push(&q, STORE_ROOT_INO, "/", 1);
    while (!rc && q.head < q.n) {
        struct dir_item it = q.items[q.head++];
        rc = check_dir(c, &it, &q);
        free(it.path);
    }
    while (q.head < q.n)
        free(q.items[q.head++].path);
    free(q.items);
    c->rep->entries = c->rep->files + c->rep->dirs;
    return rc;
}

/* After the walk: inodes nobody reached, dirents under no directory of the
 * tree, values of no file of the tree. */
static void check_unreached(struct store_checker *c)
{
    char where[STORE_CHECK_SHOW_BUF];
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    if (!(rc = mdb_cursor_open(c->txn, c->s->inodes, &cur))) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (!c->values_apart && store_is_value_key(k.mv_data, k.mv_size)) {
                /* A value whose inode is not a file (or is gone). */
                uint64_t ino = store_u64be_get(k.mv_data);
                struct ino_slot *slot = ino_find(&c->inos, ino);
                if (!slot || !(slot->flags & (INO_FILE | INO_DAMAGED)))
                    store_check_problem(c,
                                        "value record of inode %llu, which is not a file "
                                        "(inodes)",
                                        (unsigned long long)ino);
                continue;
            }
            if (k.mv_size != 8)
                continue;
            struct ino_slot *slot = ino_find(&c->inos, store_u64be_get(k.mv_data));
            if (!slot || (slot->flags & (INO_REACHED | INO_DAMAGED)))
                continue;
            struct store_inode in;
            if (store_inode_decode(v.mv_data, v.mv_size, &in))
                continue;
            store_check_problem(
                c, "orphan: not reachable from the root (inode %llu, parent %llu, name '%s')",
                (unsigned long long)slot->ino, (unsigned long long)in.attr.parent,
                store_check_show(in.name, in.name_len, where));
        }
        mdb_cursor_close(cur);
    }
    if (rc != MDB_NOTFOUND)
        store_check_unreadable(c, "inodes", rc);

    if (!(rc = mdb_cursor_open(c->txn, c->s->dirents, &cur))) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size < 8) {
                store_check_problem(c, "a dirent has a %zu-byte key (dirents)", k.mv_size);
                continue;
            }
            /* Dirents of the tree were checked by the walk; those under
             * an orphan or a damaged directory are reported with it. */
            uint64_t parent = store_u64be_get(k.mv_data);
            struct ino_slot *slot = ino_find(&c->inos, parent);
            if (slot && (slot->flags & (INO_DIR | INO_DAMAGED)))
                continue;
            store_check_problem(
                c, "dirent under inode %llu, which is not a directory (name '%s')",
                (unsigned long long)parent,
                store_check_show((const char *)k.mv_data + 8, k.mv_size - 8, where));
        }
        mdb_cursor_close(cur);
    }
    if (rc != MDB_NOTFOUND)
        store_check_unreadable(c, "dirents", rc);

    if (!(rc = mdb_cursor_open(c->txn, c->s->data, &cur))) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (!c->values_apart) { /* format 2 keeps no value here */
                store_check_problem(c, "a value record in the table of store format 1 (data)");
                continue;
            }
            if (k.mv_size != 8) {
                store_check_problem(c, "a value record has a %zu-byte key (data)", k.mv_size);
                continue;
            }
            uint64_t ino = store_u64be_get(k.mv_data);
            struct ino_slot *slot = ino_find(&c->inos, ino);
            if (slot && (slot->flags & (INO_FILE | INO_DAMAGED)))
                continue; /* the walk checked it, or its inode is reported */
            store_check_problem(c, "value record of inode %llu, which is not a file (data)",
                                (unsigned long long)ino);
        }
        mdb_cursor_close(cur);
    }
    if (rc != MDB_NOTFOUND)
        store_check_unreadable(c, "data", rc);
}

int store_check_tree(struct store_checker *c)
{
    int rc = scan_inodes(c);
    if (!rc)
        rc = walk_tree(c);
    if (!rc)
        check_unreached(c);
    return rc;
}
