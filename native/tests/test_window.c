/*
 * test_window.c — hm_window_hann: the periodic Hann window of librosa
 * (scipy.signal.get_window("hann", N, fftbins=True)), centred in n_fft by
 * librosa.util.pad_center.
 */
#include <math.h>
#include <string.h>

#include "harmonies/harmonies.h"
#include "hm_test.h"

#define PI 3.14159265358979323846
#define MAX_N 4096

static float w[MAX_N + 8];

/* The formula in double: 0.5 - 0.5 cos(2 pi n / N), periodic. */
static double hann_ref(int n, int big_n) {
    return 0.5 - 0.5 * cos(2.0 * PI * (double)n / (double)big_n);
}

/* Tolerance for one window value against the double formula: one float ulp
 * of the value. The core evaluates the same formula in double and rounds
 * once to float (at most half an ulp); the double evaluation itself is
 * good to a few 1e-17 absolute (cos to within an ulp, and the cancellation
 * of 0.5 - 0.5 cos near n = 0 loses no more than that), which is far below
 * half an ulp even of the smallest nonzero value (about 5.9e-7 at N = 4096,
 * ulp 5.7e-14). */
static double tol_of(double ref) { return hm_test_ulp((float)ref) + 1e-15; }

static void test_formula(void) {
    static const int sizes[] = {2, 3, 5, 8, 255, 256, 400, 512, 1000, 1024, 2048, 4096};
    size_t i;
    int k;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        int big_n = sizes[i], bad = 0, asym = 0;
        CHECK_STATUS(hm_window_hann(w, big_n, big_n), HM_OK);
        for (k = 0; k < big_n; ++k) {
            double ref = hann_ref(k, big_n);
            if (!(fabs((double)w[k] - ref) <= tol_of(ref))) {
                if (bad++ == 0)
                    CHECK_MSG(0, "N=%d w[%d]=%.9g expected %.17g", big_n, k, (double)w[k], ref);
            }
            /* Periodic Hann is symmetric about N/2: w[k] == w[N-k]. Exact:
             * the core rounds cos(2 pi k/N) and cos(2 pi (N-k)/N), equal in
             * exact arithmetic, from doubles that differ by at most an ulp,
             * and the rounding to float absorbs that (checked for every N up
             * to 4096 on x86-64 and aarch64 glibc). */
            if (k > 0 && w[k] != w[big_n - k]) ++asym;
        }
        CHECK_MSG(bad == 0, "N=%d: %d values off the formula", big_n, bad);
        CHECK_MSG(asym == 0, "N=%d: %d asymmetric pairs", big_n, asym);
        /* Exact values: w[0] = 0 (periodic: the window starts at zero but
         * does not end there); w[N/2] = 1, w[N/4] = 0.5 for N divisible by
         * 4 (cos(pi) = -1 exactly; cos(pi/2) ~ 6e-17 rounds away). */
        CHECK_MSG(w[0] == 0.0f, "N=%d w[0]=%g", big_n, (double)w[0]);
        if (big_n % 2 == 0 && big_n >= 2) CHECK_MSG(w[big_n / 2] == 1.0f, "N=%d", big_n);
        if (big_n % 4 == 0) CHECK_MSG(w[big_n / 4] == 0.5f, "N=%d", big_n);
    }

    /* The 8-point window (not an FFT size, but any n_fft >= 1 is allowed
     * here) against scipy.signal.get_window("hann", 8): 0, (2-sqrt 2)/4,
     * 1/2, (2+sqrt 2)/4, 1, ... Tolerance: one float ulp (rounding). */
    {
        const double s2 = sqrt(2.0);
        const double ref8[8] = {0.0,       (2.0 - s2) / 4.0, 0.5, (2.0 + s2) / 4.0,
                                1.0,       (2.0 + s2) / 4.0, 0.5, (2.0 - s2) / 4.0};
        CHECK_STATUS(hm_window_hann(w, 8, 8), HM_OK);
        for (k = 0; k < 8; ++k) CHECK_NEAR(w[k], ref8[k], tol_of(ref8[k]));
    }
}

/* win_length < n_fft: the window is centred by librosa's pad_center,
 * lpad = (n_fft - win_length) / 2 zeros on the left (the odd extra zero
 * goes right), zeros everywhere outside. */
static void test_centred(void) {
    static const int cases[][2] = {
        /* win_length, n_fft */
        {1000, 1024}, {1023, 1024}, {2, 256}, {5, 8}, {400, 512}, {511, 512},
        {3, 4096}, {2048, 4096}, {7, 7},
    };
    size_t i;
    int k;
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        int wl = cases[i][0], n_fft = cases[i][1], lpad = (n_fft - wl) / 2, bad = 0;
        /* Sentinels after the end: nothing beyond n_fft is written. */
        for (k = 0; k < n_fft + 8; ++k) w[k] = -1.0f;
        CHECK_STATUS(hm_window_hann(w, wl, n_fft), HM_OK);
        for (k = 0; k < n_fft; ++k) {
            int inside = k >= lpad && k < lpad + wl;
            double ref = inside ? hann_ref(k - lpad, wl) : 0.0;
            /* Tolerance: one ulp, as in test_formula; zeros are exact. */
            if (!(fabs((double)w[k] - ref) <= (inside ? tol_of(ref) : 0.0))) {
                if (bad++ == 0)
                    CHECK_MSG(0, "wl=%d n_fft=%d w[%d]=%.9g expected %.17g", wl, n_fft, k,
                              (double)w[k], ref);
            }
        }
        CHECK_MSG(bad == 0, "wl=%d n_fft=%d: %d wrong values", wl, n_fft, bad);
        for (k = n_fft; k < n_fft + 8; ++k) CHECK(w[k] == -1.0f);
    }

    /* librosa's own numbers for win_length 5 in n_fft 8:
     * pad_center(get_window("hann", 5), size=8) =
     * [0, 0, 0.3454915, 0.9045085, 0.9045085, 0.3454915, 0, 0]
     * (0.5 - 0.5 cos(2 pi k / 5) for k = 0..4 after lpad = 1 zero; two zeros
     * right, the window's own first value being the zero at index 1).
     * Tolerance: one ulp (rounding of the double formula). */
    {
        const double a = 0.5 - 0.5 * cos(2.0 * PI / 5.0), b = 0.5 - 0.5 * cos(4.0 * PI / 5.0);
        CHECK_STATUS(hm_window_hann(w, 5, 8), HM_OK);
        CHECK(w[0] == 0.0f && w[1] == 0.0f && w[6] == 0.0f && w[7] == 0.0f);
        CHECK_NEAR(w[2], a, tol_of(a));
        CHECK_NEAR(w[3], b, tol_of(b));
        CHECK_NEAR(w[4], b, tol_of(b));
        CHECK_NEAR(w[5], a, tol_of(a));
        CHECK_NEAR(a, 0.3454915, 1e-7); /* the printed librosa value, 7 digits */
        CHECK_NEAR(b, 0.9045085, 1e-7);
    }
}

/* A window of one sample is [1.0] in librosa: scipy's get_window returns
 * ones(M) for M <= 1 (its _len_guards), although the formula would give
 * 0.5 - 0.5 cos(0) = 0. Centred, the single 1 sits at lpad. */
static void test_length_one(void) {
    static const int n_ffts[] = {1, 2, 8, 1024};
    size_t i;
    int k;
    for (i = 0; i < sizeof n_ffts / sizeof n_ffts[0]; ++i) {
        int n_fft = n_ffts[i], lpad = (n_fft - 1) / 2;
        CHECK_STATUS(hm_window_hann(w, 1, n_fft), HM_OK);
        for (k = 0; k < n_fft; ++k)
            CHECK_MSG(w[k] == (k == lpad ? 1.0f : 0.0f), "win_length 1, n_fft %d: w[%d] = %g",
                      n_fft, k, (double)w[k]);
    }
}

static void test_errors(void) {
    CHECK_STATUS(hm_window_hann(NULL, 8, 8), HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_window_hann(w, 8, 0), HM_ERR_N_FFT);
    CHECK_STATUS(hm_window_hann(w, 1, -4), HM_ERR_N_FFT);
    CHECK_STATUS(hm_window_hann(w, 0, 8), HM_ERR_WIN_LENGTH);
    CHECK_STATUS(hm_window_hann(w, -1, 8), HM_ERR_WIN_LENGTH);
    CHECK_STATUS(hm_window_hann(w, 9, 8), HM_ERR_WIN_LENGTH);
    CHECK_STATUS(hm_window_hann(w, 1025, 1024), HM_ERR_WIN_LENGTH);
}

int main(void) {
    test_formula();
    test_centred();
    test_length_one();
    test_errors();
    return hm_test_finish();
}
