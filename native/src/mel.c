/*
 * Mel filterbank, as librosa.filters.mel(norm="slaney"): triangles between
 * band edges equally spaced on the mel scale, each scaled by
 * 2 / (upper edge - lower edge) so that every band has the same area.
 * Only the nonzero weights are stored: each FFT bin lies in at most two
 * bands, so the bank costs about 2 * n_bins weights instead of n_mels * n_bins.
 */
#include "harmonies/harmonies.h"
#include "internal.h"

#include <math.h>

/* Slaney's scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above. */
#define SLANEY_F_SP (200.0 / 3.0)
#define SLANEY_MIN_LOG_HZ 1000.0
#define SLANEY_MIN_LOG_MEL (SLANEY_MIN_LOG_HZ / SLANEY_F_SP)

static double slaney_logstep(void) { return log(6.4) / 27.0; }

double hm_hz_to_mel(double hz, int htk) {
    if (htk) return 2595.0 * log10(1.0 + hz / 700.0);
    if (hz >= SLANEY_MIN_LOG_HZ) return SLANEY_MIN_LOG_MEL + log(hz / SLANEY_MIN_LOG_HZ) / slaney_logstep();
    return hz / SLANEY_F_SP;
}

double hm_mel_to_hz(double mel, int htk) {
    if (htk) return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
    if (mel >= SLANEY_MIN_LOG_MEL) return SLANEY_MIN_LOG_HZ * exp(slaney_logstep() * (mel - SLANEY_MIN_LOG_MEL));
    return SLANEY_F_SP * mel;
}

/* Edge i (0..n_mels+1) of the bank: numpy.linspace over mel, back to Hz. */
static double band_edge(int i, int n_mels, double min_mel, double max_mel, int htk) {
    int n = n_mels + 2;
    double mel;
    if (i == n - 1) {
        mel = max_mel; /* numpy.linspace sets the last point exactly */
    } else {
        double step = (max_mel - min_mel) / (double)(n - 1);
        mel = min_mel + (double)i * step;
    }
    return hm_mel_to_hz(mel, htk);
}

/* Weight of band m at bin frequency f, rounded as librosa rounds it (the
 * triangle is stored as float32, then scaled in float64 and stored again). */
static float band_weight(double lo, double mid, double hi, double f) {
    double lower = (f - lo) / (mid - lo);
    double upper = (hi - f) / (hi - mid);
    double w = lower < upper ? lower : upper;
    float w32;
    if (!(w > 0.0)) return 0.0f;
    w32 = (float)w;
    return (float)((double)w32 * (2.0 / (hi - lo)));
}

typedef struct bank_geometry {
    int n_bins;
    double bin_hz;
    double min_mel, max_mel;
} bank_geometry;

static int geometry(bank_geometry *g, int sample_rate, int n_fft, int n_mels, double fmin,
                    double fmax, int htk) {
    if (sample_rate < HM_MIN_SAMPLE_RATE || sample_rate > HM_MAX_SAMPLE_RATE) return 0;
    if (!hm_is_pow2(n_fft) || n_fft < HM_MIN_FFT || n_fft > HM_MAX_FFT) return 0;
    if (n_mels < 1 || n_mels > HM_MAX_MELS) return 0;
    if (!isfinite(fmin) || !isfinite(fmax) || fmin < 0.0 || fmin >= fmax ||
        fmax > 0.5 * sample_rate)
        return 0;
    g->n_bins = n_fft / 2 + 1;
    g->bin_hz = (double)sample_rate / (double)n_fft;
    g->min_mel = hm_hz_to_mel(fmin, htk);
    g->max_mel = hm_hz_to_mel(fmax, htk);
    return 1;
}

/* The nonzero support [first, first + count) of band m. */
static void band_support(const bank_geometry *g, int m, int n_mels, int htk, int *first,
                         int *count) {
    double lo = band_edge(m, n_mels, g->min_mel, g->max_mel, htk);
    double mid = band_edge(m + 1, n_mels, g->min_mel, g->max_mel, htk);
    double hi = band_edge(m + 2, n_mels, g->min_mel, g->max_mel, htk);
    int k = (int)floor(lo / g->bin_hz);
    int start = -1, end = -1;
    if (k < 0) k = 0;
    for (; k < g->n_bins; ++k) {
        double f = (double)k * g->bin_hz;
        if (f >= hi) break;
        if (band_weight(lo, mid, hi, f) > 0.0f) {
            if (start < 0) start = k;
            end = k + 1;
        }
    }
    *first = start < 0 ? 0 : start;
    *count = start < 0 ? 0 : end - start;
}

size_t hm_mel_workspace_size(int sample_rate, int n_fft, int n_mels, double fmin, double fmax,
                             int htk) {
    bank_geometry g;
    size_t nonzero = 0;
    int m;
    if (!geometry(&g, sample_rate, n_fft, n_mels, fmin, fmax, htk)) return 0;
    for (m = 0; m < n_mels; ++m) {
        int first, count;
        band_support(&g, m, n_mels, htk, &first, &count);
        nonzero += (size_t)count;
    }
    return 3u * hm_align_up((size_t)n_mels * sizeof(int32_t)) +
           hm_align_up((nonzero > 0 ? nonzero : 1u) * sizeof(float)) + HM_WORKSPACE_SLACK;
}

hm_status hm_mel_init(hm_mel *mel, int sample_rate, int n_fft, int n_mels, double fmin,
                      double fmax, int htk, void *mem, size_t mem_len) {
    bank_geometry g;
    hm_arena arena;
    size_t need;
    int m, offset = 0;
    if (mel == NULL) return HM_ERR_NULL_ARGUMENT;
    mel->initialized = 0;
    if (mem == NULL) return HM_ERR_NULL_ARGUMENT;
    if (sample_rate < HM_MIN_SAMPLE_RATE || sample_rate > HM_MAX_SAMPLE_RATE)
        return HM_ERR_SAMPLE_RATE;
    if (!hm_is_pow2(n_fft) || n_fft < HM_MIN_FFT || n_fft > HM_MAX_FFT) return HM_ERR_N_FFT;
    if (n_mels < 1 || n_mels > HM_MAX_MELS) return HM_ERR_N_MELS;
    if (!isfinite(fmax) || fmax <= 0.0 || fmax > 0.5 * sample_rate) return HM_ERR_FMAX;
    if (!isfinite(fmin) || fmin < 0.0 || fmin >= fmax) return HM_ERR_FMIN;
    if (!geometry(&g, sample_rate, n_fft, n_mels, fmin, fmax, htk)) return HM_ERR_FMAX;
    need = hm_mel_workspace_size(sample_rate, n_fft, n_mels, fmin, fmax, htk);
    if (mem_len < need) return HM_ERR_WORKSPACE_TOO_SMALL;

    hm_arena_init(&arena, mem, mem_len);
    mel->n_mels = n_mels;
    mel->n_bins = g.n_bins;
    mel->start = (int32_t *)hm_arena_take(&arena, (size_t)n_mels * sizeof(int32_t));
    mel->length = (int32_t *)hm_arena_take(&arena, (size_t)n_mels * sizeof(int32_t));
    mel->offset = (int32_t *)hm_arena_take(&arena, (size_t)n_mels * sizeof(int32_t));
    mel->weights = (float *)hm_arena_take(
        &arena, (need - HM_WORKSPACE_SLACK) - 3u * hm_align_up((size_t)n_mels * sizeof(int32_t)));
    if (arena.failed) return HM_ERR_WORKSPACE_TOO_SMALL;

    for (m = 0; m < n_mels; ++m) {
        double lo = band_edge(m, n_mels, g.min_mel, g.max_mel, htk);
        double mid = band_edge(m + 1, n_mels, g.min_mel, g.max_mel, htk);
        double hi = band_edge(m + 2, n_mels, g.min_mel, g.max_mel, htk);
        int first, count, k;
        band_support(&g, m, n_mels, htk, &first, &count);
        /* librosa's test: a band is empty if all its weights are zero,
         * unless its lower edge is exactly 0 Hz. */
        if (count == 0 && lo != 0.0) return HM_ERR_EMPTY_MEL_FILTER;
        mel->start[m] = first;
        mel->length[m] = count;
        mel->offset[m] = offset;
        for (k = 0; k < count; ++k)
            mel->weights[offset + k] = band_weight(lo, mid, hi, (double)(first + k) * g.bin_hz);
        offset += count;
    }
    mel->initialized = 1;
    return HM_OK;
}

void hm_mel_apply(const hm_mel *mel, const float *power, float *out) {
    int m;
    for (m = 0; m < mel->n_mels; ++m) {
        const float *restrict w = mel->weights + mel->offset[m];
        const float *restrict p = power + mel->start[m];
        int n = mel->length[m], k = 0;
        /* Four partial sums: shorter dependency chains than one running sum. */
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (; k + 4 <= n; k += 4) {
            s0 += w[k] * p[k];
            s1 += w[k + 1] * p[k + 1];
            s2 += w[k + 2] * p[k + 2];
            s3 += w[k + 3] * p[k + 3];
        }
        for (; k < n; ++k) s0 += w[k] * p[k];
        out[m] = (s0 + s1) + (s2 + s3);
    }
}

float hm_mel_weight(const hm_mel *mel, int m, int k) {
    if (mel == NULL || !mel->initialized || m < 0 || m >= mel->n_mels) return 0.0f;
    if (k < mel->start[m] || k >= mel->start[m] + mel->length[m]) return 0.0f;
    return mel->weights[mel->offset[m] + (k - mel->start[m])];
}
