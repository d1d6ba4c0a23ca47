/* SPDX-License-Identifier: MIT */
/*
 * The pause between two polls of shared memory in a spin-wait loop, written
 * once for every side that spins: the client library (shmring_client_spin),
 * the daemon's idle loop, a plugin that locks memory it shares with the
 * other workers (rate-limiting's counter table) and the ring benchmark.
 * Public and `static inline` on purpose: it is one instruction, and nothing
 * else here is needed to use it. LuaJIT does not call it (it spins through
 * shmring_client_spin).
 */
#ifndef SHMRING_SPIN_H
#define SHMRING_SPIN_H

/* Tell the CPU this is a spin-wait: x86's PAUSE (no memory-order
 * mis-speculation to unwind when the awaited store lands, and the sibling
 * hyperthread gets the core meanwhile), aarch64's YIELD; elsewhere nothing. */
static inline void shmring_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

#endif
