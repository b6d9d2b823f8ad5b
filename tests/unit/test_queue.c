/* test_queue.c - the queue of waiting tests: priority first, aging lets old low-priority
 * tests overtake, longest predicted first among equals submitted in the same aging
 * window, FIFO among equal keys; requirement shapes, blocking, and counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "core/queue.h"

#define AGING 6.0

/* Pops every entry of the active shapes in order into refs; returns how many. */
static size_t drain(drv_queue *q, uint32_t *refs, size_t max)
{
    size_t n = 0;
    drv_queue_entry e;
    uint32_t s;
    while (n < max && drv_queue_peek(q, &e, &s)) {
        refs[n++] = e.ref;
        drv_queue_shape_pop(q, s);
    }
    return n;
}

/* One row: a test as submitted (priority, when, predicted run) and where it must come
 * out of the queue. */
typedef struct qrow {
    int32_t priority;
    double enqueued;
    double predicted;
} qrow;

/* Pushes rows (ref = row index, seq = row index) into one shape and checks the pop
 * order against want. */
static void check_order(const qrow *rows, size_t n, const uint32_t *want)
{
    drv_queue *q = drv_queue_new();
    drv_requirements req;
    drv_requirements_init(&req);
    uint32_t s = drv_queue_shape(q, &req, NULL);
    for (size_t i = 0; i < n; i++)
        drv_queue_push(q, s,
                       (drv_queue_entry){.key = drv_queue_key(rows[i].priority, rows[i].enqueued,
                                                              AGING, rows[i].predicted),
                                         .seq = (uint32_t)i,
                                         .ref = (uint32_t)i});
    uint32_t got[16];
    assert_int_equal(drain(q, got, 16), n);
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("position %zu: got row %u, want row %u", i, got[i], want[i]);
    drv_queue_free(q);
}

static void test_higher_priority_first(void **state)
{
    (void)state;
    const qrow rows[] = {{100, 0, 10}, {500, 0, 10}, {0, 0, 10}, {1000, 0, 10}, {101, 0, 10}};
    const uint32_t want[] = {3, 1, 4, 0, 2};
    check_order(rows, 5, want);
}

static void test_fifo_within_equal_keys(void **state)
{
    (void)state;
    /* Same priority, same aging window, same prediction: submission order. */
    const qrow rows[] = {{100, 0, 5}, {100, 1, 5}, {100, 2, 5}, {100, 5.9, 5}};
    const uint32_t want[] = {0, 1, 2, 3};
    check_order(rows, 4, want);

    /* Equal keys pushed in a different order than their sequence numbers: seq decides. */
    drv_queue *q = drv_queue_new();
    drv_requirements req;
    drv_requirements_init(&req);
    uint32_t s = drv_queue_shape(q, &req, NULL);
    uint64_t key = drv_queue_key(100, 0, AGING, 5);
    const uint32_t seqs[] = {7, 3, 9, 1, 5};
    for (size_t i = 0; i < 5; i++)
        drv_queue_push(q, s, (drv_queue_entry){.key = key, .seq = seqs[i], .ref = seqs[i]});
    uint32_t got[5];
    assert_int_equal(drain(q, got, 5), 5);
    const uint32_t want2[] = {1, 3, 5, 7, 9};
    assert_memory_equal(got, want2, sizeof want2);
    drv_queue_free(q);
}

static void test_longest_predicted_first_in_same_window(void **state)
{
    (void)state;
    /* Rows 0-3 share priority and the aging window [0, 6): longest first. Row 4 comes a
     * window later and waits for them despite being the longest; row 5 has a higher
     * priority and goes first despite being the shortest. */
    const qrow rows[] = {{100, 0, 3},   {100, 1, 90},  {100, 5, 20},
                         {100, 2, 0.5}, {100, 6, 500}, {101, 5, 0.1}};
    const uint32_t want[] = {5, 1, 2, 0, 3, 4};
    check_order(rows, 6, want);
}

static void test_aging_lets_old_low_priority_overtake(void **state)
{
    (void)state;
    /* Key formula: level = 2^31 + floor(enqueued / aging) - priority, lower first. A
     * priority-10 test enqueued at 0 has level 2^31 - 10; a priority-50 test enqueued at
     * T has 2^31 + floor(T / 6) - 50. The old one wins when floor(T / 6) > 40, i.e. from
     * T = 246; at T = 240 they are level (then the longer prediction, then FIFO). */
    static const struct {
        double t_new;
        double pred_old, pred_new;
        uint32_t first; /* 0 = the old priority-10 test, 1 = the new priority-50 one */
    } cases[] = {
        {0, 10, 10, 1},    /* both now: priority decides */
        {234, 10, 10, 1},  /* floor(39): still one level behind */
        {240, 10, 10, 0},  /* level: FIFO, the old one was submitted first */
        {240, 10, 20, 1},  /* level: the longer prediction goes first */
        {246, 10, 10, 0},  /* floor(41): the old one overtakes */
        {246, 1, 900, 0},  /* ...whatever the predictions */
        {6000, 1, 900, 0}, /* ...and stays ahead */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const qrow rows[] = {{10, 0, cases[i].pred_old}, {50, cases[i].t_new, cases[i].pred_new}};
        const uint32_t want[] = {cases[i].first, 1 - cases[i].first};
        check_order(rows, 2, want);
    }
    /* Aging never beats a gap larger than the wait: priority 0 from t=0 against priority
     * 1000 at t=600 (100 windows). */
    const qrow rows[] = {{0, 0, 10}, {1000, 600, 10}};
    const uint32_t want[] = {1, 0};
    check_order(rows, 2, want);
}

static void test_key_is_monotonic_in_its_inputs(void **state)
{
    (void)state;
    /* Higher priority, earlier window, or longer prediction: a strictly smaller key. */
    uint64_t base = drv_queue_key(100, 60, AGING, 10);
    assert_true(drv_queue_key(101, 60, AGING, 10) < base);
    assert_true(drv_queue_key(100, 54, AGING, 10) < base);
    assert_true(drv_queue_key(100, 60, AGING, 10.01) < base);
    assert_true(drv_queue_key(100, 65.9, AGING, 10) == base); /* same window */
    /* Out-of-range predictions are clamped, not wrapped. */
    assert_true(drv_queue_key(100, 60, AGING, -5) >= drv_queue_key(100, 60, AGING, 0));
    assert_true(drv_queue_key(100, 60, AGING, 1e12) <= drv_queue_key(100, 60, AGING, 1e6));
}

/* Aging at 0.05 s with a real epoch clock: enqueue times counted from the queue's base
 * keep one level per 0.05 s of waiting, so a test that waited 1 s (20 levels) passes a
 * newer one 10 priority levels higher, and one that waited 0.4 s (8 levels) does not. */
static void test_aging_at_50_ms_with_an_epoch_clock(void **state)
{
    (void)state;
    const double aging = 0.05, epoch = 1796300000.25;
    drv_queue *q = drv_queue_new();
    assert_true(drv_queue_base(q, epoch) == epoch);
    assert_true(drv_queue_base(q, epoch + 99) == epoch); /* chosen once */
    double base = drv_queue_base(q, epoch + 5);
    uint64_t old_low = drv_queue_key(0, epoch - base, aging, 1);
    uint64_t new_high = drv_queue_key(10, epoch + 1.0 - base, aging, 1);
    uint64_t mid_low = drv_queue_key(0, epoch + 0.6 - base, aging, 1);
    assert_true(old_low < new_high); /* 20 levels of waiting beat 10 of priority */
    assert_true(new_high < mid_low); /* 8 levels do not */
    /* Every 0.05 s step is a level, hours later too. */
    for (double t = 3600; t < 3601; t += 0.05)
        assert_true(drv_queue_key(0, t, aging, 1) < drv_queue_key(0, t + 0.05 + 1e-6, aging, 1));
    /* Times before the base (a long test's head start) still order. */
    assert_true(drv_queue_key(0, -10, aging, 1) < drv_queue_key(0, -9, aging, 1));
    drv_queue_free(q);
}

static void test_equal_requirements_share_a_shape(void **state)
{
    (void)state;
    drv_tag_table *tags = drv_tag_table_new();
    drv_queue *q = drv_queue_new();
    drv_requirements a, b, c;
    drv_requirements_init(&a);
    drv_requirements_init(&b);
    drv_requirements_init(&c);
    a.cpu_cores = b.cpu_cores = c.cpu_cores = 2;
    assert_int_equal(drv_tagset_parse(tags, "cuda", &a.all_of, NULL), 0);
    assert_int_equal(drv_tagset_parse(tags, "cuda", &b.all_of, NULL), 0);
    assert_int_equal(drv_tagset_parse(tags, "rocm", &c.all_of, NULL), 0);
    bool is_new = false;
    uint32_t sa = drv_queue_shape(q, &a, &is_new);
    assert_true(is_new);
    uint32_t sb = drv_queue_shape(q, &b, &is_new);
    assert_false(is_new);
    assert_int_equal(sa, sb);
    uint32_t sc = drv_queue_shape(q, &c, &is_new);
    assert_true(is_new);
    assert_int_not_equal(sa, sc);
    b.cpu_cores = 3; /* one field apart is another shape */
    uint32_t sd = drv_queue_shape(q, &b, &is_new);
    assert_true(is_new);
    assert_int_not_equal(sd, sa);
    assert_int_equal(drv_queue_shape_count(q), 3);
    assert_true(drv_requirements_equal(drv_queue_shape_req(q, sc), &c));

    /* Many shapes (past the index's first growth) keep their ids. */
    for (uint32_t i = 0; i < 200; i++) {
        drv_requirements r;
        drv_requirements_init(&r);
        r.memory_mb = 1000 + i;
        uint32_t s = drv_queue_shape(q, &r, NULL);
        assert_int_equal(drv_queue_shape(q, &r, &is_new), s);
        assert_false(is_new);
    }
    assert_int_equal(drv_queue_shape(q, &a, &is_new), sa);
    assert_false(is_new);
    assert_int_equal(drv_queue_shape_count(q), 203);
    drv_queue_free(q);
    drv_tag_table_free(tags);
}

static void test_peek_takes_the_best_across_shapes(void **state)
{
    (void)state;
    drv_queue *q = drv_queue_new();
    drv_requirements r0, r1;
    drv_requirements_init(&r0);
    drv_requirements_init(&r1);
    r1.cpu_cores = 4;
    uint32_t s0 = drv_queue_shape(q, &r0, NULL), s1 = drv_queue_shape(q, &r1, NULL);
    drv_queue_push(q, s0, (drv_queue_entry){drv_queue_key(100, 0, AGING, 1), 0, 10});
    drv_queue_push(q, s1, (drv_queue_entry){drv_queue_key(200, 0, AGING, 1), 1, 11});
    drv_queue_push(q, s0, (drv_queue_entry){drv_queue_key(300, 0, AGING, 1), 2, 12});
    drv_queue_push(q, s1, (drv_queue_entry){drv_queue_key(50, 0, AGING, 1), 3, 13});
    uint32_t got[4];
    assert_int_equal(drain(q, got, 4), 4);
    const uint32_t want[] = {12, 11, 10, 13};
    assert_memory_equal(got, want, sizeof want);
    drv_queue_free(q);
}

static void test_blocked_shapes_are_skipped_until_unblocked(void **state)
{
    (void)state;
    drv_queue *q = drv_queue_new();
    drv_requirements r0, r1;
    drv_requirements_init(&r0);
    drv_requirements_init(&r1);
    r1.gpu_count = 1;
    uint32_t cpu = drv_queue_shape(q, &r0, NULL), gpu = drv_queue_shape(q, &r1, NULL);
    drv_queue_push(q, gpu, (drv_queue_entry){drv_queue_key(900, 0, AGING, 1), 0, 1});
    drv_queue_push(q, cpu, (drv_queue_entry){drv_queue_key(100, 0, AGING, 1), 1, 2});

    drv_queue_entry e;
    uint32_t s;
    assert_true(drv_queue_peek(q, &e, &s));
    assert_int_equal(e.ref, 1);
    assert_int_equal(s, gpu);

    drv_queue_shape_block(q, gpu);
    assert_true(drv_queue_shape_blocked(q, gpu));
    assert_true(drv_queue_peek(q, &e, &s));
    assert_int_equal(e.ref, 2); /* the GPU test is skipped, not lost */
    assert_int_equal(s, cpu);
    assert_int_equal(drv_queue_len(q), 2);
    assert_int_equal(drv_queue_shape_len(q, gpu), 1);
    /* A blocked shape can still be looked at directly. */
    assert_true(drv_queue_shape_peek(q, gpu, &e));
    assert_int_equal(e.ref, 1);

    drv_queue_shape_pop(q, cpu);
    assert_false(drv_queue_peek(q, &e, &s)); /* only a blocked shape is left */
    /* A push into a blocked shape does not activate it. */
    drv_queue_push(q, gpu, (drv_queue_entry){drv_queue_key(1000, 0, AGING, 1), 2, 3});
    assert_false(drv_queue_peek(q, &e, &s));

    drv_queue_shape_unblock(q, gpu);
    assert_false(drv_queue_shape_blocked(q, gpu));
    assert_true(drv_queue_peek(q, &e, &s));
    assert_int_equal(e.ref, 3);
    assert_int_equal(s, gpu);
    drv_queue_shape_unblock(q, gpu); /* unblocking twice changes nothing */
    uint32_t got[4];
    assert_int_equal(drain(q, got, 4), 2);
    assert_int_equal(got[0], 3);
    assert_int_equal(got[1], 1);

    /* Blocking an empty shape, then pushing and unblocking, brings the entry back. */
    drv_queue_shape_block(q, cpu);
    drv_queue_push(q, cpu, (drv_queue_entry){drv_queue_key(1, 0, AGING, 1), 3, 4});
    assert_false(drv_queue_peek(q, &e, &s));
    drv_queue_shape_unblock(q, cpu);
    assert_true(drv_queue_peek(q, &e, &s));
    assert_int_equal(e.ref, 4);
    drv_queue_free(q);
}

static void test_len_counts_every_entry(void **state)
{
    (void)state;
    drv_queue *q = drv_queue_new();
    assert_int_equal(drv_queue_len(q), 0);
    drv_queue_entry e;
    assert_false(drv_queue_peek(q, &e, NULL));
    drv_requirements r0, r1;
    drv_requirements_init(&r0);
    drv_requirements_init(&r1);
    r1.memory_mb = 512;
    uint32_t s0 = drv_queue_shape(q, &r0, NULL), s1 = drv_queue_shape(q, &r1, NULL);
    assert_false(drv_queue_shape_peek(q, s0, &e));
    drv_queue_shape_pop(q, s0); /* popping an empty shape is a no-op */
    assert_int_equal(drv_queue_len(q), 0);
    for (uint32_t i = 0; i < 7; i++)
        drv_queue_push(q, i % 2 ? s1 : s0,
                       (drv_queue_entry){drv_queue_key(100, i, AGING, 1), i, i});
    assert_int_equal(drv_queue_len(q), 7);
    assert_int_equal(drv_queue_shape_len(q, s0), 4);
    assert_int_equal(drv_queue_shape_len(q, s1), 3);
    drv_queue_shape_block(q, s1); /* blocked entries still count */
    assert_int_equal(drv_queue_len(q), 7);
    drv_queue_shape_pop(q, s1);
    assert_int_equal(drv_queue_len(q), 6);
    assert_int_equal(drv_queue_shape_len(q, s1), 2);
    /* shape_at lists exactly the live entries of a shape. */
    bool seen[7] = {false};
    for (size_t i = 0; i < drv_queue_shape_len(q, s0); i++)
        seen[drv_queue_shape_at(q, s0, i)->ref] = true;
    assert_true(seen[0] && seen[2] && seen[4] && seen[6]);
    assert_false(seen[1] || seen[3] || seen[5]);
    assert_null(drv_queue_shape_at(q, s0, 4));
    drv_queue_free(q);
}

/* A simple deterministic generator for the bulk test. */
static uint32_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static void test_bulk_and_trickle_keep_the_order(void **state)
{
    (void)state;
    /* A suite submitted in bulk (past the run/heap merge threshold), then arrivals mixed
     * with pops: every pop is the smallest (key, seq) still in the queue. */
    enum { BULK = 3000, TRICKLE = 2000 };
    drv_queue *q = drv_queue_new();
    drv_requirements r0, r1;
    drv_requirements_init(&r0);
    drv_requirements_init(&r1);
    r1.cpu_cores = 1;
    uint32_t sh[2] = {drv_queue_shape(q, &r0, NULL), drv_queue_shape(q, &r1, NULL)};
    static drv_queue_entry live[BULK + TRICKLE];
    static bool gone[BULK + TRICKLE];
    uint64_t seed = 42;
    uint32_t seq = 0;
    size_t popped = 0;
    for (int i = 0; i < BULK; i++, seq++) {
        live[seq] =
            (drv_queue_entry){drv_queue_key((int32_t)(lcg(&seed) % 5) * 100, lcg(&seed) % 60, AGING,
                                            (lcg(&seed) % 100) / 10.0),
                              seq, seq};
        drv_queue_push(q, sh[seq % 2], live[seq]);
    }
    for (int i = 0; i < TRICKLE + BULK; i++) {
        if (seq < BULK + TRICKLE && lcg(&seed) % 2) {
            live[seq] = (drv_queue_entry){drv_queue_key((int32_t)(lcg(&seed) % 5) * 100,
                                                        60 + i / 10.0, AGING, lcg(&seed) % 7),
                                          seq, seq};
            drv_queue_push(q, sh[seq % 2], live[seq]);
            seq++;
            continue;
        }
        drv_queue_entry e;
        uint32_t s;
        if (!drv_queue_peek(q, &e, &s))
            break;
        /* It must be the minimum of what is left. */
        for (uint32_t k = 0; k < seq; k++)
            if (!gone[k] && (live[k].key < e.key || (live[k].key == e.key && live[k].seq < e.seq)))
                fail_msg("pop %zu returned seq %u but seq %u is smaller", popped, e.seq, k);
        assert_int_equal(s, sh[e.ref % 2]);
        gone[e.ref] = true;
        drv_queue_shape_pop(q, s);
        popped++;
    }
    assert_int_equal(drv_queue_len(q), (size_t)seq - popped);
    drv_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_higher_priority_first),
        cmocka_unit_test(test_fifo_within_equal_keys),
        cmocka_unit_test(test_longest_predicted_first_in_same_window),
        cmocka_unit_test(test_aging_lets_old_low_priority_overtake),
        cmocka_unit_test(test_key_is_monotonic_in_its_inputs),
        cmocka_unit_test(test_equal_requirements_share_a_shape),
        cmocka_unit_test(test_peek_takes_the_best_across_shapes),
        cmocka_unit_test(test_blocked_shapes_are_skipped_until_unblocked),
        cmocka_unit_test(test_len_counts_every_entry),
        cmocka_unit_test(test_bulk_and_trickle_keep_the_order),
        cmocka_unit_test(test_aging_at_50_ms_with_an_epoch_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
