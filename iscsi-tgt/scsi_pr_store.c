/*
 * Durable storage of the persistent reservation state of a logical unit
 * (APTPL, SPC-4 5.12.4): one small text file per LU in the state
 * directory, replaced atomically (write a temporary file, fsync it, rename
 * it over the old one, fsync the directory) so that a crash leaves either
 * the old or the new state, never a torn one.
 */
#define UTIL_LOG_TAG "pr"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iscsi-tgt/scsi_internal.h"

/* fsync the directory holding \p path, so a rename or unlink in it is durable. */
static int store_sync_dir(const char *path)
{
	char copy[TGT_PR_PATH_MAX];
	int fd, rc = 0;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int store_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int tgt_pr_store_save(const char *path, const char *text, size_t len)
{
	char tmp[TGT_PR_PATH_MAX + 8];
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto err;
	}
	rc = store_write_all(fd, text, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		goto err_unlink;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	rc = store_sync_dir(path);
	if (rc < 0)
		goto err;
	return 0;

err_unlink:
	unlink(tmp);
err:
	log_err("cannot save reservations to %s: %s", path, strerror(-rc));
	return rc;
}

int tgt_pr_store_remove(const char *path)
{
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		log_err("cannot remove %s: %s", path, strerror(errno));
		return -errno;
	}
	return store_sync_dir(path);
}

int tgt_pr_store_load(const char *path, char **text)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long len;
	int rc;

	*text = NULL;
	if (!f)
		return errno == ENOENT ? -ENOENT : -errno;
	if (fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
		rc = -errno;
		goto out;
	}
	if (len > TGT_PR_STORE_MAX) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)len + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
		rc = -EIO;
		free(buf);
		goto out;
	}
	buf[len] = '\0';
	*text = buf;
	rc = 0;
out:
	fclose(f);
	return rc;
}
