/*
 * test_extractor.c — the streaming extractor: streaming equals batch bit
 * for bit whatever the block sizes, librosa's frame count and framing,
 * reset, partial pushes, flush, 16-bit input, short signals, feature
 * subsets and silence.
 *
 * "Batch" here is the whole signal pushed in one call, then flush: the
 * Python extract() does exactly that. Every other block pattern must give
 * the same rows, compared with memcmp (the header promises bit-identical
 * rows, and the same code computes every frame from the same samples).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harmonies/harmonies.h"
#include "hm_test.h"

#define PI 3.14159265358979323846
#define N_SIGNAL 20000

static float chirp[N_SIGNAL];

/* A deterministic test signal: a chirp from 100 Hz to 8 kHz (at 22050 Hz)
 * plus a little noise from the fixed LCG, a stretch of exact zeros (frames
 * that are partly silent) and a few samples at full scale. */
static void make_chirp(float *x, size_t n) {
    hm_test_rng rng;
    size_t t;
    const double sr = 22050.0, f0 = 100.0, f1 = 8000.0;
    const double rate = (f1 - f0) / ((double)n / sr);
    rng.state = 2024u;
    for (t = 0; t < n; ++t) {
        double time = (double)t / sr;
        double phase = 2.0 * PI * (f0 * time + 0.5 * rate * time * time);
        x[t] = (float)(0.5 * sin(phase)) + 0.05f * hm_test_rng_uniform(&rng);
    }
    for (t = 6000; t < 6000 + 1500 && t < n; ++t) x[t] = 0.0f;
    if (n > 12003) {
        x[12000] = 1.0f;
        x[12001] = -1.0f;
        x[12002] = 1.0f;
    }
}

/* An initialised extractor with its own (malloc'd) workspace. */
typedef struct fixture {
    hm_extractor ex;
    void *mem;
    size_t mem_len;
    int row;
} fixture;

static int fixture_init(fixture *f, const hm_config *cfg) {
    hm_status st;
    f->mem = NULL;
    st = hm_extractor_workspace_size(cfg, &f->mem_len);
    CHECK_STATUS(st, HM_OK);
    if (st != HM_OK) return 0;
    f->mem = malloc(f->mem_len);
    if (f->mem == NULL) return 0;
    st = hm_extractor_init(&f->ex, cfg, f->mem, f->mem_len);
    CHECK_STATUS(st, HM_OK);
    f->row = hm_extractor_row_size(&f->ex);
    return st == HM_OK;
}

static void fixture_free(fixture *f) {
    free(f->mem);
    f->mem = NULL;
}

/* Block patterns: a positive size is used throughout; PATTERN cycles
 * through irregular sizes. */
#define PATTERN ((size_t)0)
static const size_t pattern_sizes[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377,
                                       511, 512, 513, 1023, 1024, 1025, 7};

/* Push x[0..n) in blocks (16-bit samples instead when x16 is not NULL),
 * then flush; returns the number of rows written to out (capacity cap).
 * Checks the streaming contract on the way: every push takes all its
 * samples when given room, writes hm_extractor_rows_for() rows, and flush
 * writes hm_extractor_flush_rows() rows. */
static size_t stream(hm_extractor *ex, const float *x, const int16_t *x16, size_t n, size_t block,
                     float *out, size_t cap) {
    size_t pos = 0, total = 0, turn = 0, rows = 0, expect;
    size_t row = (size_t)hm_extractor_row_size(ex);
    hm_status st;
    while (pos < n) {
        size_t size = block == PATTERN
                          ? pattern_sizes[turn++ % (sizeof pattern_sizes / sizeof pattern_sizes[0])]
                          : block;
        size_t chunk = size < n - pos ? size : n - pos, consumed = 0;
        expect = hm_extractor_rows_for(ex, chunk);
        if (total + expect > cap) {
            CHECK_MSG(0, "output capacity %zu exceeded", cap);
            return total;
        }
        if (x16 != NULL)
            st = hm_extractor_push_s16(ex, x16 + pos, chunk, out + total * row, cap - total,
                                       &consumed, &rows);
        else
            st = hm_extractor_push(ex, x + pos, chunk, out + total * row, cap - total, &consumed,
                                   &rows);
        CHECK_STATUS(st, HM_OK);
        if (st != HM_OK || consumed != chunk || rows != expect) {
            CHECK_MSG(0, "block %zu at %zu: consumed %zu of %zu, rows %zu (rows_for said %zu)",
                      block, pos, consumed, chunk, rows, expect);
            return total;
        }
        pos += consumed;
        total += rows;
    }
    expect = hm_extractor_flush_rows(ex);
    if (total + expect > cap) {
        CHECK_MSG(0, "output capacity %zu exceeded at flush", cap);
        return total;
    }
    st = hm_extractor_flush(ex, out + total * row, cap - total, &rows);
    CHECK_STATUS(st, HM_OK);
    CHECK_MSG(rows == expect, "flush wrote %zu rows, flush_rows said %zu", rows, expect);
    /* flush resets: nothing pending afterwards. */
    CHECK_INT(hm_extractor_flush_rows(ex), 0);
    return total + rows;
}

/* Configurations exercised by the streaming tests. */
static hm_config config_default(void) {
    hm_config c;
    hm_config_default(&c);
    return c;
}

static hm_config config_uncentred(void) {
    hm_config c;
    hm_config_default(&c);
    c.n_fft = 512;
    c.win_length = 400;
    c.hop_length = 200;
    c.center = 0;
    c.n_mels = 40;
    c.fmin = 50.0;
    c.fmax = 8000.0;
    c.htk = 1;
    c.n_mfcc = 13;
    return c;
}

static hm_config config_hop_is_n_fft(void) {
    hm_config c;
    hm_config_default(&c);
    c.sample_rate = 16000;
    c.n_fft = 256;
    c.win_length = 256;
    c.hop_length = 256;
    c.n_mels = 32;
    c.fmax = 8000.0;
    return c;
}

static hm_config config_large(void) {
    hm_config c;
    hm_config_default(&c);
    c.sample_rate = 44100;
    c.n_fft = 4096;
    c.win_length = 3000;
    c.hop_length = 1000;
    c.n_mels = 128;
    c.fmax = 20000.0;
    c.n_mfcc = 40;
    return c;
}

/* ------------------------------------------------------------------------ */

static void test_streaming_equals_batch(void) {
    static const size_t blocks[] = {1, 17, 509, 4096, N_SIGNAL + 1000, PATTERN};
    hm_config cfgs[4];
    size_t i, b;
    cfgs[0] = config_default();
    cfgs[1] = config_uncentred();
    cfgs[2] = config_hop_is_n_fft();
    cfgs[3] = config_large();
    for (i = 0; i < 4; ++i) {
        fixture f;
        size_t want = hm_frame_count(&cfgs[i], N_SIGNAL), cap = want + 4, n_ref, n_rows;
        float *ref, *got;
        if (!fixture_init(&f, &cfgs[i])) {
            fixture_free(&f);
            continue;
        }
        ref = (float *)malloc(cap * (size_t)f.row * sizeof(float));
        got = (float *)malloc(cap * (size_t)f.row * sizeof(float));
        if (ref == NULL || got == NULL) return;
        /* librosa's count: centred 1 + n/hop, else 1 + (n - n_fft)/hop. */
        CHECK_INT(want, cfgs[i].center
                            ? 1 + N_SIGNAL / cfgs[i].hop_length
                            : 1 + (N_SIGNAL - cfgs[i].n_fft) / cfgs[i].hop_length);
        n_ref = stream(&f.ex, chirp, NULL, N_SIGNAL, N_SIGNAL, ref, cap);
        CHECK_MSG(n_ref == want, "config %zu: batch gave %zu rows, expected %zu", i, n_ref, want);
        for (b = 0; b < sizeof blocks / sizeof blocks[0]; ++b) {
            memset(got, 0xFF, cap * (size_t)f.row * sizeof(float));
            n_rows = stream(&f.ex, chirp, NULL, N_SIGNAL, blocks[b], got, cap);
            CHECK_MSG(n_rows == n_ref, "config %zu block %zu: %zu rows vs %zu", i, blocks[b],
                      n_rows, n_ref);
            if (n_rows == n_ref) CHECK_MEM(got, ref, n_ref * (size_t)f.row * sizeof(float));
        }
        /* Every value finite, for this signal with its silent stretch and
         * full-scale samples. */
        {
            size_t k, bad = 0;
            for (k = 0; k < n_ref * (size_t)f.row; ++k) bad += !isfinite(ref[k]);
            CHECK_MSG(bad == 0, "config %zu: %zu non-finite values", i, bad);
        }
        free(ref);
        free(got);
        fixture_free(&f);
    }
}

/* hop 1: every sample starts a frame (a short signal keeps it fast). */
static void test_hop_one(void) {
    static const size_t blocks[] = {1, 17, 509, PATTERN};
    hm_config c = config_hop_is_n_fft();
    const size_t n = 1500;
    fixture f;
    size_t want, cap, n_ref, b;
    float *ref, *got;
    c.hop_length = 1;
    c.features = HM_FEATURES_FRAME_VECTOR;
    want = hm_frame_count(&c, n);
    CHECK_INT(want, n + 1);
    cap = want + 4;
    if (!fixture_init(&f, &c)) {
        fixture_free(&f);
        return;
    }
    ref = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    got = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    if (ref == NULL || got == NULL) return;
    n_ref = stream(&f.ex, chirp, NULL, n, n, ref, cap);
    CHECK_INT(n_ref, want);
    for (b = 0; b < sizeof blocks / sizeof blocks[0]; ++b) {
        size_t n_rows = stream(&f.ex, chirp, NULL, n, blocks[b], got, cap);
        CHECK_INT(n_rows, n_ref);
        if (n_rows == n_ref) CHECK_MEM(got, ref, n_ref * (size_t)f.row * sizeof(float));
    }
    free(ref);
    free(got);
    fixture_free(&f);
}

/* The framing is librosa's: frame t covers samples [t*hop - pad, t*hop -
 * pad + n_fft) of the signal zero-padded by pad = n_fft/2 on both sides
 * (pad = 0 uncentred). Recomputed here from scratch, frame by frame: the
 * time-domain features, and the mel power spectrum from a direct DFT in
 * double of the frame times the Hann formula, through the filterbank's
 * weights (hm_mel_weight, checked against librosa in test_mel.c). */

/* Higham's relative L2 error bound for a radix-2 FFT of n points in double
 * (see test_fft.c): L = log2(n) stages, twiddles good to sqrt(2) u_d. */
static double fft_bound_double(int n) {
    const double ud = DBL_EPSILON / 2.0;
    double eta = sqrt(2.0) * ud + 4.0 * ud / (1.0 - 4.0 * ud) * (sqrt(2.0) + sqrt(2.0) * ud);
    double l_eta = log2((double)n) * eta;
    return l_eta / (1.0 - l_eta);
}

static void test_framing(void) {
    static double xw[4096], ct[4096], st[4096], mag[2049], power[2049];
    static float frame[4096];
    const double ud = DBL_EPSILON / 2.0;
    hm_config cfgs[2];
    size_t i;
    cfgs[0] = config_default();
    cfgs[1] = config_uncentred();
    for (i = 0; i < 2; ++i) {
        const hm_config *c = &cfgs[i];
        const int n_fft = c->n_fft, n_bins = n_fft / 2 + 1, pad = c->center ? n_fft / 2 : 0;
        const int lpad = (n_fft - c->win_length) / 2;
        fixture f;
        hm_mel mel;
        size_t mel_len = hm_mel_workspace_size(c->sample_rate, n_fft, c->n_mels, c->fmin, c->fmax,
                                               c->htk);
        void *mel_mem = malloc(mel_len);
        size_t cap = hm_frame_count(c, N_SIGNAL) + 2, n_rows, t;
        float *rows;
        int k, m, zcr_bad = 0, rms_bad = 0, mel_bad = 0;
        if (mel_mem == NULL) return;
        if (!fixture_init(&f, c)) {
            fixture_free(&f);
            free(mel_mem);
            continue;
        }
        CHECK_STATUS(hm_mel_init(&mel, c->sample_rate, n_fft, c->n_mels, c->fmin, c->fmax, c->htk,
                                 mel_mem, mel_len),
                     HM_OK);
        for (k = 0; k < n_fft; ++k) {
            ct[k] = cos(2.0 * PI * (double)k / (double)n_fft);
            st[k] = sin(2.0 * PI * (double)k / (double)n_fft);
        }
        rows = (float *)malloc(cap * (size_t)f.row * sizeof(float));
        if (rows == NULL) return;
        n_rows = stream(&f.ex, chirp, NULL, N_SIGNAL, 509, rows, cap);
        CHECK_INT(n_rows, hm_frame_count(c, N_SIGNAL));

        for (t = 0; t < n_rows; ++t) {
            const float *row = rows + t * (size_t)f.row;
            long start = (long)t * c->hop_length - pad;
            double energy = 0.0, abs_sum = 0.0, xw_energy = 0.0, err_bin;
            int crossings = 0, prev_neg = -1;
            for (k = 0; k < n_fft; ++k) {
                long s = start + k;
                int real = s >= 0 && s < N_SIGNAL;
                frame[k] = real ? chirp[s] : 0.0f;
                energy += (double)frame[k] * frame[k];
                /* librosa's zero crossings: only among real samples (its
                 * zcr pads by repeating the edge sample, which adds none),
                 * values with |x| <= 1e-10 count as positive zeros. */
                if (real) {
                    int neg = frame[k] < -1e-10f;
                    if (prev_neg >= 0 && neg != prev_neg) ++crossings;
                    prev_neg = neg;
                }
            }
            /* zcr = crossings / frame_length: the same two integers
             * divided in float, so exact. */
            if (row[f.ex.offset[HM_FEATURE_ZCR]] != (float)crossings / (float)n_fft) ++zcr_bad;
            /* rms = sqrt(mean(frame^2)), zero padding included. Tolerance:
             * the core sums squares in float over 8 lanes per block of
             * n_fft/10, the reference in double; a float sum of m positive
             * terms is within (m - 1) u, here m <= n_fft/80 + 8 plus the
             * 3-level lane tree, and the square root halves the relative
             * error: (n_fft/80 + 12) u covers it. */
            {
                double ref = sqrt(energy / n_fft), got = row[f.ex.offset[HM_FEATURE_RMS]];
                if (!(fabs(got - ref) <= (n_fft / 80 + 12) * HM_TEST_U32 * ref + 1e-30)) {
                    if (rms_bad++ == 0)
                        CHECK_MSG(0, "config %zu frame %zu rms %.9g vs %.9g", i, t, got, ref);
                }
            }

            /* mel[m] = sum_k W[m][k] |X[k]|^2, X the DFT of the windowed
             * frame (periodic Hann of win_length centred by lpad). */
            for (k = 0; k < n_fft; ++k) {
                int in = k >= lpad && k < lpad + c->win_length;
                double w = in ? 0.5 - 0.5 * cos(2.0 * PI * (double)(k - lpad) /
                                                (double)c->win_length)
                              : 0.0;
                xw[k] = (double)frame[k] * w;
                abs_sum += fabs(xw[k]);
                xw_energy += xw[k] * xw[k];
            }
            for (k = 0; k < n_bins; ++k) {
                double sr = 0.0, si = 0.0;
                unsigned idx = 0, mask = (unsigned)n_fft - 1u;
                int j;
                for (j = 0; j < n_fft; ++j) {
                    sr += xw[j] * ct[idx];
                    si -= xw[j] * st[idx];
                    idx = (idx + (unsigned)k) & mask;
                }
                power[k] = sr * sr + si * si;
                mag[k] = sqrt(power[k]);
            }
            /* Tolerance, per band. The core computes |X[k]|^2 in double and
             * rounds it to float (u relative), then sums L = band-length
             * weighted terms in float ((L + 1) u relative to the positive
             * sum): (L + 2) u * mel. On top, an absolute error per bin of
             * |X|: E = the reference DFT's gamma_{n+1} ||xw||_1 (a sum of
             * n products with table twiddles), plus the core's double FFT,
             * Higham's bound times ||X||_2 = sqrt(n ||xw||^2), plus 2 u_d
             * ||xw||_1 for the windowing in double; each power bin is then
             * off by at most 2 |X| E + E^2 before the weights. */
            err_bin = (double)(n_fft + 1) * ud / (1.0 - (double)(n_fft + 1) * ud) * abs_sum +
                      fft_bound_double(n_fft) * sqrt((double)n_fft * xw_energy) +
                      2.0 * ud * abs_sum;
            for (m = 0; m < c->n_mels; ++m) {
                double ref = 0.0, slack = 0.0, got = row[f.ex.offset[HM_FEATURE_MEL] + m];
                for (k = mel.start[m]; k < mel.start[m] + mel.length[m]; ++k) {
                    double w = (double)hm_mel_weight(&mel, m, k);
                    ref += w * power[k];
                    slack += w * (2.0 * mag[k] * err_bin + err_bin * err_bin);
                }
                if (!(fabs(got - ref) <= (mel.length[m] + 2) * HM_TEST_U32 * ref + slack)) {
                    if (mel_bad++ == 0)
                        CHECK_MSG(0, "config %zu frame %zu mel[%d] %.9g vs %.17g (tol %.3g)", i,
                                  t, m, got, ref,
                                  (mel.length[m] + 2) * HM_TEST_U32 * ref + slack);
                }
            }
        }
        CHECK_MSG(zcr_bad == 0 && rms_bad == 0 && mel_bad == 0,
                  "config %zu: %d zcr, %d rms, %d mel values differ", i, zcr_bad, rms_bad,
                  mel_bad);
        free(rows);
        free(mel_mem);
        fixture_free(&f);
    }
}

/* log_mel and the dB parameters: log_mel = 10 log10(max(mel, amin)) -
 * 10 log10(max(ref, amin)), against the mel values of the same rows. */
static void test_db(void) {
    hm_config c = config_default();
    fixture f1, f2;
    size_t cap = hm_frame_count(&c, N_SIGNAL) + 2, n1, n2, t;
    float *r1, *r2;
    int k, bad = 0, shift_bad = 0;
    const double shift = 10.0 * log10(2.0);
    if (!fixture_init(&f1, &c)) {
        fixture_free(&f1);
        return;
    }
    c.ref = 2.0;
    if (!fixture_init(&f2, &c)) {
        fixture_free(&f1);
        fixture_free(&f2);
        return;
    }
    r1 = (float *)malloc(cap * (size_t)f1.row * sizeof(float));
    r2 = (float *)malloc(cap * (size_t)f2.row * sizeof(float));
    if (r1 == NULL || r2 == NULL) return;
    n1 = stream(&f1.ex, chirp, NULL, N_SIGNAL, 4096, r1, cap);
    n2 = stream(&f2.ex, chirp, NULL, N_SIGNAL, 4096, r2, cap);
    CHECK_INT(n1, n2);
    for (t = 0; t < n1 && t < n2; ++t) {
        const float *a = r1 + t * (size_t)f1.row, *b = r2 + t * (size_t)f2.row;
        for (k = 0; k < c.n_mels; ++k) {
            double m = a[f1.ex.offset[HM_FEATURE_MEL] + k];
            double db = a[f1.ex.offset[HM_FEATURE_LOG_MEL] + k];
            double want = 10.0 * log10(m > 1e-10 ? m : 1e-10);
            /* Tolerance 1e-4 dB: the core takes log10f of a float (a few
             * float ulps of values up to ~100 dB, ulp 7.6e-6) and clamps at
             * amin rounded to float. */
            if (!(fabs(db - want) <= 1e-4)) ++bad;
            /* ref = 2 lowers every value by 10 log10(2) dB; same tolerance
             * (two such computations). */
            if (!(fabs((double)b[f2.ex.offset[HM_FEATURE_LOG_MEL] + k] - (db - shift)) <= 2e-4))
                ++shift_bad;
        }
    }
    CHECK_MSG(bad == 0, "%d log_mel values off 10 log10(max(mel, amin))", bad);
    CHECK_MSG(shift_bad == 0, "%d log_mel values not shifted by 10 log10(ref)", shift_bad);
    free(r1);
    free(r2);
    fixture_free(&f1);
    fixture_free(&f2);
}

/* Reset: after flush (which resets), after hm_extractor_reset mid-signal,
 * and after a second init in the same memory, the same signal gives the
 * same rows. */
static void test_reset(void) {
    hm_config c = config_default();
    fixture f;
    size_t cap = hm_frame_count(&c, N_SIGNAL) + 2, n_ref, n_rows, consumed, rows;
    float *ref, *got;
    if (!fixture_init(&f, &c)) {
        fixture_free(&f);
        return;
    }
    ref = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    got = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    if (ref == NULL || got == NULL) return;
    n_ref = stream(&f.ex, chirp, NULL, N_SIGNAL, 509, ref, cap);

    n_rows = stream(&f.ex, chirp, NULL, N_SIGNAL, 509, got, cap);
    CHECK_INT(n_rows, n_ref);
    CHECK_MEM(got, ref, n_ref * (size_t)f.row * sizeof(float));

    /* Half a signal (another one: its end, so the flux history differs),
     * then reset. */
    CHECK_STATUS(hm_extractor_push(&f.ex, chirp + 7000, 7777, got, cap, &consumed, &rows), HM_OK);
    CHECK(rows > 0);
    CHECK_STATUS(hm_extractor_reset(&f.ex), HM_OK);
    CHECK_INT(hm_extractor_flush_rows(&f.ex), 0);
    n_rows = stream(&f.ex, chirp, NULL, N_SIGNAL, 17, got, cap);
    CHECK_INT(n_rows, n_ref);
    CHECK_MEM(got, ref, n_ref * (size_t)f.row * sizeof(float));

    /* Re-init over a used workspace. */
    CHECK_STATUS(hm_extractor_push(&f.ex, chirp, 3333, got, cap, &consumed, &rows), HM_OK);
    CHECK_STATUS(hm_extractor_init(&f.ex, &c, f.mem, f.mem_len), HM_OK);
    n_rows = stream(&f.ex, chirp, NULL, N_SIGNAL, 4096, got, cap);
    CHECK_INT(n_rows, n_ref);
    CHECK_MEM(got, ref, n_ref * (size_t)f.row * sizeof(float));
    free(ref);
    free(got);
    fixture_free(&f);
}

/* push with fewer rows of room than the samples complete: it stops at the
 * limit, reports how much it took, and continuing with the rest gives the
 * same rows. */
static void test_partial_push(void) {
    static const size_t limits[] = {0, 1, 3};
    hm_config c = config_default();
    fixture f;
    size_t cap = hm_frame_count(&c, N_SIGNAL) + 2, n_ref, li;
    float *ref, *got;
    if (!fixture_init(&f, &c)) {
        fixture_free(&f);
        return;
    }
    ref = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    got = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    if (ref == NULL || got == NULL) return;
    n_ref = stream(&f.ex, chirp, NULL, N_SIGNAL, N_SIGNAL, ref, cap);

    /* max_rows 0: takes samples up to the first complete frame, no more:
     * n_fft - pad = 512 samples (the frame buffer starts with the pad). */
    {
        size_t consumed = 99, rows = 99;
        CHECK_STATUS(hm_extractor_push(&f.ex, chirp, N_SIGNAL, NULL, 0, &consumed, &rows), HM_OK);
        CHECK_INT(rows, 0);
        CHECK_INT(consumed, c.n_fft / 2);
        /* The completed frame is still pending, and counted. */
        CHECK_INT(hm_extractor_rows_for(&f.ex, 0), 1);
        CHECK_STATUS(hm_extractor_reset(&f.ex), HM_OK);
    }

    for (li = 1; li < sizeof limits / sizeof limits[0]; ++li) {
        size_t limit = limits[li], pos = 0, total = 0, calls = 0, rows = 0;
        int short_calls = 0;
        while (pos < N_SIGNAL || hm_extractor_rows_for(&f.ex, 0) > 0) {
            size_t consumed = 0;
            CHECK_STATUS(hm_extractor_push(&f.ex, chirp + pos, N_SIGNAL - pos,
                                           got + total * (size_t)f.row, limit, &consumed, &rows),
                         HM_OK);
            CHECK(rows <= limit);
            if (consumed < N_SIGNAL - pos) {
                ++short_calls;
                /* It stops only because the row limit was reached. */
                CHECK_INT(rows, limit);
            }
            pos += consumed;
            total += rows;
            if (++calls > 10 * N_SIGNAL) break; /* no progress: fail, don't hang */
        }
        CHECK_MSG(short_calls > 0, "limit %zu never reached", limit);
        CHECK_STATUS(hm_extractor_flush(&f.ex, got + total * (size_t)f.row, cap - total, &rows),
                     HM_OK);
        total += rows;
        CHECK_INT(total, n_ref);
        if (total == n_ref) CHECK_MEM(got, ref, n_ref * (size_t)f.row * sizeof(float));
    }

    /* A frame left pending at the end of the signal: with n = n_fft/2 +
     * 38 hops, the last sample completes a frame; a push with room for one
     * row fewer than it completes takes every sample and leaves that frame
     * pending. flush must write it before the end-padding frames. */
    {
        const size_t n = (size_t)c.n_fft / 2 + 38u * (size_t)c.hop_length;
        size_t n_short, consumed = 0, rows = 0, need, want = hm_extractor_rows_for(&f.ex, n);
        n_short = stream(&f.ex, chirp, NULL, n, n, ref, cap);
        CHECK_INT(n_short, hm_frame_count(&c, n));
        CHECK_STATUS(hm_extractor_push(&f.ex, chirp, n, got, want - 1, &consumed, &rows), HM_OK);
        CHECK_INT(consumed, n);
        CHECK_INT(rows, want - 1);
        CHECK_INT(hm_extractor_rows_for(&f.ex, 0), 1); /* the pending frame */
        need = hm_extractor_flush_rows(&f.ex);
        CHECK_INT(rows + need, n_short);
        CHECK_STATUS(hm_extractor_flush(&f.ex, got + rows * (size_t)f.row, need, &need), HM_OK);
        CHECK_INT(rows + need, n_short);
        if (rows + need == n_short) CHECK_MEM(got, ref, n_short * (size_t)f.row * sizeof(float));
    }
    free(ref);
    free(got);
    fixture_free(&f);
}

/* flush with too little room: HM_ERR_OUTPUT_TOO_SMALL, nothing written,
 * nothing lost; a flush with room then completes the signal. */
static void test_flush_too_small(void) {
    hm_config c = config_default();
    fixture f;
    size_t cap = hm_frame_count(&c, N_SIGNAL) + 2, n_ref, consumed, rows, need, k, untouched = 0;
    float *ref, *got;
    if (!fixture_init(&f, &c)) {
        fixture_free(&f);
        return;
    }
    ref = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    got = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    if (ref == NULL || got == NULL) return;
    n_ref = stream(&f.ex, chirp, NULL, N_SIGNAL, N_SIGNAL, ref, cap);

    CHECK_STATUS(hm_extractor_push(&f.ex, chirp, N_SIGNAL, got, cap, &consumed, &rows), HM_OK);
    CHECK_INT(consumed, N_SIGNAL);
    need = hm_extractor_flush_rows(&f.ex);
    CHECK(need >= 1);
    memset(got + rows * (size_t)f.row, 0x5A, (cap - rows) * (size_t)f.row * sizeof(float));
    {
        size_t rows2 = 12345;
        CHECK_STATUS(hm_extractor_flush(&f.ex, got + rows * (size_t)f.row, need - 1, &rows2),
                     HM_ERR_OUTPUT_TOO_SMALL);
        CHECK_INT(rows2, 12345);
        CHECK_STATUS(hm_extractor_flush(&f.ex, NULL, 0, &rows2), HM_ERR_OUTPUT_TOO_SMALL);
        for (k = rows * (size_t)f.row * sizeof(float); k < cap * (size_t)f.row * sizeof(float); ++k)
            untouched += ((unsigned char *)got)[k] == 0x5A;
        CHECK_INT(untouched, (cap - rows) * (size_t)f.row * sizeof(float));
        CHECK_INT(hm_extractor_flush_rows(&f.ex), need);
        CHECK_STATUS(hm_extractor_flush(&f.ex, got + rows * (size_t)f.row, need, &rows2), HM_OK);
        CHECK_INT(rows + rows2, n_ref);
        if (rows + rows2 == n_ref) CHECK_MEM(got, ref, n_ref * (size_t)f.row * sizeof(float));
    }
    /* Uncentred, flush has nothing to write: no room needed. */
    {
        hm_config u = config_uncentred();
        fixture g;
        size_t rows2 = 7;
        if (fixture_init(&g, &u)) {
            CHECK_STATUS(hm_extractor_push(&g.ex, chirp, 5000, got, cap, &consumed, &rows), HM_OK);
            CHECK_INT(hm_extractor_flush_rows(&g.ex), 0);
            CHECK_STATUS(hm_extractor_flush(&g.ex, NULL, 0, &rows2), HM_OK);
            CHECK_INT(rows2, 0);
        }
        fixture_free(&g);
    }
    free(ref);
    free(got);
    fixture_free(&f);
}

/* push_s16 is push of the same samples / 32768, bit for bit. */
static void test_push_s16(void) {
    static int16_t pcm[N_SIGNAL];
    static float as_float[N_SIGNAL];
    hm_config c = config_default();
    fixture f;
    size_t cap = hm_frame_count(&c, N_SIGNAL) + 2, n1, n2, t;
    float *r1, *r2;
    for (t = 0; t < N_SIGNAL; ++t) {
        double v = floor(chirp[t] * 32768.0 + 0.5);
        pcm[t] = (int16_t)(v > 32767.0 ? 32767.0 : (v < -32768.0 ? -32768.0 : v));
    }
    pcm[100] = -32768; /* both extremes */
    pcm[101] = 32767;
    for (t = 0; t < N_SIGNAL; ++t) as_float[t] = (float)pcm[t] / 32768.0f;
    CHECK(as_float[100] == -1.0f);
    if (!fixture_init(&f, &c)) {
        fixture_free(&f);
        return;
    }
    r1 = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    r2 = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    if (r1 == NULL || r2 == NULL) return;
    n1 = stream(&f.ex, as_float, NULL, N_SIGNAL, 509, r1, cap);
    n2 = stream(&f.ex, NULL, pcm, N_SIGNAL, 509, r2, cap);
    CHECK_INT(n1, n2);
    if (n1 == n2) CHECK_MEM(r2, r1, n1 * (size_t)f.row * sizeof(float));
    n2 = stream(&f.ex, NULL, pcm, N_SIGNAL, PATTERN, r2, cap);
    if (n1 == n2) CHECK_MEM(r2, r1, n1 * (size_t)f.row * sizeof(float));
    free(r1);
    free(r2);
    fixture_free(&f);
}

/* Signals shorter than a frame: centred, 1 + n/hop frames (all of them at
 * flush when n < n_fft/2); uncentred, none until n reaches n_fft. */
static void test_short_inputs(void) {
    static const size_t lengths[] = {0, 1, 2, 100, 511, 512, 513, 1023, 1024, 1025};
    static float r1[4 * 169], r2[4 * 169];
    hm_config c = config_default(), u = config_default();
    fixture f, g;
    size_t i;
    u.center = 0;
    if (!fixture_init(&f, &c) || !fixture_init(&g, &u)) {
        fixture_free(&f);
        fixture_free(&g);
        return;
    }
    CHECK(f.row <= 169);
    for (i = 0; i < sizeof lengths / sizeof lengths[0]; ++i) {
        size_t n = lengths[i], n1, n2;
        size_t want_c = n == 0 ? 0 : 1 + n / 512, want_u = n < 1024 ? 0 : 1 + (n - 1024) / 512;
        CHECK_INT(hm_frame_count(&c, n), want_c);
        CHECK_INT(hm_frame_count(&u, n), want_u);
        n1 = stream(&f.ex, chirp, NULL, n, n == 0 ? 1 : n, r1, 4);
        n2 = stream(&f.ex, chirp, NULL, n, 1, r2, 4);
        CHECK_MSG(n1 == want_c && n2 == want_c, "n=%zu: %zu and %zu rows, want %zu", n, n1, n2,
                  want_c);
        if (n1 == n2) CHECK_MEM(r2, r1, n1 * (size_t)f.row * sizeof(float));
        if (n < (size_t)c.n_fft / 2) {
            /* Nothing before flush: every frame needs the end padding. */
            size_t consumed, rows;
            CHECK_STATUS(hm_extractor_push(&f.ex, chirp, n, r1, 4, &consumed, &rows), HM_OK);
            CHECK_INT(rows, 0);
            CHECK_INT(hm_extractor_flush_rows(&f.ex), want_c);
            CHECK_STATUS(hm_extractor_reset(&f.ex), HM_OK);
        }
        n1 = stream(&g.ex, chirp, NULL, n, n == 0 ? 1 : n, r1, 4);
        CHECK_MSG(n1 == want_u, "uncentred n=%zu: %zu rows, want %zu", n, n1, want_u);
    }
    /* One sample: the single frame holds it at its centre, so its rms is
     * |x| / sqrt(n_fft) (exact up to float rounding of the sqrt and a sum of
     * one nonzero square: 2u relative). */
    {
        float one = 0.75f;
        size_t n1 = stream(&f.ex, &one, NULL, 1, 1, r1, 4);
        CHECK_INT(n1, 1);
        CHECK_REL(r1[f.ex.offset[HM_FEATURE_RMS]], 0.75 / sqrt(1024.0), 2.0 * HM_TEST_U32);
        CHECK(r1[f.ex.offset[HM_FEATURE_ZCR]] == 0.0f);
    }
    fixture_free(&f);
    fixture_free(&g);
}

/* A subset of the features gives the same values, bit for bit, as the full
 * set at the subset's offsets (the same code computes them), and the row
 * layout is the features' sizes in hm_feature order. */
static void test_subsets(void) {
    static const uint32_t combos[] = {
        HM_FEATURES_FRAME_VECTOR,
        HM_FEATURE_BIT(HM_FEATURE_LOG_MEL),
        HM_FEATURE_BIT(HM_FEATURE_MFCC) | HM_FEATURE_BIT(HM_FEATURE_CHROMA),
        HM_FEATURE_BIT(HM_FEATURE_MEL) | HM_FEATURE_BIT(HM_FEATURE_SPECTRAL_FLUX),
        HM_FEATURE_BIT(HM_FEATURE_ZCR) | HM_FEATURE_BIT(HM_FEATURE_ENERGY_ENTROPY),
        HM_FEATURE_BIT(HM_FEATURE_SPECTRAL_ROLLOFF) | HM_FEATURE_BIT(HM_FEATURE_LOG_MEL),
    };
    hm_config c = config_default();
    fixture full;
    size_t cap = hm_frame_count(&c, N_SIGNAL) + 2, n_full, i;
    float *all, *sub;
    int ff;
    if (!fixture_init(&full, &c)) {
        fixture_free(&full);
        return;
    }
    /* The full row: every feature, in enum order. */
    {
        int expect = 0;
        for (ff = 0; ff < HM_FEATURE_COUNT; ++ff) {
            CHECK_INT(hm_extractor_offset(&full.ex, (hm_feature)ff), expect);
            expect += hm_feature_size(&c, (hm_feature)ff);
        }
        CHECK_INT(full.row, expect);
        CHECK_INT(full.row, 20 + 8 + 64 + 64 + 12 + 1);
    }
    all = (float *)malloc(cap * (size_t)full.row * sizeof(float));
    sub = (float *)malloc(cap * (size_t)full.row * sizeof(float));
    if (all == NULL || sub == NULL) return;
    n_full = stream(&full.ex, chirp, NULL, N_SIGNAL, 509, all, cap);

    for (i = 0; i < (size_t)HM_FEATURE_COUNT + sizeof combos / sizeof combos[0]; ++i) {
        uint32_t mask = i < (size_t)HM_FEATURE_COUNT ? HM_FEATURE_BIT(i)
                                                     : combos[i - (size_t)HM_FEATURE_COUNT];
        hm_config s = c;
        fixture f;
        size_t n_sub, t;
        int expect = 0, bad = 0;
        s.features = mask;
        if (!fixture_init(&f, &s)) {
            fixture_free(&f);
            continue;
        }
        /* The subset's workspace is no larger than the full one. */
        CHECK(f.mem_len <= full.mem_len);
        for (ff = 0; ff < HM_FEATURE_COUNT; ++ff) {
            int off = hm_extractor_offset(&f.ex, (hm_feature)ff);
            if (mask & HM_FEATURE_BIT(ff)) {
                CHECK_INT(off, expect);
                expect += hm_feature_size(&s, (hm_feature)ff);
            } else {
                CHECK_INT(off, -1);
                CHECK_INT(hm_feature_size(&s, (hm_feature)ff), 0);
            }
        }
        CHECK_INT(f.row, expect);
        n_sub = stream(&f.ex, chirp, NULL, N_SIGNAL, 509, sub, cap);
        CHECK_INT(n_sub, n_full);
        for (t = 0; t < n_sub && t < n_full; ++t) {
            for (ff = 0; ff < HM_FEATURE_COUNT; ++ff) {
                int off = hm_extractor_offset(&f.ex, (hm_feature)ff);
                if (off < 0) continue;
                if (memcmp(sub + t * (size_t)f.row + off,
                           all + t * (size_t)full.row + full.ex.offset[ff],
                           sizeof(float) * (size_t)hm_feature_size(&s, (hm_feature)ff)) != 0) {
                    if (bad++ == 0)
                        CHECK_MSG(0, "mask 0x%x frame %zu: %s differs from the full set",
                                  (unsigned)mask, t, hm_feature_name((hm_feature)ff));
                }
            }
        }
        CHECK_MSG(bad == 0, "mask 0x%x: %d differences", (unsigned)mask, bad);
        fixture_free(&f);
    }
    free(all);
    free(sub);
    fixture_free(&full);
}

/* Silence: finite values with the limits librosa and pyAudioAnalysis give
 * for an all-zero frame. */
static void test_silence(void) {
    static float zeros[5000];
    hm_config c = config_default();
    fixture f;
    size_t cap = hm_frame_count(&c, 5000) + 2, n_rows, t;
    float *rows;
    int k, bad = 0;
    if (!fixture_init(&f, &c)) {
        fixture_free(&f);
        return;
    }
    rows = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    if (rows == NULL) return;
    n_rows = stream(&f.ex, zeros, NULL, 5000, 509, rows, cap);
    CHECK_INT(n_rows, 1 + 5000 / 512);
    for (t = 0; t < n_rows; ++t) {
        const float *r = rows + t * (size_t)f.row;
        const int *o = f.ex.offset;
        for (k = 0; k < f.row; ++k) bad += !isfinite(r[k]);
        /* log_mel = 10 log10(amin) - 10 log10(ref) = -100 dB. Tolerance:
         * log10f of amin rounded to float, times 10: a few float ulps of
         * 100 (ulp 7.6e-6). */
        for (k = 0; k < c.n_mels; ++k) {
            CHECK(r[o[HM_FEATURE_MEL] + k] == 0.0f);
            CHECK_NEAR(r[o[HM_FEATURE_LOG_MEL] + k], -100.0, 1e-4);
        }
        /* MFCC of a constant -100: c0 = -100 sqrt(n_mels) = -800, the rest
         * 0. Tolerance: a float dot product of n_mels terms is within
         * (n_mels + 1) u of sum |table[m] * x[m]| (Higham, Eq. 3.5), and
         * that sum is at most 100 * sqrt(2 n_mels) here (each DCT row has
         * entries of size <= sqrt(2 / n_mels)); plus the rounding of the
         * table and of -100 dB itself: (n_mels + 2) u * 100 sqrt(2 n_mels)
         * + 800 u. */
        {
            double tol = (c.n_mels + 2) * HM_TEST_U32 * 100.0 * sqrt(2.0 * c.n_mels) +
                         800.0 * HM_TEST_U32;
            CHECK_NEAR(r[o[HM_FEATURE_MFCC]], -800.0, tol);
            for (k = 1; k < c.n_mfcc; ++k) CHECK_NEAR(r[o[HM_FEATURE_MFCC] + k], 0.0, tol);
        }
        CHECK(r[o[HM_FEATURE_ZCR]] == 0.0f);
        CHECK(r[o[HM_FEATURE_RMS]] == 0.0f);
        CHECK(r[o[HM_FEATURE_SPECTRAL_CENTROID]] == 0.0f);
        CHECK(r[o[HM_FEATURE_SPECTRAL_BANDWIDTH]] == 0.0f);
        CHECK(r[o[HM_FEATURE_SPECTRAL_ROLLOFF]] == 0.0f);
        /* Flatness of a spectrum clamped to amin everywhere: geometric mean
         * / arithmetic mean of equal values = 1. Tolerance: float sums of
         * n_bins equal terms over 8 lanes ((n_bins/8 + 3) u) plus log2 and
         * exp2 in double: (n_bins/8 + 8) u. */
        CHECK_NEAR(r[o[HM_FEATURE_SPECTRAL_FLATNESS]], 1.0, (513 / 8 + 8) * HM_TEST_U32);
        CHECK(r[o[HM_FEATURE_SPECTRAL_FLUX]] == 0.0f);
        CHECK(r[o[HM_FEATURE_SPECTRAL_ENTROPY]] == 0.0f);
        CHECK(r[o[HM_FEATURE_ENERGY_ENTROPY]] == 0.0f);
        for (k = 0; k < HM_N_CHROMA; ++k) CHECK(r[o[HM_FEATURE_CHROMA] + k] == 0.0f);
    }
    CHECK_MSG(bad == 0, "%d non-finite values in silence", bad);
    free(rows);
    fixture_free(&f);
}

/* Extreme but valid inputs never give NaN or infinity: a full-scale square
 * wave, DC at full scale, one impulse in silence, the most negative 16-bit
 * value held. */
static void test_extremes_finite(void) {
    static float x[6000];
    static int16_t pcm[6000];
    hm_config c = config_default();
    fixture f;
    size_t cap = hm_frame_count(&c, 6000) + 2, n_rows, k, kind;
    float *rows;
    if (!fixture_init(&f, &c)) {
        fixture_free(&f);
        return;
    }
    rows = (float *)malloc(cap * (size_t)f.row * sizeof(float));
    if (rows == NULL) return;
    for (kind = 0; kind < 4; ++kind) {
        size_t bad = 0;
        for (k = 0; k < 6000; ++k) {
            switch (kind) {
            case 0: x[k] = (k / 25) % 2 ? 1.0f : -1.0f; break;
            case 1: x[k] = 1.0f; break;
            case 2: x[k] = k == 3000 ? 1.0f : 0.0f; break;
            default: pcm[k] = -32768; break;
            }
        }
        n_rows = kind == 3 ? stream(&f.ex, NULL, pcm, 6000, 509, rows, cap)
                           : stream(&f.ex, x, NULL, 6000, 509, rows, cap);
        CHECK_INT(n_rows, hm_frame_count(&c, 6000));
        for (k = 0; k < n_rows * (size_t)f.row; ++k) bad += !isfinite(rows[k]);
        CHECK_MSG(bad == 0, "signal kind %zu: %zu non-finite values", kind, bad);
    }
    free(rows);
    fixture_free(&f);
}

int main(void) {
    make_chirp(chirp, N_SIGNAL);
    test_streaming_equals_batch();
    test_hop_one();
    test_framing();
    test_db();
    test_reset();
    test_partial_push();
    test_flush_too_small();
    test_push_s16();
    test_short_inputs();
    test_subsets();
    test_silence();
    test_extremes_finite();
    return hm_test_finish();
}
