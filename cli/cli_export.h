/* cli_export.h - the entries of an export, and their two file formats
 * (JSON and tar), shared by `raftfs export` and `raftfs import`. */
#ifndef RAFTFS_CLI_EXPORT_H
#define RAFTFS_CLI_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct xentry {
    char *path; /* absolute, NUL-terminated (may hold other bytes than UTF-8) */
    size_t path_len;
    bool dir;
    bool implicit; /* import: a directory the archive left out */
    uint32_t mode; /* permission bits */
    uint32_t uid, gid;
    int64_t mtime_ns;
    uint64_t create_revision, mod_revision, version; /* 0 when read from a tar */
    uint8_t *value;                                  /* files */
    size_t value_len;
};

struct xset {
    char *prefix; /* what was exported ("/" for everything) */
    size_t prefix_len;
    uint64_t revision; /* 0 if not known */
    struct xentry *e;
    size_t n, cap;
};

void cli_xset_free(struct xset *x);
/* Adds an entry (path and value copied). ENOMEM. */
int cli_xset_add(struct xset *x, const struct xentry *e);

/* Writers: 0 or the errno of writing. */
int cli_xset_write_json(const struct xset *x, FILE *f);
int cli_xset_write_tar(const struct xset *x, FILE *f);

/* Readers: EINVAL with a reason in err for anything malformed or not
 * supported (links, devices, "..", a path twice). */
int cli_xset_read_json(const char *text, size_t len, struct xset *x, char *err, size_t err_len);
int cli_xset_read_tar(const uint8_t *data, size_t len, struct xset *x, char *err, size_t err_len);

#endif
