/*
 * raceqd's core: pollers long-poll the FIFO queue, a scheduler applies the
 * messages of each group (user) strictly in order on a bounded pool of
 * workers, a housekeeper deletes what was applied (in batches), then wakes
 * the requests waiting on the wait channel, makes visible again what must
 * be retried and extends the visibility of what is still in hand.
 *
 * Threads: `pollers` receivers, `workers` appliers, one housekeeper, one
 * wait-channel server. Memory is bounded by max_in_hand messages (pollers
 * hold back while that many are received and not yet deleted) and by the
 * wait server's remembered outcomes.
 *
 * Delivery is at least once; the effect is exactly once: apply is
 * rq_store_apply_once() keyed by req_id, so a redelivered message that was
 * already applied is only deleted, and its waiters are woken.
 */
#ifndef RQ_DAEMON_H
#define RQ_DAEMON_H

#include <apr_pools.h>
#include <apr_time.h>

#include "rq_creds.h"

typedef struct rq_daemon_conf_t {
    rq_aws_conf_t aws;            /* given values; the rest resolved as rq_creds.h says */
    const char *store_driver;     /* apr_dbd driver; NULL: RQ_STORE_DEFAULT_DRIVER */
    const char *store_params;     /* NULL: RQ_STORE_DEFAULT_PARAMS */
    const char *socket_path;      /* the wait channel's Unix socket */
    int socket_mode;              /* 0: 0660 */
    int socket_uid;               /* -1: keep */
    int socket_gid;               /* -1: keep */
    int workers;                  /* appliers */
    int pollers;                  /* concurrent long polls */
    int max_messages;             /* per receive, 1-10 */
    int wait_seconds;             /* long-poll wait, 0-20 */
    int visibility_timeout;       /* seconds, asked on receive and on extension */
    int max_in_hand;              /* received and not yet deleted */
    apr_interval_time_t delay_min; /* the toy write's random duration */
    apr_interval_time_t delay_max;
    apr_interval_time_t remember; /* keep outcomes for late duplicates */
    int remember_max;
    apr_interval_time_t retry_max; /* cap of the pause after a failed receive */
    apr_interval_time_t sqs_timeout; /* per SQS call; 0: the client's default */
    int max_connections;          /* wait channel connections open at once */
    apr_interval_time_t register_timeout; /* close a connection without REGISTER by then */
} rq_daemon_conf_t;

typedef struct rq_daemon_t rq_daemon_t;

typedef struct rq_daemon_stats_t {
    long received;
    long applied;         /* written by this daemon */
    long already;         /* redelivered, found applied, only deleted */
    long failed;          /* apply failed, message left to come again */
    long released;        /* handed back after a failure in their group */
    long deleted;
    long delete_failed;
    long extended;        /* visibility extensions */
    long poll_errors;
    long invalid;         /* bodies that are not request objects, deleted */
    int in_hand;
} rq_daemon_stats_t;

/* The defaults: 8 workers, 1 poller, 10 messages, 20 s wait, 30 s visibility... */
void rq_daemon_conf_default(rq_daemon_conf_t *conf);

/*
 * Checks the values of a configuration; returns NULL when they are usable,
 * else an operator's sentence (from p) naming the first one at fault.
 * rq_daemon_create() runs the same check.
 */
const char *rq_daemon_conf_check(apr_pool_t *p, const rq_daemon_conf_t *conf);

/*
 * Resolves the AWS settings, opens the store and creates the socket; sets
 * *perr to an operator's sentence on failure (no queue URL, store or socket
 * unusable, ...). Nothing runs until rq_daemon_start().
 */
apr_status_t rq_daemon_create(rq_daemon_t **pd, const char **perr, apr_pool_t *p,
                              const rq_daemon_conf_t *conf);

/* Starts every thread and returns. */
apr_status_t rq_daemon_start(rq_daemon_t *d);

/*
 * Graceful stop: no more receives (a long poll in progress completes, and
 * what it returns is applied), everything in hand is applied, deleted and
 * its waiters woken, then the threads are joined and the socket removed.
 */
void rq_daemon_stop(rq_daemon_t *d);

void rq_daemon_stats(rq_daemon_stats_t *st, rq_daemon_t *d);

#endif
