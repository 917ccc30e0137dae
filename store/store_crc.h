/* store_crc.h - CRC-32C of byte ranges (pure). */
#ifndef RAFTFS_STORE_CRC_H
#define RAFTFS_STORE_CRC_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over len bytes of buf (the processor's
 * instruction where there is one). */
uint32_t store_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same, by the byte-wise table (for the tests' cross-check). */
uint32_t store_crc32c_table(uint32_t crc, const void *buf, size_t len);

#endif
