/* SPDX-License-Identifier: MIT */
/* Surviving a truncated segment. Whoever may write a segment may truncate
 * it (ftruncate needs only a writable file), and the next access to a page
 * past the new end raises SIGBUS, which would kill the daemon or a gateway
 * worker. So every segment is mapped through here, and on a SIGBUS inside
 * one the handler maps private zero pages over that whole mapping and
 * returns: the access is retried and reads zeros. The segment's line 0
 * (magic, epoch) is then gone, which the checks that run anyway notice:
 * shmring_chan_check() (the daemon's workers, shmring_client_health()) marks
 * the channel corrupt, and shmring_instance_repair() (the daemon) gives ctl
 * back its size and contents. This is what Wayland compositors do for
 * clients' shared memory pools. A SIGBUS anywhere else goes to the handler
 * that was installed before ours (or the default action: a core dump). */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* A master maps a header per channel and ctl; a worker inherits those and
 * maps its channels whole; a client maps ctl and one channel. */
#define GUARD_SLOTS (4 * SHMRING_MAX_CHANNELS)

static struct guard {
	_Atomic uintptr_t base; /* 0 = free; set last, cleared first */
	_Atomic size_t len;     /* page-rounded */
} guards[GUARD_SLOTS];

static struct sigaction prev_bus;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static _Atomic uint64_t caught; /* SIGBUS turned into zero pages */

static size_t page_round(size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	return (len + pg - 1) & ~(pg - 1);
}

/* Async-signal-safe: atomics, mmap and sigaction only. */
static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	for (size_t i = 0; i < GUARD_SLOTS; i++) {
		uintptr_t b = atomic_load_explicit(&guards[i].base, memory_order_acquire);
		size_t len = atomic_load_explicit(&guards[i].len, memory_order_relaxed);
		if (!b || a - b >= len)
			continue;
		int saved = errno;
		void *m = mmap((void *)b, len, PROT_READ | PROT_WRITE,
		               MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		errno = saved;
		if (m == MAP_FAILED)
			break;
		atomic_fetch_add_explicit(&caught, 1, memory_order_relaxed);
		return;
	}
	/* Not a segment of ours. */
	if ((prev_bus.sa_flags & SA_SIGINFO) && prev_bus.sa_sigaction) {
		prev_bus.sa_sigaction(sig, si, uctx);
	} else if (prev_bus.sa_handler != SIG_DFL && prev_bus.sa_handler != SIG_IGN) {
		prev_bus.sa_handler(sig);
	} else {
		/* Returning re-runs the access, which faults again with the
		 * default action: as if we had never been here. */
		signal(SIGBUS, SIG_DFL);
	}
}

static void install(void)
{
	struct sigaction sa = {.sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_ONSTACK};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &prev_bus);
}

static void guard_add(void *m, size_t len)
{
	pthread_once(&installed, install);
	for (size_t i = 0; i < GUARD_SLOTS; i++) {
		uintptr_t zero = 0;
		if (atomic_load_explicit(&guards[i].base, memory_order_relaxed))
			continue;
		atomic_store_explicit(&guards[i].len, page_round(len), memory_order_relaxed);
		/* Release pairs with the handler's acquire load of base. */
		if (atomic_compare_exchange_strong_explicit(&guards[i].base, &zero, (uintptr_t)m,
		                                            memory_order_release,
		                                            memory_order_relaxed))
			return;
	}
	/* Full: this mapping is unguarded; a truncation kills as before. */
}

static void guard_del(void *m)
{
	for (size_t i = 0; i < GUARD_SLOTS; i++) {
		if (atomic_load_explicit(&guards[i].base, memory_order_relaxed) == (uintptr_t)m) {
			atomic_store_explicit(&guards[i].base, 0, memory_order_release);
			return;
		}
	}
}

void *shmring__map_segment(int fd, size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m != MAP_FAILED)
		guard_add(m, len);
	return m;
}

int shmring__remap_segment(void *at, int fd, size_t len)
{
	void *m = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	return m == MAP_FAILED ? -errno : 0;
}

void shmring__unmap_segment(void *m, size_t len)
{
	guard_del(m);
	munmap(m, len);
}

uint64_t shmring_sigbus_caught(void)
{
	return atomic_load_explicit(&caught, memory_order_relaxed);
}
