/* raceq-fire's arithmetic: options, state parsing, lost updates, order, percentiles. */
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "rq_fire.h"
#include "rq_tap.h"

static apr_pool_t *pool;

static rq_fire_entry_t entry(const char *req_id, const char *seq, apr_int64_t start,
                             apr_int64_t finish)
{
    rq_fire_entry_t e;

    e.req_id = req_id;
    e.seq = seq;
    e.start = start;
    e.finish = finish;
    return e;
}

static apr_status_t parse(rq_fire_opts_t *o, const char **perr, int argc, const char **argv)
{
    *perr = NULL;
    return rq_fire_opts_parse(o, perr, pool, argc, (const char *const *)argv);
}

static void test_opts_defaults(void)
{
    const char *argv[] = { "raceq-fire", "--url", "http://127.0.0.1:8080/race/" };
    rq_fire_opts_t o;
    const char *err;

    RQ_IS_INT(parse(&o, &err, 3, argv), APR_SUCCESS, "defaults parse");
    RQ_IS_STR(o.url, "http://127.0.0.1:8080/race", "trailing slash dropped");
    RQ_IS_INT(o.users, 3, "3 users by default");
    RQ_IS_INT(o.per_user, 5, "5 per user by default");
    RQ_IS_INT(o.concurrency, 15, "all at once by default");
    RQ_IS_INT(o.timeout, apr_time_from_sec(60), "60 s timeout by default");
    RQ_OK(o.prefix == NULL && !o.json && !o.expect_no_loss, "no prefix, table, no judging");
}

static void test_opts_given(void)
{
    const char *argv[] = { "raceq-fire", "--url=https://h/x", "--users", "4", "--per-user",
                           "2", "--concurrency", "99", "--json", "--timeout", "2.5",
                           "--prefix", "run_1.a-b", "--expect-no-loss" };
    rq_fire_opts_t o;
    const char *err;

    RQ_IS_INT(parse(&o, &err, 14, argv), APR_SUCCESS, "all options parse");
    RQ_IS_INT(o.users * o.per_user, 8, "4 x 2");
    RQ_IS_INT(o.concurrency, 8, "concurrency above the total is the total");
    RQ_IS_INT(o.timeout, 2500000, "fractional timeout");
    RQ_IS_STR(o.prefix, "run_1.a-b", "prefix");
    RQ_OK(o.json && o.expect_no_loss, "--json and --expect-no-loss");
}

static void usage_error(const char *a1, const char *a2, const char *a3, const char *want)
{
    const char *argv[] = { "raceq-fire", a1, a2, a3 };
    int argc = a3 ? 4 : (a2 ? 3 : (a1 ? 2 : 1));
    rq_fire_opts_t o;
    const char *err;

    RQ_IS_INT(parse(&o, &err, argc, argv), APR_EINVAL, "refused: %s %s %s", a1 ? a1 : "",
              a2 ? a2 : "", a3 ? a3 : "");
    RQ_OK(err && strstr(err, want) != NULL, "message names %s: %s", want, err ? err : "");
}

static void test_opts_errors(void)
{
    usage_error(NULL, NULL, NULL, "--url is required");
    usage_error("--users", "3", NULL, "--url is required");
    usage_error("--url", "ftp://h/x", NULL, "--url");
    usage_error("--url", "not a url", NULL, "--url");
    usage_error("--url", "http://h/x?q=1", NULL, "query");
    usage_error("--url", "http://h/race?", NULL, "query");
    usage_error("--url", "http://h?a=1", NULL, "query");
    usage_error("--url", "http://h/race#top", NULL, "fragment");
    usage_error("--url=http://h", "--users", "0", "--users");
    usage_error("--url=http://h", "--users", "-1", "--users");
    usage_error("--url=http://h", "--users", "3x", "--users");
    usage_error("--url=http://h", "--users", "10001", "--users");
    usage_error("--url=http://h", "--per-user", "", "--per-user");
    usage_error("--url=http://h", "--concurrency", "0", "--concurrency");
    usage_error("--url=http://h", "--timeout", "0", "--timeout");
    usage_error("--url=http://h", "--timeout", "nan", "--timeout");
    usage_error("--url=http://h", "--timeout", "3601", "--timeout");
    usage_error("--url=http://h", "--prefix", "a/b", "--prefix");
    usage_error("--url=http://h", "--prefix", "", "--prefix");
    usage_error("--url=http://h", "--nope", NULL, "invalid option: --nope");
    usage_error("--url=http://h", "stray", NULL, "unexpected argument \"stray\"");
    usage_error("--url", NULL, NULL, "missing argument");
}

static void test_seq_cmp(void)
{
    RQ_IS_INT(rq_fire_seq_cmp("18886881232523870208", "18886881232523870209"), -1,
              "20 digits, last differs");
    RQ_IS_INT(rq_fire_seq_cmp("100000000000000000000", "99999999999999999999"), 1,
              "21 digits above 20 digits (beyond 64 bits)");
    RQ_IS_INT(rq_fire_seq_cmp("00042", "42"), 0, "leading zeros do not count");
    RQ_IS_INT(rq_fire_seq_cmp("0", "000"), 0, "zero equals zero");
    RQ_IS_INT(rq_fire_seq_cmp("9", "10"), -1, "shorter is smaller");
    RQ_OK(rq_fire_seq_valid("123") && !rq_fire_seq_valid("") && !rq_fire_seq_valid("-1")
          && !rq_fire_seq_valid("1e3") && !rq_fire_seq_valid(NULL), "digit strings only");
}

static void test_order_violations(void)
{
    rq_fire_entry_t inorder[] = {
        entry("a", "18886881232523870208", 0, 0), entry("b", "18886881232523870209", 0, 0),
        entry("c", "100000000000000000000", 0, 0)
    };
    rq_fire_entry_t swapped[] = {
        entry("a", "18886881232523870209", 0, 0), entry("b", "18886881232523870208", 0, 0),
        entry("c", "99999999999999999999", 0, 0), entry("d", "100000000000000000001", 0, 0),
        entry("e", "100000000000000000000", 0, 0)
    };
    rq_fire_entry_t nulls[] = {
        entry("a", "5", 0, 0), entry("b", NULL, 0, 0), entry("c", "3", 0, 0),
        entry("d", NULL, 0, 0)
    };
    rq_fire_entry_t all_null[] = { entry("a", NULL, 0, 0), entry("b", NULL, 0, 0) };

    RQ_IS_INT(rq_fire_order_violations(inorder, 3), 0, "increasing big numbers: none");
    RQ_IS_INT(rq_fire_order_violations(swapped, 5), 2, "two decreasing adjacent pairs");
    RQ_IS_INT(rq_fire_order_violations(nulls, 4), 0, "null seq is not comparable");
    RQ_IS_INT(rq_fire_order_violations(all_null, 2), 0, "race mode history: none");
    RQ_IS_INT(rq_fire_order_violations(inorder, 1), 0, "one entry: none");
    RQ_IS_INT(rq_fire_order_violations(NULL, 0), 0, "empty history: none");
}

static void test_percentile(void)
{
    apr_interval_time_t v[100];
    apr_interval_time_t three[] = { 10, 20, 30 };
    int i;

    for (i = 0; i < 100; i++) {
        v[i] = i + 1;
    }
    RQ_IS_INT(rq_fire_percentile(v, 100, 50), 50, "p50 of 1..100");
    RQ_IS_INT(rq_fire_percentile(v, 100, 90), 90, "p90 of 1..100");
    RQ_IS_INT(rq_fire_percentile(v, 100, 99), 99, "p99 of 1..100");
    RQ_IS_INT(rq_fire_percentile(v, 100, 100), 100, "p100 is the max");
    RQ_IS_INT(rq_fire_percentile(three, 3, 50), 20, "p50 of three is the middle");
    RQ_IS_INT(rq_fire_percentile(three, 3, 99), 30, "p99 of three is the max");
    RQ_IS_INT(rq_fire_percentile(three, 1, 50), 10, "one value");
    RQ_IS_INT(rq_fire_percentile(NULL, 0, 50), 0, "no values");
}

static void test_user_parse(void)
{
    const char *ok = "{\"user_id\":\"u1\",\"writes\":3,\"history\":["
                     "{\"req_id\":\"r1\",\"seq\":null,\"start\":1000,\"finish\":1500},"
                     "{\"req_id\":\"r2\",\"seq\":\"100000000000000000007\","
                     "\"start\":2000,\"finish\":2600},"
                     "{\"req_id\":\"r3\",\"seq\":12,\"start\":3000,\"finish\":3001}]}";
    rq_fire_user_t u;
    rq_fire_entry_t *e;
    const char *err = NULL;

    RQ_IS_INT(rq_fire_user_parse(&u, &err, pool, ok, strlen(ok)), APR_SUCCESS, "state parses");
    e = (rq_fire_entry_t *)u.history->elts;
    RQ_IS_STR(u.user_id, "u1", "user_id");
    RQ_IS_INT(u.writes, 3, "writes");
    RQ_IS_INT(u.history->nelts, 3, "three history entries");
    RQ_OK(e[0].seq == NULL, "null seq");
    RQ_IS_STR(e[1].seq, "100000000000000000007", "big seq kept as digits");
    RQ_IS_STR(e[2].seq, "12", "numeric seq as digits");
    RQ_IS_INT(e[1].finish - e[1].start, 600, "start and finish");
}

static void bad_state(const char *json, const char *want)
{
    rq_fire_user_t u;
    const char *err = NULL;

    RQ_IS_INT(rq_fire_user_parse(&u, &err, pool, json, strlen(json)), APR_EINVAL,
              "refused: %s", json);
    RQ_OK(err && strstr(err, want) != NULL, "names %s: %s", want, err ? err : "");
}

static void test_user_parse_errors(void)
{
    bad_state("<html>", "not JSON");
    bad_state("[1]", "not a JSON object");
    bad_state("{\"writes\":1,\"history\":[]}", "user_id");
    bad_state("{\"user_id\":\"u\",\"writes\":\"1\",\"history\":[]}", "writes");
    bad_state("{\"user_id\":\"u\",\"writes\":-1,\"history\":[]}", "writes");
    bad_state("{\"user_id\":\"u\",\"writes\":1,\"history\":{}}", "history");
    bad_state("{\"user_id\":\"u\",\"writes\":1,\"history\":[{\"seq\":null}]}",
              "history[0].req_id");
    bad_state("{\"user_id\":\"u\",\"writes\":1,\"history\":[{\"req_id\":\"r\","
              "\"seq\":\"12a\",\"start\":1,\"finish\":2}]}", "history[0].seq");
    bad_state("{\"user_id\":\"u\",\"writes\":1,\"history\":[{\"req_id\":\"r\","
              "\"seq\":null,\"start\":\"1\",\"finish\":2}]}", "start and finish");
    bad_state("{\"user_id\":\"u\",\"user_id\":\"v\",\"writes\":1,\"history\":[]}", "not JSON");
}

static rq_fire_result_t result(int user, const char *req_id, int status,
                               apr_interval_time_t latency)
{
    rq_fire_result_t r;

    memset(&r, 0, sizeof(r));
    r.user = user;
    r.req_id = req_id;
    r.status = status;
    r.latency = latency;
    r.echo_ok = status == 200;
    r.error = status == 200 ? NULL : "boom";
    return r;
}

/*
 * Two users: u1 sent 3 (all 200) and gained 1 write; u2 sent 3 (two 200, one
 * 503) and gained 2, its history also holding an earlier run's x-u2-r2.
 */
static void test_report(void)
{
    rq_fire_entry_t h1[] = {
        entry("old-r9", "900", 0, 5000000),         /* an earlier run: not counted */
        entry("x-u1-r2", NULL, 1000, 101000)
    };
    rq_fire_entry_t h2[] = {
        entry("x-u2-r2", "7", 500, 900500),         /* same req_id, an earlier run */
        entry("x-u2-r1", "18886881232523870209", 2000, 52000),
        entry("x-u2-r2", "18886881232523870208", 60000, 130000),
        entry("x-u1-r1", NULL, 0, 900000)          /* another user's req_id */
    };
    rq_fire_user_t before[2], after[2];
    rq_fire_result_t res[6];
    rq_fire_run_t run;
    rq_fire_report_t *rep;
    rq_fire_status_count_t *sc;
    apr_array_header_t *a1 = apr_array_make(pool, 2, sizeof(rq_fire_entry_t));
    apr_array_header_t *a2 = apr_array_make(pool, 3, sizeof(rq_fire_entry_t));
    apr_array_header_t *b2 = apr_array_make(pool, 1, sizeof(rq_fire_entry_t));

    memcpy(apr_array_push(a1), &h1[0], sizeof(h1[0]));
    memcpy(apr_array_push(a1), &h1[1], sizeof(h1[1]));
    memcpy(apr_array_push(a2), &h2[0], sizeof(h2[0]));
    memcpy(apr_array_push(a2), &h2[1], sizeof(h2[1]));
    memcpy(apr_array_push(a2), &h2[2], sizeof(h2[2]));
    memcpy(apr_array_push(a2), &h2[3], sizeof(h2[3]));
    memcpy(apr_array_push(b2), &h2[0], sizeof(h2[0]));
    before[0].user_id = "x-u1";
    before[0].writes = 1;
    before[0].history = NULL;
    before[1].user_id = "x-u2";
    before[1].writes = 1;
    before[1].history = b2;
    after[0].user_id = "x-u1";
    after[0].writes = 2;
    after[0].history = a1;
    after[1].user_id = "x-u2";
    after[1].writes = 3;
    after[1].history = a2;

    res[0] = result(0, "x-u1-r1", 200, 40);
    res[1] = result(1, "x-u2-r1", 200, 10);
    res[2] = result(0, "x-u1-r2", 200, 30);
    res[3] = result(1, "x-u2-r2", 200, 20);
    res[4] = result(0, "x-u1-r3", 200, 60);
    res[5] = result(1, "x-u2-r3", 503, 50);

    memset(&run, 0, sizeof(run));
    run.nusers = 2;
    run.before = before;
    run.after = after;
    run.nresults = 6;
    run.results = res;
    run.wall = 777;
    RQ_IS_INT(rq_fire_report_compute(&rep, pool, &run), APR_SUCCESS, "report computed");

    RQ_IS_INT(rep->requests, 6, "requests");
    sc = (rq_fire_status_count_t *)rep->statuses->elts;
    RQ_IS_INT(rep->statuses->nelts, 2, "two statuses");
    RQ_OK(sc[0].status == 200 && sc[0].count == 5, "five 200");
    RQ_OK(sc[1].status == 503 && sc[1].count == 1, "one 503");
    RQ_IS_INT(rep->users[0].writes, 1, "u1 gained one write over its earlier one");
    RQ_IS_INT(rep->users[0].lost, 2, "u1: 3 answered 200, 1 written: 2 lost");
    RQ_IS_INT(rep->users[1].lost, 0, "u2: 2 answered 200, 2 written: none lost");
    RQ_IS_INT(rep->lost, 2, "lost updates summed");
    RQ_IS_INT(rep->writes, 3, "writes summed");
    RQ_IS_INT(rep->users[1].order_violations, 1, "u2 history decreases once");
    RQ_IS_INT(rep->order_violations, 1, "order violations summed");
    RQ_IS_INT(rep->users[0].apply, 100000, "u1 apply: this run's req_ids only");
    RQ_IS_INT(rep->users[1].apply, 120000, "u2 apply: its own req_ids of this run only");
    RQ_IS_INT(rep->critical_path, 120000, "critical path is the largest user sum");
    RQ_IS_INT(rep->wall, 777, "wall time");
    RQ_IS_INT(rep->p50, 30, "p50 over the 6 answers");
    RQ_IS_INT(rep->max, 60, "max latency");
    RQ_IS_STR(rep->first_error, "boom", "first error kept");
}

static void test_report_no_answer(void)
{
    rq_fire_user_t after;
    rq_fire_result_t res[2];
    rq_fire_run_t run;
    rq_fire_report_t *rep;
    rq_fire_opts_t opts;
    const char *json = NULL;

    after.user_id = "y-u1";
    after.writes = 0;
    after.history = NULL;
    res[0] = result(0, "y-u1-r1", 0, 0);
    res[1] = result(0, "y-u1-r2", 200, 5);
    res[1].echo_ok = 0;
    memset(&run, 0, sizeof(run));
    run.nusers = 1;
    run.after = &after;
    run.nresults = 2;
    run.results = res;

    RQ_IS_INT(rq_fire_report_compute(&rep, pool, &run), APR_SUCCESS, "report computed");
    RQ_IS_INT(rep->no_answer, 1, "one request got no answer");
    RQ_IS_INT(rep->bad_echo, 1, "one 200 did not echo");
    RQ_IS_INT(rep->lost, 1, "the 200 without a write is lost");
    RQ_IS_INT(rep->p99, 5, "percentiles only over answers");

    memset(&opts, 0, sizeof(opts));
    opts.url = "http://h/race";
    opts.prefix = "y";
    opts.users = 1;
    opts.per_user = 2;
    opts.concurrency = 2;
    RQ_IS_INT(rq_fire_report_json(&json, pool, rep, &opts), APR_SUCCESS, "JSON report");
    RQ_OK(json && strstr(json, "\"lost_updates\":1,") && strstr(json, "\"answers\":{\"200\":1}")
          && strstr(json, "\"no_answer\":1") && strstr(json, "\"by_user\":[{\"user_id\":\"y-u1\""),
          "JSON fields: %s", json ? json : "");
}

static void test_report_bad_user_index(void)
{
    rq_fire_user_t after = { "z-u1", 0, NULL };
    rq_fire_result_t res = result(3, "z-u4-r1", 200, 1);
    rq_fire_run_t run;
    rq_fire_report_t *rep;

    memset(&run, 0, sizeof(run));
    run.nusers = 1;
    run.after = &after;
    run.nresults = 1;
    run.results = &res;
    RQ_IS_INT(rq_fire_report_compute(&rep, pool, &run), APR_EINVAL, "user index checked");
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);

    test_opts_defaults();
    test_opts_given();
    test_opts_errors();
    test_seq_cmp();
    test_order_violations();
    test_percentile();
    test_user_parse();
    test_user_parse_errors();
    test_report();
    test_report_no_answer();
    test_report_bad_user_index();

    apr_pool_destroy(pool);
    apr_terminate();
    return rq_tap_done();
}
