/* SPDX-License-Identifier: MIT */
/*
 * list.h - an intrusive, circular, doubly linked list.
 *
 * A list_head is embedded in each object that is kept on a list, and the
 * object is found again with list_entry(). The order of the seed's lists is
 * part of the behaviour this core states: mirrors and ranges are added at the
 * head, so a walk meets the newest first (kernel-semantics.md §2.1; REG-4,
 * REL-2). Only the operations the core uses are here.
 */
#ifndef HMM_CCORE_LIST_H
#define HMM_CCORE_LIST_H

#include "kernel.h"

struct list_head {
	struct list_head *next, *prev;
};

static inline void INIT_LIST_HEAD(struct list_head *list)
{
	list->next = list;
	list->prev = list;
}

static inline bool list_empty(const struct list_head *head)
{
	return head->next == head;
}

/* Put @new right after @head: the next walk from @head meets it first. */
static inline void list_add(struct list_head *new, struct list_head *head)
{
	new->next = head->next;
	new->prev = head;
	head->next->prev = new;
	head->next = new;
}

/*
 * Take @entry off its list and point it at itself, so that list_empty(entry)
 * says it is on no list and a second list_del_init() changes nothing.
 */
static inline void list_del_init(struct list_head *entry)
{
	entry->prev->next = entry->next;
	entry->next->prev = entry->prev;
	INIT_LIST_HEAD(entry);
}

#define list_entry(ptr, type, member)	container_of(ptr, type, member)

#define list_first_entry(head, type, member) \
	list_entry((head)->next, type, member)

#define list_next_entry(pos, member) \
	list_entry((pos)->member.next, __typeof__(*(pos)), member)

#define list_for_each_entry(pos, head, member)				\
	for (pos = list_first_entry(head, __typeof__(*(pos)), member);	\
	     &(pos)->member != (head);					\
	     pos = list_next_entry(pos, member))

/* The same walk, safe against removal of @pos: @n holds the next entry. */
#define list_for_each_entry_safe(pos, n, head, member)			\
	for (pos = list_first_entry(head, __typeof__(*(pos)), member),	\
	     n = list_next_entry(pos, member);				\
	     &(pos)->member != (head);					\
	     pos = n, n = list_next_entry(n, member))

#endif /* HMM_CCORE_LIST_H */
