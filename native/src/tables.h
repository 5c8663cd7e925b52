/* Private: the tables built at init and the kernels that use them. */
#ifndef HM_TABLES_H
#define HM_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "harmonies/harmonies.h"

/* Sample j of hm_window_hann, in double; arguments already validated. */
double hm_hann_value(int j, int win_length, int n_fft);

/* Power spectrum |X[k]|^2, k = 0..n/2, of in[n] * window[n] (window given in
 * packing order: packed[i] = window[2 bitrev[i]], packed[n/2 + i] =
 * window[2 bitrev[i] + 1]), computed in double, rounded once. */
void hm_rfft_power(hm_fft *fft, const float *in, const double *packed_window, float *power);

/* DCT-II orthonormal, stored transposed: table[m * n_out + c]. */
void hm_dct_table(float *table, int n_in, int n_out);
/* in[n_in] -> out[n_out] */
void hm_dct_apply(const float *table, int n_in, int n_out, const float *in, float *out);

/* librosa.filters.chroma(sr, n_fft, tuning=0) for bins 0..n_fft/2, stored
 * transposed: table[k * 12 + c]. */
void hm_chroma_table(float *table, int sample_rate, int n_fft);
/* power[n_bins] -> out[12], normalised by the frame's maximum (librosa's
 * norm=inf); an all-zero frame stays zero. */
void hm_chroma_apply(const float *table, int n_bins, const float *power, float *out);

/* Spectral statistics of one frame, librosa's definitions, from the
 * magnitude spectrum mag[n_bins] with bin spacing bin_hz. */
typedef struct hm_spectral_shape {
    float centroid;
    float bandwidth;
    float rolloff;
} hm_shape_stats;
void hm_spectral_shape(const float *mag, int n_bins, double bin_hz, hm_shape_stats *out);

/* librosa spectral_flatness from the power spectrum power[n_bins]. */
float hm_spectral_flatness(const float *power, int n_bins, double amin);

/* pyAudioAnalysis spectral_entropy of the magnitudes mag[k] / half for
 * k < half (half = n_fft / 2), computed from their powers. */
float hm_spectral_entropy(const float *power, int half);

/* pyAudioAnalysis spectral_flux between this frame's magnitudes
 * mag[k] / half (k < half) and the previous frame's, whose normalised
 * values live in prev_norm[half] (updated in place to this frame's). The
 * first frame (have_prev == 0) has flux 0. */
float hm_spectral_flux(const float *mag, int half, float *prev_norm, int have_prev);

/* Time-domain statistics of one frame x[n] whose real samples are
 * x[lo..hi) (the rest is padding). */
typedef struct hm_time_stats {
    float zcr;            /* librosa: sign changes among real samples / n */
    float rms;            /* sqrt(mean(x^2)) over all n */
    float energy_entropy; /* pyAudioAnalysis, 10 sub-blocks */
} hm_time_values;
void hm_time_stats(const float *x, int n, int lo, int hi, hm_time_values *out);

#endif
