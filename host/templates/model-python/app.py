"""{{name}}: a Kedastral forecast model in Python. It starts as a naive
forecast (the last observed value) with quantile bands from the history's
own changes over the same number of steps; replace `forecast` with your model.

The interface is wit/forecast.wit (Kedastral's `forecast-model` world).
"""

import math

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.model import (
    ForecastRequest,
    ForecastResponse,
    InsufficientHistory,
    ModelError_InsufficientHistory,
    ModelError_InvalidInput,
    ModelInfo,
    ParamSpec,
    QuantileBand,
)

WINDOW_DEFAULT = "1440"


def change_quantile(x, h, level):
    """The `level` quantile of x[i + h] - x[i] over the window."""
    h = min(h, len(x) - 1)
    changes = sorted(x[i + h] - x[i] for i in range(len(x) - h))
    position = level * (len(changes) - 1)
    low, high = math.floor(position), math.ceil(position)
    return changes[low] + (changes[high] - changes[low]) * (position - low)


class Model(exports.Model):
    def describe(self) -> ModelInfo:
        return ModelInfo(
            name="{{name}}",
            version="0.1.0",
            description="Last value, with bands from the history's own changes",
            min_history=2,
            params=[ParamSpec(name="window", default_value=WINDOW_DEFAULT,
                              description="most recent points used for the bands")],
        )

    def forecast(self, request: ForecastRequest) -> ForecastResponse:
        window = int(WINDOW_DEFAULT)
        for key, value in request.params:
            if key != "window":
                raise Err(ModelError_InvalidInput(f"unknown parameter `{key}` (this model takes: window)"))
            if not value.isdigit() or int(value) < 2:
                raise Err(ModelError_InvalidInput(f"window: `{value}` is not a count >= 2"))
            window = int(value)
        observed = [v for v in request.history.values[-window:] if not math.isnan(v)]
        if len(observed) < 2:
            raise Err(ModelError_InsufficientHistory(InsufficientHistory(needed=2, got=len(observed))))
        last = observed[-1]
        horizon = request.horizon
        bands = [
            QuantileBand(level=level, values=[last + change_quantile(observed, h, level)
                                              for h in range(1, horizon + 1)])
            for level in request.quantiles
        ]
        return ForecastResponse(values=[last] * horizon, quantiles=bands)
