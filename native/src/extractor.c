/*
 * The extractor: a frame buffer fed by any number of samples at a time,
 * and for each completed frame the window, the FFT and every selected
 * feature, written as one row. Tables are built at init; push and flush
 * only copy, transform and write rows.
 */
#include "harmonies/harmonies.h"
#include "internal.h"
#include "tables.h"

#include <math.h>
#include <string.h>

#define HAS(mask, f) (((mask) & HM_FEATURE_BIT(f)) != 0u)

/* What each selection needs computed, features and intermediates. */
typedef struct needs {
    int mfcc, log_mel, mel, chroma, shape, flux, flatness, spec_entropy, magnitude, spectrum,
        time;
} needs;

static needs needs_of(uint32_t f) {
    needs n;
    n.mfcc = HAS(f, HM_FEATURE_MFCC);
    n.log_mel = HAS(f, HM_FEATURE_LOG_MEL) || n.mfcc;
    n.mel = HAS(f, HM_FEATURE_MEL) || n.log_mel;
    n.chroma = HAS(f, HM_FEATURE_CHROMA);
    n.shape = HAS(f, HM_FEATURE_SPECTRAL_CENTROID) || HAS(f, HM_FEATURE_SPECTRAL_BANDWIDTH) ||
              HAS(f, HM_FEATURE_SPECTRAL_ROLLOFF);
    n.flux = HAS(f, HM_FEATURE_SPECTRAL_FLUX);
    n.flatness = HAS(f, HM_FEATURE_SPECTRAL_FLATNESS);
    n.spec_entropy = HAS(f, HM_FEATURE_SPECTRAL_ENTROPY);
    n.magnitude = n.shape || n.flux;
    n.spectrum = n.mel || n.chroma || n.magnitude || n.flatness || n.spec_entropy;
    n.time = HAS(f, HM_FEATURE_ZCR) || HAS(f, HM_FEATURE_RMS) || HAS(f, HM_FEATURE_ENERGY_ENTROPY);
    return n;
}

/* The arrays of an extractor, in carving order; used for sizing and init. */
typedef struct layout {
    size_t fft, mel, frame, window, bins, mels, dct, chroma, prev;
} layout;

static layout layout_of(const hm_config *c) {
    needs n = needs_of(c->features);
    size_t bins = (size_t)(c->n_fft / 2 + 1);
    layout l;
    l.fft = n.spectrum ? hm_fft_workspace_size(c->n_fft) : 0u;
    l.mel = n.mel ? hm_mel_workspace_size(c->sample_rate, c->n_fft, c->n_mels, c->fmin, c->fmax,
                                          c->htk)
                  : 0u;
    l.frame = hm_align_up((size_t)c->n_fft * sizeof(float));
    l.window = n.spectrum ? hm_align_up((size_t)c->n_fft * sizeof(double)) : 0u;
    l.bins = n.spectrum ? hm_align_up(bins * sizeof(float)) : 0u; /* each of 2 arrays */
    l.mels = n.mel ? hm_align_up((size_t)c->n_mels * sizeof(float)) : 0u; /* each of 2 */
    l.dct = n.mfcc ? hm_align_up((size_t)c->n_mels * (size_t)c->n_mfcc * sizeof(float)) : 0u;
    l.chroma = n.chroma ? hm_align_up(bins * HM_N_CHROMA * sizeof(float)) : 0u;
    l.prev = n.flux ? hm_align_up((size_t)(c->n_fft / 2) * sizeof(float)) : 0u;
    return l;
}

hm_status hm_extractor_workspace_size(const hm_config *cfg, size_t *size) {
    layout l;
    hm_status st;
    if (cfg == NULL || size == NULL) return HM_ERR_NULL_ARGUMENT;
    *size = 0;
    st = hm_config_validate(cfg);
    if (st != HM_OK) return st;
    l = layout_of(cfg);
    *size = l.fft + l.mel + l.frame + l.window + 2u * l.bins + 2u * l.mels + l.dct + l.chroma +
            l.prev + HM_WORKSPACE_SLACK;
    return HM_OK;
}

hm_status hm_extractor_init(hm_extractor *ex, const hm_config *cfg, void *mem, size_t mem_len) {
    hm_status st;
    size_t need;
    hm_arena arena;
    layout l;
    needs n;
    int f;
    if (ex == NULL) return HM_ERR_NULL_ARGUMENT;
    ex->initialized = 0;
    if (cfg == NULL || mem == NULL) return HM_ERR_NULL_ARGUMENT;
    st = hm_extractor_workspace_size(cfg, &need);
    if (st != HM_OK) return st;
    if (mem_len < need) return HM_ERR_WORKSPACE_TOO_SMALL;

    ex->cfg = *cfg;
    ex->n_bins = cfg->n_fft / 2 + 1;
    ex->pad = cfg->center ? cfg->n_fft / 2 : 0;
    ex->row_size = 0;
    for (f = 0; f < HM_FEATURE_COUNT; ++f) {
        int width = hm_feature_size(cfg, (hm_feature)f);
        ex->offset[f] = width > 0 ? ex->row_size : -1;
        ex->row_size += width;
    }

    n = needs_of(cfg->features);
    l = layout_of(cfg);
    hm_arena_init(&arena, mem, mem_len);
    ex->frame = (float *)hm_arena_take(&arena, l.frame);
    ex->window = NULL;
    ex->power = ex->magnitude = NULL;
    ex->mel_scratch = ex->log_mel_scratch = ex->dct = ex->chroma_fb = ex->prev_norm_mag = NULL;
    ex->fft.initialized = 0;
    ex->mel.initialized = 0;
    if (n.spectrum) {
        void *fft_mem = hm_arena_take(&arena, l.fft);
        ex->window = (double *)hm_arena_take(&arena, l.window);
        ex->power = (float *)hm_arena_take(&arena, l.bins);
        ex->magnitude = (float *)hm_arena_take(&arena, l.bins);
        if (arena.failed) return HM_ERR_WORKSPACE_TOO_SMALL;
        st = hm_fft_init(&ex->fft, cfg->n_fft, fft_mem, l.fft);
        if (st != HM_OK) return st;
        /* Stored in the FFT's packing order: windowing then needs no
         * second gather. */
        {
            int half = cfg->n_fft / 2, i;
            for (i = 0; i < half; ++i) {
                int r = ex->fft.bitrev[i];
                ex->window[i] = hm_hann_value(2 * r, cfg->win_length, cfg->n_fft);
                ex->window[half + i] = hm_hann_value(2 * r + 1, cfg->win_length, cfg->n_fft);
            }
        }
    }
    if (n.mel) {
        void *mel_mem = hm_arena_take(&arena, l.mel);
        ex->mel_scratch = (float *)hm_arena_take(&arena, l.mels);
        ex->log_mel_scratch = (float *)hm_arena_take(&arena, l.mels);
        if (arena.failed) return HM_ERR_WORKSPACE_TOO_SMALL;
        st = hm_mel_init(&ex->mel, cfg->sample_rate, cfg->n_fft, cfg->n_mels, cfg->fmin,
                         cfg->fmax, cfg->htk, mel_mem, l.mel);
        if (st != HM_OK) return st;
    }
    if (n.mfcc) {
        ex->dct = (float *)hm_arena_take(&arena, l.dct);
        if (arena.failed) return HM_ERR_WORKSPACE_TOO_SMALL;
        hm_dct_table(ex->dct, cfg->n_mels, cfg->n_mfcc);
    }
    if (n.chroma) {
        ex->chroma_fb = (float *)hm_arena_take(&arena, l.chroma);
        if (arena.failed) return HM_ERR_WORKSPACE_TOO_SMALL;
        hm_chroma_table(ex->chroma_fb, cfg->sample_rate, cfg->n_fft);
    }
    if (n.flux) {
        ex->prev_norm_mag = (float *)hm_arena_take(&arena, l.prev);
        if (arena.failed) return HM_ERR_WORKSPACE_TOO_SMALL;
    }
    if (arena.failed) return HM_ERR_WORKSPACE_TOO_SMALL;
    ex->initialized = 1;
    return hm_extractor_reset(ex);
}

hm_status hm_extractor_reset(hm_extractor *ex) {
    if (ex == NULL) return HM_ERR_NULL_ARGUMENT;
    if (!ex->initialized) return HM_ERR_NOT_INITIALIZED;
    /* The centre padding on the left is simply the first samples of frame 0. */
    memset(ex->frame, 0, (size_t)ex->cfg.n_fft * sizeof(float));
    ex->fill = ex->pad;
    ex->have_prev = 0;
    ex->frames_done = 0;
    ex->samples_in = 0;
    return HM_OK;
}

int hm_extractor_row_size(const hm_extractor *ex) {
    return (ex != NULL && ex->initialized) ? ex->row_size : 0;
}

int hm_extractor_offset(const hm_extractor *ex, hm_feature feature) {
    if (ex == NULL || !ex->initialized || (int)feature < 0 || feature >= HM_FEATURE_COUNT) return -1;
    return ex->offset[feature];
}

/* Where a feature goes: its place in the row, or a scratch array if it is
 * only an intermediate. */
static float *slot(const hm_extractor *ex, float *row, hm_feature f, float *scratch) {
    return ex->offset[f] >= 0 ? row + ex->offset[f] : scratch;
}

static void put(const hm_extractor *ex, float *row, hm_feature f, float value) {
    if (ex->offset[f] >= 0) row[ex->offset[f]] = value;
}

/* Compute every selected feature of the full frame buffer into row. */
static void emit_frame(hm_extractor *ex, float *row) {
    const hm_config *c = &ex->cfg;
    needs n = needs_of(c->features);
    int n_fft = c->n_fft, half = n_fft / 2, k;

    if (n.time) {
        /* Real samples of this frame, in frame coordinates: before them is
         * the left padding, after them (at flush) the right padding. */
        int64_t start = (int64_t)ex->frames_done * c->hop_length - ex->pad;
        int64_t lo = start < 0 ? -start : 0;
        int64_t hi = (int64_t)ex->samples_in - start;
        hm_time_values t;
        if (hi > n_fft) hi = n_fft;
        if (hi < lo) hi = lo;
        hm_time_stats(ex->frame, n_fft, (int)lo, (int)hi, &t);
        put(ex, row, HM_FEATURE_ZCR, t.zcr);
        put(ex, row, HM_FEATURE_RMS, t.rms);
        put(ex, row, HM_FEATURE_ENERGY_ENTROPY, t.energy_entropy);
    }
    if (n.spectrum) {
        hm_rfft_power(&ex->fft, ex->frame, ex->window, ex->power);
        if (n.magnitude) {
            const float *restrict power = ex->power;
            float *restrict mag = ex->magnitude;
            for (k = 0; k < ex->n_bins; ++k) mag[k] = sqrtf(power[k]);
        }
    }
    if (n.mel) {
        float *mel = slot(ex, row, HM_FEATURE_MEL, ex->mel_scratch);
        hm_mel_apply(&ex->mel, ex->power, mel);
        if (n.log_mel) {
            float *log_mel = slot(ex, row, HM_FEATURE_LOG_MEL, ex->log_mel_scratch);
            float amin = (float)c->amin;
            float ref_db = (float)(10.0 * log10(c->ref > c->amin ? c->ref : c->amin));
            for (k = 0; k < c->n_mels; ++k)
                log_mel[k] = 10.0f * log10f(mel[k] > amin ? mel[k] : amin) - ref_db;
            if (n.mfcc)
                hm_dct_apply(ex->dct, c->n_mels, c->n_mfcc, log_mel,
                             row + ex->offset[HM_FEATURE_MFCC]);
        }
    }
    if (n.chroma) hm_chroma_apply(ex->chroma_fb, ex->n_bins, ex->power, row + ex->offset[HM_FEATURE_CHROMA]);
    if (n.shape) {
        hm_shape_stats s;
        hm_spectral_shape(ex->magnitude, ex->n_bins, (double)c->sample_rate / (double)n_fft, &s);
        put(ex, row, HM_FEATURE_SPECTRAL_CENTROID, s.centroid);
        put(ex, row, HM_FEATURE_SPECTRAL_BANDWIDTH, s.bandwidth);
        put(ex, row, HM_FEATURE_SPECTRAL_ROLLOFF, s.rolloff);
    }
    if (n.flatness)
        put(ex, row, HM_FEATURE_SPECTRAL_FLATNESS, hm_spectral_flatness(ex->power, ex->n_bins, c->amin));
    if (n.flux) {
        put(ex, row, HM_FEATURE_SPECTRAL_FLUX,
            hm_spectral_flux(ex->magnitude, half, ex->prev_norm_mag, ex->have_prev));
        ex->have_prev = 1;
    }
    if (n.spec_entropy) put(ex, row, HM_FEATURE_SPECTRAL_ENTROPY, hm_spectral_entropy(ex->power, half));
}

/* After a frame: slide the buffer by one hop. */
static void advance(hm_extractor *ex) {
    int keep = ex->cfg.n_fft - ex->cfg.hop_length;
    if (keep > 0) memmove(ex->frame, ex->frame + ex->cfg.hop_length, (size_t)keep * sizeof(float));
    ex->fill = keep;
    ex->frames_done++;
}

/* The samples to append: float, 16-bit PCM, or padding zeros. */
typedef enum source_kind { SOURCE_F32, SOURCE_S16, SOURCE_ZEROS } source_kind;

static void copy_in(float *dst, const void *src, source_kind kind, size_t from, size_t count) {
    size_t i;
    if (kind == SOURCE_F32) {
        memcpy(dst, (const float *)src + from, count * sizeof(float));
    } else if (kind == SOURCE_S16) {
        const int16_t *s = (const int16_t *)src + from;
        for (i = 0; i < count; ++i) dst[i] = (float)s[i] * (1.0f / 32768.0f);
    } else {
        memset(dst, 0, count * sizeof(float));
    }
}

static hm_status feed(hm_extractor *ex, const void *samples, source_kind kind, size_t n_samples,
                      float *out, size_t max_rows, size_t *consumed, size_t *rows) {
    size_t taken = 0, written = 0;
    int n_fft = ex->cfg.n_fft;
    for (;;) {
        if (ex->fill == n_fft) {
            if (written == max_rows) break;
            emit_frame(ex, out + written * (size_t)ex->row_size);
            ++written;
            advance(ex);
            continue;
        }
        if (taken == n_samples) break;
        {
            size_t room = (size_t)(n_fft - ex->fill);
            size_t count = n_samples - taken < room ? n_samples - taken : room;
            copy_in(ex->frame + ex->fill, samples, kind, taken, count);
            ex->fill += (int)count;
            taken += count;
            if (kind != SOURCE_ZEROS) ex->samples_in += count;
        }
    }
    if (consumed != NULL) *consumed = taken;
    if (rows != NULL) *rows = written;
    return HM_OK;
}

static hm_status check_push(const hm_extractor *ex, const void *samples, size_t n_samples,
                            const float *out, size_t max_rows) {
    if (ex == NULL) return HM_ERR_NULL_ARGUMENT;
    if (!ex->initialized) return HM_ERR_NOT_INITIALIZED;
    if ((samples == NULL && n_samples > 0) || (out == NULL && max_rows > 0))
        return HM_ERR_NULL_ARGUMENT;
    return HM_OK;
}

hm_status hm_extractor_push(hm_extractor *ex, const float *samples, size_t n_samples, float *out,
                            size_t max_rows, size_t *consumed, size_t *rows) {
    hm_status st = check_push(ex, samples, n_samples, out, max_rows);
    if (st != HM_OK) return st;
    return feed(ex, samples, SOURCE_F32, n_samples, out, max_rows, consumed, rows);
}

hm_status hm_extractor_push_s16(hm_extractor *ex, const int16_t *samples, size_t n_samples,
                                float *out, size_t max_rows, size_t *consumed, size_t *rows) {
    hm_status st = check_push(ex, samples, n_samples, out, max_rows);
    if (st != HM_OK) return st;
    return feed(ex, samples, SOURCE_S16, n_samples, out, max_rows, consumed, rows);
}

size_t hm_extractor_rows_for(const hm_extractor *ex, size_t n_samples) {
    size_t total;
    if (ex == NULL || !ex->initialized) return 0;
    total = (size_t)ex->fill + n_samples;
    if (total < (size_t)ex->cfg.n_fft) return 0;
    return 1u + (total - (size_t)ex->cfg.n_fft) / (size_t)ex->cfg.hop_length;
}

size_t hm_extractor_flush_rows(const hm_extractor *ex) {
    if (ex == NULL || !ex->initialized || !ex->cfg.center || ex->samples_in == 0) return 0;
    return hm_frame_count(&ex->cfg, ex->samples_in) - (size_t)ex->frames_done;
}

hm_status hm_extractor_flush(hm_extractor *ex, float *out, size_t max_rows, size_t *rows) {
    size_t need, written = 0;
    if (ex == NULL) return HM_ERR_NULL_ARGUMENT;
    if (!ex->initialized) return HM_ERR_NOT_INITIALIZED;
    need = hm_extractor_flush_rows(ex);
    if (need > max_rows) return HM_ERR_OUTPUT_TOO_SMALL;
    if (need > 0 && out == NULL) return HM_ERR_NULL_ARGUMENT;
    if (need > 0) {
        size_t consumed;
        /* The right padding: n_fft / 2 zeros complete exactly the frames left. */
        feed(ex, NULL, SOURCE_ZEROS, (size_t)ex->pad, out, need, &consumed, &written);
    }
    if (rows != NULL) *rows = written;
    return hm_extractor_reset(ex);
}
