/*
 * scsi.c: the SCSI side of the initiator. CDBs of the public commands
 * (SBC-3 READ/WRITE 16, SYNCHRONIZE CACHE 16, UNMAP, WRITE SAME 16, COMPARE
 * AND WRITE), sense data decoding (SPC-4 4.5), the mapping of status and sense
 * to the error codes of ini.h, LUN addressing (SAM-5 4.7), and the LUN probe
 * run on connect (REPORT LUNS, INQUIRY with VPD 0x83, READ CAPACITY 16).
 */
#define UTIL_LOG_TAG "ini-scsi"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi-init/ini_internal.h"

/* SCSI status (SAM-5 5.3) */
#define ST_GOOD		   0x00
#define ST_CHECK_CONDITION 0x02
#define ST_CONDITION_MET   0x04
#define ST_BUSY		   0x08
#define ST_RESV_CONFLICT   0x18
#define ST_TASK_SET_FULL   0x28
#define ST_TASK_ABORTED	   0x40

/* Sense keys (SPC-4 4.5.6) */
#define SK_NOT_READY	   0x2
#define SK_ILLEGAL_REQUEST 0x5
#define SK_UNIT_ATTENTION  0x6
#define SK_DATA_PROTECT	   0x7
#define SK_ABORTED_COMMAND 0xb
#define SK_MISCOMPARE	   0xe

#define PROBE_BUF_LEN 4096

void ini_lun_encode(uint64_t lun, uint8_t out[8])
{
	memset(out, 0, 8);
	/* SAM-5 4.7.7: peripheral device addressing below 256, flat space above. */
	if (lun < 256) {
		out[1] = (uint8_t)lun;
	} else {
		out[0] = (uint8_t)(0x40 | ((lun >> 8) & 0x3f));
		out[1] = (uint8_t)lun;
	}
}

uint64_t ini_lun_decode(const uint8_t in[8])
{
	switch (in[0] >> 6) {
	case 0: /* peripheral device addressing (bus 0) */
	case 1: /* flat space */
		return ((uint64_t)(in[0] & 0x3f) << 8) | in[1];
	default:
		return get_be64(in); /* other methods: keep the raw value */
	}
}

void ini_sense_parse(struct ini_task *t, const uint8_t *sense, uint32_t len)
{
	if (len < 2)
		return;
	switch (sense[0] & 0x7f) {
	case 0x70: /* fixed format (SPC-4 4.5.3) */
	case 0x71:
		if (len >= 3)
			t->sense_key = sense[2] & 0x0f;
		if (len >= 14) {
			t->asc = sense[12];
			t->ascq = sense[13];
		}
		break;
	case 0x72: /* descriptor format (SPC-4 4.5.2) */
	case 0x73:
		if (len >= 4) {
			t->sense_key = sense[1] & 0x0f;
			t->asc = sense[2];
			t->ascq = sense[3];
		}
		break;
	default:
		break;
	}
}

int ini_scsi_result(struct ini_task *t)
{
	switch (t->status) {
	case ST_GOOD:
	case ST_CONDITION_MET:
		return 0;
	case ST_BUSY:
	case ST_TASK_SET_FULL:
	case ST_TASK_ABORTED:
		return -EAGAIN;
	case ST_RESV_CONFLICT:
		return -EBUSY;
	case ST_CHECK_CONDITION:
		break;
	default:
		return -EIO;
	}
	switch (t->sense_key) {
	case SK_UNIT_ATTENTION:
	case SK_ABORTED_COMMAND:
		return -EAGAIN;
	case SK_NOT_READY:
		/* 04/xx "in process of becoming ready" and friends: try again. */
		return t->asc == 0x04 ? -EAGAIN : -EIO;
	case SK_ILLEGAL_REQUEST:
		return -EINVAL;
	case SK_DATA_PROTECT:
		/* 27/07: space allocation failed (SBC-3 4.7.3.6). */
		return t->asc == 0x27 && t->ascq == 0x07 ? -ENOSPC : -EROFS;
	case SK_MISCOMPARE:
		return -EILSEQ;
	default:
		return -EIO;
	}
}

/* ---- submission ---- */

static bool accepting(const struct ini_session *s)
{
	return s->state == SESS_UP || s->state == SESS_PROBE || s->state == SESS_RECOVER;
}

static int submit(struct ini_session *s, uint64_t lun, const uint8_t *cdb, enum ini_dir dir,
		  const struct iovec *iov, int iovcnt, uint32_t xfer_len, struct ini_scsi_req *req,
		  ini_cb cb, void *cb_arg)
{
	struct ini_task *t;
	size_t total = 0;

	if (!accepting(s))
		return -ENOTCONN;
	if (iovcnt < 0 || (xfer_len && (!iov || iovcnt == 0)))
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total < xfer_len)
		return -EINVAL;
	t = ini_task_get(s);
	if (!t)
		return -EBUSY;
	t->kind = TASK_SCSI;
	t->lun = lun;
	memcpy(t->cdb, cdb, 16);
	t->dir = xfer_len ? dir : INI_DIR_NONE;
	t->xfer_len = xfer_len;
	if (iovcnt == 1) {
		/* Callers often pass a stack iovec: keep our own copy. */
		t->iov_own[0] = iov[0];
		t->iov = t->iov_own;
	} else {
		t->iov = iov;
	}
	t->iovcnt = iovcnt;
	t->req = req;
	t->cb = cb;
	t->cb_arg = cb_arg;
	ini_task_submit(s, t);
	return 0;
}

static uint32_t block_size(const struct ini_session *s, uint64_t lun)
{
	const struct ini_lun *l = ini_session_lun(s, lun);

	return l && l->block_size ? l->block_size : 512;
}

static int rw16(struct ini_session *s, uint8_t op, uint8_t flags, uint64_t lun, uint64_t lba,
		uint32_t nblocks, const struct iovec *iov, int iovcnt, ini_cb cb, void *cb_arg)
{
	uint8_t cdb[16] = {op, flags};
	uint64_t len = (uint64_t)nblocks * block_size(s, lun);

	if (nblocks == 0 || len > UINT32_MAX)
		return -EINVAL;
	put_be64(cdb + 2, lba);
	put_be32(cdb + 10, nblocks);
	return submit(s, lun, cdb, op == 0x88 ? INI_DIR_READ : INI_DIR_WRITE, iov, iovcnt,
		      (uint32_t)len, NULL, cb, cb_arg);
}

int ini_read(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks,
	     const struct iovec *iov, int iovcnt, ini_cb cb, void *cb_arg)
{
	return rw16(s, 0x88, 0, lun, lba, nblocks, iov, iovcnt, cb, cb_arg);
}

int ini_write(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks,
	      const struct iovec *iov, int iovcnt, ini_cb cb, void *cb_arg)
{
	return rw16(s, 0x8a, 0, lun, lba, nblocks, iov, iovcnt, cb, cb_arg);
}

int ini_write_fua(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks,
		  const struct iovec *iov, int iovcnt, ini_cb cb, void *cb_arg)
{
	return rw16(s, 0x8a, 0x08, lun, lba, nblocks, iov, iovcnt, cb, cb_arg);
}

int ini_sync(struct ini_session *s, uint64_t lun, ini_cb cb, void *cb_arg)
{
	/* SBC-3 5.23: LBA 0 and 0 blocks: the whole medium. */
	uint8_t cdb[16] = {0x91};

	return submit(s, lun, cdb, INI_DIR_NONE, NULL, 0, 0, NULL, cb, cb_arg);
}

/*
 * UNMAP parameter lists live in a per-call buffer freed on completion (not on
 * the data path).
 */
struct own_buf {
	ini_cb cb;
	void *cb_arg;
	struct iovec iov;
	uint8_t data[];
};

static void own_buf_done(void *arg, int rc)
{
	struct own_buf *b = arg;
	ini_cb cb = b->cb;
	void *cb_arg = b->cb_arg;

	free(b);
	cb(cb_arg, rc);
}

int ini_unmap(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks, ini_cb cb,
	      void *cb_arg)
{
	uint8_t cdb[16] = {0x42};
	struct own_buf *b = calloc(1, sizeof(*b) + 24);
	int rc;

	if (!b)
		return -ENOMEM;
	/* SBC-3 5.28.2: header (8 bytes) then one 16-byte block descriptor. */
	put_be16(b->data, 22);
	put_be16(b->data + 2, 16);
	put_be64(b->data + 8, lba);
	put_be32(b->data + 16, nblocks);
	put_be16(cdb + 7, 24);
	b->cb = cb;
	b->cb_arg = cb_arg;
	b->iov = (struct iovec){b->data, 24};
	rc = submit(s, lun, cdb, INI_DIR_WRITE, &b->iov, 1, 24, NULL, own_buf_done, b);
	if (rc < 0)
		free(b);
	return rc;
}

int ini_write_same(struct ini_session *s, uint64_t lun, uint64_t lba, uint32_t nblocks,
		   const void *block, bool unmap, ini_cb cb, void *cb_arg)
{
	uint8_t cdb[16] = {0x93, unmap ? 0x08 : 0};
	uint32_t bs = block_size(s, lun);
	struct iovec iov = {(void *)block, bs};

	put_be64(cdb + 2, lba);
	put_be32(cdb + 10, nblocks);
	return submit(s, lun, cdb, INI_DIR_WRITE, &iov, 1, bs, NULL, cb, cb_arg);
}

int ini_compare_write(struct ini_session *s, uint64_t lun, uint64_t lba, uint8_t nblocks,
		      const void *buf, ini_cb cb, void *cb_arg)
{
	uint8_t cdb[16] = {0x89};
	uint32_t len = 2u * nblocks * block_size(s, lun);
	struct iovec iov = {(void *)buf, len};

	if (nblocks == 0)
		return -EINVAL;
	put_be64(cdb + 2, lba);
	cdb[13] = nblocks;
	return submit(s, lun, cdb, INI_DIR_WRITE, &iov, 1, len, NULL, cb, cb_arg);
}

int ini_scsi(struct ini_session *s, struct ini_scsi_req *req, ini_cb cb, void *cb_arg)
{
	return submit(s, req->lun, req->cdb, req->dir, req->iov, req->iovcnt, req->xfer_len, req,
		      cb, cb_arg);
}

static int tmf_start(struct ini_session *s, uint8_t func, uint64_t lun, ini_cb cb, void *cb_arg)
{
	struct ini_tmf_op *op;

	if (!accepting(s))
		return -ENOTCONN;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->s = s;
	op->func = func;
	op->lun = lun;
	op->cb = cb;
	op->cb_arg = cb_arg;
	/* Runs from the tick: the callbacks it causes never run inside this call. */
	STAILQ_INSERT_TAIL(&s->tmf_ops, op, link);
	return 0;
}

int ini_abort_lun_tasks(struct ini_session *s, uint64_t lun, ini_cb cb, void *cb_arg)
{
	return tmf_start(s, ISCSI_TMF_ABORT_TASK, lun, cb, cb_arg);
}

int ini_lun_reset(struct ini_session *s, uint64_t lun, ini_cb cb, void *cb_arg)
{
	return tmf_start(s, ISCSI_TMF_LUN_RESET, lun, cb, cb_arg);
}

/* ---- LUN probe on connect ---- */

enum probe_step {
	PROBE_REPORT_LUNS,
	PROBE_INQUIRY,
	PROBE_VPD83,
	PROBE_CAPACITY,
};

static void probe_next(struct ini_session *s);

static int probe_send(struct ini_session *s, uint64_t lun, const uint8_t *cdb, uint32_t len);

static void probe_cb(void *arg, int rc)
{
	struct ini_session *s = arg;
	const uint8_t *b = s->probe_buf;
	uint32_t got = s->probe_req.xfer_len - s->probe_req.residual;
	struct ini_lun *l = s->nluns ? &s->luns[s->probe_idx] : NULL;

	switch (s->probe_step) {
	case PROBE_REPORT_LUNS:
		if (rc == 0 && got >= 8) {
			uint32_t n = UTIL_MIN(get_be32(b) / 8, (got - 8) / 8);
			for (uint32_t i = 0; i < n && s->nluns < INI_MAX_LUNS; i++) {
				memset(&s->luns[s->nluns], 0, sizeof(s->luns[0]));
				s->luns[s->nluns++].lun = ini_lun_decode(b + 8 + 8 * i);
			}
		} else {
			/* SPC-4 7.8 is mandatory, yet: fall back to LUN 0. */
			log_warn("%s: REPORT LUNS failed (%d): assuming LUN 0", s->host, rc);
			memset(&s->luns[0], 0, sizeof(s->luns[0]));
			s->nluns = 1;
		}
		s->probe_idx = 0;
		s->probe_step = PROBE_INQUIRY;
		break;
	case PROBE_INQUIRY:
		if (rc == 0 && got >= 36) {
			l->device_type = b[0] & 0x1f;
			memcpy(l->vendor, b + 8, 8);
			memcpy(l->product, b + 16, 16);
			memcpy(l->revision, b + 32, 4);
		} else {
			l->device_type = 0x1f; /* unknown */
		}
		s->probe_step = PROBE_VPD83;
		break;
	case PROBE_VPD83:
		if (rc == 0 && got >= 4 && b[1] == 0x83) {
			uint32_t len = UTIL_MIN(UTIL_MIN(get_be16(b + 2), got - 4), INI_DESIG_MAX);
			memcpy(l->desig, b + 4, len);
			l->desig_len = (uint16_t)len;
		}
		s->probe_step = l->device_type == 0 ? PROBE_CAPACITY : PROBE_INQUIRY;
		if (s->probe_step == PROBE_INQUIRY)
			s->probe_idx++;
		break;
	case PROBE_CAPACITY:
		if (rc == 0 && got >= 32) {
			l->blocks = get_be64(b) + 1;
			l->block_size = get_be32(b + 8);
			l->thin = (b[14] & 0x80) != 0; /* LBPME (SBC-3 5.16.2) */
		}
		s->probe_step = PROBE_INQUIRY;
		s->probe_idx++;
		break;
	}
	probe_next(s);
}

static int probe_send(struct ini_session *s, uint64_t lun, const uint8_t *cdb, uint32_t len)
{
	struct ini_scsi_req *r = &s->probe_req;

	memset(r, 0, sizeof(*r));
	r->lun = lun;
	memcpy(r->cdb, cdb, 16);
	r->dir = INI_DIR_READ;
	s->probe_iov = (struct iovec){s->probe_buf, len};
	r->iov = &s->probe_iov;
	r->iovcnt = 1;
	r->xfer_len = len;
	return ini_scsi(s, r, probe_cb, s);
}

static void probe_next(struct ini_session *s)
{
	uint8_t cdb[16] = {0};
	uint64_t lun;
	int rc;

	if (s->state != SESS_PROBE)
		return;
	if (s->probe_idx >= s->nluns) {
		ini_probe_done(s, 0);
		return;
	}
	lun = s->luns[s->probe_idx].lun;
	switch (s->probe_step) {
	case PROBE_INQUIRY:
		cdb[0] = 0x12;
		put_be16(cdb + 3, 96);
		rc = probe_send(s, lun, cdb, 96);
		break;
	case PROBE_VPD83:
		cdb[0] = 0x12;
		cdb[1] = 0x01; /* EVPD */
		cdb[2] = 0x83;
		put_be16(cdb + 3, INI_DESIG_MAX + 4);
		rc = probe_send(s, lun, cdb, INI_DESIG_MAX + 4);
		break;
	default:
		cdb[0] = 0x9e; /* SERVICE ACTION IN (16), READ CAPACITY (16) */
		cdb[1] = 0x10;
		put_be32(cdb + 10, 32);
		rc = probe_send(s, lun, cdb, 32);
		break;
	}
	if (rc < 0)
		ini_probe_done(s, rc);
}

void ini_probe_start(struct ini_session *s)
{
	uint8_t cdb[16] = {0xa0}; /* REPORT LUNS (SPC-4 6.33) */
	uint32_t len = 8 + 8 * INI_MAX_LUNS;
	int rc;

	s->nluns = 0;
	s->probe_idx = 0;
	s->probe_step = PROBE_REPORT_LUNS;
	if (!s->probe_buf) {
		s->probe_buf = malloc(PROBE_BUF_LEN);
		if (!s->probe_buf) {
			ini_probe_done(s, -ENOMEM);
			return;
		}
	}
	put_be32(cdb + 6, len);
	rc = probe_send(s, 0, cdb, len);
	if (rc < 0)
		ini_probe_done(s, rc);
}
