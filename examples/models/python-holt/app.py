"""A Kedastral forecast model in Python: damped Holt (level and trend)
exponential smoothing, with quantile bands from its own one-step errors.

Built into a WebAssembly component against Kedastral's WIT by
componentize-py (see README.md); the host runs it sandboxed like any model.
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

PARAMS = {
    "alpha": ("0.3", "level smoothing, in (0, 1]"),
    "beta": ("0.05", "trend smoothing, in [0, 1]"),
    "phi": ("0.95", "trend damping, in (0, 1]"),
}


def number(params, name, low, high, low_open):
    raw = params.get(name, PARAMS[name][0])
    try:
        value = float(raw)
    except ValueError:
        raise Err(ModelError_InvalidInput(f"{name}: `{raw}` is not a number"))
    if not (low < value <= high if low_open else low <= value <= high):
        raise Err(ModelError_InvalidInput(f"{name}: {value} is out of range"))
    return value


def quantile(sorted_values, level):
    """Linear interpolation between order statistics."""
    if not sorted_values:
        return 0.0
    position = level * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def normal_quantile(level):
    """Acklam's rational approximation of the standard normal quantile."""
    a = [-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00]
    b = [-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01]
    c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
         3.754408661907416e00]
    if level < 0.02425:
        q = math.sqrt(-2 * math.log(level))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    if level > 1 - 0.02425:
        return -normal_quantile(1 - level)
    q = level - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)


class Model(exports.Model):
    def describe(self) -> ModelInfo:
        return ModelInfo(
            name="python-holt",
            version="0.1.0",
            description="Damped Holt exponential smoothing, written in Python",
            min_history=2,
            params=[ParamSpec(name=k, default_value=v[0], description=v[1]) for k, v in PARAMS.items()],
        )

    def forecast(self, request: ForecastRequest) -> ForecastResponse:
        params = dict(request.params)
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise Err(ModelError_InvalidInput(
                f"unknown parameter `{unknown[0]}` (this model takes {', '.join(PARAMS)})"))
        alpha = number(params, "alpha", 0.0, 1.0, True)
        beta = number(params, "beta", 0.0, 1.0, False)
        phi = number(params, "phi", 0.0, 1.0, True)

        observed = [v for v in request.history.values if not math.isnan(v)]
        if len(observed) < 2:
            raise Err(ModelError_InsufficientHistory(InsufficientHistory(needed=2, got=len(observed))))

        level, trend = observed[0], observed[1] - observed[0]
        errors = []
        for value in request.history.values[1:]:
            predicted = level + phi * trend
            if math.isnan(value):
                # A missing point: carry the state forward.
                level, trend = predicted, phi * trend
                continue
            errors.append(value - predicted)
            new_level = alpha * value + (1 - alpha) * predicted
            trend = beta * (new_level - level) + (1 - beta) * phi * trend
            level = new_level

        values = []
        damped = 0.0
        for h in range(1, request.horizon + 1):
            damped += phi ** h
            values.append(level + damped * trend)

        errors.sort()
        spread = math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else 0.0
        bands = []
        for q in request.quantiles:
            # Empirical one-step error quantile, widened like a random walk.
            z = quantile(errors, q) if len(errors) >= 30 else spread * normal_quantile(q)
            bands.append(QuantileBand(
                level=q,
                values=[v + z * math.sqrt(h) for h, v in enumerate(values, start=1)],
            ))
        return ForecastResponse(values=values, quantiles=bands)
