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
 * Neither function holds a connection, a lock or a transaction during the
 * delay. rq_store_apply_once writes "writes + 1" from the count it read before
 * the delay, like the race: it does not order callers for one user (the
 * caller must), so an ordering fault upstream still shows as a lost update.
 *
 * Tables: users(user_id, writes) and history(req_id unique, user_id, seq,
 * start_us, finish_us, ord, hash), ord being the entry's position in the
 * user's history and hash the body's SHA-256 (a history table without it is
 * given the column when the store is opened). With SQLite the file and its
 * directory are created on first use and the database runs in WAL mode, so
 * several processes can share it.
 * Open one store per database in a process and share it between threads:
 * write transactions are serialised per store.
 * Failures are logged (tags RQ02xxx) with the store's name.
 */
#ifndef RQ_STORE_H
#define RQ_STORE_H

#include <apr_pools.h>
#include <apr_time.h>

#include "rq_payload.h"

#define RQ_STORE_ERR_BASE (APR_OS_START_USERERR + 2000)
/* A statement failed (the database's message is logged). */
#define RQ_STORE_EDB (RQ_STORE_ERR_BASE + 1)
/* The store cannot be opened or set up. */
#define RQ_STORE_EOPEN (RQ_STORE_ERR_BASE + 2)
/* rq_store_apply_race: req_id is already in the history; nothing written. */
#define RQ_STORE_EDUPLICATE (RQ_STORE_ERR_BASE + 3)

/* The store used when none is configured (module and daemon alike). */
#define RQ_STORE_DEFAULT_DRIVER "sqlite3"
#define RQ_STORE_DEFAULT_PARAMS "/var/lib/raceq/toy.db"

typedef struct rq_store_t rq_store_t;

typedef struct rq_apply_t {
    const rq_payload_t *payload;
    const char *seq;                /* SQS sequence number; NULL in race mode */
    apr_interval_time_t delay_min;  /* the toy write's random duration */
    apr_interval_time_t delay_max;
    const char *hash;               /* rq_store_apply_once: hex SHA-256 of the exact
                                     * message body, kept with the history row; may
                                     * be NULL. rq_store_apply_race ignores it. */
} rq_apply_t;

/* What the store knows of an applied request (rq_store_lookup). */
typedef struct rq_store_record_t {
    const char *user_id;
    const char *seq;                /* NULL when applied in race mode */
    const char *hash;               /* NULL when not recorded (race mode, older rows) */
    int applied;                    /* 1 when the req_id is in the history */
} rq_store_record_t;

/*
 * "DRIVER PARAMS" for log lines, with secrets masked: the value of a
 * password=, pass=, passwd= or pwd= parameter and the password of a URI's
 * user information (scheme://user:****@host) become "****".
 */
const char *rq_store_describe(apr_pool_t *p, const char *driver, const char *params);

/*
 * driver is an apr_dbd driver name ("sqlite3", "pgsql"), params its parameters
 * (for sqlite3, the database file). Opens one connection to check the store
 * and create the schema. The store lives until p is cleared.
 */
apr_status_t rq_store_open(rq_store_t **pstore, apr_pool_t *p, const char *driver,
                           const char *params);

/*
 * Reads the user's row (logs "finding-<req_id>___<user_id>" at info), sleeps
 * a random time in [delay_min, delay_max], then writes the count read + 1 and
 * appends to the history (logs "writing-..."). Returns RQ_STORE_EDUPLICATE
 * when req_id is already in the history.
 */
apr_status_t rq_store_apply_race(rq_store_t *store, apr_pool_t *ptemp, const rq_apply_t *a);

/*
 * The same toy write; the history record of req_id (with a->seq) and the new
 * count commit in one transaction. *papplied is 0 when req_id had already
 * been applied (nothing written).
 */
apr_status_t rq_store_apply_once(rq_store_t *store, apr_pool_t *ptemp, const rq_apply_t *a,
                                 int *papplied);

/*
 * Looks req_id up by itself (one indexed read): APR_SUCCESS and *prec (strings
 * from p) when it was applied, APR_NOTFOUND when not, else a store error.
 */
apr_status_t rq_store_lookup(rq_store_record_t *prec, rq_store_t *store, apr_pool_t *p,
                             const char *req_id);

/*
 * The user's state as compact JSON, history in apply order:
 * {"user_id":"u","writes":N,"history":[{"req_id":"r","seq":null|"s",
 * "start":us,"finish":us},...]}. An unknown user has writes 0, history [].
 */
apr_status_t rq_store_user_json(const char **pjson, rq_store_t *store, apr_pool_t *p,
                                const char *user_id);

#endif
