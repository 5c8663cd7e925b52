// pyharmonies._native — the thin pybind11 binding over the C core.
//
// It owns native state RAII-style, converts buffers (float32 as is, float64
// converted, int16 PCM scaled to [-1, 1)), releases the GIL while computing
// and maps hm_status codes to exceptions. Defaults, config validation
// messages and docstrings for users live in pyharmonies.features.
//
// Threads: each Extractor has a mutex, and the lock order is mutex, then
// GIL. A thread never waits for the mutex while holding the GIL (see
// Extractor::lock), so the holder of the mutex, which drops the GIL while
// computing, can always get it back.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include "harmonies/harmonies.h"
}

namespace py = pybind11;

namespace {

[[noreturn]] void raise_status(hm_status st) {
    throw py::value_error(std::string("invalid feature configuration: ") + hm_strerror(st));
}

hm_config make_config(int sample_rate, int n_fft, int win_length, int hop_length, bool center,
                      int n_mels, double fmin, double fmax, bool htk, int n_mfcc, double amin,
                      double ref, uint32_t features) {
    hm_config c;
    c.sample_rate = sample_rate;
    c.n_fft = n_fft;
    c.win_length = win_length;
    c.hop_length = hop_length;
    c.center = center ? 1 : 0;
    c.n_mels = n_mels;
    c.fmin = fmin;
    c.fmax = fmax;
    c.htk = htk ? 1 : 0;
    c.n_mfcc = n_mfcc;
    c.amin = amin;
    c.ref = ref;
    c.features = features;
    return c;
}

// A signal as the core wants it: float32 samples or int16 PCM.
struct Signal {
    py::array keep;              // keeps the source buffer alive
    const float *f32 = nullptr;  // float32 view, borrowed or converted
    const int16_t *s16 = nullptr;
    size_t size = 0;
    std::vector<float> converted;
    const double *f64 = nullptr;  // float64 source still to convert
};

std::string shape_text(const py::array &a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
    if (a.ndim() == 1) s << ",";
    s << ")";
    return s.str();
}

Signal as_signal(const py::handle &obj) {
    py::array any = py::array::ensure(obj);
    if (!any) throw py::type_error("samples must be a numpy array (or convertible to one)");
    if (any.ndim() != 1) {
        throw py::value_error(
            "samples must be a 1-D mono signal, got shape " + shape_text(any) +
            "; mix to mono first, e.g. y.mean(axis=1) for soundfile's (frames, channels) "
            "layout or y.mean(axis=0) for librosa's (channels, frames)");
    }
    Signal s;
    py::dtype dt = any.dtype();
    if (dt.is(py::dtype::of<float>())) {
        auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(any);
        s.keep = a;
        s.f32 = a.data();
        s.size = static_cast<size_t>(a.size());
    } else if (dt.is(py::dtype::of<double>())) {
        auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(any);
        s.keep = a;
        s.f64 = a.data();
        s.size = static_cast<size_t>(a.size());
    } else if (dt.is(py::dtype::of<int16_t>())) {
        auto a = py::array_t<int16_t, py::array::c_style | py::array::forcecast>::ensure(any);
        s.keep = a;
        s.s16 = a.data();
        s.size = static_cast<size_t>(a.size());
    } else {
        throw py::type_error("samples must be float32, float64 or int16 PCM, got dtype " +
                             std::string(py::str(dt)));
    }
    return s;
}

// Largest sample magnitude accepted. Audio is expected in [-1, 1] (int16 PCM
// is scaled); far beyond that, float32 power spectra overflow to Inf.
constexpr double kMaxMagnitude = 1073741824.0;  // 2^30

// A sample the core must not see: not finite, or beyond kMaxMagnitude.
inline bool unusable(double v) { return !(std::fabs(v) < kMaxMagnitude); }

// Converts float64 to float32 and finds the first unusable sample; returns
// its index or -1. Runs without the GIL.
long long prepare(Signal &s) {
    if (s.f64 != nullptr) {
        s.converted.resize(s.size);
        for (size_t i = 0; i < s.size; ++i) {
            if (unusable(s.f64[i])) return static_cast<long long>(i);
            s.converted[i] = static_cast<float>(s.f64[i]);
        }
        s.f32 = s.converted.data();
        return -1;
    }
    if (s.f32 != nullptr) {
        // A biased exponent of 127 + 30 or more means |x| >= 2^30, Inf or
        // NaN. An OR over each chunk vectorises; the exact index is searched
        // only in a bad chunk.
        const size_t chunk = 4096;
        for (size_t start = 0; start < s.size; start += chunk) {
            size_t end = start + chunk < s.size ? start + chunk : s.size;
            uint32_t any = 0;
            for (size_t i = start; i < end; ++i) {
                uint32_t bits;
                std::memcpy(&bits, s.f32 + i, sizeof bits);
                any |= static_cast<uint32_t>((bits & 0x7f800000u) >= (157u << 23));
            }
            if (any) {
                for (size_t i = start; i < end; ++i)
                    if (unusable(s.f32[i])) return static_cast<long long>(i);
            }
        }
    }
    return -1;
}

[[noreturn]] void raise_unusable(const Signal &s, long long index) {
    double v = s.f64 ? s.f64[index] : static_cast<double>(s.f32[index]);
    std::ostringstream m;
    if (std::isfinite(v)) {
        m << "sample " << index << " is " << v
          << ": audio must lie within +-2^30 (expected in [-1, 1]; scale integer PCM by its full "
             "scale, e.g. y / 32768 for int16 values)";
    } else {
        m << "samples contain " << (std::isnan(v) ? "NaN" : "Inf") << " at index " << index
          << " (first non-finite sample); clean the signal first, e.g. np.nan_to_num(y)";
    }
    throw py::value_error(m.str());
}

class Extractor {
  public:
    explicit Extractor(const hm_config &cfg) {
        size_t need = 0;
        hm_status st = hm_extractor_workspace_size(&cfg, &need);
        if (st != HM_OK) raise_status(st);
        memory_.reset(new unsigned char[need]);
        st = hm_extractor_init(&ex_, &cfg, memory_.get(), need);
        if (st != HM_OK) raise_status(st);
    }

    int row_size() const { return hm_extractor_row_size(&ex_); }

    py::dict layout() const {
        py::dict d;
        for (int f = 0; f < HM_FEATURE_COUNT; ++f) {
            int off = hm_extractor_offset(&ex_, static_cast<hm_feature>(f));
            if (off >= 0)
                d[hm_feature_name(static_cast<hm_feature>(f))] =
                    py::make_tuple(off, hm_feature_size(&ex_.cfg, static_cast<hm_feature>(f)));
        }
        return d;
    }

    // Rows completed by this block.
    py::array_t<float> push(const py::handle &samples) {
        Signal s = as_signal(samples);
        auto held = lock();
        return run(s, false);
    }

    // Rows that depend on the end padding; then the extractor is reset.
    py::array_t<float> flush() {
        auto held = lock();
        size_t rows = hm_extractor_flush_rows(&ex_);
        py::array_t<float> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(row_size())});
        size_t written = 0;
        hm_status st;
        {
            py::gil_scoped_release nogil;
            st = hm_extractor_flush(&ex_, out.mutable_data(), rows, &written);
        }
        if (st != HM_OK) raise_status(st);
        return out;
    }

    // A whole signal: reset, push, flush, into one array of exactly the
    // batch frame count.
    py::array_t<float> process(const py::handle &samples) {
        Signal s = as_signal(samples);
        if (s.size == 0) throw py::value_error("samples are empty: need at least one sample");
        auto held = lock();
        hm_extractor_reset(&ex_);
        return run(s, true);
    }

    void reset() {
        auto held = lock();
        hm_extractor_reset(&ex_);
    }

    // These read the stream's position, which a push in another thread moves.
    size_t rows_for(size_t n) {
        auto held = lock();
        return hm_extractor_rows_for(&ex_, n);
    }
    size_t flush_rows() {
        auto held = lock();
        return hm_extractor_flush_rows(&ex_);
    }

  private:
    // Takes the mutex; called with the GIL held, returns with the GIL held.
    // When another thread has the mutex, it may be computing without the GIL
    // and will want the GIL back before it unlocks: wait for the mutex with
    // the GIL released, or both threads wait for ever. Uncontended (one
    // thread per extractor, the usual case) it costs one try_lock.
    std::unique_lock<std::mutex> lock() {
        std::unique_lock<std::mutex> held(mutex_, std::try_to_lock);
        if (!held.owns_lock()) {
            py::gil_scoped_release nogil;
            held.lock();
        }
        return held;
    }

    py::array_t<float> run(Signal &s, bool then_flush) {
        size_t rows = hm_extractor_rows_for(&ex_, s.size);
        size_t total = rows;
        if (then_flush) total = hm_frame_count(&ex_.cfg, s.size);
        py::array_t<float> out({static_cast<py::ssize_t>(total), static_cast<py::ssize_t>(row_size())});
        float *dst = out.mutable_data();
        long long bad = -1;
        hm_status st = HM_OK;
        {
            py::gil_scoped_release nogil;
            bad = prepare(s);
            if (bad < 0) {
                size_t used = 0, written = 0, tail = 0;
                if (s.s16 != nullptr)
                    st = hm_extractor_push_s16(&ex_, s.s16, s.size, dst, rows, &used, &written);
                else
                    st = hm_extractor_push(&ex_, s.f32, s.size, dst, rows, &used, &written);
                if (st == HM_OK && then_flush)
                    st = hm_extractor_flush(&ex_, dst + written * static_cast<size_t>(row_size()),
                                            total - written, &tail);
            }
        }
        if (bad >= 0) raise_unusable(s, bad);
        if (st != HM_OK) raise_status(st);
        return out;
    }

    hm_extractor ex_{};
    std::unique_ptr<unsigned char[]> memory_;
    std::mutex mutex_;
};

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "Private binding of the harmonies C core; use pyharmonies.features.";

    m.def("feature_names", []() {
        std::vector<std::string> names;
        for (int f = 0; f < HM_FEATURE_COUNT; ++f) names.emplace_back(hm_feature_name(static_cast<hm_feature>(f)));
        return names;
    }, "Feature names in row order; bit i of a feature mask selects name i.");

    m.def("validate",
          [](int sample_rate, int n_fft, int win_length, int hop_length, bool center, int n_mels,
             double fmin, double fmax, bool htk, int n_mfcc, double amin, double ref, uint32_t features) {
              hm_config c = make_config(sample_rate, n_fft, win_length, hop_length, center, n_mels,
                                        fmin, fmax, htk, n_mfcc, amin, ref, features);
              hm_status st = hm_config_validate(&c);
              if (st == HM_OK) {
                  // Build the mel bank as well: only that finds empty bands.
                  size_t need = hm_mel_workspace_size(sample_rate, n_fft, n_mels, fmin, fmax, htk);
                  std::unique_ptr<unsigned char[]> mem(new unsigned char[need]);
                  hm_mel mel;
                  st = hm_mel_init(&mel, sample_rate, n_fft, n_mels, fmin, fmax, htk, mem.get(), need);
              }
              return std::make_pair(static_cast<int>(st), std::string(hm_strerror(st)));
          },
          py::arg("sample_rate"), py::arg("n_fft"), py::arg("win_length"), py::arg("hop_length"),
          py::arg("center"), py::arg("n_mels"), py::arg("fmin"), py::arg("fmax"), py::arg("htk"),
          py::arg("n_mfcc"), py::arg("amin"), py::arg("ref"), py::arg("features"),
          "(status, message) for a configuration; status 0 means usable.");

    m.def("frame_count",
          [](int n_fft, int hop_length, bool center, uint64_t n_samples) {
              hm_config c;
              hm_config_default(&c);
              c.n_fft = n_fft;
              c.hop_length = hop_length;
              c.center = center ? 1 : 0;
              return hm_frame_count(&c, n_samples);
          },
          py::arg("n_fft"), py::arg("hop_length"), py::arg("center"), py::arg("n_samples"));

    m.def("workspace_size",
          [](int sample_rate, int n_fft, int win_length, int hop_length, bool center, int n_mels,
             double fmin, double fmax, bool htk, int n_mfcc, double amin, double ref, uint32_t features) {
              hm_config c = make_config(sample_rate, n_fft, win_length, hop_length, center, n_mels,
                                        fmin, fmax, htk, n_mfcc, amin, ref, features);
              size_t need = 0;
              hm_status st = hm_extractor_workspace_size(&c, &need);
              if (st != HM_OK) raise_status(st);
              return need;
          },
          py::arg("sample_rate"), py::arg("n_fft"), py::arg("win_length"), py::arg("hop_length"),
          py::arg("center"), py::arg("n_mels"), py::arg("fmin"), py::arg("fmax"), py::arg("htk"),
          py::arg("n_mfcc"), py::arg("amin"), py::arg("ref"), py::arg("features"),
          "Bytes of memory the C extractor needs for this configuration.");

    py::class_<Extractor>(m, "Extractor")
        .def(py::init([](int sample_rate, int n_fft, int win_length, int hop_length, bool center,
                         int n_mels, double fmin, double fmax, bool htk, int n_mfcc, double amin,
                         double ref, uint32_t features) {
                 return new Extractor(make_config(sample_rate, n_fft, win_length, hop_length, center,
                                                  n_mels, fmin, fmax, htk, n_mfcc, amin, ref, features));
             }),
             py::arg("sample_rate"), py::arg("n_fft"), py::arg("win_length"), py::arg("hop_length"),
             py::arg("center"), py::arg("n_mels"), py::arg("fmin"), py::arg("fmax"), py::arg("htk"),
             py::arg("n_mfcc"), py::arg("amin"), py::arg("ref"), py::arg("features"))
        .def_property_readonly("row_size", &Extractor::row_size)
        .def_property_readonly("layout", &Extractor::layout,
                               "{name: (offset, size)} of each selected feature in a row")
        .def("push", &Extractor::push, py::arg("samples"),
             "Rows (frames, row_size) completed by these samples.")
        .def("flush", &Extractor::flush, "Rows that depend on the end padding; then reset.")
        .def("process", &Extractor::process, py::arg("samples"),
             "Reset, push the whole signal and flush: every frame, (frames, row_size).")
        .def("reset", &Extractor::reset)
        .def("rows_for", &Extractor::rows_for, py::arg("n_samples"))
        .def("flush_rows", &Extractor::flush_rows);
}
