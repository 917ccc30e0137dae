/* tests/unit/test_raft_quorum.c: quorum maths, configuration transitions and encoding against
 * simple references. */
#include <string.h>

#include "conf.h"
#include "confchange.h"
#include "progress.h"
#include "quorum.h"
#include "test_raft_harness.h"

static uint64_t ref_majority(const uint64_t *v, uint32_t n)
{
    /* The largest x that at least n/2+1 values reach. */
    uint64_t best = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t reach = 0;
        for (uint32_t j = 0; j < n; j++) {
            reach += v[j] >= v[i];
        }
        if (reach >= n / 2 + 1 && v[i] > best) {
            best = v[i];
        }
    }
    return best;
}

static void test_majority_index(void)
{
    struct sim_rng g = {.s = 42};
    CHECK_EQ(raft_quorum_majority_index(NULL, 0), UINT64_MAX);
    for (int iter = 0; iter < 20000; iter++) {
        uint32_t n = 1 + (uint32_t)rng_below(&g, 9);
        uint32_t m = (uint32_t)rng_below(&g, 9);
        uint64_t v[16], w[16];
        for (uint32_t i = 0; i < n; i++) {
            v[i] = rng_below(&g, 20);
        }
        for (uint32_t i = 0; i < m; i++) {
            w[i] = rng_below(&g, 20);
        }
        CHECK_EQ(raft_quorum_majority_index(v, n), ref_majority(v, n));
        uint64_t a = ref_majority(v, n);
        uint64_t b = m == 0 ? UINT64_MAX : ref_majority(w, m);
        CHECK_EQ(raft_quorum_joint_index(v, n, w, m), a < b ? a : b);
    }
}

static void test_votes(void)
{
    for (uint32_t n = 0; n <= 9; n++) {
        for (uint32_t yes = 0; yes <= n; yes++) {
            for (uint32_t no = 0; yes + no <= n; no++) {
                enum quorum_result r = raft_quorum_majority_vote(n, yes, no);
                enum quorum_result want = QUORUM_PENDING;
                if (n == 0 || yes > n / 2) {
                    want = QUORUM_WON;
                } else if (no >= (n + 1) / 2 + (n % 2 == 0 ? 0 : 0) && n - no <= n / 2) {
                    want = QUORUM_LOST;
                }
                CHECK_EQ(r, want);
            }
        }
    }
    CHECK_EQ(raft_quorum_joint_vote(QUORUM_WON, QUORUM_PENDING), QUORUM_PENDING);
    CHECK_EQ(raft_quorum_joint_vote(QUORUM_WON, QUORUM_LOST), QUORUM_LOST);
    CHECK_EQ(raft_quorum_joint_vote(QUORUM_WON, QUORUM_WON), QUORUM_WON);
    CHECK_EQ(raft_quorum_joint_vote(QUORUM_PENDING, QUORUM_LOST), QUORUM_LOST);
}

static struct raft_conf conf_of(const uint64_t *v, uint32_t nv, const uint64_t *l, uint32_t nl)
{
    struct raft_conf c;
    memset(&c, 0, sizeof(c));
    if (nv > 0) {
        memcpy(c.voters, v, nv * sizeof(*v));
    }
    c.n_voters = nv;
    if (nl > 0) {
        memcpy(c.learners, l, nl * sizeof(*l));
    }
    c.n_learners = nl;
    return c;
}

static void test_confchange(void)
{
    uint64_t v3[] = {1, 2, 3};
    uint64_t l4[] = {4};
    struct raft_conf c = conf_of(v3, 3, l4, 1), out;

    /* Learner-only change: a simple configuration. */
    struct raft_change add5 = {RAFT_CHANGE_ADD_LEARNER, 5};
    CHECK_EQ(raft_confchange_apply(&c, &add5, 1, &out), 0);
    CHECK(!raft_conf_is_joint(&out) && raft_conf_is_learner(&out, 5));

    /* Promotion changes the voters: joint. */
    struct raft_change promote = {RAFT_CHANGE_ADD_VOTER, 4};
    CHECK_EQ(raft_confchange_apply(&c, &promote, 1, &out), 0);
    CHECK(raft_conf_is_joint(&out) && out.n_voters == 4 && out.n_voters_old == 3);
    CHECK(!raft_conf_is_learner(&out, 4) && raft_conf_is_voter(&out, 4));
    struct raft_conf left;
    raft_confchange_leave_joint(&out, &left);
    CHECK(!raft_conf_is_joint(&left) && left.n_voters == 4 && left.n_learners == 0);

    /* Replace several at once: 1,2 out, 4 promoted, 6 added. */
    struct raft_change many[] = {{RAFT_CHANGE_REMOVE, 1},
                                 {RAFT_CHANGE_REMOVE, 2},
                                 {RAFT_CHANGE_ADD_VOTER, 4},
                                 {RAFT_CHANGE_ADD_VOTER, 6}};
    CHECK_EQ(raft_confchange_apply(&c, many, 4, &out), 0);
    CHECK(raft_conf_is_joint(&out));
    CHECK(raft_conf_is_voter(&out, 1) && raft_conf_set_has(out.voters_old, 3, 1));
    CHECK(!raft_conf_set_has(out.voters, out.n_voters, 1));
    CHECK(raft_conf_set_has(out.voters, out.n_voters, 6));

    /* Demotion: the old voter is a learner of the new configuration. */
    struct raft_change demote = {RAFT_CHANGE_ADD_LEARNER, 3};
    CHECK_EQ(raft_confchange_apply(&c, &demote, 1, &out), 0);
    CHECK(raft_conf_is_joint(&out) && raft_conf_set_has(out.learners, out.n_learners, 3));
    raft_confchange_leave_joint(&out, &left);
    CHECK(raft_conf_is_learner(&left, 3));

    /* Refusals. */
    struct raft_change bad[] = {{RAFT_CHANGE_ADD_VOTER, 1},
                                {RAFT_CHANGE_REMOVE, 9},
                                {RAFT_CHANGE_ADD_LEARNER, 4},
                                {RAFT_CHANGE_ADD_VOTER, 0},
                                {77, 5}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(raft_confchange_apply(&c, &bad[i], 1, &out), RAFT_EINVAL);
    }
    struct raft_change twice[] = {{RAFT_CHANGE_ADD_VOTER, 5}, {RAFT_CHANGE_REMOVE, 5}};
    CHECK_EQ(raft_confchange_apply(&c, twice, 2, &out), RAFT_EINVAL);
    struct raft_change all[] = {
        {RAFT_CHANGE_REMOVE, 1}, {RAFT_CHANGE_REMOVE, 2}, {RAFT_CHANGE_REMOVE, 3}};
    CHECK_EQ(raft_confchange_apply(&c, all, 3, &out), RAFT_EINVAL);
    CHECK_EQ(raft_confchange_apply(&c, many, 0, &out), RAFT_EINVAL);
    CHECK_EQ(raft_confchange_apply(&c, many, 4, &out), 0);
    struct raft_conf joint = out;
    CHECK_EQ(raft_confchange_apply(&joint, &add5, 1, &out), RAFT_ECONFPENDING);
}

static void test_encoding(void)
{
    struct sim_rng g = {.s = 7};
    uint8_t buf[4 + 8 * 3 * RAFT_CONF_MAX];
    for (int iter = 0; iter < 2000; iter++) {
        struct raft_conf c;
        memset(&c, 0, sizeof(c));
        uint64_t next = 1 + rng_below(&g, 1000);
        c.n_voters = 1 + (uint32_t)rng_below(&g, RAFT_CONF_MAX);
        for (uint32_t i = 0; i < c.n_voters; i++) {
            c.voters[i] = next++;
        }
        c.n_learners = (uint32_t)rng_below(&g, 4);
        for (uint32_t i = 0; i < c.n_learners; i++) {
            c.learners[i] = next++;
        }
        c.n_voters_old = (uint32_t)rng_below(&g, 3);
        for (uint32_t i = 0; i < c.n_voters_old; i++) {
            c.voters_old[i] = c.voters[0] + 5000 + i;
        }
        size_t len = raft_conf_encoded_size(&c);
        raft_conf_encode(&c, buf);
        struct raft_conf d;
        CHECK_EQ(raft_conf_decode(buf, len, &d), 0);
        CHECK(raft_conf_equal(&c, &d));
        /* Any truncation or a corrupted header is refused, never trusted. */
        CHECK_EQ(raft_conf_decode(buf, len - 1 - rng_below(&g, len - 1), &d), RAFT_ECORRUPT);
        uint8_t saved = buf[0];
        buf[0] = 99;
        CHECK_EQ(raft_conf_decode(buf, len, &d), RAFT_ECORRUPT);
        buf[0] = saved;
    }
    /* A zero id, a duplicate, or a voter that is also a learner is refused. */
    uint64_t dup[] = {1, 1};
    struct raft_conf c = conf_of(dup, 2, NULL, 0);
    raft_conf_encode(&c, buf);
    struct raft_conf d;
    CHECK_EQ(raft_conf_decode(buf, raft_conf_encoded_size(&c), &d), RAFT_ECORRUPT);
    uint64_t v[] = {1, 2}, l[] = {2};
    c = conf_of(v, 2, l, 1);
    raft_conf_encode(&c, buf);
    CHECK_EQ(raft_conf_decode(buf, raft_conf_encoded_size(&c), &d), RAFT_ECORRUPT);
    CHECK_EQ(raft_conf_decode(NULL, 0, &d), RAFT_ECORRUPT);
}

static void test_progress_window(void)
{
    /* Trap 13: the window is bounded in messages and bytes and every transition empties it. */
    struct progress pr;
    CHECK_EQ(raft_progress_init(&pr, 2, 10, 3), 0);
    raft_progress_become_replicate(&pr);
    CHECK(!raft_progress_is_paused(&pr, 100));
    raft_progress_inflight_add(&pr, 10, 40);
    raft_progress_inflight_add(&pr, 11, 40);
    CHECK(!raft_progress_is_paused(&pr, 100));
    raft_progress_inflight_add(&pr, 12, 40);
    CHECK(raft_progress_is_paused(&pr, 1000)); /* 3 messages */
    raft_progress_inflight_free_to(&pr, 10);
    CHECK_EQ(pr.count, 2);
    CHECK_EQ(pr.bytes, 80);
    CHECK(!raft_progress_is_paused(&pr, 100));
    CHECK(raft_progress_is_paused(&pr, 80)); /* bytes bound */
    CHECK(raft_progress_maybe_update(&pr, 11));
    raft_progress_inflight_free_to(&pr, 11);
    CHECK_EQ(pr.count, 1);
    /* A stale rejection (at or below match) is ignored in pipeline mode. */
    CHECK(!raft_progress_maybe_decrease(&pr, 11, 5));
    CHECK(raft_progress_maybe_decrease(&pr, 12, 5));
    raft_progress_become_probe(&pr);
    CHECK_EQ(pr.count, 0);
    CHECK_EQ(pr.bytes, 0);
    CHECK_EQ(pr.next, 12);
    raft_progress_become_snapshot(&pr, 30, 2, 100);
    CHECK(raft_progress_is_paused(&pr, 1000));
    pr.snap_chunk_out = true;
    raft_progress_abort_snapshot(&pr);
    CHECK(!pr.snap_chunk_out && pr.next == 12 && pr.state == PROGRESS_PROBE);
    raft_progress_become_snapshot(&pr, 30, 2, 100);
    raft_progress_become_probe(&pr); /* snapshot applied: resume after it */
    CHECK_EQ(pr.next, 31);
    /* In probe mode only the answer to the probe in flight counts. */
    pr.probe_sent = true;
    CHECK(!raft_progress_maybe_decrease(&pr, 20, 15));
    CHECK(raft_progress_maybe_decrease(&pr, 30, 15));
    CHECK_EQ(pr.next, 15);
    CHECK(!pr.probe_sent);
    raft_progress_free(&pr);
}

int main(void)
{
    test_majority_index();
    test_votes();
    test_confchange();
    test_encoding();
    test_progress_window();
    printf("test_raft_quorum: ok\n");
    return 0;
}
