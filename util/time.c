/*
 * time.c: the monotonic clock every timeout and rate limit is measured on.
 * CLOCK_MONOTONIC never jumps with wall-clock changes (NTP steps, an
 * administrator's date), so timers stay correct across them.
 */
#define UTIL_LOG_TAG "time"
#include <time.h>

#include "util/util.h"

uint64_t util_now_ns(void)
{
	struct timespec ts;

	/* Cannot fail with a valid clock id and pointer (clock_gettime(2)). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
