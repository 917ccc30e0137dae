/* cli.h - the subcommands of the raftfs binary. Each returns the process's
 * exit status (0, 1 runtime failure, 2 usage error). */
#ifndef RAFTFS_CLI_H
#define RAFTFS_CLI_H

#include <stdint.h>

extern const char cli_mount_usage[];

/* argv[0] is "mount". */
int cli_mount(int argc, char **argv);
void cli_version(void);

/* Parses "123", "64K", "1M", "4G", "1T" (powers of 1024) into *out, at most
 * max. 0 or EINVAL (junk, negative, overflow, above max). */
int cli_parse_size(const char *s, uint64_t max, uint64_t *out);

#endif
