"""The run report: pareto.png (every evaluated arch, the front highlighted, measured latency where deployed)
and a self-contained report.html (settings, hypervolume, front table with predicted vs measured latency)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from hwnas.search.runfolder import RunFolder, read_jsonl
from hwnas.workspace import atomic_write_bytes, atomic_write_text

__all__ = ["diagnostics_html", "plot_pareto", "write_report"]


def _records(run: RunFolder) -> list[dict[str, Any]]:
    return read_jsonl(run.evaluated_path)


def diagnostics_html(entries: list[dict[str, Any]], max_rows: int = 40) -> str:
    """The accelerated loop's per-batch diagnostics as a section: how well the surrogates ranked each batch
    (Spearman over the last 30 proposals), how often the measured value fell in their 80% interval, the noise
    they model, and what each batch was spent on. Long runs show every n-th batch and the last."""
    if not entries:
        return ""
    names = sorted({n for d in entries for n in (d.get("rank_corr") or {})})
    step = max(1, -(-len(entries) // max_rows))
    shown = entries[::step] + ([entries[-1]] if (len(entries) - 1) % step else [])
    head = (["batch", "evals"] + [f"rank corr {n}" for n in names] + [f"80% coverage {n}" for n in names]
            + [f"noise std {n}" for n in names] + ["surrogate", "refine", "explore"])
    rows = []
    for d in shown:
        picks = d.get("picks") or {}
        cells = [str(d.get("round")), str(d.get("evals"))]
        for key in ("rank_corr", "coverage", "noise_std"):
            cells += [_fmt((d.get(key) or {}).get(n)) for n in names]
        cells += [str(picks.get(k, 0)) for k in ("surrogate", "refine", "explore")]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    explored = [d for d in entries if (d.get("picks") or {}).get("explore")]
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


def write_report(run: RunFolder) -> Path:
    """Write the self-contained report.html (the plot embedded as base64)."""
    settings = run.read_settings()
    doc = run.read_front()
    plot = plot_pareto(run)
    hv = json.loads(run.hv_path.read_text(encoding="utf-8")) if run.hv_path.is_file() else None
    names = [o["name"] for o in doc["objectives"]]
    predicted = sorted({k for r in doc["front"] for k in (r.get("predicted") or {})})
    measured = sorted({k for r in doc["front"] for k in (r.get("measured") or {})})
    labels = [f"predicted {o['name']}" if not o.get("expensive", True) and o.get("unit") == "ms" else o["name"]
              for o in doc["objectives"]]
    head = (["#", "key"] + labels + [f"predicted {k}" for k in predicted if k not in names]
            + [f"measured {k}" for k in measured] + ["error %"] * bool(measured) + ["models"])
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
                    errs.append(f"{100.0 * (p - m) / m:+.0f}")
            cells.append(" ".join(errs))
        cells.append(", ".join(f"<code>{html.escape(str(v))}</code>" for v in (r.get("models") or {}).values()))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    img = ""
    if plot is not None:
        data = base64.b64encode(plot.read_bytes()).decode("ascii")
        img = f'<img alt="Pareto front" src="data:image/png;base64,{data}">'
    hv_line = ""
    if hv and hv["history"]:
        last = hv["history"][-1]
        norm = hv["normalization"]
        hv_line = (f"<p>Hypervolume {last['hypervolume']:.4f} after {last['evals']} evaluations "
                   f"(normalised: lower {_fmt(norm['lower'])}, upper {_fmt(norm['upper'])}, "
                   f"reference point {_fmt(norm['reference'])}, in minimisation space).</p>")
    predicted_in = settings.get("latency_statistics") or {}
    statistic_line = "".join(
        f"<p>Measured on {html.escape(name)}: each model's {_STATISTICS.get(d.get('statistic'), 'median')} latency "
        f"over its timed runs{', the figure its latency predictor was fitted on' if name in predicted_in else ''}.</p>"
        for name, d in sorted((doc.get("deployed") or {}).items()))
    reused = [r for r in doc["front"] if r.get("reused_from")]
    reused_line = (f"<p>{len(reused)} of the front's models were evaluated by an earlier run and reused here "
                   f"(eval 0): {html.escape(', '.join(sorted({str(r['reused_from']) for r in reused})))}.</p>"
                   if reused else "")
    settings_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v if not isinstance(v, (list, dict)) else json.dumps(v))}</td></tr>"  # noqa: E501
                            for k, v in settings.items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hwnas search {html.escape(run.path.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}code{{font-size:12px}}img{{max-width:100%}}</style>
</head><body>
<h1>hwnas search: {html.escape(run.path.name)}</h1>
<p>{doc['evaluations']} expensive evaluations; front of {len(doc['front'])} models.</p>
{reused_line}
{hv_line}
{img}
<h2>Front</h2>
{statistic_line}
<table><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>
{''.join(rows)}</table>
{diagnostics_html(run.read_diagnostics())}
<h2>Settings</h2>
<table>{settings_rows}</table>
</body></html>
"""
    atomic_write_text(run.report_path, page)
    return run.report_path
