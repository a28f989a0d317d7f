/* Pools shared by threads; see rq_pool.h. */
#include <apr_allocator.h>
#include <apr_thread_mutex.h>

#include "rq_pool.h"

apr_status_t rq_pool_create_locked(apr_pool_t **pp, apr_pool_t *parent)
{
    apr_allocator_t *alloc;
    apr_thread_mutex_t *mutex;
    apr_status_t rv;

    rv = apr_allocator_create(&alloc);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_pool_create_ex(pp, parent, NULL, alloc);
    if (rv != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return rv;
    }
    apr_allocator_owner_set(alloc, *pp);

    rv = apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, *pp);
    if (rv == APR_SUCCESS) {
        apr_allocator_mutex_set(alloc, mutex);
    }
    return rv;
}
