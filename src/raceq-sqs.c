/*
 * raceq-sqs: talks to an SQS queue from the command line with the same client,
 * settings and credentials as mod_raceq and raceqd. Useful to check a
 * deployment's queue, to look at what is waiting, and to clear it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <jansson.h>

#include "rq_creds.h"
#include "rq_log.h"
#include "rq_sqs.h"

#define TIMEOUT_MAX 3600     /* seconds per request */
#define VISIBILITY_MAX 43200 /* SQS's longest visibility timeout: 12 hours */

typedef struct tool_t {
    apr_pool_t *p;
    rq_aws_conf_t given;
    rq_aws_conf_t conf;
    rq_sqs_t *sqs;
    const char *group;
    const char *dedup;
    int max;
    int wait;
    int visibility;
    int delete_after;
    int timeout;
} tool_t;

enum { OPT_QUEUE = 256, OPT_REGION, OPT_ENDPOINT, OPT_ENV, OPT_PROFILE, OPT_LOG, OPT_TIMEOUT,
       OPT_GROUP, OPT_DEDUP, OPT_MAX, OPT_WAIT, OPT_VIS, OPT_DELETE, OPT_HELP };

static const apr_getopt_option_t tool_opts[] = {
    { "queue-url",  OPT_QUEUE,    1, "queue URL (else AWS_FIFO_URL)" },
    { "region",     OPT_REGION,   1, "AWS region (else AWS_REGION, ...)" },
    { "endpoint",   OPT_ENDPOINT, 1, "SQS endpoint (else AWS_ENDPOINT_URL_SQS, ...)" },
    { "env-file",   OPT_ENV,      1, ".env file to read" },
    { "profile",    OPT_PROFILE,  1, "shared config profile (else AWS_PROFILE)" },
    { "log-level",  OPT_LOG,      1, "error .. debug, trace1 .. trace8" },
    { "timeout",    OPT_TIMEOUT,  1, "seconds per request, not counting a long poll" },
    { "group",      OPT_GROUP,    1, "send: MessageGroupId" },
    { "dedup",      OPT_DEDUP,    1, "send: MessageDeduplicationId" },
    { "max",        OPT_MAX,      1, "receive: up to N messages (1-10)" },
    { "wait",       OPT_WAIT,     1, "receive: long poll seconds (0-20)" },
    { "visibility", OPT_VIS,      1, "receive: visibility timeout seconds" },
    { "delete",     OPT_DELETE,   0, "receive: delete what was received" },
    { "help",       OPT_HELP,     0, "this help" },
    { NULL, 0, 0, NULL }
};

static void usage(FILE *out)
{
    int i;

    fprintf(out, "Usage: raceq-sqs [options] COMMAND [ARG]\n\n"
                 "Talks to an SQS queue with the client, settings and credentials of\n"
                 "mod_raceq and raceqd.\n\n"
                 "Commands:\n"
                 "  create-queue NAME   create a queue (FIFO if NAME ends in .fifo)\n"
                 "  queue-url NAME      print the URL of a queue\n"
                 "  attributes          print the queue's attributes as JSON\n"
                 "  send BODY           send BODY (\"-\": standard input), print its id and\n"
                 "                      sequence number as JSON\n"
                 "  receive             print received messages, one JSON object a line\n"
                 "  delete HANDLE       delete a received message by its receipt handle\n"
                 "  purge               delete every message of the queue\n\nOptions:\n");
    for (i = 0; tool_opts[i].name; i++) {
        fprintf(out, "  --%-12s %s %s\n", tool_opts[i].name, tool_opts[i].has_arg ? "ARG" : "   ",
                tool_opts[i].description);
    }
    fprintf(out, "\nExit status: 0 done, 1 the settings, the credentials or the SQS request\n"
                 "failed, 2 usage error.\n");
}

/* A usage error: what is wrong, then where the help is; exit status 2. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "raceq-sqs: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'raceq-sqs --help'.\n");
    return 2;
}

/* A whole decimal number in lo..hi, or -1 (with a usage error printed). */
static int number_opt(int *pn, const char *name, const char *arg, int lo, int hi)
{
    char *end = NULL;
    apr_int64_t n;

    errno = 0;
    n = apr_strtoi64(arg, &end, 10);
    if (!*arg || errno || *end || apr_isspace(*arg) || n < lo || n > hi) {
        usage_error("--%s takes a whole number from %d to %d, not '%s'", name, lo, hi, arg);
        return -1;
    }
    *pn = (int)n;
    return 0;
}

static int fail(tool_t *t, apr_status_t rv, const char *what)
{
    const rq_sqs_error_t *err = t->sqs ? rq_sqs_error(t->sqs) : NULL;

    fprintf(stderr, "raceq-sqs: %s: %s", what, rq_sqs_strerror(t->p, rv));
    if (err && err->type && *err->type) {
        fprintf(stderr, " (%s: %s)", err->type, err->message);
    }
    fprintf(stderr, "\n");
    return 1;
}

static void print_json(json_t *json)
{
    char *s = json_dumps(json, JSON_COMPACT | JSON_SORT_KEYS);

    if (s) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(json);
}

static int parse_opt(tool_t *t, int opt, const char *arg)
{
    switch (opt) {
    case OPT_QUEUE: t->given.queue_url = arg; break;
    case OPT_REGION: t->given.region = arg; break;
    case OPT_ENDPOINT: t->given.endpoint = arg; break;
    case OPT_ENV: t->given.env_file = arg; break;
    case OPT_PROFILE: t->given.profile = arg; break;
    case OPT_LOG:
        if (rq_log_level_parse(arg) < 0) {
            usage_error("--log-level takes emerg, alert, crit, error, warn, notice, info, "
                        "debug or trace1 .. trace8, not '%s'", arg);
            return -1;
        }
        rq_log_set_level(rq_log_level_parse(arg));
        break;
    case OPT_TIMEOUT: return number_opt(&t->timeout, "timeout", arg, 1, TIMEOUT_MAX);
    case OPT_GROUP: t->group = arg; break;
    case OPT_DEDUP: t->dedup = arg; break;
    case OPT_MAX: return number_opt(&t->max, "max", arg, 1, 10);
    case OPT_WAIT: return number_opt(&t->wait, "wait", arg, 0, 20);
    case OPT_VIS: return number_opt(&t->visibility, "visibility", arg, 0, VISIBILITY_MAX);
    case OPT_DELETE: t->delete_after = 1; break;
    default: return -1;
    }
    return 0;
}

/* The command and its argument, checked before any setting is resolved. */
static int command_check(const char *cmd, const char *arg)
{
    static const char *const with_arg[] = { "create-queue", "NAME", "queue-url", "NAME",
                                            "send", "BODY", "delete", "HANDLE", NULL };
    static const char *const without[] = { "attributes", "receive", "purge", NULL };
    int i;

    for (i = 0; with_arg[i]; i += 2) {
        if (strcmp(cmd, with_arg[i]) == 0) {
            return arg ? 0 : usage_error("%s needs %s", cmd, with_arg[i + 1]);
        }
    }
    for (i = 0; without[i]; i++) {
        if (strcmp(cmd, without[i]) == 0) {
            return arg ? usage_error("%s takes no argument, not '%s'", cmd, arg) : 0;
        }
    }
    return usage_error("unknown command '%s'", cmd);
}

static int tool_connect(tool_t *t)
{
    rq_sqs_opts_t opts;
    const char *why = NULL;
    apr_status_t rv;

    rv = rq_aws_conf_resolve_for(&t->conf, &why, t->p, &t->given, "--region");
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "raceq-sqs: %s\n", why ? why : "the AWS settings could not be resolved");
        return 1;
    }
    memset(&opts, 0, sizeof(opts));
    opts.endpoint = t->conf.endpoint;
    opts.region = t->conf.region;
    opts.timeout = apr_time_from_sec(t->timeout);
    rv = rq_creds_provider_create_ex(&opts.creds, &why, t->p, &t->conf, NULL);
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "raceq-sqs: %s\n", why ? why : "no AWS credentials");
        return 1;
    }
    rv = rq_sqs_create(&t->sqs, t->p, &opts);
    return rv == APR_SUCCESS ? 0 : fail(t, rv, "cannot create the SQS client");
}

static const char *read_stdin(apr_pool_t *p)
{
    char *buf = NULL;
    apr_size_t len = 0, cap = 0, n;

    do {
        if (len + 4096 + 1 > cap) {
            char *nbuf = apr_palloc(p, cap = (cap ? cap * 2 : 8192));

            memcpy(nbuf, buf ? buf : "", len);
            buf = nbuf;
        }
        n = fread(buf + len, 1, cap - len - 1, stdin);
        len += n;
    } while (n > 0);
    buf[len] = '\0';
    return buf;
}

static int need_queue(tool_t *t)
{
    if (!t->conf.queue_url) {
        fprintf(stderr, "raceq-sqs: no queue: give --queue-url or set AWS_FIFO_URL\n");
        return 1;
    }
    return 0;
}

static int cmd_send(tool_t *t, const char *body)
{
    rq_sqs_sent_t sent;
    apr_status_t rv;

    if (need_queue(t)) {
        return 1;
    }
    body = strcmp(body, "-") == 0 ? read_stdin(t->p) : body;
    rv = rq_sqs_send(&sent, t->sqs, t->p, t->conf.queue_url, body, t->group, t->dedup);
    if (rv != APR_SUCCESS) {
        return fail(t, rv, "send failed");
    }
    print_json(json_pack("{s:s, s:s?}", "MessageId", sent.message_id, "SequenceNumber",
                         sent.sequence_number));
    return 0;
}

static int cmd_receive(tool_t *t)
{
    apr_array_header_t *msgs;
    apr_status_t rv;
    int i;

    if (need_queue(t)) {
        return 1;
    }
    rv = rq_sqs_receive(&msgs, t->sqs, t->p, t->conf.queue_url, t->max, t->wait,
                        t->visibility, NULL);
    if (rv != APR_SUCCESS) {
        return fail(t, rv, "receive failed");
    }
    for (i = 0; i < msgs->nelts; i++) {
        const rq_sqs_msg_t *m = &APR_ARRAY_IDX(msgs, i, rq_sqs_msg_t);

        print_json(json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:i, s:s}", "MessageId",
                             m->message_id, "Body", m->body, "MessageGroupId", m->group_id,
                             "MessageDeduplicationId", m->dedup_id, "SequenceNumber",
                             m->sequence_number, "ReceiveCount", m->receive_count,
                             "ReceiptHandle", m->receipt_handle));
        if (t->delete_after) {
            rv = rq_sqs_delete(t->sqs, t->p, t->conf.queue_url, m->receipt_handle);
            if (rv != APR_SUCCESS) {
                return fail(t, rv, "delete failed");
            }
        }
    }
    return 0;
}

static int cmd_attributes(tool_t *t)
{
    const apr_array_header_t *arr;
    apr_table_t *attrs;
    json_t *obj;
    apr_status_t rv;
    int i;

    if (need_queue(t)) {
        return 1;
    }
    rv = rq_sqs_get_queue_attributes(&attrs, t->sqs, t->p, t->conf.queue_url);
    if (rv != APR_SUCCESS) {
        return fail(t, rv, "attributes failed");
    }
    obj = json_object();
    arr = apr_table_elts(attrs);
    for (i = 0; i < arr->nelts; i++) {
        const apr_table_entry_t *e = &APR_ARRAY_IDX(arr, i, apr_table_entry_t);

        json_object_set_new(obj, e->key, json_string(e->val));
    }
    print_json(obj);
    return 0;
}

static int cmd_queue(tool_t *t, const char *cmd, const char *arg)
{
    const char *url;
    apr_status_t rv;

    if (strcmp(cmd, "create-queue") == 0) {
        rv = rq_sqs_create_queue(&url, t->sqs, t->p, arg, NULL);
    }
    else {
        rv = rq_sqs_get_queue_url(&url, t->sqs, t->p, arg);
    }
    if (rv != APR_SUCCESS) {
        return fail(t, rv, cmd);
    }
    printf("%s\n", url);
    return 0;
}

static int run(tool_t *t, const char *cmd, const char *arg)
{
    apr_status_t rv;

    if (tool_connect(t)) {
        return 1;
    }
    if (strcmp(cmd, "create-queue") == 0 || strcmp(cmd, "queue-url") == 0) {
        return cmd_queue(t, cmd, arg);
    }
    if (strcmp(cmd, "send") == 0) {
        return cmd_send(t, arg);
    }
    if (strcmp(cmd, "receive") == 0) {
        return cmd_receive(t);
    }
    if (strcmp(cmd, "attributes") == 0) {
        return cmd_attributes(t);
    }
    if (need_queue(t)) {
        return 1;
    }
    if (strcmp(cmd, "delete") == 0) {
        rv = rq_sqs_delete(t->sqs, t->p, t->conf.queue_url, arg);
        return rv == APR_SUCCESS ? 0 : fail(t, rv, "delete failed");
    }
    rv = rq_sqs_purge(t->sqs, t->p, t->conf.queue_url);
    return rv == APR_SUCCESS ? 0 : fail(t, rv, "purge failed");
}

int main(int argc, const char *const *argv)
{
    tool_t t;
    apr_getopt_t *opt;
    const char *arg;
    apr_status_t rv;
    const char *pos[2] = { NULL, NULL };
    int ch, rc, npos = 0;

    apr_app_initialize(&argc, &argv, NULL);
    memset(&t, 0, sizeof(t));
    apr_pool_create(&t.p, NULL);
    t.max = 1;
    t.visibility = -1;
    rq_log_set_level(RQ_LOG_ERR);

    apr_getopt_init(&opt, t.p, argc, argv);
    for (;;) {
        /* Options may follow the command; "-" (standard input) is an argument. */
        while (opt->ind < argc && (argv[opt->ind][0] != '-' || !argv[opt->ind][1])) {
            if (npos < 2) {
                pos[npos] = argv[opt->ind];
            }
            npos++;
            opt->ind++;
        }
        rv = apr_getopt_long(opt, tool_opts, &ch, &arg);
        if (rv != APR_SUCCESS) {
            break;
        }
        if (ch == OPT_HELP) {
            usage(stdout);
            return 0;
        }
        if (parse_opt(&t, ch, arg) != 0) {
            return 2;
        }
    }
    if (rv != APR_EOF) {
        fprintf(stderr, "Try 'raceq-sqs --help'.\n"); /* apr_getopt said what is wrong */
        return 2;
    }
    if (npos < 1) {
        return usage_error("%s", "no COMMAND given");
    }
    if (npos > 2) {
        return usage_error("too many arguments after %s %s", pos[0], pos[1]);
    }
    if (command_check(pos[0], pos[1]) != 0) {
        return 2;
    }

    rc = run(&t, pos[0], pos[1]);
    apr_pool_destroy(t.p);
    apr_terminate();
    return rc;
}
