/* fsbench.c - file operations per second on a directory (a raftfs mount, or
 * tmpfs for the ceiling), closed loop, N threads.
 *
 * usage: fsbench DIR [--threads N] [--seconds S] [--value-size B]
 *                    [--files F] [--ops write,read,stat] [--json]
 *
 *   write  open(O_WRONLY|O_CREAT|O_TRUNC) + write(B bytes) + close
 *   read   open(O_RDONLY) + read + close (checks the length)
 *   stat   stat
 * Each thread works on its own F files (DIR/fsbench-T-K), created first.
 * Prints one line per op: ops/s and latency percentiles in microseconds.
 * Any failed call stops the run with exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum bench_op { OP_WRITE, OP_READ, OP_STAT };
static const char *const op_names[] = {"write", "read", "stat"};

struct bench {
    const char *dir;
    int threads;
    double seconds;
    size_t value_size;
    int files;
    enum bench_op op;
    atomic_int stop;
    pthread_barrier_t start;
};

struct worker {
    struct bench *b;
    int id;
    uint64_t ops;
    uint32_t *lat_us; /* one sample per op, capped */
    size_t n_lat, cap_lat;
    int failed;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one(struct worker *w, const char *path, char *buf)
{
    struct bench *b = w->b;
    struct stat st;
    int fd;
    ssize_t n;
    switch (b->op) {
    case OP_WRITE:
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            return errno;
        n = write(fd, buf, b->value_size);
        if (n != (ssize_t)b->value_size) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            return e;
        }
        return close(fd) ? errno : 0;
    case OP_READ:
        fd = open(path, O_RDONLY);
        if (fd < 0)
            return errno;
        n = read(fd, buf, b->value_size + 1);
        close(fd);
        return n == (ssize_t)b->value_size ? 0 : (n < 0 ? errno : EIO);
    case OP_STAT:
        return stat(path, &st) ? errno : 0;
    }
    return EINVAL;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct bench *b = w->b;
    char *buf = malloc(b->value_size + 1);
    char path[4096];
    memset(buf, 'a' + w->id % 26, b->value_size + 1);
    pthread_barrier_wait(&b->start);
    for (uint64_t k = 0; !atomic_load(&b->stop); k++) {
        snprintf(path, sizeof(path), "%s/fsbench-%d-%llu", b->dir, w->id,
                 (unsigned long long)(k % (uint64_t)b->files));
        double t0 = mono_s();
        int rc = one(w, path, buf);
        double t1 = mono_s();
        if (rc) {
            fprintf(stderr, "fsbench: %s %s: %s\n", op_names[b->op], path, strerror(rc));
            w->failed = 1;
            atomic_store(&b->stop, 1);
            break;
        }
        w->ops++;
        if (w->n_lat < w->cap_lat)
            w->lat_us[w->n_lat++] = (uint32_t)((t1 - t0) * 1e6);
    }
    free(buf);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Creates every thread's files with the value, so reads and stats find them. */
static int prepare(struct bench *b)
{
    char *buf = malloc(b->value_size);
    char path[4096];
    memset(buf, 'p', b->value_size);
    for (int t = 0; t < b->threads; t++) {
        for (int k = 0; k < b->files; k++) {
            snprintf(path, sizeof(path), "%s/fsbench-%d-%d", b->dir, t, k);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, buf, b->value_size) != (ssize_t)b->value_size || close(fd)) {
                fprintf(stderr, "fsbench: preparing %s: %s\n", path, strerror(errno));
                free(buf);
                return 1;
            }
        }
    }
    free(buf);
    return 0;
}

static int bench_op(struct bench *b, int json)
{
    struct worker *w = calloc((size_t)b->threads, sizeof(*w));
    pthread_t *th = calloc((size_t)b->threads, sizeof(*th));
    atomic_store(&b->stop, 0);
    pthread_barrier_init(&b->start, NULL, (unsigned)b->threads + 1);
    for (int i = 0; i < b->threads; i++) {
        w[i].b = b;
        w[i].id = i;
        w[i].cap_lat = 4u << 20;
        w[i].lat_us = malloc(w[i].cap_lat * sizeof(uint32_t));
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    pthread_barrier_wait(&b->start);
    double t0 = mono_s();
    struct timespec nap = {.tv_sec = (time_t)b->seconds,
                           .tv_nsec = (long)((b->seconds - (double)(time_t)b->seconds) * 1e9)};
    nanosleep(&nap, NULL);
    atomic_store(&b->stop, 1);
    uint64_t ops = 0;
    size_t n = 0;
    int failed = 0;
    for (int i = 0; i < b->threads; i++) {
        pthread_join(th[i], NULL);
        ops += w[i].ops;
        n += w[i].n_lat;
        failed |= w[i].failed;
    }
    double elapsed = mono_s() - t0;
    uint32_t *all = malloc((n ? n : 1) * sizeof(uint32_t));
    size_t at = 0;
    for (int i = 0; i < b->threads; i++) {
        memcpy(all + at, w[i].lat_us, w[i].n_lat * sizeof(uint32_t));
        at += w[i].n_lat;
        free(w[i].lat_us);
    }
    qsort(all, n, sizeof(uint32_t), cmp_u32);
#define PCT(p) (n ? all[(size_t)((double)(n - 1) * (p))] : 0)
    double rate = (double)ops / elapsed;
    if (json)
        printf("{\"op\":\"%s\",\"threads\":%d,\"ops\":%llu,\"seconds\":%.3f,\"ops_per_s\":%.0f,"
               "\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,\"max_us\":%u}\n",
               op_names[b->op], b->threads, (unsigned long long)ops, elapsed, rate, PCT(0.5),
               PCT(0.9), PCT(0.99), n ? all[n - 1] : 0);
    else
        printf("%-5s threads=%d ops/s=%.0f p50=%uus p90=%uus p99=%uus max=%uus (%llu ops in "
               "%.2fs)\n",
               op_names[b->op], b->threads, rate, PCT(0.5), PCT(0.9), PCT(0.99), n ? all[n - 1] : 0,
               (unsigned long long)ops, elapsed);
#undef PCT
    free(all);
    free(w);
    free(th);
    pthread_barrier_destroy(&b->start);
    return failed;
}

static void usage(void)
{
    fprintf(stderr, "usage: fsbench DIR [--threads N] [--seconds S] [--value-size B] "
                    "[--files F] [--ops write,read,stat] [--json]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'},
        {"value-size", required_argument, NULL, 'v'},
        {"files", required_argument, NULL, 'f'},
        {"ops", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    struct bench b = {.threads = 1, .seconds = 3, .value_size = 256, .files = 16};
    const char *ops = "write,read,stat";
    int json = 0, c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            b.threads = atoi(optarg);
            break;
        case 's':
            b.seconds = atof(optarg);
            break;
        case 'v':
            b.value_size = (size_t)atol(optarg);
            break;
        case 'f':
            b.files = atoi(optarg);
            break;
        case 'o':
            ops = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            usage();
        }
    }
    if (optind != argc - 1 || b.threads < 1 || b.threads > 256 || b.seconds <= 0 ||
        b.value_size < 1 || b.value_size > (64u << 20) || b.files < 1)
        usage();
    b.dir = argv[optind];
    if (prepare(&b))
        return 1;
    int failed = 0;
    char *list = strdup(ops), *save = NULL;
    for (char *o = strtok_r(list, ",", &save); o && !failed; o = strtok_r(NULL, ",", &save)) {
        int k;
        for (k = 0; k < 3 && strcmp(o, op_names[k]); k++)
            ;
        if (k == 3)
            usage();
        b.op = (enum bench_op)k;
        failed = bench_op(&b, json);
    }
    free(list);
    return failed;
}
