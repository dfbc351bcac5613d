"""attnflow's numeric layer: data, parameters, the generated engine, integrators and laws.

Importing it never loads SymPy: the engine is the NumPy code that ``symbolic`` emitted into
``numeric/_generated``.
"""

from numeric.model import (Dataset, ModelSpec, PAD, check_params,  # noqa: F401
                           init_params)

from numeric.engine import (attention, context, flow, forward, gradient,  # noqa: F401
                            logits, loss, score, value_and_gradient)

# --- exports added by each part (one line per name or group) ---
from numeric.trajectory import Trajectory  # noqa: F401
from numeric.integrate import gradient_descent, integrate_flow, rk4  # noqa: F401
