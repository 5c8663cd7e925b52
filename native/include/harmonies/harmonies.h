/*
 * harmonies.h — the public C API of the harmonies feature core.
 *
 * One header, C99, no allocation: every object here lives in memory that the
 * caller provides. The usual sequence is
 *
 *     hm_config cfg;
 *     hm_config_default(&cfg);              // librosa's defaults at 22050 Hz
 *     size_t need;
 *     hm_extractor_workspace_size(&cfg, &need);
 *     static unsigned char mem[65536];      // or malloc(need), or a linker section
 *     hm_extractor ex;
 *     hm_extractor_init(&ex, &cfg, mem, sizeof mem);
 *     ... hm_extractor_push(&ex, pcm, n, rows, max_rows, &used, &n_rows) ...
 *     ... hm_extractor_flush(&ex, rows, max_rows, &n_rows) ...
 *
 * Ownership: an initialised object keeps pointers into the workspace handed
 * to its init function; that memory must outlive the object and must not be
 * shared with another object. Nothing else is retained: input samples and
 * output rows are read or written during the call only.
 *
 * Threads: objects are not internally locked. Distinct objects may be used
 * from distinct threads concurrently; one object from one thread at a time.
 *
 * Errors: functions that can fail return an hm_status; hm_strerror() gives
 * its message. A failed init leaves the object marked uninitialised, safe to
 * init again. Nothing in this library aborts, prints or allocates.
 */
#ifndef HARMONIES_H
#define HARMONIES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HM_VERSION_MAJOR 0
#define HM_VERSION_MINOR 1
#define HM_VERSION_PATCH 0

/* ------------------------------------------------------------------------ */
/* Status codes                                                              */
/* ------------------------------------------------------------------------ */

typedef enum hm_status {
    HM_OK = 0,
    HM_ERR_NULL_ARGUMENT,       /* a required pointer was NULL */
    HM_ERR_SAMPLE_RATE,         /* sample_rate outside [HM_MIN_SAMPLE_RATE, HM_MAX_SAMPLE_RATE] */
    HM_ERR_N_FFT,               /* n_fft not a power of two in [HM_MIN_FFT, HM_MAX_FFT] */
    HM_ERR_WIN_LENGTH,          /* win_length not in [1, n_fft] */
    HM_ERR_HOP_LENGTH,          /* hop_length not in [1, n_fft] */
    HM_ERR_FMIN,                /* fmin negative, not finite, or not below fmax */
    HM_ERR_FMAX,                /* fmax above sample_rate / 2 or not finite */
    HM_ERR_N_MELS,              /* n_mels outside [1, HM_MAX_MELS] */
    HM_ERR_EMPTY_MEL_FILTER,    /* a mel band falls between FFT bins: too many
                                   bands for this n_fft (librosa warns
                                   "Empty filters detected") */
    HM_ERR_N_MFCC,              /* n_mfcc outside [1, n_mels] */
    HM_ERR_DB_PARAMS,           /* amin below 1e-30 or not finite, ref not positive and finite */
    HM_ERR_FEATURES,            /* no feature selected, or an unknown bit set */
    HM_ERR_WORKSPACE_TOO_SMALL, /* the memory handed to init is too small */
    HM_ERR_NOT_INITIALIZED,     /* the object was never initialised, or its init failed */
    HM_ERR_OUTPUT_TOO_SMALL,    /* flush needs room for more rows than given */
    HM_STATUS_COUNT
} hm_status;

/* A static, NUL-terminated English message for a status. Never NULL. */
const char *hm_strerror(hm_status status);

/* ------------------------------------------------------------------------ */
/* Limits                                                                    */
/* ------------------------------------------------------------------------ */

#define HM_MIN_FFT 256
#define HM_MAX_FFT 4096
#define HM_MIN_SAMPLE_RATE 1000
#define HM_MAX_SAMPLE_RATE 768000
#define HM_MAX_MELS 512
#define HM_N_CHROMA 12
/* Number of sub-blocks in the pyAudioAnalysis entropy features. */
#define HM_ENTROPY_BLOCKS 10

/* ------------------------------------------------------------------------ */
/* Features                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Feature identifiers, in the order their values appear in an output row.
 * The first nine, in this order, form the frame vector used by sequence
 * models: n_mfcc MFCCs then zcr, rms, centroid, bandwidth, rolloff,
 * flatness, flux and spectral entropy.
 */
typedef enum hm_feature {
    HM_FEATURE_MFCC = 0,           /* n_mfcc values: DCT-II (orthonormal) of log_mel */
    HM_FEATURE_ZCR,                /* librosa zero_crossing_rate, frame_length = n_fft */
    HM_FEATURE_RMS,                /* librosa rms, frame_length = n_fft */
    HM_FEATURE_SPECTRAL_CENTROID,  /* librosa spectral_centroid (magnitude), Hz */
    HM_FEATURE_SPECTRAL_BANDWIDTH, /* librosa spectral_bandwidth, p = 2, Hz */
    HM_FEATURE_SPECTRAL_ROLLOFF,   /* librosa spectral_rolloff, roll_percent = 0.85, Hz */
    HM_FEATURE_SPECTRAL_FLATNESS,  /* librosa spectral_flatness (power, amin) */
    HM_FEATURE_SPECTRAL_FLUX,      /* pyAudioAnalysis spectral_flux */
    HM_FEATURE_SPECTRAL_ENTROPY,   /* pyAudioAnalysis spectral_entropy */
    HM_FEATURE_MEL,                /* n_mels values: librosa melspectrogram (power) */
    HM_FEATURE_LOG_MEL,            /* n_mels values: power_to_db(mel), no top_db */
    HM_FEATURE_CHROMA,             /* 12 values: librosa chroma_stft, tuning = 0 */
    HM_FEATURE_ENERGY_ENTROPY,     /* pyAudioAnalysis energy_entropy */
    HM_FEATURE_COUNT
} hm_feature;

#define HM_FEATURE_BIT(f) (1u << (unsigned)(f))
/* The frame vector: MFCC .. spectral entropy, contiguous in this order. */
#define HM_FEATURES_FRAME_VECTOR 0x1FFu
#define HM_FEATURES_ALL ((1u << HM_FEATURE_COUNT) - 1u)

/* The feature's name as used by the Python API ("mfcc", "zcr", ...), or NULL. */
const char *hm_feature_name(hm_feature feature);

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

typedef struct hm_config {
    int sample_rate;   /* Hz */
    int n_fft;         /* FFT size: a power of two in [256, 4096] */
    int win_length;    /* periodic Hann of this length, centred in n_fft */
    int hop_length;    /* samples between frame starts, 1..n_fft */
    int center;        /* nonzero: frame t is centred on sample t*hop_length,
                          the signal zero-padded by n_fft/2 on both sides
                          (librosa center=True, pad_mode="constant") */
    int n_mels;        /* mel bands */
    double fmin;       /* lowest mel band edge, Hz */
    double fmax;       /* highest mel band edge, Hz, <= sample_rate / 2 */
    int htk;           /* nonzero: HTK mel scale; zero: Slaney. Area norm is
                          Slaney's in both cases, as librosa's default */
    int n_mfcc;        /* MFCCs per frame, <= n_mels */
    double amin;       /* dB floor: 10*log10(max(amin, x)) - 10*log10(max(amin, ref)) */
    double ref;        /* dB reference */
    uint32_t features; /* HM_FEATURE_BIT(...) mask of the features to compute */
} hm_config;

/* Fill with the defaults: 22050 Hz, n_fft 1024, hop 512, centred, 64 Slaney
 * mel bands over 0..11025 Hz, 20 MFCCs, amin 1e-10, ref 1, all features. */
void hm_config_default(hm_config *cfg);

/* HM_OK if the configuration is usable, else the first problem found. */
hm_status hm_config_validate(const hm_config *cfg);

/* Number of values of one feature in a row under this config (0 if not selected). */
int hm_feature_size(const hm_config *cfg, hm_feature feature);

/* Frames a whole signal of n_samples gives in batch (librosa's count):
 * centred: 1 + n_samples / hop_length (0 for an empty signal);
 * not centred: 1 + (n_samples - n_fft) / hop_length, or 0 if shorter. */
size_t hm_frame_count(const hm_config *cfg, uint64_t n_samples);

/* ------------------------------------------------------------------------ */
/* Window                                                                    */
/* ------------------------------------------------------------------------ */

/* Periodic Hann of win_length, zero-padded to n_fft and centred (librosa's
 * get_window("hann", win_length) padded by pad_center). out: n_fft floats. */
hm_status hm_window_hann(float *out, int win_length, int n_fft);

/* ------------------------------------------------------------------------ */
/* Real FFT                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct hm_fft {
    int n;              /* real FFT size */
    int half;           /* n / 2: size of the inner complex FFT */
    uint16_t *bitrev;   /* half entries */
    double *tw_re;      /* half entries: stage twiddles, index h + j */
    double *tw_im;
    double *post_re;    /* half + 1 entries: exp(-2 pi i k / n) */
    double *post_im;
    double *work_re;    /* half + 1 entries: scratch */
    double *work_im;
    double *work_power; /* half + 1 entries: scratch */
    int initialized;
} hm_fft;

/* Bytes of workspace hm_fft_init needs for size n (0 if n is not allowed). */
size_t hm_fft_workspace_size(int n);

/* Prepare an FFT of size n (power of two, HM_MIN_FFT..HM_MAX_FFT) in mem. */
hm_status hm_fft_init(hm_fft *fft, int n, void *mem, size_t mem_len);

/* Forward real FFT: in[n] -> re[n/2 + 1], im[n/2 + 1], unnormalised
 * (X[k] = sum_t x[t] exp(-2 pi i k t / n)), computed in double precision
 * and rounded to float at the end. Uses the object's scratch, so
 * one call at a time per object. in may alias neither re nor im. */
void hm_rfft(hm_fft *fft, const float *in, float *re, float *im);

/* Inverse of hm_rfft, scaled by 1/n so that hm_irfft(hm_rfft(x)) == x:
 * re[n/2 + 1], im[n/2 + 1] -> out[n]. The imaginary parts of bins 0 and n/2
 * are ignored. */
void hm_irfft(hm_fft *fft, const float *re, const float *im, float *out);

/* ------------------------------------------------------------------------ */
/* Mel filterbank                                                            */
/* ------------------------------------------------------------------------ */

/* Hz -> mel and back, Slaney (htk = 0) or HTK (htk != 0), as librosa. */
double hm_hz_to_mel(double hz, int htk);
double hm_mel_to_hz(double mel, int htk);

typedef struct hm_mel {
    int n_mels;
    int n_bins;         /* n_fft / 2 + 1 */
    int32_t *start;     /* n_mels: first nonzero bin of each band */
    int32_t *length;    /* n_mels: nonzero bins of each band */
    int32_t *offset;    /* n_mels: index of the band's first weight */
    float *weights;     /* the nonzero weights, band after band */
    int initialized;
} hm_mel;

/* Bytes of workspace for this filterbank; 0 if the parameters are invalid. */
size_t hm_mel_workspace_size(int sample_rate, int n_fft, int n_mels, double fmin,
                             double fmax, int htk);

/* Build the filterbank librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax,
 * htk, norm="slaney") computes, stored sparsely. Refuses a bank with an
 * empty band (HM_ERR_EMPTY_MEL_FILTER). */
hm_status hm_mel_init(hm_mel *mel, int sample_rate, int n_fft, int n_mels, double fmin,
                      double fmax, int htk, void *mem, size_t mem_len);

/* power[n_bins] -> out[n_mels]: out[m] = sum_k weight[m][k] * power[k]. */
void hm_mel_apply(const hm_mel *mel, const float *power, float *out);

/* Dense weight of band m at bin k (0 outside its support); for tests. */
float hm_mel_weight(const hm_mel *mel, int m, int k);

/* ------------------------------------------------------------------------ */
/* Extractor: framing, window, FFT and every feature, streaming             */
/* ------------------------------------------------------------------------ */

typedef struct hm_extractor {
    hm_config cfg;
    int n_bins;                  /* n_fft / 2 + 1 */
    int row_size;                /* floats per output row */
    int offset[HM_FEATURE_COUNT];/* row offset of each feature, -1 if not selected */
    int pad;                     /* centre padding (n_fft / 2) or 0 */
    hm_fft fft;
    hm_mel mel;
    float *frame;                /* n_fft: the samples of the frame being filled */
    int fill;                    /* samples in frame */
    double *window;              /* n_fft, double (see fft.c), in the FFT's packing order */
    float *power, *magnitude;    /* n_bins */
    float *mel_scratch;          /* n_mels */
    float *log_mel_scratch;      /* n_mels */
    float *dct;                  /* n_mels x n_mfcc, transposed DCT-II matrix */
    float *chroma_fb;            /* n_bins x 12, transposed chroma filterbank */
    float *prev_norm_mag;        /* n_fft / 2: previous frame's normalised magnitude */
    int have_prev;
    uint64_t frames_done;        /* frames emitted since reset */
    uint64_t samples_in;         /* real samples pushed since reset */
    int initialized;
} hm_extractor;

/* Bytes of workspace hm_extractor_init needs for cfg (validated first). */
hm_status hm_extractor_workspace_size(const hm_config *cfg, size_t *size);

/* Validate cfg, build every table in mem (nothing is allocated later) and
 * reset. mem needs no particular alignment. */
hm_status hm_extractor_init(hm_extractor *ex, const hm_config *cfg, void *mem,
                            size_t mem_len);

/* Floats per output row; the selected features in hm_feature order. */
int hm_extractor_row_size(const hm_extractor *ex);

/* Row offset of a feature, or -1 if it is not selected. */
int hm_extractor_offset(const hm_extractor *ex, hm_feature feature);

/*
 * Streaming contract.
 *
 * push: takes samples (any count, including 0 and 1) and writes one row of
 * hm_extractor_row_size() floats to out for each frame the new samples
 * complete, at most max_rows rows. *consumed receives how many samples were
 * taken (all of them unless the row limit was reached: call again with the
 * rest), *rows how many rows were written. Sizing out with
 * hm_extractor_rows_for(ex, n_samples) rows guarantees everything is taken.
 *
 * flush: the signal has ended. Emits the remaining frames that depend on
 * the end padding (centred mode; none otherwise), then resets the extractor
 * for a new signal. out must have room for hm_extractor_flush_rows(ex)
 * rows, else HM_ERR_OUTPUT_TOO_SMALL and nothing changes.
 *
 * The rows of push followed by flush are identical, bit for bit, whatever
 * the sizes of the pushed blocks, and equal the batch frames (librosa's
 * framing: hm_frame_count() rows for the whole signal).
 *
 * push_s16 is push for 16-bit PCM, scaled by 1/32768 to [-1, 1).
 */
hm_status hm_extractor_push(hm_extractor *ex, const float *samples, size_t n_samples,
                            float *out, size_t max_rows, size_t *consumed, size_t *rows);
hm_status hm_extractor_push_s16(hm_extractor *ex, const int16_t *samples, size_t n_samples,
                                float *out, size_t max_rows, size_t *consumed,
                                size_t *rows);
hm_status hm_extractor_flush(hm_extractor *ex, float *out, size_t max_rows, size_t *rows);

/* Rows a push of n_samples more samples would write (with room for all). */
size_t hm_extractor_rows_for(const hm_extractor *ex, size_t n_samples);

/* Rows the next flush will write. */
size_t hm_extractor_flush_rows(const hm_extractor *ex);

/* Forget all pushed samples; the next push starts a new signal. */
hm_status hm_extractor_reset(hm_extractor *ex);

#ifdef __cplusplus
}
#endif

#endif /* HARMONIES_H */
