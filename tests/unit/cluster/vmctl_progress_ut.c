/*
 * vmctl_progress_ut.c: the pure parts of `vmctl volume show --watch` in
 * engine/vmctl_virt.c: the progress bar, the ETA, when a watch ends, and
 * the line printed on a non-terminal. engine/ has no unit-test target of its
 * own; the file is included here, where the cluster tests' libraries
 * (protobuf-c, util) link what it needs, and vmctl's one outside helper is
 * stubbed.
 */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "engine/vmctl_virt.c"

/* vmctl links engine/config.c for this; the tests never parse a size. */
int eng_parse_size(const char *s, uint64_t *out)
{
	(void)s;
	*out = 0;
	return -EINVAL;
}

static void test_bar(void)
{
	char buf[128];
	size_t n;

	n = vmctl_progress_bar(buf, sizeof(buf), 123, 256, 4, 10);
	CU_ASSERT_STRING_EQUAL(buf, "[####......] 48% 123/256 regions, ETA 4 s");
	CU_ASSERT_EQUAL(n, strlen(buf));
	/* No ETA known: none printed. */
	vmctl_progress_bar(buf, sizeof(buf), 0, 256, -1, 10);
	CU_ASSERT_STRING_EQUAL(buf, "[..........] 0% 0/256 regions");
	vmctl_progress_bar(buf, sizeof(buf), 256, 256, 0, 10);
	CU_ASSERT_STRING_EQUAL(buf, "[##########] 100% 256/256 regions, ETA 0 s");
	/* Rounded down: 99.6 % is not done yet. */
	vmctl_progress_bar(buf, sizeof(buf), 255, 256, 1, 4);
	CU_ASSERT_STRING_EQUAL(buf, "[###.] 99% 255/256 regions, ETA 1 s");
	/* Nothing to copy is done; more done than the total is capped. */
	vmctl_progress_bar(buf, sizeof(buf), 0, 0, -1, 4);
	CU_ASSERT_STRING_EQUAL(buf, "[####] 100% 0/0 regions");
	vmctl_progress_bar(buf, sizeof(buf), 300, 256, -1, 4);
	CU_ASSERT_STRING_EQUAL(buf, "[####] 100% 300/256 regions");
	/* Too small for the bar: empty; for the text: cut, terminated. */
	CU_ASSERT_EQUAL(vmctl_progress_bar(buf, 8, 1, 2, -1, 10), 0);
	CU_ASSERT_STRING_EQUAL(buf, "");
	n = vmctl_progress_bar(buf, 16, 1, 2, -1, 10);
	CU_ASSERT_EQUAL(n, 15);
	CU_ASSERT_EQUAL(strlen(buf), 15);
	CU_ASSERT_EQUAL(strncmp(buf, "[#####.....] 50", 15), 0);
}

static void test_eta(void)
{
	/* 100 regions in 2 s: 50/s; 300 left: 6 s. */
	CU_ASSERT_EQUAL(vmctl_eta_s(0, 1000, 100, 3000, 400), 6);
	/* Rounded up: 301 left at 50/s is 6.02 s -> 7. */
	CU_ASSERT_EQUAL(vmctl_eta_s(0, 1000, 99, 3000, 400), 7);
	CU_ASSERT_EQUAL(vmctl_eta_s(10, 0, 20, 1000, 20), 0);
	/* No progress, or no time between the samples: unknown. */
	CU_ASSERT_EQUAL(vmctl_eta_s(10, 0, 10, 1000, 20), -1);
	CU_ASSERT_EQUAL(vmctl_eta_s(0, 1000, 5, 1000, 20), -1);
}

/* A `volume show` reply: one volume with two legs, the owner's status or not. */
struct reply {
	Vm__CtlReply rep;
	Vm__Map map;
	Vm__Volume vol, *pvol;
	Vm__Leg legs[2], *plegs[2];
	Vm__CtlVirtStatus vs;
};

static void reply_init(struct reply *r, uint32_t leg1_state, bool owner, bool resyncing,
		       uint64_t done, uint64_t total)
{
	memset(r, 0, sizeof(*r));
	vm__ctl_reply__init(&r->rep);
	vm__map__init(&r->map);
	vm__volume__init(&r->vol);
	r->vol.name = "vd";
	r->vol.owner = 2;
	for (int l = 0; l < 2; l++) {
		vm__leg__init(&r->legs[l]);
		r->plegs[l] = &r->legs[l];
	}
	r->legs[1].state = leg1_state;
	r->vol.n_legs = 2;
	r->vol.legs = r->plegs;
	r->pvol = &r->vol;
	r->map.n_volumes = 1;
	r->map.volumes = &r->pvol;
	r->rep.map = &r->map;
	if (owner) {
		vm__ctl_virt_status__init(&r->vs);
		r->vs.resyncing = resyncing;
		r->vs.resync_done = done;
		r->vs.resync_total = total;
		r->rep.virt = &r->vs;
	}
}

/* What a line printed to stdout says. */
static void capture(const struct reply *r, const struct vmctl_watch *w, bool json, char *out,
		    size_t len)
{
	FILE *f = tmpfile();
	int saved = dup(STDOUT_FILENO);

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fflush(stdout);
	dup2(fileno(f), STDOUT_FILENO);
	vmctl_virt_watch_line(&r->rep, w, json);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(f);
	size_t n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void test_watch(void)
{
	struct vmctl_watch w = {.eta_s = -1};
	struct reply r;
	char line[512];

	/* On the owner: its live state decides, the ETA comes from the samples. */
	reply_init(&r, 2, true, true, 100, 400);
	CU_ASSERT_TRUE(vmctl_virt_resyncing(&r.rep));
	vmctl_virt_watch_sample(&w, &r.rep, 10000);
	CU_ASSERT_EQUAL(w.eta_s, -1); /* one sample: no rate yet */
	capture(&r, &w, false, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "vd: resync leg 1 [#####...............] 25% 100/400 "
				     "regions\n");
	reply_init(&r, 2, true, true, 200, 400);
	vmctl_virt_watch_sample(&w, &r.rep, 12000);
	CU_ASSERT_EQUAL(w.eta_s, 4);
	capture(&r, &w, false, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "vd: resync leg 1 [##########..........] 50% 200/400 "
				     "regions, ETA 4 s\n");
	capture(&r, &w, true, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "{\"name\":\"vd\",\"resyncing\":true,\"leg\":1,\"done\":200,"
				     "\"total\":400,\"percent\":50,\"eta_s\":4,\"owner\":2,"
				     "\"progress_here\":true}\n");
	/* A new resync (the count went back): a new rate. */
	reply_init(&r, 2, true, true, 10, 50);
	vmctl_virt_watch_sample(&w, &r.rep, 13000);
	CU_ASSERT_EQUAL(w.eta_s, -1);
	CU_ASSERT_EQUAL(w.done0, 10);
	/* Copied, the map not updated yet: not over. */
	reply_init(&r, 2, true, false, 0, 0);
	CU_ASSERT_TRUE(vmctl_virt_resyncing(&r.rep));
	capture(&r, &w, false, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "vd: resync leg 1 copied, being recorded ok in the map\n");
	/* Done: the watch ends. */
	reply_init(&r, 0, true, false, 0, 0);
	CU_ASSERT_FALSE(vmctl_virt_resyncing(&r.rep));
	vmctl_virt_watch_sample(&w, &r.rep, 14000);
	CU_ASSERT_FALSE(w.have_first);
	capture(&r, &w, false, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "vd: no resync running; leg 0 ok, leg 1 ok\n");
	/* Another engine: the map's leg state decides, the progress is the owner's. */
	reply_init(&r, 2, false, false, 0, 0);
	CU_ASSERT_TRUE(vmctl_virt_resyncing(&r.rep));
	capture(&r, &w, false, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "vd: resync leg 1 on node 2 (progress: vmctl volume show on "
				     "that engine)\n");
	/* A failed leg waiting for its back end is no resync running. */
	reply_init(&r, 1, false, false, 0, 0);
	CU_ASSERT_FALSE(vmctl_virt_resyncing(&r.rep));
	capture(&r, &w, false, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "vd: no resync running; leg 0 ok, leg 1 failed\n");
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("vmctl progress", NULL, NULL);
	CU_add_test(s, "progress bar", test_bar);
	CU_add_test(s, "ETA", test_eta);
	CU_add_test(s, "watch samples and lines", test_watch);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
