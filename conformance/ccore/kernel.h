/* SPDX-License-Identifier: MIT */
/*
 * kernel.h - the few kernel idioms the HMM core is written in.
 *
 * Errors are negative errno values, as in the kernel. The harness compares
 * them as numbers (-11 is -EAGAIN on the wire and in Python), so this core
 * builds only where the C library uses the Linux numbering; the assertions
 * below stop the build anywhere else.
 */
#ifndef HMM_CCORE_KERNEL_H
#define HMM_CCORE_KERNEL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

_Static_assert(EPERM == 1 && EFAULT == 14 && EAGAIN == 11 && ENOMEM == 12 &&
	       EINVAL == 22, "the harness speaks Linux errno numbers");
_Static_assert(sizeof(unsigned long) == sizeof(uint64_t),
	       "addresses are 64-bit, as on the kernels the seed ran on");

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/*
 * ERR_PTR() and friends: a pointer or an error in one return value. The
 * largest error they carry is MAX_ERRNO, as in the kernel; the core's own
 * refusal codes (hmm.h) are chosen below it.
 */
#define MAX_ERRNO	4095

static inline void *ERR_PTR(long error)
{
	return (void *)error;
}

static inline long PTR_ERR(const void *ptr)
{
	return (long)ptr;
}

static inline bool IS_ERR(const void *ptr)
{
	return (unsigned long)ptr >= (unsigned long)-MAX_ERRNO;
}

/*
 * BUG_ON(): an invariant of this core does not hold. As in the kernel it
 * stops everything; the message names the place.
 */
void hmm_bug(const char *file, int line, const char *condition);

#define BUG_ON(condition)						\
	do {								\
		if (condition)						\
			hmm_bug(__FILE__, __LINE__, #condition);	\
	} while (0)

static inline unsigned long umax(unsigned long a, unsigned long b)
{
	return a > b ? a : b;
}

static inline unsigned long umin(unsigned long a, unsigned long b)
{
	return a < b ? a : b;
}

#endif /* HMM_CCORE_KERNEL_H */
