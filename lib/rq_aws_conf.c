/*
 * Resolution of the AWS settings (queue URL, profile, region, endpoint) in
 * the order the AWS SDKs use; see rq_creds.h.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>

#include "rq_creds_int.h"
#include "rq_log.h"

const char *rq_aws_file_path(apr_pool_t *p, const rq_env_t *env, const char *var,
                             const char *rel)
{
    const char *path = rq_env_get(env, var);
    const char *home = getenv("HOME");

    if (path && strncmp(path, "~/", 2) != 0) {
        return path;
    }
    if (!home || !*home) {
        return NULL;
    }
    if (path) {
        return apr_pstrcat(p, home, path + 1, NULL);
    }
    return apr_pstrcat(p, home, "/", rel, NULL);
}

apr_table_t *rq_aws_config_profile(const rq_ini_t *ini, const char *profile)
{
    apr_table_t *t;

    if (strcmp(profile, "default") == 0) {
        t = rq_ini_section(ini, "default");
        return t ? t : rq_ini_section(ini, "profile default");
    }
    return rq_ini_section(ini, apr_pstrcat(apr_hash_pool_get(ini->sections), "profile ",
                                           profile, NULL));
}

static int is_region(const char *s, apr_size_t n)
{
    apr_size_t i;

    for (i = 0; i < n; i++) {
        if (!apr_islower(s[i]) && !apr_isdigit(s[i]) && s[i] != '-') {
            return 0;
        }
    }
    return n > 0;
}

static int ends_with(const char *s, const char *suffix)
{
    apr_size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * The region in an SQS host name: sqs.REGION.amazonaws.com(.cn),
 * sqs-fips.REGION.amazonaws.com, sqs.REGION.api.aws, the legacy
 * REGION.queue.amazonaws.com, and queue.amazonaws.com (us-east-1).
 */
static const char *region_from_host(apr_pool_t *p, const char *host)
{
    static const char *const prefixes[] = { "sqs.", "sqs-fips.", NULL };
    static const char *const suffixes[] = { ".amazonaws.com", ".amazonaws.com.cn",
                                            ".api.aws", NULL };
    char *h = apr_pstrdup(p, host);
    int i, j;

    for (i = 0; h[i]; i++) {
        h[i] = apr_tolower(h[i]);
    }
    if (strcmp(h, "queue.amazonaws.com") == 0) {
        return "us-east-1";
    }
    if (ends_with(h, ".queue.amazonaws.com")) {
        apr_size_t n = strlen(h) - strlen(".queue.amazonaws.com");
        return is_region(h, n) ? apr_pstrmemdup(p, h, n) : NULL;
    }
    for (i = 0; prefixes[i]; i++) {
        apr_size_t pl = strlen(prefixes[i]);

        if (strncmp(h, prefixes[i], pl) != 0) {
            continue;
        }
        for (j = 0; suffixes[j]; j++) {
            apr_size_t n = strlen(h) - pl;

            if (ends_with(h + pl, suffixes[j]) && is_region(h + pl, n - strlen(suffixes[j]))) {
                return apr_pstrmemdup(p, h + pl, n - strlen(suffixes[j]));
            }
        }
    }
    return NULL;
}

/* Parses an http(s) URL with a host; *perr names the setting on failure. */
static apr_status_t url_parse(apr_uri_t *uri, const char **perr, apr_pool_t *p,
                              const char *url, const char *what)
{
    if (apr_uri_parse(p, url, uri) != APR_SUCCESS || !uri->scheme || !uri->hostname
        || !*uri->hostname
        || (strcasecmp(uri->scheme, "http") != 0 && strcasecmp(uri->scheme, "https") != 0)) {
        *perr = apr_psprintf(p, "the %s \"%s\" is not an http:// or https:// URL with a host",
                             what, url);
        return RQ_CREDS_EBADURL;
    }
    return APR_SUCCESS;
}

static const char *strip_slash(apr_pool_t *p, const char *url)
{
    apr_size_t n = strlen(url);

    while (n > 0 && url[n - 1] == '/') {
        n--;
    }
    return apr_pstrmemdup(p, url, n);
}

/* The profile's region in the config file, or NULL; a malformed file fails. */
static apr_status_t region_from_profile(const char **pregion, const char **perr, apr_pool_t *p,
                                        const rq_env_t *env, const char *profile)
{
    const char *path = rq_aws_file_path(p, env, "AWS_CONFIG_FILE", ".aws/config");
    apr_table_t *section;
    rq_ini_t *ini;
    apr_status_t rv;

    *pregion = NULL;
    if (!path) {
        return APR_SUCCESS;
    }
    rv = rq_ini_read(&ini, perr, p, path);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        return RQ_CREDS_EBADFILE;
    }

    section = rq_aws_config_profile(ini, profile);
    if (section) {
        const char *r = apr_table_get(section, "region");
        *pregion = (r && *r) ? r : NULL;
    }
    return APR_SUCCESS;
}

static apr_status_t resolve_region(rq_aws_conf_t *out, const char **perr, apr_pool_t *p,
                                   const rq_env_t *env, const apr_uri_t *queue,
                                   const char *region_option)
{
    apr_status_t rv;

    if (!out->region) {
        out->region = rq_env_get(env, "AWS_REGION");
    }
    if (!out->region) {
        out->region = rq_env_get(env, "AWS_DEFAULT_REGION");
    }
    if (!out->region) {
        rv = region_from_profile(&out->region, perr, p, env, out->profile);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    if (!out->region && queue) {
        out->region = region_from_host(p, queue->hostname);
    }
    if (!out->region) {
        *perr = apr_psprintf(p, "no AWS region is set: give %s, "
                             "set AWS_REGION in the environment or the .env file, "
                             "add \"region\" to the profile \"%s\" in the AWS config file, "
                             "or use a queue URL on an AWS host such as "
                             "https://sqs.eu-west-1.amazonaws.com/...",
                             region_option ? region_option : "RaceQRegion (raceqd --region)",
                             out->profile);
        return RQ_CREDS_ENOREGION;
    }
    return APR_SUCCESS;
}

static apr_status_t resolve_endpoint(rq_aws_conf_t *out, const char **perr, apr_pool_t *p,
                                     const rq_env_t *env, apr_uri_t *queue)
{
    apr_uri_t uri;
    apr_status_t rv;

    if (!out->endpoint) {
        out->endpoint = rq_env_get(env, "AWS_ENDPOINT_URL_SQS");
    }
    if (!out->endpoint) {
        out->endpoint = rq_env_get(env, "AWS_ENDPOINT_URL");
    }
    if (out->endpoint) {
        rv = url_parse(&uri, perr, p, out->endpoint, "SQS endpoint");
        out->endpoint = strip_slash(p, out->endpoint);
        return rv;
    }

    if (queue) {
        out->endpoint = apr_uri_unparse(p, queue, APR_URI_UNP_OMITPATHINFO
                                        | APR_URI_UNP_OMITUSERINFO);
        return APR_SUCCESS;
    }
    out->endpoint = apr_pstrcat(p, "https://sqs.", out->region, ".amazonaws.com",
                                strncmp(out->region, "cn-", 3) == 0 ? ".cn" : "", NULL);
    return APR_SUCCESS;
}

/* An empty string given counts as not given. */
static void unset_empty(rq_aws_conf_t *c)
{
    const char **fields[] = { &c->queue_url, &c->region, &c->endpoint, &c->env_file,
                              &c->profile };
    apr_size_t i;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (*fields[i] && !**fields[i]) {
            *fields[i] = NULL;
        }
    }
}

apr_status_t rq_aws_conf_resolve_ex(rq_aws_conf_t *out, const char **perr, apr_pool_t *p,
                                    const rq_aws_conf_t *given)
{
    return rq_aws_conf_resolve_for(out, perr, p, given, NULL);
}

apr_status_t rq_aws_conf_resolve_for(rq_aws_conf_t *out, const char **perr, apr_pool_t *p,
                                     const rq_aws_conf_t *given, const char *region_option)
{
    rq_env_t *env = NULL;
    apr_uri_t queue;
    apr_status_t rv;

    *out = *given;
    unset_empty(out);
    if (out->env_file) {
        rv = rq_env_read(&env, perr, p, out->env_file);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }

    if (!out->queue_url) {
        out->queue_url = rq_env_get(env, "AWS_FIFO_URL");
    }
    if (out->queue_url) {
        rv = url_parse(&queue, perr, p, out->queue_url, "queue URL");
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    if (!out->profile) {
        out->profile = rq_env_get(env, "AWS_PROFILE");
    }
    if (!out->profile) {
        out->profile = "default";
    }

    rv = resolve_region(out, perr, p, env, out->queue_url ? &queue : NULL, region_option);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return resolve_endpoint(out, perr, p, env, out->queue_url ? &queue : NULL);
}

apr_status_t rq_aws_conf_resolve(rq_aws_conf_t *out, apr_pool_t *p, const rq_aws_conf_t *given)
{
    const char *err = NULL;
    apr_status_t rv = rq_aws_conf_resolve_ex(out, &err, p, given);

    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, APR_SUCCESS, p, "RQ04001: %s", err);
    }
    return rv;
}

apr_status_t rq_aws_conf_require_queue(const char **perr, apr_pool_t *p,
                                       const rq_aws_conf_t *conf)
{
    if (conf->queue_url && *conf->queue_url) {
        return APR_SUCCESS;
    }
    *perr = apr_pstrdup(p, "no SQS queue URL is set: give RaceQQueueURL (raceqd --queue-url) "
                           "or set AWS_FIFO_URL in the environment or the .env file");
    return RQ_CREDS_ENOQUEUE;
}
