/* names.c - the name map of names.h: linear probing, doubled when half full. */
#include "names.h"

#include <stdlib.h>
#include <string.h>


static size_t slot(const NameMap *m, const char *name)
{
    size_t mask = m->cap - 1, i = (size_t)dl_hash64(name, strlen(name)) & mask;
    while (m->key[i] && strcmp(m->key[i], name))
        i = (i + 1) & mask;
    return i;
}

int names_get(const NameMap *m, const char *name)
{
    if (!m->cap)
        return -1;
    size_t i = slot(m, name);
    return m->key[i] ? m->val[i] : -1;
}

static void grow(NameMap *m)
{
    NameMap old = *m;
    m->cap = old.cap ? 2 * old.cap : 64;
    m->key = m->pool ? dl_pool_alloc(m->pool, m->cap * sizeof *m->key) : dl_xcalloc(m->cap, sizeof *m->key);
    m->val = m->pool ? dl_pool_alloc(m->pool, m->cap * sizeof *m->val) : dl_xmalloc(m->cap * sizeof *m->val);
    for (size_t j = 0; j < old.cap; j++)
        if (old.key[j]) {
            size_t i = slot(m, old.key[j]);
            m->key[i] = old.key[j];
            m->val[i] = old.val[j];
        }
    if (!m->pool) {
        free(old.key);
        free(old.val);
    }
}

void names_put(NameMap *m, const char *name, int val)
{
    if (2 * (m->n + 1) > m->cap)
        grow(m);
    size_t i = slot(m, name);
    if (!m->key[i]) {
        m->key[i] = name;
        m->n++;
    }
    m->val[i] = val;
}

void names_free(NameMap *m)
{
    if (!m->pool) {
        free(m->key);
        free(m->val);
    }
    memset(m, 0, sizeof *m);
}
