/*
 * scsi_fuzz_env.h: part of scsi_fuzz_ut.c (included once, in order): the
 * PRNG, the engine around the LU (two sessions, a second target, the
 * services of struct tgt_scsi_ops), the command under test and the volume
 * whose completions run in random order with every write checked.
 */
/* ---- PRNG: splitmix64, reproducible from the seed ---- */

static uint64_t fz_state;

static uint64_t rnd64(void)
{
	uint64_t z = (fz_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static uint32_t rnd(uint32_t n)
{
	return (uint32_t)(rnd64() % n);
}

/* True with probability 1/n. */
static bool one_in(uint32_t n)
{
	return rnd(n) == 0;
}

static void rnd_fill(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd64();
}

/* ---- the engine around the LU: two sessions, a second target, the services ---- */

#define N0_NAME "iqn.2024-01.org.test:host0"
#define N1_NAME "iqn.2024-01.org.test:host1"

static struct tgt fz_engine;
static struct tgt_session fz_sess[2];
static struct tgt_conn fz_conn[2];
static struct tgt_itl *fz_itl[2] = {&fx_itl0, &fx_itl1};
static struct tgt_target fz_target2;
static struct vol fz_vol2;
static int fz_refs; /* target references taken and not yet put */
static util_msg_fn fz_tick_fn;
static void *fz_tick_arg;
static int fz_ticks;

static struct util_tick *fz_tick_add(struct util_reactor *r, util_msg_fn fn, void *arg)
{
	(void)r;
	CU_ASSERT(fz_ticks == 0); /* one sanitize at a time */
	fz_tick_fn = fn;
	fz_tick_arg = arg;
	fz_ticks++;
	return (struct util_tick *)&fz_tick_fn;
}

static void fz_tick_del(struct util_reactor *r, struct util_tick *t)
{
	(void)r;
	CU_ASSERT_PTR_EQUAL(t, (struct util_tick *)&fz_tick_fn);
	fz_tick_fn = NULL;
	fz_tick_arg = NULL;
	fz_ticks--;
}

static int fz_send(struct util_reactor *r, util_msg_fn fn, void *arg)
{
	return util_reactor_send(r, fn, arg);
}

static void fz_target_get(struct tgt_target *tg)
{
	atomic_fetch_add(&tg->refs, 1);
	fz_refs++;
}

static void fz_target_put(struct tgt_target *tg)
{
	CU_ASSERT(atomic_fetch_sub(&tg->refs, 1) > 1); /* never the last one here */
	fz_refs--;
}

static uint16_t fz_target_admit(const struct tgt_target *tg, const char *initiator)
{
	(void)initiator;
	return tg->redirect[0] != '\0' ? ISCSI_LS_TARGET_MOVED_TEMP : 0;
}

static void fz_conn_gone(struct tgt *t)
{
	atomic_fetch_sub(&t->nconns, 1);
}

static const struct tgt_scsi_ops fz_ops = {
    .tick_add = fz_tick_add,
    .tick_del = fz_tick_del,
    .send = fz_send,
    .target_get = fz_target_get,
    .target_put = fz_target_put,
    .target_admit = fz_target_admit,
    .conn_gone = fz_conn_gone,
};

/* ---- the command under test and what it may do ---- */

struct fz_cmd {
	uint8_t cdb[16];
	uint8_t *out; /* data-out as generated (NULL: none) */
	uint32_t out_len;
	uint32_t edtl;
	unsigned nexus;
	bool no_lu;    /* addressed to a LUN that does not exist */
	bool fault;    /* the volume fails every request of this command */
	int submit_rc; /* vol_submit() refuses requests with this, from step submit_at */
	int submit_at; /* (a volume out of resources half way through a command) */
	int abort_at;  /* the connection aborts the task at this drain step; -1: never */
	/* where its writes may land on fx_vol, in blocks: [wr_lo, wr_hi) */
	uint64_t wr_lo, wr_hi;
	bool wr_any; /* anywhere (SANITIZE, EXTENDED COPY, UNMAP) */
};

static struct fz_cmd fz_c;
/*
 * Now and then a second command runs concurrently with the first, on its
 * own task (the write gate, reservations and sanitize between the two).
 */
static bool fz_pair;
static struct fz_cmd fz_c2;
static struct tgt_task fz_t2;
static uint8_t *fz_buf2;
static unsigned fz_done2;
static unsigned fz_writes2;
static uint64_t fz_seed, fz_iter;
static bool fz_verbose;
static unsigned fz_fail_count; /* invariant violations reported */
static unsigned fz_writes;     /* write requests of the command that reached fx_vol */
static uint64_t fz_stat_status[256];
static uint64_t fz_stat_ops[256];
static uint64_t fz_stat_good[256];

/* The running sanitize job, if any (its tick's argument). */
static struct media_job *fz_job(void)
{
	return atomic_load(&fx_target.lu.sanitizing) ? fz_tick_arg : NULL;
}

static void fz_dump(void)
{
	fprintf(stderr,
		"  seed %" PRIu64 " command %" PRIu64
		" nexus %u edtl %u fault %d submit %d@%d abort@%d job %d cdb",
		fz_seed, fz_iter, fz_c.nexus, fz_c.edtl, fz_c.fault, fz_c.submit_rc, fz_c.submit_at,
		fz_c.abort_at, fz_job() != NULL);
	for (unsigned i = 0; i < 16; i++)
		fprintf(stderr, " %02x", fz_c.cdb[i]);
	fprintf(stderr, "\n  data-out (%u):", fz_c.out_len);
	for (uint32_t i = 0; i < fz_c.out_len && i < 96; i++)
		fprintf(stderr, " %02x", fz_c.out[i]);
	fprintf(stderr, "%s\n  status %02x sense_len %u xfer_len %u data_len %u dir %d\n",
		fz_c.out_len > 96 ? " ..." : "", fx_t.status, fx_t.sense_len, fx_t.xfer_len,
		fx_t.data_len, fx_t.dir);
	if (!fz_pair)
		return;
	fprintf(stderr, "  concurrent with: nexus %u edtl %u cdb", fz_c2.nexus, fz_c2.edtl);
	for (unsigned i = 0; i < 16; i++)
		fprintf(stderr, " %02x", fz_c2.cdb[i]);
	fprintf(stderr, " data-out %u bytes; status %02x\n", fz_c2.out_len, fz_t2.status);
}

/* An invariant: on violation say which command of which seed, at most a few times. */
#define FZ_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			CU_FAIL(#cond);                                                            \
			if (fz_fail_count++ < 20) {                                                \
				fprintf(stderr, "\nscsi_fuzz: invariant failed: %s (line %d)\n",   \
					#cond, __LINE__);                                          \
				fz_dump();                                                         \
			}                                                                          \
		}                                                                                  \
	} while (0)

/* ---- the volume: random completion order, every write checked ---- */

static void fz_check_io(const struct vol_io *io)
{
	struct media_job *j = fz_job();
	uint64_t lo = io->offset / FX_BS, hi = (io->offset + io->len) / FX_BS;
	bool second = fz_pair && io == &fz_t2.io;
	const struct fz_cmd *c = second ? &fz_c2 : &fz_c;
	struct tgt_task *owner = second ? &fz_t2 : (io == &fx_t.io ? &fx_t : NULL);
	struct tgt_task *other = second ? &fx_t : (fz_pair ? &fz_t2 : NULL);

	if (io->vol != &fx_vol ||
	    (io->op != VOL_OP_WRITE && io->op != VOL_OP_UNMAP && io->op != VOL_OP_WRITE_ZEROES))
		return;
	if (j != NULL && io == &j->io)
		return; /* the sanitize job writes everything */
	if (second)
		fz_writes2++;
	else
		fz_writes++;
	/*
	 * The write gate (scsi_caw.c): every write to the LU is admitted by it,
	 * and none lands while an atomic command (COMPARE AND WRITE, ORWRITE,
	 * WRITE ATOMIC, SANITIZE) of another task holds the LU.
	 */
	if (owner != NULL) {
		FZ_CHECK(owner->gate == GATE_WRITE || owner->gate == GATE_EXCL);
		FZ_CHECK(other == NULL || other->gate != GATE_EXCL);
		FZ_CHECK(j == NULL || j->gate.gate != GATE_EXCL);
	}
	if (c->wr_any || io->len == 0)
		return;
	FZ_CHECK(lo >= c->wr_lo && hi <= c->wr_hi);
}

/* One queued request, picked at random: a volume completes out of order. */
static void fz_step_one(void)
{
	unsigned i = one_in(2) ? 0 : rnd(fx_npending);
	struct vol_io *io = fx_pending[i];

	memmove(fx_pending + 1, fx_pending, i * sizeof(fx_pending[0]));
	fx_pending[0] = io;
	fz_check_io(io);
	fx_step();
}

/*
 * Run the volume, the messages and the sanitize tick until the command is
 * answered and nothing of it is left in flight. A background sanitize may
 * be left running (its request pending) for the next commands to meet.
 */
static void fz_drain(bool keep_job)
{
	unsigned guard = 0;

	for (;;) {
		CU_ASSERT_FATAL(++guard < 1000000);
		if (keep_job) {
			/* the faults of this command, at their step */
			if (fz_c.submit_rc != 0 && (int)guard > fz_c.submit_at)
				fx_submit_rc = fz_c.submit_rc;
			if ((int)guard == fz_c.abort_at + 1 && fx_done == 0)
				fx_t.flags |= TASK_F_ABORTED;
		}
		if (keep_job && fx_done > 0 && (!fz_pair || fz_done2 > 0) && fx_nmsgs == 0 &&
		    fz_job() != NULL && !one_in(4))
			return;
		if (fx_npending > 0 && (fx_nmsgs == 0 || one_in(2))) {
			fz_step_one();
		} else if (fx_nmsgs > 0) {
			util_msg_fn fn = fx_msg_fn[0];
			void *arg = fx_msg_arg[0];

			fx_nmsgs--;
			memmove(fx_msg_fn, fx_msg_fn + 1, fx_nmsgs * sizeof(fx_msg_fn[0]));
			memmove(fx_msg_arg, fx_msg_arg + 1, fx_nmsgs * sizeof(fx_msg_arg[0]));
			fn(arg);
		} else if (fz_tick_fn != NULL) {
			fz_tick_fn(fz_tick_arg); /* a paced sanitize resumes from its tick */
		} else {
			return;
		}
	}
}
