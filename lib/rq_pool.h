/*
 * Pools shared by threads. APR pools are not thread-safe; a pool whose
 * allocator has a mutex may have subpools created and destroyed from any
 * thread, which is what long-lived caches of connections and clients need.
 */
#ifndef RQ_POOL_H
#define RQ_POOL_H

#include <apr_pools.h>

/* Creates a child of parent with its own allocator guarded by a mutex. */
apr_status_t rq_pool_create_locked(apr_pool_t **pp, apr_pool_t *parent);

#endif
