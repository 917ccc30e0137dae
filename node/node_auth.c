/* node_auth.c - password work off the loop: checking a login against its
 * crypt(3) hash, and hashing a new password, on a thread of its own.
 *
 * A hash costs tens of milliseconds by design (yescrypt, Debian's default:
 * about 30 ms here); on the loop thread a burst of logins would hold up
 * Raft's heartbeats and every other client. The loop hands a job over and
 * goes on; the thread does the jobs in order and hands each back through an
 * eventfd the loop watches, which runs its callback on the loop thread.
 * A password is zeroed as soon as the job is done with it.
 */
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "node_auth.h"

struct node_auth {
    struct net_loop *loop;
    int efd;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct node_auth_job *todo, **todo_tail; /* for the thread */
    struct node_auth_job *done;              /* for the loop */
};

static void wipe(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

static void run_job(struct node_auth_job *j)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (!cd) {
        j->result = ENOMEM;
        return;
    }
    if (j->kind == NODE_AUTH_VERIFY) {
        /* A hash crypt(3) cannot use fails as a wrong password would:
         * crypt_r then returns a string starting with '*'. */
        const char *h = crypt_r(j->password, j->hash, cd);
        j->result =
            h && h[0] != '*' && strlen(h) == strlen(j->hash) && !strcmp(h, j->hash) ? 0 : EPERM;
    } else {
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        const char *h = NULL;
        if (crypt_gensalt_rn(NULL, 0, NULL, 0, salt, sizeof(salt)))
            h = crypt_r(j->password, salt, cd);
        if (!h || h[0] == '*' || strlen(h) > STORE_AUTH_HASH_MAX)
            j->result = EIO;
        else {
            strcpy(j->hash, h);
            j->result = 0;
        }
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    wipe(j->password);
    j->password = NULL;
}

static void *auth_thread(void *arg)
{
    struct node_auth *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->todo && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->stop)
            break;
        struct node_auth_job *j = a->todo;
        a->todo = j->next;
        if (!a->todo)
            a->todo_tail = &a->todo;
        pthread_mutex_unlock(&a->mu);
        run_job(j);
        pthread_mutex_lock(&a->mu);
        j->next = a->done;
        a->done = j;
        uint64_t one = 1;
        if (write(a->efd, &one, sizeof(one)) < 0) {
            /* the counter is saturated: the loop has wake-ups pending anyway */
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* On the loop thread: hands the finished jobs back, oldest first. */
static void on_done(struct net_loop *l, int fd, uint32_t events, void *ctx)
{
    struct node_auth *a = ctx;
    uint64_t v;
    (void)l, (void)events;
    if (read(fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing to drain */
    }
    pthread_mutex_lock(&a->mu);
    struct node_auth_job *list = a->done, *rev = NULL;
    a->done = NULL;
    pthread_mutex_unlock(&a->mu);
    while (list) {
        struct node_auth_job *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        struct node_auth_job *next = rev->next;
        rev->done(rev);
        rev = next;
    }
}

int node_auth_open(struct net_loop *loop, struct node_auth **out)
{
    struct node_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return ENOMEM;
    a->loop = loop;
    a->todo_tail = &a->todo;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = a->efd < 0 ? errno : net_loop_watch(loop, a->efd, EPOLLIN, on_done, a);
    if (!rc && (rc = pthread_create(&a->thread, NULL, auth_thread, a)))
        net_loop_unwatch(loop, a->efd);
    if (rc) {
        if (a->efd >= 0)
            close(a->efd);
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        free(a);
        return rc;
    }
    a->started = true;
    *out = a;
    return 0;
}

static void free_list(struct node_auth_job *j)
{
    while (j) {
        struct node_auth_job *next = j->next;
        wipe(j->password);
        if (j->drop)
            j->drop(j);
        j = next;
    }
}

void node_auth_close(struct node_auth *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    net_loop_unwatch(a->loop, a->efd);
    close(a->efd);
    free_list(a->todo);
    free_list(a->done);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

void node_auth_submit(struct node_auth *a, struct node_auth_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&a->mu);
    *a->todo_tail = j;
    a->todo_tail = &j->next;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}
