"""`flask reports render SLUG --out FILE.html|FILE.pdf`: a self-contained static report of a
campaign (issue 7 point 6).

The figures are those of the big screen (``backend.services.reports.dashboard_data``), formatted
exactly as the dashboard page formats them (static/dashboard/dashboard.js), plus the ledger head
and the methodology. The HTML needs nothing else: inline CSS, charts as inline SVG drawn here,
no script, no remote resource (its Content-Security-Policy forbids any). The PDF is that HTML
printed by headless Chromium (``--print-to-pdf``), so both show the same figures.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import render_template

from backend.extensions import db
from backend.models import Campaign, CampaignLedger
from backend.services.campaigns import campaign_doc
from backend.services.reports import dashboard_data
from campaigns.calendar import local_today
from campaigns.document import effective_actions
from campaigns.methodology import load_methodology

TEMPLATE = "report.html"
FORMATS = (".html", ".pdf")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
# The flags of this project's machines: no sandbox (root), no background traffic at all.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-extensions",
                  "--no-pdf-header-footer", "--print-to-pdf-no-header")
PDF_TIMEOUT_S = 120
LINE_CHART = {"width": 720, "height": 260, "left": 84, "right": 16, "top": 14, "bottom": 34}
BAR_CHART = {"width": 720, "row": 26, "label": 150, "value": 120}
MAX_X_LABELS = 8
MAX_BARS = 12


class ReportError(Exception):
    """The report could not be written (unknown format, no Chromium, Chromium failed)."""


# --- formats (the dashboard's: static/dashboard/dashboard.js) ------------------------------

def to_mg(grams) -> int:
    """Milligrams of a grams figure (int, or float/Decimal with at most 3 decimals: exact)."""
    return int((Decimal(str(grams)) * 1000).to_integral_value())


def _round_div(value: int, divisor: int) -> int:
    """value / divisor rounded half away from zero."""
    quotient = (abs(value) + divisor // 2) // divisor
    return -quotient if value < 0 else quotient


def _fixed3(thousandths: int) -> str:
    sign = "-" if thousandths < 0 else ""
    whole, frac = divmod(abs(thousandths), 1000)
    return f"{sign}{whole:,}.{frac:03d}"


def fmt_kg(grams) -> str:
    """Kilograms with 3 decimals (whole grams, half away from zero), grouped by ','."""
    return _fixed3(_round_div(to_mg(grams), 1000))


def fmt_tonnes(grams) -> str:
    """Tonnes with 3 decimals (whole kilograms, half away from zero)."""
    return _fixed3(_round_div(to_mg(grams), 1_000_000))


def fmt_percent(part_g, whole_g) -> str:
    """Hundredths of a percent rounded down, 2 decimals; "0.00" when the whole is 0."""
    whole_mg = to_mg(whole_g)
    if whole_mg <= 0:
        return "0.00"
    hundredths = max(0, to_mg(part_g) * 10000 // whole_mg)
    return f"{hundredths // 100:,}.{hundredths % 100:02d}"


def fmt_trees(trees) -> str:
    tenths = int((Decimal(str(trees)) * 10).to_integral_value())
    return f"{tenths // 10:,}.{tenths % 10}"


def fmt_count(value) -> str:
    return f"{int(value):,}"


# --- charts (inline SVG geometry; the template draws it, escaping every text) --------------

def nice_step(maximum: float, ticks: int = 4) -> float:
    """A 1, 2 or 5 times a power of ten step so that ``ticks`` steps cover ``maximum``."""
    if maximum <= 0:
        return 1.0
    raw = maximum / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(f * power for f in (1, 2, 5, 10) if f * power >= raw * (1 - 1e-12))


def _tick_label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == 0 else f"{value:g}"


def line_chart(rows: list[dict]) -> dict:
    """The cumulative reduction (kg) per day: polyline points, area, y ticks, x labels."""
    c = LINE_CHART
    plot_w = c["width"] - c["left"] - c["right"]
    plot_h = c["height"] - c["top"] - c["bottom"]
    values = [to_mg(row["cumulative_g"]) / 1_000_000 for row in rows]
    step = nice_step(max(values, default=0.0))
    top = step * 4
    count = len(values)

    def x_of(i: int) -> float:
        return c["left"] + (plot_w / 2 if count == 1 else plot_w * i / (count - 1))

    def y_of(v: float) -> float:
        return c["top"] + plot_h * (1 - v / top)

    points = [(round(x_of(i), 1), round(y_of(v), 1)) for i, v in enumerate(values)]
    every = max(1, -(-count // MAX_X_LABELS))
    x_labels = [{"x": x, "text": _day_label(rows[i]["date"])}
                for i, (x, _y) in enumerate(points) if i % every == 0 or i == count - 1]
    baseline = round(y_of(0), 1)
    area = ""
    if points:
        area = " ".join(f"{x},{y}" for x, y in [(points[0][0], baseline), *points,
                                                   (points[-1][0], baseline)])
    return {
        **c, "plot_w": plot_w, "plot_h": plot_h, "baseline": baseline,
        "points": " ".join(f"{x},{y}" for x, y in points), "dots": points, "area": area,
        "y_ticks": [{"y": round(y_of(step * i), 1), "text": _tick_label(step * i)}
                    for i in range(5)],
        "x_labels": x_labels,
    }


def _day_label(day) -> str:
    return (day.isoformat() if isinstance(day, date) else str(day))[5:]


def bar_chart(rows: list[dict]) -> dict:
    """Horizontal bars of the actions with a reduction, largest first (at most MAX_BARS)."""
    c = BAR_CHART
    shown = [row for row in rows if to_mg(row["reduction_g"]) > 0][:MAX_BARS]
    largest = max((to_mg(row["reduction_g"]) for row in shown), default=0)
    track = c["width"] - c["label"] - c["value"] - 16
    bars = []
    for i, row in enumerate(shown):
        width = track * to_mg(row["reduction_g"]) / largest if largest else 0
        bars.append({"y": i * c["row"], "width": round(max(width, 1.0), 1),
                     "name": row["name"], "text": fmt_kg(row["reduction_g"])})
    return {**c, "track": track, "height": max(1, len(bars)) * c["row"], "bars": bars,
            "value_x": c["label"] + track + 12}


# --- the report ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LedgerHead:
    seq: int
    hash: str
    verified_seq: int
    verified_dt: datetime | None
    first_bad_seq: int | None


def report_context(campaign: Campaign, now: datetime) -> dict:
    """Everything report.html shows, formatted (dashboard_data's figures, the ledger head,
    the methodology in force today)."""
    data = dashboard_data(campaign, now)
    doc = campaign_doc(campaign)
    methodology = load_methodology(doc.methodology)
    today = local_today(now, doc.timezone)
    day = min(max(today, doc.starts_on), doc.ends_on)
    versions = sorted({rule.methodology_version for rule in
                       effective_actions(doc, methodology, day)})
    ledger = db.session.get(CampaignLedger, campaign.id)
    summary = data["summary"]
    zone = ZoneInfo(doc.timezone)
    return {
        "data": data,
        "figures": summary_figures(summary),
        "timeseries": [{**row, "reduction_kg": fmt_kg(row["reduction_g"]),
                        "cumulative_kg": fmt_kg(row["cumulative_g"])}
                       for row in data["timeseries"]],
        "actions": [{**row, "reduction_kg": fmt_kg(row["reduction_g"]),
                     "share": fmt_percent(row["reduction_g"], summary["reduction_g"])}
                    for row in data["by_action"]],
        "teams": [{**row, "reduction_kg": fmt_kg(row["reduction_g"]),
                   "total_kg": fmt_kg(row["total_g"])} for row in data["top_teams"][:10]],
        "individuals": [{**row, "reduction_kg": fmt_kg(row["reduction_g"])}
                        for row in data["top_individuals"][:10]],
        "line": line_chart(data["timeseries"]),
        "bars": bar_chart(data["by_action"]),
        "progress_fill": min(100.0, to_mg(summary["reduction_g"]) * 100
                             / max(1, to_mg(summary["target_g"]))),
        "ledger": LedgerHead(ledger.head_seq, ledger.head_hash, ledger.verified_seq,
                             ledger.verified_dt, ledger.first_bad_seq),
        "methodology": {"id": doc.methodology, "name": methodology.name,
                        "versions": versions, "revisions": len(doc.revisions)},
        "as_of_local": now.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "as_of_utc": now.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timezone": doc.timezone,
    }


def summary_figures(summary: dict) -> dict[str, str]:
    """The headline figures, keyed as the dashboard's data-testid attributes."""
    return {
        "reduction-kg": fmt_kg(summary["reduction_g"]),
        "reduction-t": fmt_tonnes(summary["reduction_g"]),
        "target-kg": fmt_kg(summary["target_g"]),
        "progress-pct": fmt_percent(summary["reduction_g"], summary["target_g"]),
        "trees": fmt_trees(summary["trees"]),
        "participants": fmt_count(summary["participants"]),
        "active-today": fmt_count(summary["active_today"]),
        "records": fmt_count(summary["records"]),
    }


def render_report_html(campaign: Campaign, now: datetime) -> str:
    """The report as one self-contained HTML document (needs an app context)."""
    return render_template(TEMPLATE, **report_context(campaign, now))


def find_chromium() -> str | None:
    """Chromium's executable (TANPU_CHROMIUM, else the usual names), or None."""
    for candidate in (os.environ.get("TANPU_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def print_pdf(html_path: Path, pdf_path: Path) -> None:
    """Print an HTML file to PDF with headless Chromium on a fresh profile; raises
    ReportError when Chromium is missing or fails."""
    chromium = find_chromium()
    if chromium is None:
        raise ReportError("PDF needs Chromium (Debian package: chromium); "
                          "write the report as .html instead")
    with tempfile.TemporaryDirectory(prefix="tanpu-report-") as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, timeout=PDF_TIMEOUT_S,  # noqa: S603
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as error:
            raise ReportError(f"Chromium did not print in {PDF_TIMEOUT_S} s") from error
    if done.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise ReportError(f"Chromium failed to print the PDF: {' / '.join(tail)}")


def write_report(campaign: Campaign, out: Path, now: datetime) -> Path:
    """Write the report to ``out`` (.html, or .pdf printed from the same HTML)."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ReportError(f"--out must end in .html or .pdf (got {out.name!r})")
    html = render_report_html(campaign, now)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        out.write_text(html, encoding="utf-8")
        return out
    with tempfile.TemporaryDirectory(prefix="tanpu-report-html-") as folder:
        html_path = Path(folder) / "report.html"
        html_path.write_text(html, encoding="utf-8")
        partial = out.with_name(out.name + ".part")
        partial.unlink(missing_ok=True)
        print_pdf(html_path, partial)
        partial.replace(out)
    return out
