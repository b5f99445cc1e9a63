/* A bump arena: a topology's strings and arrays live and die together, so
 * destroy is one walk and no accessor result can dangle early. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct nmb_arena_block {
    struct nmb_arena_block *next;
    max_align_t data[];
};

void *nmb__arena_alloc(nmb_arena_t *arena, size_t size)
{
    struct nmb_arena_block *b = calloc(1, sizeof *b + (size ? size : 1));
    if (!b)
        return NULL;
    b->next = arena->head;
    arena->head = b;
    return b->data;
}

char *nmb__arena_strdup(nmb_arena_t *arena, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = nmb__arena_alloc(arena, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void nmb__arena_take(nmb_arena_t *into, nmb_arena_t *from)
{
    struct nmb_arena_block *tail = from->head;
    if (!tail)
        return;
    while (tail->next)
        tail = tail->next;
    tail->next = into->head;
    into->head = from->head;
    from->head = NULL;
}

void nmb__arena_free(nmb_arena_t *arena)
{
    struct nmb_arena_block *b = arena->head;
    while (b) {
        struct nmb_arena_block *next = b->next;
        free(b);
        b = next;
    }
    arena->head = NULL;
}
