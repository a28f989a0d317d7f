/*
 * AWS settings and credentials, resolved the way the AWS SDKs do.
 *
 * Settings (queue URL, region, endpoint, profile) come from what the caller
 * was given (directives, daemon options), then the environment, then a .env
 * file, then the shared config file's profile, then the queue URL's host.
 *
 * Credentials come from, in order: the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the .env file, the shared
 * credentials and config files for AWS_PROFILE, ECS container credentials,
 * EC2 instance metadata (IMDSv2). A provider caches them and refreshes
 * temporary ones before they expire; it is safe to share between threads.
 */
#ifndef RQ_CREDS_H
#define RQ_CREDS_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_time.h>

/* Status codes beyond APR's, for settings and credentials. */
#define RQ_CREDS_ERR_BASE  (APR_OS_START_USERERR + 4000)
#define RQ_CREDS_ENOREGION (RQ_CREDS_ERR_BASE + 1) /* no region could be resolved */
#define RQ_CREDS_ENOQUEUE  (RQ_CREDS_ERR_BASE + 2) /* no queue URL where one is needed */
#define RQ_CREDS_EBADURL   (RQ_CREDS_ERR_BASE + 3) /* a queue URL or endpoint is not a URL */
#define RQ_CREDS_ENONE     (RQ_CREDS_ERR_BASE + 4) /* no source had credentials */
#define RQ_CREDS_EFETCH    (RQ_CREDS_ERR_BASE + 5) /* container or instance endpoint failed */
#define RQ_CREDS_EBADFILE  (RQ_CREDS_ERR_BASE + 6) /* a .env or shared file is malformed */

/* What the caller was given explicitly; NULL fields are resolved. */
typedef struct rq_aws_conf_t {
    const char *queue_url;
    const char *region;
    const char *endpoint;
    const char *env_file;
    const char *profile;
} rq_aws_conf_t;

typedef struct rq_creds_t {
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL when none */
    apr_time_t expires;        /* 0 when they do not expire */
    const char *source;        /* where they came from, e.g. "environment" */
} rq_creds_t;

/* Tuning of a provider; rq_creds_opts_default() fills in the defaults. */
typedef struct rq_creds_opts_t {
    apr_interval_time_t refresh_margin;  /* refresh this long before expiry: 5 min */
    apr_interval_time_t retry_interval;  /* between failed refreshes while valid: 10 s */
    apr_interval_time_t connect_timeout; /* container and instance endpoints: 1 s */
    apr_interval_time_t timeout;         /* one whole HTTP exchange with them: 3 s */
} rq_creds_opts_t;

typedef struct rq_creds_provider_t rq_creds_provider_t;

/*
 * Fills every field of out that can be resolved; allocates from p.
 *
 * queue_url: given, else AWS_FIFO_URL (environment, then .env); may stay NULL.
 * profile:   given, else AWS_PROFILE, else "default".
 * region:    given, else AWS_REGION, AWS_DEFAULT_REGION, else the profile's
 *            "region" in the config file, else the queue URL's host
 *            (sqs.REGION.amazonaws.com or REGION.queue.amazonaws.com).
 * endpoint:  given, else AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, else the
 *            queue URL's scheme, host and port, else https://sqs.REGION.amazonaws.com.
 * env_file:  given, else none: a .env file is read only when named.
 *
 * Fails with RQ_CREDS_ENOREGION when no region is found, RQ_CREDS_EBADURL for
 * a malformed URL, or the file's error for an unreadable or malformed .env
 * or config file; the reason is logged at error level.
 */
apr_status_t rq_aws_conf_resolve(rq_aws_conf_t *out, apr_pool_t *p, const rq_aws_conf_t *given);

/* The same, but on failure sets *perr to the reason instead of logging it. */
apr_status_t rq_aws_conf_resolve_ex(rq_aws_conf_t *out, const char **perr, apr_pool_t *p,
                                    const rq_aws_conf_t *given);

/*
 * The same, with the caller's own way to give a region named in the
 * no-region message (e.g. "--region"); NULL names RaceQRegion and raceqd's
 * --region.
 */
apr_status_t rq_aws_conf_resolve_for(rq_aws_conf_t *out, const char **perr, apr_pool_t *p,
                                     const rq_aws_conf_t *given, const char *region_option);

/*
 * For callers that need a queue (fifo mode, the daemon): RQ_CREDS_ENOQUEUE
 * with *perr saying how to set one when conf has no queue URL.
 */
apr_status_t rq_aws_conf_require_queue(const char **perr, apr_pool_t *p,
                                       const rq_aws_conf_t *conf);

/* Sets every option to its default. */
void rq_creds_opts_default(rq_creds_opts_t *opts);

/*
 * Creates a provider for the resolved settings (conf's profile and env_file
 * are used); lives as long as p. The .env file is read here once. p must not
 * be used by other threads while the provider lives.
 */
apr_status_t rq_creds_provider_create(rq_creds_provider_t **pprov, apr_pool_t *p,
                                      const rq_aws_conf_t *conf);

/* The same with explicit options (opts NULL: the defaults). */
apr_status_t rq_creds_provider_create_ex(rq_creds_provider_t **pprov, const char **perr,
                                         apr_pool_t *p, const rq_aws_conf_t *conf,
                                         const rq_creds_opts_t *opts);

/*
 * Copies current credentials into out (strings from p), refreshing if due.
 * Thread-safe. Credentials without an expiry (environment, files) are read
 * once and kept. Temporary ones are fetched again refresh_margin before they
 * expire; if that fails while the old ones are still valid, the old ones are
 * returned and a warning is logged. When nothing is found the error lists
 * every source tried; it is logged at error level.
 */
apr_status_t rq_creds_get(rq_creds_t *out, apr_pool_t *p, rq_creds_provider_t *prov);

/* The same, but on failure sets *perr to the reason instead of logging it. */
apr_status_t rq_creds_get_ex(rq_creds_t *out, const char **perr, apr_pool_t *p,
                             rq_creds_provider_t *prov);

#endif
