/* Analysis window. */
#include "harmonies/harmonies.h"
#include "internal.h"
#include "tables.h"

#include <math.h>

void hm_window_hann_f64(double *out, int win_length, int n_fft) {
    int i, lpad;
    for (i = 0; i < n_fft; ++i) out[i] = 0.0;
    /* Centred as librosa.util.pad_center: the extra sample goes right. */
    lpad = (n_fft - win_length) / 2;
    if (win_length == 1) {
        out[lpad] = 1.0; /* scipy's get_window returns [1.0] for one point */
        return;
    }
    /* Periodic ("fftbins") Hann: the symmetric window of win_length + 1
     * points without its last one. */
    for (i = 0; i < win_length; ++i)
        out[lpad + i] = 0.5 - 0.5 * cos(2.0 * HM_PI * (double)i / (double)win_length);
}

hm_status hm_window_hann(float *out, int win_length, int n_fft) {
    int i, lpad;
    if (out == NULL) return HM_ERR_NULL_ARGUMENT;
    if (n_fft < 1) return HM_ERR_N_FFT;
    if (win_length < 1 || win_length > n_fft) return HM_ERR_WIN_LENGTH;
    for (i = 0; i < n_fft; ++i) out[i] = 0.0f;
    lpad = (n_fft - win_length) / 2;
    if (win_length == 1) {
        out[lpad] = 1.0f;
        return HM_OK;
    }
    for (i = 0; i < win_length; ++i)
        out[lpad + i] = (float)(0.5 - 0.5 * cos(2.0 * HM_PI * (double)i / (double)win_length));
    return HM_OK;
}
