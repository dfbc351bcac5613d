"""attnflow's numeric layer: data, parameters, the generated engine, integrators and laws.

Importing it never loads SymPy: the engine is the NumPy code that ``symbolic`` emitted into
``numeric/_generated``.
"""

from numeric.model import (Dataset, ModelSpec, PAD, check_params,  # noqa: F401
                           init_params)

# --- exports added by each part (one line per name or group) ---
