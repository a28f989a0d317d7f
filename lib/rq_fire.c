/* raceq-fire's options, state parsing and report; see rq_fire.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <apr_getopt.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_uri.h>
#include <jansson.h>

#include "rq_fire.h"

#define OPT_TIMEOUT 256
#define OPT_PREFIX  257
#define OPT_EXPECT  258
#define OPT_VERSION 259

static const apr_getopt_option_t fire_options[] = {
    { "url", 'u', 1, "URL" },
    { "users", 'n', 1, "N" },
    { "per-user", 'm', 1, "M" },
    { "concurrency", 'c', 1, "C" },
    { "json", 'j', 0, "" },
    { "timeout", OPT_TIMEOUT, 1, "SECONDS" },
    { "prefix", OPT_PREFIX, 1, "ID" },
    { "expect-no-loss", OPT_EXPECT, 0, "" },
    { "help", 'h', 0, "" },
    { "version", OPT_VERSION, 0, "" },
    { NULL, 0, 0, NULL }
};

const char *rq_fire_usage(void)
{
    return
        "Usage: raceq-fire --url URL [options]\n"
        "\n"
        "Fires USERS x PER-USER POST requests at a mod_raceq endpoint, reads\n"
        "each user's state back and reports lost updates, order violations,\n"
        "the critical path, the wall time and the latency.\n"
        "\n"
        "  --url URL           the endpoint, e.g. http://127.0.0.1/race (required)\n"
        "  --users N           users (default 3)\n"
        "  --per-user M        requests per user (default 5)\n"
        "  --concurrency C     requests in flight at most (default N x M)\n"
        "  --timeout SECONDS   per request (default 60)\n"
        "  --prefix ID         prefix of user and request ids (default: random)\n"
        "  --json              one JSON object instead of the table\n"
        "  --expect-no-loss    exit 3 when updates were lost or reordered\n"
        "  --help              this text\n"
        "  --version           the version\n"
        "\n"
        "Exit status: 0 the run completed, 1 usage error or server unreachable,\n"
        "2 the users' state could not be read back, 3 loss or reordering seen\n"
        "with --expect-no-loss.\n";
}

typedef struct opt_err_t {
    char msg[256];
} opt_err_t;

static void opt_err_capture(void *arg, const char *fmt, ...)
{
    opt_err_t *err = arg;
    va_list ap;
    apr_size_t len;
    char *colon;

    if (err->msg[0]) {
        return;
    }
    va_start(ap, fmt);
    apr_vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    /* APR starts with the program's name: the caller adds its own. */
    colon = strstr(err->msg, ": ");
    if (colon) {
        memmove(err->msg, colon + 2, strlen(colon + 2) + 1);
    }
    len = strlen(err->msg);
    while (len > 0 && err->msg[len - 1] == '\n') {
        err->msg[--len] = '\0';
    }
}

static apr_status_t parse_count(int *pn, const char **perr, apr_pool_t *p, const char *name,
                                const char *arg, int max)
{
    const char *c;
    long v;

    for (c = arg; *c; c++) {
        if (!apr_isdigit(*c)) {
            break;
        }
    }
    if (!*arg || *c || strlen(arg) > 9) {
        *perr = apr_psprintf(p, "--%s needs a whole number from 1 to %d, not \"%s\"", name,
                             max, arg);
        return APR_EINVAL;
    }

    v = strtol(arg, NULL, 10);
    if (v < 1 || v > max) {
        *perr = apr_psprintf(p, "--%s must be from 1 to %d, not %ld", name, max, v);
        return APR_EINVAL;
    }
    *pn = (int)v;
    return APR_SUCCESS;
}

static apr_status_t parse_timeout(apr_interval_time_t *pt, const char **perr, apr_pool_t *p,
                                  const char *arg)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(arg, &end);
    if (!*arg || apr_isspace(*arg) || *end || errno || !isfinite(v) || v <= 0
        || v > RQ_FIRE_MAX_TIMEOUT) {
        *perr = apr_psprintf(p, "--timeout needs seconds above 0 and at most %.0f, not \"%s\"",
                             RQ_FIRE_MAX_TIMEOUT, arg);
        return APR_EINVAL;
    }
    *pt = (apr_interval_time_t)(v * APR_USEC_PER_SEC);
    if (*pt < 1000) {
        *pt = 1000;
    }
    return APR_SUCCESS;
}

static apr_status_t parse_url(const char **purl, const char **perr, apr_pool_t *p,
                              const char *arg)
{
    apr_uri_t uri;
    char *url;
    apr_size_t len;

    if (apr_uri_parse(p, arg, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname
        || !*uri.hostname
        || (strcasecmp(uri.scheme, "http") != 0 && strcasecmp(uri.scheme, "https") != 0)) {
        *perr = apr_psprintf(p, "--url needs an http:// or https:// URL with a host, "
                             "not \"%s\"", arg);
        return APR_EINVAL;
    }
    if (uri.query || uri.fragment || uri.user || strpbrk(arg, " \t\r\n")) {
        *perr = apr_psprintf(p, "--url must not carry a query, fragment, user or spaces: "
                             "\"%s\"", arg);
        return APR_EINVAL;
    }

    url = apr_pstrdup(p, arg);
    len = strlen(url);
    while (len > 0 && url[len - 1] == '/') {
        url[--len] = '\0';
    }
    *purl = url;
    return APR_SUCCESS;
}

static apr_status_t parse_prefix(const char **pprefix, const char **perr, apr_pool_t *p,
                                 const char *arg)
{
    const char *c;

    for (c = arg; *c; c++) {
        if (!apr_isalnum(*c) && *c != '-' && *c != '_' && *c != '.') {
            break;
        }
    }
    if (!*arg || *c || strlen(arg) > RQ_FIRE_MAX_PREFIX) {
        *perr = apr_psprintf(p, "--prefix needs 1 to %d letters, digits, '-', '_' or '.', "
                             "not \"%s\"", RQ_FIRE_MAX_PREFIX, arg);
        return APR_EINVAL;
    }
    *pprefix = arg;
    return APR_SUCCESS;
}

static apr_status_t apply_option(rq_fire_opts_t *opts, const char **perr, apr_pool_t *p,
                                 int ch, const char *arg)
{
    switch (ch) {
    case 'u':
        return parse_url(&opts->url, perr, p, arg);
    case 'n':
        return parse_count(&opts->users, perr, p, "users", arg, RQ_FIRE_MAX_USERS);
    case 'm':
        return parse_count(&opts->per_user, perr, p, "per-user", arg, RQ_FIRE_MAX_PER_USER);
    case 'c':
        return parse_count(&opts->concurrency, perr, p, "concurrency", arg,
                           RQ_FIRE_MAX_REQUESTS);
    case 'j':
        opts->json = 1;
        return APR_SUCCESS;
    case OPT_TIMEOUT:
        return parse_timeout(&opts->timeout, perr, p, arg);
    case OPT_PREFIX:
        return parse_prefix(&opts->prefix, perr, p, arg);
    case OPT_EXPECT:
        opts->expect_no_loss = 1;
        return APR_SUCCESS;
    case 'h':
        opts->help = 1;
        return APR_SUCCESS;
    case OPT_VERSION:
        opts->version = 1;
        return APR_SUCCESS;
    }
    *perr = "unknown option";
    return APR_EINVAL;
}

static apr_status_t check_opts(rq_fire_opts_t *opts, const char **perr, apr_pool_t *p)
{
    long total = (long)opts->users * opts->per_user;

    if (!opts->url) {
        *perr = "--url is required (e.g. --url http://127.0.0.1/race)";
        return APR_EINVAL;
    }
    if (total > RQ_FIRE_MAX_REQUESTS) {
        *perr = apr_psprintf(p, "--users x --per-user is %ld requests, more than %d", total,
                             RQ_FIRE_MAX_REQUESTS);
        return APR_EINVAL;
    }
    if (opts->concurrency == 0 || opts->concurrency > total) {
        opts->concurrency = (int)total;
    }
    return APR_SUCCESS;
}

apr_status_t rq_fire_opts_parse(rq_fire_opts_t *opts, const char **perr, apr_pool_t *p,
                                int argc, const char *const *argv)
{
    apr_getopt_t *os;
    opt_err_t err;
    const char *arg;
    apr_status_t rv;
    int ch;

    memset(opts, 0, sizeof(*opts));
    opts->users = 3;
    opts->per_user = 5;
    opts->timeout = apr_time_from_sec(60);
    memset(&err, 0, sizeof(err));

    apr_getopt_init(&os, p, argc, argv);
    os->errfn = opt_err_capture;
    os->errarg = &err;
    while ((rv = apr_getopt_long(os, fire_options, &ch, &arg)) == APR_SUCCESS) {
        rv = apply_option(opts, perr, p, ch, arg);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    if (rv != APR_EOF) {
        *perr = err.msg[0] ? apr_pstrdup(p, err.msg) : "invalid option";
        return APR_EINVAL;
    }
    if (os->ind < argc) {
        *perr = apr_psprintf(p, "unexpected argument \"%s\"", argv[os->ind]);
        return APR_EINVAL;
    }

    if (opts->help || opts->version) {
        return APR_SUCCESS;
    }
    return check_opts(opts, perr, p);
}

static apr_status_t json_release(void *data)
{
    json_decref(data);
    return APR_SUCCESS;
}

/* Hands a jansson value to the pool: released when the pool is cleared. */
static json_t *pool_json(apr_pool_t *p, json_t *json)
{
    if (json) {
        apr_pool_cleanup_register(p, json, json_release, apr_pool_cleanup_null);
    }
    return json;
}

static int json_int64(apr_int64_t *pv, json_t *v)
{
    if (json_is_integer(v)) {
        *pv = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v) && isfinite(json_real_value(v))) {
        *pv = (apr_int64_t)json_real_value(v);
        return 1;
    }
    return 0;
}

static apr_status_t parse_seq(const char **pseq, apr_pool_t *p, json_t *v)
{
    if (!v || json_is_null(v)) {
        *pseq = NULL;
        return APR_SUCCESS;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *pseq = apr_psprintf(p, "%" APR_INT64_T_FMT, (apr_int64_t)json_integer_value(v));
        return APR_SUCCESS;
    }
    if (json_is_string(v) && rq_fire_seq_valid(json_string_value(v))) {
        *pseq = apr_pstrdup(p, json_string_value(v));
        return APR_SUCCESS;
    }
    return APR_EINVAL;
}

static apr_status_t parse_entry(rq_fire_entry_t *e, const char **perr, apr_pool_t *p,
                                json_t *item, apr_size_t i)
{
    json_t *req_id = json_object_get(item, "req_id");

    if (!json_is_object(item)) {
        *perr = apr_psprintf(p, "history[%" APR_SIZE_T_FMT "] is not an object", i);
        return APR_EINVAL;
    }
    if (!json_is_string(req_id)) {
        *perr = apr_psprintf(p, "history[%" APR_SIZE_T_FMT "].req_id is not a string", i);
        return APR_EINVAL;
    }
    if (parse_seq(&e->seq, p, json_object_get(item, "seq")) != APR_SUCCESS) {
        *perr = apr_psprintf(p, "history[%" APR_SIZE_T_FMT "].seq is neither null nor "
                             "decimal digits", i);
        return APR_EINVAL;
    }
    if (!json_int64(&e->start, json_object_get(item, "start"))
        || !json_int64(&e->finish, json_object_get(item, "finish"))) {
        *perr = apr_psprintf(p, "history[%" APR_SIZE_T_FMT "] needs numeric start and "
                             "finish", i);
        return APR_EINVAL;
    }
    e->req_id = apr_pstrdup(p, json_string_value(req_id));
    return APR_SUCCESS;
}

apr_status_t rq_fire_user_parse(rq_fire_user_t *user, const char **perr, apr_pool_t *p,
                                const char *body, apr_size_t len)
{
    json_error_t jerr;
    json_t *root, *uid, *history, *item;
    apr_size_t i;
    apr_status_t rv;

    root = pool_json(p, json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr));
    if (!json_is_object(root)) {
        *perr = root ? "the state is not a JSON object"
                     : apr_psprintf(p, "the state is not JSON: %s", jerr.text);
        return APR_EINVAL;
    }

    uid = json_object_get(root, "user_id");
    history = json_object_get(root, "history");
    if (!json_is_string(uid)) {
        *perr = "user_id is missing or not a string";
        return APR_EINVAL;
    }
    if (!json_int64(&user->writes, json_object_get(root, "writes")) || user->writes < 0) {
        *perr = "writes is missing or not a number of 0 or more";
        return APR_EINVAL;
    }
    if (history && !json_is_array(history) && !json_is_null(history)) {
        *perr = "history is not an array";
        return APR_EINVAL;
    }

    user->user_id = apr_pstrdup(p, json_string_value(uid));
    user->history = apr_array_make(p, (int)json_array_size(history) + 1,
                                   sizeof(rq_fire_entry_t));
    json_array_foreach(history, i, item) {
        rv = parse_entry(apr_array_push(user->history), perr, p, item, i);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

int rq_fire_seq_valid(const char *s)
{
    if (!s || !*s) {
        return 0;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }
    }
    return 1;
}

int rq_fire_seq_cmp(const char *a, const char *b)
{
    apr_size_t la, lb;
    int c;

    while (*a == '0' && a[1]) {
        a++;
    }
    while (*b == '0' && b[1]) {
        b++;
    }

    la = strlen(a);
    lb = strlen(b);
    if (la != lb) {
        return la < lb ? -1 : 1;
    }
    c = strcmp(a, b);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

int rq_fire_order_violations(const rq_fire_entry_t *entries, int n)
{
    int i, count = 0;

    for (i = 1; i < n; i++) {
        const char *prev = entries[i - 1].seq;
        const char *cur = entries[i].seq;

        if (rq_fire_seq_valid(prev) && rq_fire_seq_valid(cur)
            && rq_fire_seq_cmp(cur, prev) < 0) {
            count++;
        }
    }
    return count;
}

apr_interval_time_t rq_fire_percentile(const apr_interval_time_t *sorted, int n, int pct)
{
    long rank;

    if (n <= 0) {
        return 0;
    }
    rank = ((long)pct * n + 99) / 100;
    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return sorted[rank - 1];
}

static int cmp_interval(const void *a, const void *b)
{
    apr_interval_time_t x = *(const apr_interval_time_t *)a;
    apr_interval_time_t y = *(const apr_interval_time_t *)b;

    return x < y ? -1 : (x > y ? 1 : 0);
}

static void count_status(rq_fire_report_t *rep, int status)
{
    rq_fire_status_count_t *sc = (rq_fire_status_count_t *)rep->statuses->elts;
    int i, j;

    for (i = 0; i < rep->statuses->nelts && sc[i].status < status; i++) {
    }
    if (i < rep->statuses->nelts && sc[i].status == status) {
        sc[i].count++;
        return;
    }

    apr_array_push(rep->statuses);
    sc = (rq_fire_status_count_t *)rep->statuses->elts;
    for (j = rep->statuses->nelts - 1; j > i; j--) {
        sc[j] = sc[j - 1];
    }
    sc[i].status = status;
    sc[i].count = 1;
}

/* Tallies the answers; fills latencies (status > 0 only) and returns their count. */
static int tally_results(rq_fire_report_t *rep, apr_interval_time_t *lat,
                         const rq_fire_run_t *run)
{
    int i, n = 0;

    for (i = 0; i < run->nresults; i++) {
        const rq_fire_result_t *r = &run->results[i];
        rq_fire_user_report_t *u = &rep->users[r->user];

        u->sent++;
        if (r->error && !rep->first_error) {
            rep->first_error = r->error;
        }
        if (r->status == 0) {
            rep->no_answer++;
            continue;
        }
        count_status(rep, r->status);
        lat[n++] = r->latency;
        if (r->status == 200) {
            u->answered_ok++;
            rep->bad_echo += r->echo_ok ? 0 : 1;
        }
    }
    return n;
}

static const char *entry_key(apr_pool_t *p, const rq_fire_entry_t *e)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT "/%s", e->start, e->req_id);
}

/* The entries present before the run, keyed by start time and req_id. */
static apr_hash_t *earlier_entries(apr_pool_t *p, const rq_fire_user_t *before)
{
    apr_hash_t *seen = apr_hash_make(p);
    const rq_fire_entry_t *e;
    int i;

    if (!before || !before->history) {
        return seen;
    }
    e = (const rq_fire_entry_t *)before->history->elts;
    for (i = 0; i < before->history->nelts; i++) {
        apr_hash_set(seen, entry_key(p, &e[i]), APR_HASH_KEY_STRING, "");
    }
    return seen;
}

/*
 * The user's history reduced to the entries this run added: req_ids it sent
 * for that user, and not there before (a reused prefix repeats req_ids).
 */
static apr_array_header_t *run_history(apr_pool_t *p, const rq_fire_user_t *before,
                                       const rq_fire_user_t *after, apr_hash_t *sent,
                                       int user)
{
    apr_hash_t *earlier = earlier_entries(p, before);
    apr_array_header_t *out;
    const rq_fire_entry_t *e;
    int i;

    out = apr_array_make(p, 8, sizeof(rq_fire_entry_t));
    if (!after->history) {
        return out;
    }
    e = (const rq_fire_entry_t *)after->history->elts;
    for (i = 0; i < after->history->nelts; i++) {
        const int *owner = apr_hash_get(sent, e[i].req_id, APR_HASH_KEY_STRING);

        if (owner && *owner == user
            && !apr_hash_get(earlier, entry_key(p, &e[i]), APR_HASH_KEY_STRING)) {
            *(rq_fire_entry_t *)apr_array_push(out) = e[i];
        }
    }
    return out;
}

static void report_user(rq_fire_report_t *rep, apr_pool_t *p, const rq_fire_run_t *run,
                        apr_hash_t *sent, int i)
{
    rq_fire_user_report_t *u = &rep->users[i];
    const rq_fire_user_t *after = &run->after[i];
    const rq_fire_user_t *before = run->before ? &run->before[i] : NULL;
    apr_array_header_t *h = run_history(p, before, after, sent, i);
    const rq_fire_entry_t *e = (const rq_fire_entry_t *)h->elts;
    int j;

    u->user_id = after->user_id;
    u->writes = after->writes - (before ? before->writes : 0);
    u->lost = u->answered_ok - u->writes;
    u->order_violations = rq_fire_order_violations(e, h->nelts);
    for (j = 0; j < h->nelts; j++) {
        if (e[j].finish > e[j].start) {
            u->apply += e[j].finish - e[j].start;
        }
    }

    rep->writes += u->writes;
    rep->lost += u->lost;
    rep->order_violations += u->order_violations;
    if (u->apply > rep->critical_path) {
        rep->critical_path = u->apply;
    }
}

apr_status_t rq_fire_report_compute(rq_fire_report_t **prep, apr_pool_t *p,
                                    const rq_fire_run_t *run)
{
    rq_fire_report_t *rep = apr_pcalloc(p, sizeof(*rep));
    apr_interval_time_t *lat;
    apr_hash_t *sent = apr_hash_make(p);
    int i, n;

    rep->requests = run->nresults;
    rep->wall = run->wall;
    rep->nusers = run->nusers;
    rep->users = apr_pcalloc(p, sizeof(*rep->users) * (run->nusers + 1));
    rep->statuses = apr_array_make(p, 4, sizeof(rq_fire_status_count_t));
    for (i = 0; i < run->nresults; i++) {
        if (run->results[i].user < 0 || run->results[i].user >= run->nusers) {
            return APR_EINVAL;
        }
        apr_hash_set(sent, run->results[i].req_id, APR_HASH_KEY_STRING,
                     &run->results[i].user);
    }

    lat = apr_palloc(p, sizeof(*lat) * (run->nresults + 1));
    n = tally_results(rep, lat, run);
    qsort(lat, n, sizeof(*lat), cmp_interval);
    rep->p50 = rq_fire_percentile(lat, n, 50);
    rep->p90 = rq_fire_percentile(lat, n, 90);
    rep->p99 = rq_fire_percentile(lat, n, 99);
    rep->max = n ? lat[n - 1] : 0;

    for (i = 0; i < run->nusers; i++) {
        report_user(rep, p, run, sent, i);
    }
    *prep = rep;
    return APR_SUCCESS;
}

static json_t *json_users(const rq_fire_report_t *rep)
{
    json_t *arr = json_array();
    int i;

    for (i = 0; i < rep->nusers; i++) {
        const rq_fire_user_report_t *u = &rep->users[i];

        json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:I, s:I, s:i, s:I}",
                                             "user_id", u->user_id ? u->user_id : "",
                                             "sent", u->sent,
                                             "answered_200", u->answered_ok,
                                             "writes", (json_int_t)u->writes,
                                             "lost_updates", (json_int_t)u->lost,
                                             "order_violations", u->order_violations,
                                             "apply_us", (json_int_t)u->apply));
    }
    return arr;
}

static json_t *json_answers(const rq_fire_report_t *rep)
{
    const rq_fire_status_count_t *sc = (const rq_fire_status_count_t *)rep->statuses->elts;
    json_t *obj = json_object();
    char key[16];
    int i;

    for (i = 0; i < rep->statuses->nelts; i++) {
        apr_snprintf(key, sizeof(key), "%d", sc[i].status);
        json_object_set_new(obj, key, json_integer(sc[i].count));
    }
    return obj;
}

apr_status_t rq_fire_report_json(const char **pjson, apr_pool_t *p,
                                 const rq_fire_report_t *rep, const rq_fire_opts_t *opts)
{
    json_t *root;
    char *text;

    root = pool_json(p, json_pack(
        "{s:s?, s:s?, s:i, s:i, s:i, s:i, s:o, s:i, s:i, s:I, s:I, s:i, s:I, s:I,"
        " s:{s:I, s:I, s:I, s:I}, s:o}",
        "url", opts->url, "run", opts->prefix,
        "users", opts->users, "per_user", opts->per_user, "concurrency", opts->concurrency,
        "requests", rep->requests, "answers", json_answers(rep),
        "no_answer", rep->no_answer, "bad_echo", rep->bad_echo,
        "writes", (json_int_t)rep->writes, "lost_updates", (json_int_t)rep->lost,
        "order_violations", rep->order_violations,
        "critical_path_us", (json_int_t)rep->critical_path,
        "wall_us", (json_int_t)rep->wall,
        "latency_us", "p50", (json_int_t)rep->p50, "p90", (json_int_t)rep->p90,
        "p99", (json_int_t)rep->p99, "max", (json_int_t)rep->max,
        "by_user", json_users(rep)));
    if (!root) {
        return APR_ENOMEM;
    }

    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        return APR_ENOMEM;
    }
    *pjson = apr_pstrdup(p, text);
    free(text);
    return APR_SUCCESS;
}

static double ms(apr_interval_time_t us)
{
    return (double)us / 1000.0;
}

static void print_users(FILE *out, const rq_fire_report_t *rep)
{
    int i, w = 4;

    for (i = 0; i < rep->nusers; i++) {
        int len = rep->users[i].user_id ? (int)strlen(rep->users[i].user_id) : 0;

        w = len > w ? len : w;
    }

    fprintf(out, "%-*s  %6s  %6s  %6s  %6s  %6s  %10s\n", w, "user", "sent", "200",
            "writes", "lost", "order", "apply ms");
    for (i = 0; i < rep->nusers; i++) {
        const rq_fire_user_report_t *u = &rep->users[i];

        fprintf(out, "%-*s  %6d  %6d  %6" APR_INT64_T_FMT "  %6" APR_INT64_T_FMT
                "  %6d  %10.1f\n", w, u->user_id, u->sent, u->answered_ok, u->writes,
                u->lost, u->order_violations, ms(u->apply));
    }
    fprintf(out, "\n");
}

static void print_answers(FILE *out, const rq_fire_report_t *rep)
{
    const rq_fire_status_count_t *sc = (const rq_fire_status_count_t *)rep->statuses->elts;
    int i;

    fprintf(out, "%-18s", "answers");
    for (i = 0; i < rep->statuses->nelts; i++) {
        fprintf(out, "%s%d: %d", i ? ", " : "", sc[i].status, sc[i].count);
    }
    if (rep->no_answer) {
        fprintf(out, "%snone: %d", i ? ", " : "", rep->no_answer);
    }
    fprintf(out, "\n");
    if (rep->first_error) {
        fprintf(out, "%-18s%s\n", "first error", rep->first_error);
    }
    if (rep->bad_echo) {
        fprintf(out, "%-18s%d answers 200 did not echo the request\n", "bad echo",
                rep->bad_echo);
    }
}

void rq_fire_report_print(FILE *out, const rq_fire_report_t *rep, const rq_fire_opts_t *opts)
{
    fprintf(out, "%d requests to %s (%d users x %d, concurrency %d, run %s)\n\n",
            rep->requests, opts->url, opts->users, opts->per_user, opts->concurrency,
            opts->prefix ? opts->prefix : "-");
    if (rep->nusers <= 20) {
        print_users(out, rep);
    }

    print_answers(out, rep);
    fprintf(out, "%-18s%" APR_INT64_T_FMT "\n", "writes", rep->writes);
    fprintf(out, "%-18s%" APR_INT64_T_FMT "\n", "lost updates", rep->lost);
    fprintf(out, "%-18s%d\n", "order violations", rep->order_violations);
    fprintf(out, "%-18s%.1f ms\n", "critical path", ms(rep->critical_path));
    fprintf(out, "%-18s%.1f ms\n", "wall time", ms(rep->wall));
    fprintf(out, "%-18sp50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n", "latency",
            ms(rep->p50), ms(rep->p90), ms(rep->p99), ms(rep->max));
}
