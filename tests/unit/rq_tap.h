/* Minimal TAP producer for the C unit tests of lib/, read by prove. */
#ifndef RQ_TAP_H
#define RQ_TAP_H

#include <stdio.h>
#include <string.h>

static int rq_tap_n;
static int rq_tap_failed;

#define RQ_OK(cond, ...) rq_tap_ok((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

#define RQ_IS_STR(got, want, ...)                                                          \
    rq_tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

#define RQ_IS_INT(got, want, ...)                                                          \
    rq_tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)

static void rq_tap_ok(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#include <stdarg.h>

static void rq_tap_vok(int ok, const char *file, int line, const char *fmt, va_list ap)
{
    rq_tap_n++;
    printf("%s %d - ", ok ? "ok" : "not ok", rq_tap_n);
    vprintf(fmt, ap);
    printf("\n");
    if (!ok) {
        rq_tap_failed++;
        printf("#   failed at %s line %d\n", file, line);
    }
    fflush(stdout);
}

static void rq_tap_ok(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rq_tap_vok(ok, file, line, fmt, ap);
    va_end(ap);
}

static void rq_tap_is_str(const char *got, const char *want, const char *file, int line,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void rq_tap_is_str(const char *got, const char *want, const char *file, int line,
                          const char *fmt, ...)
{
    va_list ap;
    int ok = (got == NULL && want == NULL) || (got && want && strcmp(got, want) == 0);

    va_start(ap, fmt);
    rq_tap_vok(ok, file, line, fmt, ap);
    va_end(ap);
    if (!ok) {
        printf("#          got: '%s'\n#     expected: '%s'\n", got ? got : "(null)",
               want ? want : "(null)");
    }
}

static void rq_tap_is_int(long long got, long long want, const char *file, int line,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void rq_tap_is_int(long long got, long long want, const char *file, int line,
                          const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rq_tap_vok(got == want, file, line, fmt, ap);
    va_end(ap);
    if (got != want) {
        printf("#          got: %lld\n#     expected: %lld\n", got, want);
    }
}

/* Prints the plan at the end; returns the exit status for main(). */
static int rq_tap_done(void)
{
    printf("1..%d\n", rq_tap_n);
    return rq_tap_failed ? 1 : 0;
}

#endif
