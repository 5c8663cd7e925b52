/*
 * test_errors.c — every invalid configuration gets its own status code from
 * hm_config_validate, hm_extractor_workspace_size and hm_extractor_init;
 * workspace and NULL handling; a failed init leaves the object safe to init
 * again; hm_strerror and hm_feature_name cover every value.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harmonies/harmonies.h"
#include "hm_test.h"

/* Large enough for every configuration used here (default: ~65 KiB). */
#define WS_BYTES (256 * 1024)
static union {
    double align;
    unsigned char bytes[WS_BYTES];
} ws;

static float out[64 * 1024];
static float samples[4096];

/* One broken field on top of the defaults. */
typedef struct bad_config {
    const char *what;
    hm_config cfg;
    hm_status want;
} bad_config;

static size_t make_bad_configs(bad_config *b) {
    const double nan = strtod("nan", NULL);
    hm_config d;
    size_t n = 0;
    hm_config_default(&d);

#define BAD(desc, field, value, status)  \
    do {                                 \
        b[n].what = desc;                \
        b[n].cfg = d;                    \
        b[n].cfg.field = value;          \
        b[n].want = status;              \
        ++n;                             \
    } while (0)

    BAD("sample_rate 0", sample_rate, 0, HM_ERR_SAMPLE_RATE);
    BAD("sample_rate 999", sample_rate, HM_MIN_SAMPLE_RATE - 1, HM_ERR_SAMPLE_RATE);
    BAD("sample_rate 768001", sample_rate, HM_MAX_SAMPLE_RATE + 1, HM_ERR_SAMPLE_RATE);
    BAD("sample_rate -22050", sample_rate, -22050, HM_ERR_SAMPLE_RATE);
    BAD("n_fft 1000 (not a power of two)", n_fft, 1000, HM_ERR_N_FFT);
    BAD("n_fft 128", n_fft, 128, HM_ERR_N_FFT);
    BAD("n_fft 8192", n_fft, 8192, HM_ERR_N_FFT);
    BAD("n_fft 0", n_fft, 0, HM_ERR_N_FFT);
    BAD("n_fft -1024", n_fft, -1024, HM_ERR_N_FFT);
    BAD("win_length 0", win_length, 0, HM_ERR_WIN_LENGTH);
    BAD("win_length > n_fft", win_length, 1025, HM_ERR_WIN_LENGTH);
    BAD("win_length -1", win_length, -1, HM_ERR_WIN_LENGTH);
    BAD("hop_length 0", hop_length, 0, HM_ERR_HOP_LENGTH);
    BAD("hop_length > n_fft", hop_length, 1025, HM_ERR_HOP_LENGTH);
    BAD("hop_length -512", hop_length, -512, HM_ERR_HOP_LENGTH);
    BAD("fmax > sr/2", fmax, 11025.5, HM_ERR_FMAX);
    BAD("fmax NaN", fmax, nan, HM_ERR_FMAX);
    BAD("fmax +inf", fmax, HUGE_VAL, HM_ERR_FMAX);
    BAD("fmax 0", fmax, 0.0, HM_ERR_FMAX);
    BAD("fmin < 0", fmin, -1.0, HM_ERR_FMIN);
    BAD("fmin == fmax", fmin, 11025.0, HM_ERR_FMIN);
    BAD("fmin > fmax", fmin, 11000.0 + 100.0, HM_ERR_FMIN);
    BAD("fmin NaN", fmin, nan, HM_ERR_FMIN);
    BAD("n_mels 0", n_mels, 0, HM_ERR_N_MELS);
    BAD("n_mels 513", n_mels, HM_MAX_MELS + 1, HM_ERR_N_MELS);
    BAD("n_mfcc 0", n_mfcc, 0, HM_ERR_N_MFCC);
    BAD("n_mfcc > n_mels", n_mfcc, 65, HM_ERR_N_MFCC);
    BAD("amin 0", amin, 0.0, HM_ERR_DB_PARAMS);
    BAD("amin < 0", amin, -1e-10, HM_ERR_DB_PARAMS);
    BAD("amin 1e-31 (below the 1e-30 floor)", amin, 1e-31, HM_ERR_DB_PARAMS);
    BAD("amin NaN", amin, nan, HM_ERR_DB_PARAMS);
    BAD("amin inf", amin, HUGE_VAL, HM_ERR_DB_PARAMS);
    BAD("ref 0", ref, 0.0, HM_ERR_DB_PARAMS);
    BAD("ref < 0", ref, -1.0, HM_ERR_DB_PARAMS);
    BAD("ref NaN", ref, nan, HM_ERR_DB_PARAMS);
    BAD("features 0", features, 0u, HM_ERR_FEATURES);
    BAD("features unknown bit", features, HM_FEATURES_ALL | (1u << HM_FEATURE_COUNT),
        HM_ERR_FEATURES);
    BAD("features only an unknown bit", features, 1u << 31, HM_ERR_FEATURES);
#undef BAD
    /* fmax > sr/2 also when both move: 16 kHz at 8000 Hz + a little. */
    b[n].what = "fmax > sr/2 at 16 kHz";
    b[n].cfg = d;
    b[n].cfg.sample_rate = 16000;
    b[n].cfg.fmax = 8000.001;
    b[n].want = HM_ERR_FMAX;
    ++n;
    return n;
}

static void test_invalid_configs(void) {
    static bad_config bad[64];
    size_t n = make_bad_configs(bad), i;
    for (i = 0; i < n; ++i) {
        hm_extractor ex;
        size_t size = 999;
        hm_status st;
        hm_config good;
        hm_config_default(&good);
        /* Start from an initialised object: the failed init must unmark it. */
        CHECK_STATUS(hm_extractor_init(&ex, &good, ws.bytes, WS_BYTES), HM_OK);
        st = hm_config_validate(&bad[i].cfg);
        CHECK_MSG(st == bad[i].want, "%s: validate gave %s, expected %s", bad[i].what,
                  hm_test_status_name(st), hm_test_status_name(bad[i].want));
        st = hm_extractor_workspace_size(&bad[i].cfg, &size);
        CHECK_MSG(st == bad[i].want, "%s: workspace_size gave %s", bad[i].what,
                  hm_test_status_name(st));
        CHECK_MSG(size == 0, "%s: workspace_size left %zu", bad[i].what, size);
        st = hm_extractor_init(&ex, &bad[i].cfg, ws.bytes, WS_BYTES);
        CHECK_MSG(st == bad[i].want, "%s: init gave %s", bad[i].what, hm_test_status_name(st));
        CHECK_MSG(ex.initialized == 0, "%s: object marked initialised", bad[i].what);
    }
}

/* Valid edges: the limits themselves are accepted. */
static void test_valid_edges(void) {
    hm_config c;
    hm_config_default(&c);
    CHECK_STATUS(hm_config_validate(&c), HM_OK);
    c.n_fft = HM_MIN_FFT;
    c.win_length = 1;
    c.hop_length = HM_MIN_FFT;
    c.n_mels = 40;
    c.n_mfcc = 40;
    CHECK_STATUS(hm_config_validate(&c), HM_OK);
    hm_config_default(&c);
    c.n_fft = HM_MAX_FFT;
    c.win_length = HM_MAX_FFT;
    c.hop_length = 1;
    c.n_mels = HM_MAX_MELS;
    c.n_mfcc = 1;
    c.amin = 1e-30;
    c.ref = 1e-300;
    c.fmin = 11024.0;
    c.features = HM_FEATURE_BIT(HM_FEATURE_ZCR);
    CHECK_STATUS(hm_config_validate(&c), HM_OK);
    hm_config_default(&c);
    c.sample_rate = HM_MIN_SAMPLE_RATE;
    c.fmax = 500.0;
    c.n_mels = 8;
    c.n_mfcc = 8;
    CHECK_STATUS(hm_config_validate(&c), HM_OK);
    c.sample_rate = HM_MAX_SAMPLE_RATE;
    c.fmax = 384000.0;
    CHECK_STATUS(hm_config_validate(&c), HM_OK);
}

/* The empty mel filter case is a property of the whole bank: the checks of
 * single fields pass, and init refuses it (as librosa warns "Empty filters
 * detected" for sr 44100, n_fft 256, n_mels 128). */
static void test_empty_mel_filter(void) {
    hm_config c;
    hm_extractor ex;
    size_t size = 0;
    hm_config_default(&c);
    c.sample_rate = 44100;
    c.n_fft = 256;
    c.win_length = 256;
    c.hop_length = 128;
    c.n_mels = 128;
    c.fmax = 22050.0;
    memset(&ex, 0, sizeof ex);
    CHECK_STATUS(hm_extractor_workspace_size(&c, &size), HM_OK);
    CHECK(size > 0 && size <= WS_BYTES);
    CHECK_STATUS(hm_extractor_init(&ex, &c, ws.bytes, WS_BYTES), HM_ERR_EMPTY_MEL_FILTER);
    CHECK(ex.initialized == 0);
    /* Then the same object initialises with a good bank. */
    c.n_mels = 40;
    CHECK_STATUS(hm_extractor_init(&ex, &c, ws.bytes, WS_BYTES), HM_OK);
}

/* A workspace one byte short: refused, the object marked uninitialised
 * (push says so), and a later init with enough memory works. */
static void test_workspace_too_small(void) {
    hm_config c;
    hm_extractor ex;
    size_t need = 0, consumed = 0, rows = 0;
    int offset;
    hm_config_default(&c);
    CHECK_STATUS(hm_extractor_workspace_size(&c, &need), HM_OK);
    CHECK(need > 0 && need <= WS_BYTES - 64);

    /* First a good init, so that "uninitialised" is a change of state. */
    CHECK_STATUS(hm_extractor_init(&ex, &c, ws.bytes, need), HM_OK);
    CHECK_STATUS(hm_extractor_init(&ex, &c, ws.bytes, need - 1), HM_ERR_WORKSPACE_TOO_SMALL);
    CHECK(ex.initialized == 0);
    CHECK_STATUS(hm_extractor_push(&ex, samples, 100, out, 10, &consumed, &rows),
                 HM_ERR_NOT_INITIALIZED);
    CHECK_STATUS(hm_extractor_push_s16(&ex, (const int16_t *)samples, 100, out, 10, &consumed,
                                       &rows),
                 HM_ERR_NOT_INITIALIZED);
    CHECK_STATUS(hm_extractor_flush(&ex, out, 10, &rows), HM_ERR_NOT_INITIALIZED);
    CHECK_STATUS(hm_extractor_reset(&ex), HM_ERR_NOT_INITIALIZED);
    CHECK_INT(hm_extractor_row_size(&ex), 0);
    CHECK_INT(hm_extractor_offset(&ex, HM_FEATURE_MFCC), -1);
    CHECK_INT(hm_extractor_rows_for(&ex, 100000), 0);
    CHECK_INT(hm_extractor_flush_rows(&ex), 0);
    CHECK_STATUS(hm_extractor_init(&ex, &c, ws.bytes, 0), HM_ERR_WORKSPACE_TOO_SMALL);

    /* Exactly `need` bytes suffice at every alignment of the base. */
    for (offset = 0; offset < 40; offset += 3) {
        CHECK_STATUS(hm_extractor_init(&ex, &c, ws.bytes + offset, need), HM_OK);
        CHECK_STATUS(hm_extractor_push(&ex, samples, 2048, out, 10, &consumed, &rows), HM_OK);
        CHECK_INT(consumed, 2048);
        CHECK_INT(rows, 4);
    }
    /* Each feature subset needs its own, smaller or equal, size; one byte
     * less than that is refused as well. */
    {
        int f;
        for (f = 0; f < HM_FEATURE_COUNT; ++f) {
            hm_config s = c;
            size_t sub = 0;
            s.features = HM_FEATURE_BIT(f);
            CHECK_STATUS(hm_extractor_workspace_size(&s, &sub), HM_OK);
            CHECK_MSG(sub > 0 && sub <= need, "%s: %zu > %zu", hm_feature_name((hm_feature)f),
                      sub, need);
            CHECK_STATUS(hm_extractor_init(&ex, &s, ws.bytes + 1, sub - 1),
                         HM_ERR_WORKSPACE_TOO_SMALL);
            CHECK_STATUS(hm_extractor_init(&ex, &s, ws.bytes + 1, sub), HM_OK);
        }
    }
}

static void test_null_arguments(void) {
    hm_config c;
    hm_extractor ex, zero;
    size_t size = 0, consumed = 0, rows = 0;
    hm_config_default(&c);
    memset(&zero, 0, sizeof zero);

    CHECK_STATUS(hm_config_validate(NULL), HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_workspace_size(NULL, &size), HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_workspace_size(&c, NULL), HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_init(NULL, &c, ws.bytes, WS_BYTES), HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_init(&ex, &c, ws.bytes, WS_BYTES), HM_OK);
    /* A failed init leaves the object marked uninitialised (the header's
     * promise), NULL arguments included. */
    CHECK_STATUS(hm_extractor_init(&ex, NULL, ws.bytes, WS_BYTES), HM_ERR_NULL_ARGUMENT);
    CHECK(ex.initialized == 0);
    CHECK_STATUS(hm_extractor_init(&ex, &c, ws.bytes, WS_BYTES), HM_OK);
    CHECK_STATUS(hm_extractor_init(&ex, &c, NULL, WS_BYTES), HM_ERR_NULL_ARGUMENT);
    CHECK(ex.initialized == 0);
    CHECK_STATUS(hm_extractor_init(&ex, &c, ws.bytes, WS_BYTES), HM_OK);

    CHECK_STATUS(hm_extractor_push(NULL, samples, 10, out, 10, &consumed, &rows),
                 HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_push(&ex, NULL, 10, out, 10, &consumed, &rows), HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_push(&ex, samples, 10, NULL, 10, &consumed, &rows),
                 HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_push_s16(NULL, (const int16_t *)samples, 10, out, 10, &consumed,
                                       &rows),
                 HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_push_s16(&ex, NULL, 10, out, 10, &consumed, &rows),
                 HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_flush(NULL, out, 10, &rows), HM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(hm_extractor_reset(NULL), HM_ERR_NULL_ARGUMENT);
    /* Nothing to read or write is not an error: no samples with a NULL
     * pointer, no room with a NULL output, NULL counters. */
    consumed = rows = 7;
    CHECK_STATUS(hm_extractor_push(&ex, NULL, 0, out, 10, &consumed, &rows), HM_OK);
    CHECK_INT(consumed, 0);
    CHECK_INT(rows, 0);
    CHECK_STATUS(hm_extractor_push(&ex, samples, 10, NULL, 0, NULL, NULL), HM_OK);
    CHECK_STATUS(hm_extractor_flush(&ex, out, 10, NULL), HM_OK);
    /* Accessors on NULL. */
    CHECK_INT(hm_extractor_row_size(NULL), 0);
    CHECK_INT(hm_extractor_offset(NULL, HM_FEATURE_MFCC), -1);
    CHECK_INT(hm_extractor_offset(&ex, HM_FEATURE_COUNT), -1);
    CHECK_INT(hm_extractor_offset(&ex, (hm_feature)-1), -1);
    CHECK_INT(hm_extractor_rows_for(NULL, 100000), 0);
    CHECK_INT(hm_extractor_flush_rows(NULL), 0);
    CHECK_INT(hm_feature_size(NULL, HM_FEATURE_MFCC), 0);
    CHECK_INT(hm_frame_count(NULL, 100000), 0);
    hm_config_default(NULL); /* must not crash */

    /* A never-initialised (zeroed) object. */
    CHECK_STATUS(hm_extractor_push(&zero, samples, 10, out, 10, &consumed, &rows),
                 HM_ERR_NOT_INITIALIZED);
    CHECK_STATUS(hm_extractor_flush(&zero, out, 10, &rows), HM_ERR_NOT_INITIALIZED);
    CHECK_STATUS(hm_extractor_reset(&zero), HM_ERR_NOT_INITIALIZED);
}

static void test_messages(void) {
    int s, f;
    const char *seen[HM_STATUS_COUNT];
    for (s = 0; s < HM_STATUS_COUNT; ++s) {
        const char *m = hm_strerror((hm_status)s);
        int j;
        CHECK_MSG(m != NULL && m[0] != '\0', "status %d has no message", s);
        seen[s] = m;
        /* Each status says something of its own. */
        for (j = 0; j < s; ++j)
            CHECK_MSG(m == NULL || seen[j] == NULL || strcmp(m, seen[j]) != 0,
                      "statuses %d and %d share a message", j, s);
    }
    CHECK(hm_strerror(HM_STATUS_COUNT) != NULL && hm_strerror(HM_STATUS_COUNT)[0] != '\0');
    CHECK(hm_strerror((hm_status)-1) != NULL && hm_strerror((hm_status)-1)[0] != '\0');
    CHECK(hm_strerror((hm_status)1000) != NULL && hm_strerror((hm_status)1000)[0] != '\0');

    /* Feature names: the Python API's names, NULL outside the enum. */
    for (f = 0; f < HM_FEATURE_COUNT; ++f) {
        const char *n = hm_feature_name((hm_feature)f);
        CHECK_MSG(n != NULL && n[0] != '\0', "feature %d has no name", f);
    }
    CHECK(strcmp(hm_feature_name(HM_FEATURE_MFCC), "mfcc") == 0);
    CHECK(strcmp(hm_feature_name(HM_FEATURE_LOG_MEL), "log_mel") == 0);
    CHECK(strcmp(hm_feature_name(HM_FEATURE_SPECTRAL_ENTROPY), "spectral_entropy") == 0);
    CHECK(strcmp(hm_feature_name(HM_FEATURE_ENERGY_ENTROPY), "energy_entropy") == 0);
    CHECK(hm_feature_name(HM_FEATURE_COUNT) == NULL);
    CHECK(hm_feature_name((hm_feature)-1) == NULL);
}

/* The defaults are the documented ones (DESIGN.md, harmonies.h). */
static void test_defaults(void) {
    hm_config c;
    memset(&c, 0xAB, sizeof c);
    hm_config_default(&c);
    CHECK_INT(c.sample_rate, 22050);
    CHECK_INT(c.n_fft, 1024);
    CHECK_INT(c.win_length, 1024);
    CHECK_INT(c.hop_length, 512);
    CHECK_INT(c.center, 1);
    CHECK_INT(c.n_mels, 64);
    CHECK(c.fmin == 0.0 && c.fmax == 11025.0);
    CHECK_INT(c.htk, 0);
    CHECK_INT(c.n_mfcc, 20);
    CHECK(c.amin == 1e-10 && c.ref == 1.0);
    CHECK_INT(c.features, HM_FEATURES_ALL);
    CHECK_INT(HM_FEATURES_FRAME_VECTOR, (1u << (HM_FEATURE_SPECTRAL_ENTROPY + 1)) - 1u);
}

int main(void) {
    test_defaults();
    test_invalid_configs();
    test_valid_edges();
    test_empty_mel_filter();
    test_workspace_too_small();
    test_null_arguments();
    test_messages();
    return hm_test_finish();
}
