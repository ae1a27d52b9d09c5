/*
 * log.c: process-wide logging setup over libqb's qb_log.
 *
 * Every file logs through the log_* macros of util.h, which prefix the line
 * with the file's subsystem tag; this file only chooses the targets: stderr
 * always (so systemd's journal and a terminal both see it), syslog when the
 * configuration asks for it, and never the blackbox (an in-memory ring that
 * would cost a copy of every message for a post-mortem we do not read).
 */
#define UTIL_LOG_TAG "log"
#include "util/util.h"

void util_log_init(const char *ident, bool debug, bool syslog)
{
	int level = debug ? LOG_DEBUG : LOG_INFO;

	/* qb_log_init() enables the syslog target at LOG_INFO by default; the
	 * calls below set each target's state explicitly. */
	qb_log_init(ident, LOG_DAEMON, LOG_INFO);
	qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_FALSE);

	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_CLEAR_ALL, QB_LOG_FILTER_FILE, "*", 0);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", level);
	/* %T: time with milliseconds, %p: priority name, %b: the message. */
	qb_log_format_set(QB_LOG_STDERR, "%T %-7p %b");
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);

	qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_CLEAR_ALL, QB_LOG_FILTER_FILE, "*", 0);
	if (syslog) {
		qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", level);
		/* syslog stamps time and priority itself. */
		qb_log_format_set(QB_LOG_SYSLOG, "%b");
	}
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, syslog ? QB_TRUE : QB_FALSE);

	log_debug("logging to stderr%s at %s level", syslog ? " and syslog" : "",
		  debug ? "debug" : "info");
}

void util_log_fini(void)
{
	qb_log_fini();
}
