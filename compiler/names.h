/* names.h - a map from names to ints (open addressing on dl_hash64): the
 * compiler's name lookups (scopes, declarations, parameters, node names)
 * in constant time, so that a spec of 20,000 items or a graph of 100,000
 * nodes compiles in time near-linear in its size.
 *
 * Keys are not copied: they must outlive the map (pool strings do).  With
 * pool set, the arrays live in that pool and die with it (grown arrays stay
 * behind: less than the final size wasted); else the map owns them
 * (dl_xmalloc) and names_free releases them.
 */
#ifndef DL_NAMES_H
#define DL_NAMES_H

#include <stddef.h>

#include "../common/util.h"

typedef struct NameMap {
    DlPool *pool;      /* NULL: malloc'd arrays */
    const char **key;  /* cap slots, NULL = empty */
    int *val;
    size_t n, cap;     /* cap: 0 or a power of two, at most half full */
} NameMap;

/* The value of name, or -1 when it is absent. */
int names_get(const NameMap *m, const char *name);
/* Set name's value (insert or replace). */
void names_put(NameMap *m, const char *name, int val);
void names_free(NameMap *m);

#endif
