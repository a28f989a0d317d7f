/*
 * Amazon SQS over the JSON protocol; see rq_sqs.h.
 *
 * Every action goes through sqs_call(): it serialises the request once,
 * then for each attempt signs it afresh (credentials may have been renewed
 * and the date moves), sends it, and classifies the outcome. Retries wait
 * with "full jitter" (a uniform random delay between 0 and an exponentially
 * growing cap), so that many clients throttled together do not come back
 * together.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_uri.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "rq_log.h"
#include "rq_sigv4.h"
#include "rq_sqs.h"

#define SQS_SERVICE      "sqs"
#define SQS_TARGET       "AmazonSQS."
#define SQS_CONTENT_TYPE "application/x-amz-json-1.0"
#define SQS_BACKOFF_BASE apr_time_from_msec(50)
#define SQS_BACKOFF_CAP  apr_time_from_sec(5)
#define SQS_MAX_BATCH_ID 80

struct rq_sqs_t {
    apr_pool_t *pool;
    rq_sqs_opts_t opts;
    rq_http_t *http;
    const char *url;  /* where requests are posted */
    const char *host; /* the Host header, signed */
    const char *path; /* the request path, signed */
    unsigned int seed;
    int net_transient; /* the last network failure may pass if tried again */
    rq_sqs_error_t err;
    char type[256];
    char code[256];
    char message[1024];
    char request_id[128];
};

/* ---- errors: the one place where SQS outcomes become statuses ---------- */

static const struct {
    const char *type;
    apr_status_t status;
} sqs_error_map[] = {
    { "QueueDoesNotExist",                       RQ_SQS_ENOQUEUE },
    { "AWS.SimpleQueueService.NonExistentQueue", RQ_SQS_ENOQUEUE },
    { "NonExistentQueue",                        RQ_SQS_ENOQUEUE },
    { "ThrottlingException",                     RQ_SQS_ETHROTTLED },
    { "Throttling",                              RQ_SQS_ETHROTTLED },
    { "RequestThrottled",                        RQ_SQS_ETHROTTLED },
    { "AWS.SimpleQueueService.RequestThrottled", RQ_SQS_ETHROTTLED },
    { "KmsThrottled",                            RQ_SQS_ETHROTTLED },
    { "InternalError",                           RQ_SQS_ESERVER },
    { "InternalFailure",                         RQ_SQS_ESERVER },
    { "ServiceUnavailable",                      RQ_SQS_ESERVER },
};

apr_status_t rq_sqs_status_from_error(int http_status, const char *type)
{
    apr_size_t i;

    for (i = 0; type && i < sizeof(sqs_error_map) / sizeof(sqs_error_map[0]); i++) {
        if (strcmp(type, sqs_error_map[i].type) == 0) {
            return sqs_error_map[i].status;
        }
    }
    if (http_status == 429) {
        return RQ_SQS_ETHROTTLED;
    }
    if (http_status >= 500) {
        return RQ_SQS_ESERVER;
    }
    if (http_status >= 400) {
        return RQ_SQS_ECLIENT;
    }
    return RQ_SQS_EBADREPLY;
}

static int sqs_status_retryable(const rq_sqs_t *sqs, apr_status_t rv)
{
    return rv == RQ_SQS_ETHROTTLED || rv == RQ_SQS_ESERVER
           || (rv == RQ_SQS_ENETWORK && sqs->net_transient);
}

const char *rq_sqs_strerror(apr_pool_t *p, apr_status_t rv)
{
    char buf[256];

    return apr_pstrdup(p, rq_strerror(rv, buf, sizeof(buf)));
}

static void sqs_error_clear(rq_sqs_t *sqs)
{
    memset(&sqs->err, 0, sizeof(sqs->err));
    sqs->type[0] = sqs->code[0] = sqs->message[0] = sqs->request_id[0] = '\0';
    sqs->err.type = sqs->type;
    sqs->err.code = sqs->code;
    sqs->err.message = sqs->message;
    sqs->err.request_id = sqs->request_id;
}

static void sqs_error_set(rq_sqs_t *sqs, int http_status, const char *type, const char *code,
                          const char *message)
{
    sqs->err.http_status = http_status;
    apr_cpystrn(sqs->type, type ? type : "", sizeof(sqs->type));
    apr_cpystrn(sqs->code, code ? code : "", sizeof(sqs->code));
    apr_cpystrn(sqs->message, message ? message : "", sizeof(sqs->message));
}

/* Refuses a request locally: nothing is sent. */
static apr_status_t sqs_invalid(rq_sqs_t *sqs, apr_pool_t *p, const char *message)
{
    sqs_error_set(sqs, 0, "InvalidParameterValue", "InvalidParameterValue", message);
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, APR_SUCCESS, p,
                  "RQ06001: SQS request not sent: %s", message);
    return RQ_SQS_EINVALID;
}

const rq_sqs_error_t *rq_sqs_error(const rq_sqs_t *sqs)
{
    return &sqs->err;
}

/* ---- validation -------------------------------------------------------- */

int rq_sqs_id_valid(const char *id)
{
    apr_size_t i;

    if (!id || !*id) {
        return 0;
    }
    for (i = 0; id[i]; i++) {
        /* Alphanumerics and ASCII punctuation: every printable but space. */
        if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e || i >= RQ_SQS_MAX_ID) {
            return 0;
        }
    }
    return 1;
}

static int sqs_batch_id_valid(const char *id)
{
    apr_size_t i;

    if (!id || !*id) {
        return 0;
    }
    for (i = 0; id[i]; i++) {
        char c = id[i];

        if (i >= SQS_MAX_BATCH_ID || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                                       || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length, 0 if malformed. */
static apr_size_t utf8_decode(unsigned long *pcp, const unsigned char *s, apr_size_t n)
{
    apr_size_t len, i;
    unsigned long cp;

    if (s[0] < 0x80) {
        *pcp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2, cp = s[0] & 0x1f;
    }
    else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3, cp = s[0] & 0x0f;
    }
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4, cp = s[0] & 0x07;
    }
    else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
        || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    *pcp = cp;
    return len;
}

static int sqs_char_allowed(unsigned long cp)
{
    return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff)
           || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

int rq_sqs_body_valid(const char *body, apr_size_t len, const char **pwhy)
{
    const unsigned char *s = (const unsigned char *)body;
    const char *why = NULL;
    apr_size_t i = 0, n;
    unsigned long cp;

    if (!body || len == 0) {
        why = "the message body is empty";
    }
    else if (len > RQ_SQS_MAX_BODY) {
        why = "the message body is larger than 1 MiB (1048576 bytes)";
    }
    while (!why && i < len) {
        n = utf8_decode(&cp, s + i, len - i);
        if (n == 0) {
            why = "the message body is not valid UTF-8";
        }
        else if (!sqs_char_allowed(cp)) {
            why = "the message body holds a character SQS does not accept";
        }
        i += n;
    }
    if (pwhy) {
        *pwhy = why;
    }
    return why == NULL;
}

apr_status_t rq_sqs_md5_hex(char out[33], const void *data, apr_size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned int i;

    if (!EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16) {
        return APR_EGENERAL;
    }
    for (i = 0; i < mdlen; i++) {
        apr_snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    return APR_SUCCESS;
}

/* Checks a digest SQS computed against our own; a mismatch means corruption. */
static int sqs_md5_matches(const char *want, const char *data)
{
    char hex[33];

    if (!want || rq_sqs_md5_hex(hex, data, strlen(data)) != APR_SUCCESS) {
        return 0;
    }
    return strcasecmp(want, hex) == 0;
}

/* ---- jansson values owned by pools ------------------------------------- */

static apr_status_t json_cleanup(void *data)
{
    json_decref(data);
    return APR_SUCCESS;
}

static json_t *sqs_json_own(apr_pool_t *p, json_t *json)
{
    if (json) {
        apr_pool_cleanup_register(p, json, json_cleanup, apr_pool_cleanup_null);
    }
    return json;
}

static apr_status_t free_cleanup(void *data)
{
    free(data);
    return APR_SUCCESS;
}

static const char *json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* A copy of obj[key] in p, or NULL. */
static const char *json_pstr(apr_pool_t *p, const json_t *obj, const char *key)
{
    const char *s = json_str(obj, key);

    return s ? apr_pstrdup(p, s) : NULL;
}

/* A request object that lives as long as p. */
static json_t *sqs_request(apr_pool_t *p, const char *queue_url)
{
    json_t *req = sqs_json_own(p, json_object());

    if (req && queue_url) {
        json_object_set_new(req, "QueueUrl", json_string(queue_url));
    }
    return req;
}

/* ---- the client -------------------------------------------------------- */

static apr_status_t sqs_endpoint_parse(rq_sqs_t *sqs, apr_pool_t *p, const char *endpoint)
{
    apr_uri_t uri;

    if (apr_uri_parse(p, endpoint, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname
        || (strcasecmp(uri.scheme, "http") != 0 && strcasecmp(uri.scheme, "https") != 0)) {
        return APR_EINVAL;
    }
    sqs->host = uri.port_str ? apr_pstrcat(p, uri.hostname, ":", uri.port_str, NULL)
                             : uri.hostname;
    if (strchr(uri.hostname, ':')) {
        sqs->host = uri.port_str ? apr_psprintf(p, "[%s]:%s", uri.hostname, uri.port_str)
                                 : apr_psprintf(p, "[%s]", uri.hostname);
    }
    sqs->path = uri.path && *uri.path ? uri.path : "/";
    sqs->url = apr_pstrcat(p, uri.scheme, "://", sqs->host, sqs->path, NULL);
    return APR_SUCCESS;
}

static apr_status_t sqs_creds_default(rq_creds_provider_t **pprov, apr_pool_t *p,
                                      const rq_sqs_opts_t *opts)
{
    rq_aws_conf_t given, conf;
    apr_status_t rv;

    memset(&given, 0, sizeof(given));
    given.region = opts->region;
    given.endpoint = opts->endpoint;
    rv = rq_aws_conf_resolve(&conf, p, &given);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return rq_creds_provider_create(pprov, p, &conf);
}

apr_status_t rq_sqs_create(rq_sqs_t **psqs, apr_pool_t *p, const rq_sqs_opts_t *opts)
{
    rq_sqs_t *sqs = apr_pcalloc(p, sizeof(*sqs));
    apr_status_t rv;

    if (!opts || !opts->endpoint || !opts->region || !*opts->region) {
        return APR_EINVAL;
    }

    sqs->pool = p;
    sqs->opts = *opts;
    sqs_error_clear(sqs);
    sqs->seed = (unsigned int)(apr_time_now() ^ (apr_uintptr_t)sqs);
    rv = sqs_endpoint_parse(sqs, p, opts->endpoint);
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, rv, p,
                      "RQ06002: The SQS endpoint \"%s\" is not an http or https URL.",
                      opts->endpoint);
        return rv;
    }

    if (!sqs->opts.connect_timeout) {
        sqs->opts.connect_timeout = RQ_SQS_DEFAULT_CONNECT_TIMEOUT;
    }
    if (!sqs->opts.timeout) {
        sqs->opts.timeout = RQ_SQS_DEFAULT_TIMEOUT;
    }
    if (sqs->opts.max_attempts <= 0) {
        sqs->opts.max_attempts = RQ_SQS_DEFAULT_MAX_ATTEMPTS;
    }
    if (!sqs->opts.retry_budget) {
        sqs->opts.retry_budget = RQ_SQS_DEFAULT_RETRY_BUDGET;
    }

    if (!sqs->opts.creds && sqs_creds_default(&sqs->opts.creds, p, opts) != APR_SUCCESS) {
        return RQ_SQS_ECREDS;
    }
    sqs->http = opts->http;
    if (!sqs->http) {
        rv = rq_http_create(&sqs->http, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    *psqs = sqs;
    return APR_SUCCESS;
}

/* ---- one call: sign, send, classify, retry ----------------------------- */

/* What one call is about, shared by its attempts. */
typedef struct sqs_call_t {
    const char *action;
    const char *body;
    apr_size_t body_len;
    apr_interval_time_t wait; /* a long poll's wait, added to the timeout */
} sqs_call_t;

static void sqs_header_add(apr_array_header_t *hdrs, const char *name, const char *value)
{
    rq_header_t *h = apr_array_push(hdrs);

    h->name = name;
    h->value = value;
}

/* Logs the request at trace levels; signatures and tokens stay out. */
static void sqs_trace_request(apr_pool_t *p, const sqs_call_t *call,
                              const apr_array_header_t *hdrs)
{
    int i;

    if (!rq_log_is_level(RQ_LOG_TRACE1)) {
        return;
    }
    for (i = 0; rq_log_is_level(RQ_LOG_TRACE2) && i < hdrs->nelts; i++) {
        const rq_header_t *h = &APR_ARRAY_IDX(hdrs, i, rq_header_t);

        if (strcasecmp(h->name, "Authorization") != 0
            && strcasecmp(h->name, "X-Amz-Security-Token") != 0) {
            rq_log_perror(RQ_LOG_MARK, RQ_LOG_TRACE2, APR_SUCCESS, p, "> %s: %s", h->name,
                          h->value);
        }
    }
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_TRACE1, APR_SUCCESS, p, "> %s %.*s", call->action,
                  (int)call->body_len, call->body);
}

static apr_status_t sqs_headers(apr_array_header_t **phdrs, rq_sqs_t *sqs, apr_pool_t *p,
                                const sqs_call_t *call)
{
    apr_array_header_t *hdrs = apr_array_make(p, 7, sizeof(rq_header_t));
    rq_sigv4_input_t in;
    rq_creds_t creds;
    char date[17];
    const char *authz;
    const char *why = NULL;
    apr_status_t rv;

    rv = rq_creds_get_ex(&creds, &why, p, sqs->opts.creds);
    if (rv != APR_SUCCESS) {
        sqs_error_set(sqs, 0, "MissingCredentials", "MissingCredentials",
                      why ? why : "no AWS credentials could be found");
        return RQ_SQS_ECREDS;
    }

    rq_sigv4_amz_date(date, apr_time_now());
    sqs_header_add(hdrs, "Host", sqs->host);
    sqs_header_add(hdrs, "Content-Type", SQS_CONTENT_TYPE);
    sqs_header_add(hdrs, "X-Amz-Date", apr_pstrdup(p, date));
    sqs_header_add(hdrs, "X-Amz-Target", apr_pstrcat(p, SQS_TARGET, call->action, NULL));
    if (creds.session_token && *creds.session_token) {
        sqs_header_add(hdrs, "X-Amz-Security-Token", creds.session_token);
    }

    in.method = "POST";
    in.uri = sqs->path;
    in.headers = hdrs;
    in.body = call->body;
    in.body_len = call->body_len;
    rv = rq_sigv4_sign(&authz, p, &in, &creds, sqs->opts.region, SQS_SERVICE, date);
    if (rv != APR_SUCCESS) {
        sqs_error_set(sqs, 0, "SigningFailed", "SigningFailed", "the request could not be signed");
        return RQ_SQS_ECREDS;
    }
    sqs_header_add(hdrs, "Authorization", authz);
    *phdrs = hdrs;
    return APR_SUCCESS;
}

/* Reads an error reply: the JSON shape {"__type", "message"} and x-amzn-query-error. */
static apr_status_t sqs_error_parse(rq_sqs_t *sqs, apr_pool_t *p, const rq_http_response_t *resp)
{
    json_t *json = sqs_json_own(p, json_loadb(resp->body, resp->body_len, 0, NULL));
    const char *jtype = json_str(json, "__type");
    const char *message = json_str(json, "message");
    const char *qerr = apr_table_get(resp->headers, "x-amzn-query-error");
    const char *code = NULL, *type;
    apr_status_t rv;

    if (!message) {
        message = json_str(json, "Message");
    }
    if (jtype) {
        code = strrchr(jtype, '#') ? strrchr(jtype, '#') + 1 : jtype;
        code = apr_pstrndup(p, code, strcspn(code, ":"));
    }
    type = qerr && *qerr ? apr_pstrndup(p, qerr, strcspn(qerr, ";")) : code;

    rv = rq_sqs_status_from_error(resp->status, code);
    if (rv == RQ_SQS_ECLIENT || rv == RQ_SQS_EBADREPLY) {
        apr_status_t by_type = rq_sqs_status_from_error(resp->status, type);

        rv = by_type != RQ_SQS_ECLIENT && by_type != RQ_SQS_EBADREPLY ? by_type : rv;
    }
    if (!message) {
        message = apr_psprintf(p, "HTTP status %d without an SQS error message", resp->status);
    }
    sqs_error_set(sqs, resp->status, type, code, message);
    return rv;
}

/*
 * Classifies one attempt's outcome: APR_SUCCESS with *preply set, or the
 * status of the failure, with the error recorded.
 */
static apr_status_t sqs_outcome(json_t **preply, rq_sqs_t *sqs, apr_pool_t *p,
                                apr_status_t rv, const rq_http_response_t *resp)
{
    const char *rid = apr_table_get(resp->headers, "x-amzn-RequestId");
    json_error_t jerr;

    apr_cpystrn(sqs->request_id, rid ? rid : "", sizeof(sqs->request_id));
    if (rv != APR_SUCCESS) {
        sqs_error_set(sqs, 0, "NetworkError", "NetworkError",
                      resp->error ? resp->error : "no reply came");
        sqs->net_transient = resp->transient;
        return RQ_SQS_ENETWORK;
    }
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_TRACE1, APR_SUCCESS, p, "< %d %.*s", resp->status,
                  (int)resp->body_len, resp->body);
    if (resp->status != 200) {
        return sqs_error_parse(sqs, p, resp);
    }

    *preply = sqs_json_own(p, json_loadb(resp->body, resp->body_len, 0, &jerr));
    if (!json_is_object(*preply)) {
        sqs_error_set(sqs, resp->status, "MalformedReply", "MalformedReply",
                      apr_psprintf(p, "the reply is not a JSON object: %s", jerr.text));
        return RQ_SQS_EBADREPLY;
    }
    return APR_SUCCESS;
}

/* A uniform random delay in [0, min(cap, base * 2^(attempt - 1))]. */
static apr_interval_time_t sqs_backoff(rq_sqs_t *sqs, int attempt)
{
    apr_interval_time_t ceil = SQS_BACKOFF_BASE;
    int i;

    for (i = 1; i < attempt && ceil < SQS_BACKOFF_CAP; i++) {
        ceil *= 2;
    }
    if (ceil > SQS_BACKOFF_CAP) {
        ceil = SQS_BACKOFF_CAP;
    }
    return (apr_interval_time_t)((double)ceil * rand_r(&sqs->seed) / RAND_MAX);
}

static apr_status_t sqs_attempt(json_t **preply, rq_sqs_t *sqs, apr_pool_t *p,
                                const sqs_call_t *call)
{
    apr_array_header_t *hdrs;
    rq_http_request_t req;
    rq_http_response_t resp;
    apr_status_t rv;

    rv = sqs_headers(&hdrs, sqs, p, call);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    sqs_trace_request(p, call, hdrs);

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = sqs->url;
    req.headers = hdrs;
    req.body = call->body;
    req.body_len = call->body_len;
    req.connect_timeout = sqs->opts.connect_timeout;
    req.timeout = sqs->opts.timeout + call->wait;
    rv = rq_http_call(&resp, sqs->http, p, &req);
    return sqs_outcome(preply, sqs, p, rv, &resp);
}

static apr_status_t sqs_call(json_t **preply, rq_sqs_t *sqs, apr_pool_t *p, const char *action,
                             json_t *request, int wait_seconds)
{
    apr_time_t start = apr_time_now();
    sqs_call_t call;
    apr_interval_time_t delay;
    apr_status_t rv;
    char *body;
    int attempt;

    sqs_error_clear(sqs);
    body = json_dumps(request, JSON_COMPACT);
    if (!body) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, body, free_cleanup, apr_pool_cleanup_null);
    call.action = action;
    call.body = body;
    call.body_len = strlen(body);
    call.wait = apr_time_from_sec(wait_seconds);

    for (attempt = 1;; attempt++) {
        rv = sqs_attempt(preply, sqs, p, &call);
        sqs->err.attempts = attempt;
        if (rv == APR_SUCCESS || !sqs_status_retryable(sqs, rv)
            || attempt >= sqs->opts.max_attempts) {
            break;
        }
        delay = sqs_backoff(sqs, attempt);
        if (apr_time_now() - start + delay > sqs->opts.retry_budget) {
            break;
        }
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, APR_SUCCESS, p,
                      "RQ06003: SQS %s attempt %d failed (%s: %s), retrying in %" APR_TIME_T_FMT
                      " ms", action, attempt, sqs->type, sqs->message, apr_time_as_msec(delay));
        apr_sleep(delay);
    }

    if (rv != APR_SUCCESS && rv != RQ_SQS_ENOQUEUE) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, APR_SUCCESS, p,
                      "RQ06004: SQS %s failed after %d attempt(s): HTTP %d %s: %s%s%s",
                      action, attempt, sqs->err.http_status, sqs->type, sqs->message,
                      *sqs->request_id ? ", request id " : "", sqs->request_id);
    }
    return rv;
}

/* ---- queues ------------------------------------------------------------ */

apr_status_t rq_sqs_create_queue(const char **pqueue_url, rq_sqs_t *sqs, apr_pool_t *p,
                                 const char *name, apr_table_t *attributes)
{
    json_t *req = sqs_request(p, NULL);
    json_t *attrs = json_object();
    json_t *reply = NULL;
    const apr_array_header_t *arr;
    apr_size_t len = name ? strlen(name) : 0;
    apr_status_t rv;
    int i;

    json_object_set_new(req, "Attributes", attrs);
    if (len == 0 || len > 80) {
        return sqs_invalid(sqs, p, "QueueName must be 1 to 80 characters");
    }
    json_object_set_new(req, "QueueName", json_string(name));
    if (len > 5 && strcmp(name + len - 5, ".fifo") == 0) {
        json_object_set_new(attrs, "FifoQueue", json_string("true"));
    }
    arr = attributes ? apr_table_elts(attributes) : NULL;
    for (i = 0; arr && i < arr->nelts; i++) {
        const apr_table_entry_t *e = &APR_ARRAY_IDX(arr, i, apr_table_entry_t);

        json_object_set_new(attrs, e->key, json_string(e->val));
    }

    rv = sqs_call(&reply, sqs, p, "CreateQueue", req, 0);
    if (rv == APR_SUCCESS && !(*pqueue_url = json_pstr(p, reply, "QueueUrl"))) {
        rv = RQ_SQS_EBADREPLY;
    }
    return rv;
}

apr_status_t rq_sqs_get_queue_url(const char **pqueue_url, rq_sqs_t *sqs, apr_pool_t *p,
                                  const char *name)
{
    json_t *req = sqs_request(p, NULL);
    json_t *reply = NULL;
    apr_status_t rv;

    if (!name || !*name) {
        return sqs_invalid(sqs, p, "QueueName is empty");
    }
    json_object_set_new(req, "QueueName", json_string(name));

    rv = sqs_call(&reply, sqs, p, "GetQueueUrl", req, 0);
    if (rv == APR_SUCCESS && !(*pqueue_url = json_pstr(p, reply, "QueueUrl"))) {
        rv = RQ_SQS_EBADREPLY;
    }
    return rv;
}

apr_status_t rq_sqs_get_queue_attributes(apr_table_t **pattrs, rq_sqs_t *sqs, apr_pool_t *p,
                                         const char *queue_url)
{
    json_t *req = sqs_request(p, queue_url);
    json_t *reply = NULL;
    json_t *value;
    const char *key;
    apr_status_t rv;

    if (!queue_url || !*queue_url) {
        return sqs_invalid(sqs, p, "QueueUrl is empty");
    }
    json_object_set_new(req, "AttributeNames", json_pack("[s]", "All"));

    rv = sqs_call(&reply, sqs, p, "GetQueueAttributes", req, 0);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *pattrs = apr_table_make(p, 16);
    json_object_foreach(json_object_get(reply, "Attributes"), key, value) {
        if (json_is_string(value)) {
            apr_table_set(*pattrs, key, json_string_value(value));
        }
    }
    return APR_SUCCESS;
}

static apr_status_t sqs_queue_action(rq_sqs_t *sqs, apr_pool_t *p, const char *action,
                                     json_t *req)
{
    json_t *reply = NULL;

    if (!json_str(req, "QueueUrl") || !*json_str(req, "QueueUrl")) {
        return sqs_invalid(sqs, p, "QueueUrl is empty");
    }
    return sqs_call(&reply, sqs, p, action, req, 0);
}

apr_status_t rq_sqs_purge(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url)
{
    return sqs_queue_action(sqs, p, "PurgeQueue", sqs_request(p, queue_url ? queue_url : ""));
}

/* ---- sending ----------------------------------------------------------- */

/* Checks one message and adds its fields to obj; NULL when valid, else why not. */
static const char *sqs_message_fill(json_t *obj, const char *body, const char *group_id,
                                    const char *dedup_id)
{
    const char *why;

    if (!rq_sqs_body_valid(body, body ? strlen(body) : 0, &why)) {
        return why;
    }
    if (group_id && !rq_sqs_id_valid(group_id)) {
        return "MessageGroupId must be 1 to 128 letters, digits or punctuation";
    }
    if (dedup_id && !rq_sqs_id_valid(dedup_id)) {
        return "MessageDeduplicationId must be 1 to 128 letters, digits or punctuation";
    }
    json_object_set_new(obj, "MessageBody", json_string(body));
    if (group_id) {
        json_object_set_new(obj, "MessageGroupId", json_string(group_id));
    }
    if (dedup_id) {
        json_object_set_new(obj, "MessageDeduplicationId", json_string(dedup_id));
    }
    return NULL;
}

apr_status_t rq_sqs_send(rq_sqs_sent_t *out, rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                         const char *body, const char *group_id, const char *dedup_id)
{
    json_t *req = sqs_request(p, queue_url);
    json_t *reply = NULL;
    const char *why;
    apr_status_t rv;

    if (!queue_url || !*queue_url) {
        return sqs_invalid(sqs, p, "QueueUrl is empty");
    }
    why = sqs_message_fill(req, body, group_id, dedup_id);
    if (why) {
        return sqs_invalid(sqs, p, why);
    }

    rv = sqs_call(&reply, sqs, p, "SendMessage", req, 0);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    out->message_id = json_pstr(p, reply, "MessageId");
    out->sequence_number = json_pstr(p, reply, "SequenceNumber");
    if (!out->message_id || !sqs_md5_matches(json_str(reply, "MD5OfMessageBody"), body)) {
        sqs_error_set(sqs, 200, "MD5Mismatch", "MD5Mismatch",
                      "MD5OfMessageBody does not match the body sent; it may be stored damaged");
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, APR_SUCCESS, p,
                      "RQ06005: SQS stored message %s with a digest that does not match the "
                      "body sent", out->message_id ? out->message_id : "(no id)");
        return RQ_SQS_EBADREPLY;
    }
    return APR_SUCCESS;
}

/* Checks the entry ids of a batch: 1-10 entries, valid and distinct ids. */
static const char *sqs_batch_ids_check(apr_pool_t *p, const char *const *ids, int n)
{
    apr_table_t *seen = apr_table_make(p, n > 0 ? n : 1);
    int i;

    if (n < 1 || n > RQ_SQS_MAX_BATCH) {
        return "a batch holds 1 to 10 entries";
    }
    for (i = 0; i < n; i++) {
        if (!sqs_batch_id_valid(ids[i])) {
            return "each batch entry Id must be 1 to 80 letters, digits, '-' or '_'";
        }
        if (apr_table_get(seen, ids[i])) {
            return "batch entry Ids must be distinct";
        }
        apr_table_setn(seen, ids[i], "");
    }
    return NULL;
}

/* Finds the index of the entry whose id is id, or -1. */
static int sqs_batch_index(const char *const *ids, int n, const char *id)
{
    int i;

    for (i = 0; id && i < n; i++) {
        if (strcmp(ids[i], id) == 0) {
            return i;
        }
    }
    return -1;
}

/* Outcome of one batch entry, whatever the kind of entry. */
typedef struct sqs_entry_result_t {
    apr_status_t *status;
    const char **error_code;
    const char **error_message;
} sqs_entry_result_t;

/*
 * Reads the "Failed" list of a batch reply into the entries' outcomes and
 * returns how many failed; entries in neither list are failures too.
 */
static int sqs_batch_failed(apr_pool_t *p, json_t *reply, const char *const *ids, int n,
                            sqs_entry_result_t *res, const char *done)
{
    json_t *f;
    size_t i;
    int failed = 0, k;

    json_array_foreach(json_object_get(reply, "Failed"), i, f) {
        k = sqs_batch_index(ids, n, json_str(f, "Id"));
        if (k < 0) {
            continue;
        }
        *res[k].error_code = json_pstr(p, f, "Code");
        *res[k].error_message = json_pstr(p, f, "Message");
        *res[k].status = rq_sqs_status_from_error(json_is_true(json_object_get(f, "SenderFault"))
                                                  ? 400 : 500, *res[k].error_code);
    }
    for (k = 0; k < n; k++) {
        if (!done[k] && *res[k].status == APR_SUCCESS) {
            *res[k].status = RQ_SQS_EBADREPLY;
            *res[k].error_code = "MissingResult";
            *res[k].error_message = "the reply names this entry neither successful nor failed";
        }
        failed += *res[k].status != APR_SUCCESS;
    }
    return failed;
}

static apr_status_t sqs_batch_result(rq_sqs_t *sqs, apr_pool_t *p, const char *action,
                                     int failed, int n)
{
    if (failed == 0) {
        return APR_SUCCESS;
    }
    sqs_error_set(sqs, 200, "BatchEntryFailed", "BatchEntryFailed",
                  apr_psprintf(p, "%d of %d entries failed", failed, n));
    rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, APR_SUCCESS, p,
                  "RQ06006: SQS %s: %d of %d entries failed", action, failed, n);
    return RQ_SQS_EPARTIAL;
}

apr_status_t rq_sqs_send_batch(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                               apr_array_header_t *entries)
{
    json_t *req = sqs_request(p, queue_url);
    json_t *list = json_array();
    json_t *reply = NULL, *ok;
    int n = entries ? entries->nelts : 0;
    const char **ids = apr_pcalloc(p, sizeof(char *) * (n + 1));
    sqs_entry_result_t *res = apr_pcalloc(p, sizeof(*res) * (n + 1));
    char *done = apr_pcalloc(p, n + 1);
    const char *why;
    apr_size_t total = 0, i;
    apr_status_t rv;
    int k;

    json_object_set_new(req, "Entries", list);
    if (!queue_url || !*queue_url) {
        return sqs_invalid(sqs, p, "QueueUrl is empty");
    }
    for (k = 0; k < n; k++) {
        rq_sqs_send_entry_t *e = &APR_ARRAY_IDX(entries, k, rq_sqs_send_entry_t);
        json_t *obj = json_object();

        json_array_append_new(list, obj);
        ids[k] = e->id;
        e->status = APR_SUCCESS;
        e->message_id = e->sequence_number = e->error_code = e->error_message = NULL;
        res[k] = (sqs_entry_result_t){ &e->status, &e->error_code, &e->error_message };
        why = sqs_message_fill(obj, e->body, e->group_id, e->dedup_id);
        if (why) {
            return sqs_invalid(sqs, p, apr_psprintf(p, "entry %d: %s", k + 1, why));
        }
        json_object_set_new(obj, "Id", json_string(e->id ? e->id : ""));
        total += strlen(e->body);
    }
    why = sqs_batch_ids_check(p, ids, n);
    if (why || total > RQ_SQS_MAX_BODY) {
        return sqs_invalid(sqs, p, why ? why : "the bodies of a batch exceed 1 MiB together");
    }

    rv = sqs_call(&reply, sqs, p, "SendMessageBatch", req, 0);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    json_array_foreach(json_object_get(reply, "Successful"), i, ok) {
        rq_sqs_send_entry_t *e;

        k = sqs_batch_index(ids, n, json_str(ok, "Id"));
        if (k < 0) {
            continue;
        }
        e = &APR_ARRAY_IDX(entries, k, rq_sqs_send_entry_t);
        done[k] = 1;
        e->message_id = json_pstr(p, ok, "MessageId");
        e->sequence_number = json_pstr(p, ok, "SequenceNumber");
        if (!sqs_md5_matches(json_str(ok, "MD5OfMessageBody"), e->body)) {
            e->status = RQ_SQS_EBADREPLY;
            e->error_code = "MD5Mismatch";
            e->error_message = "MD5OfMessageBody does not match the body sent";
        }
    }
    return sqs_batch_result(sqs, p, "SendMessageBatch",
                            sqs_batch_failed(p, reply, ids, n, res, done), n);
}

/* ---- receiving --------------------------------------------------------- */

static apr_time_t sqs_msec_attr(const json_t *attrs, const char *name)
{
    const char *s = json_str(attrs, name);

    return s ? apr_time_from_msec(apr_atoi64(s)) : 0;
}

static apr_status_t sqs_message_read(rq_sqs_msg_t *m, rq_sqs_t *sqs, apr_pool_t *p,
                                     const json_t *obj)
{
    const json_t *attrs = json_object_get(obj, "Attributes");
    const char *count = json_str(attrs, "ApproximateReceiveCount");

    m->message_id = json_pstr(p, obj, "MessageId");
    m->receipt_handle = json_pstr(p, obj, "ReceiptHandle");
    m->body = json_pstr(p, obj, "Body");
    m->group_id = json_pstr(p, attrs, "MessageGroupId");
    m->dedup_id = json_pstr(p, attrs, "MessageDeduplicationId");
    m->sequence_number = json_pstr(p, attrs, "SequenceNumber");
    m->receive_count = count ? atoi(count) : 0;
    m->first_receive = sqs_msec_attr(attrs, "ApproximateFirstReceiveTimestamp");
    m->sent = sqs_msec_attr(attrs, "SentTimestamp");

    if (!m->message_id || !m->receipt_handle || !m->body) {
        sqs_error_set(sqs, 200, "MalformedReply", "MalformedReply",
                      "a received message lacks MessageId, ReceiptHandle or Body");
        return RQ_SQS_EBADREPLY;
    }
    if (!sqs_md5_matches(json_str(obj, "MD5OfBody"), m->body)) {
        sqs_error_set(sqs, 200, "MD5Mismatch", "MD5Mismatch",
                      apr_psprintf(p, "MD5OfBody does not match the body of message %s",
                                   m->message_id));
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_ERR, APR_SUCCESS, p,
                      "RQ06007: SQS message %s arrived with a body that does not match its "
                      "digest; it will be delivered again", m->message_id);
        return RQ_SQS_EBADREPLY;
    }
    return APR_SUCCESS;
}

static const char *sqs_receive_check(int max, int wait_seconds, int visibility_timeout,
                                     const char *attempt_id)
{
    if (max < 1 || max > RQ_SQS_MAX_BATCH) {
        return "MaxNumberOfMessages must be 1 to 10";
    }
    if (wait_seconds < 0 || wait_seconds > RQ_SQS_MAX_WAIT) {
        return "WaitTimeSeconds must be 0 to 20";
    }
    if (visibility_timeout > RQ_SQS_MAX_VISIBILITY) {
        return "VisibilityTimeout must be 0 to 43200";
    }
    if (attempt_id && !rq_sqs_id_valid(attempt_id)) {
        return "ReceiveRequestAttemptId must be 1 to 128 letters, digits or punctuation";
    }
    return NULL;
}

apr_status_t rq_sqs_receive(apr_array_header_t **pmsgs, rq_sqs_t *sqs, apr_pool_t *p,
                            const char *queue_url, int max, int wait_seconds,
                            int visibility_timeout, const char *attempt_id)
{
    json_t *req = sqs_request(p, queue_url);
    json_t *reply = NULL, *obj;
    const char *why = sqs_receive_check(max, wait_seconds, visibility_timeout, attempt_id);
    apr_array_header_t *msgs;
    apr_status_t rv;
    size_t i;

    if (!why && (!queue_url || !*queue_url)) {
        why = "QueueUrl is empty";
    }
    if (why) {
        return sqs_invalid(sqs, p, why);
    }
    json_object_set_new(req, "MaxNumberOfMessages", json_integer(max));
    json_object_set_new(req, "WaitTimeSeconds", json_integer(wait_seconds));
    json_object_set_new(req, "MessageSystemAttributeNames", json_pack("[s]", "All"));
    json_object_set_new(req, "AttributeNames", json_pack("[s]", "All"));
    if (visibility_timeout >= 0) {
        json_object_set_new(req, "VisibilityTimeout", json_integer(visibility_timeout));
    }
    if (attempt_id) {
        json_object_set_new(req, "ReceiveRequestAttemptId", json_string(attempt_id));
    }

    rv = sqs_call(&reply, sqs, p, "ReceiveMessage", req, wait_seconds);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    msgs = apr_array_make(p, max, sizeof(rq_sqs_msg_t));
    json_array_foreach(json_object_get(reply, "Messages"), i, obj) {
        rv = sqs_message_read(apr_array_push(msgs), sqs, p, obj);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    *pmsgs = msgs;
    return APR_SUCCESS;
}

/* ---- deleting and changing visibility ---------------------------------- */

apr_status_t rq_sqs_delete(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                           const char *receipt_handle)
{
    json_t *req = sqs_request(p, queue_url ? queue_url : "");

    if (!receipt_handle || !*receipt_handle) {
        return sqs_invalid(sqs, p, "ReceiptHandle is empty");
    }
    json_object_set_new(req, "ReceiptHandle", json_string(receipt_handle));
    return sqs_queue_action(sqs, p, "DeleteMessage", req);
}

apr_status_t rq_sqs_change_visibility(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                      const char *receipt_handle, int visibility_timeout)
{
    json_t *req = sqs_request(p, queue_url ? queue_url : "");

    if (!receipt_handle || !*receipt_handle) {
        return sqs_invalid(sqs, p, "ReceiptHandle is empty");
    }
    if (visibility_timeout < 0 || visibility_timeout > RQ_SQS_MAX_VISIBILITY) {
        return sqs_invalid(sqs, p, "VisibilityTimeout must be 0 to 43200");
    }
    json_object_set_new(req, "ReceiptHandle", json_string(receipt_handle));
    json_object_set_new(req, "VisibilityTimeout", json_integer(visibility_timeout));
    return sqs_queue_action(sqs, p, "ChangeMessageVisibility", req);
}

/* DeleteMessageBatch and ChangeMessageVisibilityBatch share their shape. */
static apr_status_t sqs_handle_batch(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                     apr_array_header_t *entries, const char *action,
                                     int with_visibility)
{
    json_t *req = sqs_request(p, queue_url ? queue_url : "");
    json_t *list = json_array();
    json_t *reply = NULL, *ok;
    int n = entries ? entries->nelts : 0;
    const char **ids = apr_pcalloc(p, sizeof(char *) * (n + 1));
    sqs_entry_result_t *res = apr_pcalloc(p, sizeof(*res) * (n + 1));
    char *done = apr_pcalloc(p, n + 1);
    const char *why = NULL;
    apr_status_t rv;
    size_t i;
    int k;

    json_object_set_new(req, "Entries", list);
    for (k = 0; k < n; k++) {
        rq_sqs_entry_t *e = &APR_ARRAY_IDX(entries, k, rq_sqs_entry_t);

        ids[k] = e->id;
        e->status = APR_SUCCESS;
        e->error_code = e->error_message = NULL;
        res[k] = (sqs_entry_result_t){ &e->status, &e->error_code, &e->error_message };
        if (!e->receipt_handle || !*e->receipt_handle) {
            why = apr_psprintf(p, "entry %d: ReceiptHandle is empty", k + 1);
        }
        if (with_visibility && (e->visibility_timeout < 0
                                || e->visibility_timeout > RQ_SQS_MAX_VISIBILITY)) {
            why = apr_psprintf(p, "entry %d: VisibilityTimeout must be 0 to 43200", k + 1);
        }
        json_array_append_new(list, json_pack("{s:s?, s:s?}", "Id", e->id, "ReceiptHandle",
                                              e->receipt_handle));
        if (with_visibility) {
            json_object_set_new(json_array_get(list, k), "VisibilityTimeout",
                                json_integer(e->visibility_timeout));
        }
    }
    why = why ? why : sqs_batch_ids_check(p, ids, n);
    if (!why && (!queue_url || !*queue_url)) {
        why = "QueueUrl is empty";
    }
    if (why) {
        return sqs_invalid(sqs, p, why);
    }

    rv = sqs_call(&reply, sqs, p, action, req, 0);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    json_array_foreach(json_object_get(reply, "Successful"), i, ok) {
        k = sqs_batch_index(ids, n, json_str(ok, "Id"));
        if (k >= 0) {
            done[k] = 1;
        }
    }
    return sqs_batch_result(sqs, p, action, sqs_batch_failed(p, reply, ids, n, res, done), n);
}

apr_status_t rq_sqs_delete_batch(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                 apr_array_header_t *entries)
{
    return sqs_handle_batch(sqs, p, queue_url, entries, "DeleteMessageBatch", 0);
}

apr_status_t rq_sqs_change_visibility_batch(rq_sqs_t *sqs, apr_pool_t *p, const char *queue_url,
                                            apr_array_header_t *entries)
{
    return sqs_handle_batch(sqs, p, queue_url, entries, "ChangeMessageVisibilityBatch", 1);
}
