/* log.h — one line per event on stderr, for operators and journald.
 *
 *   2026-11-22T03:57:21.123Z info  sandboxd: slot 3f2a ready (python, 12 ms)
 *
 * Levels: debug < info < warn < error. Only the top level of a failure logs;
 * lower layers return -errno and fill a struct wp_error (see error.h). */
#ifndef WARMPOOL_LOG_H
#define WARMPOOL_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_init(const char *program, enum log_level level);
int log_parse_level(const char *s, enum log_level *out);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                                                                                 \
	do {                                                                                                           \
		if (log_get_level() <= LOG_DEBUG)                                                                      \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                                               \
	} while (0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
