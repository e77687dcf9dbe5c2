/* error.h — crun's contract: a function that can fail returns a negative
 * errno and, where a message helps, fills a struct wp_error; callers add
 * context on the way up with wp_error_prefix(); only the top level logs. */
#ifndef WARMPOOL_ERROR_H
#define WARMPOOL_ERROR_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct wp_error {
	int code; /* positive errno */
	char msg[512];
};

/* Fills err (when not NULL) and returns -code. `%m` is not usable here; pass
 * strerror(code) explicitly or use wp_error_errno(). */
__attribute__((format(printf, 3, 4))) static inline int wp_error_set(struct wp_error *err, int code, const char *fmt,
								     ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return -code;
}

/* Like wp_error_set with ": strerror(errno)" appended; returns -errno. */
#define wp_error_errno(err, ...)                                                                                       \
	({                                                                                                             \
		int e_ = errno ? errno : EIO;                                                                          \
		char m_[400];                                                                                          \
		snprintf(m_, sizeof(m_), __VA_ARGS__);                                                                 \
		wp_error_set((err), e_, "%s: %s", m_, strerror(e_));                                                   \
	})

__attribute__((format(printf, 2, 3))) static inline void wp_error_prefix(struct wp_error *err, const char *fmt, ...)
{
	char pre[256], old[sizeof(err->msg)];
	va_list ap;
	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", pre, old);
}

#endif
