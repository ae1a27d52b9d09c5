/*
 * engine: vmengined's configuration and wiring. Control thread only.
 */
#ifndef VMENGINE_ENGINE_H
#define VMENGINE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "iscsi-tgt/tgt.h"

#define ENG_PATH_MAX	4096
#define ENG_MAX_PORTALS 8
#define ENG_MAX_VOLUMES 256

struct eng_volume {
	char name[VOL_NAME_MAX];
	uint64_t size;
	uint32_t block_size;
	struct iscsi_chap_cred chap;
};

struct eng_portal {
	char addr[64];
	uint16_t port;
};

struct eng_config {
	char node_name[64];
	char state_dir[ENG_PATH_MAX];
	char pool_dir[ENG_PATH_MAX];
	bool debug;
	bool syslog;
	unsigned reactors; /* 0: one per core */
	struct tgt_config tgt;
	struct eng_portal portals[ENG_MAX_PORTALS];
	unsigned nportals;
	struct eng_volume volumes[ENG_MAX_VOLUMES];
	unsigned nvolumes;
};

/* Fill every setting with its default (the values of vmengine.conf.example). */
void eng_config_default(struct eng_config *cfg);

/*
 * Read \p path over the defaults. Returns 0, or -1 with one line describing
 * the first problem (file, line, setting) in \p err.
 */
int eng_config_load(struct eng_config *cfg, const char *path, char *err, size_t errlen);

/* Parse "512", "64K", "10G", ... (powers of 1024). Returns 0 or -EINVAL. */
int eng_parse_size(const char *s, uint64_t *out);

/* Parse "1.2.3.4:3260", "[::1]:3260" or "1.2.3.4" (port 3260). Returns 0 or -EINVAL. */
int eng_parse_portal(const char *s, struct eng_portal *out);

#endif /* VMENGINE_ENGINE_H */
