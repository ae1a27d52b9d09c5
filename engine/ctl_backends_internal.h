/*
 * ctl_backends_internal.h: what ctl_backends.c (the map's back ends, this
 * engine's logins to them) and ctl_vvols.c (the virtualized volumes this
 * engine owns, built on those back ends) share. Nothing else includes it.
 *
 * Threads: everything here runs on the control thread (the qb main loop),
 * except eng_be_post(), which the back ends' reactor calls; the fields of
 * struct be and struct eng_backends are the control thread's, except those
 * marked "reactor".
 */
#ifndef VMENGINE_CTL_BACKENDS_INTERNAL_H
#define VMENGINE_CTL_BACKENDS_INTERNAL_H

#include <qb/qbloop.h>

#include "cluster/cluster.h"
#include "engine/engine.h"

enum be_state { BE_OPENING, BE_UP, BE_FAILED };

struct be {
	LIST_ENTRY(be) link;
	struct clu_backend cfg;
	struct vol_backend *be; /* set on the reactor */
	enum be_state state;	/* the control thread's view */
	bool logged_in_once;	/* size and block size known: volumes can use it */
	uint64_t size;		/* bytes, as the last login found it (control thread) */
	bool busy;		/* a login or reopen runs */
	bool gone;		/* removed from the map: closes once idle */
	struct eng_backends *eb;
};

struct vvol; /* ctl_vvols.c */

/* What the reactor reports; one mailbox record (posted whole, by value). */
enum ev_kind { EV_OPENED, EV_LEG, EV_RESYNC_DONE, EV_PROBED };
struct ev {
	enum ev_kind kind;
	void *obj;
	int rc;
	unsigned leg;
	enum vol_leg_state st;
};

struct eng_backends {
	qb_loop_t *loop;
	struct util_reactor *r;
	struct clu *clu;
	void (*changed)(void *arg);
	void *changed_arg;
	struct vol_chan *ch; /* the reactor's, for the resync */
	LIST_HEAD(, be) bes;
	LIST_HEAD(, vvol) vvols;
	qb_loop_timer_handle timer;
	struct util_mailbox *mb;   /* events from the reactor */
	struct eng_intent *intent; /* write intent messages to the cluster */
	uint64_t joins_seen;	   /* clu_regions_joins() when FULLs were last sent */
	uint32_t nodeid;	   /* for this engine's reservation key */
	bool was_fenced;	   /* fenced at the last tick: register again when not */
};

/* ---- ctl_backends.c ---- */

/* Report an event to the control thread: the reactor's side. */
void eng_be_post(struct eng_backends *eb, enum ev_kind kind, void *obj, int rc, unsigned leg,
		 enum vol_leg_state st);
/* The back end \p id of the map that is not going away, or NULL. */
struct be *eng_be_find(struct eng_backends *eb, uint32_t id);

/* ---- ctl_vvols.c: the volumes' share of ctl_backends.c's events and ticks ---- */

/* EV_LEG: leg \p leg of \p vv became \p st (the owner records it in the map). */
void eng_vv_leg_event(struct eng_backends *eb, struct vvol *vv, unsigned leg,
		      enum vol_leg_state st);
/* EV_RESYNC_DONE: the resync copy of \p vv ended with \p rc. */
void eng_vv_resync_done(struct vvol *vv, int rc);
/* Each second, before the back ends' logins: write intent ticks, pending closes. */
void eng_vv_tick_intent(struct eng_backends *eb);
/* Each second, after the back ends' logins: resync legs whose back ends are back. */
void eng_vv_tick_resync(struct eng_backends *eb);
/* After the back ends followed map \p m: legs it says failed, FULLs after a join. */
void eng_vv_map_changed(struct eng_backends *eb, const struct clu_map *m);
/* At shutdown (reactors stopped): free every volume record, without closing. */
void eng_vv_destroy_all(struct eng_backends *eb);

#endif /* VMENGINE_CTL_BACKENDS_INTERNAL_H */
