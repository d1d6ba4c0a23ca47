/* SPDX-License-Identifier: MIT */
/* Started as root with `user = nobody` and `group = nogroup`: the segments,
 * sockets and stats file belong to nobody:nogroup with the configured mode,
 * the master and the workers run as nobody, plugins still load, and the
 * stop still removes everything. Skipped (77) when not root. */
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

int main(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");
	if (geteuid() != 0 || !pw || !gr) {
		printf("skipped: needs root and the nobody/nogroup accounts\n");
		return 77;
	}
	tc_init("privileges");
	/* nobody must reach the instance dir to remove files at stop. */
	CHECK(chmod(tc_dir, 0711) == 0, "chmod");
	const char *args[] = {"--workers", "1",       "--channels", "2",    "--user", "nobody",
	                      "--group",   "nogroup", "--mode",     "0640", NULL};
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
