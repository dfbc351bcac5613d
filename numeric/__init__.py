"""attnflow's numeric layer: data, parameters, the generated engine, integrators and laws.

Importing it never loads SymPy: the engine is the NumPy code that ``symbolic`` emitted into
``numeric/_generated``.
"""

from numeric.engine import (  # noqa: F401
    attention,
    context,
    flow,
    forward,
    gradient,
    logits,
    loss,
    score,
    value_and_gradient,
)
from numeric.integrate import gradient_descent, integrate_flow, rk4  # noqa: F401
from numeric.model import PAD, Dataset, ModelSpec, check_params, init_params  # noqa: F401
from numeric.recorder import TrajectoryRecorder  # noqa: F401
from numeric.trajectory import Trajectory  # noqa: F401
