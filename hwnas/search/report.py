"""The run report: pareto.png (every evaluated arch, the front highlighted, measured latency where deployed)
and a self-contained report.html: the hypervolume as a share of its reference box, the front (predicted and
measured latency, latency budgets kept or missed, MMACs, params, model file sizes), the latency predictors'
held-out scatter plots, and the settings as a table."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import HwnasError, PredictorError
from hwnas.files import read_json_file
from hwnas.search.pareto import Normalization, hypervolume
from hwnas.search.runfolder import EvaluatedLine, RunFolder, measured_device, read_hypervolume, read_jsonl
from hwnas.workspace import Workspace, atomic_write_bytes, atomic_write_text

__all__ = ["diagnostics_html", "session_summary", "settings_summary", "plot_pareto", "write_report",
           "hypervolume_share", "settings_table", "predictor_section"]


def _records(run: RunFolder) -> list[dict[str, Any]]:
    return read_jsonl(run.evaluated_path, EvaluatedLine)


def diagnostics_html(entries: list[dict[str, Any]], max_rows: int = 40) -> str:
    """The accelerated loop's per-batch diagnostics as a section: how well the surrogates ranked each batch
    (Spearman over the last 30 proposals), how often the measured value fell in their 80% interval, the noise
    they model, which model a choosing surrogate took, and what each batch was spent on. Long runs show every
    n-th batch and the last."""
    if not entries:
        return ""
    def part(d: dict[str, Any], key: str) -> dict[str, Any]:  # a damaged file may hold anything there
        value = d.get(key)
        return value if isinstance(value, dict) else {}

    names = sorted({str(n) for d in entries for n in part(d, "rank_corr")})
    chose = sorted({str(n) for d in entries for n in part(d, "models")})
    step = max(1, -(-len(entries) // max_rows))
    shown = entries[::step] + ([entries[-1]] if (len(entries) - 1) % step else [])
    head = (["batch", "evals"] + [f"rank corr {n}" for n in names] + [f"80% coverage {n}" for n in names]
            + [f"noise std {n}" for n in names] + [f"model {n}" for n in chose] + ["surrogate", "refine", "explore"])
    rows = []
    for d in shown:
        picks = part(d, "picks")
        cells = [_fmt(d.get("round")), _fmt(d.get("evals"))]
        for key in ("rank_corr", "coverage", "noise_std"):
            cells += [_fmt(part(d, key).get(n)) for n in names]
        cells += [_fmt(part(d, "models").get(n)) for n in chose]
        cells += [_fmt(picks.get(k, 0)) for k in ("surrogate", "refine", "explore")]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    explored = [d for d in entries if part(d, "picks").get("explore")]
    summary = (f"<p>{len(explored)} of {len(entries)} batches moved part of their archs to exploration (NSGA-II "
               "offspring, spread samples) because the surrogates ranked recent batches poorly (rank correlation "
               "under 0.4) or their intervals covered under half of what was measured.</p>")
    return (f"<h2>Surrogate diagnostics</h2>\n{summary}\n<table><tr>"
            f"{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>\n{''.join(rows)}</table>")


def _axes(doc: dict[str, Any]) -> tuple[str, str] | None:
    """(x, y) objective names: latency-like on x, the other (accuracy) on y."""
    names = [o["name"] for o in doc.get("objectives", [])]
    if len(names) < 2:
        return None
    lat = [n for n in names if "latency" in n]
    x = lat[0] if lat else names[1]
    y = next(n for n in names if n != x)
    return x, y


def plot_pareto(run: RunFolder) -> Path | None:
    """Write pareto.png; None when the search has fewer than two objectives."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = run.read_front()
    axes = _axes(doc)
    if axes is None:
        return None
    x, y = axes
    recs = _records(run)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    if recs:
        ax.scatter([r["values"].get(x) for r in recs], [r["values"].get(y) for r in recs], s=10, c="#bbbbbb",
                   label=f"evaluated ({len(recs)})")
    front = sorted(doc["front"], key=lambda r: r["values"][x])
    ax.plot([r["values"][x] for r in front], [r["values"][y] for r in front], "o-", c="#1f77b4", ms=5,
            label=f"front ({len(front)})")
    device = x[x.find("[") + 1:-1] if "[" in x else None
    measured = [(r["measured"].get(f"latency_ms[{device}]"), r["values"][y]) for r in front
                if device and (r.get("measured") or {}).get(f"latency_ms[{device}]") is not None]
    if measured:
        ax.scatter([m[0] for m in measured], [m[1] for m in measured], marker="x", s=40, c="#d62728",
                   label="measured after deploy")
    for c in doc.get("constraints", []):
        if c["objective"] == x and c.get("upper") is not None:
            ax.axvline(c["upper"], ls="--", c="#888888", lw=1, label=f"budget {c['upper']:g}")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(run.plot_path, buf.getvalue())
    return run.plot_path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value)) if value is not None else ""


_STATISTICS = {"median_ms": "median", "mean_ms": "mean", "min_ms": "minimum", "p90_ms": "90th-percentile"}
MAX_LIST_ITEMS = 8  # a longer list in the settings table shows its first items and how many there are


# ------------------------------------------------------------------------------------------- hypervolume
def hypervolume_share(doc: dict[str, Any], hv: dict[str, Any]) -> dict[str, Any] | None:
    """The front's hypervolume as a share of its reference box, so that it reads on a 0-100% scale.

    hypervolume.json holds the hypervolume in normalised units: each objective (minimised: 'max' ones negated) is
    mapped by its normalisation bounds (`lower` -> 0, `upper` -> 1), and the volume is measured up to the
    reference point. A front that goes past a lower bound (a subnet faster than every one sampled for the bounds)
    makes that figure exceed 1. The share divides it by the box from the best corner (the lower bounds, or the
    front's best value where it goes past them) to the reference point: 100% would be one model best on every
    objective. Returns the share, the evaluations, both corners in the objectives' own units, the objectives
    whose corner was moved to the front's best, and the share after the first recorded evaluation."""
    names = list(hv.get("objectives") or [])
    objectives = {o["name"]: o for o in doc.get("objectives", [])}
    rows = [r for r in doc.get("front", []) if all(isinstance(r["values"].get(n), (int, float)) for n in names)]
    if not names or not hv.get("normalization"):
        return None
    norm = Normalization.from_dict(hv["normalization"])
    signs = np.array([-1.0 if objectives.get(n, {}).get("direction") == "max" else 1.0 for n in names])
    F = np.array([[r["values"][n] for n in names] for r in rows], dtype=float).reshape(-1, len(names)) * signs
    P = norm.apply(F) if len(F) else np.zeros((0, len(names)))
    corner = np.minimum(P.min(axis=0), 0.0) if len(P) else np.zeros(len(names))
    ref = norm.ref_point
    box = float(np.prod(ref - corner))
    if box <= 0:
        return None
    lo, hi = np.asarray(norm.lower, dtype=float), np.asarray(norm.upper, dtype=float)
    span = np.where(hi > lo, hi - lo, 1.0)
    history = hv.get("history") or []
    return {"share": (hypervolume(F, norm) if len(F) else 0.0) / box,
            "evaluations": doc.get("evaluations", history[-1]["evals"] if history else 0),
            "objectives": names, "units": [objectives.get(n, {}).get("unit", "") for n in names],
            "best": list((lo + corner * span) * signs + 0.0), "reference": list((lo + ref * span) * signs + 0.0),
            "extended": [n for n, c in zip(names, corner, strict=True) if c < 0],
            "first": (history[0]["hypervolume"] / box, history[0]["evals"]) if len(history) > 1 else None}


def _with_unit(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.4g}%"
    return f"{value:.4g} {unit}".rstrip()


def _hypervolume_html(doc: dict[str, Any], hv: dict[str, Any] | None) -> str:
    found = hypervolume_share(doc, hv) if hv else None
    if found is None:
        return ""
    corner = ", ".join(f"{html.escape(n)} {_with_unit(v, u)}"
                       for n, v, u in zip(found["objectives"], found["best"], found["units"], strict=True))
    ref = ", ".join(f"{html.escape(n)} {_with_unit(v, u)}"
                    for n, v, u in zip(found["objectives"], found["reference"], found["units"], strict=True))
    first = (f" (from {found['first'][0]:.1%} after {found['first'][1]} evaluation(s))"
             if found["first"] else "")
    moved = (f" The front goes past the normalisation's bound on {html.escape(', '.join(found['extended']))}, so "
             "the box starts at the front's best value there." if found["extended"] else "")
    return (f"<p><b>Hypervolume {found['share']:.1%}</b> of the reference box after {found['evaluations']} "
            f"evaluations{first}: the share of the box from the best corner ({corner}) to the reference point "
            f"({ref}) that the front dominates; 100% would be one model best on every objective.{moved} "
            "hypervolume.json keeps the raw values, in units of the normalisation box.</p>")


# ---------------------------------------------------------------------------------------------- settings
def _path_text(value: str, workspace: Path | None) -> str:
    """An absolute path as the report shows it: relative to the workspace where it lies inside, ~/ under the
    home folder, else as it is."""
    if not value.startswith("/"):
        return value
    path = Path(value)
    for base, prefix in ((workspace, ""), (Path.home(), "~/")):
        if base is None:
            continue
        try:
            rel = path.relative_to(base)
        except ValueError:
            continue
        return prefix + (rel.as_posix() if rel.parts else ".")
    return value


def _readable(value: Any, workspace: Path | None) -> str:
    if isinstance(value, str):
        return _path_text(value, workspace)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        if not value:
            return "none"
        return ", ".join(f"{k}: {_readable(v, workspace)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if not value:
            return "none"
        items = [_readable(v, workspace) for v in value[:MAX_LIST_ITEMS]]
        more = f", ... ({len(value)} in all)" if len(value) > MAX_LIST_ITEMS else ""
        sep = "; " if any(isinstance(v, (dict, list)) for v in value) else ", "
        return sep.join(items) + more
    return "none" if value is None else str(value)


def _objective_text(o: dict[str, Any]) -> str:
    kind = "measured" if o.get("expensive") else "predicted"
    unit = f", {o['unit']}" if o.get("unit") else ""
    return f"{o.get('name')} ({o.get('direction')}{unit}, {kind})"


def _constraint_text(c: dict[str, Any]) -> str:
    unit = f" {c['unit']}" if c.get("unit") and c["unit"] != "%" else c.get("unit") or ""
    parts = [f"{c.get('objective')} <= {_fmt(c['upper'])}{unit}"] if c.get("upper") is not None else []
    parts += [f"{c.get('objective')} >= {_fmt(c['lower'])}{unit}"] if c.get("lower") is not None else []
    return " and ".join(parts)


def settings_table(settings: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, value) rows of the run's settings as the report shows them: paths relative to the workspace (the
    workspace itself by its folder name), objectives and constraints in words, long lists shortened."""
    root = settings.get("workspace")
    workspace = Path(root) if isinstance(root, str) and root.startswith("/") else None
    rows = []
    first = ["workspace"] if workspace is not None else []  # the folder the other paths are relative to
    for key, value in sorted(settings.items(), key=lambda item: item[0] not in first):
        if key == "workspace" and workspace is not None:
            text = f"{workspace.name}/ (the folder the paths in this table are relative to)"
        elif key == "objectives" and isinstance(value, list):
            text = ", ".join(_objective_text(o) for o in value if isinstance(o, dict))
        elif key == "constraints" and isinstance(value, list):
            text = ", ".join(_constraint_text(c) for c in value if isinstance(c, dict)) or "none"
        else:
            text = _readable(value, workspace)
        rows.append((str(key), text))
    return rows


# ------------------------------------------------------------------------------------- latency predictors
def _held_out_plot(path: Path, device: str, workspace: Path | None) -> tuple[bytes | None, str]:
    """(PNG of predicted vs measured latency on the held-out subnets, a sentence) for one predictor file."""
    from hwnas.predictors import load_predictor
    from hwnas.predictors.fitting import evaluate_on_rows, held_out_rows
    from hwnas.predictors.plot import scatter_png

    shown = html.escape(_path_text(str(path), workspace))
    if not path.is_file():
        return None, f"{html.escape(device)}: no predictor file at {shown} any more, so no held-out plot."
    predictor = load_predictor(path)
    meta = getattr(predictor, "meta_", None) or {}
    if not meta.get("profile"):
        report = meta.get("held_out_report") or {}
        metrics = report.get("metrics") or {}
        if metrics.get("mape_pct") is not None:
            return None, (f"{html.escape(device)}: {shown} was fitted on measurements made elsewhere; on "
                          f"{report.get('n')} held-out subnets its MAPE was {metrics['mape_pct']:.1f}% and Spearman "
                          f"{metrics.get('spearman', float('nan')):.3f}. The file keeps no per-subnet points, so "
                          "there is no plot.")
        return None, f"{html.escape(device)}: {shown} records no held-out data, so there is no plot."
    profile = read_json_file(meta["profile"], PredictorError, "profile", "re-run `hwnas profile`",
                             "re-run `hwnas profile`")
    rows = held_out_rows(predictor, profile)
    if not rows:
        return None, (f"{html.escape(device)}: the profile behind {shown} has no measured subnets the predictor "
                      "was not fitted on (profile with --reference 20 to get some), so there is no plot.")
    metrics, y, pred = evaluate_on_rows(predictor, rows)
    png = scatter_png(y, pred, title=f"{device}: {predictor.name} on {len(rows)} held-out subnets", metrics=metrics)
    return png, (f"{html.escape(device)}: {shown} ({html.escape(predictor.name)}), on {len(rows)} measured subnets it "
                 f"was not fitted on: MAPE {metrics['mape_pct']:.1f}%, Spearman {metrics['spearman']:.3f}.")


def predictor_section(settings: dict[str, Any]) -> str:
    """The latency predictors' held-out scatter plots (predicted against measured), one per device of the run
    whose predictor file (`Workspace.predictor_path`) has held-out data; a sentence where there is none."""
    devices = [d for d in settings.get("devices") or [] if isinstance(d, str)]
    root = settings.get("workspace")
    space = (settings.get("space") or {}).get("name") if isinstance(settings.get("space"), dict) else None
    head = "<h2>Latency predictors: held-out error</h2>\n"
    if not devices or not isinstance(root, str) or not space:
        return head + ("<p>This run used no latency predictor of a workspace device (its latency comes from its "
                       "objectives directly), so there is no held-out plot.</p>")
    workspace = Path(root)
    parts = []
    for device in devices:
        runtime = (settings.get("runtimes") or {}).get(device)
        try:
            png, sentence = _held_out_plot(Workspace(workspace).predictor_path(device, space, str(runtime)), device,
                                           workspace)
        except (HwnasError, OSError, KeyError, TypeError, ValueError) as exc:
            png, sentence = None, f"{html.escape(device)}: no held-out plot ({html.escape(str(exc))})."
        parts.append(f"<p>{sentence}</p>")
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<img alt="{html.escape(device)}: predicted against measured latency" '
                         f'src="data:image/png;base64,{data}">')
    return head + "\n".join(parts)


# ------------------------------------------------------------------------------------------ front table
def _size_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        return "missing"
    return f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def _budget_cell(row: dict[str, Any], budgets: dict[str, float]) -> tuple[str, bool]:
    """(what the budget column says, whether the row misses a budget)."""
    parts, over = [], False
    for device, ms in budgets.items():
        misses = []
        if (row.get("within_budget") or {}).get(device) is False:
            misses.append("predicted")
        if (row.get("within_budget_upper") or {}).get(device) is False:
            misses.append("interval's upper end")
        for name, ok in (row.get("within_budget_measured") or {}).items():
            if name.split(",")[0] == device and ok is False:
                misses.append(f"measured{' ' + name.split(',', 1)[1] if ',' in name else ''}")
        measured_ok = [ok for name, ok in (row.get("within_budget_measured") or {}).items()
                       if name.split(",")[0] == device]
        if misses:
            over = True
            parts.append(f"{html.escape(device)}: <b>over</b> {_fmt(ms)} ms ({html.escape(', '.join(misses))})")
        elif measured_ok:
            parts.append(f"{html.escape(device)}: within (measured)")
        elif device in (row.get("within_budget") or {}):
            parts.append(f"{html.escape(device)}: within")
    return "; ".join(parts), over


def _budget_html(doc: dict[str, Any], settings: dict[str, Any], budgets: dict[str, float]) -> str:
    if not budgets:
        return ""
    margins = settings.get("budget_margin") or {}
    rows = doc["front"]
    lines = []
    for device, ms in budgets.items():
        held = f", held on {html.escape(str(margins[device]))}" if margins.get(device) else ""
        point = [r.get("within_budget", {}).get(device) for r in rows]
        text = f"{html.escape(device)} {_fmt(ms)} ms{held}: {sum(v is True for v in point)} of {len(rows)} " \
               "front models within on the prediction"
        measured = [ok for r in rows for name, ok in (r.get("within_budget_measured") or {}).items()
                    if name.split(",")[0] == device]
        if measured:
            text += f"; {sum(measured)} of {len(measured)} deployed measurements within"
        lines.append(text)
    return "<p>Latency budgets: " + ". ".join(lines) + ".</p>"


def _space_counts(settings: dict[str, Any]) -> Any:
    """A function arch -> (MMACs, params M) from the run's space, or None when the space cannot be rebuilt."""
    from hwnas.space import from_config

    try:
        space = from_config(settings.get("space"))
    except (HwnasError, TypeError, ValueError):
        return None

    def counts(arch: Any) -> tuple[float, float] | None:
        try:
            a = space.validate(arch)
            return float(space.flops(a)), float(space.params(a))
        except (HwnasError, TypeError, ValueError, KeyError):
            return None

    return counts


def write_report(run: RunFolder) -> Path:
    """Write the self-contained report.html (the plots embedded as base64)."""
    settings = run.read_settings()
    doc = run.read_front()
    plot = plot_pareto(run)
    hv = read_hypervolume(run.hv_path)
    root = settings.get("workspace")
    workspace = Path(root) if isinstance(root, str) and root.startswith("/") else None
    budgets = run.latency_budgets()
    counts = _space_counts(settings)
    names = [o["name"] for o in doc["objectives"]]
    predicted = sorted({k for r in doc["front"] for k in (r.get("predicted") or {})})
    measured = sorted({k for r in doc["front"] for k in (r.get("measured") or {})})
    labels = [f"predicted {o['name']}" if not o.get("expensive", True) and o.get("unit") == "ms" else o["name"]
              for o in doc["objectives"]]
    head = (["#", "key"] + labels + [f"predicted {k}" for k in predicted if k not in names]
            + [f"measured {k}" for k in measured] + ["error %"] * bool(measured) + ["budget"] * bool(budgets)
            + ["MMACs", "params (M)"] * bool(counts) + ["models (file size)"])
    rows = []
    for i, r in enumerate(doc["front"], 1):
        cells = [str(i), f"<code>{html.escape(r['key'])}</code>"] + [_fmt(r["values"].get(n)) for n in names]
        cells += [_fmt((r.get("predicted") or {}).get(k)) for k in predicted if k not in names]
        cells += [_fmt((r.get("measured") or {}).get(k)) for k in measured]
        if measured:
            errs = []
            for k in measured:
                p = (r.get("predicted") or {}).get(k, r["values"].get(k))
                m = (r.get("measured") or {}).get(k)
                if p is not None and m:
                    device = measured_device(k)
                    outside = device is not None and device[0] == device[1] and \
                        (r.get("within_interval_measured") or {}).get(device[0]) is False
                    errs.append(f"{100.0 * (p - m) / m:+.0f}" + (" <b>outside 95% interval</b>" if outside else ""))
            cells.append(" ".join(errs))
        over = False
        if budgets:
            text, over = _budget_cell(r, budgets)
            cells.append(text)
        if counts:
            found = counts(r["arch"])
            cells += [f"{found[0]:.1f}", f"{found[1]:.3f}"] if found else ["", ""]
        cells.append("<br>".join(f"<code>{html.escape(str(v))}</code> {_size_text(run.path / str(v))}"
                                 for v in (r.get("models") or {}).values()))
        row_open = '<tr class="over">' if over else "<tr>"
        rows.append(row_open + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    img = ""
    if plot is not None:
        data = base64.b64encode(plot.read_bytes()).decode("ascii")
        img = f'<img alt="Pareto front" src="data:image/png;base64,{data}">'
    predicted_in = settings.get("latency_statistics") or {}
    statistic_line = "".join(
        f"<p>Measured on {html.escape(name)}: each model's {_STATISTICS.get(d.get('statistic'), 'median')} latency "
        f"over its timed runs{', the figure its latency predictor was fitted on' if name in predicted_in else ''}.</p>"
        for name, d in sorted((doc.get("deployed") or {}).items()))
    session_lines = "".join(f"<p>Reference check, {html.escape(session_summary(name, d['session_check']))}.</p>"
                            for name, d in sorted((doc.get("deployed") or {}).items()) if d.get("session_check"))
    session_lines += "".join(f"<p>{html.escape(line)}.</p>" for name in sorted(doc.get("deployed") or {})
                             for line in (settings_summary(doc, name), interval_summary(doc, name)) if line)
    reused = [r for r in doc["front"] if r.get("reused_from")]
    reused_from = sorted({_path_text(str(r["reused_from"]), workspace) for r in reused})
    reused_line = (f"<p>{len(reused)} of the front's models were evaluated by an earlier run and reused here "
                   f"(eval 0): {html.escape(', '.join(reused_from))}.</p>" if reused else "")
    counts_line = ("<p>MMACs: millions of multiply-accumulates of the convolutions and linear layers (the figure "
                   "OFA calls FLOPs), counted by the space; params: learnable parameters in millions.</p>"
                   if counts else "")
    settings_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                            for k, v in settings_table(settings))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hwnas search {html.escape(run.path.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}code{{font-size:12px}}img{{max-width:100%}}
tr.over td{{background:#fde2e2}}</style>
</head><body>
<h1>hwnas search: {html.escape(run.path.name)}</h1>
<p>{doc['evaluations']} expensive evaluations; front of {len(doc['front'])} models.</p>
{reused_line}
{_hypervolume_html(doc, hv)}
{img}
<h2>Front</h2>
{statistic_line}
{session_lines}
{_budget_html(doc, settings, budgets)}
{counts_line}
<table><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>
{''.join(rows)}</table>
{predictor_section(settings)}
{diagnostics_html(run.read_diagnostics())}
<h2>Settings</h2>
<p>As recorded in settings.json (which keeps paths in full).</p>
<table>{settings_rows}</table>
</body></html>
"""
    atomic_write_text(run.report_path, page)
    return run.report_path


_SETTINGS_FROM = {"profile": "as its profile did", "device": "with its own settings (it has no profile of this space)",
                  "given": "with the settings given"}


def settings_summary(doc: dict[str, Any], device: str) -> str | None:
    """One line on how deploy timed each model on `device` and where those settings came from (None where
    front.json does not say)."""
    used = ((doc.get("deployed") or {}).get(device) or {}).get("settings")
    if not isinstance(used, dict) or used.get("from") not in _SETTINGS_FROM:
        return None
    try:
        runs, rounds, warmup = int(used["runs"]), int(used["rounds"]), int(used["warmup"])
        floor = float(used.get("min_seconds") or 0.0)
    except (KeyError, TypeError, ValueError):
        return None
    text = (f"{device}: timed {_SETTINGS_FROM[used['from']]}: {runs} runs over {rounds} "
            f"round{'s' * (rounds != 1)}, {warmup} warm-up run{'s' * (warmup != 1)} before each")
    if floor > 0:
        text += f", at least {floor:g} s per model"
    if used.get("fresh_session") is True:
        text += ", each round in a freshly loaded session"
    return text


def interval_summary(doc: dict[str, Any], device: str) -> str | None:
    """One line on how many of the deployed models measured inside their predictor's 95% interval on `device`
    (None where deploy recorded no interval: no predictor calibration, or no prediction for this device)."""
    checked = [r for r in doc["front"] if device in (r.get("within_interval_measured") or {})]
    if not checked:
        return None
    outside = [i for i, r in enumerate(doc["front"], 1) if (r.get("within_interval_measured") or {}).get(device)
               is False]
    text = (f"{device}: {len(checked) - len(outside)} of {len(checked)} deployed models measured inside their "
            "predictor's 95% interval")
    if outside:
        text += f"; outside: front row{'s' * (len(outside) > 1)} {', '.join(map(str, outside))}"
    return text


def session_summary(device: str, check: dict[str, Any]) -> str:
    """One line on a deploy session's reference check, for the CLI and the report."""
    if not check.get("measured"):
        return f"{device}: the profile's reference subnets could not be measured again; the session is unchecked"
    ratio, shift = check["ratio"], check["shift_pct"]
    text = (f"{device}: the profile's {check['measured']} reference subnets ran {ratio:.2f}x their profiled "
            f"latency ({shift:+.1f}%, profile noise threshold ±{check['threshold_pct']:.0f}%)")
    first = check.get("first_batch")
    if isinstance(first, dict) and first.get("ratio"):
        text += f", measured twice: the front's first batch ran at {first['ratio']:.2f}x"
    if check.get("shifted"):
        text += ": the device is not in the state it was profiled in"
    if check.get("drifted"):
        text += f"; they moved {check['drift_pct']:.0f}% during this session"
    errors = check.get("front_error_pct") or {}
    if errors.get("predicted") and errors.get("scaled"):
        def span(values: list[float]) -> str:
            return f"{min(values):+.1f}% to {max(values):+.1f}% (mean {np.mean(values):+.1f}%)"
        text += f"; prediction error {span(errors['predicted'])}, scaled to this session {span(errors['scaled'])}"
    differ = check.get("settings_differ") or {}
    if differ:
        text += "; measured with other settings than the profile: " + ", ".join(
            f"{k} {a} -> {b}" for k, (a, b) in sorted(differ.items()))
    changed = check.get("conditions_changed") or {}
    if changed:
        parts = []
        for key, (before, after) in sorted(changed.items()):
            name, unit = CONDITION_NAMES.get(key, (key, ""))
            parts.append(f"{name} {before}{unit} -> {after}{unit}")
        text += "; the device changed since it was profiled: " + ", ".join(parts)
    return text


# a device condition's name and unit in words (`hwnas.profiling.drift.device_conditions`)
CONDITION_NAMES = {"governor": ("governor", ""), "cpu_freq_mhz": ("CPU", " MHz"),
                   "temperature_c": ("temperature", " °C")}
