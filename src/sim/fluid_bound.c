/* fluid_bound.c - the fractional relaxation of the makespan: a linear program over
 * groups of tests (same eligible classes, same family) and worker classes, solved exactly
 * by a small dense simplex.
 *
 * Group g holds work[g] reference seconds; class c gives cap[c] = sum(slots x speed)
 * speed-seconds per second and runs g's work at rate[g][c] (its family speed; 0 = not
 * eligible), so x reference seconds of g on c take x / rate[g][c] of c's capacity. Any
 * schedule of makespan T splits each group's work over its classes with, per class,
 * sum_g x[g][c] / rate[g][c] <= cap[c] x T, so the smallest such T (tests cut into any
 * fractions, every class busy from 0 to T) is a lower bound on every schedule's makespan.
 *
 * Solved as: maximise theta (the share of all work done per second) subject to
 *   theta x work[g] - sum_c x[g][c] <= 0            for each group,
 *   sum_g x[g][c] / rate[g][c]     <= cap[c]        for each class,
 *   theta, x >= 0;
 * the origin is feasible (every right-hand side >= 0), so no first phase is needed, and
 * T = 1 / theta. Bland's rule (smallest index enters, smallest basic index leaves on
 * ties) keeps the degenerate group rows from cycling. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/error.h"
#include "sim/sim.h"

#define EPS 1e-12

/* One pivot on tableau t (rows x cols, row-major) at (pr, pc). */
static void pivot(double *t, size_t rows, size_t cols, size_t pr, size_t pc)
{
    double *p = &t[pr * cols];
    double inv = 1.0 / p[pc];
    for (size_t j = 0; j < cols; j++)
        p[j] *= inv;
    p[pc] = 1.0;
    for (size_t i = 0; i < rows; i++) {
        double *r = &t[i * cols];
        double f = r[pc];
        if (i == pr || f == 0)
            continue;
        for (size_t j = 0; j < cols; j++)
            r[j] -= f * p[j];
        r[pc] = 0;
    }
}

double drv_sim_fluid_makespan(size_t n_groups, size_t n_classes, const double *work,
                              const double *rate, const double *cap)
{
    /* variables: 0 = theta, then one per eligible (group, class) pair */
    size_t nv = 1;
    double total = 0;
    for (size_t g = 0; g < n_groups; g++) {
        bool any = false;
        for (size_t c = 0; c < n_classes; c++) {
            if (rate[g * n_classes + c] > 0 && cap[c] > 0) {
                nv++;
                any = true;
            }
        }
        if (work[g] > 0 && !any)
            return 0; /* work no class can do: no finite bound from this program */
        if (work[g] > 0)
            total += work[g];
    }
    if (!(total > 0))
        return 0;
    size_t m = n_groups + n_classes;
    size_t cols = nv + m + 1; /* variables, slacks, right-hand side */
    size_t rows = m + 1;      /* constraints, objective */
    double *t = drv_xcalloc(rows * cols, sizeof *t);
    size_t *basis = drv_xmalloc(m * sizeof *basis);
    size_t v = 1;
    for (size_t g = 0; g < n_groups; g++) {
        t[g * cols + 0] = work[g] > 0 ? work[g] / total : 0; /* scaled for conditioning */
        for (size_t c = 0; c < n_classes; c++) {
            double r = rate[g * n_classes + c];
            if (!(r > 0 && cap[c] > 0))
                continue;
            t[g * cols + v] = -1;
            t[(n_groups + c) * cols + v] = 1.0 / r;
            v++;
        }
    }
    for (size_t i = 0; i < m; i++) {
        t[i * cols + nv + i] = 1;
        basis[i] = nv + i;
    }
    for (size_t c = 0; c < n_classes; c++)
        t[(n_groups + c) * cols + cols - 1] = cap[c] > 0 ? cap[c] : 0;
    double *obj = &t[m * cols];
    obj[0] = -1; /* reduced costs of max theta: the row holds -c */

    double theta = 0;
    size_t limit = 50 * (rows + cols), it = 0;
    for (; it < limit; it++) {
        size_t pc = cols;
        for (size_t j = 0; j + 1 < cols; j++) {
            if (obj[j] < -EPS) {
                pc = j;
                break;
            }
        }
        if (pc == cols)
            break; /* optimal */
        size_t pr = m;
        double best = INFINITY;
        for (size_t i = 0; i < m; i++) {
            double a = t[i * cols + pc];
            if (a <= EPS)
                continue;
            double q = t[i * cols + cols - 1] / a;
            if (q < best - EPS || (q <= best + EPS && pr < m && basis[i] < basis[pr])) {
                best = q;
                pr = i;
            }
        }
        if (pr == m)
            break; /* unbounded: cannot happen with every group's work positive */
        pivot(t, rows, cols, pr, pc);
        basis[pr] = pc;
    }
    if (it < limit)
        theta = obj[cols - 1];
    free(basis);
    free(t);
    /* theta is the share of every group's work done per second, the work having been
     * scaled by its total: all of it takes total / theta seconds */
    return theta > EPS ? total / theta : 0;
}
