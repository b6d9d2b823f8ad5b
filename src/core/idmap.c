/* idmap.c - see idmap.h. */
#include "core/idmap.h"

#include <stdlib.h>

#include "core/error.h"

static size_t slot_of(uint64_t key, size_t cap)
{
    /* Fibonacci hashing spreads sequential ids over the table. */
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

void drv_idmap_init(drv_idmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void drv_idmap_clear(drv_idmap *m)
{
    free(m->slots);
    drv_idmap_init(m);
}

static void insert_slot(drv_idmap_slot *slots, size_t cap, uint64_t key, uint32_t value)
{
    size_t i = slot_of(key, cap);
    while (slots[i].key != 0 && slots[i].key != key)
        i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].value = value;
}

static void grow(drv_idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    drv_idmap_slot *slots = drv_xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            insert_slot(slots, cap, m->slots[i].key, m->slots[i].value);
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

void drv_idmap_put(drv_idmap *m, uint64_t id, uint32_t value)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        grow(m);
    uint64_t key = id + 1;
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key != 0 && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (m->slots[i].key == 0)
        m->count++;
    m->slots[i].key = key;
    m->slots[i].value = value;
}

bool drv_idmap_get(const drv_idmap *m, uint64_t id, uint32_t *value)
{
    if (m->cap == 0)
        return false;
    uint64_t key = id + 1;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == 0)
            return false;
        if (m->slots[i].key == key) {
            *value = m->slots[i].value;
            return true;
        }
    }
}

bool drv_idmap_del(drv_idmap *m, uint64_t id)
{
    if (m->cap == 0)
        return false;
    uint64_t key = id + 1;
    size_t mask = m->cap - 1, i = slot_of(key, m->cap);
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0)
            return false;
        i = (i + 1) & mask;
    }
    /* Backward shift: move later members of the probe run into the hole when their home
     * slot is not between the hole and them. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key != 0; j = (j + 1) & mask) {
        size_t home = slot_of(m->slots[j].key, m->cap);
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->count--;
    return true;
}
