/* test_store_crash.c - crash safety: a process applying commands is killed
 * at random moments (SIGKILL, so between any commit and the next apply);
 * after reopening, every acknowledged command is there, the applied index
 * matches the data exactly, and re-applying from index 1 applies nothing
 * twice. Batches are all-or-nothing. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "store_util.h"

#define ROUNDS 6
#define BATCH  10

/* Child: index 1 creates /log, each later index appends "x". Acknowledged
 * indexes are written to the pipe after store_apply returns. */
static void child(const char *dir, int fd, int batch)
{
    struct store *s = open_store(dir);
    struct store_stats st;
    if (store_get_stats(s, &st))
        _exit(3);
    uint64_t next = st.applied_index + 1;
    struct store_cmd put = {
        .op = STORE_OP_PUT, .path = "/log", .path_len = 4, .value = "", .mode = 0644, .time_ns = 1};
    struct store_cmd app = {.op = STORE_OP_APPEND,
                            .path = "/log",
                            .path_len = 4,
                            .value = "x",
                            .value_len = 1,
                            .time_ns = 1};
    void *penc, *aenc;
    size_t plen, alen;
    if (store_cmd_encode(&put, &penc, &plen) || store_cmd_encode(&app, &aenc, &alen))
        _exit(3);
    for (;;) {
        struct store_entry e[BATCH];
        struct store_result r[BATCH];
        for (int i = 0; i < batch; i++) {
            uint64_t idx = next + (uint64_t)i;
            e[i] = (struct store_entry){
                .index = idx, .data = idx == 1 ? penc : aenc, .len = idx == 1 ? plen : alen};
        }
        if (store_apply_batch(s, e, (size_t)batch, r))
            _exit(4);
        next += (uint64_t)batch;
        uint64_t acked = next - 1;
        if (write(fd, &acked, sizeof(acked)) != sizeof(acked))
            _exit(5);
    }
}

static void run(int batch)
{
    char *dir = tmpdir_make();
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    printf("# batch %d, seed %llu\n", batch, (unsigned long long)seed);
    for (int round = 0; round < ROUNDS; round++) {
        int p[2];
        if (pipe(p))
            exit(2);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            child(dir, p[1], batch);
        }
        close(p[1]);
        /* Let it run for a random number of acknowledged applies. */
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int want = 5 + (int)((seed >> 33) % 60);
        uint64_t acked = 0, v;
        for (int i = 0; i < want && read(p[0], &v, sizeof(v)) == sizeof(v); i++)
            acked = v;
        /* And a random short delay, so the kill lands anywhere in an apply. */
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)((seed >> 20) % 2000000)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        while (read(p[0], &v, sizeof(v)) == sizeof(v))
            acked = v; /* acknowledged before the kill */
        close(p[0]);

        struct tstore t = {.dir = dir, .s = open_store(dir)};
        struct store_stats st;
        CHECK_EQ(store_get_stats(t.s, &st), 0);
        /* Nothing acknowledged is lost. */
        CHECK(st.applied_index >= acked);
        /* Batches are atomic: the applied index is at a batch boundary. */
        CHECK_EQ(st.applied_index % (uint64_t)batch, 0);
        /* The data matches the applied index exactly. */
        struct store_attr a;
        CHECK_EQ(t_stat(&t, "/log", &a), 0);
        CHECK_EQ(a.size, st.applied_index - 1);
        CHECK_EQ(st.revision, st.applied_index);
        store_close(t.s);
    }
    /* Re-applying every index from 1 applies nothing twice. */
    struct tstore t = {.dir = dir, .s = open_store(dir)};
    struct store_stats st;
    CHECK_EQ(store_get_stats(t.s, &st), 0);
    uint64_t applied = st.applied_index;
    struct store_cmd app = {.op = STORE_OP_APPEND,
                            .path = "/log",
                            .path_len = 4,
                            .value = "x",
                            .value_len = 1,
                            .time_ns = 1};
    void *enc;
    size_t len;
    CHECK_EQ(store_cmd_encode(&app, &enc, &len), 0);
    for (uint64_t i = 1; i <= applied + 5; i++) {
        struct store_result r;
        CHECK_EQ(store_apply(t.s, i, enc, len, &r), 0);
        CHECK_EQ(r.skipped, i <= applied);
    }
    free(enc);
    struct store_attr a;
    CHECK_EQ(t_stat(&t, "/log", &a), 0);
    CHECK_EQ(a.size, applied + 5 - 1);
    tstore_fini(&t);
}

static void test_kill_single(void)
{
    run(1);
}

static void test_kill_batches(void)
{
    run(BATCH);
}

int main(void)
{
    RUN(test_kill_single);
    RUN(test_kill_batches);
    CHECK_DONE();
}
