"""A synthetic, musically inspired corpus for tests, demos and benchmarks.

Each class is a recipe a musician would recognise: bowed strings (sawtooth
spectrum, vibrato, slow attacks, sustained chords), plucked strings
(arpeggios, bright attacks whose upper partials die first), a drum kit
(kick, snare and hi-hat patterns, no pitch), brass (a spectrum that
brightens with loudness, fanfare rhythms), a choir (formant vowels, detuned
voices), electronic dance music, organ, bells (inharmonic partials),
flute, piano, ambient drones and chiptune. Inside a class every clip
varies: key and register, tempo within the class's range, rhythm pattern,
random phases, loudness, background noise, and a per-"performer" recording
chain (spectral tilt, room reverb, noise colour). Classes are therefore
learnable but not trivially separable by loudness or by one spectral bin.

Everything is numpy: wavetable oscillators (one period holding the partials
below Nyquist, read with a phase accumulator), noise shaped in the
frequency domain, percussion samples rendered once per clip and placed on a
step grid. 200 clips of 5 s generate in a few seconds; a seed fixes every
sample (each clip draws from its own generator, seeded by (seed, class,
clip), so a corpus with more classes or clips starts with the same files).
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyharmonies.data.sources import DatasetIndex, open_dataset
from pyharmonies.errors import ParameterError

#: The classes, in the order ``classes=N`` takes them.
CLASS_NAMES: tuple[str, ...] = (
    "strings",
    "plucked",
    "percussion",
    "brass",
    "choir",
    "electronic",
    "organ",
    "bells",
    "flute",
    "piano",
    "ambient",
    "chiptune",
)

_TABLE = 2048  # wavetable length (a power of two: the phase wraps with a mask)
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (5, 3, 0, 4), (0, 3, 0, 4), (1, 4, 0, 0))


@dataclass
class _Ctx:
    """One clip being rendered: its generator, rate, length and key."""

    rng: np.random.Generator
    sr: int
    n: int
    root: int  # pitch class of the key, 0 = C
    mode: tuple[int, ...]

    @property
    def seconds(self) -> float:
        return self.n / self.sr

    def pitches(self, lo: int, hi: int) -> np.ndarray:
        """MIDI notes of the key's scale in [lo, hi]."""
        notes = np.arange(lo, hi + 1)
        return notes[np.isin((notes - self.root) % 12, self.mode)]

    def chord(self, degree: int, octave_midi: int, size: int = 3) -> list[int]:
        """A triad (or seventh) on a scale degree, from a root near ``octave_midi``."""
        base = octave_midi - (octave_midi - self.root) % 12
        steps = [degree + 2 * i for i in range(size)]
        return [base + 12 * (s // 7) + self.mode[s % 7] for s in steps]


def _hz(midi: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def _table(amps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One period with partial ``h`` (1-based) of amplitude ``amps[h-1]``, random phases, peak 1."""
    amps = np.asarray(amps, dtype=np.float64)[: _TABLE // 2 - 1]
    spectrum = np.zeros(_TABLE // 2 + 1, dtype=np.complex128)
    spectrum[1 : amps.size + 1] = amps * np.exp(2j * np.pi * rng.random(amps.size))
    table = np.fft.irfft(spectrum, _TABLE)
    return (table / max(np.abs(table).max(), 1e-12)).astype(np.float32)


def _partials(f0: float, sr: int, limit: int = 200) -> np.ndarray:
    """Harmonic numbers 1..H with H * f0 safely below Nyquist (room for vibrato)."""
    return np.arange(1, max(1, min(limit, int(0.47 * sr / f0))) + 1, dtype=np.float64)


_SINE = np.sin(2 * np.pi * np.arange(_TABLE) / _TABLE).astype(np.float32)


def _read(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """A wavetable at the phases ``cycles`` (in periods; any real value)."""
    return table[(cycles * _TABLE).astype(np.int64) & (_TABLE - 1)]


def _osc(table: np.ndarray, freq: float, n: int, sr: int, phase: float) -> np.ndarray:
    """Read a wavetable at a constant ``freq`` Hz for ``n`` samples."""
    return _read(table, phase + np.arange(n) * (float(freq) / sr))


def _vibrato(f0: float, n: int, sr: int, rate: float, depth: float, delay: float, phase: float) -> np.ndarray:
    """Phase (in periods) of ``f0`` with a vibrato of relative ``depth`` fading in after ``delay`` s.

    The integral of ``f0 (1 + depth * fade * sin(2 pi (rate t + phase)))``
    (``phase`` in periods), with the slow fade-in treated as constant over
    one vibrato cycle; scale the result to detune a copy.
    """
    t = np.arange(n) / sr
    fade = np.clip((t - delay) * (1 / 0.3), 0.0, 1.0)
    cosine = _read(_SINE, rate * t + (phase + 0.25))
    return f0 * t - (f0 * depth / (2 * np.pi * rate)) * fade * cosine


def _env(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Linear attack, sustain, and a linear release that ends at sample ``n``."""
    t = np.arange(n) / sr
    end = n / sr
    return np.clip(np.minimum(t / max(attack, 1e-4), (end - t) / max(release, 1e-4)), 0.0, 1.0)


def _add(buf: np.ndarray, start: int, sig: np.ndarray) -> None:
    """Mix ``sig`` into ``buf`` from sample ``start`` (cut at the end)."""
    if start >= buf.size or sig.size == 0:
        return
    m = min(sig.size, buf.size - start)
    buf[start : start + m] += sig[:m]


def _shaped_noise(n: int, sr: int, rng: np.random.Generator, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Gaussian noise whose amplitude spectrum is ``gain(frequency_hz)``, unit RMS."""
    size = max(16, n)
    spectrum = rng.standard_normal(size // 2 + 1) + 1j * rng.standard_normal(size // 2 + 1)
    f = np.fft.rfftfreq(size, 1.0 / sr)
    y = np.fft.irfft(spectrum * gain(f), size)[:n]
    return (y / max(float(np.sqrt(np.mean(y**2))), 1e-12)).astype(np.float32)


def _band(lo: float, hi: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda f: ((f >= lo) & (f <= hi)).astype(np.float64)


# ---------------------------------------------------------------- instruments


def _note_times(
    ctx: _Ctx, beat: float, lengths: tuple[float, ...], weights: tuple[float, ...]
) -> list[tuple[float, float]]:
    """(onset s, duration s) of a rhythm drawn from note lengths in beats; starts a little before 0."""
    t = -float(ctx.rng.uniform(0, 2 * beat))
    out = []
    p = np.asarray(weights, dtype=np.float64) / sum(weights)
    while t < ctx.seconds:
        d = float(ctx.rng.choice(lengths, p=p)) * beat
        out.append((t, d))
        t += d
    return out


def _place(buf: np.ndarray, ctx: _Ctx, onset: float, sig: np.ndarray) -> None:
    """Mix a note that starts at ``onset`` seconds (possibly negative: its tail only)."""
    start = int(round(onset * ctx.sr))
    if start < 0:
        sig, start = sig[-start:], 0
    _add(buf, start, sig)


def _strings(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    buf = np.zeros(ctx.n, dtype=np.float32)
    beat = 60.0 / rng.uniform(56, 92)
    progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    bars = rng.choice([2, 4])
    attack, release = rng.uniform(0.12, 0.4), rng.uniform(0.25, 0.5)
    register = int(rng.integers(48, 60))
    t, i = -float(rng.uniform(0, beat)), 0
    while t < ctx.seconds:
        dur = bars * beat
        notes = ctx.chord(progression[i % 4], register)
        if rng.random() < 0.6:
            notes.append(notes[int(rng.integers(3))] + 12)
        for midi in notes:
            f0 = float(_hz(midi))
            n = int((dur + release) * sr)
            h = _partials(f0, sr, 40)
            table = _table(1.0 / h * np.exp(-h / rng.uniform(12, 30)), rng)
            cycles = _vibrato(f0, n, sr, rng.uniform(4.8, 6.5), rng.uniform(0.002, 0.006), 0.2, rng.random())
            low, high = cycles * 2 ** (-6 / 1200), cycles * 2 ** (6 / 1200)  # an ensemble: 12 cents apart
            tone = _read(table, low + rng.random()) + _read(table, high + rng.random())
            _place(buf, ctx, t, tone * _env(n, sr, attack, release))
        t += dur
        i += 1
    return buf


def _plucked_note(ctx: _Ctx, f0: float, length: float, tau: float) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    n = int(length * sr)
    h = _partials(f0, sr, 60)
    amps = np.abs(np.sin(np.pi * h * rng.uniform(0.1, 0.3))) / h + 1e-3 / h
    bright, dark = _table(amps, rng), _table(amps * np.exp(-(h - 1) / 1.5), rng)
    t = np.arange(n) / sr
    fade = np.exp(-t / (tau / 5)).astype(np.float32)  # upper partials die first
    phase = rng.random()
    tone = _osc(bright, f0, n, sr, phase) * fade + _osc(dark, f0, n, sr, phase) * (1 - fade)
    return tone * np.exp(-t / tau).astype(np.float32) * np.minimum(1.0, t / 0.002).astype(np.float32)


def _plucked(ctx: _Ctx) -> np.ndarray:
    rng = ctx.rng
    buf = np.zeros(ctx.n, dtype=np.float32)
    beat = 60.0 / rng.uniform(84, 150)
    step = beat / rng.choice([2, 3])
    progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    register = int(rng.integers(45, 60))
    pattern = rng.choice(["up", "down", "updown", "random"])
    tau = rng.uniform(0.4, 1.1)
    t, k = -float(rng.uniform(0, beat)), 0
    while t < ctx.seconds:
        chord = ctx.chord(progression[int(max(t, 0) // (4 * beat)) % 4], register) + [register + 12]
        order = {"up": chord, "down": chord[::-1], "updown": chord + chord[-2:0:-1]}.get(str(pattern))
        midi = order[k % len(order)] if order else int(rng.choice(chord))
        f0 = float(_hz(midi))
        note = _plucked_note(ctx, f0, min(1.4, 3 * tau), tau * (1.2 - (midi - 45) / 60))
        _place(buf, ctx, t, note * rng.uniform(0.6, 1.0))
        t += step
        k += 1
    return buf


def _drum_kit(ctx: _Ctx) -> dict[str, np.ndarray]:
    """One sample of each drum, drawn for this clip."""
    rng, sr = ctx.rng, ctx.sr
    t = np.arange(int(0.6 * sr)) / sr
    f_hi, f_lo = rng.uniform(100, 170), rng.uniform(40, 62)
    freq = f_lo + (f_hi - f_lo) * np.exp(-t / rng.uniform(0.02, 0.05))
    kick = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / rng.uniform(0.12, 0.3))
    noise = _shaped_noise(t.size, sr, rng, _band(rng.uniform(600, 1200), rng.uniform(5000, 8000)))
    body = 0.6 * np.sin(2 * np.pi * rng.uniform(170, 240) * t) * np.exp(-t / 0.05)
    snare = noise * np.exp(-t / rng.uniform(0.07, 0.16)) + body
    hiss = _shaped_noise(t.size, sr, rng, _band(rng.uniform(6000, 8000), sr / 2))
    hat = hiss * np.exp(-t / rng.uniform(0.015, 0.05))
    open_hat = hiss * np.exp(-t / rng.uniform(0.12, 0.25))
    tom_hz = rng.uniform(90, 220) * (1 + 0.3 * np.exp(-t / 0.05))  # the pitch drops as the skin relaxes
    tom = np.sin(2 * np.pi * np.cumsum(tom_hz) / sr) * np.exp(-t / rng.uniform(0.15, 0.3))
    kit = dict(kick=kick, snare=snare, hat=hat, open_hat=open_hat, tom=tom)
    return {name: sample.astype(np.float32) for name, sample in kit.items()}


def _percussion(ctx: _Ctx) -> np.ndarray:
    rng = ctx.rng
    buf = np.zeros(ctx.n, dtype=np.float32)
    kit = _drum_kit(ctx)
    step = 60.0 / rng.uniform(78, 160) / 4
    kicks = ([0, 8], [0, 6, 8], [0, 3, 8, 11], [0, 8, 10], [0, 7, 10])[rng.integers(5)]
    snares = ([4, 12], [4, 12, 15], [4, 11, 12])[rng.integers(3)]
    hats = range(0, 16, int(rng.choice([1, 2])))
    swing = rng.uniform(0, 0.12) * step
    levels = dict(kick=1.0, snare=0.7, hat=rng.uniform(0.15, 0.35), open_hat=0.25, tom=0.6)
    total = int(ctx.seconds / step) + 2
    offset = int(rng.integers(16))
    for s in range(total):
        onset, bar_pos = s * step + (swing if s % 2 else 0.0), (s + offset) % 16
        hits = [name for name, steps in (("kick", kicks), ("snare", snares), ("hat", hats)) if bar_pos in steps]
        if bar_pos == 14 and rng.random() < 0.3:
            hits.append("open_hat")
        if bar_pos >= 12 and rng.random() < 0.15:
            hits.append("tom")
        for name in hits:
            _place(buf, ctx, onset, kit[name] * levels[name] * rng.uniform(0.7, 1.0))
    return buf


def _brass(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    buf = np.zeros(ctx.n, dtype=np.float32)
    beat = 60.0 / rng.uniform(80, 132)
    notes = ctx.pitches(int(rng.integers(43, 50)), int(rng.integers(62, 72)))
    idx = int(rng.integers(notes.size))
    harmony = rng.random() < 0.5
    for onset, dur in _note_times(ctx, beat, (0.5, 1.0, 1.5, 2.0), (3, 4, 1, 2)):
        idx = int(np.clip(idx + rng.integers(-3, 4), 0, notes.size - 1))
        if rng.random() < 0.12:
            continue  # a rest
        voices = [notes[idx]] + ([notes[max(0, idx - 2)]] if harmony else [])
        for midi in voices:
            f0 = float(_hz(midi))
            n = int((dur * 0.92 + 0.08) * sr)
            h = _partials(f0, sr, 50)
            bright, dark = _table(h**-0.6, rng), _table(h**-2.4, rng)
            env = _env(n, sr, rng.uniform(0.03, 0.08), 0.08).astype(np.float32)
            blat = np.exp(-np.arange(n) / (0.06 * sr)).astype(np.float32)  # the attack overshoots
            env *= np.float32(1.0) + np.float32(0.25) * blat
            mix = np.clip(env, 0, 1) ** 1.5  # louder is brighter
            cycles = _vibrato(f0, n, sr, rng.uniform(5, 6), 0.003, 0.4, rng.random()) + rng.random()
            tone = _read(bright, cycles) * mix + _read(dark, cycles) * (1 - mix)
            _place(buf, ctx, onset, tone * env)
    return buf


_VOWELS = {  # first three formants (Hz)
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
}


def _choir(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    buf = np.zeros(ctx.n, dtype=np.float32)
    beat = 60.0 / rng.uniform(50, 80)
    progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    attack, release = rng.uniform(0.2, 0.5), 0.4
    t, i = -float(rng.uniform(0, beat)), 0
    while t < ctx.seconds:
        dur = float(rng.choice([2, 3, 4])) * beat
        vowel = _VOWELS[str(rng.choice(list(_VOWELS)))]
        chord = ctx.chord(progression[i % 4], 52)
        parts = [chord[0] - 12, chord[1], chord[2], chord[0] + 12]  # bass, tenor, alto, soprano
        for midi in parts:
            f0 = float(_hz(midi))
            n = int((dur + release) * sr)
            h = _partials(f0, sr, 60)
            fh = h * f0
            formants = (g * np.exp(-(((fh - f) / (60 + 0.08 * f)) ** 2)) for f, g in zip(vowel, (1.0, 0.6, 0.3)))
            amps = 0.02 / h + sum(formants)
            table = _table(amps, rng)
            tone = np.zeros(n, dtype=np.float32)
            for cents in rng.uniform(-12, 12, 2):  # two singers per part
                rate, depth = rng.uniform(4.5, 6), rng.uniform(0.004, 0.01)
                cycles = _vibrato(f0 * 2 ** (cents / 1200), n, sr, rate, depth, 0.15, rng.random())
                tone += _read(table, cycles + rng.random())
            _place(buf, ctx, t, tone * _env(n, sr, attack, release))
        t += dur
        i += 1
    breath = _shaped_noise(ctx.n, sr, rng, _band(400, 3500))
    return buf + np.float32(0.03 * float(np.sqrt(np.mean(buf**2)) + 1e-9)) * breath


def _electronic(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    buf = np.zeros(ctx.n, dtype=np.float32)
    beat = 60.0 / rng.uniform(118, 134)
    kit = _drum_kit(ctx)
    t0 = -float(rng.uniform(0, beat))
    beats = int(ctx.seconds / beat) + 2
    duck = np.ones(ctx.n, dtype=np.float32)  # sidechain: the pad dips after each kick
    for b in range(beats):
        onset = t0 + b * beat
        _place(buf, ctx, onset, kit["kick"] * 1.0)
        dip = 1 - 0.7 * np.exp(-np.arange(int(beat * sr)) / (0.08 * sr))
        start = int(round(onset * sr))
        if start >= 0:
            m = min(dip.size, ctx.n - start)
            if m > 0:
                duck[start : start + m] = dip[:m]
        _place(buf, ctx, onset + beat / 2, kit["open_hat"] * 0.2)
        if b % 2:
            _place(buf, ctx, onset, kit["snare"] * 0.5)
    # Bass: filtered sawtooth on eighths.
    root = int(rng.integers(33, 45))
    cutoff = rng.uniform(250, 1100)
    pattern = [root + int(rng.choice([0, 0, 0, 7, 12, 10])) for _ in range(8)]
    for k in range(2 * beats):
        f0 = float(_hz(pattern[k % 8]))
        h = _partials(f0, sr, 60)
        n = int(beat / 2 * 0.9 * sr)
        tone = _osc(_table(1 / h / (1 + (h * f0 / cutoff) ** 4), rng), f0, n, sr, rng.random())
        _place(buf, ctx, t0 + k * beat / 2, tone * _env(n, sr, 0.005, 0.03) * 0.6)
    # Pad: a square-wave chord held through, low-passed and ducked.
    pad = np.zeros(ctx.n, dtype=np.float32)
    for midi in ctx.chord(int(rng.integers(7)), 60):
        f0 = float(_hz(midi))
        h = _partials(f0, sr, 40)
        amps = np.where(h % 2 == 1, 1 / h, 0.0) / (1 + (h * f0 / 3000) ** 2)
        pad += _osc(_table(amps, rng), f0 * 2 ** (rng.uniform(-8, 8) / 1200), ctx.n, sr, rng.random())
    return buf + 0.25 * pad * duck


_DRAWBARS = ("888000000", "808000008", "688600000", "800000888", "848000000", "868000004")
_FOOTAGE_HARMONICS = (1, 3, 2, 4, 6, 8, 10, 12, 16)  # 16', 5 1/3', 8', 4', 2 2/3', 2', 1 3/5', 1 1/3', 1'


def _organ(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    buf = np.zeros(ctx.n, dtype=np.float32)
    beat = 60.0 / rng.uniform(60, 110)
    preset = _DRAWBARS[rng.integers(len(_DRAWBARS))]
    progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    rate, depth = rng.uniform(5.5, 7), rng.uniform(0.05, 0.2)
    t, i = -float(rng.uniform(0, beat)), 0
    while t < ctx.seconds:
        dur = float(rng.choice([2, 4])) * beat
        notes = ctx.chord(progression[i % 4], int(rng.integers(55, 62)), size=int(rng.choice([3, 4])))
        notes.append(notes[0] - 24)  # the pedal
        for midi in notes:
            base = float(_hz(midi)) / 2  # the 16' pipe
            amps = np.zeros(16)
            for level, harmonic in zip(preset, _FOOTAGE_HARMONICS):
                if int(level) and harmonic * base < 0.47 * sr:
                    amps[harmonic - 1] = 10 ** ((int(level) - 8) * 3 / 20)
            n = int(dur * sr)
            tone = _osc(_table(amps, rng), base, n, sr, rng.random()) * _env(n, sr, 0.005, 0.01)
            click = _shaped_noise(int(0.004 * sr), sr, rng, _band(1000, 6000)) * 0.3
            _place(buf, ctx, t, tone)
            _place(buf, ctx, t, click)
        t += dur
        i += 1
    tt = np.arange(ctx.n) / sr
    return buf * (1 - depth + depth * np.sin(2 * np.pi * rate * tt)).astype(np.float32)  # the Leslie's tremolo


# Risset's bell: (frequency ratio, amplitude, relative duration, detune Hz).
_BELL = (
    (0.56, 1.0, 1.0, 0.0),
    (0.56, 0.67, 0.9, 1.0),
    (0.92, 1.0, 0.65, 0.0),
    (0.92, 1.8, 0.55, 1.7),
    (1.19, 2.67, 0.325, 0.0),
    (1.7, 1.67, 0.35, 0.0),
    (2.0, 1.46, 0.25, 0.0),
    (2.74, 1.33, 0.2, 0.0),
    (3.0, 1.33, 0.15, 0.0),
    (3.76, 1.0, 0.1, 0.0),
    (4.07, 1.33, 0.075, 0.0),
)


def _bells(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    buf = np.zeros(ctx.n, dtype=np.float32)
    notes = ctx.pitches(64, 88)
    length = rng.uniform(1.5, 3.0)
    t = -float(rng.uniform(0, 0.5))
    while t < ctx.seconds:
        f0 = float(_hz(int(rng.choice(notes))))
        velocity = rng.uniform(0.5, 1.0)
        for ratio, amp, rel, detune in _BELL:
            f = f0 * ratio + detune
            if f >= 0.47 * sr:
                continue
            tau = rel * length / 4
            n = int(min(4 * tau, ctx.seconds - max(t, 0) + 0.01) * sr) + 1
            tt = np.arange(n) / sr
            partial = _read(_SINE, f * tt + rng.random()) * np.exp(-tt / tau).astype(np.float32)
            _place(buf, ctx, t, velocity * amp * partial)
        t += rng.uniform(0.35, 1.2)
    return buf


def _flute(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    buf = np.zeros(ctx.n, dtype=np.float32)
    envelope = np.zeros(ctx.n, dtype=np.float32)
    beat = 60.0 / rng.uniform(70, 120)
    notes = ctx.pitches(72, 93)
    idx = int(rng.integers(notes.size))
    amps = np.array([1.0, rng.uniform(0.1, 0.3), rng.uniform(0.05, 0.15), 0.03, 0.01])
    for onset, dur in _note_times(ctx, beat, (0.25, 0.5, 1.0, 1.5), (1, 4, 3, 1)):
        idx = int(np.clip(idx + rng.choice([-2, -1, -1, 1, 1, 2]), 0, notes.size - 1))
        f0 = float(_hz(notes[idx]))
        n = int((dur + 0.06) * sr)
        cycles = _vibrato(f0, n, sr, rng.uniform(4.5, 5.5), rng.uniform(0.004, 0.01), 0.15, rng.random())
        h = _partials(f0, sr, amps.size)
        env = _env(n, sr, rng.uniform(0.04, 0.08), 0.08)
        _place(buf, ctx, onset, _read(_table(amps[: h.size], rng), cycles + rng.random()) * env)
        _place(envelope, ctx, onset, env.astype(np.float32))
    breath = _shaped_noise(ctx.n, sr, rng, _band(1000, 7000))
    return buf + np.float32(rng.uniform(0.03, 0.08)) * breath * np.minimum(envelope, 1.0)


def _piano(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    buf = np.zeros(ctx.n, dtype=np.float32)
    beat = 60.0 / rng.uniform(66, 120)
    progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    melody = ctx.pitches(64, 86)
    idx = int(rng.integers(melody.size))

    tt = np.arange(int(1.2 * sr)) / sr  # one struck note
    fade = np.exp(-tt / 0.08).astype(np.float32)
    attack = np.minimum(1.0, tt / 0.002).astype(np.float32)
    notes: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def strike(onset: float, midi: int, velocity: float) -> None:
        f0 = float(_hz(midi))
        if midi not in notes:  # one pair of tables and one decay per key
            h = _partials(f0, sr, 40)
            amps = h**-1.1 * np.abs(np.sin(np.pi * h / 7.3)) + 1e-3
            decay = 0.35 * np.exp(-tt / (2.5 - (midi - 30) / 40)) + 0.65 * np.exp(-tt / 0.25)  # two-stage decay
            notes[midi] = (
                _table(amps, rng),
                _table(amps * np.exp(-(h - 1) / 3), rng),
                (decay * attack).astype(np.float32),
            )
        bright, dark, decay = notes[midi]
        phase = rng.random()
        tone = _osc(bright, f0, tt.size, sr, phase) * fade + _osc(dark, f0 * 1.0006, tt.size, sr, phase) * (1 - fade)
        _place(buf, ctx, onset, velocity * tone * decay)

    t, b = -float(rng.uniform(0, beat)), 0
    while t < ctx.seconds:
        chord = ctx.chord(progression[(b // 4) % 4], 52)
        if b % 2 == 0:
            strike(t, chord[0] - 12, 0.8)
        for midi in chord:
            strike(t + 0.01 * rng.random(), midi, rng.uniform(0.3, 0.5))
        for half in (0.0, 0.5):
            idx = int(np.clip(idx + rng.integers(-2, 3), 0, melody.size - 1))
            strike(t + half * beat, int(melody[idx]), rng.uniform(0.5, 0.9))
        t += beat
        b += 1
    return buf


def _ambient(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    t = np.arange(ctx.n) / sr
    root = int(rng.integers(36, 52))
    drone = np.zeros(ctx.n, dtype=np.float64)
    for interval, level in ((0, 1.0), (7, 0.6), (12, 0.4), (19, 0.2)):
        f = float(_hz(root + interval))
        for beat_hz in (0.0, rng.uniform(0.2, 1.5)):  # slow beating between two near-unison partials
            drone += level * _read(_SINE, (f + beat_hz) * t + rng.random())
    drone *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + 2 * np.pi * rng.random())
    lo = rng.uniform(150, 1500)
    wind = _shaped_noise(ctx.n, sr, rng, _band(lo, lo * rng.uniform(1.5, 4)))
    swell = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.08, 0.3) * t + 2 * np.pi * rng.random())
    rms = float(np.sqrt(np.mean(drone**2)))
    return (drone + rng.uniform(0.3, 0.9) * rms * wind * swell).astype(np.float32)


def _chiptune(ctx: _Ctx) -> np.ndarray:
    rng, sr = ctx.rng, ctx.sr
    buf = np.zeros(ctx.n, dtype=np.float32)
    beat = 60.0 / rng.uniform(120, 170)
    step = beat / 4
    duty = float(rng.choice([0.125, 0.25, 0.5]))
    progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    register = int(rng.integers(60, 72))
    total = int(ctx.seconds / step) + 2
    for s in range(total):
        chord = ctx.chord(progression[(s // 16) % 4], register)
        f0 = float(_hz(chord[s % 3] + 12 * (s // 3 % 2)))
        h = _partials(f0, sr, 60)
        n = int(step * sr)
        pulse = _osc(_table(np.abs(np.sin(np.pi * h * duty)) / h, rng), f0, n, sr, 0.0)
        _place(buf, ctx, s * step, pulse * 0.5 * _env(n, sr, 0.001, 0.005))
        if s % 2 == 0:  # triangle bass on eighths
            fb = float(_hz(chord[0] - 24))
            hb = _partials(fb, sr, 30)
            tri = _osc(_table(np.where(hb % 2 == 1, hb**-2.0, 0.0), rng), fb, 2 * n, sr, 0.0)
            _place(buf, ctx, s * step, tri * 0.6 * _env(2 * n, sr, 0.001, 0.005))
        if s % 8 == 4:  # the noise channel's snare
            burst = ctx.rng.choice([-1.0, 1.0], size=int(0.08 * sr)).astype(np.float32)
            _place(buf, ctx, s * step, burst * 0.3 * np.exp(-np.arange(burst.size) / (0.025 * sr)).astype(np.float32))
    return buf


_RECIPES: dict[str, Callable[[_Ctx], np.ndarray]] = {
    "strings": _strings,
    "plucked": _plucked,
    "percussion": _percussion,
    "brass": _brass,
    "choir": _choir,
    "electronic": _electronic,
    "organ": _organ,
    "bells": _bells,
    "flute": _flute,
    "piano": _piano,
    "ambient": _ambient,
    "chiptune": _chiptune,
}


# ---------------------------------------------------------------- recording chain


@dataclass(frozen=True)
class _Performer:
    """How one synthetic performer's recordings sound, whatever the piece."""

    tilt: float  # spectral tilt, dB per octave around 1 kHz
    reverb: float  # wet level of a room, 0 = dry
    decay: float  # room decay time, s (-60 dB)
    noise_slope: float  # background noise colour: 0 white, 1 pink, 2 brown (power ~ 1/f^slope)


def _performer(seed: int, class_index: int, k: int) -> _Performer:
    rng = np.random.default_rng([seed, class_index, 1_000_000 + k])
    return _Performer(
        tilt=float(rng.uniform(-2.0, 2.0)),
        reverb=float(rng.choice([0.0, rng.uniform(0.05, 0.35)])),
        decay=float(rng.uniform(0.3, 1.2)),
        noise_slope=float(rng.choice([0.0, 1.0, 2.0])),
    )


def _record(y: np.ndarray, sr: int, who: _Performer, rng: np.random.Generator) -> np.ndarray:
    """Room, microphone tilt, background noise and level: one pass in the frequency domain.

    The room is a circular convolution over the clip: the tail of its end
    rings at its start, as if the music had been playing before the clip.
    """
    n = y.size
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spectrum = np.fft.rfft(y)
    if who.reverb > 0:
        tail = min(n, int(who.decay * sr))
        ir = rng.standard_normal(tail, dtype=np.float32) * np.exp(-np.arange(tail) / (who.decay * sr / 6.9))
        ir *= who.reverb / max(float(np.sqrt(np.sum(ir**2))), 1e-12)
        spectrum *= 1.0 + np.fft.rfft(ir, n)
    spectrum *= 10 ** (who.tilt * np.log2(np.maximum(f, 50.0) / 1000.0) / 20)
    # Parseval: one-sided sums of |X|^2, doubled, are n^2 times the mean power (only the ratio matters).
    signal_power = 2 * float(np.sum(np.abs(spectrum) ** 2))
    noise = rng.standard_normal(f.size, dtype=np.float32) + 1j * rng.standard_normal(f.size, dtype=np.float32)
    noise *= np.maximum(f, 20.0) ** (-who.noise_slope / 2)
    noise_power = 2 * float(np.sum(np.abs(noise) ** 2))
    snr_db = rng.uniform(15.0, 35.0)
    spectrum += noise * np.sqrt(signal_power / 10 ** (snr_db / 10) / max(noise_power, 1e-30))
    out = np.fft.irfft(spectrum, n)
    peak = float(np.max(np.abs(out))) or 1.0
    return (out * (10 ** (rng.uniform(-14.0, -1.0) / 20) / peak)).astype(np.float32)


# ---------------------------------------------------------------- the corpus


def synth_clip(
    name: str, *, seconds: float = 5.0, sample_rate: int = 22050, seed: int = 0, index: int = 0, performer: int = 0
) -> np.ndarray:
    """One synthetic clip of class ``name`` (what :func:`synth_corpus` writes).

    Parameters
    ----------
    name : str
        One of :data:`CLASS_NAMES`.
    seconds : float
    sample_rate : int
    seed, index : int
        The clip's generator is seeded by ``(seed, class number, index)``.
    performer : int
        The recording chain (tilt, room, noise colour) of this performer.

    Returns
    -------
    np.ndarray, shape (round(seconds * sample_rate),), float32
        Peak between -14 and -1 dBFS.
    """
    if name not in _RECIPES:
        raise ParameterError(f"unknown synthetic class {name!r}; choose from {', '.join(CLASS_NAMES)}")
    c = CLASS_NAMES.index(name)
    rng = np.random.default_rng([seed, c, index])
    n = int(round(seconds * sample_rate))
    ctx = _Ctx(rng=rng, sr=sample_rate, n=n, root=int(rng.integers(12)), mode=_MAJOR if rng.random() < 0.6 else _MINOR)
    y = _RECIPES[name](ctx)[:n]
    return _record(np.asarray(y, dtype=np.float64), sample_rate, _performer(seed, c, performer), rng)


def synth_corpus(
    out: str | os.PathLike[str],
    *,
    classes: int = 5,
    clips_per_class: int = 40,
    seconds: float = 5.0,
    sample_rate: int = 22050,
    seed: int = 0,
    progress: bool = True,
    jobs: int | None = None,
) -> DatasetIndex:
    """Write a synthetic labelled corpus: class folders plus a manifest.

    Parameters
    ----------
    out : path-like
        Output folder (made if needed; files of the same names are
        overwritten, nothing else is touched).
    classes : int
        How many of :data:`CLASS_NAMES` to use, in order (1 to 12).
    clips_per_class : int
        Clips per class, >= 1.
    seconds : float
        Length of every clip, in (0, 600].
    sample_rate : int
        Hz, 8000 to 96000.
    seed : int
        Same seed, same samples (the first clips of a larger corpus equal
        those of a smaller one).
    progress : bool
        A tqdm bar on stderr.
    jobs : int, optional
        Worker processes (spawned); ``os.cpu_count()`` if omitted. Corpora
        under a minute of audio are generated in this process whatever the
        value: starting workers would cost more. The files do not depend on it.

    Returns
    -------
    DatasetIndex
        ``open_dataset(out / "manifest.csv")``.

    Notes
    -----
    Writes ``out/<class>/<class>_<i>.wav`` (16-bit PCM, ``i`` zero-padded
    to 3 digits or more) and ``out/manifest.csv`` with columns
    ``path,label,track_id,artist``: every clip is its own track, and each
    class has ``min(clips, max(3, min(8, clips // 5)))`` performers
    (``"<class>-p<k>"``, clip ``i`` by performer ``i % count``) whose
    recording chain is shared by their clips, so that ``--group-by
    artist`` is a meaningful, harder split.
    """
    if isinstance(classes, bool) or not isinstance(classes, int) or not 1 <= classes <= len(CLASS_NAMES):
        raise ParameterError(f"classes must be an integer from 1 to {len(CLASS_NAMES)}, got {classes!r}")
    if isinstance(clips_per_class, bool) or not isinstance(clips_per_class, int) or clips_per_class < 1:
        raise ParameterError(f"clips_per_class must be an integer >= 1, got {clips_per_class!r}")
    if not 0 < seconds <= 600:
        raise ParameterError(f"seconds must be in (0, 600], got {seconds!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 96000:
        raise ParameterError(f"sample_rate must be an integer from 8000 to 96000 Hz, got {sample_rate!r}")
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ParameterError(f"jobs must be an integer >= 1, got {jobs!r}")
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(clips_per_class - 1)))
    performers = min(clips_per_class, max(3, min(8, clips_per_class // 5)))
    names = CLASS_NAMES[:classes]
    rows, tasks = [], []
    for name in names:
        (out / name).mkdir(exist_ok=True)
        for i in range(clips_per_class):
            stem = f"{name}_{i:0{width}d}"
            rows.append((f"{name}/{stem}.wav", name, stem, f"{name}-p{i % performers}"))
            tasks.append((os.fspath(out / name / f"{stem}.wav"), name, seconds, sample_rate, seed, i, i % performers))
    if classes * clips_per_class * seconds < 60:
        jobs = 1
    with tqdm(total=len(tasks), desc="synth", unit="clip", file=sys.stderr, disable=not progress, leave=False) as bar:
        if jobs == 1:
            for task in tasks:
                _write_clip(task)
                bar.update(1)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")  # safe after torch or CUDA initialised
            with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
                for _ in pool.map(_write_clip, tasks, chunksize=4):
                    bar.update(1)
    tmp = out / ".manifest.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "track_id", "artist"])
        writer.writerows(rows)
    os.replace(tmp, out / "manifest.csv")
    return open_dataset(out / "manifest.csv")


def _write_clip(task: tuple[str, str, float, int, int, int, int]) -> None:
    """Render one clip and write it as 16-bit WAV (runs in worker processes too)."""
    import soundfile as sf

    path, name, seconds, sample_rate, seed, index, performer = task
    y = synth_clip(name, seconds=seconds, sample_rate=sample_rate, seed=seed, index=index, performer=performer)
    sf.write(path, y, sample_rate, subtype="PCM_16")
