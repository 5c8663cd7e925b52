/*
 * test_fft.c — the real FFT (hm_rfft / hm_irfft) against a direct DFT in
 * double, Parseval, the inverse round trip, analytic spectra, and the
 * set-up checks of hm_fft_init.
 *
 * The error bound used throughout (bound_for below) follows from the
 * header's contract: the transform runs in double and its result is
 * rounded to float once. So, relative to ||X||_2:
 *
 *   - the rounding of each output component to float: at most u = 2^-24
 *     relative per component, hence at most u in the L2 norm;
 *   - the double-precision FFT: Higham's bound for radix-2 Cooley-Tukey
 *     (Accuracy and Stability of Numerical Algorithms, 2nd ed., Thm 24.2)
 *         L*eta / (1 - L*eta),  eta = mu + gamma_4 (sqrt(2) + mu),
 *         gamma_4 = 4 u_d / (1 - 4 u_d),  u_d = 2^-53,
 *     with L = log2(n) stages (log2(n) - 1 for the complex FFT of n/2
 *     points, one for the split step X[k] = E[k] +/- W^k O[k]) and mu the
 *     twiddles' relative error, sqrt(2) u_d (cos and sin good to an ulp);
 *     about 1e-14 at n = 4096;
 *   - the reference, a direct DFT in double: each bin within
 *     gamma_n ||x||_1 (a sum of n products, Higham Eq. 3.5), so the L2
 *     error within sqrt(n) gamma_n ||x||_1 <= gamma_n sqrt(n) ||X||_2
 *     (||x||_1 <= sqrt(n) ||x||_2, ||X||_2 = sqrt(n) ||x||_2): ~3e-11 at
 *     n = 4096.
 *
 * The total is about u (observed: 2e-8 to 4e-8). An FFT computed in float
 * would not meet it: its typical error is ~1.2e-7 (Higham's worst case
 * with u = 2^-24, ~5e-6 at n = 4096), so these checks hold the header's
 * promise of double precision.
 *
 * Norms are of the full n-point spectrum: bins 0 and n/2 count once, the
 * others twice (their conjugate mirrors are not stored).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harmonies/harmonies.h"
#include "hm_test.h"

#define PI 3.14159265358979323846
#define MAX_N HM_MAX_FFT
#define MAX_BINS (MAX_N / 2 + 1)

/* Workspace for the largest FFT, plus room for offsets and guard bytes.
 * The union gives the base a known (double) alignment. */
#define WS_BYTES (128 * 1024)
static union {
    double align;
    unsigned char bytes[WS_BYTES];
} ws;

static float sig[MAX_N], back[MAX_N];
static float re[MAX_BINS], im[MAX_BINS], re2[MAX_BINS], im2[MAX_BINS];
static double ref_re[MAX_BINS], ref_im[MAX_BINS];
static double cos_table[MAX_N], sin_table[MAX_N];

static int log2_int(int n) {
    int b = 0;
    while ((1 << b) < n) ++b;
    return b;
}

/* The relative L2 error bound for an FFT of n points (file comment):
 * float rounding + Higham's bound in double + the reference's own error. */
static double bound_for(int n) {
    const double u = HM_TEST_U32, ud = DBL_EPSILON / 2.0;
    double mu = sqrt(2.0) * ud;
    double gamma4 = 4.0 * ud / (1.0 - 4.0 * ud);
    double eta = mu + gamma4 * (sqrt(2.0) + mu);
    double l_eta = (double)log2_int(n) * eta;
    double fft_double = l_eta / (1.0 - l_eta);
    double reference = (double)n * ud / (1.0 - (double)n * ud) * sqrt((double)n);
    return u + fft_double * (1.0 + u) + reference;
}

/* X[k] = sum_t x[t] exp(-2 pi i k t / n), k = 0..n/2, in double. The
 * exponentials come from a table indexed by (k*t) mod n, so every one is a
 * correctly computed double, not an accumulated rotation. */
static void direct_dft(const float *x, int n, double *xr, double *xi) {
    int k, t;
    for (t = 0; t < n; ++t) {
        cos_table[t] = cos(2.0 * PI * (double)t / (double)n);
        sin_table[t] = sin(2.0 * PI * (double)t / (double)n);
    }
    for (k = 0; k <= n / 2; ++k) {
        double sr = 0.0, si = 0.0;
        unsigned idx = 0, step = (unsigned)k, mask = (unsigned)n - 1u;
        for (t = 0; t < n; ++t) {
            sr += (double)x[t] * cos_table[idx];
            si -= (double)x[t] * sin_table[idx];
            idx = (idx + step) & mask;
        }
        xr[k] = sr;
        xi[k] = si;
    }
}

/* ||X - Xref||_2 / ||Xref||_2 over the full (mirrored) spectrum. */
static double spectrum_rel_error(const float *xr, const float *xi, const double *rr,
                                 const double *ri, int n) {
    double err = 0.0, norm = 0.0;
    int k;
    for (k = 0; k <= n / 2; ++k) {
        double w = (k == 0 || k == n / 2) ? 1.0 : 2.0;
        double dr = (double)xr[k] - rr[k], di = (double)xi[k] - ri[k];
        err += w * (dr * dr + di * di);
        norm += w * (rr[k] * rr[k] + ri[k] * ri[k]);
    }
    return sqrt(err / norm);
}

/* Initialise fft for size n in the static workspace; 0 on failure. */
static int init_fft(hm_fft *fft, int n) {
    size_t need = hm_fft_workspace_size(n);
    CHECK_MSG(need > 0 && need <= WS_BYTES, "n=%d need=%zu", n, need);
    if (need == 0 || need > WS_BYTES) return 0;
    CHECK_STATUS(hm_fft_init(fft, n, ws.bytes, need), HM_OK);
    return fft->initialized;
}

static void fill_random(float *x, int n, uint64_t seed) {
    hm_test_rng rng;
    int t;
    rng.state = seed;
    for (t = 0; t < n; ++t) x[t] = hm_test_rng_uniform(&rng);
}

/* hm_rfft against the direct DFT, Parseval and the round trip, for random
 * signals at every allowed size. */
static void test_against_dft(void) {
    int n, seed;
    for (n = HM_MIN_FFT; n <= HM_MAX_FFT; n *= 2) {
        hm_fft fft;
        double bound = bound_for(n);
        if (!init_fft(&fft, n)) continue;
        for (seed = 1; seed <= 2; ++seed) {
            double err, energy = 0.0, spec_energy = 0.0, diff = 0.0;
            int t, k;
            fill_random(sig, n, (uint64_t)(seed * 1000 + n));
            if (seed == 2)
                for (t = 0; t < n; ++t) sig[t] = 0.5f * sig[t] + 0.25f; /* a DC offset too */
            hm_rfft(&fft, sig, re, im);
            direct_dft(sig, n, ref_re, ref_im);

            /* Tolerance: bound_for(n), about u (file comment). */
            err = spectrum_rel_error(re, im, ref_re, ref_im, n);
            CHECK_MSG(err <= bound, "n=%d seed=%d rel L2 error %.3g > bound %.3g", n, seed, err,
                      bound);
            /* The real-input symmetry: bins 0 and n/2 are real. */
            CHECK_MSG(im[0] == 0.0f && im[n / 2] == 0.0f, "n=%d im[0]=%g im[n/2]=%g", n,
                      (double)im[0], (double)im[n / 2]);

            /* Parseval: sum x^2 = (|X0|^2 + |X_{n/2}|^2 + 2 sum |Xk|^2) / n.
             * Tolerance: if ||X^|| = ||X|| (1 + d) with |d| <= B, the energy
             * is off by at most (1 + B)^2 - 1 = 2B + B^2 relative; the sums
             * themselves run in double (negligible). */
            for (t = 0; t < n; ++t) energy += (double)sig[t] * (double)sig[t];
            for (k = 0; k <= n / 2; ++k) {
                double w = (k == 0 || k == n / 2) ? 1.0 : 2.0;
                spec_energy += w * ((double)re[k] * re[k] + (double)im[k] * im[k]);
            }
            spec_energy /= (double)n;
            CHECK_MSG(fabs(spec_energy - energy) <= (2.0 * bound + bound * bound) * energy,
                      "n=%d Parseval: time %.17g spectrum %.17g", n, energy, spec_energy);

            /* Round trip: forward then inverse (the same algorithm run on
             * the conjugate, scaled by the exact power of two 2/n, rounded
             * to float once), each within B, so ||x^ - x|| <= (2B + B^2)
             * ||x||. */
            hm_irfft(&fft, re, im, back);
            for (t = 0; t < n; ++t) diff += ((double)back[t] - sig[t]) * ((double)back[t] - sig[t]);
            CHECK_MSG(sqrt(diff) <= (2.0 * bound + bound * bound) * sqrt(energy),
                      "n=%d round trip rel L2 error %.3g", n, sqrt(diff / energy));

            /* The inverse ignores the imaginary parts of bins 0 and n/2
             * (they are zero for a real signal): garbage there changes
             * nothing, bit for bit. */
            memcpy(re2, re, sizeof(float) * (size_t)(n / 2 + 1));
            memcpy(im2, im, sizeof(float) * (size_t)(n / 2 + 1));
            im2[0] = 123.0f;
            im2[n / 2] = -7.5f;
            {
                static float back2[MAX_N];
                hm_irfft(&fft, re2, im2, back2);
                CHECK_MEM(back2, back, sizeof(float) * (size_t)n);
            }
        }
    }
}

/* Impulses and pure cosines, whose spectra are known in closed form. */
static void test_analytic(void) {
    int n;
    for (n = HM_MIN_FFT; n <= HM_MAX_FFT; n *= 2) {
        hm_fft fft;
        double bound = bound_for(n);
        int half = n / 2, t, k, i;
        if (!init_fft(&fft, n)) continue;

        /* A unit impulse at 0: every bin is exactly 1. Exact because every
         * butterfly multiplies a twiddle by an exact zero or adds zero to
         * one, and the split step only halves and adds exact values. */
        memset(sig, 0, sizeof(float) * (size_t)n);
        sig[0] = 1.0f;
        hm_rfft(&fft, sig, re, im);
        for (k = 0; k <= half; ++k)
            CHECK_MSG(re[k] == 1.0f && im[k] == 0.0f, "n=%d impulse at 0: X[%d] = %g%+gi", n, k,
                      (double)re[k], (double)im[k]);

        /* An impulse at t0: X[k] = exp(-2 pi i k t0 / n).
         * Tolerance: bound_for(n) (the analytic reference is exact to
         * double precision and the input is exact). */
        {
            const int t0s[3] = {1, 37, n - 1};
            for (i = 0; i < 3; ++i) {
                int t0 = t0s[i];
                double err;
                memset(sig, 0, sizeof(float) * (size_t)n);
                sig[t0] = 1.0f;
                hm_rfft(&fft, sig, re, im);
                for (k = 0; k <= half; ++k) {
                    double a = -2.0 * PI * (double)(((long)k * t0) % n) / (double)n;
                    ref_re[k] = cos(a);
                    ref_im[k] = sin(a);
                }
                err = spectrum_rel_error(re, im, ref_re, ref_im, n);
                CHECK_MSG(err <= bound, "n=%d impulse at %d: rel error %.3g > %.3g", n, t0, err,
                          bound);
            }
        }

        /* cos(2 pi k0 t / n): X[k0] = n/2 for 0 < k0 < n/2, X[0] = n for a
         * constant, X[n/2] = n for (-1)^t; every other bin 0.
         * Tolerance: the FFT's bound B plus the rounding of the input to
         * float (|dx_t| <= u |x_t|, whose spectrum has norm
         * sqrt(n) ||dx|| <= u ||X||), so B + u (1 + B) relative. */
        {
            const int k0s[6] = {0, 1, 3, n / 8, half - 1, half};
            for (i = 0; i < 6; ++i) {
                int k0 = k0s[i];
                double err, tol = bound + HM_TEST_U32 * (1.0 + bound);
                for (t = 0; t < n; ++t)
                    sig[t] = (float)cos(2.0 * PI * (double)(((long)k0 * t) % n) / (double)n);
                hm_rfft(&fft, sig, re, im);
                for (k = 0; k <= half; ++k) {
                    ref_re[k] = 0.0;
                    ref_im[k] = 0.0;
                }
                ref_re[k0] = (k0 == 0 || k0 == half) ? (double)n : (double)n / 2.0;
                err = spectrum_rel_error(re, im, ref_re, ref_im, n);
                CHECK_MSG(err <= tol, "n=%d cosine on bin %d: rel error %.3g > %.3g", n, k0, err,
                          tol);
            }
        }
    }
}

/* hm_fft_workspace_size and hm_fft_init refuse what they must. */
static void test_init_errors(void) {
    static const int bad_n[] = {0, -256, 1, 2, 128, 255, 257, 1000, 1023, 3000, 4097, 8192, 65536};
    hm_fft fft;
    size_t i, need;
    int n;

    for (i = 0; i < sizeof bad_n / sizeof bad_n[0]; ++i) {
        CHECK_MSG(hm_fft_workspace_size(bad_n[i]) == 0, "n=%d", bad_n[i]);
        CHECK_STATUS(hm_fft_init(&fft, bad_n[i], ws.bytes, WS_BYTES), HM_ERR_N_FFT);
        CHECK(fft.initialized == 0);
    }
    for (n = HM_MIN_FFT; n <= HM_MAX_FFT; n *= 2) {
        need = hm_fft_workspace_size(n);
        CHECK_MSG(need > 0 && need <= WS_BYTES, "n=%d need=%zu", n, need);
        /* One byte short: refused, and the object is left unusable. */
        CHECK_STATUS(hm_fft_init(&fft, n, ws.bytes, need - 1), HM_ERR_WORKSPACE_TOO_SMALL);
        CHECK(fft.initialized == 0);
        CHECK_STATUS(hm_fft_init(&fft, n, ws.bytes, 0), HM_ERR_WORKSPACE_TOO_SMALL);
        /* An uninitialised object's transforms write nothing. */
        re[0] = 42.0f;
        memset(sig, 0, sizeof(float) * (size_t)n);
        hm_rfft(&fft, sig, re, im);
        CHECK(re[0] == 42.0f);
        /* Exactly enough is enough, and a failed init can be redone. */
        CHECK_STATUS(hm_fft_init(&fft, n, ws.bytes, need), HM_OK);
        CHECK(fft.initialized != 0);
        CHECK_INT(fft.n, n);
    }
    CHECK_STATUS(hm_fft_init(NULL, 1024, ws.bytes, WS_BYTES), HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_fft_init(&fft, 1024, NULL, WS_BYTES), HM_ERR_NULL_ARGUMENT);
    CHECK(fft.initialized == 0);
}

/* Workspace at any byte offset: same results bit for bit, and not one byte
 * written outside [mem, mem + need). */
static void test_unaligned_workspace(void) {
    static const int offsets[] = {1, 2, 3, 7, 8, 17, 31, 32};
    static float ref_out_re[MAX_BINS], ref_out_im[MAX_BINS], ref_back[MAX_N];
    const int n = 1024;
    const unsigned char guard = 0xA5;
    size_t need = hm_fft_workspace_size(n), i, j;
    hm_fft fft;

    fill_random(sig, n, 77u);
    if (!init_fft(&fft, n)) return;
    hm_rfft(&fft, sig, ref_out_re, ref_out_im);
    hm_irfft(&fft, ref_out_re, ref_out_im, ref_back);

    for (i = 0; i < sizeof offsets / sizeof offsets[0]; ++i) {
        size_t off = (size_t)offsets[i], bad = 0;
        unsigned char *mem = ws.bytes + off;
        memset(ws.bytes, guard, need + 128u);
        CHECK_STATUS(hm_fft_init(&fft, n, mem, need), HM_OK);
        hm_rfft(&fft, sig, re, im);
        hm_irfft(&fft, re, im, back);
        CHECK_MEM(re, ref_out_re, sizeof(float) * (size_t)(n / 2 + 1));
        CHECK_MEM(im, ref_out_im, sizeof(float) * (size_t)(n / 2 + 1));
        CHECK_MEM(back, ref_back, sizeof(float) * (size_t)n);
        for (j = 0; j < off; ++j) bad += ws.bytes[j] != guard;
        for (j = off + need; j < need + 128u; ++j) bad += ws.bytes[j] != guard;
        CHECK_MSG(bad == 0, "offset %zu: %zu guard bytes overwritten", off, bad);
    }
}

int main(void) {
    test_init_errors();
    test_against_dft();
    test_analytic();
    test_unaligned_workspace();
    return hm_test_finish();
}
