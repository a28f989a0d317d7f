/*
 * Internals shared by the settings resolver (rq_aws_conf.c), the credential
 * chain (rq_creds.c) and its HTTP sources (rq_creds_remote.c). Not for use
 * outside lib/rq_creds*.c and lib/rq_aws_conf.c.
 */
#ifndef RQ_CREDS_INT_H
#define RQ_CREDS_INT_H

#include <apr_tables.h>

#include "rq_creds.h"
#include "rq_env.h"
#include "rq_ini.h"

/* What a credential source gets to work with. */
typedef struct rq_creds_ctx_t {
    apr_pool_t *p;              /* results and scratch */
    const rq_env_t *env;        /* the .env file, or NULL */
    const char *profile;
    const rq_creds_opts_t *opts;
    apr_array_header_t *tried;  /* const char *: what each source found */
    const char *err;            /* set with a failure other than APR_NOTFOUND */
} rq_creds_ctx_t;

/*
 * A credential source: APR_SUCCESS with out filled, APR_NOTFOUND when it has
 * nothing (a note added to ctx->tried), or a failure with ctx->err set.
 */
typedef apr_status_t rq_creds_source_fn(rq_creds_t *out, rq_creds_ctx_t *ctx);

rq_creds_source_fn rq_creds_from_container;
rq_creds_source_fn rq_creds_from_imds;

/*
 * The path of a shared file: the variable's value (environment, then .env),
 * else HOME/rel; a leading "~/" is expanded. NULL when HOME is unknown.
 */
const char *rq_aws_file_path(apr_pool_t *p, const rq_env_t *env, const char *var,
                             const char *rel);

/* The config file's section for a profile: "[default]" or "[profile NAME]". */
apr_table_t *rq_aws_config_profile(const rq_ini_t *ini, const char *profile);

/* Parses an ISO 8601 UTC time such as 2024-05-01T12:00:00Z. */
apr_status_t rq_aws_time_parse(apr_time_t *pt, const char *s);

#endif
