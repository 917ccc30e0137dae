/* node_log.c - one line per event on stderr: time, level, message. Never a
 * value's bytes (secrets hygiene): callers log paths and errnos only. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "node.h"

/* Set once at start-up, before any thread runs. */
static enum node_log_level log_level = NODE_LOG_INFO;
static FILE *log_file;

void node_log_set_file(FILE *f)
{
    log_file = f;
}

void node_log_set_level(enum node_log_level level)
{
    log_level = level;
}

void node_log(enum node_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (level > log_level)
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ raftfs %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so that lines of threads do not interleave. */
    FILE *out = log_file ? log_file : stderr;
    fprintf(out, "%s\n", line);
    fflush(out);
}
