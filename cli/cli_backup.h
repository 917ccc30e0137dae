/* cli_backup.h - the backup file of `raftfs snapshot` (format in
 * cli_backup.c) and what its commands share: reading one back whole,
 * scratch files and directories. */
#ifndef RAFTFS_CLI_BACKUP_H
#define RAFTFS_CLI_BACKUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLI_BACKUP_HDR_LEN 64
#define CLI_BACKUP_VERSION 1U /* of the file's format (cli_backup.c) */

struct cli_backup {
    uint64_t index, term, revision; /* of the image: the state after entry index */
    uint64_t image_bytes;           /* the file is CLI_BACKUP_HDR_LEN + this long */
};

/* The header of b, CRC included. */
void cli_backup_header(const struct cli_backup *b, unsigned char h[CLI_BACKUP_HDR_LEN]);

/* Checks the backup file at path whole (cli_backup.c) and, if image_fd,
 * copies its image into an unnamed file in directory tmp, returned in
 * *image_fd (the caller closes it). EPROTO (damaged, truncated, not a
 * backup) or an errno of the OS, with a one-line reason in err. */
int cli_backup_read(const char *path, const char *tmp, struct cli_backup *b, int *image_fd,
                    char *err, size_t err_len);

/* pwrite of all len bytes: 0 or an errno. */
int cli_pwrite_all(int fd, const void *buf, size_t len, off_t off);

/* $TMPDIR, else /tmp. */
const char *cli_tmp_dir(void);

/* Removes dir and everything under it (errors ignored). */
void cli_rm_tree(const char *dir);

/* vsnprintf into an error buffer (where a long path may cut the message). */
void cli_seterr(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
