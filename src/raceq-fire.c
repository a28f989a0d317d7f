/*
 * raceq-fire: fires the demo's scenario at a mod_raceq endpoint with the curl
 * multi interface (USERS x PER-USER POSTs, at most CONCURRENCY in flight),
 * reads every user's state back and reports what happened. The arithmetic
 * lives in lib/rq_fire.c; this file is the HTTP side.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <curl/curl.h>
#include <jansson.h>

#include "rq_fire.h"

#define FIRE_VERSION     "0.1.0"
#define MAX_BODY         (1024 * 1024)
#define MAX_CONNECT_MS   10000L
#define SEQ_HEADER       "X-RaceQ-Seq:"

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,
    EXIT_STATE = 2,
    EXIT_LOSS = 3
};

typedef struct buf_t {
    char *data;
    apr_size_t len;
    apr_size_t cap;
} buf_t;

typedef struct fire_t {
    apr_pool_t *p;
    rq_fire_opts_t *opts;
    int total;
    const char **user_ids;
    rq_fire_result_t *results;
    struct curl_slist *headers;
} fire_t;

typedef struct xfer_t {
    CURL *h;
    rq_fire_result_t *res;
    const char *user_id;
    char *body;
    buf_t resp;
    char seq[64];
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

static apr_status_t json_release(void *data)
{
    json_decref(data);
    return APR_SUCCESS;
}

static json_t *pool_json(apr_pool_t *p, json_t *json)
{
    if (json) {
        apr_pool_cleanup_register(p, json, json_release, apr_pool_cleanup_null);
    }
    return json;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *baton)
{
    buf_t *b = baton;
    apr_size_t n = size * nmemb;
    apr_size_t keep = n;

    if (b->len + keep > MAX_BODY) {
        keep = MAX_BODY - b->len;
    }
    if (b->len + keep + 1 > b->cap) {
        apr_size_t cap = (b->len + keep + 1) * 2;
        char *grown = realloc(b->data, cap);

        if (!grown) {
            return 0;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, keep);
    b->len += keep;
    b->data[b->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *baton)
{
    xfer_t *x = baton;
    apr_size_t n = size * nmemb;
    apr_size_t hl = strlen(SEQ_HEADER);
    apr_size_t i = hl, j;

    if (n <= hl || strncasecmp(data, SEQ_HEADER, hl) != 0) {
        return n;
    }
    while (i < n && (data[i] == ' ' || data[i] == '\t')) {
        i++;
    }
    for (j = 0; i < n && apr_isdigit(data[i]) && j + 1 < sizeof(x->seq); i++, j++) {
        x->seq[j] = data[i];
    }
    x->seq[j] = '\0';
    return n;
}

static void buf_reset(buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Sets what every request shares: timeouts, no signals, an error buffer. */
static void easy_common(CURL *h, const rq_fire_opts_t *opts, char *errbuf)
{
    long total_ms = (long)(opts->timeout / 1000);
    long connect_ms = total_ms < MAX_CONNECT_MS ? total_ms : MAX_CONNECT_MS;

    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "raceq-fire/" FIRE_VERSION);
    errbuf[0] = '\0';
}

static const char *curl_error(apr_pool_t *p, CURLcode rc, const char *errbuf)
{
    return apr_pstrdup(p, errbuf && *errbuf ? errbuf : curl_easy_strerror(rc));
}

/* The "error" (and "field") of a JSON error body, else the status alone. */
static const char *answer_error(apr_pool_t *p, int status, const buf_t *b)
{
    json_t *root = pool_json(p, b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL);
    const char *err = json_string_value(json_object_get(root, "error"));
    const char *field = json_string_value(json_object_get(root, "field"));

    if (!err) {
        return apr_psprintf(p, "HTTP %d", status);
    }
    if (field) {
        return apr_psprintf(p, "HTTP %d: %s (field %s)", status, err, field);
    }
    return apr_psprintf(p, "HTTP %d: %s", status, err);
}

/* A JSON error object, as mod_raceq sends, rather than a plain error page. */
static int is_json_error(apr_pool_t *p, const buf_t *b)
{
    json_t *root = pool_json(p, b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL);

    return json_is_string(json_object_get(root, "error"));
}

static int echo_matches(apr_pool_t *p, const buf_t *b, const char *req_id,
                        const char *user_id)
{
    json_t *root = pool_json(p, b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL);
    const char *r = json_string_value(json_object_get(root, "req_id"));
    const char *u = json_string_value(json_object_get(root, "user_id"));

    return r && u && strcmp(r, req_id) == 0 && strcmp(u, user_id) == 0;
}

static apr_status_t xfer_start(xfer_t **px, fire_t *f, CURLM *multi, int i)
{
    xfer_t *x = calloc(1, sizeof(*x));
    rq_fire_result_t *res = &f->results[i];

    if (!x || !(x->h = curl_easy_init())) {
        free(x);
        return APR_ENOMEM;
    }
    x->res = res;
    x->user_id = f->user_ids[res->user];
    x->body = apr_psprintf(f->p, "{\"req_id\":\"%s\",\"user_id\":\"%s\"}", res->req_id,
                           x->user_id);

    easy_common(x->h, f->opts, x->errbuf);
    curl_easy_setopt(x->h, CURLOPT_URL, f->opts->url);
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, &x->resp);
    curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(multi, x->h) != CURLM_OK) {
        curl_easy_cleanup(x->h);
        free(x);
        return APR_EGENERAL;
    }
    *px = x;
    return APR_SUCCESS;
}

static void xfer_finish(fire_t *f, CURLM *multi, xfer_t *x, CURLcode rc)
{
    rq_fire_result_t *res = x->res;
    curl_off_t total_us = 0;
    long status = 0;

    curl_easy_getinfo(x->h, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    res->latency = (apr_interval_time_t)total_us;
    res->status = rc == CURLE_OK ? (int)status : 0;
    res->seq = x->seq[0] ? apr_pstrdup(f->p, x->seq) : NULL;

    if (rc != CURLE_OK) {
        res->error = curl_error(f->p, rc, x->errbuf);
    }
    else if (res->status == 200) {
        res->echo_ok = echo_matches(f->p, &x->resp, res->req_id, x->user_id);
    }
    else {
        res->error = answer_error(f->p, res->status, &x->resp);
    }

    curl_multi_remove_handle(multi, x->h);
    curl_easy_cleanup(x->h);
    buf_reset(&x->resp);
    free(x);
}

static apr_status_t drain_done(fire_t *f, CURLM *multi, int *pnext, int *pflight)
{
    CURLMsg *msg;
    xfer_t *x;
    int queued;
    apr_status_t rv;

    while ((msg = curl_multi_info_read(multi, &queued))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        xfer_finish(f, multi, x, msg->data.result);
        (*pflight)--;
        if (*pnext < f->total) {
            rv = xfer_start(&x, f, multi, (*pnext)++);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            (*pflight)++;
        }
    }
    return APR_SUCCESS;
}

/* Sends every request, at most opts->concurrency at a time; *pwall the elapsed time. */
static apr_status_t fire_all(apr_interval_time_t *pwall, fire_t *f)
{
    CURLM *multi = curl_multi_init();
    apr_time_t t0 = apr_time_now();
    apr_status_t rv = APR_SUCCESS;
    int next = 0, flight = 0, running = 0;
    xfer_t *x;

    if (!multi) {
        return APR_ENOMEM;
    }
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)f->opts->concurrency);

    while (next < f->total && flight < f->opts->concurrency) {
        rv = xfer_start(&x, f, multi, next++);
        if (rv != APR_SUCCESS) {
            goto cleanup;
        }
        flight++;
    }

    while (flight > 0) {
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            rv = APR_EGENERAL;
            goto cleanup;
        }
        rv = drain_done(f, multi, &next, &flight);
        if (rv != APR_SUCCESS) {
            goto cleanup;
        }
        if (flight > 0 && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK) {
            rv = APR_EGENERAL;
            goto cleanup;
        }
    }
    *pwall = apr_time_now() - t0;

cleanup:
    curl_multi_cleanup(multi);
    return rv;
}

/*
 * GETs one user's state. A JSON 404 counts as a user with no writes yet. On failure
 * *perr says why.
 */
static apr_status_t state_get(rq_fire_user_t *user, const char **perr, apr_pool_t *p,
                              CURL *h, const rq_fire_opts_t *opts, const char *user_id)
{
    char errbuf[CURL_ERROR_SIZE];
    char *esc = curl_easy_escape(h, user_id, 0);
    const char *url = apr_pstrcat(p, opts->url, "/users/", esc, NULL);
    buf_t b = { NULL, 0, 0 };
    apr_status_t rv = APR_EGENERAL;
    long status = 0;
    CURLcode rc;

    curl_free(esc);
    easy_common(h, opts, errbuf);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        *perr = apr_psprintf(p, "cannot reach %s: %s", opts->url, curl_error(p, rc, errbuf));
        goto cleanup;
    }

    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status == 404 && is_json_error(p, &b)) {
        user->user_id = user_id;
        user->writes = 0;
        user->history = NULL;
        rv = APR_SUCCESS;
        goto cleanup;
    }
    if (status != 200) {
        *perr = apr_psprintf(p, "GET %s answered %s; is this a mod_raceq location?", url,
                             answer_error(p, (int)status, &b));
        goto cleanup;
    }

    rv = rq_fire_user_parse(user, perr, p, b.data ? b.data : "", b.len);
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "GET %s is not a mod_raceq user state: %s", url, *perr);
    }
    else if (strcmp(user->user_id, user_id) != 0) {
        *perr = apr_psprintf(p, "GET %s answered for user \"%s\"", url, user->user_id);
        rv = APR_EGENERAL;
    }

cleanup:
    buf_reset(&b);
    return rv;
}

static apr_status_t states_get(rq_fire_user_t **pusers, const char **perr, fire_t *f)
{
    rq_fire_user_t *users = apr_pcalloc(f->p, sizeof(*users) * f->opts->users);
    CURL *h = curl_easy_init();
    apr_status_t rv = APR_SUCCESS;
    int i;

    if (!h) {
        *perr = "cannot initialise libcurl";
        return APR_ENOMEM;
    }
    for (i = 0; i < f->opts->users && rv == APR_SUCCESS; i++) {
        rv = state_get(&users[i], perr, f->p, h, f->opts, f->user_ids[i]);
    }
    curl_easy_cleanup(h);
    *pusers = users;
    return rv;
}

static const char *run_id(apr_pool_t *p)
{
    unsigned char raw[4];
    apr_time_t now = apr_time_now();

    if (apr_generate_random_bytes(raw, sizeof(raw)) != APR_SUCCESS) {
        return apr_psprintf(p, "%08lx", (unsigned long)(now & 0xffffffff));
    }
    return apr_psprintf(p, "%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3]);
}

static void fire_prepare(fire_t *f)
{
    const rq_fire_opts_t *o = f->opts;
    int u, r, i = 0;

    f->total = o->users * o->per_user;
    f->user_ids = apr_palloc(f->p, sizeof(*f->user_ids) * o->users);
    f->results = apr_pcalloc(f->p, sizeof(*f->results) * f->total);
    for (u = 0; u < o->users; u++) {
        f->user_ids[u] = apr_psprintf(f->p, "%s-u%d", o->prefix, u + 1);
    }

    /* Round-robin over users, so that a limited concurrency still mixes them. */
    for (r = 0; r < o->per_user; r++) {
        for (u = 0; u < o->users; u++, i++) {
            f->results[i].user = u;
            f->results[i].req_id = apr_psprintf(f->p, "%s-r%d", f->user_ids[u], r + 1);
        }
    }
    f->headers = curl_slist_append(NULL, "Content-Type: application/json");
    f->headers = curl_slist_append(f->headers, "Expect:");
}

static int output(const rq_fire_report_t *rep, const rq_fire_opts_t *opts, apr_pool_t *p)
{
    const char *json;

    if (!opts->json) {
        rq_fire_report_print(stdout, rep, opts);
    }
    else if (rq_fire_report_json(&json, p, rep, opts) == APR_SUCCESS) {
        printf("%s\n", json);
    }
    else {
        fprintf(stderr, "raceq-fire: cannot format the report as JSON\n");
        return EXIT_STATE;
    }

    if (opts->expect_no_loss && (rep->lost != 0 || rep->order_violations != 0)) {
        fprintf(stderr, "raceq-fire: %" APR_INT64_T_FMT " lost updates, %d order "
                "violations\n", rep->lost, rep->order_violations);
        return EXIT_LOSS;
    }
    return EXIT_OK;
}

static int run(fire_t *f)
{
    rq_fire_user_t *before, *after;
    rq_fire_run_t r;
    rq_fire_report_t *rep;
    const char *err = NULL;

    if (states_get(&before, &err, f) != APR_SUCCESS) {
        fprintf(stderr, "raceq-fire: %s\n", err);
        return EXIT_USAGE;
    }

    memset(&r, 0, sizeof(r));
    if (fire_all(&r.wall, f) != APR_SUCCESS) {
        fprintf(stderr, "raceq-fire: the curl multi interface failed\n");
        return EXIT_STATE;
    }

    if (states_get(&after, &err, f) != APR_SUCCESS) {
        fprintf(stderr, "raceq-fire: reading the users' state back failed: %s\n", err);
        return EXIT_STATE;
    }

    r.nusers = f->opts->users;
    r.before = before;
    r.after = after;
    r.nresults = f->total;
    r.results = f->results;
    if (rq_fire_report_compute(&rep, f->p, &r) != APR_SUCCESS) {
        fprintf(stderr, "raceq-fire: cannot compute the report\n");
        return EXIT_STATE;
    }
    return output(rep, f->opts, f->p);
}

static int parse_args(rq_fire_opts_t *opts, apr_pool_t *p, int argc, const char *const *argv)
{
    const char *err = NULL;

    if (rq_fire_opts_parse(opts, &err, p, argc, argv) != APR_SUCCESS) {
        fprintf(stderr, "raceq-fire: %s\nTry 'raceq-fire --help'.\n", err);
        return EXIT_USAGE;
    }
    if (opts->help) {
        fputs(rq_fire_usage(), stdout);
        return EXIT_OK;
    }
    if (opts->version) {
        printf("raceq-fire %s (%s)\n", FIRE_VERSION, curl_version());
        return EXIT_OK;
    }
    return -1;
}

int main(int argc, const char *const *argv)
{
    rq_fire_opts_t opts;
    apr_pool_t *p;
    fire_t f;
    int status;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS
        || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        fprintf(stderr, "raceq-fire: cannot initialise APR\n");
        return EXIT_USAGE;
    }
    status = parse_args(&opts, p, argc, argv);
    if (status >= 0) {
        goto cleanup;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "raceq-fire: cannot initialise libcurl\n");
        status = EXIT_USAGE;
        goto cleanup;
    }
    if (!opts.prefix) {
        opts.prefix = run_id(p);
    }
    memset(&f, 0, sizeof(f));
    f.p = p;
    f.opts = &opts;
    fire_prepare(&f);
    status = run(&f);
    curl_slist_free_all(f.headers);
    curl_global_cleanup();

cleanup:
    apr_pool_destroy(p);
    apr_terminate();
    return status;
}
