/*
 * scsi_fuzz_ut.c: an in-process fuzzer of the SCSI device server (every
 * scsi_*.c). A seeded PRNG builds CDBs for every opcode of the command
 * table (and some that are not in it) that are mostly valid and then
 * mutated: service actions, allocation and parameter list lengths, LBAs
 * near 0, the capacity and 2^64, transfer lengths, flag bits, the CONTROL
 * byte, the ExpectedDataTransferLength. The parameter-list commands (MODE
 * SELECT, PERSISTENT RESERVE OUT, UNMAP, EXTENDED COPY, COMPARE AND WRITE,
 * WRITE SAME, SANITIZE, VERIFY with BYTCHK, ...) get lists built from valid
 * templates and then mutated. Commands alternate between two nexuses, so
 * reservations, unit attentions, held copy results and a background
 * SANITIZE interact; now and then two commands run concurrently (the write
 * gate); volume completions run in random order; the volume fails, refuses
 * requests, or is resized; tasks are aborted; the APTPL state is reloaded
 * (and damaged on disk) as after a power cycle.
 *
 * After every command the invariants that must always hold are checked:
 * the status is one a device server may return, the task completed once,
 * data_len fits the allocation length and the buffer, the sense data is
 * well-formed, scratch buffers, target references and the write gate are
 * given back, and every write that reaches the volume lies where the
 * command may write, admitted by the write gate (and none comes from a
 * command refused for its CDB or parameter list), a GOOD READ returns the
 * medium, and reservations reload exactly as persisted. Any violation
 * prints the seed and the command number. Environment: SCSI_FUZZ_SEED
 * (first seed, 1), SCSI_FUZZ_SEEDS (how many, 4), SCSI_FUZZ_ITERS (commands
 * per seed, 40000), SCSI_FUZZ_VERBOSE=1 prints each command,
 * SCSI_FUZZ_STATS=1 the statuses and opcodes run. Runs under ASan + UBSan
 * like every unit test.
 *
 * The regression checks of what the fuzzer found are deterministic tests
 * at the end.
 */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "scsi_fixture_ext.h"
/* scsi_pr*.c log under their own tag */
#undef UTIL_LOG_TAG
#include "iscsi-tgt/scsi_pr.c"
#include "iscsi-tgt/scsi_pr_store.c"
#undef UTIL_LOG_TAG
#include "iscsi-tgt/scsi_xcopy.c"

#define FZ_SEEDS_DEFAULT 4
#define FZ_ITERS_DEFAULT 40000 /* per seed: ~160k commands for `make unit` */
#define FZ_RESET_EVERY	 3000  /* fresh LU state now and then, so no state sticks */
#define FZ_CAP		 ((uint64_t)FX_BLOCKS)
/* No buffer of ours is larger: READ/WRITE stop at max_xfer_blocks, lists are short. */
#define FZ_XFER_MAX (1u << 20)

#include "scsi_fuzz_env.h"
#include "scsi_fuzz_gen.h"

/* ---- one command through prepare / execute, and the invariants ---- */

static bool fz_status_ok(uint8_t s)
{
	return s == SAM_STAT_GOOD || s == SAM_STAT_CHECK_CONDITION ||
	       s == SAM_STAT_RESERVATION_CONFLICT || s == SAM_STAT_BUSY ||
	       s == SAM_STAT_TASK_SET_FULL || s == SAM_STAT_CONDITION_MET;
}

static void fz_check_sense(const struct tgt_task *t, const struct fz_cmd *c)
{
	uint8_t code = t->sense[0] & 0x7f, key;

	if (t->status != SAM_STAT_CHECK_CONDITION) {
		FZ_CHECK(t->sense_len == 0);
		return;
	}
	FZ_CHECK(t->sense_len >= 8 && t->sense_len <= TGT_SENSE_MAX);
	FZ_CHECK(code == 0x70 || code == 0x72);
	FZ_CHECK(t->sense_len == 8u + t->sense[7]);
	key = code == 0x72 ? t->sense[1] & 0x0f : t->sense[2] & 0x0f;
	FZ_CHECK(key != SK_NO_SENSE);
	/* without an injected volume fault nothing is a device error */
	if (!c->fault && c->submit_rc == 0 && !fz_c.fault && fz_c.submit_rc == 0)
		FZ_CHECK(key != SK_HARDWARE_ERROR && key != SK_MEDIUM_ERROR);
}

/* Prepare \p t for \p c and give it the connection's buffer; returns prepare's result. */
static int fz_start(struct tgt_task *t, const struct fz_cmd *c, uint8_t **buf)
{
	int rc;

	free(*buf);
	*buf = NULL;
	memset(t, 0, sizeof(*t));
	t->target = &fx_target;
	t->conn = &fz_conn[c->nexus];
	if (!c->no_lu) {
		t->lu = &fx_target.lu;
		t->itl = fz_itl[c->nexus];
	}
	t->lun = c->no_lu ? 5 : 0;
	memcpy(t->cdb, c->cdb, 16);
	t->cdb_len = 16;
	t->exp_xfer_len = c->edtl;
	t->pdu_write = c->out_len > 0;
	t->pdu_read = !t->pdu_write;
	rc = tgt_scsi_prepare(t);
	FZ_CHECK(rc == 0 || rc == 1);
	if (rc == 1) {
		FZ_CHECK(t->data_len == 0);
	} else {
		uint32_t len = t->xfer_len;

		FZ_CHECK(t->cmd != NULL);
		/* The connection's buffer: exactly the transfer, as a pool may give. */
		if (len > FZ_XFER_MAX) {
			FZ_CHECK(len <= FZ_XFER_MAX); /* a length from the CDB not capped */
			len = 0;
			t->xfer_len = 0;
		}
		*buf = malloc(len ? len : 1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(*buf);
		if (t->dir == TGT_DIR_OUT) {
			uint32_t k = UTIL_MIN(len, c->out_len);

			memcpy(*buf, c->out, k);
			rnd_fill(*buf + k, UTIL_MIN(len - k, 256u));
			if (len - k > 256)
				memset(*buf + k + 256, 0xa5, len - k - 256);
		} else {
			memset(*buf, 0xee, len);
		}
		t->buf = *buf;
		t->buf_len = len;
	}
	return rc;
}

/* What must hold of a task once it is answered. */
static void fz_check_task(const struct tgt_task *t, const struct fz_cmd *c, int rc, unsigned done,
			  unsigned writes, const uint8_t *buf)
{
	uint8_t op = c->cdb[0];

	fz_stat_status[t->status]++;
	if (t->status == SAM_STAT_GOOD)
		fz_stat_good[op]++;
	FZ_CHECK(fz_status_ok(t->status));
	FZ_CHECK(done == (rc == 0 ? 1u : 0u));
	FZ_CHECK(t->data_len <= t->xfer_len);
	FZ_CHECK(t->data_len <= t->buf_len || rc == 1);
	/* never more data-in than the ALLOCATION LENGTH of the CDB (SPC-4 4.2.5.6) */
	if (rc == 0 && t->cmd != NULL && t->cmd->len_size != 0 && t->dir == TGT_DIR_IN) {
		const uint8_t *f = c->cdb + t->cmd->len_off;
		uint32_t alloc = t->cmd->len_size == 1	 ? f[0]
				 : t->cmd->len_size == 2 ? get_be16(f)
							 : get_be32(f);

		FZ_CHECK(t->data_len <= alloc);
	}
	FZ_CHECK(t->dir == TGT_DIR_IN || t->data_len == 0);
	FZ_CHECK(t->gate == 0);
	fz_check_sense(t, c);
	/*
	 * A command refused before it starts writes nothing (a volume fault may
	 * stop one half way, with DATA PROTECT for ENOSPC: not a refusal).
	 */
	if (writes != 0 && op != SCSI_OP_EXTENDED_COPY && fz_c.submit_rc == 0 && !fz_c.fault) {
		bool refused = t->status == SAM_STAT_RESERVATION_CONFLICT || rc == 1;

		if (t->status == SAM_STAT_CHECK_CONDITION) {
			uint8_t key =
			    (t->sense[0] & 0x7f) == 0x72 ? t->sense[1] & 0x0f : t->sense[2] & 0x0f;

			/*
			 * MISCOMPARE: COMPARE AND WRITE writes nothing then; WRITE
			 * AND VERIFY compares after its write (and a concurrent
			 * overlapping write may change what it reads back).
			 */
			refused = refused || key == SK_ILLEGAL_REQUEST || key == SK_NOT_READY ||
				  key == SK_UNIT_ATTENTION || key == SK_DATA_PROTECT ||
				  (key == SK_MISCOMPARE && op == SCSI_OP_COMPARE_AND_WRITE);
		}
		FZ_CHECK(!refused);
	}
	/* a GOOD read returns the medium (alone: a concurrent write may change it) */
	if (!fz_pair && t->status == SAM_STAT_GOOD && t->dir == TGT_DIR_IN && t->data_len > 0 &&
	    (op == SCSI_OP_READ_6 || op == SCSI_OP_READ_10 || op == SCSI_OP_READ_12 ||
	     op == SCSI_OP_READ_16)) {
		uint64_t lba = t->lba;

		FZ_CHECK(t->data_len == t->xfer_len);
		FZ_CHECK(lba < FZ_CAP && t->data_len <= fx_vol.size - lba * FX_BS &&
			 memcmp(buf, fx_vol.data + lba * FX_BS, t->data_len) == 0);
	}
}

static void fz_done_hook(struct tgt_task *t)
{
	FZ_CHECK(fz_pair && t == &fz_t2);
	fz_done2++;
}

static void fz_one(void)
{
	int rc, rc2 = 1;

	/* the concurrent command first, so the generator's fz_c ends up the main one */
	free(fz_c2.out);
	fz_c2.out = NULL;
	fz_pair = one_in(6);
	if (fz_pair) {
		fz_build();
		fz_c2 = fz_c;
		fz_c2.fault = false; /* one command's faults apply to the volume as a whole */
		fz_c2.submit_rc = 0;
		fz_c2.abort_at = -1;
		fz_c.out = NULL;
		fz_stat_ops[fz_c2.cdb[0]]++;
	}
	fz_build();
	fz_stat_ops[fz_c.cdb[0]]++;
	fx_done = 0;
	fz_done2 = 0;
	fz_writes = 0;
	fz_writes2 = 0;
	fx_status = fz_c.fault ? -EIO : 0;
	if (fz_verbose)
		fz_dump();

	rc = fz_start(&fx_t, &fz_c, &fx_buf);
	if (fz_pair)
		rc2 = fz_start(&fz_t2, &fz_c2, &fz_buf2);
	if (fz_c.submit_rc != 0 && fz_c.submit_at == 0)
		fx_submit_rc = fz_c.submit_rc;
	FZ_CHECK(fx_done == 0 && fz_done2 == 0); /* prepare never completes a task */
	if (rc == 0)
		tgt_scsi_execute(&fx_t);
	/* the second runs before, between or after the first's requests */
	if (fz_pair && rc2 == 0 && (one_in(2) || fx_npending == 0))
		tgt_scsi_execute(&fz_t2), rc2 = 2;
	if (fz_pair && rc2 == 0) {
		fz_step_one();
		tgt_scsi_execute(&fz_t2);
		rc2 = 2;
	}
	fz_drain(true);
	fx_status = 0;
	fx_submit_rc = 0;

	fz_check_task(&fx_t, &fz_c, rc, fx_done, fz_writes, fx_buf);
	if (fz_pair)
		fz_check_task(&fz_t2, &fz_c2, rc2 == 2 ? 0 : rc2, fz_done2, fz_writes2, fz_buf2);
	if (fz_job() == NULL) {
		FZ_CHECK(fx_bufs_out == 0);
		FZ_CHECK(fz_refs == 0);
		FZ_CHECK(fx_npending == 0);
		FZ_CHECK(fz_ticks == 0);
		FZ_CHECK(atomic_load(&fx_target.lu.gate_writes) == 0);
		FZ_CHECK(atomic_load(&fx_target.lu.gate_excl) == 0);
	}
	fz_pair = false;
}

/* ---- APTPL: what survives a power cycle is what was persisted ---- */

static char fz_dir[64];

/* Does registration \p a equal \p b? */
static bool fz_same_nexus(const struct pr_nexus *a, const struct pr_nexus *b)
{
	return strcmp(a->name, b->name) == 0 && a->any_isid == b->any_isid &&
	       (a->any_isid || memcmp(a->isid, b->isid, 6) == 0);
}

/*
 * A state file damaged on disk (bytes flipped, lines cut or added) loads
 * as a consistent state or none: never more registrations than fit, never
 * a reservation whose holder is not registered.
 */
static void fz_corrupt_state(const char *path)
{
	static const char *lines[] = {"reg 00000000000000aa 1 * iqn.x\n", "resv 9 * -\n",
				      "resv 1 800000000001 iqn.nobody\n", "generation -1\n",
				      "reg zz 1 800000000001 %0\n",	  "vmengine-pr 1\n"};
	char *text = NULL, buf[8192];
	size_t len;
	const struct tgt_pr *pr;

	if (tgt_pr_store_load(path, &text) != 0)
		return;
	len = UTIL_MIN(strlen(text), sizeof(buf) - 200);
	memcpy(buf, text, len);
	free(text);
	for (unsigned k = 1 + rnd(3); k > 0; k--) {
		size_t at = len ? rnd((uint32_t)len) : 0;

		switch (rnd(3)) {
		case 0:
			if (len > 0)
				buf[at] = one_in(2) ? (char)rnd64() : "\n %0*"[rnd(5)];
			break;
		case 1:
			len = at;
			break;
		default: {
			const char *l = lines[rnd(UTIL_ARRAY_SIZE(lines))];

			if (len + strlen(l) < sizeof(buf)) {
				memcpy(buf + len, l, strlen(l));
				len += strlen(l);
			}
			break;
		}
		}
	}
	CU_ASSERT_EQUAL(tgt_pr_store_save(path, buf, len), 0);
	tgt_pr_lu_free(&fx_target.lu);
	CU_ASSERT_EQUAL_FATAL(tgt_pr_lu_load(&fx_target.lu, fx_cfg.state_dir), 0);
	pr = fx_target.lu.pr;
	FZ_CHECK(pr->nregs <= PR_MAX_REGS);
	FZ_CHECK(!pr->reserved || pr_all_registrants(pr->type) ||
		 pr_find((struct tgt_pr *)pr, &pr->holder) >= 0);
	FZ_CHECK(!pr->reserved || pr_type_valid(pr->type));
}

/*
 * Power-cycle the LU's reservation state: free it and load it from the
 * state directory. With APTPL the registrations and the reservation come
 * back exactly; without, nothing does.
 */
static void fz_power_cycle(void)
{
	struct tgt_pr before;
	const struct tgt_pr *after;
	bool had;

	if (fx_target.lu.pr == NULL)
		return;
	before = *fx_target.lu.pr;
	had = before.aptpl && before.path[0] != '\0';
	if (had && one_in(4)) {
		fz_corrupt_state(before.path);
		return;
	}
	tgt_pr_lu_free(&fx_target.lu);
	CU_ASSERT_EQUAL_FATAL(tgt_pr_lu_load(&fx_target.lu, fx_cfg.state_dir), 0);
	after = fx_target.lu.pr;
	if (!had) {
		FZ_CHECK(after->nregs == 0 && !after->reserved);
		return;
	}
	FZ_CHECK(after->nregs == before.nregs);
	for (unsigned i = 0; i < UTIL_MIN(after->nregs, before.nregs); i++)
		if (!fz_same_nexus(&after->regs[i].n, &before.regs[i].n) && fz_fail_count < 20)
			fprintf(stderr, "  registration %u: [%s] %d became [%s] %d\n", i,
				before.regs[i].n.name, before.regs[i].n.any_isid,
				after->regs[i].n.name, after->regs[i].n.any_isid);
	for (unsigned i = 0; i < UTIL_MIN(after->nregs, before.nregs); i++)
		FZ_CHECK(fz_same_nexus(&after->regs[i].n, &before.regs[i].n) &&
			 after->regs[i].key == before.regs[i].key &&
			 after->regs[i].all_tg_pt == before.regs[i].all_tg_pt);
	FZ_CHECK(after->reserved == before.reserved);
	if (after->reserved && before.reserved) {
		FZ_CHECK(after->type == before.type);
		FZ_CHECK(pr_all_registrants(before.type) ||
			 fz_same_nexus(&after->holder, &before.holder));
	}
}

static void fz_dir_clean(void)
{
	char path[TGT_PR_PATH_MAX];
	char id[2 * VOL_ID_LEN + 1];

	if (fz_dir[0] == '\0')
		return;
	pr_hex(id, fx_vol.id, VOL_ID_LEN);
	snprintf(path, sizeof(path), "%s/pr-%s", fz_dir, id);
	unlink(path);
}

/*
 * What happens to an LU between commands: a LOGICAL UNIT RESET, a nexus
 * lost, a unit attention from elsewhere, the volume resized (never beyond
 * the fake volume's memory; commands must range-check against the new size).
 */
static void fz_event(void)
{
	switch (rnd(5)) {
	case 0:
		tgt_pr_lu_reset(&fx_target.lu);
		tgt_lu_ua_raise(&fx_target.lu, TGT_UA_LUN_RESET, NULL);
		break;
	case 1:
		tgt_pr_nexus_gone(fz_itl[rnd(2)]);
		break;
	case 2:
		tgt_lu_ua_raise(&fx_target.lu, (enum tgt_ua)rnd(TGT_UA_COUNT),
				one_in(2) ? fz_itl[rnd(2)] : NULL);
		break;
	case 3:
		if (fz_job() == NULL) {
			fx_vol.size =
			    (uint64_t)(one_in(2) ? FX_BLOCKS : 1 + rnd(FX_BLOCKS)) * FX_BS;
			tgt_lu_ua_raise(&fx_target.lu, TGT_UA_CAPACITY_CHANGED, NULL);
		}
		break;
	default:
		atomic_store(&fx_target.lu.swp, false);
		break;
	}
}

/* A fresh LU: no reservations or mode changes, a volume with a pattern per block. */
static void fz_reset(void)
{
	fz_drain(false);
	fx_reset_ext();
	tgt_pr_lu_free(&fx_target.lu);
	atomic_store(&fx_target.lu.swp, false);
	atomic_store(&fx_target.lu.resv, 0);
	for (unsigned i = 0; i < 2; i++) {
		memset(fz_itl[i]->xcopy, 0, sizeof(fz_itl[i]->xcopy));
		fz_itl[i]->xcopy_seq = 0;
	}
	for (uint32_t b = 0; b < FX_BLOCKS; b++)
		memset(fx_vol.data + (size_t)b * FX_BS, (int)(b * 7 + 1), FX_BS);
	atomic_store(&fz_engine.nconns, 2); /* the two connections */
	fz_refs = 0;
	/* target names of any length up to the longest iSCSI name (VPD 83h, REPORT LUNS) */
	if (one_in(3)) {
		size_t n = 1 + rnd(ISCSI_NAME_MAX - 1);

		memset(fx_target.iqn, 'q', n);
		fx_target.iqn[n] = '\0';
	} else {
		snprintf(fx_target.iqn, sizeof(fx_target.iqn), "%s", FX_IQN);
	}
	/*
	 * Now and then the second initiator's name is one the login should not
	 * have let through (a space, a line break): reservations must still
	 * persist and reload exactly.
	 */
	snprintf(fz_sess[1].params.initiator_name, ISCSI_NAME_MAX, "%s",
		 one_in(4) ? "iqn.2024-01.org.test:h 1\nresv 1 * -%" : N1_NAME);
	/* half the epochs with a state directory: APTPL supported, saved, reloaded */
	fz_dir_clean();
	if (fz_dir[0] != '\0' && one_in(2))
		snprintf(fx_cfg.state_dir, sizeof(fx_cfg.state_dir), "%s", fz_dir);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);

	return s != NULL && *s != '\0' ? strtoull(s, NULL, 0) : dflt;
}

static void test_fuzz(void)
{
	uint64_t iters = env_u64("SCSI_FUZZ_ITERS", FZ_ITERS_DEFAULT);
	uint64_t seed0 = env_u64("SCSI_FUZZ_SEED", 1);
	uint64_t nseeds = env_u64("SCSI_FUZZ_SEEDS", FZ_SEEDS_DEFAULT);

	fz_verbose = env_u64("SCSI_FUZZ_VERBOSE", 0) != 0;

	fz_collect();
	for (fz_seed = seed0; fz_seed < seed0 + nseeds; fz_seed++) {
		fz_state = fz_seed;
		fz_reset();
		for (fz_iter = 0; fz_iter < iters; fz_iter++) {
			if (fz_iter % FZ_RESET_EVERY == 0)
				fz_reset();
			fz_one();
			if (one_in(100))
				fz_power_cycle();
			if (one_in(150))
				fz_event();
		}
		fz_reset();
	}
	free(fz_c.out);
	fz_c.out = NULL;
	if (env_u64("SCSI_FUZZ_STATS", 0) != 0) {
		for (unsigned s = 0; s < 256; s++)
			if (fz_stat_status[s])
				fprintf(stderr, "status %02x: %" PRIu64 "\n", s, fz_stat_status[s]);
		for (unsigned o = 0; o < 256; o++)
			if (fz_stat_ops[o])
				fprintf(stderr, "op %02x: %" PRIu64 " good %" PRIu64 "\n", o,
					fz_stat_ops[o], fz_stat_good[o]);
	}
}

/* ---- suite setup ---- */

static int fz_init(void)
{
	if (fixture_init() != 0)
		return 1;
	fz_vol2.bs = FX_BS;
	fz_vol2.size = (uint64_t)FX_BLOCKS * FX_BS;
	fz_vol2.data = calloc(FX_BLOCKS, FX_BS);
	for (unsigned i = 0; i < VOL_ID_LEN; i++)
		fz_vol2.id[i] = (uint8_t)(0x90 + i);
	snprintf(fz_target2.iqn, sizeof(fz_target2.iqn), "%s", "iqn.2024-01.org.vmengine:vol2");
	fz_target2.lu.vol = &fz_vol2;
	fz_target2.lu.target = &fz_target2;
	pthread_mutex_init(&fz_target2.lu.lock, NULL);
	LIST_INIT(&fz_target2.lu.itls);
	atomic_init(&fz_target2.refs, 1);
	atomic_init(&fx_target.refs, 2);
	pthread_rwlock_init(&fz_engine.targets_lock, NULL);
	fx_target.lu.scsi_ops = &fz_ops; /* as tgt_target_add() does */
	fz_target2.lu.scsi_ops = &fz_ops;
	TAILQ_INIT(&fz_engine.targets);
	TAILQ_INSERT_TAIL(&fz_engine.targets, &fx_target, link);
	TAILQ_INSERT_TAIL(&fz_engine.targets, &fz_target2, link);
	for (unsigned i = 0; i < 2; i++) {
		fz_conn[i].tgt = &fz_engine;
		fz_conn[i].sess = &fz_sess[i];
		snprintf(fz_conn[i].peer, sizeof(fz_conn[i].peer), "127.0.0.1:%u", 1000 + i);
		snprintf(fz_sess[i].params.initiator_name, ISCSI_NAME_MAX, "%s",
			 i == 0 ? N0_NAME : N1_NAME);
		memcpy(fz_sess[i].isid,
		       i == 0 ? "\x80\x00\x00\x00\x00\x01" : "\x80\x00\x00\x00\x00\x02", 6);
		fz_sess[i].tsih = (uint16_t)(i + 1);
		fz_itl[i]->sess = &fz_sess[i];
	}
	snprintf(fz_dir, sizeof(fz_dir), "/tmp/scsi_fuzz_ut.XXXXXX");
	if (mkdtemp(fz_dir) == NULL)
		fz_dir[0] = '\0'; /* no APTPL then */
	fz_collect();
	fx_done_hook = fz_done_hook;
	return fz_vol2.data == NULL;
}

static int fz_fini(void)
{
	free(fz_buf2);
	fz_buf2 = NULL;
	free(fz_c2.out);
	fz_c2.out = NULL;
	fz_dir_clean();
	if (fz_dir[0] != '\0')
		rmdir(fz_dir);
	tgt_pr_lu_free(&fx_target.lu);
	free(fz_vol2.data);
	pthread_mutex_destroy(&fz_target2.lu.lock);
	pthread_rwlock_destroy(&fz_engine.targets_lock);
	return fixture_fini();
}

/* ---- regression checks of what the fuzzer found ---- */

static inline void fz_unused(void)
{
	(void)fx_run;
}

/* A known state for a regression check: no state directory, the usual names. */
static void fz_reset_plain(void)
{
	fz_state = 1;
	fz_reset();
	fx_cfg.state_dir[0] = '\0';
	snprintf(fz_sess[1].params.initiator_name, ISCSI_NAME_MAX, "%s", N1_NAME);
	memset(&fz_c, 0, sizeof(fz_c));
	fz_c.abort_at = -1;
}

/*
 * Run \p cdb as nexus \p nexus with \p out as data-out, in a buffer of
 * exactly xfer_len bytes (ASan sees any read past the list). Returns
 * prepare's result.
 */
static int fz_exec(unsigned nexus, const uint8_t *cdb, const void *out, uint32_t out_len)
{
	int rc;

	fixture_task(cdb, 16, false);
	fx_t.itl = fz_itl[nexus];
	fx_t.conn = &fz_conn[nexus];
	rc = tgt_scsi_prepare(&fx_t);
	if (rc != 0)
		return rc;
	fx_buf = malloc(fx_t.xfer_len ? fx_t.xfer_len : 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx_buf);
	memset(fx_buf, 0, fx_t.xfer_len);
	if (out != NULL)
		memcpy(fx_buf, out, UTIL_MIN(out_len, fx_t.xfer_len));
	fx_t.buf = fx_buf;
	fx_t.buf_len = fx_t.xfer_len;
	tgt_scsi_execute(&fx_t);
	fz_drain(false);
	CU_ASSERT_EQUAL(fx_done, 1);
	CU_ASSERT_EQUAL(fx_bufs_out, 0);
	return rc;
}

static void fz_prout(unsigned nexus, uint8_t sa, uint8_t type, const uint8_t *p, uint32_t len)
{
	uint8_t cdb[16] = {SCSI_OP_PERSISTENT_RESERVE_OUT, sa, type};

	put_be32(cdb + 5, len);
	CU_ASSERT_EQUAL(fz_exec(nexus, cdb, p, len), 0);
}

/* Registrations of the LU, as READ KEYS counts them. */
static uint32_t fz_nkeys(void)
{
	uint8_t cdb[16] = {SCSI_OP_PERSISTENT_RESERVE_IN, PRIN_READ_KEYS};

	put_be16(cdb + 7, 1024);
	CU_ASSERT_EQUAL(fz_exec(0, cdb, NULL, 0), 0);
	CU_ASSERT(fx_good());
	return get_be32(fx_buf + 4) / 8;
}

/*
 * PERSISTENT RESERVE OUT read byte 20 (APTPL) of a list shorter than 24
 * bytes before checking its length: a heap over-read of the data-out buffer.
 * Found with: 5f 00 01 00 00 00 00 00 13 00 (a 19-byte REGISTER list).
 */
static void test_prout_short_list(void)
{
	uint8_t p[PROUT_BASIC_LEN] = {0};
	static const uint8_t sas[] = {PROUT_REGISTER, PROUT_RESERVE, PROUT_REGISTER_AND_MOVE};

	fz_reset_plain();
	put_be64(p + 8, 0x1234);
	for (unsigned i = 0; i < sizeof(sas); i++) {
		for (uint32_t len = 1; len < 18; len += 8) {
			fz_prout(0, sas[i], PR_TYPE_WR_EX, p, len);
			CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
		}
		fz_prout(0, sas[i], PR_TYPE_WR_EX, p, 19);
		CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	}
	CU_ASSERT_EQUAL(fz_nkeys(), 0);
}

/* A REGISTER with SPEC_I_PT and one TransportID (\p name), its length field \p tlen. */
static uint32_t fz_spec_i_pt(uint8_t *p, const char *name, uint32_t tlen)
{
	uint32_t n = ((uint32_t)strlen(name) + 1 + 3) & ~3u;

	memset(p, 0, 512);
	put_be64(p + 8, 0xabcd);
	p[20] = PROUT_SPEC_I_PT;
	p[28] = TPID_PROTO_ISCSI | TPID_FMT_NAME;
	put_be16(p + 30, (uint16_t)n);
	memcpy(p + 32, name, strlen(name));
	put_be32(p + 24, tlen == 0 ? 4 + n : tlen);
	return 32 + n;
}

/*
 * TRANSPORTID PARAMETER DATA LENGTH near 2^32 wrapped in 24 + 4 + length
 * and passed the check against the list length: the list was taken as
 * valid, registering only the sender.
 */
static void test_spec_i_pt_length_wrap(void)
{
	uint8_t p[512];
	uint32_t len = fz_spec_i_pt(p, N1_NAME, 0xfffffff0u);

	fz_reset_plain();
	fz_prout(0, PROUT_REGISTER, 0, p, len);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR));
	CU_ASSERT_EQUAL(fz_nkeys(), 0);
	/* the same list with its true length registers both */
	len = fz_spec_i_pt(p, N1_NAME, 0);
	fz_prout(0, PROUT_REGISTER, 0, p, len);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(fz_nkeys(), 2);
}

/*
 * A 4-byte allocation length of FFFFFFFFh became a 4 GiB data-in buffer
 * (the connection allocates xfer_len): now cut to TGT_SCSI_IN_MAX.
 * Found with: 9e 10 00 .. 00 ff ff ff ff 00 00 (GET LBA STATUS).
 */
static void test_allocation_length_capped(void)
{
	uint8_t gls[16] = {SCSI_OP_SERVICE_ACTION_IN_16, SCSI_SAI_GET_LBA_STATUS};
	uint8_t rl[16] = {SCSI_OP_REPORT_LUNS};
	uint8_t inq[16] = {SCSI_OP_INQUIRY, 0, 0, 0xff, 0xff};

	fz_reset_plain();
	put_be32(gls + 10, 0xffffffffu);
	CU_ASSERT_EQUAL(fz_exec(0, gls, NULL, 0), 0);
	CU_ASSERT_EQUAL(fx_t.xfer_len, TGT_SCSI_IN_MAX);
	CU_ASSERT(fx_good());
	put_be32(rl + 6, 0xffffffffu);
	CU_ASSERT_EQUAL(fz_exec(0, rl, NULL, 0), 0);
	CU_ASSERT_EQUAL(fx_t.xfer_len, TGT_SCSI_IN_MAX);
	CU_ASSERT(fx_good() && fx_t.data_len == 16);
	/* a 2-byte length is below the cap and stays as it is */
	CU_ASSERT_EQUAL(fz_exec(0, inq, NULL, 0), 0);
	CU_ASSERT_EQUAL(fx_t.xfer_len, 0xffff);
}

/*
 * A TransportID name with a line break or a space was registered, then
 * written raw into the APTPL state file: it read back as another name, and
 * a crafted one forged a reservation line. TransportIDs with such names
 * are now refused; names from the login are escaped in the file.
 */
static void test_tpid_name_refused(void)
{
	uint8_t p[512];
	uint32_t len;

	fz_reset_plain();
	len = fz_spec_i_pt(p, "iqn.2024-01.org.test:x\nresv 1 * " N1_NAME, 0);
	fz_prout(0, PROUT_REGISTER, 0, p, len);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	len = fz_spec_i_pt(p, "iqn.2024-01.org.test:a b", 0);
	fz_prout(0, PROUT_REGISTER, 0, p, len);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST));
	CU_ASSERT_EQUAL(fz_nkeys(), 0);
}

static void test_aptpl_odd_initiator_name(void)
{
	static const char odd[] = "iqn.2024-01.org.test:h 1\nresv 1 * -%41";
	uint8_t p[PROUT_BASIC_LEN] = {0};
	const struct tgt_pr *pr;

	if (fz_dir[0] == '\0')
		return;
	fz_reset_plain();
	snprintf(fx_cfg.state_dir, sizeof(fx_cfg.state_dir), "%s", fz_dir);
	snprintf(fz_sess[1].params.initiator_name, ISCSI_NAME_MAX, "%s", odd);
	put_be64(p + 8, 0x77);
	p[20] = PROUT_APTPL;
	fz_prout(1, PROUT_REGISTER, 0, p, sizeof(p));
	CU_ASSERT(fx_good());
	put_be64(p, 0x77);
	put_be64(p + 8, 0);
	p[20] = 0;
	fz_prout(1, PROUT_RESERVE, PR_TYPE_EX_AC, p, sizeof(p));
	CU_ASSERT(fx_good());
	fz_power_cycle();
	pr = fx_target.lu.pr;
	CU_ASSERT_EQUAL_FATAL(pr->nregs, 1);
	CU_ASSERT_STRING_EQUAL(pr->regs[0].n.name, odd);
	CU_ASSERT(pr->reserved && pr->type == PR_TYPE_EX_AC);
	CU_ASSERT_STRING_EQUAL(pr->holder.name, odd);
	fz_reset_plain();
}

/*
 * EXTENDED COPY wrote the LU without going through the write gate: its
 * writes landed while a COMPARE AND WRITE held the LU (between its compare
 * and its write: not atomic), and a SANITIZE could start under a running
 * copy. Found with a COMPARE AND WRITE of LBA 10 concurrent with a copy
 * of block 100 to block 10; the copy now waits for the atomic command.
 */
static void test_xcopy_waits_for_compare_and_write(void)
{
	static uint8_t caw[2 * FX_BS], list[XCOPY_HDR_LEN + XCOPY_CSCD_LEN + XCOPY_SEG_B2B_LEN];
	uint8_t *d;

	fz_reset_plain();
	memset(&fz_c, 0, sizeof(fz_c));
	memset(&fz_c2, 0, sizeof(fz_c2));
	fz_c.abort_at = fz_c2.abort_at = -1;
	/* COMPARE AND WRITE of LBA 10: compare with what is there, write 0xaa */
	fz_c.cdb[0] = SCSI_OP_COMPARE_AND_WRITE;
	put_be64(fz_c.cdb + 2, 10);
	fz_c.cdb[13] = 1;
	memcpy(caw, fx_vol.data + 10 * FX_BS, FX_BS);
	memset(caw + FX_BS, 0xaa, FX_BS);
	fz_c.out = caw;
	fz_c.out_len = fz_c.edtl = sizeof(caw);
	fz_c.wr_lo = 10;
	fz_c.wr_hi = 11;
	/* EXTENDED COPY of block 100 to block 10, on the other nexus */
	memset(list, 0, sizeof(list));
	put_be16(list + 2, XCOPY_CSCD_LEN);
	put_be32(list + 8, XCOPY_SEG_B2B_LEN);
	list[1] = XCOPY_LIST_ID_NONE << XCOPY_LIST_ID_USAGE_SHIFT;
	d = list + XCOPY_HDR_LEN;
	d[0] = XCOPY_CSCD_ID;
	d[4] = DESIG_CODESET_BINARY;
	d[5] = DESIG_ASSOC_LU | DESIG_TYPE_NAA;
	d[7] = VOL_ID_LEN;
	memcpy(d + 8, fx_vol.id, VOL_ID_LEN);
	put_be24(d + 29, FX_BS);
	d += XCOPY_CSCD_LEN;
	d[0] = XCOPY_SEG_B2B;
	put_be16(d + 2, XCOPY_SEG_B2B_LEN - 4);
	put_be16(d + 10, 1);
	put_be64(d + 12, 100);
	put_be64(d + 20, 10);
	fz_c2.cdb[0] = SCSI_OP_EXTENDED_COPY;
	put_be32(fz_c2.cdb + 10, sizeof(list));
	fz_c2.out = list;
	fz_c2.out_len = fz_c2.edtl = sizeof(list);
	fz_c2.nexus = 1;
	fz_c2.wr_any = true;

	fz_pair = true;
	fx_done = fz_done2 = fz_writes = fz_writes2 = 0;
	CU_ASSERT_EQUAL(fz_start(&fx_t, &fz_c, &fx_buf), 0);
	CU_ASSERT_EQUAL(fz_start(&fz_t2, &fz_c2, &fz_buf2), 0);
	tgt_scsi_execute(&fx_t); /* holds the LU, its read in flight */
	tgt_scsi_execute(&fz_t2);
	CU_ASSERT_EQUAL(fz_t2.gate, GATE_WAIT); /* the copy waits */
	CU_ASSERT_EQUAL(fx_npending, 1);
	fz_drain(false); /* the drain checks every write against the gate */
	CU_ASSERT(fx_done == 1 && fx_t.status == SAM_STAT_GOOD);
	CU_ASSERT(fz_done2 == 1 && fz_t2.status == SAM_STAT_GOOD);
	/* the copy came last: block 10 holds block 100 */
	CU_ASSERT(memcmp(fx_vol.data + 10 * FX_BS, fx_vol.data + 100 * FX_BS, FX_BS) == 0);
	CU_ASSERT_EQUAL(fx_bufs_out, 0);
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.gate_writes), 0);
	CU_ASSERT_EQUAL(atomic_load(&fx_target.lu.gate_excl), 0);
	fz_pair = false;
	fz_c.out = NULL; /* static buffers, not the generator's */
	fz_c2.out = NULL;
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("scsi_fuzz", fz_init, fz_fini);
	CU_add_test(s, "PR OUT list shorter than 24 bytes", test_prout_short_list);
	CU_add_test(s, "SPEC_I_PT TransportID length near 2^32", test_spec_i_pt_length_wrap);
	CU_add_test(s, "allocation lengths above the cap", test_allocation_length_capped);
	CU_add_test(s, "TransportID names with spaces or line breaks", test_tpid_name_refused);
	CU_add_test(s, "APTPL with an odd initiator name", test_aptpl_odd_initiator_name);
	CU_add_test(s, "EXTENDED COPY waits for COMPARE AND WRITE",
		    test_xcopy_waits_for_compare_and_write);
	CU_add_test(s, "fuzz", test_fuzz);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed != 0;
}
