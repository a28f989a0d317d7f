/* The scheduler's guarantees: per-group order, one run per group at a time,
 * bounded parallelism, a failed item stops its group. */
#include <stdlib.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "rq_sched.h"
#include "rq_tap.h"

#define GROUPS   40
#define PER      25
#define WORKERS  6

typedef struct item_t {
    int group;
    int n;
} item_t;

typedef struct state_t {
    apr_thread_mutex_t *lock;
    int running[GROUPS];   /* runs in progress per group */
    int seen[GROUPS];      /* how many ran, in order */
    int order_bad;
    int overlap;
    int active;
    int max_active;
    int fail_group;        /* item (fail_group, fail_at) fails; -1: none */
    int fail_at;
    int dropped[GROUPS];
    int drop_order_bad;
    apr_status_t drop_why;
    int ran_after_fail;
    unsigned seed;
} state_t;

static state_t st;

static apr_status_t run(void *baton, void *data)
{
    item_t *it = data;
    int pause;

    (void)baton;
    apr_thread_mutex_lock(st.lock);
    if (st.running[it->group]++ > 0) {
        st.overlap++;
    }
    if (++st.active > st.max_active) {
        st.max_active = st.active;
    }
    pause = rand_r(&st.seed) % 1500;
    apr_thread_mutex_unlock(st.lock);

    apr_sleep(pause);

    apr_thread_mutex_lock(st.lock);
    st.active--;
    st.running[it->group]--;
    if (it->group == st.fail_group && it->n > st.fail_at && st.fail_at >= 0) {
        st.ran_after_fail++;
    }
    if (st.seen[it->group] != it->n) {
        st.order_bad++;
    }
    st.seen[it->group] = it->n + 1;
    apr_thread_mutex_unlock(st.lock);
    if (it->group == st.fail_group && it->n == st.fail_at) {
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static void drop(void *baton, void *data, apr_status_t why)
{
    item_t *it = data;

    (void)baton;
    apr_thread_mutex_lock(st.lock);
    st.drop_why = why;
    if (it->n != st.fail_at + 1 + st.dropped[it->group]) {
        st.drop_order_bad++;
    }
    st.dropped[it->group]++;
    apr_thread_mutex_unlock(st.lock);
}

static void reset(apr_pool_t *p, int fail_group, int fail_at)
{
    memset(&st, 0, sizeof(st));
    apr_thread_mutex_create(&st.lock, APR_THREAD_MUTEX_DEFAULT, p);
    st.fail_group = fail_group;
    st.fail_at = fail_at;
    st.seed = 12345;
}

static void submit_all(rq_sched_t *s, apr_pool_t *p, item_t *items)
{
    int i, g;

    /* Interleaved as a receive loop would hand them over. */
    for (i = 0; i < PER; i++) {
        for (g = 0; g < GROUPS; g++) {
            item_t *it = &items[g * PER + i];

            it->group = g;
            it->n = i;
            rq_sched_submit(s, apr_psprintf(p, "user-%d", g), it);
        }
    }
}

static void test_order(apr_pool_t *p)
{
    rq_sched_opts_t o = { WORKERS, run, drop, NULL };
    item_t *items = apr_pcalloc(p, sizeof(item_t) * GROUPS * PER);
    rq_sched_t *s;
    int g, all = 1;

    reset(p, -1, -1);
    RQ_OK(rq_sched_create(&s, p, &o) == APR_SUCCESS, "scheduler starts");
    submit_all(s, p, items);
    rq_sched_drain(s);
    RQ_IS_INT(rq_sched_pending(s), 0, "nothing pending after drain");
    for (g = 0; g < GROUPS; g++) {
        all = all && st.seen[g] == PER;
    }
    RQ_OK(all, "every item of every group ran");
    RQ_IS_INT(st.order_bad, 0, "each group ran in submission order");
    RQ_IS_INT(st.overlap, 0, "no group ever ran twice at once");
    RQ_OK(st.max_active <= WORKERS, "at most %d ran at once (saw %d)", WORKERS, st.max_active);
    rq_sched_destroy(s);
}

static void test_failure(apr_pool_t *p)
{
    rq_sched_opts_t o = { WORKERS, run, drop, NULL };
    item_t *items = apr_pcalloc(p, sizeof(item_t) * GROUPS * PER);
    item_t again = { 7, 0 };
    rq_sched_t *s;
    int g, others = 1;

    reset(p, 7, 10);
    rq_sched_create(&s, p, &o);
    submit_all(s, p, items);
    rq_sched_drain(s);
    RQ_IS_INT(st.seen[7], 11, "the failing group ran up to and including the failed item");
    RQ_IS_INT(st.ran_after_fail, 0, "nothing of that group ran after the failure");
    RQ_IS_INT(st.dropped[7], PER - 11, "the rest of the group was handed back");
    RQ_IS_INT(st.drop_order_bad, 0, "handed back in order");
    RQ_IS_STR(st.drop_why == APR_EGENERAL ? "failed item's status" : "other",
              "failed item's status", "the drop callback is told why");
    for (g = 0; g < GROUPS; g++) {
        others = others && (g == 7 || (st.seen[g] == PER && st.dropped[g] == 0));
    }
    RQ_OK(others, "other groups were not affected");
    RQ_IS_INT(st.order_bad, 0, "order held everywhere");

    st.fail_group = -1;
    st.seen[7] = 0;
    rq_sched_submit(s, "user-7", &again);
    rq_sched_drain(s);
    RQ_IS_INT(st.seen[7], 1, "a group that failed runs again for new items");
    rq_sched_destroy(s);
}

static void test_backpressure(apr_pool_t *p)
{
    rq_sched_opts_t o = { 2, run, drop, NULL };
    item_t *items = apr_pcalloc(p, sizeof(item_t) * GROUPS * PER);
    rq_sched_t *s;

    reset(p, -1, -1);
    rq_sched_create(&s, p, &o);
    submit_all(s, p, items);
    RQ_OK(rq_sched_wait_below(s, 5, apr_time_from_sec(60)) == APR_SUCCESS,
          "wait_below returns once the backlog is small");
    RQ_OK(rq_sched_pending(s) < 5, "fewer than 5 pending then");
    rq_sched_destroy(s);
    RQ_IS_INT(rq_sched_pending(s), 0, "destroy finished what was queued");
    RQ_IS_INT(st.order_bad, 0, "order held with two workers");
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);
    test_order(p);
    test_failure(p);
    test_backpressure(p);
    apr_pool_destroy(p);
    apr_terminate();
    return rq_tap_done();
}
