/* Per-frame statistics of the spectrum and of the waveform. */
#include "harmonies/harmonies.h"
#include "internal.h"
#include "tables.h"

#include <math.h>
#include <string.h>

/* pyAudioAnalysis's guard against division by zero and log(0):
 * sys.float_info.epsilon, the double machine epsilon. */
#define PYAA_EPS 2.220446049250313e-16

/* Sums run in LANES independent float accumulators: each lane is a plain
 * sum, so the compiler vectorises the loop without reassociating anything
 * (no -ffast-math), and the result is the same on every machine. */
#define LANES 8

static float lanes_total(const float *acc) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

HM_MULTIVERSION
void hm_spectral_shape(const float *mag, int n_bins, double bin_hz, hm_shape_stats *out) {
    float s0[LANES] = {0}, s1[LANES] = {0}, s2[LANES] = {0};
    float total, centroid_bin, var_bin;
    double threshold, cum;
    int k, j;
    /* Pass 1: total and first moment. */
    for (k = 0; k + LANES <= n_bins; k += LANES) {
        for (j = 0; j < LANES; ++j) {
            s0[j] += mag[k + j];
            s1[j] += mag[k + j] * (float)(k + j);
        }
    }
    for (; k < n_bins; ++k) {
        s0[0] += mag[k];
        s1[0] += mag[k] * (float)k;
    }
    total = lanes_total(s0);
    /* librosa normalises each frame to unit sum; a silent frame stays 0. */
    centroid_bin = total > 0.0f ? lanes_total(s1) / total : 0.0f;
    /* Pass 2: spread around the centroid (two passes: no cancellation). */
    for (k = 0; k + LANES <= n_bins; k += LANES) {
        for (j = 0; j < LANES; ++j) {
            float d = (float)(k + j) - centroid_bin;
            s2[j] += mag[k + j] * d * d;
        }
    }
    for (; k < n_bins; ++k) {
        float d = (float)k - centroid_bin;
        s2[0] += mag[k] * d * d;
    }
    var_bin = total > 0.0f ? lanes_total(s2) / total : 0.0f;
    out->centroid = (float)((double)centroid_bin * bin_hz);
    out->bandwidth = (float)(sqrt((double)var_bin) * bin_hz);

    /* Roll-off: the lowest bin at which the cumulative magnitude reaches
     * 85 % of the total (0 Hz for a silent frame, as librosa). The running
     * sum is kept in double so that only true near-ties can flip a bin. */
    threshold = 0.85 * (double)total;
    cum = 0.0;
    /* Whole blocks first (their sums vectorise), then bin by bin inside the
     * block where the threshold is crossed. */
    for (k = 0; k + LANES <= n_bins; k += LANES) {
        float block = 0.0f;
        for (j = 0; j < LANES; ++j) block += mag[k + j];
        if (cum + (double)block >= threshold) break;
        cum += (double)block;
    }
    for (; k < n_bins; ++k) {
        cum += mag[k];
        if (cum >= threshold) break;
    }
    if (k == n_bins) k = n_bins - 1;
    out->rolloff = (float)((double)k * bin_hz);
}

/* Replace x by its mantissa in [1, 2) and return its binary exponent. */
static int64_t split_exponent(double *x) {
    uint64_t bits;
    int64_t e;
    memcpy(&bits, x, sizeof bits);
    e = (int64_t)((bits >> 52) & 0x7ffu) - 1023;
    bits = (bits & 0x800fffffffffffffu) | 0x3ff0000000000000u;
    memcpy(x, &bits, sizeof bits);
    return e;
}

/* Blocks of LANES bins multiplied into the per-lane products between two
 * renormalisations: 8 factors in [1e-30, 1e30] stay inside double's range. */
#define FLATNESS_BLOCKS 8

HM_MULTIVERSION
float hm_spectral_flatness(const float *power, int n_bins, double amin) {
    /* Geometric mean without a logarithm per bin: per-lane double products
     * of the clamped powers, renormalised often enough never to leave the
     * normal range (amin >= 1e-30 by validation). */
    double prod[LANES];
    int64_t exponent[LANES] = {0};
    float sum[LANES] = {0};
    float floor_ = (float)amin;
    double log_sum = 0.0, arith;
    int k, j, blocks = 0;
    for (j = 0; j < LANES; ++j) prod[j] = 1.0;
    for (k = 0; k + LANES <= n_bins; k += LANES) {
        for (j = 0; j < LANES; ++j) {
            float p = power[k + j] > floor_ ? power[k + j] : floor_;
            prod[j] *= (double)p;
            sum[j] += p;
        }
        if (++blocks == FLATNESS_BLOCKS) {
            for (j = 0; j < LANES; ++j) exponent[j] += split_exponent(&prod[j]);
            blocks = 0;
        }
    }
    for (; k < n_bins; ++k) {
        float p = power[k] > floor_ ? power[k] : floor_;
        prod[0] *= (double)p;
        sum[0] += p;
    }
    for (j = 0; j < LANES; ++j) log_sum += log2(prod[j]) + (double)exponent[j];
    arith = (double)lanes_total(sum) / (double)n_bins;
    return (float)(exp2(log_sum / (double)n_bins) / arith);
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

static float lane_sum(const float *x, int n) {
    float acc[LANES] = {0};
    int k, j;
    for (k = 0; k + LANES <= n; k += LANES)
        for (j = 0; j < LANES; ++j) acc[j] += x[k + j];
    for (; k < n; ++k) acc[0] += x[k];
    return lanes_total(acc);
}

float hm_spectral_entropy(const float *power, int half) {
    /* The magnitudes pyAudioAnalysis sees are |X[k]| / half, k < half. */
    double scale = 1.0 / ((double)half * (double)half);
    double block[HM_ENTROPY_BLOCKS], total = 0.0;
    int len = half / HM_ENTROPY_BLOCKS, j;
    for (j = 0; j < HM_ENTROPY_BLOCKS; ++j) {
        double e = (double)lane_sum(power + j * len, len);
        block[j] = e * scale;
        total += e;
    }
    total += (double)lane_sum(power + HM_ENTROPY_BLOCKS * len, half - HM_ENTROPY_BLOCKS * len);
    return (float)block_entropy(block, HM_ENTROPY_BLOCKS, total * scale);
}

HM_MULTIVERSION
float hm_spectral_flux(const float *mag, int half, float *prev_norm, int have_prev) {
    float flux[LANES] = {0};
    float inv;
    int k, j;
    /* Normalised magnitude v = (mag / half) / sum(mag / half + eps). */
    inv = (float)(1.0 / ((double)lane_sum(mag, half) / (double)half + (double)half * PYAA_EPS) /
                  (double)half);
    for (k = 0; k + LANES <= half; k += LANES) {
        for (j = 0; j < LANES; ++j) {
            float v = mag[k + j] * inv;
            float d = v - prev_norm[k + j];
            flux[j] += d * d;
            prev_norm[k + j] = v;
        }
    }
    for (; k < half; ++k) {
        float v = mag[k] * inv;
        float d = v - prev_norm[k];
        flux[0] += d * d;
        prev_norm[k] = v;
    }
    return have_prev ? lanes_total(flux) : 0.0f;
}

static float lane_sum_squares(const float *x, int n) {
    float acc[LANES] = {0};
    int k, j;
    for (k = 0; k + LANES <= n; k += LANES)
        for (j = 0; j < LANES; ++j) acc[j] += x[k + j] * x[k + j];
    for (; k < n; ++k) acc[0] += x[k] * x[k];
    return lanes_total(acc);
}

void hm_time_stats(const float *x, int n, int lo, int hi, hm_time_values *out) {
    /* librosa zeroes |x| <= 1e-10 before taking sign bits, so a sample is
     * "negative" only below -1e-10; edge padding adds no crossings. */
    const float neg = -1e-10f;
    double block[HM_ENTROPY_BLOCKS], total = 0.0;
    int len = n / HM_ENTROPY_BLOCKS, crossings = 0, i, j;
    for (i = lo + 1; i < hi; ++i) crossings += (x[i] < neg) != (x[i - 1] < neg);
    for (j = 0; j < HM_ENTROPY_BLOCKS; ++j) {
        block[j] = (double)lane_sum_squares(x + j * len, len);
        total += block[j];
    }
    total += (double)lane_sum_squares(x + HM_ENTROPY_BLOCKS * len, n - HM_ENTROPY_BLOCKS * len);
    out->zcr = (float)crossings / (float)n;
    out->rms = (float)sqrt(total / (double)n);
    out->energy_entropy = (float)block_entropy(block, HM_ENTROPY_BLOCKS, total);
}
