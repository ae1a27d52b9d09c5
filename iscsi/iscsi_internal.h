/*
 * iscsi private declarations, shared by the files of iscsi/ only.
 */
#ifndef VMENGINE_ISCSI_INTERNAL_H
#define VMENGINE_ISCSI_INTERNAL_H

#include <stdint.h>

#include "iscsi/iscsi.h"

/*
 * Parse an RFC 7143 6.1 numerical-value: a decimal-constant ("0" or digits
 * not starting with 0) or a hex-constant ("0x"/"0X" and 1..16 hex digits).
 * Returns 0 and *\p out, or -EINVAL (syntax) / -ERANGE (above 2^64 - 1).
 */
int iscsi_text_number(const char *s, uint64_t *out);

#endif /* VMENGINE_ISCSI_INTERNAL_H */
