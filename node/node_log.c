/* node_log.c - one line per event, in logfmt (key=value):
 *
 *   ts=2026-12-07T05:35:06.123Z level=info member=2 term=5 msg="member 1 is the leader of term 5"
 *
 * ts is UTC with milliseconds; member is this process's member id (absent
 * until set); term is the member's current term as of the last loop turn
 * (absent until known, and in the guard process); msg is always quoted,
 * with \" \\ \n \r \t and \xHH escapes, so one event is one line whatever
 * it says. To stderr, a file, or syslog(3) (without ts: syslog stamps its
 * own). Never a value's bytes (secrets hygiene): callers log paths and
 * errnos only; tests/bats/ops.bats checks it. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "node.h"

#define LOG_TERM_UNKNOWN UINT64_MAX

/* Set once at start-up, before any thread runs; the term by the loop. */
static enum node_log_level log_level = NODE_LOG_INFO;
static FILE *log_file;
static bool log_to_syslog;
static uint64_t log_member;
static _Atomic uint64_t log_term = LOG_TERM_UNKNOWN;

void node_log_set_file(FILE *f)
{
    log_file = f;
}

void node_log_set_level(enum node_log_level level)
{
    log_level = level;
}

void node_log_set_member(uint64_t id)
{
    log_member = id;
}

void node_log_set_term(uint64_t member, uint64_t term)
{
    if (member == log_member)
        atomic_store_explicit(&log_term, term, memory_order_relaxed);
}

void node_log_set_syslog(bool on)
{
    if (on && !log_to_syslog)
        openlog("raftfs", LOG_PID, LOG_DAEMON);
    else if (!on && log_to_syslog)
        closelog();
    log_to_syslog = on;
}

bool node_log_is_syslog(void)
{
    return log_to_syslog;
}

void node_log_child(void)
{
    atomic_store_explicit(&log_term, LOG_TERM_UNKNOWN, memory_order_relaxed);
    if (log_to_syslog)
        closelog(); /* its socket is the parent's; the next line opens one */
}

struct line {
    char *buf;
    size_t cap, len; /* len may pass cap: the length needed */
};

static void put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = l->len < l->cap ? l->cap - l->len : 0;
    int n = vsnprintf(room ? l->buf + l->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n;
}

/* msg as a quoted logfmt value. */
static void put_quoted(struct line *l, const char *msg)
{
    put(l, "\"");
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        switch (*p) {
        case '"':
            put(l, "\\\"");
            break;
        case '\\':
            put(l, "\\\\");
            break;
        case '\n':
            put(l, "\\n");
            break;
        case '\r':
            put(l, "\\r");
            break;
        case '\t':
            put(l, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                put(l, "\\x%02x", *p);
            else
                put(l, "%c", *p);
        }
    }
    put(l, "\"");
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static size_t format(char *buf, size_t cap, bool with_ts, enum node_log_level level,
                     const char *msg)
{
    struct line l = {.buf = buf, .cap = cap};
    if (cap)
        buf[0] = 0;
    if (with_ts) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        put(&l, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    }
    put(&l, "level=%s", level_names[level]);
    if (log_member)
        put(&l, " member=%llu", (unsigned long long)log_member);
    uint64_t term = atomic_load_explicit(&log_term, memory_order_relaxed);
    if (term != LOG_TERM_UNKNOWN)
        put(&l, " term=%llu", (unsigned long long)term);
    put(&l, " msg=");
    put_quoted(&l, msg);
    return l.len;
}

size_t node_log_format(char *buf, size_t cap, enum node_log_level level, const char *msg)
{
    return format(buf, cap, true, level, msg);
}

void node_log(enum node_log_level level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char msg[1024], line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_to_syslog) {
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        format(line, sizeof(line), false, level, msg);
        syslog(prio[level], "%s", line);
        return;
    }
    /* Cut short, a line still ends its quote: one event, one line. */
    if (format(line, sizeof(line), true, level, msg) >= sizeof(line))
        snprintf(line + sizeof(line) - 6, 6, "...\"");
    /* One write per line so that lines of threads do not interleave. */
    FILE *out = log_file ? log_file : stderr;
    fprintf(out, "%s\n", line);
    fflush(out);
}
