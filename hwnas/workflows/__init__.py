"""Whole jobs a user runs, each one call with a typed result: the one place that composes the stages (space,
supernet, export, devices, profiling, predictors, search). Every `hwnas` command is one call into these.

    from hwnas import workflows
    workflows.profile("local-cpu-ort", "ofa-mbv3", calibration=50)
    workflows.fit("local-cpu-ort", "gbm")
    outcome = workflows.search("supernet.pt", ["local-cpu-ort"], budgets={"local-cpu-ort": 5.0}, evals=100)
    workflows.deploy(outcome.run.path, "local-cpu-ort", formats=["onnx", "tflite"])

or all four stages at once: `workflows.optimize("local-cpu-ort", supernet="supernet.pt", max_latency_ms=5.0)`.
"""

from importlib import import_module
from typing import Any

# name -> module: each workflow is imported when first used, so a quick command (`hwnas predict`) does not pay
# for the imports of the others (torch, the search, the exporters)
_WHERE = {
    "DeployResult": "hwnas.workflows.deploy",
    "ExportSummary": "hwnas.workflows.export",
    "FitResult": "hwnas.workflows.fit",
    "OptimizeResult": "hwnas.workflows.optimize",
    "PredictorEvaluation": "hwnas.workflows.fit",
    "ProfileResult": "hwnas.workflows.profile",
    "SearchJob": "hwnas.workflows.search",
    "SupernetAccuracy": "hwnas.workflows.objectives",
    "bench": "hwnas.workflows.bench",
    "demo": "hwnas.workflows.demo",
    "deploy": "hwnas.workflows.deploy",
    "deploy_front": "hwnas.workflows.deploy",
    "evaluate_predictor": "hwnas.workflows.fit",
    "export": "hwnas.workflows.export",
    "export_measurements": "hwnas.workflows.profile",
    "find_predictor": "hwnas.workflows.fit",
    "fit": "hwnas.workflows.fit",
    "init_workspace": "hwnas.workflows.workspace",
    "latency_name": "hwnas.workflows.objectives",
    "optimize": "hwnas.workflows.optimize",
    "predict": "hwnas.workflows.fit",
    "predicted_latency": "hwnas.workflows.objectives",
    "prepare_search": "hwnas.workflows.search",
    "profile": "hwnas.workflows.profile",
    "search": "hwnas.workflows.search",
    "train": "hwnas.workflows.train",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hwnas.workflows' has no attribute {name!r}")


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
    "search",
    "train",
]
