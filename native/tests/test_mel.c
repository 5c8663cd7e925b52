/*
 * test_mel.c — the mel scale (hm_hz_to_mel / hm_mel_to_hz) and the mel
 * filterbank (hm_mel_init / hm_mel_weight / hm_mel_apply) against numbers
 * produced by librosa 0.11:
 *
 *     W = librosa.filters.mel(sr=..., n_fft=..., n_mels=..., fmin=..., fmax=..., htk=...)
 *
 * (float32, norm="slaney"). The tables below were printed from W: for a few
 * bands, the first nonzero bin, the peak and the last nonzero bin (band
 * edges included), each band's row sum, and every band's nonzero support
 * (first bin, count).
 *
 * Tolerances. The core reproduces librosa's arithmetic step for step (the
 * triangle rounded to float32, then scaled in double and rounded again), and
 * on x86-64 glibc it matches these tables bit for bit. Its band edges come
 * from log/exp/log10/pow, which are not correctly rounded and differ in the
 * last bit between libm implementations (numpy's own SIMD loops, glibc on
 * x86-64 vs aarch64, FMA or not). A 1-ulp change of an edge moves a weight
 * by far less than a float32 ulp, but each of the two float32 roundings can
 * then fall the other way: hence 2 float32 ulps per weight. Supports are
 * compared exactly: in these configurations no band edge lies within 8e-4
 * bin of an FFT bin (checked in librosa when the tables were made), except
 * the outer edges of the full-range banks, 0 Hz (exact everywhere) and
 * fmax = Nyquist, which the mel round trip returns to within a double ulp
 * of the Nyquist bin (see check_support).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harmonies/harmonies.h"
#include "hm_test.h"

typedef struct weight_entry {
    int band, bin;
    double weight;
} weight_entry;

typedef struct row_sum {
    int band;
    double sum;
} row_sum;

/* librosa.filters.mel(sr=22050, n_fft=1024, n_mels=64, fmin=0.0, fmax=11025.0, htk=False) */
static const weight_entry slaney_full_weights[] = {
    {0, 1, 8.217360824e-03},
    {0, 2, 1.643472165e-02},
    {0, 4, 6.200416479e-03},
    {1, 3, 5.117153283e-03},
    {1, 5, 1.751798578e-02},
    {1, 7, 1.083262614e-03},
    {16, 39, 7.918201387e-03},
    {16, 40, 1.613556221e-02},
    {16, 42, 6.499575451e-03},
    {32, 90, 6.190776476e-04},
    {32, 95, 8.461916819e-03},
    {32, 99, 1.202554558e-03},
    {62, 438, 7.995974738e-05},
    {62, 461, 1.885467791e-03},
    {62, 485, 5.134466483e-05},
    {63, 461, 2.192395004e-05},
    {63, 486, 1.787872519e-03},
    {63, 511, 6.876432599e-05},
};
static const row_sum slaney_full_sums[] = {
    {0, 0.045270276721566916},
    {1, 0.046353540266864002},
    {16, 0.045270276255905628},
    {32, 0.046388793911319226},
    {62, 0.046432073817413766},
    {63, 0.046431984706941876},
};
static const int slaney_full_start[64] = {
    1, 3, 5, 8, 10, 12, 15, 17, 20, 22, 24, 27, 29, 31, 34, 36, 39, 41, 43, 46, 48, 51, 53, 56,
    59, 62, 66, 69, 73, 77, 81, 86, 90, 95, 100, 106, 111, 117, 124, 130, 137, 145, 153, 161,
    169, 179, 188, 198, 209, 221, 232, 245, 258, 272, 287, 302, 319, 336, 354, 373, 394, 415,
    438, 461,
};
static const int slaney_full_length[64] = {
    4, 5, 5, 4, 5, 5, 5, 5, 4, 5, 5, 4, 5, 5, 5, 5, 4, 5, 5, 5, 5, 5, 6, 6, 7, 7, 7, 8, 8, 9,
    9, 9, 10, 11, 11, 11, 13, 13, 13, 15, 16, 16, 16, 18, 19, 19, 21, 23, 23, 24, 26, 27, 29,
    30, 32, 34, 35, 37, 40, 42, 44, 46, 48, 51,
};
/* librosa.filters.mel(sr=22050, n_fft=1024, n_mels=64, fmin=0.0, fmax=11025.0, htk=True) */
static const weight_entry htk_full_weights[] = {
    {0, 1, 2.189363912e-02},
    {0, 2, 1.981016621e-02},
    {1, 2, 1.123099681e-02},
    {1, 3, 2.914199792e-02},
    {1, 4, 9.918829426e-03},
    {16, 33, 2.472244203e-03},
    {16, 35, 1.340566389e-02},
    {16, 38, 2.309769159e-03},
    {32, 98, 4.324777692e-04},
    {32, 103, 7.257501129e-03},
    {32, 109, 6.239198265e-04},
    {62, 446, 4.213013381e-05},
    {62, 467, 2.122179838e-03},
    {62, 488, 8.671962860e-05},
    {63, 467, 2.136366129e-05},
    {63, 489, 2.044133143e-03},
    {63, 511, 8.887534932e-05},
};
static const row_sum htk_full_sums[] = {
    {0, 0.041703805327415466},
    {1, 0.050291824154555798},
    {16, 0.046450386522337794},
    {32, 0.04641969982185401},
    {62, 0.046439217436272884},
    {63, 0.046439573461611872},
};
static const int htk_full_start[64] = {
    1, 2, 3, 5, 7, 8, 10, 12, 14, 16, 18, 20, 23, 25, 28, 30, 33, 36, 39, 42, 45, 49, 52, 56,
    60, 64, 68, 73, 77, 82, 87, 93, 98, 104, 110, 116, 123, 130, 137, 144, 152, 160, 169, 178,
    187, 197, 207, 217, 229, 240, 252, 265, 278, 292, 306, 321, 337, 353, 370, 388, 406, 426,
    446, 467,
};
static const int htk_full_length[64] = {
    2, 3, 4, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 11,
    11, 11, 12, 12, 13, 14, 14, 14, 15, 16, 17, 18, 18, 19, 20, 20, 22, 23, 23, 25, 26, 27, 28,
    29, 31, 32, 33, 35, 36, 38, 40, 41, 43, 45,
};
/* librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=300.0, fmax=7600.0, htk=False) */
static const weight_entry slaney_sub_weights[] = {
    {0, 10, 2.954945667e-03},
    {0, 12, 1.302065235e-02},
    {0, 13, 5.633289460e-03},
    {1, 12, 2.354509896e-03},
    {1, 14, 1.362108812e-02},
    {1, 15, 6.233724765e-03},
    {10, 31, 4.106365610e-03},
    {10, 33, 1.152296271e-02},
    {10, 34, 5.009949673e-03},
    {20, 60, 9.790275944e-04},
    {20, 64, 6.794424262e-03},
    {20, 67, 1.695726649e-03},
    {38, 199, 2.079147089e-05},
    {38, 213, 2.191307256e-03},
    {38, 227, 6.420788850e-05},
    {39, 213, 4.706446634e-05},
    {39, 227, 2.036170103e-03},
    {39, 243, 2.657234290e-05},
};
static const row_sum slaney_sub_sums[] = {
    {0, 0.031951196724548936},
    {1, 0.031951196258887649},
    {10, 0.031738622114062309},
    {20, 0.031801250297576189},
    {38, 0.031992776865081396},
    {39, 0.031992822099709883},
};
static const int slaney_sub_start[40] = {
    10, 12, 14, 16, 18, 21, 23, 25, 27, 29, 31, 33, 35, 38, 40, 43, 46, 49, 52, 56, 60, 64, 68,
    73, 78, 84, 89, 96, 102, 109, 117, 125, 133, 143, 153, 163, 174, 186, 199, 213,
};
static const int slaney_sub_length[40] = {
    4, 4, 4, 5, 5, 4, 4, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 8, 8, 8, 9, 10, 11, 11, 12, 13, 13,
    15, 16, 16, 18, 20, 20, 21, 23, 25, 27, 29, 31,
};
/* librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=300.0, fmax=6800.0, htk=True) */
static const weight_entry htk_sub_weights[] = {
    {0, 10, 4.805476870e-03},
    {0, 11, 1.681916974e-02},
    {0, 12, 1.035069581e-02},
    {1, 12, 8.581778966e-03},
    {1, 13, 1.745097339e-02},
    {1, 14, 7.084103767e-03},
    {10, 30, 4.074287717e-04},
    {10, 33, 9.895685129e-03},
    {10, 35, 1.335081644e-03},
    {20, 64, 1.500011422e-03},
    {20, 67, 6.547547877e-03},
    {20, 71, 1.505428809e-03},
    {38, 185, 8.573598461e-05},
    {38, 195, 2.953951247e-03},
    {38, 206, 2.473208224e-05},
    {39, 196, 2.253722487e-04},
    {39, 206, 2.825087635e-03},
    {39, 217, 1.485026150e-04},
};
static const row_sum htk_sub_sums[] = {
    {0, 0.03197534242644906},
    {1, 0.033116856124252081},
    {10, 0.031556158617604524},
    {20, 0.031727787922136486},
    {38, 0.032009000973630464},
    {39, 0.032023798019508831},
};
static const int htk_sub_start[40] = {
    10, 12, 13, 15, 17, 19, 21, 23, 26, 28, 30, 33, 36, 39, 42, 45, 48, 52, 56, 60, 64, 68, 72,
    77, 82, 87, 93, 99, 105, 111, 118, 125, 132, 140, 148, 157, 166, 175, 185, 196,
};
static const int htk_sub_length[40] = {
    3, 3, 4, 4, 4, 4, 5, 5, 4, 5, 6, 6, 6, 6, 6, 7, 8, 8, 8, 8, 8, 9, 10, 10, 11, 12, 12, 12,
    13, 14, 14, 15, 16, 17, 18, 18, 19, 21, 22, 22,
};

typedef struct bank_case {
    const char *name;
    int sample_rate, n_fft, n_mels;
    double fmin, fmax;
    int htk;
    const weight_entry *weights;
    size_t n_weights;
    const row_sum *sums;
    size_t n_sums;
    const int *start, *length;
    /* fmax is the Nyquist frequency, so the top edge, mel_to_hz(hz_to_mel(
     * fmax)), lands on the Nyquist bin or a double ulp either side (librosa:
     * 11025.0 for Slaney, 11024.999999999998 for HTK). Whether that bin gets
     * a weight of ~1e-17 or none depends on the last bit of libm's log/exp,
     * so the last band may have one extra, negligible weight. */
    int top_edge_on_bin;
} bank_case;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const bank_case cases[] = {
    {"slaney 22050/1024/64", 22050, 1024, 64, 0.0, 11025.0, 0, slaney_full_weights,
     COUNT(slaney_full_weights), slaney_full_sums, COUNT(slaney_full_sums), slaney_full_start,
     slaney_full_length, 1},
    {"htk 22050/1024/64", 22050, 1024, 64, 0.0, 11025.0, 1, htk_full_weights,
     COUNT(htk_full_weights), htk_full_sums, COUNT(htk_full_sums), htk_full_start,
     htk_full_length, 1},
    {"slaney 16000/512/40 300..7600 Hz", 16000, 512, 40, 300.0, 7600.0, 0, slaney_sub_weights,
     COUNT(slaney_sub_weights), slaney_sub_sums, COUNT(slaney_sub_sums), slaney_sub_start,
     slaney_sub_length, 0},
    {"htk 16000/512/40 300..6800 Hz", 16000, 512, 40, 300.0, 6800.0, 1, htk_sub_weights,
     COUNT(htk_sub_weights), htk_sub_sums, COUNT(htk_sub_sums), htk_sub_start, htk_sub_length,
     0},
};

#define WS_BYTES (64 * 1024)
static union {
    double align;
    unsigned char bytes[WS_BYTES];
} ws;

static int init_bank(hm_mel *mel, const bank_case *c) {
    size_t need =
        hm_mel_workspace_size(c->sample_rate, c->n_fft, c->n_mels, c->fmin, c->fmax, c->htk);
    CHECK_MSG(need > 0 && need <= WS_BYTES, "%s: need %zu", c->name, need);
    if (need == 0 || need > WS_BYTES) return 0;
    CHECK_STATUS(hm_mel_init(mel, c->sample_rate, c->n_fft, c->n_mels, c->fmin, c->fmax, c->htk,
                             ws.bytes, need),
                 HM_OK);
    return mel->initialized;
}

/* ------------------------------------------------------------------------ */
/* The mel scale                                                             */
/* ------------------------------------------------------------------------ */

/* Tolerance for the scale conversions: 1e-13 relative. The formulas are
 * the same as librosa's; what differs is the last bit of libm's log, exp,
 * log10 and pow (a few 1e-16), which the conversions' condition numbers
 * (at most ~15 here) cannot inflate to anything near 1e-13. */
#define SCALE_RTOL 1e-13

static void test_scale(void) {
    /* (hz, slaney mel, htk mel) from librosa.hz_to_mel. */
    static const double hz_mel[][3] = {
        {0.0, 0.0, 0.0},
        {100.0, 1.5, 150.48910240709708},
        {440.0, 6.6, 549.6386753811499},
        {500.0, 7.499999999999999, 607.44591965659},
        {999.0, 14.985, 999.3224043281768},
        {1000.0, 14.999999999999998, 999.9855371396244},
        {2000.0, 25.08188015730832, 1521.3595541555756},
        {8000.0, 45.245640471924965, 2840.023046708319},
        {11025.0, 49.91059448015905, 3176.318435512582},
        {20000.0, 58.573161101158256, 3816.913632623705},
    };
    /* (mel, slaney hz, htk hz) from librosa.mel_to_hz. */
    static const double mel_hz[][3] = {
        {0.0, 0.0, 0.0},
        {7.5, 500.00000000000006, 4.6739441438175655},
        {15.0, 1000.0000000000002, 9.379096507434358},
        {30.0, 2804.6441307389214, 18.883860802434093},
        {45.0, 7866.028700088277, 28.51597667115262},
        {1000.0, 2.574185215316336e+32, 1000.021816457287},
        {2000.0, 1.8584776668744648e+62, 3428.677394901048},
    };
    size_t i;
    double f;

    for (i = 0; i < COUNT(hz_mel); ++i) {
        CHECK_REL(hm_hz_to_mel(hz_mel[i][0], 0), hz_mel[i][1], SCALE_RTOL);
        CHECK_REL(hm_hz_to_mel(hz_mel[i][0], 1), hz_mel[i][2], SCALE_RTOL);
    }
    for (i = 0; i < COUNT(mel_hz); ++i) {
        CHECK_REL(hm_mel_to_hz(mel_hz[i][0], 0), mel_hz[i][1], SCALE_RTOL);
        CHECK_REL(hm_mel_to_hz(mel_hz[i][0], 1), mel_hz[i][2], SCALE_RTOL);
    }

    /* The defining values: Slaney is linear below 1 kHz at 200/3 Hz per mel
     * (1000 Hz = 15 mel, 500 Hz = 7.5 mel); HTK is 2595 log10(1 + f/700).
     * Same tolerance (200/3 itself is rounded in double). */
    CHECK_REL(hm_hz_to_mel(1000.0, 0), 15.0, SCALE_RTOL);
    CHECK_REL(hm_hz_to_mel(500.0, 0), 7.5, SCALE_RTOL);
    CHECK(hm_hz_to_mel(0.0, 0) == 0.0 && hm_hz_to_mel(0.0, 1) == 0.0);
    CHECK_REL(hm_hz_to_mel(1000.0, 1), 2595.0 * log10(1.0 + 1000.0 / 700.0), SCALE_RTOL);
    CHECK_NEAR(hm_hz_to_mel(1000.0, 1), 999.98553713962, 1e-9); /* 14 digits quoted */
    /* Slaney's scale is continuous at the 1 kHz knee: 1e-9 below it the
     * linear branch gives the log branch's value to within the slope
     * (0.015 mel/Hz) times 1e-9 Hz. */
    CHECK_NEAR(hm_hz_to_mel(1000.0 - 1e-9, 0), hm_hz_to_mel(1000.0, 0), 1e-10);

    /* Round trips over the audible range, both scales. Tolerance:
     * SCALE_RTOL relative, plus 1e-12 Hz absolute at 0 Hz. */
    for (f = 0.0; f <= 24000.0; f += 7.25) {
        CHECK_NEAR(hm_mel_to_hz(hm_hz_to_mel(f, 0), 0), f, SCALE_RTOL * f + 1e-12);
        CHECK_NEAR(hm_mel_to_hz(hm_hz_to_mel(f, 1), 1), f, SCALE_RTOL * f + 1e-12);
    }
    /* Monotone increasing: the bank relies on ordered edges. */
    for (f = 1.0; f <= 24000.0; f += 13.0) {
        CHECK_MSG(hm_hz_to_mel(f, 0) > hm_hz_to_mel(f - 1.0, 0), "slaney at %g Hz", f);
        CHECK_MSG(hm_hz_to_mel(f, 1) > hm_hz_to_mel(f - 1.0, 1), "htk at %g Hz", f);
    }
}

/* ------------------------------------------------------------------------ */
/* The filterbank against librosa                                           */
/* ------------------------------------------------------------------------ */

/* 2 float32 ulps of the reference (file comment). */
static double weight_tol(double ref) { return 2.0 * hm_test_ulp((float)ref); }

static void check_support(const hm_mel *mel, const bank_case *c) {
    int m;
    for (m = 0; m < c->n_mels; ++m) {
        int start = mel->start[m], length = mel->length[m];
        if (c->top_edge_on_bin && m == c->n_mels - 1 && length == c->length[m] + 1) {
            /* The one extra bin allowed (bank_case.top_edge_on_bin): the
             * Nyquist bin, with a weight that is numerically nothing. */
            CHECK_INT(start + length - 1, c->n_fft / 2);
            CHECK_MSG(hm_mel_weight(mel, m, c->n_fft / 2) < 1e-12f, "%s: %g", c->name,
                      (double)hm_mel_weight(mel, m, c->n_fft / 2));
            length -= 1;
        }
        CHECK_MSG(start == c->start[m] && length == c->length[m],
                  "%s band %d: support [%d, +%d), librosa [%d, +%d)", c->name, m, start, length,
                  c->start[m], c->length[m]);
    }
}

static void test_bank_vs_librosa(void) {
    size_t i, j;
    for (i = 0; i < COUNT(cases); ++i) {
        const bank_case *c = &cases[i];
        hm_mel mel;
        if (!init_bank(&mel, c)) continue;
        CHECK_INT(mel.n_mels, c->n_mels);
        CHECK_INT(mel.n_bins, c->n_fft / 2 + 1);
        check_support(&mel, c);
        for (j = 0; j < c->n_weights; ++j) {
            const weight_entry *e = &c->weights[j];
            double got = hm_mel_weight(&mel, e->band, e->bin);
            CHECK_MSG(fabs(got - e->weight) <= weight_tol(e->weight),
                      "%s W[%d][%d] = %.9e, librosa %.9e", c->name, e->band, e->bin, got,
                      e->weight);
        }
        /* Row sums: each weight within 2 ulps (2^-22 relative), so their
         * positive sum too; the sum itself runs in double (negligible). */
        for (j = 0; j < c->n_sums; ++j) {
            const row_sum *s = &c->sums[j];
            double sum = 0.0;
            int k;
            for (k = 0; k < mel.n_bins; ++k) sum += (double)hm_mel_weight(&mel, s->band, k);
            CHECK_MSG(fabs(sum - s->sum) <= 2.0 * (double)FLT_EPSILON * s->sum,
                      "%s row %d sum %.17g, librosa %.17g", c->name, s->band, sum, s->sum);
        }
    }
}

/* Structural properties, for every case: each band's nonzero weights form
 * one contiguous run of positive values, hm_mel_weight is 0 outside it and
 * for out-of-range indices, and consecutive bands overlap as triangles on
 * a common grid do (band m+1 starts no earlier than band m). */
static void test_bank_structure(void) {
    size_t i;
    for (i = 0; i < COUNT(cases); ++i) {
        const bank_case *c = &cases[i];
        hm_mel mel;
        int m, k;
        if (!init_bank(&mel, c)) continue;
        for (m = 0; m < mel.n_mels; ++m) {
            int first = -1, last = -1, nonzero = 0, outside = 0, nonpositive = 0;
            for (k = 0; k < mel.n_bins; ++k) {
                float w = hm_mel_weight(&mel, m, k);
                int in = k >= mel.start[m] && k < mel.start[m] + mel.length[m];
                if (w != 0.0f) {
                    if (first < 0) first = k;
                    last = k;
                    ++nonzero;
                }
                if (!in && w != 0.0f) ++outside;
                if (in && !(w > 0.0f)) ++nonpositive;
            }
            CHECK_MSG(nonzero > 0, "%s band %d empty", c->name, m);
            CHECK_MSG(last - first + 1 == nonzero, "%s band %d: not contiguous", c->name, m);
            CHECK_MSG(outside == 0 && nonpositive == 0, "%s band %d: %d outside, %d <= 0 inside",
                      c->name, m, outside, nonpositive);
            CHECK(hm_mel_weight(&mel, m, -1) == 0.0f);
            CHECK(hm_mel_weight(&mel, m, mel.n_bins) == 0.0f);
            if (m > 0) CHECK_MSG(mel.start[m] >= mel.start[m - 1], "%s band %d", c->name, m);
        }
        CHECK(hm_mel_weight(&mel, -1, 10) == 0.0f);
        CHECK(hm_mel_weight(&mel, mel.n_mels, 10) == 0.0f);
        CHECK(hm_mel_weight(NULL, 0, 10) == 0.0f);
    }
}

/* hm_mel_apply is the dense product W @ power. */
static void test_apply(void) {
    static float power[HM_MAX_FFT / 2 + 1], out[HM_MAX_MELS];
    size_t i;
    for (i = 0; i < COUNT(cases); ++i) {
        const bank_case *c = &cases[i];
        hm_mel mel;
        hm_test_rng rng;
        int m, k, bad = 0;
        if (!init_bank(&mel, c)) continue;

        /* A one-hot spectrum reads the bank's column exactly: w * 1 and
         * sums with exact zeros involve no rounding. */
        for (k = 0; k < mel.n_bins; k += 7) {
            memset(power, 0, sizeof(float) * (size_t)mel.n_bins);
            power[k] = 1.0f;
            hm_mel_apply(&mel, power, out);
            for (m = 0; m < mel.n_mels; ++m)
                if (out[m] != hm_mel_weight(&mel, m, k)) ++bad;
        }
        CHECK_MSG(bad == 0, "%s: %d one-hot outputs differ from the weights", c->name, bad);

        /* Random powers spanning 12 decades, like real spectra.
         * Tolerance: a float sum of L products (L = band length), in any
         * order, is within gamma_L ~ L u of the exact sum of the positive
         * terms (Higham, Eq. 3.5), plus u for each product: (L + 2) u. The
         * reference runs in double (negligible). */
        rng.state = 12345u + i;
        for (k = 0; k < mel.n_bins; ++k) {
            float e = 12.0f * (0.5f + 0.5f * hm_test_rng_uniform(&rng)) - 10.0f;
            power[k] = powf(10.0f, e);
        }
        hm_mel_apply(&mel, power, out);
        for (m = 0; m < mel.n_mels; ++m) {
            double ref = 0.0;
            for (k = 0; k < mel.n_bins; ++k)
                ref += (double)hm_mel_weight(&mel, m, k) * (double)power[k];
            CHECK_MSG(fabs((double)out[m] - ref) <= (mel.length[m] + 2) * HM_TEST_U32 * ref,
                      "%s band %d: %.9g vs dense %.17g", c->name, m, (double)out[m], ref);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Empty filters and argument errors                                         */
/* ------------------------------------------------------------------------ */

static void test_empty_filters(void) {
    /* (sr, n_fft, n_mels, htk, expected): librosa warns "Empty filters
     * detected in mel frequency basis" exactly for the EMPTY cases (checked
     * with librosa 0.11 over n_mels 1..299 for these geometries: the first
     * n_mels with an empty band is 50 and 216 respectively; every interior
     * band edge is at least 5e-6 of the band range from the nearest FFT bin,
     * so libm's last bit cannot move the boundary). fmin 0, fmax sr/2. The
     * lowest band, whose lower edge is 0 Hz, may be empty without counting:
     * librosa exempts it too. */
    static const struct {
        int sr, n_fft, n_mels, htk;
        hm_status want;
    } rows[] = {
        {44100, 256, 128, 0, HM_ERR_EMPTY_MEL_FILTER},
        {44100, 256, 49, 0, HM_OK},
        {44100, 256, 50, 0, HM_ERR_EMPTY_MEL_FILTER},
        {22050, 1024, 215, 1, HM_OK},
        {22050, 1024, 216, 1, HM_ERR_EMPTY_MEL_FILTER},
        {22050, 1024, 299, 0, HM_OK},
        {22050, 256, 79, 0, HM_OK},
        {22050, 256, 80, 0, HM_ERR_EMPTY_MEL_FILTER},
    };
    size_t i;
    for (i = 0; i < COUNT(rows); ++i) {
        hm_mel mel;
        double fmax = 0.5 * rows[i].sr;
        size_t need = hm_mel_workspace_size(rows[i].sr, rows[i].n_fft, rows[i].n_mels, 0.0, fmax,
                                            rows[i].htk);
        /* The geometry is valid, so a size is given... */
        CHECK_MSG(need > 0 && need <= WS_BYTES, "row %zu need %zu", i, need);
        if (need == 0 || need > WS_BYTES) continue;
        /* ...and init, with enough memory, accepts or refuses the bank. */
        CHECK_STATUS(hm_mel_init(&mel, rows[i].sr, rows[i].n_fft, rows[i].n_mels, 0.0, fmax,
                                 rows[i].htk, ws.bytes, need),
                     rows[i].want);
        CHECK_INT(mel.initialized, rows[i].want == HM_OK);
    }
}

static void test_errors(void) {
    const double nan = strtod("nan", NULL);
    hm_mel mel;
    size_t need = hm_mel_workspace_size(22050, 1024, 64, 0.0, 11025.0, 0);
    CHECK(need > 0 && need <= WS_BYTES);

#define MEL_ERR(sr, n_fft, n_mels, fmin, fmax, want)                                        \
    do {                                                                                    \
        CHECK_STATUS(hm_mel_init(&mel, sr, n_fft, n_mels, fmin, fmax, 0, ws.bytes, WS_BYTES), \
                     want);                                                                 \
        CHECK(mel.initialized == 0);                                                        \
        CHECK(hm_mel_workspace_size(sr, n_fft, n_mels, fmin, fmax, 0) == 0);                \
    } while (0)

    MEL_ERR(999, 1024, 64, 0.0, 400.0, HM_ERR_SAMPLE_RATE);
    MEL_ERR(768001, 1024, 64, 0.0, 8000.0, HM_ERR_SAMPLE_RATE);
    MEL_ERR(22050, 1000, 64, 0.0, 11025.0, HM_ERR_N_FFT);
    MEL_ERR(22050, 128, 64, 0.0, 11025.0, HM_ERR_N_FFT);
    MEL_ERR(22050, 8192, 64, 0.0, 11025.0, HM_ERR_N_FFT);
    MEL_ERR(22050, 1024, 0, 0.0, 11025.0, HM_ERR_N_MELS);
    MEL_ERR(22050, 1024, HM_MAX_MELS + 1, 0.0, 11025.0, HM_ERR_N_MELS);
    MEL_ERR(22050, 1024, 64, 0.0, 11025.5, HM_ERR_FMAX);
    MEL_ERR(22050, 1024, 64, 0.0, 0.0, HM_ERR_FMAX);
    MEL_ERR(22050, 1024, 64, 0.0, nan, HM_ERR_FMAX);
    MEL_ERR(22050, 1024, 64, 0.0, HUGE_VAL, HM_ERR_FMAX);
    MEL_ERR(22050, 1024, 64, -1.0, 11025.0, HM_ERR_FMIN);
    MEL_ERR(22050, 1024, 64, 5000.0, 5000.0, HM_ERR_FMIN);
    MEL_ERR(22050, 1024, 64, 6000.0, 5000.0, HM_ERR_FMIN);
    MEL_ERR(22050, 1024, 64, nan, 5000.0, HM_ERR_FMIN);
#undef MEL_ERR

    CHECK_STATUS(hm_mel_init(&mel, 22050, 1024, 64, 0.0, 11025.0, 0, ws.bytes, need - 1),
                 HM_ERR_WORKSPACE_TOO_SMALL);
    CHECK(mel.initialized == 0);
    CHECK_STATUS(hm_mel_init(NULL, 22050, 1024, 64, 0.0, 11025.0, 0, ws.bytes, need),
                 HM_ERR_NULL_ARGUMENT);
    /* A failed init can be redone; then an init with no memory fails and
     * leaves the object marked uninitialised (the header's promise). */
    CHECK_STATUS(hm_mel_init(&mel, 22050, 1024, 64, 0.0, 11025.0, 0, ws.bytes + 3, need), HM_OK);
    CHECK(mel.initialized != 0);
    CHECK_STATUS(hm_mel_init(&mel, 22050, 1024, 64, 0.0, 11025.0, 0, NULL, need),
                 HM_ERR_NULL_ARGUMENT);
    CHECK(mel.initialized == 0);
}

int main(void) {
    test_scale();
    test_bank_vs_librosa();
    test_bank_structure();
    test_apply();
    test_empty_filters();
    test_errors();
    return hm_test_finish();
}
