/*
 * Credential sources reached over HTTP: ECS/EKS container credentials and
 * EC2 instance metadata (IMDSv2 only: a token is always required).
 *
 * Both endpoints are link-local or loopback, so proxies are never used, and
 * timeouts are short: on a host that is neither a container nor an instance,
 * the chain must give up quickly.
 */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <curl/curl.h>
#include <jansson.h>

#include "rq_creds_int.h"

#define ECS_HOST            "http://169.254.170.2"
#define IMDS_HOST           "http://169.254.169.254"
#define IMDS_HOST_V6        "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL      "21600"
#define IMDS_CREDS_PATH     "/latest/meta-data/iam/security-credentials/"
#define REPLY_MAX           (64 * 1024)

typedef struct http_reply_t {
    apr_pool_t *p;
    char *body;
    apr_size_t len;
    int too_big;
} http_reply_t;

static size_t on_data(char *data, size_t size, size_t n, void *baton)
{
    http_reply_t *r = baton;
    apr_size_t add = size * n;
    char *grown;

    if (r->len + add > REPLY_MAX) {
        r->too_big = 1;
        return 0;
    }
    grown = apr_palloc(r->p, r->len + add + 1);
    memcpy(grown, r->body, r->len);
    memcpy(grown + r->len, data, add);
    r->len += add;
    grown[r->len] = '\0';
    r->body = grown;
    return add;
}

static void http_setup(CURL *h, const char *method, const char *url, http_reply_t *reply,
                       const rq_creds_opts_t *opts, char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)apr_time_as_msec(opts->connect_timeout));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)apr_time_as_msec(opts->timeout));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
}

/*
 * One HTTP exchange. header may be NULL; it can hold a token, so it is never
 * part of a message. On a transport failure *perr says what happened.
 */
static apr_status_t http_call(int *pstatus, const char **pbody, const char **perr,
                              apr_pool_t *p, const char *method, const char *url,
                              const char *header, const rq_creds_opts_t *opts)
{
    http_reply_t reply = { p, "", 0, 0 };
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    CURL *h = curl_easy_init();
    CURLcode rc;
    long status = 0;

    if (!h) {
        *perr = "cannot create a curl handle";
        return APR_ENOMEM;
    }
    http_setup(h, method, url, &reply, opts, errbuf);
    hdrs = curl_slist_append(hdrs, "Content-Type:");
    if (header) {
        hdrs = curl_slist_append(hdrs, header);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        *perr = apr_psprintf(p, "%s %s: %s", method, url,
                             reply.too_big ? "reply larger than 64 KiB"
                             : *errbuf ? errbuf : curl_easy_strerror(rc));
        return RQ_CREDS_EFETCH;
    }
    *pstatus = (int)status;
    *pbody = reply.body;
    return APR_SUCCESS;
}

static apr_status_t json_release(void *data)
{
    json_decref(data);
    return APR_SUCCESS;
}

static const char *json_str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));

    return (v && *v) ? v : NULL;
}

/*
 * Reads the credentials document both endpoints return: AccessKeyId,
 * SecretAccessKey, Token, Expiration (and Code from instance metadata).
 */
static apr_status_t creds_parse(rq_creds_t *out, const char **perr, apr_pool_t *p,
                                const char *body, const char *where)
{
    json_t *doc = json_loads(body, 0, NULL);
    const char *code, *exp;

    if (!json_is_object(doc)) {
        json_decref(doc);
        *perr = apr_psprintf(p, "%s: the reply is not a JSON object", where);
        return RQ_CREDS_EFETCH;
    }
    apr_pool_cleanup_register(p, doc, json_release, apr_pool_cleanup_null);

    code = json_str(doc, "Code");
    if (code && strcmp(code, "Success") != 0) {
        *perr = apr_psprintf(p, "%s: the reply's Code is \"%s\"", where, code);
        return RQ_CREDS_EFETCH;
    }
    memset(out, 0, sizeof(*out));
    out->access_key = apr_pstrdup(p, json_str(doc, "AccessKeyId"));
    out->secret_key = apr_pstrdup(p, json_str(doc, "SecretAccessKey"));
    out->session_token = apr_pstrdup(p, json_str(doc, "Token"));
    if (!out->access_key || !out->secret_key) {
        *perr = apr_psprintf(p, "%s: the reply lacks AccessKeyId or SecretAccessKey", where);
        return RQ_CREDS_EFETCH;
    }

    exp = json_str(doc, "Expiration");
    if (exp && rq_aws_time_parse(&out->expires, exp) != APR_SUCCESS) {
        *perr = apr_psprintf(p, "%s: the reply's Expiration \"%s\" is not an ISO 8601 time",
                             where, exp);
        return RQ_CREDS_EFETCH;
    }
    out->source = where;
    return APR_SUCCESS;
}

static int is_digits(const char *s, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        if (!apr_isdigit(s[i])) {
            return 0;
        }
    }
    return 1;
}

static int num(const char *s, int n)
{
    int v = 0;

    while (n-- > 0) {
        v = v * 10 + (*s++ - '0');
    }
    return v;
}

/* The time zone part: "Z", "+hh:mm" or "-hh:mm"; sets the offset in seconds. */
static apr_status_t zone_parse(long *poff, const char *s)
{
    if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0') {
        *poff = 0;
        return APR_SUCCESS;
    }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || !is_digits(s + 1, 2) || s[3] != ':'
        || !is_digits(s + 4, 2)) {
        return APR_EINVAL;
    }
    *poff = (num(s + 1, 2) * 3600L + num(s + 4, 2) * 60L) * (s[0] == '-' ? -1 : 1);
    return APR_SUCCESS;
}

apr_status_t rq_aws_time_parse(apr_time_t *pt, const char *s)
{
    apr_time_exp_t tm;
    long off;

    if (strlen(s) < 20 || !is_digits(s, 4) || s[4] != '-' || !is_digits(s + 5, 2)
        || s[7] != '-' || !is_digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't')
        || !is_digits(s + 11, 2) || s[13] != ':' || !is_digits(s + 14, 2) || s[16] != ':'
        || !is_digits(s + 17, 2)) {
        return APR_EINVAL;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = num(s, 4) - 1900;
    tm.tm_mon = num(s + 5, 2) - 1;
    tm.tm_mday = num(s + 8, 2);
    tm.tm_hour = num(s + 11, 2);
    tm.tm_min = num(s + 14, 2);
    tm.tm_sec = num(s + 17, 2);

    s += 19;
    if (*s == '.') {
        for (s++; apr_isdigit(*s); s++) {
        }
    }
    if (zone_parse(&off, s) != APR_SUCCESS || tm.tm_mon > 11 || tm.tm_mday < 1
        || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return APR_EINVAL;
    }
    if (apr_time_exp_get(pt, &tm) != APR_SUCCESS) {
        return APR_EINVAL;
    }
    *pt -= apr_time_from_sec(off);
    return APR_SUCCESS;
}

/* Plain http is allowed only to the container hosts and loopback. */
static int container_host_ok(const apr_uri_t *uri)
{
    static const char *const hosts[] = {
        "169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost", "::1", NULL
    };
    int i;

    if (strcasecmp(uri->scheme, "https") == 0) {
        return 1;
    }
    for (i = 0; hosts[i]; i++) {
        if (strcasecmp(uri->hostname, hosts[i]) == 0) {
            return 1;
        }
    }
    return strncmp(uri->hostname, "127.", 4) == 0;
}

static apr_status_t container_url(const char **purl, rq_creds_ctx_t *ctx)
{
    const char *rel = rq_env_get(ctx->env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = rq_env_get(ctx->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    apr_uri_t uri;

    if (rel) {
        *purl = apr_pstrcat(ctx->p, ECS_HOST, *rel == '/' ? "" : "/", rel, NULL);
        return APR_SUCCESS;
    }
    if (!full) {
        return APR_NOTFOUND;
    }
    if (apr_uri_parse(ctx->p, full, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname
        || (strcasecmp(uri.scheme, "http") != 0 && strcasecmp(uri.scheme, "https") != 0)) {
        ctx->err = apr_psprintf(ctx->p, "AWS_CONTAINER_CREDENTIALS_FULL_URI \"%s\" is not an "
                                "http:// or https:// URL", full);
        return RQ_CREDS_EFETCH;
    }
    if (!container_host_ok(&uri)) {
        ctx->err = apr_psprintf(ctx->p, "AWS_CONTAINER_CREDENTIALS_FULL_URI \"%s\": plain "
                                "http is only allowed to loopback and the ECS/EKS "
                                "container hosts; use https", full);
        return RQ_CREDS_EFETCH;
    }
    *purl = full;
    return APR_SUCCESS;
}

/* The Authorization header, from the token file or the variable; NULL if none. */
static apr_status_t container_auth(const char **phdr, rq_creds_ctx_t *ctx)
{
    const char *file = rq_env_get(ctx->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *token = rq_env_get(ctx->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    apr_size_t len;
    char *buf;
    apr_status_t rv;

    *phdr = NULL;
    if (file) {
        rv = rq_file_read_all(&buf, &len, ctx->p, file, 16 * 1024);
        if (rv != APR_SUCCESS) {
            ctx->err = apr_psprintf(ctx->p, "cannot read "
                                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %pm", file, &rv);
            return RQ_CREDS_EFETCH;
        }
        while (len > 0 && apr_isspace(buf[len - 1])) {
            buf[--len] = '\0';
        }
        token = buf;
    }
    if (!token || !*token) {
        return APR_SUCCESS;
    }
    if (strpbrk(token, "\r\n")) {
        ctx->err = "the container authorization token contains a line break";
        return RQ_CREDS_EFETCH;
    }
    *phdr = apr_pstrcat(ctx->p, "Authorization: ", token, NULL);
    return APR_SUCCESS;
}

apr_status_t rq_creds_from_container(rq_creds_t *out, rq_creds_ctx_t *ctx)
{
    const char *url, *hdr, *body, *where;
    apr_status_t rv;
    int status;

    rv = container_url(&url, ctx);
    if (rv == APR_NOTFOUND) {
        APR_ARRAY_PUSH(ctx->tried, const char *) = "container credentials: neither "
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set";
        return rv;
    }
    if (rv == APR_SUCCESS) {
        rv = container_auth(&hdr, ctx);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }

    where = apr_psprintf(ctx->p, "container credentials at %s", url);
    rv = http_call(&status, &body, &ctx->err, ctx->p, "GET", url, hdr, ctx->opts);
    if (rv != APR_SUCCESS) {
        ctx->err = apr_psprintf(ctx->p, "container credentials: %s", ctx->err);
        return rv;
    }
    if (status != 200) {
        ctx->err = apr_psprintf(ctx->p, "%s: answered HTTP %d%s", where, status,
                                status == 401 || status == 403
                                ? " (check AWS_CONTAINER_AUTHORIZATION_TOKEN)" : "");
        return RQ_CREDS_EFETCH;
    }
    return creds_parse(out, &ctx->err, ctx->p, body, where);
}

static const char *imds_base(rq_creds_ctx_t *ctx)
{
    const char *ep = rq_env_get(ctx->env, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = rq_env_get(ctx->env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    apr_size_t n;

    if (!ep) {
        ep = (mode && strcasecmp(mode, "IPv6") == 0) ? IMDS_HOST_V6 : IMDS_HOST;
    }
    n = strlen(ep);
    while (n > 0 && ep[n - 1] == '/') {
        n--;
    }
    return apr_pstrmemdup(ctx->p, ep, n);
}

/* One IMDS step; a transport failure means "not on EC2" and ends the chain softly. */
static apr_status_t imds_step(const char **pbody, rq_creds_ctx_t *ctx, const char *method,
                              const char *url, const char *hdr)
{
    const char *err;
    apr_status_t rv;
    int status;

    rv = http_call(&status, pbody, &err, ctx->p, method, url, hdr, ctx->opts);
    if (rv != APR_SUCCESS) {
        APR_ARRAY_PUSH(ctx->tried, const char *) = apr_pstrcat(ctx->p, "instance metadata: ",
                                                               err, NULL);
        return APR_NOTFOUND;
    }
    if (status != 200) {
        ctx->err = apr_psprintf(ctx->p, "instance metadata: %s %s answered HTTP %d%s",
                                method, url, status, status == 404 && *method == 'G'
                                ? " (is an IAM role attached to the instance?)" : "");
        return RQ_CREDS_EFETCH;
    }
    return APR_SUCCESS;
}

static const char *first_line(apr_pool_t *p, const char *s)
{
    apr_size_t n = strcspn(s, "\r\n");

    while (n > 0 && apr_isspace(s[n - 1])) {
        n--;
    }
    return apr_pstrmemdup(p, s, n);
}

apr_status_t rq_creds_from_imds(rq_creds_t *out, rq_creds_ctx_t *ctx)
{
    const char *off = rq_env_get(ctx->env, "AWS_EC2_METADATA_DISABLED");
    const char *base, *token, *role, *body, *hdr, *url;
    apr_status_t rv;

    if (off && strcasecmp(off, "true") == 0) {
        APR_ARRAY_PUSH(ctx->tried, const char *) = "instance metadata: disabled by "
                                                   "AWS_EC2_METADATA_DISABLED";
        return APR_NOTFOUND;
    }
    base = imds_base(ctx);

    rv = imds_step(&body, ctx, "PUT", apr_pstrcat(ctx->p, base, "/latest/api/token", NULL),
                   "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    token = first_line(ctx->p, body);
    hdr = apr_pstrcat(ctx->p, "X-aws-ec2-metadata-token: ", token, NULL);

    rv = imds_step(&body, ctx, "GET", apr_pstrcat(ctx->p, base, IMDS_CREDS_PATH, NULL), hdr);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    role = first_line(ctx->p, body);
    if (!*role) {
        ctx->err = "instance metadata: no IAM role is attached to the instance";
        return RQ_CREDS_EFETCH;
    }

    url = apr_pstrcat(ctx->p, base, IMDS_CREDS_PATH, role, NULL);
    rv = imds_step(&body, ctx, "GET", url, hdr);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return creds_parse(out, &ctx->err, ctx->p, body,
                       apr_psprintf(ctx->p, "instance metadata role %s at %s", role, base));
}
