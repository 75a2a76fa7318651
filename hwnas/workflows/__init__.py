"""Whole jobs a user runs, each one call with a typed result: the one place that composes the stages (space,
supernet, export, devices, profiling, predictors, search). Every `hwnas` command is one call into these.

    from hwnas import workflows
    workflows.profile("local-cpu-ort", "ofa-mbv3", calibration=50)
    workflows.fit("local-cpu-ort", "gbm")
    outcome = workflows.search("supernet.pt", ["local-cpu-ort"], budgets={"local-cpu-ort": 5.0}, evals=100)
    workflows.deploy(outcome.run.path, "local-cpu-ort", formats=["onnx", "tflite"])

or all four stages at once: `workflows.optimize("local-cpu-ort", supernet="supernet.pt", max_latency_ms=5.0)`.
"""

from hwnas.workflows.bench import bench
from hwnas.workflows.demo import demo
from hwnas.workflows.deploy import DeployResult, deploy, deploy_front, deploy_many
from hwnas.workflows.export import ExportSummary, export
from hwnas.workflows.fit import FitResult, PredictorEvaluation, evaluate_predictor, find_predictor, fit, predict
from hwnas.workflows.objectives import SupernetAccuracy, latency_name, predicted_latency
from hwnas.workflows.optimize import OptimizeResult, optimize
from hwnas.workflows.profile import ProfileResult, export_measurements, profile, profile_many
from hwnas.workflows.search import SearchJob, prepare_search, search
from hwnas.workflows.train import train
from hwnas.workflows.workspace import init_workspace

__all__ = [
    "DeployResult",
    "ExportSummary",
    "FitResult",
    "OptimizeResult",
    "PredictorEvaluation",
    "ProfileResult",
    "SearchJob",
    "SupernetAccuracy",
    "bench",
    "demo",
    "deploy",
    "deploy_front",
    "deploy_many",
    "evaluate_predictor",
    "export",
    "export_measurements",
    "find_predictor",
    "fit",
    "init_workspace",
    "latency_name",
    "optimize",
    "predict",
    "predicted_latency",
    "prepare_search",
    "profile",
    "profile_many",
    "search",
    "train",
]
