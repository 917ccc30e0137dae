/* tests/sim/lincheck.h: linearizability checker for single registers (Wing-Gong search, memoised).
 */
#ifndef SIM_LINCHECK_H
#define SIM_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIN_MAX_OPS 64
#define LIN_NEVER   UINT64_MAX

struct lin_op {
    bool write;
    uint64_t value;    /* written value, or the value a read returned */
    uint64_t invoke;   /* logical time of the invocation */
    uint64_t complete; /* logical time of the answer; LIN_NEVER: outcome unknown (writes) */
};

/* True if some total order of ops, consistent with real time, explains every result of a
 * register that starts at initial. Unknown writes may take effect or not. */
bool lin_check(const struct lin_op *ops, size_t n, uint64_t initial);

#endif
