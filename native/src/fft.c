/*
 * Real FFT for power-of-two sizes.
 *
 * A real signal of n samples is packed into a complex one of n/2 samples
 * (even samples real, odd samples imaginary), transformed by an iterative
 * radix-2 decimation-in-time FFT, and split into the spectrum of the real
 * signal. Data are kept as separate real and imaginary arrays and every
 * stage's twiddles are contiguous, so the inner loops are plain
 * element-wise arithmetic that compilers vectorise. All tables are built at
 * init; the transforms touch only the object's own scratch.
 */
#include "harmonies/harmonies.h"
#include "internal.h"
#include "tables.h"

#include <math.h>

static int log2_int(int n) {
    int b = 0;
    while ((1 << b) < n) ++b;
    return b;
}

size_t hm_fft_workspace_size(int n) {
    size_t half, total;
    if (!hm_is_pow2(n) || n < HM_MIN_FFT || n > HM_MAX_FFT) return 0;
    half = (size_t)n / 2u;
    total = hm_align_up(half * sizeof(uint16_t));
    total += 2u * hm_align_up(half * sizeof(double));               /* stage twiddles */
    total += 2u * hm_align_up((half + 1u) * sizeof(double));        /* post twiddles */
    total += 3u * hm_align_up((half + 1u) * sizeof(double));        /* scratch */
    return total + HM_WORKSPACE_SLACK;
}

hm_status hm_fft_init(hm_fft *fft, int n, void *mem, size_t mem_len) {
    hm_arena arena;
    int half, bits, i, h, j;
    if (fft == NULL) return HM_ERR_NULL_ARGUMENT;
    fft->initialized = 0;
    if (mem == NULL) return HM_ERR_NULL_ARGUMENT;
    if (!hm_is_pow2(n) || n < HM_MIN_FFT || n > HM_MAX_FFT) return HM_ERR_N_FFT;
    if (mem_len < hm_fft_workspace_size(n)) return HM_ERR_WORKSPACE_TOO_SMALL;

    half = n / 2;
    hm_arena_init(&arena, mem, mem_len);
    fft->n = n;
    fft->half = half;
    fft->bitrev = (uint16_t *)hm_arena_take(&arena, (size_t)half * sizeof(uint16_t));
    fft->tw_re = (double *)hm_arena_take(&arena, (size_t)half * sizeof(double));
    fft->tw_im = (double *)hm_arena_take(&arena, (size_t)half * sizeof(double));
    fft->post_re = (double *)hm_arena_take(&arena, (size_t)(half + 1) * sizeof(double));
    fft->post_im = (double *)hm_arena_take(&arena, (size_t)(half + 1) * sizeof(double));
    fft->work_re = (double *)hm_arena_take(&arena, (size_t)(half + 1) * sizeof(double));
    fft->work_im = (double *)hm_arena_take(&arena, (size_t)(half + 1) * sizeof(double));
    fft->work_power = (double *)hm_arena_take(&arena, (size_t)(half + 1) * sizeof(double));
    if (arena.failed) return HM_ERR_WORKSPACE_TOO_SMALL;

    bits = log2_int(half);
    for (i = 0; i < half; ++i) {
        int r = 0, b;
        for (b = 0; b < bits; ++b)
            if (i & (1 << b)) r |= 1 << (bits - 1 - b);
        fft->bitrev[i] = (uint16_t)r;
    }
    /* Stage with half-size h uses W_{2h}^j, j < h, stored at index h + j. */
    fft->tw_re[0] = 1.0;
    fft->tw_im[0] = 0.0;
    for (h = 1; h < half; h *= 2) {
        for (j = 0; j < h; ++j) {
            double a = -HM_PI * (double)j / (double)h;
            fft->tw_re[h + j] = cos(a);
            fft->tw_im[h + j] = sin(a);
        }
    }
    for (i = 0; i <= half; ++i) {
        double a = -2.0 * HM_PI * (double)i / (double)n;
        fft->post_re[i] = cos(a);
        fft->post_im[i] = sin(a);
    }
    fft->initialized = 1;
    return HM_OK;
}

/* In-place complex FFT of size m (>= 4) on bit-reversed input. */
HM_MULTIVERSION
static void complex_fft_bitrev_input(const hm_fft *fft, double *restrict re, double *restrict im,
                                     int m) {
    int k, h;
    /* The first two stages fused: their twiddles are 1 and -i. */
    for (k = 0; k < m; k += 4) {
        double a0r = re[k] + re[k + 1], a0i = im[k] + im[k + 1];
        double a1r = re[k] - re[k + 1], a1i = im[k] - im[k + 1];
        double a2r = re[k + 2] + re[k + 3], a2i = im[k + 2] + im[k + 3];
        double a3r = re[k + 2] - re[k + 3], a3i = im[k + 2] - im[k + 3];
        re[k] = a0r + a2r;
        im[k] = a0i + a2i;
        re[k + 2] = a0r - a2r;
        im[k + 2] = a0i - a2i;
        /* -i * a3 = (a3i, -a3r) */
        re[k + 1] = a1r + a3i;
        im[k + 1] = a1i - a3r;
        re[k + 3] = a1r - a3i;
        im[k + 3] = a1i + a3r;
    }
    for (h = 4; h < m; h *= 2) {
        const double *restrict wr = fft->tw_re + h;
        const double *restrict wi = fft->tw_im + h;
        for (k = 0; k < m; k += 2 * h) {
            double *restrict ar = re + k, *restrict ai = im + k;
            double *restrict br = re + k + h, *restrict bi = im + k + h;
            int j;
            for (j = 0; j < h; ++j) {
                double tr = br[j] * wr[j] - bi[j] * wi[j];
                double ti = br[j] * wi[j] + bi[j] * wr[j];
                br[j] = ar[j] - tr;
                bi[j] = ai[j] - ti;
                ar[j] = ar[j] + tr;
                ai[j] = ai[j] + ti;
            }
        }
    }
}

/* Pack even samples as real, odd as imaginary, in bit-reversed order,
 * applying the (packed) window on the way, and transform. Leaves the
 * half-size complex spectrum Z in the scratch arrays. */
HM_MULTIVERSION
static void transform_packed(hm_fft *fft, const float *in, const double *packed_window) {
    int half = fft->half, i;
    double *restrict zr = fft->work_re, *restrict zi = fft->work_im;
    const uint16_t *restrict rev = fft->bitrev;
    if (packed_window != NULL) {
        const double *restrict we = packed_window, *restrict wo = packed_window + half;
        for (i = 0; i < half; ++i) {
            int r = rev[i];
            zr[i] = (double)in[2 * r] * we[i];
            zi[i] = (double)in[2 * r + 1] * wo[i];
        }
    } else {
        for (i = 0; i < half; ++i) {
            int r = rev[i];
            zr[i] = in[2 * r];
            zi[i] = in[2 * r + 1];
        }
    }
    complex_fft_bitrev_input(fft, zr, zi, half);
}

void hm_rfft(hm_fft *fft, const float *in, float *re, float *im) {
    const double *zr, *zi;
    int half, k;
    if (fft == NULL || !fft->initialized || in == NULL || re == NULL || im == NULL) return;
    transform_packed(fft, in, NULL);
    zr = fft->work_re;
    zi = fft->work_im;
    half = fft->half;
    /* Split Z (the FFT of even + i*odd) into X, the spectrum of the real
     * input: X[k] = E[k] + W^k O[k] with E, O the spectra of the even and
     * odd samples; X[half-k] is conj(E[k] - W^k O[k]). */
    re[0] = (float)(zr[0] + zi[0]);
    im[0] = 0.0f;
    re[half] = (float)(zr[0] - zi[0]);
    im[half] = 0.0f;
    for (k = 1; k <= half / 2; ++k) {
        double ar = zr[k], ai = zi[k], br = zr[half - k], bi = zi[half - k];
        double er = 0.5 * (ar + br), ei = 0.5 * (ai - bi);
        double or_ = 0.5 * (ai + bi), oi = -0.5 * (ar - br);
        double wr = fft->post_re[k], wi = fft->post_im[k];
        double tr = wr * or_ - wi * oi, ti = wr * oi + wi * or_;
        re[k] = (float)(er + tr);
        im[k] = (float)(ei + ti);
        re[half - k] = (float)(er - tr);
        im[half - k] = (float)(-(ei - ti));
    }
}

HM_MULTIVERSION
void hm_rfft_power(hm_fft *fft, const float *in, const double *window, float *power) {
    const double *restrict zr, *restrict zi, *restrict wr, *restrict wi;
    double *restrict pw;
    int half = fft->half, k;
    transform_packed(fft, in, window);
    zr = fft->work_re;
    zi = fft->work_im;
    wr = fft->post_re;
    wi = fft->post_im;
    pw = fft->work_power;
    pw[0] = (zr[0] + zi[0]) * (zr[0] + zi[0]);
    pw[half] = (zr[0] - zi[0]) * (zr[0] - zi[0]);
    /* One bin per iteration: the pairwise form of hm_rfft does half the
     * arithmetic but does not vectorise; this does, as long as the rounding
     * to float is a separate loop. */
    for (k = 1; k < half; ++k) {
        double ar = zr[k], ai = zi[k], br = zr[half - k], bi = zi[half - k];
        double er = 0.5 * (ar + br), ei = 0.5 * (ai - bi);
        double or_ = 0.5 * (ai + bi), oi = -0.5 * (ar - br);
        double xr = er + (wr[k] * or_ - wi[k] * oi);
        double xi = ei + (wr[k] * oi + wi[k] * or_);
        pw[k] = xr * xr + xi * xi;
    }
    for (k = 0; k <= half; ++k) power[k] = (float)pw[k];
}

void hm_irfft(hm_fft *fft, const float *re, const float *im, float *out) {
    int half, i, k;
    double *zr, *zi;
    double scale;
    if (fft == NULL || !fft->initialized || re == NULL || im == NULL || out == NULL) return;
    half = fft->half;
    zr = fft->work_re;
    zi = fft->work_im;
    /* Rebuild Z[k] = E[k] + i O[k] from X, then take the conjugate so that
     * the forward transform computes the inverse. Written in bit-reversed
     * order directly. */
    {
        /* k = 0: E = (X0 + Xh)/2, O = (X0 - Xh)/2 (both real). */
        double e = 0.5 * (re[0] + re[half]), o = 0.5 * (re[0] - re[half]);
        zr[fft->bitrev[0]] = e;
        zi[fft->bitrev[0]] = -o;
    }
    for (k = 1; k <= half / 2; ++k) {
        /* E[k] = (X[k] + conj(X[half-k]))/2; W^k O[k] = (X[k] - conj(X[half-k]))/2 */
        double ar = re[k], ai = im[k], br = re[half - k], bi = -im[half - k];
        double er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
        double dr = 0.5 * (ar - br), di = 0.5 * (ai - bi);
        double wr = fft->post_re[k], wi = -fft->post_im[k]; /* W^-k */
        double or_ = dr * wr - di * wi, oi = dr * wi + di * wr;
        /* Z[k] = E + i O; Z[half-k] = conj(E) + i conj(O) */
        double zkr = er - oi, zki = ei + or_;
        double zmr = er + oi, zmi = -ei + or_;
        zr[fft->bitrev[k]] = zkr;
        zi[fft->bitrev[k]] = -zki;
        if (half - k != k) {
            zr[fft->bitrev[half - k]] = zmr;
            zi[fft->bitrev[half - k]] = -zmi;
        }
    }
    complex_fft_bitrev_input(fft, zr, zi, half);
    scale = 1.0 / (double)half;
    for (i = 0; i < half; ++i) {
        /* z = conj(FFT(conj(Z))) / half: x[2i] = Re z, x[2i+1] = Im z */
        out[2 * i] = (float)(zr[i] * scale);
        out[2 * i + 1] = (float)(-zi[i] * scale);
    }
}
