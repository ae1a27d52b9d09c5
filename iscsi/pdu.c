/*
 * PDU framing shared by initiator and target: the resumable receive machine
 * and the writev transmit queue (RFC 7143 11.1, 13.1 digests).
 */
#define UTIL_LOG_TAG "pdu"
#include <errno.h>
#include <endian.h>
#include <unistd.h>

#include "iscsi/iscsi.h"

const char *iscsi_opcode_name(uint8_t opcode)
{
	switch (opcode & ISCSI_OP_MASK) {
	case ISCSI_OP_NOP_OUT:
		return "NOP-Out";
	case ISCSI_OP_SCSI_CMD:
		return "SCSI-Cmd";
	case ISCSI_OP_TMF_REQ:
		return "TMF-Req";
	case ISCSI_OP_LOGIN_REQ:
		return "Login-Req";
	case ISCSI_OP_TEXT_REQ:
		return "Text-Req";
	case ISCSI_OP_DATA_OUT:
		return "Data-Out";
	case ISCSI_OP_LOGOUT_REQ:
		return "Logout-Req";
	case ISCSI_OP_SNACK_REQ:
		return "SNACK";
	case ISCSI_OP_NOP_IN:
		return "NOP-In";
	case ISCSI_OP_SCSI_RSP:
		return "SCSI-Rsp";
	case ISCSI_OP_TMF_RSP:
		return "TMF-Rsp";
	case ISCSI_OP_LOGIN_RSP:
		return "Login-Rsp";
	case ISCSI_OP_TEXT_RSP:
		return "Text-Rsp";
	case ISCSI_OP_DATA_IN:
		return "Data-In";
	case ISCSI_OP_LOGOUT_RSP:
		return "Logout-Rsp";
	case ISCSI_OP_R2T:
		return "R2T";
	case ISCSI_OP_ASYNC_MSG:
		return "Async";
	case ISCSI_OP_REJECT:
		return "Reject";
	default:
		return "unknown";
	}
}

void iscsi_rx_init(struct iscsi_rx *rx, const struct iscsi_rx_ops *ops, void *ctx,
		   uint32_t max_data)
{
	memset(rx, 0, sizeof(*rx));
	rx->state = ISCSI_RX_BHS;
	rx->ops = ops;
	rx->ctx = ctx;
	rx->max_data = max_data;
}

/*
 * Read into dst[valid..want). Returns 1 when the stage is complete, 0 when the
 * socket would block, or a negative errno.
 */
static int rx_fill(struct iscsi_rx *rx, int fd, void *dst, uint32_t want)
{
	while (rx->valid < want) {
		ssize_t n = read(fd, (uint8_t *)dst + rx->valid, want - rx->valid);
		if (n > 0) {
			rx->valid += (uint32_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -errno;
	}
	return 1;
}

static void rx_next(struct iscsi_rx *rx, enum iscsi_rx_state s)
{
	rx->state = s;
	rx->valid = 0;
}

/* After the header stages: decide where the data goes, or deliver the PDU. */
static int rx_header_done(struct iscsi_rx *rx)
{
	struct iscsi_pdu *pdu = &rx->pdu;

	if (pdu->data_len == 0)
		return 1; /* deliver */
	pdu->data = NULL;
	int rc = rx->ops->data_dst(rx->ctx, pdu, &pdu->data);
	if (rc < 0)
		return rc;
	rx_next(rx, ISCSI_RX_DATA);
	return 0;
}

static int rx_error(struct iscsi_rx *rx, int rc)
{
	rx->state = ISCSI_RX_ERROR;
	return rc;
}

int iscsi_rx_read(struct iscsi_rx *rx, int fd)
{
	struct iscsi_pdu *pdu = &rx->pdu;
	int rc;

	for (;;) {
		bool deliver = false;

		switch (rx->state) {
		case ISCSI_RX_BHS:
			rc = rx_fill(rx, fd, pdu->hdr.raw, ISCSI_BHS_LEN);
			if (rc <= 0)
				return rc < 0 ? rx_error(rx, rc) : 0;
			pdu->ahs_len = pdu->hdr.bhs.total_ahs_len * 4u;
			pdu->data_len = iscsi_bhs_dlength(&pdu->hdr.bhs);
			pdu->data = NULL;
			pdu->ddigest_bad = false;
			/*
			 * RFC 7143 7.6.1: a PDU above MaxRecvDataSegmentLength
			 * is a protocol error; with an unbounded length we could
			 * not even resynchronise, so the connection goes.
			 */
			if (pdu->data_len > rx->max_data) {
				log_warn("%s with DataSegmentLength %u above the %u negotiated",
					 iscsi_opcode_name(pdu->hdr.bhs.opcode), pdu->data_len,
					 rx->max_data);
				return rx_error(rx, -EPROTO);
			}
			if (pdu->ahs_len)
				rx_next(rx, ISCSI_RX_AHS);
			else if (rx->hdigest)
				rx_next(rx, ISCSI_RX_HDIGEST);
			else {
				rc = rx_header_done(rx);
				if (rc < 0)
					return rx_error(rx, rc);
				deliver = rc == 1;
			}
			break;
		case ISCSI_RX_AHS:
			rc = rx_fill(rx, fd, pdu->ahs, pdu->ahs_len);
			if (rc <= 0)
				return rc < 0 ? rx_error(rx, rc) : 0;
			if (rx->hdigest) {
				rx_next(rx, ISCSI_RX_HDIGEST);
			} else {
				rc = rx_header_done(rx);
				if (rc < 0)
					return rx_error(rx, rc);
				deliver = rc == 1;
			}
			break;
		case ISCSI_RX_HDIGEST: {
			rc = rx_fill(rx, fd, rx->digest, ISCSI_DIGEST_LEN);
			if (rc <= 0)
				return rc < 0 ? rx_error(rx, rc) : 0;
			uint32_t crc =
			    util_crc32c_update(UTIL_CRC32C_INIT, pdu->hdr.raw, ISCSI_BHS_LEN);
			crc = util_crc32c_update(crc, pdu->ahs, pdu->ahs_len) ^ UTIL_CRC32C_XOR;
			uint32_t got;
			memcpy(&got, rx->digest, sizeof(got)); /* little-endian on the wire */
			got = le32toh(got);
			/*
			 * RFC 7143 7.8: a header digest error means the header
			 * cannot be trusted, including its lengths; at ERL 0
			 * the only recovery is dropping the connection.
			 */
			if (crc != got) {
				log_warn("header digest error (got %08x, computed %08x)", got, crc);
				return rx_error(rx, -EPROTO);
			}
			rc = rx_header_done(rx);
			if (rc < 0)
				return rx_error(rx, rc);
			deliver = rc == 1;
			break;
		}
		case ISCSI_RX_DATA:
			rc = rx_fill(rx, fd, pdu->data, pdu->data_len);
			if (rc <= 0)
				return rc < 0 ? rx_error(rx, rc) : 0;
			if (ISCSI_PAD(pdu->data_len))
				rx_next(rx, ISCSI_RX_PAD);
			else if (rx->ddigest)
				rx_next(rx, ISCSI_RX_DDIGEST);
			else
				deliver = true;
			break;
		case ISCSI_RX_PAD:
			rc = rx_fill(rx, fd, rx->pad, ISCSI_PAD(pdu->data_len));
			if (rc <= 0)
				return rc < 0 ? rx_error(rx, rc) : 0;
			if (rx->ddigest)
				rx_next(rx, ISCSI_RX_DDIGEST);
			else
				deliver = true;
			break;
		case ISCSI_RX_DDIGEST: {
			rc = rx_fill(rx, fd, rx->digest, ISCSI_DIGEST_LEN);
			if (rc <= 0)
				return rc < 0 ? rx_error(rx, rc) : 0;
			uint32_t crc =
			    util_crc32c_update(UTIL_CRC32C_INIT, pdu->data, pdu->data_len);
			crc = util_crc32c_update(crc, rx->pad, ISCSI_PAD(pdu->data_len)) ^
			      UTIL_CRC32C_XOR;
			uint32_t got;
			memcpy(&got, rx->digest, sizeof(got));
			/* The owner answers with a Reject (RFC 7143 7.8.1) */
			pdu->ddigest_bad = le32toh(got) != crc;
			deliver = true;
			break;
		}
		case ISCSI_RX_ERROR:
			return -EPROTO;
		}

		if (deliver) {
			rx_next(rx, ISCSI_RX_BHS);
			rc = rx->ops->pdu(rx->ctx, pdu);
			if (rc < 0)
				return rx_error(rx, rc);
			if (rc > 0)
				return 0;
		}
	}
}

/* ---- transmit ---- */

void iscsi_tx_init(struct iscsi_tx *tx)
{
	memset(tx, 0, sizeof(*tx));
	STAILQ_INIT(&tx->queue);
}

static const uint8_t zero_pad[4];
static size_t tx_pdu_len(const struct iscsi_txpdu *tp);

void iscsi_tx_queue(struct iscsi_tx *tx, struct iscsi_txpdu *tp)
{
	iscsi_bhs_set_dlength(&tp->hdr.bhs, tp->data_len);
	tp->hd = tx->hdigest;
	tp->dd = tx->ddigest && tp->data_len;
	if (tp->hd) {
		uint32_t crc = htole32(util_crc32c(tp->hdr.raw, ISCSI_BHS_LEN));
		memcpy(tp->hdigest, &crc, sizeof(crc));
	}
	if (tp->dd) {
		uint32_t crc = util_crc32c_update(UTIL_CRC32C_INIT, tp->data, tp->data_len);
		crc = util_crc32c_update(crc, zero_pad, ISCSI_PAD(tp->data_len)) ^ UTIL_CRC32C_XOR;
		crc = htole32(crc);
		memcpy(tp->ddigest, &crc, sizeof(crc));
	}
	STAILQ_INSERT_TAIL(&tx->queue, tp, link);
	tx->queued++;
	tx->queued_bytes += tx_pdu_len(tp);
}

/* Append the iovecs of one PDU; returns the count (at most 5). */
static int tx_iov(struct iscsi_txpdu *tp, struct iovec *iov)
{
	int n = 0;

	iov[n++] = (struct iovec){tp->hdr.raw, ISCSI_BHS_LEN};
	if (tp->hd)
		iov[n++] = (struct iovec){tp->hdigest, ISCSI_DIGEST_LEN};
	if (tp->data_len) {
		iov[n++] = (struct iovec){(void *)tp->data, tp->data_len};
		if (ISCSI_PAD(tp->data_len))
			iov[n++] = (struct iovec){(void *)zero_pad, ISCSI_PAD(tp->data_len)};
		if (tp->dd)
			iov[n++] = (struct iovec){tp->ddigest, ISCSI_DIGEST_LEN};
	}
	return n;
}

static size_t tx_pdu_len(const struct iscsi_txpdu *tp)
{
	size_t len = ISCSI_BHS_LEN + (tp->hd ? ISCSI_DIGEST_LEN : 0);

	if (tp->data_len)
		len += tp->data_len + ISCSI_PAD(tp->data_len) + (tp->dd ? ISCSI_DIGEST_LEN : 0);
	return len;
}

static void tx_complete(struct iscsi_tx *tx, struct iscsi_txpdu *tp)
{
	STAILQ_REMOVE_HEAD(&tx->queue, link);
	tx->queued--;
	tx->queued_bytes -= tx_pdu_len(tp);
	if (tp->done)
		tp->done(tp, tp->done_arg);
}

#define TX_IOV_MAX 64

int iscsi_tx_flush(struct iscsi_tx *tx, int fd)
{
	struct iovec iov[TX_IOV_MAX];

	while (!STAILQ_EMPTY(&tx->queue)) {
		int n = 0;
		struct iscsi_txpdu *tp;

		/* Gather whole PDUs while they fit, skipping what was sent. */
		STAILQ_FOREACH (tp, &tx->queue, link) {
			if (n + 5 > TX_IOV_MAX)
				break;
			n += tx_iov(tp, iov + n);
		}
		size_t skip = tx->sent;
		int first = 0;
		while (skip && skip >= iov[first].iov_len)
			skip -= iov[first++].iov_len;
		iov[first].iov_base = (uint8_t *)iov[first].iov_base + skip;
		iov[first].iov_len -= skip;

		size_t want = 0;
		for (int i = first; i < n; i++)
			want += iov[i].iov_len;
		ssize_t w = writev(fd, iov + first, n - first);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -EAGAIN;
			return -errno;
		}
		size_t done = tx->sent + (size_t)w;
		while ((tp = STAILQ_FIRST(&tx->queue)) != NULL) {
			size_t len = tx_pdu_len(tp);
			if (done < len)
				break;
			done -= len;
			tx_complete(tx, tp);
		}
		tx->sent = done;
		/* A short write means the socket buffer is full: wait for EPOLLOUT. */
		if ((size_t)w < want)
			return -EAGAIN;
	}
	return 0;
}

void iscsi_tx_abort(struct iscsi_tx *tx)
{
	struct iscsi_txpdu *tp;

	while ((tp = STAILQ_FIRST(&tx->queue)) != NULL)
		tx_complete(tx, tp);
	tx->sent = 0;
}
