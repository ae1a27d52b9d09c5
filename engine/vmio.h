/*
 * vmio: load generator and data verifier over iscsi-init. Shared by
 * engine/vmio.c (command line, connection), vmio_bench.c and vmio_verify.c.
 * vmio runs one reactor on its main thread: everything is single-threaded.
 */
#ifndef VMENGINE_VMIO_H
#define VMENGINE_VMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi-init/ini.h"
#include "util/util.h"

/* Exit codes: 0 success, 1 failure (I/O error, data mismatch), 2 usage. */
#define VMIO_EXIT_FAIL	1
#define VMIO_EXIT_USAGE 2

struct vmio {
	struct util_reactor *r;
	struct ini_session *s;
	struct ini_config cfg;
	uint64_t lun;
	uint32_t block_size;
	uint64_t blocks;
	bool reconnect;
	bool json;
	int rc; /* result of the last vmio_wait() */
	bool done;
	/* I/O pause tracking: the longest gap between two completions. */
	uint64_t last_done_ns;
	uint64_t max_pause_ns;
};

/* Parse a size with an optional k/m/g/t suffix (powers of 1024). -EINVAL on junk. */
int vmio_parse_size(const char *s, uint64_t *out);
/* Seconds with an optional s/m suffix into milliseconds. */
int vmio_parse_time(const char *s, uint64_t *ms);

/* Log in to \p url (running the reactor until done). 0 or -errno, logged. */
int vmio_connect(struct vmio *v, const char *url);
void vmio_close(struct vmio *v);
/* Run the reactor until vmio_finish() is called; returns v->rc. */
int vmio_run(struct vmio *v);
void vmio_finish(struct vmio *v, int rc);
/* Record a completion for the pause statistics. */
void vmio_note_completion(struct vmio *v, uint64_t now_ns);

int vmio_bench_main(struct vmio *v, int argc, char **argv);
int vmio_verify_main(struct vmio *v, int argc, char **argv);

/* Latency histogram, log-linear (32 buckets per power of two, ~3%). */
#define VMIO_HIST_BUCKETS (64 * 32)
struct vmio_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t b[VMIO_HIST_BUCKETS];
};
void vmio_hist_add(struct vmio_hist *h, uint64_t ns);
/* The latency at fraction \p q (0..1), in nanoseconds. */
uint64_t vmio_hist_quantile(const struct vmio_hist *h, double q);

#endif /* VMENGINE_VMIO_H */
