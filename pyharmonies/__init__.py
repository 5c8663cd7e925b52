"""harmonies: an edge-deployable music classifier with a C feature core.

The device side (this package's ``features``, ``audio``, ``runtime`` and
``stream`` modules) never imports torch; the workstation side (``data``,
``models``, ``training``, ``export``) does.
"""

from pyharmonies.errors import AudioError, HarmoniesError, ParameterError

__version__ = "0.1.0"

__all__ = ["AudioError", "HarmoniesError", "ParameterError", "__version__"]
