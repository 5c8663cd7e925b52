/* Analysis window. */
#include "harmonies/harmonies.h"
#include "internal.h"
#include "tables.h"

#include <math.h>

double hm_hann_value(int j, int win_length, int n_fft) {
    /* Centred as librosa.util.pad_center: the extra sample goes right. */
    int i = j - (n_fft - win_length) / 2;
    if (i < 0 || i >= win_length) return 0.0;
    if (win_length == 1) return 1.0; /* scipy's get_window gives [1.0] for one point */
    /* Periodic ("fftbins") Hann: the symmetric window of win_length + 1
     * points without its last one. */
    return 0.5 - 0.5 * cos(2.0 * HM_PI * (double)i / (double)win_length);
}

hm_status hm_window_hann(float *out, int win_length, int n_fft) {
    int j;
    if (out == NULL) return HM_ERR_NULL_ARGUMENT;
    if (n_fft < 1) return HM_ERR_N_FFT;
    if (win_length < 1 || win_length > n_fft) return HM_ERR_WIN_LENGTH;
    for (j = 0; j < n_fft; ++j) out[j] = (float)hm_hann_value(j, win_length, n_fft);
    return HM_OK;
}
