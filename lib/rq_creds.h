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

#include <apr_pools.h>
#include <apr_time.h>

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
} rq_creds_t;

typedef struct rq_creds_provider_t rq_creds_provider_t;

/* Fills every field of out that can be resolved; allocates from p. */
apr_status_t rq_aws_conf_resolve(rq_aws_conf_t *out, apr_pool_t *p, const rq_aws_conf_t *given);

/* Creates a provider for the resolved settings; lives as long as p. */
apr_status_t rq_creds_provider_create(rq_creds_provider_t **pprov, apr_pool_t *p,
                                      const rq_aws_conf_t *conf);

/* Copies current credentials into out (strings from p), refreshing if due. */
apr_status_t rq_creds_get(rq_creds_t *out, apr_pool_t *p, rq_creds_provider_t *prov);

#endif
