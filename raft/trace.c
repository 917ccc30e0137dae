/* raft/trace.c: the tracer: one stable line per event, prefixed with member id and term. */
#include <stdarg.h>
#include <stdio.h>

#include "impl.h"

static const char *role_name(enum raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "F";
    case RAFT_PRE_CANDIDATE:
        return "P";
    case RAFT_CANDIDATE:
        return "C";
    case RAFT_LEADER:
        return "L";
    }
    return "?";
}

void raft_trace_event(struct raft *r, const char *fmt, ...)
{
    if (r->cfg.trace == NULL) {
        return;
    }
    int n = snprintf(r->line, sizeof(r->line), "n%llu t%llu %s ", (unsigned long long)r->id,
                     (unsigned long long)r->term, role_name(r->role));
    if (n < 0 || (size_t)n >= sizeof(r->line)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->line + n, sizeof(r->line) - (size_t)n, fmt, ap);
    va_end(ap);
    r->cfg.trace(r->cfg.trace_ctx, r->line);
}
