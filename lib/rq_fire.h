/*
 * The arithmetic of raceq-fire, free of any HTTP: its options, the users'
 * state as the endpoint returns it, and the report computed from what was
 * sent, what was answered and what the store holds afterwards.
 *
 * Definitions (see docs/raceq-fire.md):
 * - lost updates: requests answered 200 minus the writes the user gained
 *   during the run, summed over this run's users;
 * - order violations: adjacent entries of a user's history (this run's
 *   req_ids only) whose SQS sequence number decreases; sequence numbers are
 *   compared as unbounded integers, an entry without one is not comparable;
 * - critical path: the largest, over users, of the sum of that user's apply
 *   durations (finish - start) for this run's req_ids;
 * - latency percentiles: nearest rank over the requests that got an answer.
 */
#ifndef RQ_FIRE_H
#define RQ_FIRE_H

#include <stdio.h>

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#define RQ_FIRE_MAX_USERS     10000
#define RQ_FIRE_MAX_PER_USER  10000
#define RQ_FIRE_MAX_REQUESTS  1000000
#define RQ_FIRE_MAX_PREFIX    64
#define RQ_FIRE_MAX_TIMEOUT   3600.0

typedef struct rq_fire_opts_t {
    const char *url;              /* without a trailing slash */
    int users;
    int per_user;
    int concurrency;              /* 0 until parsed: then users * per_user */
    int json;
    int expect_no_loss;
    int help;
    int version;
    apr_interval_time_t timeout;  /* per request */
    const char *prefix;           /* NULL: the program draws a run id */
} rq_fire_opts_t;

/* One entry of a user's history as GET <url>/users/<id> returns it. */
typedef struct rq_fire_entry_t {
    const char *req_id;
    const char *seq;              /* decimal digits, or NULL when null */
    apr_int64_t start;            /* microseconds */
    apr_int64_t finish;
} rq_fire_entry_t;

typedef struct rq_fire_user_t {
    const char *user_id;
    apr_int64_t writes;
    apr_array_header_t *history;  /* of rq_fire_entry_t */
} rq_fire_user_t;

/* What became of one POST. */
typedef struct rq_fire_result_t {
    int user;                     /* index into the run's users */
    const char *req_id;
    int status;                   /* HTTP status; 0 when no answer came */
    apr_interval_time_t latency;
    const char *seq;              /* the X-RaceQ-Seq header, or NULL */
    const char *error;            /* transport error or the JSON "error" */
    int echo_ok;                  /* the body echoed req_id and user_id */
} rq_fire_result_t;

typedef struct rq_fire_run_t {
    int nusers;
    const rq_fire_user_t *before; /* state before firing; NULL: empty */
    const rq_fire_user_t *after;  /* state after firing */
    int nresults;
    const rq_fire_result_t *results;
    apr_interval_time_t wall;     /* the firing phase */
} rq_fire_run_t;

typedef struct rq_fire_status_count_t {
    int status;
    int count;
} rq_fire_status_count_t;

typedef struct rq_fire_user_report_t {
    const char *user_id;
    int sent;
    int answered_ok;
    apr_int64_t writes;           /* gained during the run */
    apr_int64_t lost;
    int order_violations;
    apr_interval_time_t apply;
} rq_fire_user_report_t;

typedef struct rq_fire_report_t {
    int requests;
    int no_answer;
    int bad_echo;                 /* 200 answers that did not echo the ids */
    apr_array_header_t *statuses; /* of rq_fire_status_count_t, ascending */
    apr_int64_t writes;
    apr_int64_t lost;
    int order_violations;
    apr_interval_time_t critical_path;
    apr_interval_time_t wall;
    apr_interval_time_t p50;
    apr_interval_time_t p90;
    apr_interval_time_t p99;
    apr_interval_time_t max;
    int nusers;
    rq_fire_user_report_t *users;
    const char *first_error;      /* one error text, to show the user */
} rq_fire_report_t;

/*
 * Parses the command line into opts. On a usage error returns APR_EINVAL
 * with *perr a sentence naming the option at fault.
 */
apr_status_t rq_fire_opts_parse(rq_fire_opts_t *opts, const char **perr, apr_pool_t *p,
                                int argc, const char *const *argv);

/* The text of --help. */
const char *rq_fire_usage(void);

/*
 * Reads a user's state from the endpoint's JSON. APR_EINVAL with *perr
 * naming the field when the body is not that shape.
 */
apr_status_t rq_fire_user_parse(rq_fire_user_t *user, const char **perr, apr_pool_t *p,
                                const char *body, apr_size_t len);

/* Compares two sequence numbers of decimal digits of any length: <0, 0, >0. */
int rq_fire_seq_cmp(const char *a, const char *b);

/* Nonzero when s is a non-empty string of decimal digits. */
int rq_fire_seq_valid(const char *s);

/* Adjacent pairs of history entries whose seq decreases (nulls skipped). */
int rq_fire_order_violations(const rq_fire_entry_t *entries, int n);

/* Nearest-rank percentile of an ascending array; 0 when n is 0. */
apr_interval_time_t rq_fire_percentile(const apr_interval_time_t *sorted, int n, int pct);

apr_status_t rq_fire_report_compute(rq_fire_report_t **prep, apr_pool_t *p,
                                    const rq_fire_run_t *run);

/*
 * The report as one compact JSON object with the run's options; the string
 * lives in p.
 */
apr_status_t rq_fire_report_json(const char **pjson, apr_pool_t *p,
                                 const rq_fire_report_t *rep, const rq_fire_opts_t *opts);

/* The report as a short aligned table for a person. */
void rq_fire_report_print(FILE *out, const rq_fire_report_t *rep, const rq_fire_opts_t *opts);

#endif
