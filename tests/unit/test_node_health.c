/* test_node_health.c - the health rule (node_health_judge): each way of
 * being unhealthy gives its reason, in the rule's order; a healthy member
 * has an empty reason; the JSON answer. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "node.h"

static struct node_health_facts fine(void)
{
    return (struct node_health_facts){.started = true,
                                      .id = 2,
                                      .term = 5,
                                      .leader = 1,
                                      .leader_contact_s = 0.05,
                                      .election_timeout_s = 0.5};
}

static void test_rule(void)
{
    struct node_health h;
    struct node_health_facts f = fine();
    node_health_judge(&f, &h);
    CHECK(h.healthy);
    CHECK_EQ(h.reason[0], 0);
    CHECK_EQ(h.term, 5);
    /* the leader itself: never "not heard from" */
    f.leader = 2;
    f.leader_contact_s = 0;
    node_health_judge(&f, &h);
    CHECK(h.healthy);
    /* a follower just within, and just past, two election timeouts */
    f = fine();
    f.leader_contact_s = 1.0;
    node_health_judge(&f, &h);
    CHECK(h.healthy);
    f.leader_contact_s = 1.01;
    node_health_judge(&f, &h);
    CHECK(!h.healthy);
    CHECK(strstr(h.reason, "leader 1 not heard from"));
    f.leader_contact_s = -1;
    node_health_judge(&f, &h);
    CHECK(!h.healthy);

    f = fine();
    f.leader = 0;
    node_health_judge(&f, &h);
    CHECK(!h.healthy);
    CHECK(!strcmp(h.reason, "no leader"));
    f.stalled = ENOSPC; /* comes before "no leader" */
    node_health_judge(&f, &h);
    CHECK(strstr(h.reason, "no space"));
    f.failed = EIO;
    node_health_judge(&f, &h);
    CHECK(strstr(h.reason, "failed closed"));
    f.failed = ESHUTDOWN;
    node_health_judge(&f, &h);
    CHECK(strstr(h.reason, "removed from the cluster"));
    f.started = false;
    node_health_judge(&f, &h);
    CHECK(!strcmp(h.reason, "not started"));
    f.stopping = true;
    node_health_judge(&f, &h);
    CHECK(!strcmp(h.reason, "stopping"));
}

static void test_json(void)
{
    struct node_health h;
    struct node_health_facts f = fine();
    char buf[512];
    node_health_judge(&f, &h);
    size_t len = node_health_json(&h, buf, sizeof(buf));
    CHECK_EQ(len, strlen(buf));
    CHECK(!strcmp(buf,
                  "{\"health\":\"true\",\"reason\":\"\",\"member\":2,\"term\":5,\"leader\":1}\n"));
    f.leader = 0;
    node_health_judge(&f, &h);
    node_health_json(&h, buf, sizeof(buf));
    CHECK(!strcmp(
        buf,
        "{\"health\":\"false\",\"reason\":\"no leader\",\"member\":2,\"term\":5,\"leader\":0}\n"));
    /* the length it needs, when it does not fit */
    size_t whole = strlen(buf);
    CHECK_EQ(node_health_json(&h, buf, 8), whole);
    CHECK(!strcmp(buf, "{\"healt"));
}

int main(void)
{
    RUN(test_rule);
    RUN(test_json);
    CHECK_DONE();
}
