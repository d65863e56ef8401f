/* log.h - leveled logging to stderr.
 *
 * One line per message: "autodata: <level>: <text>". Every registered secret value
 * (util/secret.h) is masked before the line is written.
 * Not thread-safe beyond what stdio gives (whole lines are written with one call).
 */
#ifndef AD_LOG_H
#define AD_LOG_H

#include "util/err.h"

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
void log_msg(enum log_level lvl, const char *fmt, ...) AD_PRINTF(2, 3);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
