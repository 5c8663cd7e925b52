/* Status messages, feature names and configuration checks. */
#include "harmonies/harmonies.h"
#include "internal.h"

#include <math.h>

static const char *const status_messages[HM_STATUS_COUNT] = {
    "ok",
    "a required pointer argument is NULL",
    "sample_rate is outside the supported range 1000..768000 Hz",
    "n_fft must be a power of two between 256 and 4096",
    "win_length must be between 1 and n_fft",
    "hop_length must be between 1 and n_fft",
    "fmin must be finite, >= 0 and below fmax",
    "fmax must be finite and at most sample_rate / 2 (the Nyquist frequency)",
    "n_mels must be between 1 and 512",
    "empty mel filter: some mel bands fall between FFT bins; use fewer n_mels or a larger n_fft",
    "n_mfcc must be between 1 and n_mels",
    "amin must be finite and >= 1e-30, ref positive and finite",
    "features must select at least one known feature",
    "the workspace given to init is smaller than the *_workspace_size() it needs",
    "the object is not initialised (never initialised, or its init failed)",
    "the output buffer has room for fewer rows than flush must write",
};

const char *hm_strerror(hm_status status) {
    if ((int)status < 0 || status >= HM_STATUS_COUNT) return "unknown status code";
    return status_messages[status];
}

static const char *const feature_names[HM_FEATURE_COUNT] = {
    "mfcc",
    "zcr",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "spectral_rolloff",
    "spectral_flatness",
    "spectral_flux",
    "spectral_entropy",
    "mel",
    "log_mel",
    "chroma",
    "energy_entropy",
};

const char *hm_feature_name(hm_feature feature) {
    if ((int)feature < 0 || feature >= HM_FEATURE_COUNT) return NULL;
    return feature_names[feature];
}

void hm_config_default(hm_config *cfg) {
    if (cfg == NULL) return;
    cfg->sample_rate = 22050;
    cfg->n_fft = 1024;
    cfg->win_length = 1024;
    cfg->hop_length = 512;
    cfg->center = 1;
    cfg->n_mels = 64;
    cfg->fmin = 0.0;
    cfg->fmax = 11025.0;
    cfg->htk = 0;
    cfg->n_mfcc = 20;
    cfg->amin = 1e-10;
    cfg->ref = 1.0;
    cfg->features = HM_FEATURES_ALL;
}

hm_status hm_config_validate(const hm_config *cfg) {
    if (cfg == NULL) return HM_ERR_NULL_ARGUMENT;
    if (cfg->sample_rate < HM_MIN_SAMPLE_RATE || cfg->sample_rate > HM_MAX_SAMPLE_RATE)
        return HM_ERR_SAMPLE_RATE;
    if (!hm_is_pow2(cfg->n_fft) || cfg->n_fft < HM_MIN_FFT || cfg->n_fft > HM_MAX_FFT)
        return HM_ERR_N_FFT;
    if (cfg->win_length < 1 || cfg->win_length > cfg->n_fft) return HM_ERR_WIN_LENGTH;
    if (cfg->hop_length < 1 || cfg->hop_length > cfg->n_fft) return HM_ERR_HOP_LENGTH;
    if (!isfinite(cfg->fmax) || cfg->fmax > 0.5 * cfg->sample_rate || cfg->fmax <= 0.0)
        return HM_ERR_FMAX;
    if (!isfinite(cfg->fmin) || cfg->fmin < 0.0 || cfg->fmin >= cfg->fmax) return HM_ERR_FMIN;
    if (cfg->n_mels < 1 || cfg->n_mels > HM_MAX_MELS) return HM_ERR_N_MELS;
    if (cfg->n_mfcc < 1 || cfg->n_mfcc > cfg->n_mels) return HM_ERR_N_MFCC;
    /* amin stays a normal float: the flatness products rely on it. */
    if (!isfinite(cfg->amin) || !(cfg->amin >= 1e-30) || !isfinite(cfg->ref) || !(cfg->ref > 0.0))
        return HM_ERR_DB_PARAMS;
    if (cfg->features == 0u || (cfg->features & ~(uint32_t)HM_FEATURES_ALL) != 0u)
        return HM_ERR_FEATURES;
    return HM_OK;
}

int hm_feature_size(const hm_config *cfg, hm_feature feature) {
    if (cfg == NULL || (int)feature < 0 || feature >= HM_FEATURE_COUNT) return 0;
    if ((cfg->features & HM_FEATURE_BIT(feature)) == 0u) return 0;
    switch (feature) {
    case HM_FEATURE_MFCC: return cfg->n_mfcc;
    case HM_FEATURE_MEL:
    case HM_FEATURE_LOG_MEL: return cfg->n_mels;
    case HM_FEATURE_CHROMA: return HM_N_CHROMA;
    default: return 1;
    }
}

size_t hm_frame_count(const hm_config *cfg, uint64_t n_samples) {
    if (cfg == NULL || cfg->hop_length < 1 || n_samples == 0) return 0;
    if (cfg->center) return (size_t)(1u + n_samples / (uint64_t)cfg->hop_length);
    if (n_samples < (uint64_t)cfg->n_fft) return 0;
    return (size_t)(1u + (n_samples - (uint64_t)cfg->n_fft) / (uint64_t)cfg->hop_length);
}
