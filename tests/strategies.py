"""The package's configuration strategies (``numeric.strategies``) under the names the tests
use; the tests, ``attnflow check`` and the conjecture search draw from the same set."""

from numeric.strategies import (
    campaign_configurations,
    configurations,
    log_uniform,
    order_configurations,
    seeds,
    sen_configurations,
)

configs = configurations
sen_configs = sen_configurations
order_configs = order_configurations

__all__ = ["campaign_configurations", "configs", "configurations", "log_uniform",
           "order_configs", "order_configurations", "seeds", "sen_configs",
           "sen_configurations"]
