/* DCT-II with orthonormal scaling (scipy.fft.dct(type=2, norm="ortho")),
 * the step from log-mel to MFCC. */
#include "internal.h"
#include "tables.h"

#include <math.h>

void hm_dct_table(float *table, int n_in, int n_out) {
    int c, m;
    for (m = 0; m < n_in; ++m) {
        for (c = 0; c < n_out; ++c) {
            double scale = sqrt((c == 0 ? 1.0 : 2.0) / (double)n_in);
            double v = scale * cos(HM_PI * (double)c * (2.0 * m + 1.0) / (2.0 * (double)n_in));
            table[(size_t)m * (size_t)n_out + (size_t)c] = (float)v;
        }
    }
}

HM_MULTIVERSION
void hm_dct_apply(const float *table, int n_in, int n_out, const float *in, float *out) {
    int c, m;
    for (c = 0; c < n_out; ++c) out[c] = 0.0f;
    /* Row by row of the transposed table: the inner loop is an axpy over
     * the outputs, which vectorises, instead of a reduction, which does not. */
    for (m = 0; m < n_in; ++m) {
        const float *restrict row = table + (size_t)m * (size_t)n_out;
        float x = in[m];
        for (c = 0; c < n_out; ++c) out[c] += row[c] * x;
    }
}
