/*
 * vmctl_virt.h: vmctl's back-end and virtualized-volume commands
 * (engine/vmctl_virt.c), kept apart from vmctl.c's core.
 */
#ifndef VMENGINE_VMCTL_VIRT_H
#define VMENGINE_VMCTL_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/*
 * An option of these commands at argv[*i] (--mirror N, --extent SIZE,
 * --lun N, --chap USER): consumed into \p rq (and *i advanced) -> 1; not
 * one of them -> 0; a bad value -> -1 (message printed).
 */
int vmctl_virt_option(char **argv, int argc, int *i, Vm__CtlRequest *rq);
/*
 * "backend add|list|remove": fill \p rq. Returns 0, 2 (usage), or -1 (not a
 * backend command). The CHAP secret, when --chap was given, is read from
 * stdin into \p secret.
 */
int vmctl_virt_command(char **args, int nargs, Vm__CtlRequest *rq, char *secret, size_t len);
/*
 * Print what only these commands return; true when it printed. `backend
 * list`: per back end its size, free space (the map's free extents), this
 * engine's state (STATE) and every member's (ENGINES, e.g. "n1:up n3:FAILED").
 */
bool vmctl_virt_print(const Vm__CtlRequest *rq, const Vm__CtlReply *rep, bool json);
/*
 * `volume show`: the legs of a virtualized volume and its resync progress
 * (with "ETA N s" when \p eta_s >= 0).
 */
void vmctl_virt_print_legs(const Vm__CtlReply *rep, bool json, int64_t eta_s);

/* ---- `volume show --watch` ---- */

/*
 * Format "[#####.....] 48% 123/256 regions, ETA 4 s" into \p buf: a bar of
 * \p width cells, the percentage rounded down, and ", ETA N s" only when
 * \p eta_s >= 0. A total of 0 is 100 %. Pure. Returns the length written
 * (truncated to \p len - 1; 0 and "" when \p len cannot hold the bar).
 */
size_t vmctl_progress_bar(char *buf, size_t len, uint64_t done, uint64_t total, int64_t eta_s,
			  unsigned width);
/*
 * Seconds left (rounded up) at the average rate between two samples
 * (\p done0 regions at \p t0_ms, \p done1 at \p t1_ms); 0 when done;
 * -1 when no progress was seen between them. Pure.
 */
int64_t vmctl_eta_s(uint64_t done0, uint64_t t0_ms, uint64_t done1, uint64_t t1_ms, uint64_t total);

/* What a watch remembers between two replies, for the ETA. Zero it to start. */
struct vmctl_watch {
	bool have_first; /* done0/t0_ms: the first sample of the running resync */
	uint64_t done0, t0_ms, total;
	int64_t eta_s; /* of the latest sample; -1: unknown */
};
/*
 * True while a resync runs: the owner's live state when the reply has it
 * (asked on the owner), or a leg the map records in resync.
 */
bool vmctl_virt_resyncing(const Vm__CtlReply *rep);
/* Take one `volume show` reply received at \p now_ms (monotonic) into \p w. */
void vmctl_virt_watch_sample(struct vmctl_watch *w, const Vm__CtlReply *rep, uint64_t now_ms);
/* One line (or one JSON object) for a non-terminal: the progress, or "no resync running". */
void vmctl_virt_watch_line(const Vm__CtlReply *rep, const struct vmctl_watch *w, bool json);

#endif /* VMENGINE_VMCTL_VIRT_H */
