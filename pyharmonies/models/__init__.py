"""Models of the workstation side: a MobileNetV2-style CNN over log-mel; a small LSTM and a small
transformer encoder over frame vectors.

``build_model(name, n_classes, input_shape, options)`` builds any of them from the
registry; ``count_parameters``, ``count_macs`` and ``summary`` report their
cost per window. Importing this package imports torch: the device side never
does.
"""

from __future__ import annotations

from pyharmonies.models.cnn import CNNConfig, MobileNetV2
from pyharmonies.models.complexity import count_macs, count_parameters, summary
from pyharmonies.models.lstm import LSTMConfig, SequenceLSTM
from pyharmonies.models.registry import INPUT_KIND, MODELS, build_model, config_to_dict, model_config
from pyharmonies.models.transformer import SequenceTransformer, TransformerConfig

__all__ = [
    "CNNConfig",
    "INPUT_KIND",
    "LSTMConfig",
    "MODELS",
    "MobileNetV2",
    "SequenceLSTM",
    "SequenceTransformer",
    "TransformerConfig",
    "build_model",
    "config_to_dict",
    "count_macs",
    "count_parameters",
    "model_config",
    "summary",
]
