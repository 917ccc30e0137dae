/* test_store_boot.c - unsynced apply (store_boot.c): DIR/open-boot while
 * open and gone after a clean close; a store left open by the same boot
 * is trusted, by another boot rebuilt (old files kept aside); a damaged
 * marker, or a rebuild whose image is missing, refuses the start with
 * nothing moved; a failed fsync of the tree stops commits and makes the
 * next start rebuild whatever the boot. */
#include <sys/stat.h>

#include "store_internal.h"
#include "store_log.h"
#include "store_util.h"

static struct store *open_boot(const char *dir, const char *boot, int *rc, char *err, size_t len)
{
    struct store_config cfg = {.unsynced_apply = true, .boot_id = boot};
    struct store *s = NULL;
    *rc = store_open(&s, dir, &cfg, err, len);
    return s;
}

static bool exists(const char *dir, const char *name)
{
    char path[600];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

/* A store whose process "died": the marker of an open store, copied
 * before a clean close and put back after it. */
static void leave_open(struct tstore *t)
{
    char path[600], copy[600];
    snprintf(path, sizeof(path), "%s/open-boot", t->dir);
    snprintf(copy, sizeof(copy), "%s.copy", t->dir);
    FILE *in = fopen(path, "rb"), *out = fopen(copy, "wb");
    char buf[128];
    size_t n = fread(buf, 1, sizeof(buf), in);
    fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    store_close(t->s);
    t->s = NULL;
    CHECK_EQ(rename(copy, path), 0);
}

/* Flips a byte of DIR/open-boot (its CRC no longer holds); its path in
 * path. */
static void damage_marker(const char *dir, char *path, size_t len)
{
    snprintf(path, len, "%s/open-boot", dir);
    FILE *f = fopen(path, "r+b");
    fseek(f, 20, SEEK_SET);
    fputc('#', f);
    fclose(f);
}

static void test_marker_and_trust(void)
{
    struct tstore t = {.dir = tmpdir_make()};
    int rc;
    char err[512];
    t.s = open_boot(t.dir, "boot-A", &rc, err, sizeof(err));
    CHECK_EQ(rc, 0);
    CHECK(exists(t.dir, "open-boot"));
    CHECK_EQ(t_put(&t, "/a", "1"), 0);
    store_close(t.s);
    CHECK(!exists(t.dir, "open-boot")); /* clean */
    /* Left open by a killed process, reopened on the same boot: as it is. */
    t.s = open_boot(t.dir, "boot-A", &rc, err, sizeof(err));
    CHECK_EQ(rc, 0);
    leave_open(&t);
    t.s = open_boot(t.dir, "boot-A", &rc, err, sizeof(err));
    CHECK_EQ(rc, 0);
    CHECK(!store_rebuilt(t.s, NULL));
    CHECK_EQ(t_stat(&t, "/a", NULL), 0);
    leave_open(&t);
    /* Another boot: rebuilt (no image: from index 1, so empty here, the
     * log holds the rest), the old files kept. */
    t.s = open_boot(t.dir, "boot-B", &rc, err, sizeof(err));
    CHECK_EQ(rc, 0);
    uint64_t from = 99;
    CHECK(store_rebuilt(t.s, &from));
    CHECK_EQ(from, 0);
    CHECK_EQ(t_stat(&t, "/a", NULL), ENOENT);
    CHECK(exists(t.dir, "store.untrusted/data.mdb"));
    tstore_fini(&t);
}

static void test_refusals_move_nothing(void)
{
    struct tstore t = {.dir = tmpdir_make()};
    int rc;
    char err[512];
    t.s = open_boot(t.dir, "boot-A", &rc, err, sizeof(err));
    CHECK_EQ(t_put(&t, "/kept", "1"), 0);
    leave_open(&t);
    /* A damaged marker: refused. */
    char path[600];
    damage_marker(t.dir, path, sizeof(path));
    t.s = open_boot(t.dir, "boot-B", &rc, err, sizeof(err));
    CHECK_EQ(rc, EPROTO);
    CHECK(strstr(err, "open-boot is damaged") != NULL);
    CHECK(!exists(t.dir, "store.untrusted"));
    /* A log that starts after a snapshot whose image is missing: the
     * rebuild cannot be made, the store is put back. */
    CHECK_EQ(unlink(path), 0);
    t.s = open_boot(t.dir, "boot-A", &rc, err, sizeof(err));
    CHECK_EQ(rc, 0);
    struct store_hard_state hs = {.term = 1, .commit = 3};
    struct store_log_entry e[3];
    for (int i = 0; i < 3; i++)
        e[i] = (struct store_log_entry){
            .index = (uint64_t)i + 1, .term = 1, .type = 1, .data = "x", .len = 1};
    CHECK_EQ(store_log_persist(t.s, &hs, e, 3, true), 0);
    struct store_log_snapshot snap = {.index = 2, .term = 1, .size = 100};
    CHECK_EQ(store_log_compact(t.s, &snap, false), 0);
    leave_open(&t);
    t.s = open_boot(t.dir, "boot-B", &rc, err, sizeof(err));
    CHECK_EQ(rc, EPROTO);
    CHECK(strstr(err, "cannot rebuild") != NULL);
    CHECK(!exists(t.dir, "store.untrusted"));
    /* Back as it was: the same boot opens it, the key there. */
    t.s = open_boot(t.dir, "boot-A", &rc, err, sizeof(err));
    CHECK_EQ(rc, 0);
    CHECK_EQ(t_stat(&t, "/kept", NULL), 0);
    tstore_fini(&t);
}

static void test_sync_failure_distrusts(void)
{
    struct tstore t = {.dir = tmpdir_make()};
    int rc;
    char err[512];
    t.s = open_boot(t.dir, "boot-A", &rc, err, sizeof(err));
    store_set_lazy_apply(t.s, true);
    CHECK_EQ(t_put(&t, "/a", "1"), 0);
    store_sync_failed(t.s); /* as a failed mdb_env_sync calls it */
    struct store_cmd c = {.op = STORE_OP_PUT, .path = "/b", .value = "2", .value_len = 1};
    void *buf;
    size_t len;
    c.path_len = 2;
    CHECK_EQ(store_cmd_encode(&c, &buf, &len), 0);
    struct store_result res;
    CHECK_EQ(store_apply(t.s, ++t.index, buf, len, &res), EIO);
    free(buf);
    store_close(t.s);
    CHECK(exists(t.dir, "open-boot")); /* not clean */
    t.s = open_boot(t.dir, "boot-A", &rc, err, sizeof(err));
    CHECK_EQ(rc, 0);
    CHECK(store_rebuilt(t.s, NULL)); /* the same boot, and yet rebuilt */
    tstore_fini(&t);
}

/* raftfs check tells a store left open, and what the next start does. */
static void test_check_reports_marker(void)
{
    struct tstore t = {.dir = tmpdir_make()};
    int rc;
    char err[512], now[STORE_BOOT_ID_MAX];
    struct store_check_report r;
    CHECK_EQ(store_boot_id(NULL, now), 0);
    t.s = open_boot(t.dir, now, &rc, err, sizeof(err));
    CHECK_EQ(rc, 0);
    CHECK_EQ(t_put(&t, "/a", "1"), 0);
    store_close(t.s);
    t.s = NULL;
    CHECK_EQ(store_check(t.dir, &r, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(r.problems, 0);
    CHECK(!r.open_boot[0]); /* closed cleanly */
    /* killed on this boot: taken as it is */
    t.s = open_boot(t.dir, now, &rc, err, sizeof(err));
    CHECK_EQ(rc, 0);
    leave_open(&t);
    CHECK_EQ(store_check(t.dir, &r, NULL, NULL, err, sizeof(err)), 0);
    CHECK(!strcmp(r.open_boot, now));
    CHECK(!r.rebuild_at_start);
    /* left open by another boot, or after a failed sync: rebuilt */
    struct store_limits lim;
    t.s = open_boot(t.dir, now, &rc, err, sizeof(err));
    store_get_limits(t.s, &lim);
    leave_open(&t);
    CHECK_EQ(store_boot_write(t.dir, "another-boot", &lim), 0);
    CHECK_EQ(store_check(t.dir, &r, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(r.problems, 0);
    CHECK(!strcmp(r.open_boot, "another-boot"));
    CHECK(r.rebuild_at_start);
    CHECK_EQ(store_boot_write(t.dir, STORE_BOOT_SYNC_FAILED, &lim), 0);
    CHECK_EQ(store_check(t.dir, &r, NULL, NULL, err, sizeof(err)), 0);
    CHECK(r.rebuild_at_start);
    /* damaged: a problem (the start refuses it) */
    char path[600];
    damage_marker(t.dir, path, sizeof(path));
    CHECK_EQ(store_check(t.dir, &r, NULL, NULL, err, sizeof(err)), 0);
    CHECK_EQ(r.problems, 1);
    tstore_fini(&t);
}

int main(void)
{
    RUN(test_marker_and_trust);
    RUN(test_refusals_move_nothing);
    RUN(test_sync_failure_distrusts);
    RUN(test_check_reports_marker);
    CHECK_DONE();
}
