/* SPDX-License-Identifier: MIT */
/* Started as root: without `user` shmringd refuses to start. With
 * `user = nobody` and `group = nogroup`: root only makes the instance
 * directory (nobody's, not writable by the group) and every file in it is
 * made as nobody, so a symlink planted there never meets a root open or
 * truncate; the segments, sockets and stats file belong to nobody:nogroup
 * with the configured mode, the master and the workers run as nobody,
 * plugins still load, and the stop still removes everything. Skipped (77)
 * when not root. */
#include "client.h"

#include <pwd.h>
#include <grp.h>

static uid_t proc_uid(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	CHECK(f, "open %s", path);
	unsigned ruid = 0, euid = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %u %u", &ruid, &euid) == 2)
			break;
	fclose(f);
	CHECK(ruid == euid, "real and effective uid differ");
	return (uid_t)euid;
}

/* shmringd as root with no --user at all: exit status 2 and why. */
static void refuses_root_without_user(void)
{
	char shm[400];
	snprintf(shm, sizeof(shm), "%s/noroot", tc_dir);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int fd = open(tc_errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execl(SHMRINGD_PATH, SHMRINGD_PATH, "--foreground", "--shm-dir", shm,
		      "--plugin-dir", PLUGIN_DIRS, (char *)NULL);
		_exit(127);
	}
	tc_pid = pid; /* killed at exit if it does start */
	int st = tc_wait_exit(pid, 10 * SEC);
	CHECK(st == 2, "root without user: exit status %d, want 2", st);
	CHECK(tc_log_contains("refusing to run as root without `user`"), "no reason given");
	CHECK(access(shm, F_OK) < 0, "the directory was made anyway");
}

int main(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");
	if (geteuid() != 0 || !pw || !gr) {
		printf("skipped: needs root and the nobody/nogroup accounts\n");
		return 77;
	}
	tc_init("privileges");
	refuses_root_without_user();
	/* nobody must reach the instance dir to bind its sockets. */
	CHECK(chmod(tc_dir, 0711) == 0, "chmod");
	/* Left from an earlier root run: symlinks where the lock, the stats
	 * file and ctl go. A lock opened by root through the symlink would
	 * truncate the victim; as nobody, without following it, it is refused. */
	char victim[400], link[400];
	snprintf(victim, sizeof(victim), "%s/victim", tc_dir);
	FILE *vf = fopen(victim, "w");
	CHECK(vf && fputs("precious\n", vf) >= 0 && fclose(vf) == 0, "victim");
	CHECK(mkdir(tc_shm, 0700) == 0, "mkdir");
	const char *planted[] = {"shmringd.lock", "stats", "ctl"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(link, sizeof(link), "%s/%s", tc_shm, planted[i]);
		CHECK(symlink(victim, link) == 0, "symlink %s", link);
	}
	const char *args[] = {"--workers", "1",       "--channels", "2",    "--user", "nobody",
	                      "--group",   "nogroup", "--mode",     "0640", NULL};
	tc_pid = tc_spawn(args);
	CHECK(tc_wait_exit(tc_pid, 10 * SEC) == 1, "started with a symlink as its lock");
	CHECK(tc_log_contains("Too many levels of symbolic links"), "no reason given");
	struct stat vsb;
	CHECK(stat(victim, &vsb) == 0 && vsb.st_size == 9 && vsb.st_uid == 0,
	      "the lock symlink's target was changed: size %lld uid %u", (long long)vsb.st_size,
	      (unsigned)vsb.st_uid);
	snprintf(link, sizeof(link), "%s/shmringd.lock", tc_shm);
	CHECK(unlink(link) == 0, "unlink");
	tc_owner = pw->pw_uid;
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	const char *files[] = {"ctl", "ch-0", "ch-1", "ch-0.bell", "stats"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[400];
		struct stat sb;
		snprintf(path, sizeof(path), "%s/%s", tc_shm, files[i]);
		CHECK(stat(path, &sb) == 0, "stat %s", path);
		CHECK(sb.st_uid == pw->pw_uid && sb.st_gid == gr->gr_gid, "%s owned by %u:%u",
		      files[i], (unsigned)sb.st_uid, (unsigned)sb.st_gid);
		CHECK((sb.st_mode & 0777) == 0640, "%s mode %o", files[i], sb.st_mode & 0777);
	}
	struct stat dsb;
	CHECK(stat(tc_shm, &dsb) == 0 && dsb.st_uid == pw->pw_uid && dsb.st_gid == gr->gr_gid &&
	          (dsb.st_mode & 0777) == 0750,
	      "instance dir %u:%u mode %o, want nobody:nogroup 0750", (unsigned)dsb.st_uid,
	      (unsigned)dsb.st_gid, dsb.st_mode & 0777);
	CHECK(stat(victim, &dsb) == 0 && dsb.st_size == 9 && dsb.st_uid == 0,
	      "the symlinks' target was changed: size %lld uid %u", (long long)dsb.st_size,
	      (unsigned)dsb.st_uid);
	CHECK(proc_uid(tc_pid) == pw->pw_uid, "master still root");
	pid_t worker = (pid_t)shmring_instance_worker_counters(inst, 0)->pid;
	CHECK(proc_uid(worker) == pw->pw_uid, "worker still root");
	/* Plugins load and serve as nobody. */
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	struct tc_conf hello = {.id = 1, .plugin = "hello"};
	tc_register(c, &r, 1, &hello);
	uint64_t id = 1;
	tc_send(c, SHMRING_REC_ACCESS, 2, tc_fill_access, &id);
	tc_expect(c, &r, 2, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_OK, "ACCESS as nobody");
	shmring_chan_release(c);
	shmring_instance_close(inst, 0);
	kill(tc_pid, SIGTERM);
	CHECK(tc_wait_exit(tc_pid, 10 * SEC) == 0, "stop");
	char ctl[400];
	struct stat sb;
	snprintf(ctl, sizeof(ctl), "%s/ctl", tc_shm);
	CHECK(stat(ctl, &sb) < 0, "segments not removed by the unprivileged master");
	printf("ok\n");
	return 0;
}
