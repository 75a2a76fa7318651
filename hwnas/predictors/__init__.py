"""Latency and accuracy predictors: scikit-learn style estimators over a space's archs, saved as JSON.

`create_predictor("lut-calibrated", space="ofa-mbv3", table="profiles/x/...json").fit(archs, ms)`,
`load_predictor(path)`, `list_predictors()`; metrics in `hwnas.predictors.metrics`.
"""

from hwnas.predictors import accuracy, calibrated, fewshot, gbm, lut  # noqa: F401  (register predictors)
from hwnas.predictors.accuracy import AccuracyPredictor
from hwnas.predictors.base import FORMAT_VERSION, Predictor
from hwnas.predictors.calibrated import LUTCalibratedPredictor
from hwnas.predictors.fewshot import FewShotPredictor
from hwnas.predictors.gbm import GBMPredictor
from hwnas.predictors.lut import LUTPredictor
from hwnas.predictors.metrics import evaluate_predictions
from hwnas.predictors.registry import (
    create_predictor,
    list_predictors,
    load_predictor,
    predictor_from_json,
    register_predictor,
)
from hwnas.predictors.tables import read_ofa_yaml, read_table

__all__ = [
    "Predictor",
    "FORMAT_VERSION",
    "LUTPredictor",
    "LUTCalibratedPredictor",
    "GBMPredictor",
    "FewShotPredictor",
    "AccuracyPredictor",
    "create_predictor",
    "list_predictors",
    "load_predictor",
    "predictor_from_json",
    "register_predictor",
    "evaluate_predictions",
    "read_table",
    "read_ofa_yaml",
]
