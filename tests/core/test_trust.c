/* SPDX-License-Identifier: MIT */
/* Who may own what: the instance directory is made only where no one else
 * could replace it, is never adopted from someone else, is writable by its
 * owner only, and a client trusts a directory and segments only when they
 * belong to root or to the daemon's user. The tests that chown need root
 * and the nobody account; they skip otherwise. */
#include "core/fixture.h"

#include <pwd.h>
#include <stdbool.h>

static uid_t nobody_uid(void)
{
	struct passwd *pw = getpwnam("nobody");
	return pw ? pw->pw_uid : (uid_t)-1;
}

static bool can_chown(void)
{
	return geteuid() == 0 && nobody_uid() != (uid_t)-1;
}

static int create_in(const char *dir, struct shmring_instance **out)
{
	struct shmring_create_opts o = {.dir = dir,
	                                .nchannels = 2,
	                                .nworkers = 1,
	                                .sq_size = 4096,
	                                .cq_size = 4096,
	                                .uid = (uid_t)-1,
	                                .gid = (gid_t)-1};
	return shmring_instance_create(&o, out);
}

static void rm_rf(const char *dir)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A parent that others may write to (not sticky): they could rename the
 * instance directory away and put their own there. */
static void test_writable_parent_refused(void **state)
{
	(void)state;
	char top[] = "/dev/shm/shmring-test-XXXXXX";
	assert_non_null(mkdtemp(top));
	assert_int_equal(chmod(top, 0777), 0);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/inst", top);
	struct shmring_instance *inst = NULL;
	assert_int_equal(create_in(dir, &inst), -EPERM);
	assert_null(inst);
	/* Sticky, like /dev/shm itself: fine. */
	assert_int_equal(chmod(top, 01777), 0);
	assert_int_equal(create_in(dir, &inst), 0);
	shmring_instance_close(inst, 1);
	rm_rf(top);
}

/* The directory someone else made first is refused, not chmod'ed and
 * adopted. */
static void test_foreign_dir_refused(void **state)
{
	(void)state;
	if (!can_chown())
		skip();
	char dir[] = "/dev/shm/shmring-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chown(dir, nobody_uid(), (gid_t)-1), 0);
	struct shmring_instance *inst = NULL;
	assert_int_equal(create_in(dir, &inst), -EPERM);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_uid, nobody_uid());
	assert_int_equal(st.st_mode & 07777, 0700); /* untouched */
	rm_rf(dir);
}

/* A symlink planted where a segment will be: created over, never
 * followed (the target keeps its bytes). */
static void test_symlink_not_followed(void **state)
{
	(void)state;
	char dir[] = "/dev/shm/shmring-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char victim[PATH_MAX], link[PATH_MAX];
	snprintf(victim, sizeof(victim), "%s.victim", dir);
	FILE *f = fopen(victim, "w");
	assert_non_null(f);
	fputs("precious", f);
	fclose(f);
	snprintf(link, sizeof(link), "%s/ch-0", dir);
	assert_int_equal(symlink(victim, link), 0);
	struct shmring_instance *inst = NULL;
	assert_int_equal(create_in(dir, &inst), 0);
	struct stat st;
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_size, 8);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* A symlink put in place of a segment afterwards is refused. */
	char ch1[PATH_MAX];
	snprintf(ch1, sizeof(ch1), "%s/ch-1", dir);
	assert_int_equal(unlink(ch1), 0);
	assert_int_equal(symlink(link, ch1), 0);
	struct shmring_chan *c;
	assert_int_equal(shmring_chan_open(inst, 1, SHMRING_CLIENT, &c), -ELOOP);
	shmring_instance_close(inst, 1);
	unlink(ch1);
	unlink(victim);
	rm_rf(dir);
}

/* A client trusts a directory only when it belongs to root or the daemon's
 * user and nobody else may write to it, and segments only when they belong
 * to the directory's owner. */
static void test_client_checks_owner(void **state)
{
	(void)state;
	if (!can_chown())
		skip();
	uid_t nobody = nobody_uid();
	char dir[] = "/dev/shm/shmring-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct shmring_instance *srv, *cl;
	assert_int_equal(create_in(dir, &srv), 0);
	/* Ours (root's): fine. Writable by the group: refused. */
	assert_int_equal(shmring_instance_attach(dir, &cl), 0);
	shmring_instance_close(cl, 0);
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(shmring_instance_attach(dir, &cl), -EPERM);
	assert_int_equal(chmod(dir, 0750), 0);

	/* A directory of nobody's: only for a client that expects nobody. */
	assert_int_equal(chown(dir, nobody, (gid_t)-1), 0);
	assert_int_equal(shmring_instance_attach(dir, &cl), -EPERM);
	assert_null(cl);
	/* ... and then its ctl, still root's, is not nobody's: refused. */
	assert_int_equal(shmring_instance_attach_owned(dir, nobody, &cl), -EPERM);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ctl", dir);
	assert_int_equal(chown(path, nobody, (gid_t)-1), 0);
	assert_int_equal(shmring_instance_attach_owned(dir, nobody, &cl), 0);
	/* A channel of someone else's than the directory's owner. */
	struct shmring_chan *c;
	assert_int_equal(shmring_chan_open(cl, 0, SHMRING_CLIENT, &c), -EPERM);
	snprintf(path, sizeof(path), "%s/ch-0", dir);
	assert_int_equal(chown(path, nobody, (gid_t)-1), 0);
	assert_int_equal(shmring_chan_open(cl, 0, SHMRING_CLIENT, &c), 0);
	shmring_chan_close(c);
	shmring_instance_close(cl, 0);

	assert_int_equal(shmring_user_uid("nobody"), (int64_t)nobody);
	assert_int_equal(shmring_user_uid("4242"), 4242);
	assert_int_equal(shmring_user_uid("no-such-user-here"), -ENOENT);
	shmring_instance_close(srv, 1);
	rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_writable_parent_refused),
	    cmocka_unit_test(test_foreign_dir_refused),
	    cmocka_unit_test(test_symlink_not_followed),
	    cmocka_unit_test(test_client_checks_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
