/* The .env and shared-file readers: accepted syntax and errors with line numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "rq_env.h"
#include "rq_ini.h"
#include "rq_tap.h"

static apr_pool_t *pool;

static rq_env_t *parse_ok(const char *text, const char *what)
{
    rq_env_t *env = NULL;
    const char *err = NULL;
    apr_status_t rv = rq_env_parse(&env, &err, pool, text, strlen(text), "t.env");

    RQ_IS_INT(rv, APR_SUCCESS, "%s: parses", what);
    if (err) {
        printf("# %s\n", err);
    }
    return env;
}

static void parse_fails(const char *text, const char *want, const char *what)
{
    rq_env_t *env = NULL;
    const char *err = NULL;
    apr_status_t rv = rq_env_parse(&env, &err, pool, text, strlen(text), "t.env");

    RQ_IS_INT(rv, RQ_ENV_ESYNTAX, "%s: refused", what);
    RQ_OK(err && strstr(err, want) != NULL, "%s: error says \"%s\" (got \"%s\")", what, want,
          err ? err : "(null)");
}

static void test_basics(void)
{
    rq_env_t *env = parse_ok("# the demo's settings\n"
                             "\n"
                             "AWS_REGION=eu-west-1\n"
                             "   AWS_PROFILE = demo   \n"
                             "export AWS_FIFO_URL=https://sqs.eu-west-1.amazonaws.com/1/q.fifo\n"
                             "export\tTABBED=yes\n"
                             "EMPTY=\n"
                             "WINDOWS=crlf\r\n"
                             "LAST=no newline", "basics");

    RQ_IS_STR(rq_env_file_get(env, "AWS_REGION"), "eu-west-1", "plain KEY=VALUE");
    RQ_IS_STR(rq_env_file_get(env, "AWS_PROFILE"), "demo", "spaces around key and value");
    RQ_IS_STR(rq_env_file_get(env, "AWS_FIFO_URL"),
              "https://sqs.eu-west-1.amazonaws.com/1/q.fifo", "export prefix");
    RQ_IS_STR(rq_env_file_get(env, "TABBED"), "yes", "export followed by a tab");
    RQ_IS_STR(rq_env_file_get(env, "EMPTY"), NULL, "an empty value counts as unset");
    RQ_OK(apr_hash_get(env->vars, "EMPTY", APR_HASH_KEY_STRING) != NULL,
          "but the empty key is recorded");
    RQ_IS_STR(rq_env_file_get(env, "WINDOWS"), "crlf", "CRLF line ends");
    RQ_IS_STR(rq_env_file_get(env, "LAST"), "no newline", "last line without newline");
    RQ_IS_STR(rq_env_file_get(env, "aws_region"), NULL, "keys are case-sensitive");
}

static void test_comments(void)
{
    rq_env_t *env = parse_ok("A=value # a comment\n"
                             "B=value#not-a-comment\n"
                             "C= # only a comment\n"
                             "D=#hash\n"
                             "  # indented comment\n"
                             "E='quoted # kept' # comment\n"
                             "F=\"x\"\t# tab then comment\n", "comments");

    RQ_IS_STR(rq_env_file_get(env, "A"), "value", "comment after whitespace is cut");
    RQ_IS_STR(rq_env_file_get(env, "B"), "value#not-a-comment", "# inside a value stays");
    RQ_IS_STR(rq_env_file_get(env, "C"), NULL, "value that is only a comment is empty");
    RQ_IS_STR(rq_env_file_get(env, "D"), "#hash", "# right after = is part of the value");
    RQ_IS_STR(rq_env_file_get(env, "E"), "quoted # kept", "# inside quotes stays");
    RQ_IS_STR(rq_env_file_get(env, "F"), "x", "comment after a quoted value");
}

static void test_quotes(void)
{
    rq_env_t *env = parse_ok("S='a \\n b \"c\" $HOME'\n"
                             "D=\"line1\\nline2 \\\"q\\\" back\\\\slash\"\n"
                             "W=\"C:\\dir\\x\"\n"
                             "P='  padded  '\n"
                             "E=''\n"
                             "DUP=first\n"
                             "DUP=second\n", "quotes");

    RQ_IS_STR(rq_env_file_get(env, "S"), "a \\n b \"c\" $HOME", "single quotes are literal");
    RQ_IS_STR(rq_env_file_get(env, "D"), "line1\nline2 \"q\" back\\slash",
              "double quotes: \\n, \\\" and \\\\");
    RQ_IS_STR(rq_env_file_get(env, "W"), "C:\\dir\\x", "other backslashes stay");
    RQ_IS_STR(rq_env_file_get(env, "P"), "  padded  ", "spaces inside quotes are kept");
    RQ_IS_STR(rq_env_file_get(env, "E"), NULL, "'' is empty");
    RQ_IS_STR(rq_env_file_get(env, "DUP"), "second", "the last of a repeated key wins");
}

static void test_errors(void)
{
    parse_fails("A=1\nnot a setting\n", "t.env:2: expected '='", "a line without =");
    parse_fails("A=1\nB=2\n=3\n", "t.env:3: expected KEY=VALUE", "an empty key");
    parse_fails("1ABC=x\n", "t.env:1: expected KEY=VALUE", "a key starting with a digit");
    parse_fails("A-B=x\n", "t.env:1: expected '='", "a key with a dash");
    parse_fails("\n\nA='open\n", "t.env:3: unterminated single quote", "open single quote");
    parse_fails("A=\"open\\\"\n", "t.env:1: unterminated double quote", "open double quote");
    parse_fails("A='x' y\n", "t.env:1: unexpected text after the closing quote",
                "text after a closing quote");
    parse_fails("A='x'#c\n", "t.env:1: a comment after a quoted value needs a space",
                "comment glued to a closing quote");
    parse_fails("export\n", "t.env:1: expected '='", "export alone");
}

static void test_nul_len(void)
{
    static const char text[] = "A=1\nB=2\0C=3\n";
    rq_env_t *env = NULL;
    const char *err = NULL;
    apr_status_t rv = rq_env_parse(&env, &err, pool, text, sizeof(text) - 1, "n.env");

    RQ_IS_INT(rv, RQ_ENV_ESYNTAX, "an embedded NUL is refused, not a silent cut");
    RQ_IS_STR(err, "n.env:2: the line contains a NUL byte", "NUL error names the line");
}

static void test_read_file(const char *dir)
{
    const char *path = apr_pstrcat(pool, dir, "/demo.env", NULL);
    const char *err = NULL;
    rq_env_t *env = NULL;
    FILE *f = fopen(path, "w");
    apr_status_t rv;

    fputs("AWS_REGION=us-east-2\nBROKEN\n", f);
    fclose(f);
    rv = rq_env_read(&env, &err, pool, path);
    RQ_IS_INT(rv, RQ_ENV_ESYNTAX, "a file with a bad line is refused");
    RQ_IS_STR(err, apr_pstrcat(pool, path, ":2: expected '=' after the variable name", NULL),
              "the error names the file and line");

    rv = rq_env_read(&env, &err, pool, apr_pstrcat(pool, dir, "/missing.env", NULL));
    RQ_OK(APR_STATUS_IS_ENOENT(rv), "a missing file is ENOENT");
    RQ_OK(err && strstr(err, "cannot read the .env file") && strstr(err, "missing.env"),
          "and says which file: %s", err);

    f = fopen(path, "w");
    fputs("AWS_REGION=us-east-2\n", f);
    fclose(f);
    rv = rq_env_read(&env, &err, pool, path);
    RQ_IS_INT(rv, APR_SUCCESS, "a good file is read");
    RQ_IS_STR(rq_env_file_get(env, "AWS_REGION"), "us-east-2", "its value");
}

static void test_lookup(void)
{
    rq_env_t *env = parse_ok("RQ_TEST_A=from-file\nRQ_TEST_B=file-b\n", "lookup");

    setenv("RQ_TEST_A", "from-env", 1);
    unsetenv("RQ_TEST_B");
    RQ_IS_STR(rq_env_get(env, "RQ_TEST_A"), "from-env", "the environment comes first");
    RQ_IS_STR(rq_env_get(env, "RQ_TEST_B"), "file-b", "then the .env file");
    setenv("RQ_TEST_B", "", 1);
    RQ_IS_STR(rq_env_get(env, "RQ_TEST_B"), "file-b", "an empty variable counts as unset");
    RQ_IS_STR(rq_env_get(NULL, "RQ_TEST_A"), "from-env", "no file: the environment only");
    RQ_IS_STR(rq_env_get(NULL, "RQ_TEST_B"), NULL, "no file, empty variable: unset");
}

static rq_ini_t *ini_ok(const char *text, const char *what)
{
    rq_ini_t *ini = NULL;
    const char *err = NULL;
    apr_status_t rv = rq_ini_parse(&ini, &err, pool, text, strlen(text), "config");

    RQ_IS_INT(rv, APR_SUCCESS, "%s: parses", what);
    if (err) {
        printf("# %s\n", err);
    }
    return ini;
}

static void ini_fails(const char *text, const char *want, const char *what)
{
    rq_ini_t *ini = NULL;
    const char *err = NULL;
    apr_status_t rv = rq_ini_parse(&ini, &err, pool, text, strlen(text), "config");

    RQ_IS_INT(rv, RQ_INI_ESYNTAX, "%s: refused", what);
    RQ_OK(err && strstr(err, want) != NULL, "%s: error says \"%s\" (got \"%s\")", what, want,
          err ? err : "(null)");
}

static void test_ini(void)
{
    rq_ini_t *ini = ini_ok("# comment\n"
                           "; another\n"
                           "[default]\n"
                           "region = eu-west-1 # trailing comment\n"
                           "Output=json\n"
                           "s3 =\n"
                           "  max_concurrent_requests = 20\n"
                           "[profile   dev ]\n"
                           "region=us-west-2\n"
                           "[default]\n"
                           "region = eu-central-1\n", "ini");
    apr_table_t *t;

    t = rq_ini_section(ini, "default");
    RQ_OK(t != NULL, "[default] found");
    RQ_IS_STR(t ? apr_table_get(t, "region") : NULL, "eu-central-1",
              "a repeated section is merged, later keys win");
    RQ_IS_STR(t ? apr_table_get(t, "output") : NULL, "json", "keys are case-insensitive");
    RQ_IS_STR(t ? apr_table_get(t, "max_concurrent_requests") : NULL, NULL,
              "indented sub-settings are skipped");
    t = rq_ini_section(ini, "profile dev");
    RQ_IS_STR(t ? apr_table_get(t, "region") : NULL, "us-west-2",
              "[profile   dev ] is the section \"profile dev\"");
    RQ_OK(rq_ini_section(ini, "dev") == NULL, "no section \"dev\"");

    ini_fails("[default]\nregion\n", "config:2: expected 'key = value'", "a line without =");
    ini_fails("region = x\n", "config:1: a setting before the first [section]",
              "a key outside a section");
    ini_fails("[default\nregion = x\n", "config:1: a section header needs a closing ']'",
              "an unclosed header");
    ini_fails("\n[]\n", "config:2: empty section name", "an empty header");
    ini_fails("[a] b\n", "config:1: unexpected text after the section header",
              "text after a header");
}

/* The template shipped at the top of the tree parses and holds the demo's names. */
static void test_example(void)
{
    rq_env_t *env = NULL;
    const char *err = NULL;

    RQ_IS_INT(rq_env_read(&env, &err, pool, ".env.example"), APR_SUCCESS,
              ".env.example parses: %s", err ? err : "");
    if (!env) {
        return;
    }
    RQ_OK(rq_env_file_get(env, "AWS_FIFO_URL") != NULL, ".env.example names AWS_FIFO_URL");
    RQ_IS_STR(rq_env_file_get(env, "AWS_REGION"), "eu-west-1", ".env.example names AWS_REGION");
    RQ_OK(rq_env_file_get(env, "AWS_SECRET_ACCESS_KEY") == NULL,
          ".env.example holds no secret, only commented names");
}

int main(void)
{
    char dir[] = "/tmp/rq-test-env-XXXXXX";

    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    test_basics();
    test_comments();
    test_quotes();
    test_errors();
    test_nul_len();
    test_read_file(dir);
    test_lookup();
    test_ini();
    test_example();

    unlink(apr_pstrcat(pool, dir, "/demo.env", NULL));
    rmdir(dir);
    apr_pool_destroy(pool);
    apr_terminate();
    return rq_tap_done();
}
