/* timeu.h - clocks. Monotonic time for timeouts and rates; wall time only for logs. */
#ifndef AD_TIMEU_H
#define AD_TIMEU_H

#include <stdint.h>

/* Monotonic milliseconds / microseconds since an arbitrary origin. */
int64_t time_now_ms(void);
int64_t time_now_us(void);
/* Process CPU time (user + system) in microseconds. */
int64_t time_cpu_us(void);
/* Wall clock as seconds since the epoch. */
double time_wall(void);

#endif
