/*
** Read sections and grace periods, for the master's slave snapshot.
**
** A sender marks the time it uses a snapshot in a record of its own
** thread (a counter, odd while inside, and the snapshots it holds), so a
** send takes no lock and writes no line another thread writes. A writer
** that has replaced snapshots waits for a grace period: until no other
** thread holds one of them. A thread never waits for a snapshot newer than
** the one it replaced, so two removers cannot wait for each other through
** one master. The writer's own thread may itself be delivering from an old
** snapshot; sl_grace_defer puts off freeing it until it is done.
**
** Ordering: the reader's stores and its load of the snapshot are ordered
** by the writer's membarrier(2) (the reader pays nothing), or, where that
** is not available, by a sequentially consistent exchange.
*/
#ifndef STREAMLUA_GRACE_H_INCLUDED_
#define STREAMLUA_GRACE_H_INCLUDED_

typedef struct sl_grace_node {
  struct sl_grace_node *next;
  void (*run)(struct sl_grace_node *node);
} sl_grace_node;

/* Enters a read section (sections nest); then load the snapshot with a
** sequentially consistent load and record it with sl_grace_hold. */
void sl_grace_enter(void);
void sl_grace_hold(const void *snapshot);
void sl_grace_exit(void);

/* Tells the snapshots a writer has replaced: non-zero for those. */
typedef int (*sl_grace_old)(const void *snapshot, void *arg);

/* Waits (with sl_wait_for, so the wait hook runs) until no other thread
** holds a snapshot for which old(snapshot, arg) is true. Call it after the
** sequentially consistent store that replaced them. SL_OK, or SL_ECANCELED
** when the calling thread's waits gave up first (the snapshots may still
** be held then). */
int sl_grace_wait(sl_grace_old old, void *arg);
/* The same look without waiting: 1 if no other thread holds one now. */
int sl_grace_quiet(sl_grace_old old, void *arg);

/* Runs node->run(node) now, or when the calling thread leaves its
** outermost section if it is inside one. */
void sl_grace_defer(sl_grace_node *node);

#endif
