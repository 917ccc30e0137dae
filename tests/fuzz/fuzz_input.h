/* fuzz_input.h - a fuzz input read as a program: one byte at a time, zeros
 * once it is used up (so every input is a whole program). */
#ifndef RAFTFS_FUZZ_INPUT_H
#define RAFTFS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct input {
    const uint8_t *p;
    size_t left;
};

static inline uint8_t in_byte(struct input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

#endif
