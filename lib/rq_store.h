/*
 * The toy store: one row per user (writes, history) in a database reached
 * through apr_dbd, SQLite by default. The schema is created on first use.
 *
 * Two ways to apply a request, both the demo's read-modify-write with a
 * random delay between the read and the write:
 * - rq_store_apply_race: no lock spans the delay, so concurrent calls for one
 *   user lose updates (race mode shows the bug with it);
 * - rq_store_apply_once: idempotent by req_id; the write and the record that
 *   the request was applied commit in one transaction (fifo mode).
 *
 * A store is safe to share between threads: it keeps a pool of connections.
 */
#ifndef RQ_STORE_H
#define RQ_STORE_H

#include <apr_pools.h>
#include <apr_time.h>

#include "rq_payload.h"

typedef struct rq_store_t rq_store_t;

typedef struct rq_apply_t {
    const rq_payload_t *payload;
    const char *seq;                /* SQS sequence number; NULL in race mode */
    apr_interval_time_t delay_min;  /* the toy write's random duration */
    apr_interval_time_t delay_max;
} rq_apply_t;

/* driver is an apr_dbd driver name ("sqlite3", "pgsql"), params its parameters. */
apr_status_t rq_store_open(rq_store_t **pstore, apr_pool_t *p, const char *driver,
                           const char *params);

apr_status_t rq_store_apply_race(rq_store_t *store, apr_pool_t *ptemp, const rq_apply_t *a);

/* *papplied is 0 when req_id had already been applied (nothing written). */
apr_status_t rq_store_apply_once(rq_store_t *store, apr_pool_t *ptemp, const rq_apply_t *a,
                                 int *papplied);

/* The user's state as JSON: {"user_id","writes","history":[{req_id,seq,start,finish}]}. */
apr_status_t rq_store_user_json(const char **pjson, rq_store_t *store, apr_pool_t *p,
                                const char *user_id);

#endif
