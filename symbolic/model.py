"""The paper's model: its symbols and ``Model(classifier, loss, contraction)``, the description
built by :func:`symbolic.models.paper.paper`."""

from symbolic.models.paper import *  # noqa: F401,F403
from symbolic.models.paper import paper as Model  # noqa: F401
