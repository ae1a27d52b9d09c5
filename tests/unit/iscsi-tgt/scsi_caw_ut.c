/*
 * scsi_caw_ut.c: COMPARE AND WRITE (match, miscompare offset, nothing
 * written on a miscompare, the data-out length rules), ORWRITE, WRITE
 * ATOMIC, and the write gate: an atomic command waits for the writes in
 * flight and the writes that arrive meanwhile wait for it.
 */
#include "scsi_fixture_ext.h"

static void caw_cdb(uint8_t *cdb, uint8_t op, uint64_t lba, uint32_t n)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	put_be64(cdb + 2, lba);
	if (op == SCSI_OP_COMPARE_AND_WRITE)
		cdb[13] = (uint8_t)n;
	else if (op == SCSI_OP_WRITE_ATOMIC_16)
		put_be16(cdb + 12, (uint16_t)n);
	else
		put_be32(cdb + 10, n);
}

static void test_compare_and_write(void)
{
	uint8_t cdb[16], out[4 * FX_BS];

	fx_reset_ext();
	memset(fx_vol.data + 8 * FX_BS, 'A', 2 * FX_BS);
	memset(out, 'A', 2 * FX_BS);
	memset(out + 2 * FX_BS, 'B', 2 * FX_BS);
	caw_cdb(cdb, SCSI_OP_COMPARE_AND_WRITE, 8, 2);
	CU_ASSERT_EQUAL(fx_run(cdb, out, sizeof(out), sizeof(out)), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 8 * FX_BS, out + 2 * FX_BS, 2 * FX_BS), 0);

	/* miscompare at byte 700: INFORMATION 700, the medium unchanged */
	memset(out, 'B', 2 * FX_BS);
	out[700] = 'C';
	memset(out + 2 * FX_BS, 'D', 2 * FX_BS);
	CU_ASSERT_EQUAL(fx_run(cdb, out, sizeof(out), sizeof(out)), 0);
	CU_ASSERT(fx_check(SK_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY));
	CU_ASSERT_EQUAL(get_be32(fx_t.sense + 3), 700);
	CU_ASSERT(fx_vol.data[8 * FX_BS] == 'B' && fx_vol.data[10 * FX_BS - 1] == 'B');

	/* data-out not 2 x NUMBER blocks; NUMBER 0 with a full pair (wrapped 256) */
	CU_ASSERT_EQUAL(fx_run(cdb, out, sizeof(out), 3 * FX_BS), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	caw_cdb(cdb, SCSI_OP_COMPARE_AND_WRITE, 0, 0);
	CU_ASSERT_EQUAL(fx_run(cdb, out, sizeof(out), 2 * FX_BS), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, FX_BS), 0);
	CU_ASSERT(fx_good());
	/* beyond the end */
	caw_cdb(cdb, SCSI_OP_COMPARE_AND_WRITE, FX_BLOCKS - 1, 2);
	CU_ASSERT_EQUAL(fx_run(cdb, out, sizeof(out), sizeof(out)), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE));
}

static void test_orwrite_and_atomic(void)
{
	uint8_t cdb[16], out[2 * FX_BS];

	fx_reset_ext();
	memset(fx_vol.data, 0xa0, 2 * FX_BS);
	memset(out, 0x05, sizeof(out));
	caw_cdb(cdb, SCSI_OP_ORWRITE_16, 0, 2);
	CU_ASSERT_EQUAL(fx_run(cdb, out, sizeof(out), sizeof(out)), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT(fx_vol.data[0] == 0xa5 && fx_vol.data[2 * FX_BS - 1] == 0xa5);
	CU_ASSERT_EQUAL(fx_vol.data[2 * FX_BS], 0);

	memset(out, 0x77, sizeof(out));
	caw_cdb(cdb, SCSI_OP_WRITE_ATOMIC_16, 4, 2);
	cdb[1] = SBC_FUA;
	CU_ASSERT_EQUAL(fx_run(cdb, out, sizeof(out), sizeof(out)), 0);
	CU_ASSERT(fx_good());
	CU_ASSERT(fx_last_io.fua);
	CU_ASSERT_EQUAL(memcmp(fx_vol.data + 4 * FX_BS, out, sizeof(out)), 0);
	/* above the maximum atomic transfer length; a non-zero ATOMIC BOUNDARY */
	caw_cdb(cdb, SCSI_OP_WRITE_ATOMIC_16, 0, fx_cfg.max_xfer_blocks + 1);
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
	caw_cdb(cdb, SCSI_OP_WRITE_ATOMIC_16, 0, 1);
	cdb[11] = 1;
	CU_ASSERT_EQUAL(fx_run(cdb, NULL, 0, 0), 1);
	CU_ASSERT(fx_check(SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB));
}

/* ---- the gate, driven directly with tasks of our own ---- */

static unsigned g_runs[3];
static struct tgt_task g_t[3];

static void g_exec(struct tgt_task *t)
{
	g_runs[t - g_t]++;
}

static const struct tgt_scsi_cmd g_cmd = {.name = "gate", .exec = g_exec};

static void test_gate(void)
{
	struct tgt_lu *lu = &fx_target.lu;

	fx_reset_ext();
	memset(g_t, 0, sizeof(g_t));
	memset(g_runs, 0, sizeof(g_runs));
	for (int i = 0; i < 3; i++) {
		g_t[i].lu = lu;
		g_t[i].cmd = &g_cmd;
	}
	/* a write in flight: the atomic command queues */
	CU_ASSERT_EQUAL(tgt_gate_write(&g_t[0]), 0);
	CU_ASSERT_EQUAL(tgt_gate_excl(&g_t[1]), 1);
	/* a new write waits behind the atomic command */
	CU_ASSERT_EQUAL(tgt_gate_write(&g_t[2]), 1);
	fx_run_msgs();
	CU_ASSERT(g_runs[1] == 0 && g_runs[2] == 0);
	/* the write completes: the atomic command is resumed, alone */
	tgt_gate_end(&g_t[0]);
	fx_run_msgs();
	CU_ASSERT_EQUAL(g_runs[1], 1);
	CU_ASSERT_EQUAL(g_runs[2], 0);
	CU_ASSERT_EQUAL(tgt_gate_excl(&g_t[1]), 0); /* resumed: admitted */
	/* it completes: the waiting write goes */
	tgt_gate_end(&g_t[1]);
	fx_run_msgs();
	CU_ASSERT_EQUAL(g_runs[2], 1);
	CU_ASSERT_EQUAL(tgt_gate_write(&g_t[2]), 0);
	tgt_gate_end(&g_t[2]);
	CU_ASSERT_EQUAL(atomic_load(&lu->gate_writes), 0);
	CU_ASSERT_EQUAL(atomic_load(&lu->gate_excl), 0);
	CU_ASSERT_FALSE(lu->gate_excl_running);
	/* idle LU: an atomic command is admitted at once */
	CU_ASSERT_EQUAL(tgt_gate_excl(&g_t[0]), 0);
	tgt_gate_end(&g_t[0]);
	CU_ASSERT_EQUAL(atomic_load(&lu->gate_excl), 0);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("scsi_caw", fixture_init, fixture_fini);
	CU_add_test(s, "COMPARE AND WRITE", test_compare_and_write);
	CU_add_test(s, "ORWRITE and WRITE ATOMIC", test_orwrite_and_atomic);
	CU_add_test(s, "write gate", test_gate);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	int failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
