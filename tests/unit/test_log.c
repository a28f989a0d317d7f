/* Texts of the library's status codes: rq_strerror and rq_strerror_register. */
#include <apr_general.h>
#include <apr_strings.h>

#include "rq_creds.h"
#include "rq_env.h"
#include "rq_fifo.h"
#include "rq_ini.h"
#include "rq_log.h"
#include "rq_payload.h"
#include "rq_sqs.h"
#include "rq_store.h"
#include "rq_tap.h"
#include "rq_wait.h"

static const char *text(apr_status_t rv)
{
    static char buf[256];

    return rq_strerror(rv, buf, sizeof(buf));
}

static void test_builtin(void)
{
    const apr_status_t codes[] = {
        RQ_PAYLOAD_EINVALID, RQ_STORE_EDB, RQ_STORE_EOPEN, RQ_STORE_EDUPLICATE,
        RQ_SQS_ECLIENT, RQ_SQS_EPARTIAL, RQ_CREDS_ENOREGION, RQ_CREDS_EBADFILE,
        RQ_ENV_ESYNTAX, RQ_INI_ESYNTAX, RQ_WAIT_EBADFRAME, RQ_WAIT_EUNREACHABLE,
        RQ_FIFO_EUNREACHABLE, RQ_FIFO_EPROTO,
    };
    char apr_text[256];
    apr_size_t i;

    apr_strerror(RQ_STORE_EDB, apr_text, sizeof(apr_text));
    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        RQ_OK(strcmp(text(codes[i]), apr_text) != 0 && strlen(text(codes[i])) > 10,
              "code %d has its own text: %s", codes[i], text(codes[i]));
    }
    RQ_IS_STR(text(RQ_STORE_EOPEN), "the store cannot be opened", "RQ_STORE_EOPEN");
    RQ_IS_STR(text(RQ_STORE_EDB), "a statement of the store failed", "RQ_STORE_EDB");
    RQ_IS_STR(text(RQ_SQS_ENOQUEUE), "the SQS queue does not exist", "RQ_SQS_ENOQUEUE");
    RQ_IS_STR(text(RQ_CREDS_ENONE), "no AWS credentials were found", "RQ_CREDS_ENONE");
    RQ_IS_STR(text(RQ_FIFO_ETIMEDOUT), "no answer came in time; the write is queued",
              "RQ_FIFO_ETIMEDOUT");
    RQ_IS_STR(text(APR_ENOENT), "No such file or directory", "an APR code: apr_strerror's");
    RQ_IS_STR(text(RQ_STORE_ERR_BASE + 99), apr_text, "an unknown code: apr_strerror's");
}

#define TEST_ERR_BASE (APR_OS_START_USERERR + 8000)

static void test_register(void)
{
    static const char *const texts[] = { "the first thing failed", "the second thing failed" };
    static const char *const again[] = { "the first, reworded" };
    char apr_text[256];

    apr_strerror(TEST_ERR_BASE + 1, apr_text, sizeof(apr_text));
    RQ_IS_STR(text(TEST_ERR_BASE + 1), apr_text, "not known before it is registered");
    RQ_IS_INT(rq_strerror_register(TEST_ERR_BASE, 2, texts), APR_SUCCESS, "register");
    RQ_IS_STR(text(TEST_ERR_BASE + 1), "the first thing failed", "first code");
    RQ_IS_STR(text(TEST_ERR_BASE + 2), "the second thing failed", "second code");
    apr_strerror(TEST_ERR_BASE + 3, apr_text, sizeof(apr_text));
    RQ_IS_STR(text(TEST_ERR_BASE + 3), apr_text, "past the table: apr_strerror's");
    apr_strerror(TEST_ERR_BASE, apr_text, sizeof(apr_text));
    RQ_IS_STR(text(TEST_ERR_BASE), apr_text, "the base itself is no code: apr_strerror's");
    RQ_IS_INT(rq_strerror_register(TEST_ERR_BASE, 1, again), APR_SUCCESS, "register again");
    RQ_IS_STR(text(TEST_ERR_BASE + 1), "the first, reworded", "the new table replaces it");
    RQ_IS_STR(text(RQ_STORE_EOPEN), "the store cannot be opened", "others are kept");
}

int main(void)
{
    apr_initialize();
    test_builtin();
    test_register();
    apr_terminate();
    return rq_tap_done();
}
