/* Chroma filterbank and its application, as librosa.filters.chroma with
 * tuning 0, ctroct 5, octwidth 2, norm 2, base C, and chroma_stft's
 * per-frame norm=inf normalisation. */
#include "internal.h"
#include "tables.h"

#include <math.h>

/* Chroma bin position of FFT bin j (j >= 1): 12 * log2(f / (440 Hz / 16)). */
static double chroma_position(int j, double bin_hz) {
    return (double)HM_N_CHROMA_BINS * log2((double)j * bin_hz / (440.0 / 16.0));
}

static double positive_remainder(double x, double m) {
    double r = fmod(x, m);
    return r < 0.0 ? r + m : r;
}

void hm_chroma_table(float *table, int sample_rate, int n_fft) {
    const int n_chroma = HM_N_CHROMA_BINS;
    const double half_chroma = 6.0; /* round(n_chroma / 2) */
    double bin_hz = (double)sample_rate / (double)n_fft;
    int n_bins = n_fft / 2 + 1, k, c;
    for (k = 0; k < n_bins; ++k) {
        /* Bin 0 (0 Hz) is placed 1.5 octaves below bin 1. */
        double pos = k == 0 ? chroma_position(1, bin_hz) - 1.5 * n_chroma : chroma_position(k, bin_hz);
        double next = chroma_position(k + 1, bin_hz);
        double width = next - pos > 1.0 ? next - pos : 1.0;
        double w[HM_N_CHROMA_BINS], norm = 0.0, octave_weight;
        for (c = 0; c < n_chroma; ++c) {
            /* Distance to chroma c, wrapped into [-6, 6). */
            double d = positive_remainder(pos - c + half_chroma + 10.0 * n_chroma, n_chroma) - half_chroma;
            double z = 2.0 * d / width;
            w[c] = exp(-0.5 * z * z);
            norm += w[c] * w[c];
        }
        norm = sqrt(norm);
        /* Gaussian emphasis centred on octave 5 (C5-ish), two octaves wide. */
        octave_weight = exp(-0.5 * ((pos / n_chroma - 5.0) / 2.0) * ((pos / n_chroma - 5.0) / 2.0));
        for (c = 0; c < n_chroma; ++c) {
            /* Rolled so that row 0 is C: output row c is input row c + 3. */
            int src = (c + 3) % n_chroma;
            table[(size_t)k * (size_t)n_chroma + (size_t)c] = (float)(w[src] / norm * octave_weight);
        }
    }
}

HM_MULTIVERSION
void hm_chroma_apply(const float *table, int n_bins, const float *power, float *out) {
    float acc[HM_N_CHROMA_BINS];
    float peak = 0.0f;
    int k, c;
    for (c = 0; c < HM_N_CHROMA_BINS; ++c) acc[c] = 0.0f;
    for (k = 0; k < n_bins; ++k) {
        const float *restrict row = table + (size_t)k * HM_N_CHROMA_BINS;
        float p = power[k];
        for (c = 0; c < HM_N_CHROMA_BINS; ++c) acc[c] += row[c] * p;
    }
    for (c = 0; c < HM_N_CHROMA_BINS; ++c)
        if (acc[c] > peak) peak = acc[c];
    for (c = 0; c < HM_N_CHROMA_BINS; ++c) out[c] = peak > 0.0f ? acc[c] / peak : acc[c];
}
