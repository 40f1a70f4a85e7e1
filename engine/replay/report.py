"""Outputs of a replay comparison: metrics as JSON and CSV, trips and occupancy CSVs, and a
self-contained HTML report whose matplotlib figures are embedded as base64 PNGs.

Figures:

1. response-time distributions, one histogram per variant side by side (seeds pooled, the
   targets as dashed lines), and their cumulative distributions overlaid;
2. hospital loads: occupied beds over time per hospital and bed type, one line per variant
   (first seed), with the capacity (baseline, which a surge raises) as a dashed step line;
3. time at each saturation level per hospital and variant (stacked bars);
4. a map: the road edges of the graph in light grey, closures highlighted in red (their
   closed road pieces and outline), incidents as points, a sample of routes to the scene and
   to hospital, hospitals and stations; credited "© OpenStreetMap contributors, ODbL".
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # non-interactive: never opens a window, safe in workers and servers

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from engine.attribution import ATTRIBUTION
from engine.graph import RoadGraph
from engine.replay.runner import Comparison, Result

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
LEVEL_COLORS = {"normal": "#8fd18f", "tension": "#ffcc66", "saturated": "#e8603c",
                "closed": "#555555"}


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _minutes(results: Sequence[Result], key: str) -> np.ndarray:
    return np.asarray([t[key] / 60.0 for r in results for t in r.trips
                       if t[key] is not None], dtype=float)


# ---------------------------------------------------------------------------- figures
def fig_response(cmp: Comparison) -> Figure:
    n = len(cmp.variants)
    fig = Figure(figsize=(4.2 * n + 4.5, 3.6))
    gs = fig.add_gridspec(1, n + 1, width_ratios=[1] * n + [1.1])
    data = [_minutes(cmp.by_variant(v.name), "response_s") for v in cmp.variants]
    top = max([float(d.max()) for d in data if len(d)] + [max(cmp.targets_min) * 1.2, 1.0])
    bins = np.linspace(0, top * 1.02, 31)
    first = None
    for k, (v, d) in enumerate(zip(cmp.variants, data, strict=True)):
        ax = fig.add_subplot(gs[0, k], sharey=first)
        first = first or ax
        ax.hist(d, bins=bins.tolist(), color=COLORS[k % len(COLORS)], alpha=0.85)
        for tgt in cmp.targets_min:
            ax.axvline(tgt, color="k", ls="--", lw=1)
        p50 = f"{np.percentile(d, 50):.1f}" if len(d) else "-"
        p90 = f"{np.percentile(d, 90):.1f}" if len(d) else "-"
        ax.set_title(f"{v.name}\np50 {p50} min, p90 {p90} min (n={len(d)})", fontsize=9)
        ax.set_xlabel("response time, call to on scene (min)")
        if k == 0:
            ax.set_ylabel("calls")
    ax = fig.add_subplot(gs[0, n])
    for k, (v, d) in enumerate(zip(cmp.variants, data, strict=True)):
        if len(d):
            x = np.sort(d)
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post",
                    color=COLORS[k % len(COLORS)], label=v.name)
    for tgt in cmp.targets_min:
        ax.axvline(tgt, color="k", ls="--", lw=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("response time (min)")
    ax.set_ylabel("share of calls reached")
    ax.set_title("cumulative distribution", fontsize=9)
    if any(len(d) for d in data):
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _load_panels(cmp: Comparison, limit: int = 12) -> list[tuple[str, str, str]]:
    """(hospital id, bed type, label) of the panels worth drawing: units that received
    patients in some run, else every tracked unit."""
    first = cmp.results[0].data
    names = {h["id"]: h["name"] for h in first["geo"]["hospitals"]}
    used: set[tuple[str, str]] = set()
    for r in cmp.results:
        for t in r.trips:
            if t["hospital"] and t["bed_type_used"]:
                used.add((t["hospital"], t["bed_type_used"]))
    keys = [tuple(k.split("|", 1)) for k in first["occupancy"]]
    chosen = [k for k in keys if k in used] or keys
    return [(h, b, f"{names.get(h, h)[:48]}\n{b}") for h, b in chosen[:limit]]


def fig_loads(cmp: Comparison) -> Figure:
    panels = _load_panels(cmp)
    cols = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig = Figure(figsize=(5.0 * cols, 3.0 * rows))
    for p, (hid, bt, label) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, p + 1)
        cap_drawn = False
        for k, v in enumerate(cmp.variants):
            runs = cmp.by_variant(v.name)
            if not runs:
                continue
            rows_ = np.asarray(runs[0].data["occupancy"].get(f"{hid}|{bt}", []), dtype=float)
            if not len(rows_):
                continue
            horizon = float(runs[0].data["horizon_s"])
            if rows_[-1, 0] < horizon:  # the last state lasts until the end of the replay
                rows_ = np.vstack([rows_, [horizon, *rows_[-1, 1:]]])
            hours = rows_[:, 0] / 3600.0
            ax.step(hours, rows_[:, 1], where="post", color=COLORS[k % len(COLORS)],
                    label=f"{v.name} (seed {runs[0].seed})")
            if not cap_drawn:
                ax.step(hours, rows_[:, 2], where="post", color="k", ls="--", lw=1.2,
                        label="capacity (baseline)")
                cap_drawn = True
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("hours from start")
        ax.set_ylabel("occupied beds")
        if p == 0:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def fig_levels(cmp: Comparison) -> Figure:
    first = cmp.results[0].data
    hospitals = [(h["id"], h["name"]) for h in first["geo"]["hospitals"]]
    labels, shares = [], []
    for v in cmp.variants:
        runs = cmp.by_variant(v.name)
        for hid, name in hospitals:
            tot = dict.fromkeys(LEVEL_COLORS, 0.0)
            for r in runs:
                lv = r.metrics["hospitals"][hid]["time_at_level_s"].get("overall", {})
                for key in tot:
                    tot[key] += lv.get(key, 0.0)
            s = sum(tot.values()) or 1.0
            labels.append(f"{name[:38]} | {v.name}")
            shares.append([tot[k] / s for k in LEVEL_COLORS])
    arr = np.asarray(shares) if shares else np.zeros((0, 4))
    fig = Figure(figsize=(10, 0.32 * max(len(labels), 3) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    left = np.zeros(len(labels))
    for j, (key, color) in enumerate(LEVEL_COLORS.items()):
        ax.barh(range(len(labels)), arr[:, j] if len(arr) else [], left=left, color=color,
                label=key)
        left += arr[:, j] if len(arr) else 0
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the replay at each overall saturation level (seeds pooled)")
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    return fig


def _road_segments(graph: RoadGraph, bbox: tuple[float, float, float, float]
                   ) -> np.ndarray:
    """Consecutive geometry points of every edge (one direction), inside ``bbox``."""
    gp = graph.geom_point
    edge_of = np.repeat(np.arange(graph.n_edges), np.diff(graph.geom_offset))
    same = edge_of[:-1] == edge_of[1:]
    keep_edge = (graph.twin < 0) | (np.arange(graph.n_edges) < graph.twin)
    ok = same & keep_edge[edge_of[:-1]]
    a, b = gp[:-1][ok], gp[1:][ok]
    x0, y0, x1, y1 = graph.point_lon[a], graph.point_lat[a], graph.point_lon[b], \
        graph.point_lat[b]
    w, s, e, n = bbox
    inside = ((np.maximum(x0, x1) >= w) & (np.minimum(x0, x1) <= e)
              & (np.maximum(y0, y1) >= s) & (np.minimum(y0, y1) <= n))
    return np.stack([np.stack([x0, y0], 1), np.stack([x1, y1], 1)], 1)[inside]


def fig_map(result: Result, graph: RoadGraph | None) -> Figure:
    d = result.data
    geo = d["geo"]
    pts = [(t["lon"], t["lat"]) for t in result.trips]
    pts += [(h["lon"], h["lat"]) for h in geo["hospitals"]]
    pts += [(s["lon"], s["lat"]) for s in geo["stations"]]
    arr = np.asarray(pts, dtype=float)
    w, s = arr.min(0)
    e, n = arr.max(0)
    padx, pady = max((e - w) * 0.06, 0.003), max((n - s) * 0.06, 0.003)
    bbox = (w - padx, s - pady, e + padx, n + pady)
    lat0 = (bbox[1] + bbox[3]) / 2
    fig = Figure(figsize=(9, 9 * (bbox[3] - bbox[1]) / max((bbox[2] - bbox[0])
                                                           * math.cos(math.radians(lat0)),
                                                           1e-9)))
    fig.set_size_inches(9, min(max(fig.get_size_inches()[1], 5), 11))
    ax = fig.add_subplot(1, 1, 1)
    if graph is not None:
        ax.add_collection(LineCollection(list(_road_segments(graph, bbox)), colors="#c8c8c8",
                                         linewidths=0.6, zorder=1))
    for c in geo["closures"]:
        if c["edges"]:
            ax.add_collection(LineCollection([np.asarray(x) for x in c["edges"]],
                                             colors="#e00000", linewidths=3.0, zorder=4))
        g = c.get("geometry") or {}
        if g.get("type") == "Polygon":
            ring = np.asarray(g["coordinates"][0])
            ax.fill(ring[:, 0], ring[:, 1], color="#e00000", alpha=0.15, zorder=3)
        elif g.get("type") == "Point":
            ax.plot(*g["coordinates"], marker="x", color="#e00000", ms=10, mew=2, zorder=5)
    for route in geo["scene_routes"]:
        r = np.asarray(route)
        ax.plot(r[:, 0], r[:, 1], color="#2ca02c", lw=1.0, alpha=0.35, zorder=2)
    for route in geo["transport_routes"]:
        r = np.asarray(route)
        ax.plot(r[:, 0], r[:, 1], color="#1f77b4", lw=1.2, alpha=0.35, zorder=2)
    sev = sorted({t["severity"] for t in result.trips})
    for k, sv in enumerate(sev):
        xs = [(t["lon"], t["lat"]) for t in result.trips if t["severity"] == sv]
        if xs:
            a = np.asarray(xs)
            ax.scatter(a[:, 0], a[:, 1], s=14, color=COLORS[(k + 3) % len(COLORS)],
                       edgecolor="k", linewidths=0.3, zorder=6,
                       label=f"incident: {sv or 'no severity'} ({len(xs)})")
    miss = [(t["lon"], t["lat"]) for t in result.trips if t["status"] != "completed"]
    if miss:
        a = np.asarray(miss)
        ax.scatter(a[:, 0], a[:, 1], s=60, facecolor="none", edgecolor="k", lw=1.2,
                   zorder=7, label=f"not completed ({len(miss)})")
    for h in geo["hospitals"]:
        ax.plot(h["lon"], h["lat"], marker="P", color="#d62728", ms=12, mec="k", zorder=8)
        ax.annotate(h["name"][:40], (h["lon"], h["lat"]), fontsize=7, xytext=(5, 5),
                    textcoords="offset points", zorder=9)
    for st in geo["stations"]:
        ax.plot(st["lon"], st["lat"], marker="^", color="k", ms=9, zorder=8)
    ax.plot([], [], color="#c8c8c8", label="roads (OSM)")
    ax.plot([], [], color="#e00000", lw=3, label="closures")
    ax.plot([], [], color="#2ca02c", label="routes to scene (sample)")
    ax.plot([], [], color="#1f77b4", label="routes to hospital (sample)")
    ax.plot([], [], "P", color="#d62728", mec="k", label="hospitals")
    ax.plot([], [], "^", color="k", label="stations")
    ax.set_xlim(bbox[0], bbox[2])
    ax.set_ylim(bbox[1], bbox[3])
    ax.set_aspect(1 / math.cos(math.radians(lat0)))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(f"{d['scenario']}: {d['variant']['name']}, seed {d['seed']}", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.85)
    ax.text(0.995, 0.005, f"Map data {ATTRIBUTION}", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=8, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    return fig


# ---------------------------------------------------------------------------- files
RUN_COLUMNS = [
    "variant", "seed", "calls", "completed", "not_transported", "unserved",
    "response_mean_s", "response_p50_s", "response_p90_s", "transport_mean_s",
    "transport_p50_s", "transport_p90_s", "diversions", "diversion_share",
    "closure_trips_affected", "closure_extra_total_s", "fleet_utilisation",
]


def _run_row(r: Result) -> dict[str, Any]:
    m = r.metrics
    row = {"variant": r.variant.name, "seed": r.seed, "calls": m["calls"],
           "completed": m["completed"], "not_transported": m["not_transported"],
           "unserved": m["unserved"],
           "response_mean_s": m["response_s"]["mean"], "response_p50_s": m["response_s"]["p50"],
           "response_p90_s": m["response_s"]["p90"],
           "transport_mean_s": m["transport_s"]["mean"],
           "transport_p50_s": m["transport_s"]["p50"],
           "transport_p90_s": m["transport_s"]["p90"],
           "diversions": m["diversions"]["count"], "diversion_share": m["diversions"]["share"],
           "closure_trips_affected": m["closures"]["trips_affected"],
           "closure_extra_total_s": m["closures"]["extra_total_s"],
           "fleet_utilisation": m["fleet"]["utilisation"]}
    for key, share in m["response_within_target"].items():
        row[f"within_{key}"] = share
    return row


def _summary_row(name: str, s: dict[str, Any]) -> dict[str, Any]:
    row = {"variant": name, "seed": "all", "calls": s["calls"],
           "completed": None, "not_transported": s["not_transported"],
           "unserved": s["unserved"],
           "response_mean_s": s["response_s"]["mean"], "response_p50_s": s["response_s"]["p50"],
           "response_p90_s": s["response_s"]["p90"],
           "transport_mean_s": s["transport_s"]["mean"],
           "transport_p50_s": s["transport_s"]["p50"],
           "transport_p90_s": s["transport_s"]["p90"],
           "diversions": s["diversions"], "diversion_share": s["diversion_share"],
           "closure_trips_affected": s["closure_trips_affected"],
           "closure_extra_total_s": s["closure_extra_total_s"], "fleet_utilisation": None}
    for key, share in s["response_within_target"].items():
        row[f"within_{key}"] = share
    return row


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})


def metrics_document(cmp: Comparison) -> dict[str, Any]:
    """The metrics part of a comparison (no trips, timelines or map data)."""
    return {"format": "gyrophare-replay-metrics/1", "scenario": cmp.scenario,
            "variants": [v.to_dict() for v in cmp.variants], "seeds": cmp.seeds,
            "targets_min": cmp.targets_min, "info": cmp.info, "summary": cmp.summary,
            "runs": [{"variant": r.variant.name, "seed": r.seed, "metrics": r.metrics}
                     for r in cmp.results],
            "attribution": ATTRIBUTION}


def write_outputs(cmp: Comparison, out: str | Path, *, graph: RoadGraph | None = None,
                  scenario: Any = None) -> dict[str, Path]:
    """Write ``metrics.json``, ``metrics.csv``, ``trips.csv``, ``occupancy.csv``,
    ``result.json`` (everything, for re-plotting) and ``report.html`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / name for name in ("metrics.json", "metrics.csv", "trips.csv",
                                           "occupancy.csv", "result.json", "report.html")}
    files["metrics.json"].write_text(json.dumps(metrics_document(cmp), indent=1,
                                                ensure_ascii=False) + "\n", encoding="utf-8")
    files["result.json"].write_text(json.dumps(cmp.to_dict(), ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    targets = [f"within_{m:g}min" for m in cmp.targets_min]
    rows = [_run_row(r) for r in cmp.results]
    rows += [_summary_row(name, s) for name, s in cmp.summary.items()]
    _write_csv(files["metrics.csv"], rows, RUN_COLUMNS + targets)
    trip_rows, trip_cols = [], ["variant", "seed"]
    for r in cmp.results:
        for t in r.trips:
            if len(trip_cols) == 2:
                trip_cols += list(t)
            trip_rows.append({"variant": r.variant.name, "seed": r.seed, **t})
    _write_csv(files["trips.csv"], trip_rows, trip_cols)
    occ_rows = []
    for r in cmp.results:
        for key, series in r.data["occupancy"].items():
            hid, bt = key.split("|", 1)
            for t, occ, base, enr in series:
                occ_rows.append({"variant": r.variant.name, "seed": r.seed, "hospital": hid,
                                 "bed_type": bt, "t_s": t, "occupied": occ, "baseline": base,
                                 "en_route": enr})
    _write_csv(files["occupancy.csv"], occ_rows, ["variant", "seed", "hospital", "bed_type",
                                                  "t_s", "occupied", "baseline", "en_route"])
    files["report.html"].write_text(report_html(cmp, graph=graph, scenario=scenario),
                                    encoding="utf-8")
    return files


def _fmt_s(x: float | None) -> str:
    return "–" if x is None else f"{x / 60:.1f} min"


def _fmt_share(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def report_html(cmp: Comparison, *, graph: RoadGraph | None = None, scenario: Any = None
                ) -> str:
    esc = html.escape
    summary = cmp.summary
    names = [v.name for v in cmp.variants]
    rows: list[tuple[str, list[str]]] = [
        ("runs (seeds)", [f"{summary[n]['runs']} ({', '.join(map(str, summary[n]['seeds']))})"
                          for n in names]),
        ("calls", [str(summary[n]["calls"]) for n in names]),
        ("unserved / not transported", [f"{summary[n]['unserved']} / "
                                        f"{summary[n]['not_transported']}" for n in names]),
        ("response mean", [_fmt_s(summary[n]["response_s"]["mean"]) for n in names]),
        ("response p50", [_fmt_s(summary[n]["response_s"]["p50"]) for n in names]),
        ("response p90", [_fmt_s(summary[n]["response_s"]["p90"]) for n in names]),
    ]
    for m in cmp.targets_min:
        rows.append((f"response within {m:g} min",
                     [_fmt_share(summary[n]["response_within_target"][f"{m:g}min"])
                      for n in names]))
    rows += [
        ("transport mean", [_fmt_s(summary[n]["transport_s"]["mean"]) for n in names]),
        ("transport p90", [_fmt_s(summary[n]["transport_s"]["p90"]) for n in names]),
        ("diversions (saturation)", [f"{summary[n]['diversions']} "
                                     f"({_fmt_share(summary[n]['diversion_share'])})"
                                     for n in names]),
        ("trips slowed by closures", [str(summary[n]["closure_trips_affected"])
                                      for n in names]),
        ("extra travel from closures", [_fmt_s(summary[n]["closure_extra_total_s"])
                                        for n in names]),
    ]
    table = "<table><tr><th></th>" + "".join(f"<th>{esc(n)}</th>" for n in names) + "</tr>"
    table += "".join(f"<tr><td>{esc(k)}</td>" + "".join(f"<td>{esc(v)}</td>" for v in vals)
                     + "</tr>" for k, vals in rows) + "</table>"
    hosp = ["<table><tr><th>variant</th><th>hospital</th><th>transports</th>"
            "<th>over capacity</th><th>diverted here / away</th><th>peak occupancy</th></tr>"]
    for v in cmp.variants:
        runs = cmp.by_variant(v.name)
        for hid in runs[0].metrics["hospitals"]:
            hs = [r.metrics["hospitals"][hid] for r in runs]
            peaks: dict[str, float] = {}
            for h in hs:
                for bt, b in h["beds"].items():
                    if b:
                        peaks[bt] = max(peaks.get(bt, 0.0), b["peak_occupancy"])
            hosp.append(
                f"<tr><td>{esc(v.name)}</td><td>{esc(hs[0]['name'])}</td>"
                f"<td>{sum(h['transports'] for h in hs)}</td>"
                f"<td>{sum(h['over_capacity_admissions'] for h in hs)}</td>"
                f"<td>{sum(h['diverted_here'] for h in hs)} / "
                f"{sum(h['diverted_away'] for h in hs)}</td>"
                f"<td>{esc(', '.join(f'{bt} {p:.0%}' for bt, p in peaks.items()))}</td></tr>")
    hosp.append("</table>")
    figures = [
        ("Response times", "Distribution of the response time (call received to ambulance "
         "on scene) per variant, seeds pooled; dashed lines: targets.", fig_response(cmp)),
        ("Hospital loads", "Occupied beds over time (first seed of each variant) against "
         "capacity (dashed: baseline beds, raised by surges).", fig_loads(cmp)),
        ("Saturation levels", "Share of the replay each hospital spent at each overall "
         "level of the saturation board.", fig_levels(cmp)),
    ]
    with_closures = [r for r in cmp.results if r.variant.closures] or cmp.results
    figures.append(("Map", "Incidents, a sample of routes, closures (red), hospitals and "
                    f"stations; {with_closures[0].variant.name}, seed {with_closures[0].seed}.",
                    fig_map(with_closures[0], graph)))
    body = []
    for title, caption, fig in figures:
        body.append(f"<h2>{esc(title)}</h2><p class='cap'>{esc(caption)}</p>"
                    f"<img alt='{esc(title)}' src='data:image/png;base64,{_png(fig)}'>")
    model = getattr(scenario, "model", None)
    desc = esc(model.description) if model is not None else ""
    assumptions = esc(model.assumptions) if model is not None else ""
    first = cmp.results[0].data
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>gyrophare replay: {esc(cmp.scenario)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
.cap {{ color: #555; }} footer {{ margin-top: 2em; color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>Replay: {esc(cmp.scenario)}</h1>
<p>{desc}</p>
<p>Start {esc(first['start'])}, duration {first['duration_s'] / 3600:.1f} h; map
{esc(str(first['map']))}; variants {esc(', '.join(names))}; seeds
{esc(', '.join(map(str, cmp.seeds)))}; executor {esc(str(cmp.info.get('executor', '')))}.</p>
<h2>Summary</h2>{table}
<h2>Hospitals</h2>{''.join(hosp)}
{''.join(body)}
<h2>Assumptions</h2><p>{assumptions}</p>
<p>Simulation model: calls wait FIFO for the free ambulance that reaches them first; the
hospital is chosen by the live dispatcher when the crew leaves the scene; travel times are the
engine's routes at the simulated time (priority: lights and sirens; normal: the same path at
normal traffic speed); beds are freed after a length of stay. See
<code>data/scenarios/README.md</code>.</p>
<footer>Map data {esc(ATTRIBUTION)}. Generated by gyrophare replay.</footer>
</body></html>
"""


__all__ = ["fig_levels", "fig_loads", "fig_map", "fig_response", "metrics_document",
           "report_html", "write_outputs"]
