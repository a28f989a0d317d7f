/*
 * Per-group ordered dispatch on a bounded pool of worker threads.
 *
 * Items are submitted with a group key (an SQS message group, i.e. a user).
 * Items of one group run strictly one after another, in the order they were
 * submitted; a group is never run by two workers at once. Different groups
 * run in parallel, at most `workers` at a time, taken in the order they
 * became ready so that no group starves.
 *
 * When an item's run fails, its group stops: the items of that group still
 * queued behind it are not run but handed, in order, to the drop callback
 * (the daemon makes them visible again on the queue, so they come back after
 * the failed one). Items of that group submitted later start afresh.
 */
#ifndef RQ_SCHED_H
#define RQ_SCHED_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct rq_sched_t rq_sched_t;

/* Runs one item on a worker thread; anything but APR_SUCCESS stops its group. */
typedef apr_status_t rq_sched_run_fn(void *baton, void *item);

/* Receives an item that will not run because an earlier one of its group failed. */
typedef void rq_sched_drop_fn(void *baton, void *item, apr_status_t why);

typedef struct rq_sched_opts_t {
    int workers;            /* threads; 0: 4 */
    rq_sched_run_fn *run;
    rq_sched_drop_fn *drop; /* may be NULL */
    void *baton;
} rq_sched_opts_t;

/* Starts the workers; they live until rq_sched_destroy() or p's cleanup. */
apr_status_t rq_sched_create(rq_sched_t **psched, apr_pool_t *p, const rq_sched_opts_t *opts);

/* Queues an item behind the others of its group (group is copied). */
apr_status_t rq_sched_submit(rq_sched_t *sched, const char *group, void *item);

/* Items submitted and not yet finished (run or dropped). */
int rq_sched_pending(rq_sched_t *sched);

/*
 * Waits until fewer than n items are pending, or timeout passes
 * (APR_TIMEUP). Used by pollers to hold back while the pool is saturated.
 */
apr_status_t rq_sched_wait_below(rq_sched_t *sched, int n, apr_interval_time_t timeout);

/* Waits until every submitted item has finished. */
void rq_sched_drain(rq_sched_t *sched);

/* Finishes what is queued, then stops and joins the workers. */
void rq_sched_destroy(rq_sched_t *sched);

#endif
