/* Per-frame statistics of the spectrum and of the waveform. Sums run in
 * double with several independent accumulators: shorter dependency chains
 * than one running sum, and no rounding surprises in the differences. */
#include "harmonies/harmonies.h"
#include "internal.h"
#include "tables.h"

#include <math.h>

/* pyAudioAnalysis's guard against division by zero and log(0). */
#define PYAA_EPS 1e-8

void hm_spectral_shape(const float *mag, int n_bins, double bin_hz, hm_shape_stats *out) {
    double s0[2] = {0.0, 0.0}, s1[2] = {0.0, 0.0}, s2[2] = {0.0, 0.0};
    double total, mean_k, var_k, threshold, cum;
    int k;
    for (k = 0; k + 1 < n_bins; k += 2) {
        double a = mag[k], b = mag[k + 1];
        double ka = (double)k, kb = (double)(k + 1);
        s0[0] += a;
        s0[1] += b;
        s1[0] += a * ka;
        s1[1] += b * kb;
        s2[0] += a * ka * ka;
        s2[1] += b * kb * kb;
    }
    for (; k < n_bins; ++k) {
        double a = mag[k];
        s0[0] += a;
        s1[0] += a * k;
        s2[0] += a * (double)k * (double)k;
    }
    total = s0[0] + s0[1];
    if (total > 0.0) {
        /* librosa normalises each frame to unit sum before the moments. */
        mean_k = (s1[0] + s1[1]) / total;
        var_k = (s2[0] + s2[1]) / total - mean_k * mean_k;
        if (var_k < 0.0) var_k = 0.0;
    } else {
        mean_k = 0.0;
        var_k = 0.0;
    }
    out->centroid = (float)(mean_k * bin_hz);
    out->bandwidth = (float)(sqrt(var_k) * bin_hz);

    /* Roll-off: the lowest bin at which the cumulative magnitude reaches
     * 85 % of the total (0 Hz for a silent frame, as librosa). */
    threshold = 0.85 * total;
    cum = 0.0;
    for (k = 0; k < n_bins; ++k) {
        cum += mag[k];
        if (cum >= threshold) break;
    }
    if (k == n_bins) k = n_bins - 1;
    out->rolloff = (float)((double)k * bin_hz);
}

float hm_spectral_flatness(const float *power, int n_bins, double amin) {
    /* Geometric mean without a logarithm per bin: products of clamped
     * powers, renormalised with frexp often enough never to overflow. */
    double prod[4] = {1.0, 1.0, 1.0, 1.0}, sum[4] = {0.0, 0.0, 0.0, 0.0};
    long exponent = 0;
    double log_sum, mean_log, arith;
    float floor_ = (float)amin;
    int k, i;
    for (k = 0; k + 4 <= n_bins; k += 4) {
        for (i = 0; i < 4; ++i) {
            double p = power[k + i] > floor_ ? (double)power[k + i] : amin;
            prod[i] *= p;
            sum[i] += p;
        }
        if ((k & 15) == 12) {
            for (i = 0; i < 4; ++i) {
                int e;
                prod[i] = frexp(prod[i], &e);
                exponent += e;
            }
        }
    }
    for (; k < n_bins; ++k) {
        double p = power[k] > floor_ ? (double)power[k] : amin;
        int e;
        prod[0] = frexp(prod[0] * p, &e);
        exponent += e;
        sum[0] += p;
    }
    log_sum = log(prod[0]) + log(prod[1]) + log(prod[2]) + log(prod[3]) +
              (double)exponent * 0.69314718055994530942;
    mean_log = log_sum / (double)n_bins;
    arith = (sum[0] + sum[1] + sum[2] + sum[3]) / (double)n_bins;
    return (float)(exp(mean_log) / arith);
}

/* -sum s log2(s + eps) over blocks, s = block energy / (total + eps). */
static double block_entropy(const double *block, int n_blocks, double total) {
    double h = 0.0;
    int j;
    for (j = 0; j < n_blocks; ++j) {
        double s = block[j] / (total + PYAA_EPS);
        h -= s * log2(s + PYAA_EPS);
    }
    return h;
}

float hm_spectral_entropy(const float *power, int half) {
    /* The magnitudes pyAudioAnalysis sees are |X[k]| / half, k < half. */
    double scale = 1.0 / ((double)half * (double)half);
    double block[HM_ENTROPY_BLOCKS], total = 0.0;
    int len = half / HM_ENTROPY_BLOCKS, j, k;
    for (j = 0; j < HM_ENTROPY_BLOCKS; ++j) {
        double e = 0.0;
        for (k = j * len; k < (j + 1) * len; ++k) e += power[k];
        block[j] = e * scale;
        total += e;
    }
    for (k = HM_ENTROPY_BLOCKS * len; k < half; ++k) total += power[k];
    return (float)block_entropy(block, HM_ENTROPY_BLOCKS, total * scale);
}

float hm_spectral_flux(const float *mag, int half, float *prev_norm, int have_prev) {
    double sum[2] = {0.0, 0.0}, inv, flux[2] = {0.0, 0.0};
    double scale = 1.0 / (double)half;
    int k;
    for (k = 0; k + 1 < half; k += 2) {
        sum[0] += mag[k];
        sum[1] += mag[k + 1];
    }
    for (; k < half; ++k) sum[0] += mag[k];
    /* sum(mag / half + eps) */
    inv = 1.0 / ((sum[0] + sum[1]) * scale + (double)half * PYAA_EPS);
    for (k = 0; k < half; ++k) {
        double v = (double)mag[k] * scale * inv;
        if (have_prev) {
            double d = v - (double)prev_norm[k];
            flux[k & 1] += d * d;
        }
        prev_norm[k] = (float)v;
    }
    return (float)(flux[0] + flux[1]);
}

void hm_time_stats(const float *x, int n, int lo, int hi, hm_time_values *out) {
    /* librosa zeroes |x| <= 1e-10 before taking sign bits, so a sample is
     * "negative" only below -1e-10; edge padding adds no crossings. */
    const float neg = -1e-10f;
    double block[HM_ENTROPY_BLOCKS], total = 0.0;
    int len = n / HM_ENTROPY_BLOCKS, crossings = 0, i, j;
    for (i = lo + 1; i < hi; ++i) crossings += (x[i] < neg) != (x[i - 1] < neg);
    for (j = 0; j < HM_ENTROPY_BLOCKS; ++j) {
        double e0 = 0.0, e1 = 0.0;
        for (i = j * len; i + 1 < (j + 1) * len; i += 2) {
            e0 += (double)x[i] * x[i];
            e1 += (double)x[i + 1] * x[i + 1];
        }
        for (; i < (j + 1) * len; ++i) e0 += (double)x[i] * x[i];
        block[j] = e0 + e1;
        total += block[j];
    }
    for (i = HM_ENTROPY_BLOCKS * len; i < n; ++i) total += (double)x[i] * x[i];
    out->zcr = (float)crossings / (float)n;
    out->rms = (float)sqrt(total / (double)n);
    out->energy_entropy = (float)block_entropy(block, HM_ENTROPY_BLOCKS, total);
}
