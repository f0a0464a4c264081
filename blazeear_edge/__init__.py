"""blazeear-edge: BlazeEar / BlazeFace detectors to the STM32N6 Neural-ART NPU, verified on the host.

The package reads like the pipeline: ``model`` -> ``weights`` -> ``export`` -> ``quantize`` ->
``lint`` -> ``postprocess`` -> ``parity`` -> ``bench``.  Heavy modules are imported lazily.
"""

__version__ = "0.1.0"

from .errors import BlazeEarError  # noqa: E402

__all__ = ["BlazeEarError", "__version__"]
