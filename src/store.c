/* store.c - the store interface: each call goes to the implementation
 * behind it (store.h). */
#include "revokd/store.h"

#include <stddef.h>

int store_start(struct store *s)
{
    return s->ops->start(s);
}

void store_free(struct store *s)
{
    if (s != NULL)
        s->ops->free(s);
}

struct store_conn *store_conn_new(struct store *s, struct loop *loop)
{
    return s->ops->conn_new(s, loop);
}

void store_conn_free(struct store_conn *c)
{
    if (c != NULL)
        c->store->ops->conn_free(c);
}

void store_call(struct store_conn *c, const struct store_call *call, store_done done, void *arg)
{
    c->store->ops->call(c, call, done, arg);
}

bool store_up(struct store *s)
{
    return s->ops->up(s);
}

bool store_data_lost(struct store *s)
{
    return s->ops->data_lost(s);
}
