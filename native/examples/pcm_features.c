/*
 * pcm_features.c — the harmonies core as firmware would use it.
 *
 * Reads raw little-endian signed 16-bit mono PCM from stdin, computes
 * feature rows with the streaming extractor, and writes them to stdout as
 * CSV: a header line naming the columns (mfcc_0..mfcc_19, zcr, rms, ...),
 * then one line per frame. At end of input it flushes the last frames and
 * prints its memory footprint to stderr.
 *
 *     pcm_features [--rate N] [--features frame_vector|all|log_mel]
 *                  [--n-fft N] [--hop N] [--n-mels N] < audio.s16le > rows.csv
 *
 *     e.g. arecord -f S16_LE -c 1 -r 22050 -t raw | pcm_features > rows.csv
 *          sox in.wav -t raw -e signed -b 16 -c 1 -r 22050 - | pcm_features
 *
 * Memory: everything lives in static buffers sized at compile time; there
 * is no malloc anywhere. The extractor's tables and state go in
 * `workspace` (PCM_WORKSPACE_BYTES, 96 KiB by default: enough for
 * n_fft 1024 with every feature, or n_fft 2048 with the frame vector); the
 * program checks hm_extractor_workspace_size() against it before init,
 * refuses a configuration that does not fit, and prints what it used at
 * exit. Override the sizes with -DPCM_WORKSPACE_BYTES=... and
 * -DPCM_OUT_FLOATS=....
 *
 * The streaming contract in use: each block read is pushed; a push that
 * fills the row buffer stops early and reports how many samples it took,
 * so the rows are written out and the rest of the block pushed again. The
 * rows are the same, bit for bit, as a batch run over the whole input.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harmonies/harmonies.h"

#ifndef PCM_WORKSPACE_BYTES
#define PCM_WORKSPACE_BYTES (96u * 1024u)
#endif
#ifndef PCM_OUT_FLOATS
#define PCM_OUT_FLOATS (16u * 1024u) /* 64 KiB of output rows */
#endif
#ifndef PCM_BLOCK_SAMPLES
#define PCM_BLOCK_SAMPLES 512u /* samples read per block (1 KiB of PCM) */
#endif

/* ------------------------------------------------------------------------ */
/* The fixed memory map                                                      */
/* ------------------------------------------------------------------------ */

static unsigned char workspace[PCM_WORKSPACE_BYTES]; /* extractor tables and state */
static float rows[PCM_OUT_FLOATS];                   /* feature rows, before printing */
static unsigned char raw[PCM_BLOCK_SAMPLES * 2u];    /* bytes as read */
static int16_t pcm[PCM_BLOCK_SAMPLES];               /* the same, as samples */
static hm_extractor extractor;

static const char *program = "pcm_features";

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct options {
    int rate, n_fft, hop, n_mels;
    const char *features; /* frame_vector | all | log_mel */
} options;

static void usage(FILE *to) {
    fprintf(to,
            "usage: %s [--rate N] [--features frame_vector|all|log_mel]\n"
            "       %*s [--n-fft N] [--hop N] [--n-mels N] < pcm.s16le > rows.csv\n"
            "\n"
            "Reads raw little-endian 16-bit mono PCM from stdin and writes one CSV line\n"
            "of features per frame to stdout (a header line first).\n"
            "\n"
            "  --rate N        sample rate of the input in Hz (default 22050)\n"
            "  --features SET  frame_vector: 20 MFCC, zcr, rms, centroid, bandwidth,\n"
            "                  rolloff, flatness, flux, spectral entropy (default);\n"
            "                  log_mel: n_mels log-mel values; all: every feature\n"
            "  --n-fft N       FFT size, a power of two in 256..4096 (default 1024)\n"
            "  --hop N         samples between frames, 1..n_fft (default n_fft / 2)\n"
            "  --n-mels N      mel bands (default 64); MFCCs: min(20, n_mels)\n"
            "\n"
            "Frames are centred (librosa center=True, zero padding); mel bands span\n"
            "0..rate/2 Hz. Memory is static: %u bytes of workspace, %u bytes of rows.\n",
            program, (int)strlen(program), "", (unsigned)PCM_WORKSPACE_BYTES,
            (unsigned)(PCM_OUT_FLOATS * sizeof(float)));
}

/* A whole decimal int in [lo, hi], else 0 and a message. */
static int parse_int(const char *name, const char *text, int lo, int hi, int *out) {
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "%s: %s must be an integer in %d..%d, got '%s'\n", program, name, lo, hi,
                text);
        return 0;
    }
    *out = (int)v;
    return 1;
}

/* 1 on success, 0 on a bad command line, -1 for --help. */
static int parse_options(int argc, char **argv, options *o) {
    int i, hop_given = 0;
    o->rate = 22050;
    o->n_fft = 1024;
    o->hop = 0;
    o->n_mels = 64;
    o->features = "frame_vector";
    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return -1;
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: unknown option or missing value: '%s'\n", program, a);
            return 0;
        }
        if (strcmp(a, "--rate") == 0) {
            if (!parse_int("--rate", argv[++i], HM_MIN_SAMPLE_RATE, HM_MAX_SAMPLE_RATE, &o->rate))
                return 0;
        } else if (strcmp(a, "--n-fft") == 0) {
            if (!parse_int("--n-fft", argv[++i], HM_MIN_FFT, HM_MAX_FFT, &o->n_fft)) return 0;
        } else if (strcmp(a, "--hop") == 0) {
            if (!parse_int("--hop", argv[++i], 1, HM_MAX_FFT, &o->hop)) return 0;
            hop_given = 1;
        } else if (strcmp(a, "--n-mels") == 0) {
            if (!parse_int("--n-mels", argv[++i], 1, HM_MAX_MELS, &o->n_mels)) return 0;
        } else if (strcmp(a, "--features") == 0) {
            o->features = argv[++i];
            if (strcmp(o->features, "frame_vector") != 0 && strcmp(o->features, "all") != 0 &&
                strcmp(o->features, "log_mel") != 0) {
                fprintf(stderr, "%s: --features must be frame_vector, all or log_mel, got '%s'\n",
                        program, o->features);
                return 0;
            }
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n", program, a);
            return 0;
        }
    }
    if (!hop_given) o->hop = o->n_fft / 2;
    return 1;
}

static void make_config(const options *o, hm_config *cfg) {
    hm_config_default(cfg);
    cfg->sample_rate = o->rate;
    cfg->n_fft = o->n_fft;
    cfg->win_length = o->n_fft;
    cfg->hop_length = o->hop;
    cfg->n_mels = o->n_mels;
    cfg->fmax = 0.5 * (double)o->rate;
    cfg->n_mfcc = o->n_mels < 20 ? o->n_mels : 20;
    if (strcmp(o->features, "all") == 0)
        cfg->features = HM_FEATURES_ALL;
    else if (strcmp(o->features, "log_mel") == 0)
        cfg->features = HM_FEATURE_BIT(HM_FEATURE_LOG_MEL);
    else
        cfg->features = HM_FEATURES_FRAME_VECTOR;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

static void write_header(const hm_config *cfg) {
    int f, i, first = 1;
    for (f = 0; f < HM_FEATURE_COUNT; ++f) {
        int size = hm_feature_size(cfg, (hm_feature)f);
        const char *name = hm_feature_name((hm_feature)f);
        for (i = 0; i < size; ++i) {
            if (!first) putchar(',');
            first = 0;
            if (size == 1)
                fputs(name, stdout);
            else
                printf("%s_%d", name, i);
        }
    }
    putchar('\n');
}

/* %.9g: enough digits to read every float back exactly. */
static void write_rows(const float *r, size_t n_rows, int row_size) {
    size_t t;
    int k;
    for (t = 0; t < n_rows; ++t) {
        const float *row = r + t * (size_t)row_size;
        for (k = 0; k < row_size; ++k) printf(k ? ",%.9g" : "%.9g", (double)row[k]);
        putchar('\n');
    }
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    options opt;
    hm_config cfg;
    hm_status st;
    size_t need = 0, row_capacity, flush_bound, carry = 0, samples_read = 0, frames = 0;
    int row_size, parsed;

    if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
        const char *slash = strrchr(argv[0], '/');
        program = slash != NULL ? slash + 1 : argv[0];
    }
    parsed = parse_options(argc, argv, &opt);
    if (parsed < 0) {
        usage(stdout);
        return 0;
    }
    if (parsed == 0) {
        usage(stderr);
        return 2;
    }
    make_config(&opt, &cfg);

    /* Size first, then init in the static buffer. */
    st = hm_extractor_workspace_size(&cfg, &need);
    if (st != HM_OK) {
        fprintf(stderr, "%s: invalid configuration: %s\n", program, hm_strerror(st));
        return 2;
    }
    if (need > sizeof workspace) {
        fprintf(stderr,
                "%s: this configuration needs %lu bytes of workspace, the static buffer has %lu;\n"
                "  use fewer features or a smaller --n-fft, or rebuild with "
                "-DPCM_WORKSPACE_BYTES=%lu\n",
                program, (unsigned long)need, (unsigned long)sizeof workspace,
                (unsigned long)need);
        return 2;
    }
    st = hm_extractor_init(&extractor, &cfg, workspace, sizeof workspace);
    if (st != HM_OK) {
        fprintf(stderr, "%s: init failed: %s\n", program, hm_strerror(st));
        return 2;
    }
    row_size = hm_extractor_row_size(&extractor);
    row_capacity = (size_t)PCM_OUT_FLOATS / (size_t)row_size;
    /* Flush must write all its rows in one call: with the pending frames
     * drained first (below), at most (n_fft/2)/hop + 1 of them. */
    flush_bound = (size_t)(cfg.n_fft / 2 / cfg.hop_length) + 1u;
    if (row_capacity < flush_bound) {
        fprintf(stderr,
                "%s: the row buffer holds %lu rows of %d values, but flush may need %lu;\n"
                "  use a larger --hop or rebuild with a larger -DPCM_OUT_FLOATS\n",
                program, (unsigned long)row_capacity, row_size, (unsigned long)flush_bound);
        return 2;
    }

    write_header(&cfg);

    for (;;) {
        size_t got = fread(raw + carry, 1, sizeof raw - carry, stdin);
        size_t bytes = carry + got, n = bytes / 2u, i, done = 0;
        if (got == 0) break; /* EOF (or a read error, reported below) */
        /* Little-endian, whatever the host's byte order. */
        for (i = 0; i < n; ++i)
            pcm[i] = (int16_t)(uint16_t)((unsigned)raw[2 * i] | ((unsigned)raw[2 * i + 1] << 8));
        carry = bytes % 2u;
        if (carry) raw[0] = raw[bytes - 1];
        samples_read += n;
        while (done < n) {
            size_t consumed = 0, n_rows = 0;
            st = hm_extractor_push_s16(&extractor, pcm + done, n - done, rows, row_capacity,
                                       &consumed, &n_rows);
            if (st != HM_OK) {
                fprintf(stderr, "%s: push failed: %s\n", program, hm_strerror(st));
                return 1;
            }
            write_rows(rows, n_rows, row_size);
            frames += n_rows;
            done += consumed;
        }
    }
    if (ferror(stdin)) {
        fprintf(stderr, "%s: error reading stdin\n", program);
        return 1;
    }
    if (carry) fprintf(stderr, "%s: ignored a trailing odd byte of input\n", program);

    /* End of signal: drain a frame left pending by a full row buffer, then
     * flush the frames that need the end padding. */
    {
        size_t consumed = 0, n_rows = 0;
        st = hm_extractor_push_s16(&extractor, NULL, 0, rows, row_capacity, &consumed, &n_rows);
        if (st == HM_OK) {
            write_rows(rows, n_rows, row_size);
            frames += n_rows;
            st = hm_extractor_flush(&extractor, rows, row_capacity, &n_rows);
        }
        if (st != HM_OK) {
            fprintf(stderr, "%s: flush failed: %s\n", program, hm_strerror(st));
            return 1;
        }
        write_rows(rows, n_rows, row_size);
        frames += n_rows;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: error writing stdout\n", program);
        return 1;
    }

    fprintf(stderr,
            "%s: %d Hz, n_fft %d, hop %d, %d mels, features %s: %d values per row\n"
            "%s: workspace needed %lu bytes (static buffer %lu bytes)\n"
            "%s: sizeof(hm_extractor) %lu bytes; row buffer %lu bytes (%lu rows); "
            "input buffers %lu bytes\n"
            "%s: %lu samples read, %lu frames written\n",
            program, cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.n_mels, opt.features,
            row_size, program, (unsigned long)need, (unsigned long)sizeof workspace, program,
            (unsigned long)sizeof(hm_extractor), (unsigned long)sizeof rows,
            (unsigned long)row_capacity, (unsigned long)(sizeof raw + sizeof pcm), program,
            (unsigned long)samples_read, (unsigned long)frames);
    return 0;
}
