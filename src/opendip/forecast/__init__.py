"""以收定支 budget, the year-end point value forecast, and its back-test."""

from opendip.forecast.engine import ForecastError, dip_budget, forecast_point_value, seasonality

__all__ = ["ForecastError", "dip_budget", "forecast_point_value", "seasonality"]
