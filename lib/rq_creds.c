/*
 * The credential chain and the caching provider; see rq_creds.h.
 *
 * Sources are tried in the AWS SDKs' order. The first that has credentials
 * wins and is remembered, so that refreshing temporary credentials asks the
 * same source again. A source that is configured but fails (a malformed
 * file, a container endpoint that does not answer) stops the chain: falling
 * through to the next source would silently pick another identity.
 */
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "rq_creds_int.h"
#include "rq_log.h"

/* Profile settings that name a way to get credentials we do not implement. */
static const char *const unsupported_keys[] = {
    "role_arn", "credential_process", "sso_session", "sso_start_url",
    "web_identity_token_file", NULL
};

struct rq_creds_provider_t {
    apr_pool_t *p;
    const char *profile;
    const rq_env_t *env;
    rq_creds_opts_t opts;
    apr_thread_mutex_t *lock;    /* guards the fields below */
    apr_thread_mutex_t *refresh; /* one fetch at a time */
    apr_pool_t *cpool;           /* holds cur */
    rq_creds_t cur;
    int have;
    int source;                  /* index in sources[] of cur */
    apr_time_t next_try;         /* no refresh before this while cur is valid */
};

static void note(rq_creds_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(rq_creds_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    APR_ARRAY_PUSH(ctx->tried, const char *) = apr_pvsprintf(ctx->p, fmt, ap);
    va_end(ap);
}

typedef const char *lookup_fn(const void *baton, const char *key);

static const char *lookup_env(const void *baton, const char *key)
{
    (void)baton;
    return rq_env_get(NULL, key);
}

static const char *lookup_env_file(const void *baton, const char *key)
{
    return rq_env_file_get(baton, key);
}

static const char *lookup_table(const void *baton, const char *key)
{
    const char *v = apr_table_get(baton, key);

    return (v && *v) ? v : NULL;
}

/*
 * Static keys from one place. names[] are the id, secret and token keys;
 * where says where they were looked up, for messages.
 */
static apr_status_t from_keys(rq_creds_t *out, rq_creds_ctx_t *ctx, lookup_fn *get,
                              const void *baton, const char *const names[3], const char *where)
{
    const char *id = get(baton, names[0]);
    const char *secret = get(baton, names[1]);

    if (!id && !secret) {
        note(ctx, "%s: no %s", where, names[0]);
        return APR_NOTFOUND;
    }
    if (!id || !secret) {
        ctx->err = apr_psprintf(ctx->p, "%s sets %s but not %s; set both or neither", where,
                                id ? names[0] : names[1], id ? names[1] : names[0]);
        return RQ_CREDS_ENONE;
    }

    memset(out, 0, sizeof(*out));
    out->access_key = apr_pstrdup(ctx->p, id);
    out->secret_key = apr_pstrdup(ctx->p, secret);
    out->session_token = apr_pstrdup(ctx->p, get(baton, names[2]));
    out->source = where;
    return APR_SUCCESS;
}

static const char *const env_names[3] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"
};

static const char *const file_names[3] = {
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token"
};

static apr_status_t from_environment(rq_creds_t *out, rq_creds_ctx_t *ctx)
{
    return from_keys(out, ctx, lookup_env, NULL, env_names, "the environment");
}

static apr_status_t from_env_file(rq_creds_t *out, rq_creds_ctx_t *ctx)
{
    if (!ctx->env) {
        note(ctx, ".env file: none given");
        return APR_NOTFOUND;
    }
    return from_keys(out, ctx, lookup_env_file, ctx->env, env_names,
                     apr_psprintf(ctx->p, "the .env file %s", ctx->env->path));
}

/* A profile with no keys but another way to get them: say so plainly. */
static apr_status_t check_unsupported(rq_creds_ctx_t *ctx, apr_table_t *section,
                                      const char *where)
{
    int i;

    for (i = 0; unsupported_keys[i]; i++) {
        if (apr_table_get(section, unsupported_keys[i])) {
            ctx->err = apr_psprintf(ctx->p, "%s uses %s, which is not supported: only "
                                    "aws_access_key_id, aws_secret_access_key and "
                                    "aws_session_token are read from the shared files",
                                    where, unsupported_keys[i]);
            return RQ_CREDS_ENONE;
        }
    }
    note(ctx, "%s: no aws_access_key_id", where);
    return APR_NOTFOUND;
}

static apr_status_t from_shared_file(rq_creds_t *out, rq_creds_ctx_t *ctx, int config)
{
    const char *var = config ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE";
    const char *path = rq_aws_file_path(ctx->p, ctx->env, var,
                                        config ? ".aws/config" : ".aws/credentials");
    const char *kind = config ? "config file" : "shared credentials file";
    const char *where, *err;
    apr_table_t *section;
    rq_ini_t *ini;
    apr_status_t rv;

    if (!path) {
        note(ctx, "%s: neither %s nor HOME is set", kind, var);
        return APR_NOTFOUND;
    }
    rv = rq_ini_read(&ini, &err, ctx->p, path);
    if (APR_STATUS_IS_ENOENT(rv)) {
        note(ctx, "%s %s: does not exist", kind, path);
        return APR_NOTFOUND;
    }
    if (rv != APR_SUCCESS) {
        ctx->err = err;
        return RQ_CREDS_EBADFILE;
    }

    section = config ? rq_aws_config_profile(ini, ctx->profile)
                     : rq_ini_section(ini, ctx->profile);
    where = apr_psprintf(ctx->p, "profile \"%s\" in %s %s", ctx->profile, kind, path);
    if (!section) {
        note(ctx, "%s %s: no profile \"%s\"", kind, path, ctx->profile);
        return APR_NOTFOUND;
    }
    if (!lookup_table(section, file_names[0]) && !lookup_table(section, file_names[1])) {
        return check_unsupported(ctx, section, where);
    }
    return from_keys(out, ctx, lookup_table, section, file_names, where);
}

static apr_status_t from_credentials_file(rq_creds_t *out, rq_creds_ctx_t *ctx)
{
    return from_shared_file(out, ctx, 0);
}

static apr_status_t from_config_file(rq_creds_t *out, rq_creds_ctx_t *ctx)
{
    return from_shared_file(out, ctx, 1);
}

static rq_creds_source_fn *const sources[] = {
    from_environment,
    from_env_file,
    from_credentials_file,
    from_config_file,
    rq_creds_from_container,
    rq_creds_from_imds,
    NULL
};

static const char *join(apr_pool_t *p, const apr_array_header_t *notes)
{
    const char *s = "";
    int i;

    for (i = 0; i < notes->nelts; i++) {
        s = apr_pstrcat(p, s, i ? "; " : "", APR_ARRAY_IDX(notes, i, const char *), NULL);
    }
    return s;
}

static const char *none_found(rq_creds_ctx_t *ctx)
{
    const char *tried = join(ctx->p, ctx->tried);

    return apr_psprintf(ctx->p, "no AWS credentials found. Tried: %s. Set AWS_ACCESS_KEY_ID "
                        "and AWS_SECRET_ACCESS_KEY in the environment or the .env file, "
                        "or add the profile \"%s\" (AWS_PROFILE) to the shared "
                        "credentials file", tried, ctx->profile);
}

/*
 * Runs the chain from the first source, or only source `only` when >= 0.
 * On success *pidx is the source that answered.
 */
static apr_status_t chain_run(rq_creds_t *out, int *pidx, rq_creds_ctx_t *ctx, int only)
{
    apr_status_t rv = APR_NOTFOUND;
    int i;

    for (i = (only >= 0 ? only : 0); sources[i]; i++) {
        rv = sources[i](out, ctx);
        if (rv != APR_NOTFOUND || only >= 0) {
            break;
        }
    }
    if (rv == APR_SUCCESS) {
        *pidx = i;
        return rv;
    }
    if (rv == APR_NOTFOUND && only >= 0) {
        ctx->err = join(ctx->p, ctx->tried);
        return RQ_CREDS_EFETCH;
    }
    if (rv == APR_NOTFOUND) {
        ctx->err = none_found(ctx);
        return RQ_CREDS_ENONE;
    }
    return rv;
}

void rq_creds_opts_default(rq_creds_opts_t *opts)
{
    opts->refresh_margin = apr_time_from_sec(5 * 60);
    opts->retry_interval = apr_time_from_sec(10);
    opts->connect_timeout = apr_time_from_sec(1);
    opts->timeout = apr_time_from_sec(3);
}

apr_status_t rq_creds_provider_create_ex(rq_creds_provider_t **pprov, const char **perr,
                                         apr_pool_t *p, const rq_aws_conf_t *conf,
                                         const rq_creds_opts_t *opts)
{
    rq_creds_provider_t *prov = apr_pcalloc(p, sizeof(*prov));
    rq_env_t *env = NULL;
    apr_status_t rv;

    prov->p = p;
    if (opts) {
        prov->opts = *opts;
    }
    else {
        rq_creds_opts_default(&prov->opts);
    }
    if (conf->env_file && *conf->env_file) {
        rv = rq_env_read(&env, perr, p, conf->env_file);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    prov->env = env;

    prov->profile = conf->profile ? apr_pstrdup(p, conf->profile)
                                  : rq_env_get(env, "AWS_PROFILE");
    if (!prov->profile) {
        prov->profile = "default";
    }
    rv = apr_thread_mutex_create(&prov->lock, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&prov->refresh, APR_THREAD_MUTEX_DEFAULT, p);
    }
    if (rv != APR_SUCCESS) {
        *perr = "cannot create the credentials provider's mutex";
        return rv;
    }
    *pprov = prov;
    return APR_SUCCESS;
}

apr_status_t rq_creds_provider_create(rq_creds_provider_t **pprov, apr_pool_t *p,
                                      const rq_aws_conf_t *conf)
{
    const char *err = NULL;
    apr_status_t rv = rq_creds_provider_create_ex(pprov, &err, p, conf, NULL);

    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, rv, p, "RQ04002: %s", err);
    }
    return rv;
}

enum { CREDS_FRESH, CREDS_DUE, CREDS_NONE };

/* Called with prov->lock held. */
static int creds_state(const rq_creds_provider_t *prov, apr_time_t now)
{
    if (!prov->have || (prov->cur.expires && now >= prov->cur.expires)) {
        return CREDS_NONE;
    }
    if (!prov->cur.expires || now < prov->cur.expires - prov->opts.refresh_margin
        || now < prov->next_try) {
        return CREDS_FRESH;
    }
    return CREDS_DUE;
}

static void creds_copy(rq_creds_t *out, apr_pool_t *p, const rq_creds_t *in)
{
    out->access_key = apr_pstrdup(p, in->access_key);
    out->secret_key = apr_pstrdup(p, in->secret_key);
    out->session_token = in->session_token ? apr_pstrdup(p, in->session_token) : NULL;
    out->expires = in->expires;
    out->source = apr_pstrdup(p, in->source);
}

static void log_new(rq_creds_provider_t *prov, apr_pool_t *p, int refreshed)
{
    char stamp[APR_RFC822_DATE_LEN] = "never";

    if (!rq_log_is_level(RQ_LOG_DEBUG)) {
        return;
    }
    if (prov->cur.expires) {
        apr_rfc822_date(stamp, prov->cur.expires);
    }
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, APR_SUCCESS, p,
                  "RQ04003: %s AWS credentials from %s: access key %s, %s, expiring %s",
                  refreshed ? "refreshed" : "using", prov->cur.source,
                  rq_log_mask(p, prov->cur.access_key),
                  prov->cur.session_token ? "with a session token" : "no session token",
                  stamp);
}

/* Called with prov->refresh held: asks the sources, then updates the cache. */
static apr_status_t creds_fetch(rq_creds_t *out, const char **perr, apr_pool_t *p,
                                rq_creds_provider_t *prov)
{
    rq_creds_ctx_t ctx = { NULL, prov->env, prov->profile, &prov->opts, NULL, NULL };
    apr_pool_t *cp;
    rq_creds_t got;
    apr_status_t rv;
    int idx = -1, refreshing;

    apr_pool_create(&cp, prov->p);
    apr_pool_tag(cp, "rq_creds");
    ctx.p = cp;
    ctx.tried = apr_array_make(cp, 8, sizeof(const char *));
    apr_thread_mutex_lock(prov->lock);
    refreshing = prov->have && creds_state(prov, apr_time_now()) == CREDS_DUE;
    apr_thread_mutex_unlock(prov->lock);

    rv = chain_run(&got, &idx, &ctx, refreshing ? prov->source : -1);

    apr_thread_mutex_lock(prov->lock);
    prov->next_try = apr_time_now() + prov->opts.retry_interval;
    if (rv == APR_SUCCESS) {
        if (prov->cpool) {
            apr_pool_destroy(prov->cpool);
        }
        prov->cpool = cp;
        prov->cur = got;
        prov->have = 1;
        prov->source = idx;
        log_new(prov, p, refreshing);
        creds_copy(out, p, &prov->cur);
    }
    else if (refreshing && creds_state(prov, apr_time_now()) != CREDS_NONE) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_WARNING, rv, p, "RQ04004: refreshing the AWS "
                      "credentials from %s failed; the current ones stay in use until "
                      "they expire: %s", prov->cur.source, ctx.err);
        creds_copy(out, p, &prov->cur);
        apr_pool_destroy(cp);
        rv = APR_SUCCESS;
    }
    else {
        *perr = apr_pstrdup(p, ctx.err);
        apr_pool_destroy(cp);
    }
    apr_thread_mutex_unlock(prov->lock);
    return rv;
}

/* Copies the cached credentials if state allows; returns the state seen. */
static int creds_try_cached(rq_creds_t *out, apr_pool_t *p, rq_creds_provider_t *prov,
                            int accept_due)
{
    int state;

    apr_thread_mutex_lock(prov->lock);
    state = creds_state(prov, apr_time_now());
    if (state == CREDS_FRESH || (accept_due && state == CREDS_DUE)) {
        creds_copy(out, p, &prov->cur);
    }
    apr_thread_mutex_unlock(prov->lock);
    return state;
}

apr_status_t rq_creds_get_ex(rq_creds_t *out, const char **perr, apr_pool_t *p,
                             rq_creds_provider_t *prov)
{
    apr_status_t rv;
    int state;

    state = creds_try_cached(out, p, prov, 0);
    if (state == CREDS_FRESH) {
        return APR_SUCCESS;
    }

    /* Still valid and another thread is refreshing: use what we have. */
    if (state == CREDS_DUE && apr_thread_mutex_trylock(prov->refresh) != APR_SUCCESS) {
        if (creds_try_cached(out, p, prov, 1) != CREDS_NONE) {
            return APR_SUCCESS;
        }
        state = CREDS_NONE;
    }
    if (state == CREDS_NONE) {
        apr_thread_mutex_lock(prov->refresh);
    }

    /* Another thread may have finished a fetch while this one waited. */
    if (creds_try_cached(out, p, prov, 0) == CREDS_FRESH) {
        apr_thread_mutex_unlock(prov->refresh);
        return APR_SUCCESS;
    }
    rv = creds_fetch(out, perr, p, prov);
    apr_thread_mutex_unlock(prov->refresh);
    return rv;
}

apr_status_t rq_creds_get(rq_creds_t *out, apr_pool_t *p, rq_creds_provider_t *prov)
{
    const char *err = NULL;
    apr_status_t rv = rq_creds_get_ex(out, &err, p, prov);

    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, rv, p, "RQ04005: %s",
                      err ? err : "no AWS credentials");
    }
    return rv;
}
