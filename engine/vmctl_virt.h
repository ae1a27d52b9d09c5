/*
 * vmctl_virt.h: vmctl's back-end and virtualized-volume commands
 * (engine/vmctl_virt.c), kept apart from vmctl.c's core.
 */
#ifndef VMENGINE_VMCTL_VIRT_H
#define VMENGINE_VMCTL_VIRT_H

#include <stdbool.h>

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
/* Print what only these commands return; true when it printed. */
bool vmctl_virt_print(const Vm__CtlRequest *rq, const Vm__CtlReply *rep, bool json);
/* `volume show`: the legs of a virtualized volume and its resync progress. */
void vmctl_virt_print_legs(const Vm__CtlReply *rep, bool json);

#endif /* VMENGINE_VMCTL_VIRT_H */
