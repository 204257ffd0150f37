/* The one message formatter. Every failure is a status plus a message: in the context (gf_fail,
 * gf_internal.h), or, for code that runs without a context (datasets, the model loader, reports, the
 * CLI before a context exists), in the caller's `char *err, size_t err_size` buffer (gf_fail_msg). Both,
 * and the log and progress lines, are formatted here. No OpenCL: the data layer uses it too. */
#ifndef GF_MSG_H
#define GF_MSG_H
#include <stdarg.h>
#include <stddef.h>
#include "gradfeat.h"

#if defined(__GNUC__)
#define GF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GF_PRINTF(a, b)
#endif

/* printf into buf[n] (truncated, always terminated); nothing when buf is NULL or n is 0. */
void gf_vformat(char *buf, size_t n, const char *fmt, va_list ap);
void gf_format(char *buf, size_t n, const char *fmt, ...) GF_PRINTF(3, 4);
/* gf_format into err[err_size] (either may be NULL/0), then return st. */
gf_status gf_fail_msg(char *err, size_t err_size, gf_status st, const char *fmt, ...) GF_PRINTF(4, 5);

#endif
