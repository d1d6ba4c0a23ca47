/* SPDX-License-Identifier: MIT */
/* Instance lifecycle: create/attach checks, file modes, heartbeat, the closed
 * flag, and an epoch change (the daemon re-creating the instance). */
#include "core/fixture.h"

static void test_create_rejects_bad_options(void **state)
{
	(void)state;
	struct shmring_instance *inst = (struct shmring_instance *)1;
	struct shmring_create_opts o = {.dir = "/dev/shm/shmring-test-never",
	                                .nchannels = 1,
	                                .nworkers = 1,
	                                .uid = (uid_t)-1,
	                                .gid = (gid_t)-1};
	struct shmring_create_opts bad;
	bad = o, bad.nchannels = 0;
	assert_int_equal(shmring_instance_create(&bad, &inst), -EINVAL);
	assert_null(inst);
	bad = o, bad.nchannels = SHMRING_MAX_CHANNELS + 1;
	assert_int_equal(shmring_instance_create(&bad, &inst), -EINVAL);
	bad = o, bad.nworkers = SHMRING_MAX_WORKERS + 1;
	assert_int_equal(shmring_instance_create(&bad, &inst), -EINVAL);
	bad = o, bad.sq_size = 6000;
	assert_int_equal(shmring_instance_create(&bad, &inst), -EINVAL);
	bad = o, bad.cq_size = 2048;
	assert_int_equal(shmring_instance_create(&bad, &inst), -EINVAL);
	bad = o, bad.mode = 010000;
	assert_int_equal(shmring_instance_create(&bad, &inst), -EINVAL);
	bad = o, bad.dir = "";
	assert_int_equal(shmring_instance_create(&bad, &inst), -EINVAL);
	assert_int_equal(access(o.dir, F_OK), -1);
}

static void test_attach_errors(void **state)
{
	(void)state;
	struct shmring_instance *inst = (struct shmring_instance *)1;
	char dir[] = "/dev/shm/shmring-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(shmring_instance_attach(dir, &inst), -ENOENT);
	assert_null(inst);
	/* a file that is not a control segment */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ctl", dir);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64), 0);
	assert_int_equal(shmring_instance_attach(dir, &inst), -EPROTO);
	assert_int_equal(ftruncate(fd, 1 << 16), 0); /* big enough, all zeros */
	assert_int_equal(shmring_instance_attach(dir, &inst), -EPROTO);
	assert_null(inst);
	close(fd);
	unlink(path);
	rmdir(dir);
}

static void test_attach_sees_what_create_made(void **state)
{
	(void)state;
	struct tinst t;
	assert_int_equal(tinst_create(&t, 3, 8192, 16384), 0);
	struct shmring_instance *cl;
	assert_int_equal(shmring_instance_attach(t.dir, &cl), 0);
	assert_int_equal(shmring_instance_nchannels(cl), 3);
	assert_int_equal(shmring_instance_nworkers(cl), 1);
	assert_true(shmring_instance_epoch(cl) != 0);
	assert_true(shmring_instance_epoch(cl) == shmring_instance_epoch(t.inst));
	/* files carry the requested mode, and the channel geometry */
	struct stat st;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ch-2", t.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, RAW_HDR_BYTES + 8192 + 16384);
	struct shmring_chan *c;
	assert_int_equal(shmring_chan_open(cl, 2, SHMRING_CLIENT, &c), 0);
	assert_int_equal(shmring_chan_index(c), 2);
	assert_true(shmring_chan_epoch(c) == shmring_instance_epoch(cl));
	assert_int_equal(shmring_chan_max_payload(c), 8192 / 2 - SHMRING_REC_HDR);
	assert_int_equal(shmring_chan_is_closed(c), 0);
	shmring_chan_close(c);
	assert_int_equal(shmring_chan_open(cl, 3, SHMRING_CLIENT, &c), -EINVAL);
	assert_int_equal(shmring_chan_open(cl, 0, 7, &c), -EINVAL);
	/* the worker map: channel k is served by k mod nworkers */
	assert_int_equal(shmring_instance_set_workers(t.inst, 2), 0);
	assert_int_equal(shmring_instance_nworkers(cl), 2);
	assert_int_equal(shmring_instance_set_workers(t.inst, 0), -EINVAL);
	size_t sz = 0;
	uint8_t *raw = raw_map(&t, 1, &sz);
	assert_non_null(raw);
	assert_int_equal(raw_load32(raw, RAW_SERVER_SLOT), 1);
	munmap(raw, sz);
	shmring_instance_close(cl, 0);
	tinst_destroy(&t);
}

static void test_default_mode_is_0660(void **state)
{
	(void)state;
	char dir[] = "/dev/shm/shmring-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct shmring_create_opts o = {
	    .dir = dir, .nchannels = 1, .nworkers = 1, .uid = (uid_t)-1, .gid = (gid_t)-1};
	struct shmring_instance *inst;
	mode_t old = umask(077); /* the mode must not depend on the umask */
	assert_int_equal(shmring_instance_create(&o, &inst), 0);
	umask(old);
	struct stat st;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ch-0", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, SHMRING_DEFAULT_MODE);
	assert_int_equal(st.st_size, RAW_HDR_BYTES + 2 * SHMRING_DEFAULT_RING);
	snprintf(path, sizeof(path), "%s/ctl", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, SHMRING_DEFAULT_MODE);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750); /* the group may search, never write */
	shmring_instance_close(inst, 1);
	rmdir(dir);
}

/* The instance directory and its parents; a name too long for an instance
 * is refused before any directory is made. */
static void test_mkdir(void **state)
{
	(void)state;
	char top[] = "/dev/shm/shmring-test-XXXXXX";
	assert_non_null(mkdtemp(top));
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/a/b", top);
	struct shmring_create_opts o = {
	    .dir = dir, .mode = 0640, .uid = (uid_t)-1, .gid = (gid_t)-1};
	mode_t old = umask(0077);
	int dfd = shmring_instance_mkdir(&o);
	assert_true(dfd >= 0);
	close(dfd);
	umask(old);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750); /* x where r, whatever the umask */

	/* PATH_MAX - 20 bytes: fits a path, not an instance. */
	long_path(dir, sizeof(dir), top, PATH_MAX - 20);
	assert_int_equal(shmring_instance_mkdir(&o), -ENAMETOOLONG);
	snprintf(dir, sizeof(dir), "%s/long", top);
	assert_int_equal(access(dir, F_OK), -1);
	snprintf(dir, sizeof(dir), "rm -rf %s", top);
	assert_int_equal(system(dir), 0);
}

static void test_heartbeat(void **state)
{
	struct fx *f = *state;
	shmring_instance_beat(f->t.inst);
	int64_t age = shmring_instance_heartbeat_age_ns(f->t.inst);
	assert_true(age >= 0 && age < 5000000000ll);
	uint64_t beat = raw_load64(f->raw, RAW_HEARTBEAT);
	assert_true(beat != 0 && beat <= shmring_now_ns());
	/* a heartbeat from the past shows as age */
	uint64_t t0 = shmring_now_ns();
	shmring_instance_beat(f->t.inst);
	assert_true(raw_load64(f->raw, RAW_HEARTBEAT) >= t0);
}

static void test_closed_flag(void **state)
{
	struct fx *f = *state;
	struct shmring_instance *cl_inst;
	assert_int_equal(shmring_instance_attach(f->t.dir, &cl_inst), 0);
	assert_int_equal(shmring_instance_heartbeat_age_ns(cl_inst) >= 0, 1);
	/* a record published before the close is still delivered */
	assert_int_equal(fx_put(f->cl, 10, 1, 1), 0);
	shmring_publish(f->cl);
	assert_int_equal(shmring_chan_is_closed(f->cl), 0);
	shmring_instance_set_closed(f->t.inst);
	assert_int_equal(raw_load32(f->raw, RAW_CLOSED), 1);
	assert_int_equal(shmring_chan_is_closed(f->cl), 1);
	assert_int_equal(shmring_chan_is_closed(f->sv), 1);
	assert_int_equal(shmring_instance_heartbeat_age_ns(cl_inst), -ESTALE);
	/* the client may not produce into a closed channel */
	struct shmring_claim cl;
	assert_int_equal(shmring_claim(f->cl, 10, &cl), -EPIPE);
	assert_null(cl.payload);
	assert_int_equal(shmring_send(f->cl, 1, 1, "x", 1), -EPIPE);
	/* the server still drains what is there */
	fx_expect(f->sv, 10, 1, 1);
	shmring_release(f->sv);
	shmring_instance_close(cl_inst, 0);
}

/* The daemon restarts and re-creates the instance: old mappings see
 * "closed", opening a channel through the old instance is -ESTALE, a fresh
 * attach gets the new epoch and clean rings. */
static void test_epoch_change(void **state)
{
	struct fx *f = *state;
	struct shmring_instance *old_cl;
	assert_int_equal(shmring_instance_attach(f->t.dir, &old_cl), 0);
	struct shmring_chan *old_c;
	assert_int_equal(shmring_chan_open(old_cl, 0, SHMRING_CLIENT, &old_c), 0);
	assert_int_equal(fx_put(old_c, 10, 1, 1), 0);
	shmring_publish(old_c);
	uint64_t old_epoch = shmring_instance_epoch(old_cl);

	/* the daemon restarts: a new create over the same directory */
	struct shmring_instance *srv2;
	struct shmring_create_opts o = {.dir = f->t.dir,
	                                .nchannels = 1,
	                                .nworkers = 1,
	                                .sq_size = FX_RING,
	                                .cq_size = FX_RING,
	                                .mode = 0600,
	                                .uid = (uid_t)-1,
	                                .gid = (gid_t)-1};
	assert_int_equal(shmring_instance_create(&o, &srv2), 0);
	uint64_t new_epoch = shmring_instance_epoch(srv2);
	assert_true(new_epoch != 0 && new_epoch != old_epoch);

	/* old mappings (client and server) see closed */
	assert_int_equal(shmring_chan_is_closed(old_c), 1);
	assert_int_equal(shmring_chan_is_closed(f->cl), 1);
	assert_int_equal(shmring_chan_is_closed(f->sv), 1);
	assert_int_equal(shmring_instance_heartbeat_age_ns(old_cl), -ESTALE);
	struct shmring_claim cl;
	assert_int_equal(shmring_claim(old_c, 10, &cl), -EPIPE);
	/* through the old instance, the new channel file is stale */
	struct shmring_chan *c = (struct shmring_chan *)1;
	assert_int_equal(shmring_chan_open(old_cl, 0, SHMRING_CLIENT, &c), -ESTALE);
	assert_null(c);
	assert_int_equal(shmring_chan_claim(old_cl, &c), -ESTALE);
	assert_null(c);

	/* re-attach: new epoch, empty rings, not closed */
	struct shmring_instance *new_cl;
	assert_int_equal(shmring_instance_attach(f->t.dir, &new_cl), 0);
	assert_true(shmring_instance_epoch(new_cl) == new_epoch);
	assert_int_equal(shmring_chan_open(new_cl, 0, SHMRING_CLIENT, &c), 0);
	assert_int_equal(shmring_chan_is_closed(c), 0);
	struct shmring_chan *s;
	assert_int_equal(shmring_chan_open(srv2, 0, SHMRING_SERVER, &s), 0);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(s, &rec), SHMRING_EMPTY);
	assert_int_equal(fx_put(c, 20, 2, 2), 0);
	shmring_publish(c);
	fx_expect(s, 20, 2, 2);
	shmring_release(s);
	shmring_chan_close(s);
	shmring_chan_close(c);
	shmring_chan_close(old_c);
	shmring_instance_close(new_cl, 0);
	shmring_instance_close(old_cl, 0);
	shmring_instance_close(srv2, 0); /* the fixture unlinks the files */
}

/* Re-creating with fewer channels removes the extra channel files and
 * closes their old mappings. */
static void test_recreate_with_fewer_channels(void **state)
{
	(void)state;
	struct tinst t;
	assert_int_equal(tinst_create(&t, 4, 4096, 4096), 0);
	struct shmring_chan *c3;
	assert_int_equal(shmring_chan_open(t.inst, 3, SHMRING_CLIENT, &c3), 0);
	struct shmring_instance *srv2;
	struct shmring_create_opts o = {.dir = t.dir,
	                                .nchannels = 2,
	                                .nworkers = 1,
	                                .sq_size = 4096,
	                                .cq_size = 4096,
	                                .mode = 0600,
	                                .uid = (uid_t)-1,
	                                .gid = (gid_t)-1};
	assert_int_equal(shmring_instance_create(&o, &srv2), 0);
	assert_int_equal(shmring_chan_is_closed(c3), 1);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ch-3", t.dir);
	assert_int_equal(access(path, F_OK), -1);
	shmring_chan_close(c3);
	shmring_instance_close(t.inst, 0);
	t.inst = srv2;
	tinst_destroy(&t);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(shmring_strerror(SHMRING_FULL), "ring full");
	assert_string_equal(shmring_strerror(SHMRING_EMPTY), "ring empty");
	assert_non_null(shmring_strerror(-EPROTO));
	assert_non_null(shmring_strerror(-ENOENT));
	assert_non_null(shmring_strerror(12345));
}

static void test_doorbell_path(void **state)
{
	struct fx *f = *state;
	char buf[PATH_MAX], want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/ch-0.bell", f->t.dir);
	assert_int_equal(shmring_doorbell_path(f->t.inst, 0, buf, sizeof(buf)), (int)strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(shmring_doorbell_path(f->t.inst, 0, buf, 8), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_rejects_bad_options),
	    cmocka_unit_test(test_attach_errors),
	    cmocka_unit_test(test_attach_sees_what_create_made),
	    cmocka_unit_test(test_default_mode_is_0660),
	    cmocka_unit_test(test_mkdir),
	    cmocka_unit_test_setup_teardown(test_heartbeat, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_closed_flag, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_epoch_change, fx_setup, fx_teardown),
	    cmocka_unit_test(test_recreate_with_fewer_channels),
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test_setup_teardown(test_doorbell_path, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
