// SPDX-License-Identifier: MIT
/*
 * shims.c - locks, find_vma() and HMM's two calls, each a call to the host.
 *
 * See shims.h. Every lock call goes to the harness with the lock's name and
 * the name of the task that makes it; the harness keeps the state and
 * records the call (which is how DRV-1, DRV-4 and DRV-7 see it). A call the
 * harness could not complete abandons the request in progress.
 */
#include <stdio.h>
#include <stdlib.h>

#include "shims.h"

void hmm_bug(const char *file, int line, const char *condition)
{
	fprintf(stderr, "dmirror-c: BUG at %s:%d: %s\n", file, line, condition);
	abort();
}

_Noreturn void drv_abandon(struct drv_env *env)
{
	BUG_ON(!env->unwind);
	longjmp(*env->unwind, 1);
}

/* One lock primitive, by current; a try-lock's answer, else 0. */
static int lock_call(struct drv_env *env, const char *primitive,
		     const char *name)
{
	int ret = env->ops.lock(env->host, primitive, name, env->current);

	if (ret == DRV_HOST_FAILED)
		drv_abandon(env);
	return ret;
}

void mutex_init(struct mutex *lock, struct drv_env *env, const char *name)
{
	lock->name = name;
	lock->env = env;
}

/* May sleep until the holder lets go; in a non-block section, a bug (DRV-1). */
void mutex_lock(struct mutex *lock)
{
	lock_call(lock->env, "mutex_lock", lock->name);
}

/* Never sleeps: true if it took the mutex, false if someone holds it. */
bool mutex_trylock(struct mutex *lock)
{
	return lock_call(lock->env, "mutex_trylock", lock->name) == 1;
}

void mutex_unlock(struct mutex *lock)
{
	lock_call(lock->env, "mutex_unlock", lock->name);
}

void spin_lock_init(spinlock_t *lock, struct drv_env *env, const char *name)
{
	lock->name = name;
	lock->env = env;
}

void spin_lock(spinlock_t *lock)
{
	lock_call(lock->env, "spin_lock", lock->name);
}

void spin_unlock(spinlock_t *lock)
{
	lock_call(lock->env, "spin_unlock", lock->name);
}

void init_rwsem(struct rw_semaphore *sem, struct drv_env *env,
		const char *name)
{
	sem->name = name;
	sem->env = env;
}

void down_read(struct rw_semaphore *sem)
{
	lock_call(sem->env, "down_read", sem->name);
}

void up_read(struct rw_semaphore *sem)
{
	lock_call(sem->env, "up_read", sem->name);
}

void down_write(struct rw_semaphore *sem)
{
	lock_call(sem->env, "down_write", sem->name);
}

bool down_write_trylock(struct rw_semaphore *sem)
{
	return lock_call(sem->env, "down_write_trylock", sem->name) == 1;
}

void up_write(struct rw_semaphore *sem)
{
	lock_call(sem->env, "up_write", sem->name);
}

struct vm_area_struct *find_vma(struct mm_struct *mm, unsigned long addr)
{
	size_t i;

	for (i = 0; i < mm->nr_vmas; i++)
		if (mm->vmas[i].vm_start <= addr && addr < mm->vmas[i].vm_end)
			return &mm->vmas[i];
	return NULL;
}

/*
 * Snapshot @range and have HMM track it until hmm_vma_range_done(): 0, or
 * the error HMM returned (then nothing is tracked).
 */
int hmm_vma_get_pfns(struct hmm_range *range)
{
	struct drv_env *env = range->mm->env;
	int ret;

	if (env->ops.get_pfns(env->host, range->id, range->start, range->end,
			       range->pfns, range->npages, &ret))
		drv_abandon(env);
	return ret;
}

/* Stop tracking @range: true if no invalidation touched it meanwhile. */
bool hmm_vma_range_done(struct hmm_range *range)
{
	struct drv_env *env = range->mm->env;
	int valid = env->ops.range_done(env->host, range->id);

	if (valid == DRV_HOST_FAILED)
		drv_abandon(env);
	return valid == 1;
}
