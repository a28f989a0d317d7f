/*
 * raceq-sign: signs a raw HTTP request file with SigV4 and prints the
 * canonical request, the string to sign and the Authorization header, so
 * that a SignatureDoesNotMatch can be compared stage by stage with what AWS
 * computed. The secret key is used only to sign; it is never printed.
 *
 * Exit status: 0 signed; 1 the request could not be read, parsed or signed;
 * 2 usage error (unknown or missing option, bad value).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "rq_log.h"
#include "rq_reqfile.h"
#include "rq_sigv4.h"

#define EXIT_SIGNED 0
#define EXIT_REQUEST 1
#define EXIT_USAGE 2

enum {
    OPT_ACCESS_KEY = 256,
    OPT_SECRET_KEY,
    OPT_SESSION_TOKEN,
    OPT_REGION,
    OPT_SERVICE,
    OPT_TIME,
    OPT_PRINT,
    OPT_VERBOSE,
    OPT_HELP
};

static const apr_getopt_option_t options[] = {
    { "access-key", OPT_ACCESS_KEY, 1, "access key id" },
    { "secret-key", OPT_SECRET_KEY, 1, "secret access key" },
    { "session-token", OPT_SESSION_TOKEN, 1, "session token" },
    { "region", OPT_REGION, 1, "region" },
    { "service", OPT_SERVICE, 1, "service" },
    { "time", OPT_TIME, 1, "signing time" },
    { "print", OPT_PRINT, 1, "what to print" },
    { "verbose", OPT_VERBOSE, 0, "debug lines from the signer" },
    { "help", OPT_HELP, 0, "help" },
    { NULL, 0, 0, NULL }
};

typedef struct sign_args_t {
    const char *access_key;
    const char *secret_key;
    const char *session_token;
    const char *region;
    const char *service;
    const char *time;
    const char *print;
    const char *file;
} sign_args_t;

static const char usage_text[] =
    "Usage: raceq-sign --access-key AK --secret-key SK [--session-token T]\n"
    "                  --region R --service S --time YYYYMMDDTHHMMSSZ\n"
    "                  [--print creq|sts|authz|all] [--verbose] FILE\n"
    "\n"
    "Signs the raw HTTP request in FILE ('-' for standard input) with AWS\n"
    "Signature Version 4 and prints the canonical request (creq), the string\n"
    "to sign (sts), the Authorization header value (authz) or all three\n"
    "(the default).\n"
    "\n"
    "FILE holds a request line, Name:value header lines, a blank line and the\n"
    "body. An X-Amz-Date header is added from --time when missing, and an\n"
    "X-Amz-Security-Token header from --session-token when missing.\n"
    "\n"
    "Exit status: 0 signed, 1 the request could not be read, parsed or\n"
    "signed, 2 usage error.\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("raceq-sign: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'raceq-sign --help' for more information.\n", stderr);
}

/* Reports a bad option without echoing a value given with "--name=value". */
static void getopt_error(void *arg, const char *fmt, ...)
{
    char msg[512];
    char *eq;
    va_list ap;

    (void)arg;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    eq = strstr(msg, "--") ? strchr(strstr(msg, "--"), '=') : NULL;
    if (eq) {
        *eq = '\0';
    }
    msg[strcspn(msg, "\n")] = '\0';
    fprintf(stderr, "%s\n", msg);
}

static void args_set(sign_args_t *a, int opt, const char *arg)
{
    switch (opt) {
    case OPT_ACCESS_KEY: a->access_key = arg; break;
    case OPT_SECRET_KEY: a->secret_key = arg; break;
    case OPT_SESSION_TOKEN: a->session_token = arg; break;
    case OPT_REGION: a->region = arg; break;
    case OPT_SERVICE: a->service = arg; break;
    case OPT_TIME: a->time = arg; break;
    case OPT_PRINT: a->print = arg; break;
    case OPT_VERBOSE: rq_log_set_level(RQ_LOG_DEBUG); break;
    default: break;
    }
}

/* Checks that every option is there and well formed; returns an exit status. */
static int args_check(const sign_args_t *a)
{
    static const char *const print_modes[] = { "creq", "sts", "authz", "all", NULL };
    const char *missing = !a->access_key ? "--access-key"
                          : !a->secret_key ? "--secret-key"
                          : !a->region ? "--region"
                          : !a->service ? "--service"
                          : !a->time ? "--time" : NULL;
    int i;

    if (missing) {
        usage_error("missing option %s", missing);
        return EXIT_USAGE;
    }
    if (!*a->access_key || !*a->secret_key || !*a->region || !*a->service) {
        usage_error("--access-key, --secret-key, --region and --service must not be empty");
        return EXIT_USAGE;
    }
    if (rq_sigv4_date_check(a->time) != APR_SUCCESS) {
        usage_error("--time must be a UTC time YYYYMMDDTHHMMSSZ, e.g. 20150830T123600Z");
        return EXIT_USAGE;
    }
    for (i = 0; print_modes[i] && strcmp(print_modes[i], a->print) != 0; i++) {
    }
    if (!print_modes[i]) {
        usage_error("--print must be one of creq, sts, authz, all");
        return EXIT_USAGE;
    }
    return EXIT_SIGNED;
}

static int takes_value(const char *arg)
{
    int i;

    for (i = 0; arg[0] == '-' && arg[1] == '-' && options[i].name; i++) {
        if (strcmp(arg + 2, options[i].name) == 0) {
            return options[i].has_arg;
        }
    }
    return 0;
}

/*
 * apr_getopt refuses a bare "-" as an option; a FILE of "-" (standard input)
 * is moved after a "--" so that it reaches the operands.
 */
static const char *const *argv_stdin_last(int *pargc, apr_pool_t *p, int argc,
                                          const char *const *argv)
{
    const char **out = apr_pcalloc(p, sizeof(*out) * (apr_size_t)(argc + 2));
    int i, n = 0, dashes = 0;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0 && !(i > 1 && takes_value(argv[i - 1]))) {
            dashes++;
            continue;
        }
        out[n++] = argv[i];
    }
    if (dashes > 0) {
        out[n++] = "--";
    }
    while (dashes-- > 0) {
        out[n++] = "-";
    }
    *pargc = n;
    return out;
}

/* Parses argv into a; returns -1 to go on, else the exit status. */
static int args_parse(sign_args_t *a, apr_pool_t *p, int argc, const char *const *argv)
{
    apr_getopt_t *opt;
    const char *arg;
    apr_status_t rv;
    int optch;

    argv = argv_stdin_last(&argc, p, argc, argv);
    apr_getopt_init(&opt, p, argc, argv);
    opt->errfn = getopt_error;
    a->print = "all";
    while ((rv = apr_getopt_long(opt, options, &optch, &arg)) == APR_SUCCESS) {
        if (optch == OPT_HELP) {
            fputs(usage_text, stdout);
            return EXIT_SIGNED;
        }
        args_set(a, optch, arg);
    }
    if (rv != APR_EOF) {
        fputs("Try 'raceq-sign --help' for more information.\n", stderr);
        return EXIT_USAGE;
    }
    if (opt->ind != argc - 1) {
        usage_error("expected exactly one FILE argument ('-' for standard input)");
        return EXIT_USAGE;
    }
    a->file = argv[opt->ind];
    return args_check(a) == EXIT_SIGNED ? -1 : EXIT_USAGE;
}

/* A header value without any white space, for comparing a date. */
static const char *value_squeeze(apr_pool_t *p, const char *v)
{
    char *s = apr_pstrdup(p, v);

    apr_collapse_spaces(s, s);
    return s;
}

/* Adds X-Amz-Date and X-Amz-Security-Token when missing; checks them when present. */
static int request_prepare(rq_reqfile_t *req, apr_pool_t *p, const sign_args_t *a)
{
    const char *date = rq_reqfile_header_get(req, "X-Amz-Date");
    const char *token = rq_reqfile_header_get(req, "X-Amz-Security-Token");

    if (!rq_reqfile_header_get(req, "Host")) {
        fprintf(stderr, "raceq-sign: %s: the request has no Host header\n", a->file);
        return EXIT_REQUEST;
    }
    if (!date) {
        rq_reqfile_header_add(req, "X-Amz-Date", a->time);
    }
    else if (strcmp(value_squeeze(p, date), a->time) != 0) {
        fprintf(stderr, "raceq-sign: %s: the request's X-Amz-Date %s differs from --time %s\n",
                a->file, date, a->time);
        return EXIT_REQUEST;
    }
    if (a->session_token && !token) {
        rq_reqfile_header_add(req, "X-Amz-Security-Token", a->session_token);
    }
    else if (a->session_token && strcmp(token, a->session_token) != 0) {
        fprintf(stderr, "raceq-sign: %s: the request's X-Amz-Security-Token differs from "
                "--session-token\n", a->file);
        return EXIT_REQUEST;
    }
    return EXIT_SIGNED;
}

/*
 * The query of the request target is decoded before it is signed: names the
 * first malformed %XX escape and the name=value piece that holds it.
 */
static int query_escapes_check(const char *file, const char *uri)
{
    const char *query = strchr(uri, '?');
    const char *pc = query;
    const char *piece;
    int n;

    while (pc && (pc = strchr(pc + 1, '%')) != NULL) {
        if (apr_isxdigit(pc[1]) && apr_isxdigit(pc[2])) {
            continue;
        }
        n = 1;
        while (n < 3 && pc[n] && pc[n] != '&') {
            n++;
        }
        piece = pc;
        while (piece > query + 1 && piece[-1] != '&') {
            piece--;
        }
        fprintf(stderr, "raceq-sign: %s: the query of the request target has a malformed "
                "percent escape '%.*s' in '%.*s'; '%%' must be followed by two hex digits\n",
                file, n, pc, (int)strcspn(piece, "&"), piece);
        return EXIT_REQUEST;
    }
    return EXIT_SIGNED;
}

static void result_print(const rq_sigv4_result_t *res, const char *mode)
{
    int all = strcmp(mode, "all") == 0;

    if (all || strcmp(mode, "creq") == 0) {
        printf("%s%s\n", all ? "== canonical request ==\n" : "", res->canonical_request);
    }
    if (all || strcmp(mode, "sts") == 0) {
        printf("%s%s\n", all ? "\n== string to sign ==\n" : "", res->string_to_sign);
    }
    if (all || strcmp(mode, "authz") == 0) {
        printf("%s%s\n", all ? "\n== authorization ==\n" : "", res->authorization);
    }
}

static int sign_file(apr_pool_t *p, const sign_args_t *a)
{
    rq_creds_t creds;
    rq_sigv4_input_t in;
    rq_sigv4_result_t res;
    rq_reqfile_t *req;
    const char *err;
    char buf[256];
    apr_status_t rv;
    int status;

    rv = rq_reqfile_read(&req, &err, p, a->file);
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "raceq-sign: %s%s%s\n", rv == APR_EINVAL ? a->file : "",
                rv == APR_EINVAL ? ": " : "", err);
        return EXIT_REQUEST;
    }
    status = request_prepare(req, p, a);
    if (status != EXIT_SIGNED) {
        return status;
    }

    memset(&creds, 0, sizeof(creds));
    creds.access_key = a->access_key;
    creds.secret_key = a->secret_key;
    creds.session_token = rq_reqfile_header_get(req, "X-Amz-Security-Token");
    rq_reqfile_to_sigv4(&in, req);
    status = query_escapes_check(a->file, in.uri);
    if (status != EXIT_SIGNED) {
        return status;
    }
    rv = rq_sigv4_sign_all(&res, p, &in, &creds, a->region, a->service, a->time, NULL);
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "raceq-sign: %s: cannot sign the request: %s\n", a->file,
                apr_strerror(rv, buf, sizeof(buf)));
        return EXIT_REQUEST;
    }
    result_print(&res, a->print);
    return fflush(stdout) == 0 ? EXIT_SIGNED : EXIT_REQUEST;
}

int main(int argc, const char *const *argv)
{
    sign_args_t args = { 0 };
    apr_pool_t *p;
    int status;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        fputs("raceq-sign: cannot initialise APR\n", stderr);
        return EXIT_REQUEST;
    }
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);

    status = args_parse(&args, p, argc, argv);
    if (status < 0) {
        status = sign_file(p, &args);
    }
    apr_pool_destroy(p);
    return status;
}
