"""The model registry: names on the command line and in checkpoints -> classes and configs.

A checkpoint stores ``name`` and ``dataclasses.asdict(config)`` (plain ints,
floats, strings, bools and tuples, so ``torch.load(weights_only=True)`` reads
it back); :func:`build_model` and :func:`model_config` turn them back into a
model. No ``eval``: an unknown name or field is a :class:`ParameterError`
that lists what is valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import nn

from pyharmonies.errors import ParameterError
from pyharmonies.models.cnn import CNNConfig, MobileNetV2
from pyharmonies.models.ensemble import CNNEnsemble, EnsembleConfig
from pyharmonies.models.lstm import LSTMConfig, SequenceLSTM
from pyharmonies.models.transformer import SequenceTransformer, TransformerConfig

__all__ = ["INPUT_KIND", "MODELS", "build_model", "config_to_dict", "model_config"]

#: name -> (model class, config dataclass). Model classes take (n_classes, input_shape, config).
MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "cnn": (MobileNetV2, CNNConfig),
    "lstm": (SequenceLSTM, LSTMConfig),
    "transformer": (SequenceTransformer, TransformerConfig),
    "cnn_ensemble": (CNNEnsemble, EnsembleConfig),  # CNNs averaged: trained apart (`--members`, `harmonies ensemble`) or together (`--mutual`)
}

#: name -> the feature each model reads (``pyharmonies.features``): a (n_mels, frames) log-mel
#: image for the CNN, a (28, frames) sequence of frame vectors for the LSTM and the transformer.
INPUT_KIND: dict[str, str] = {"cnn": "log_mel", "lstm": "frame_vector", "transformer": "frame_vector", "cnn_ensemble": "log_mel"}


def _entry(name: str) -> tuple[type[nn.Module], type]:
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ParameterError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}") from None


def model_config(name: str, options: Mapping[str, Any] | Any | None = None):
    """The config dataclass of model ``name`` with ``options`` applied over the defaults.

    ``options`` is a mapping of field names to values (e.g. ``{"width": 0.5}``,
    or a whole ``dataclasses.asdict`` of a saved config), an instance of the
    config class itself (returned as is), or ``None`` for the defaults.
    Unknown fields and invalid values raise :class:`ParameterError`.
    """
    _, config_cls = _entry(name)
    if options is None:
        return config_cls()
    if isinstance(options, config_cls):
        return options
    if not isinstance(options, Mapping):
        raise ParameterError(f"options for {name!r} must be a mapping of config fields, got {type(options).__name__}")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ParameterError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"valid options: {', '.join(sorted(fields))}"
        )
    try:
        return config_cls(**options)
    except ParameterError:
        raise
    except (TypeError, ValueError) as err:  # a value of a type the validation cannot compare or convert
        raise ParameterError(f"invalid options for model {name!r}: {err}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as a plain dict (``dataclasses.asdict``): safe for JSON and ``torch.load(weights_only=True)``."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ParameterError(f"expected a config dataclass instance, got {type(config).__name__}")
    return dataclasses.asdict(config)


def build_model(
    name: str, n_classes: int, input_shape: tuple[int, int], options: Mapping[str, Any] | Any | None = None
) -> nn.Module:
    """Build model ``name`` ("cnn", "lstm" or "transformer") for ``n_classes`` and one window of ``input_shape``.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    n_classes : int
        Number of logits.
    input_shape : tuple of int
        ``(n_mels, frames)`` for "cnn", ``(n_features, frames)`` for "lstm" and "transformer".
    options : mapping, optional
        Config fields to override (see :func:`model_config`).
    """
    model_cls, _ = _entry(name)
    return model_cls(n_classes, tuple(input_shape), model_config(name, options))
