// SPDX-License-Identifier: MIT
/*
 * locks.c - lock shims for one task, and the task's non-block bookkeeping.
 *
 * See locks.h. Nothing here waits: the only holder a lock can have is the
 * task asking for it, so a taken lock is a bug in the core, not contention.
 */
#include <stdio.h>
#include <stdlib.h>

#include "locks.h"

/* The state the kernel keeps in the task_struct, for the one task. */
static struct {
	unsigned int non_block_count;
	struct lock_stats stats;
} current;

void hmm_bug(const char *file, int line, const char *condition)
{
	fprintf(stderr, "hmm-c: BUG at %s:%d: %s\n", file, line, condition);
	abort();
}

/* down_read() and down_write() may sleep: count them, and where they are. */
static void might_sleep(void)
{
	current.stats.sleeping++;
	if (current.non_block_count)
		current.stats.sleeping_in_non_block++;
}

void spin_lock_init(spinlock_t *lock)
{
	lock->locked = false;
}

void spin_lock(spinlock_t *lock)
{
	BUG_ON(lock->locked);
	lock->locked = true;
}

void spin_unlock(spinlock_t *lock)
{
	BUG_ON(!lock->locked);
	lock->locked = false;
}

void init_rwsem(struct rw_semaphore *sem)
{
	sem->readers = 0;
	sem->writer = false;
}

void down_read(struct rw_semaphore *sem)
{
	might_sleep();
	BUG_ON(sem->writer);
	sem->readers++;
}

/* Never sleeps: false if a writer holds @sem, where down_read() would wait. */
bool down_read_trylock(struct rw_semaphore *sem)
{
	if (current.non_block_count)
		current.stats.trylocks_in_non_block++;
	if (sem->writer)
		return false;
	sem->readers++;
	return true;
}

void up_read(struct rw_semaphore *sem)
{
	BUG_ON(!sem->readers);
	sem->readers--;
}

void down_write(struct rw_semaphore *sem)
{
	might_sleep();
	BUG_ON(sem->writer || sem->readers);
	sem->writer = true;
}

void up_write(struct rw_semaphore *sem)
{
	BUG_ON(!sem->writer);
	sem->writer = false;
}

void non_block_start(void)
{
	current.non_block_count++;
	current.stats.non_block_sections++;
}

void non_block_end(void)
{
	BUG_ON(!current.non_block_count);
	current.non_block_count--;
}

void lock_stats_read(struct lock_stats *stats)
{
	*stats = current.stats;
}
