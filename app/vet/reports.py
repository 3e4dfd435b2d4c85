"""Vet reports: a plain-text table, Markdown (job summaries, PR comments), HTML, JSON and JUnit XML.

Every writer shows the measured value beside its threshold, so a failing CI job says by how
much it failed, not only that it did.
"""
from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.vet.vetting import Check, Figures, Thresholds, Verdict, exit_code, format_value

REPORT_KINDS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
                ".json": "json", ".xml": "junit"}
MARK = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}
EMOJI = {"passed": "✅", "failed": "❌", "error": "⚠️"}


@dataclass
class VetSummary:
    """One `epiplex vet` run: the verdicts and what they were judged with."""

    verdicts: list[Verdict]
    thresholds: Thresholds
    settings: dict[str, Any] = field(default_factory=dict)  # where, preset, budgets, estimator...
    baseline_source: str | None = None
    version: str = ""
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return exit_code(self.verdicts)

    @property
    def status(self) -> str:
        return {0: "passed", 1: "failed", 2: "error"}[self.exit_code]

    def headline(self) -> str:
        total = len(self.verdicts)
        failed = sum(v.status == "failed" for v in self.verdicts)
        errors = sum(v.status == "error" for v in self.verdicts)
        parts = [f"{total - failed - errors} of {total} dataset{'s' * (total != 1)} passed"]
        if failed:
            parts.append(f"{failed} failed")
        if errors:
            parts.append(f"{errors} could not be vetted")
        return ", ".join(parts)

    def describe_settings(self) -> str:
        s = self.settings
        budgets = s.get("budgets")
        method = f"budgets {', '.join(f'{b:.0e}' for b in budgets)} FLOPs" if budgets \
            else f"preset {s.get('preset')}"
        families = f", families {' '.join(s['families'])}" if s.get("families") else ""
        return (f"{method}, {s.get('estimator', 'prequential')}, seeds {s.get('seeds', 1)}{families}, "
                f"format {s.get('format', 'bytes')}, {s.get('where', 'local')}")

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code, "headline": self.headline(),
                "settings": self.settings, "thresholds": self.thresholds.to_dict(),
                "baseline_source": self.baseline_source, "version": self.version,
                "seconds": round(self.seconds, 3), "datasets": [v.to_dict() for v in self.verdicts]}


def _threshold_text(check: Check) -> str:
    return f"{check.comparison} {format_value(check.threshold, check.unit)}"


def _rows(summary: VetSummary) -> list[tuple[str, str, str, str, str]]:
    """(dataset, check, measured, threshold, result) for every check, and one row per error."""
    rows = []
    for verdict in summary.verdicts:
        if verdict.status == "error":
            rows.append((verdict.name, "-", "-", "-", f"ERROR: {verdict.error}"))
        for check in verdict.checks:
            rows.append((verdict.name, check.name, format_value(check.measured, check.unit),
                         _threshold_text(check), "pass" if check.passed else "FAIL"))
    return rows


def table(summary: VetSummary) -> str:
    """The plain-text table `epiplex vet` prints."""
    header = ("dataset", "check", "measured", "threshold", "result")
    rows = _rows(summary)
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4]
             for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  ------")
    for verdict in summary.verdicts:
        if verdict.figures:
            lines.append(f"{verdict.name}: {_figures_line(verdict)}")
        for check in verdict.failures:
            lines.append(f"{verdict.name}: {check.name} failed: {check.detail}")
        lines += [f"{verdict.name}: warning: {warning}" for warning in verdict.warnings]
    lines.append(f"{MARK[summary.status]}: {summary.headline()} ({summary.describe_settings()})")
    return "\n".join(lines)


def _figures_line(verdict: Verdict) -> str:
    f = verdict.figures
    zstd = f"{f.zstd_bits_per_byte:.4f}" if f.zstd_bits_per_byte is not None else "n/a"
    cached = {True: ", cached result", False: ""}.get(verdict.cached, "")
    size = f"{f.bytes:,} bytes, " if f.bytes is not None else ""
    return (f"{size}S {_with_error(f)} bits/byte, H {f.entropy_bits_per_byte:.4f} bits/byte, "
            f"zstd {zstd} bits/byte{cached}")


def _with_error(f: Figures) -> str:
    """S per byte, with its standard error where the result carries one."""
    error = f.epiplexity_stderr_bits_per_byte
    return f"{f.epiplexity_bits_per_byte:.4f}" + (f" ± {error:.4f}" if error is not None else "")


def markdown(summary: VetSummary) -> str:
    """GitHub-flavoured Markdown for $GITHUB_STEP_SUMMARY or a pull-request comment."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"## {EMOJI[summary.status]} Epiplex vet: {summary.headline()}", "",
             f"Settings: {cell(summary.describe_settings())}. Figures are read at the largest budget; "
             "S = epiplexity, H = time-bounded entropy, in bits per byte.", "",
             "| Dataset | Check | Measured | Threshold | Result |", "|---|---|---:|---:|---|"]
    for name, check, measured, threshold, result in _rows(summary):
        mark = {"pass": "✅ pass", "FAIL": "❌ fail"}.get(result, f"⚠️ {result}")
        lines.append(f"| `{cell(name)}` | {check} | {measured} | {cell(threshold)} | {cell(mark)} |")
    scored = [v for v in summary.verdicts if v.figures]
    if scored:
        lines += ["", "| Dataset | Bytes | S bits/byte | H bits/byte | zstd bits/byte | zstd ratio | "
                  "S total bits | Budget FLOPs | Cached |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for v in scored:
            f = v.figures
            lines.append("| " + " | ".join([
                f"`{cell(v.name)}`", _maybe(f.bytes, "{:,}"), _with_error(f),
                f"{f.entropy_bits_per_byte:.4f}", _maybe(f.zstd_bits_per_byte, "{:.4f}"),
                _maybe(f.zstd_ratio, "{:.4f}"), _maybe(f.epiplexity_bits, "{:,.0f}"),
                _maybe(f.budget_flops, "{:.1e}"), {True: "yes", False: "no"}.get(v.cached, "-")]) + " |")
    details = [(v.name, c.detail) for v in summary.verdicts for c in v.failures]
    details += [(v.name, f"warning: {w}") for v in summary.verdicts for w in v.warnings]
    if details:
        lines += [""] + [f"- `{cell(name)}`: {cell(text)}" for name, text in details]
    if summary.baseline_source:
        lines += ["", f"Baseline: {cell(summary.baseline_source)}."]
    lines += ["", f"<sub>epiplex {summary.version}, {summary.seconds:.1f} s</sub>", ""]
    return "\n".join(lines)


def _maybe(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


HTML_STYLE = ("table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.3em .6em}"
              ".num{text-align:right;font-variant-numeric:tabular-nums}tr.fail{background:#ffebe9}"
              "tr.error{background:#fff8c5}tr.pass{background:#dafbe1}.meta{color:#57606a}")


def html_fragment(summary: VetSummary) -> str:
    """The report's content as HTML elements (no page around it): the CLI's file and the web page share it."""
    e = html.escape
    color = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#9a6700"}
    body = [f"<h1 style='color:{color[summary.status]}'>Epiplex vet: {e(summary.headline())}</h1>",
            f"<p>{e(summary.describe_settings())}. Figures at the largest budget; S = epiplexity, "
            "H = time-bounded entropy, in bits per byte.</p>",
            "<table><thead><tr><th>Dataset</th><th>Check</th><th>Measured</th><th>Threshold</th>"
            "<th>Result</th></tr></thead><tbody>"]
    for name, check, measured, threshold, result in _rows(summary):
        state = "pass" if result == "pass" else ("fail" if result == "FAIL" else "error")
        body.append(f"<tr class='{state}'><td><code>{e(name)}</code></td><td>{e(check)}</td>"
                    f"<td class='num'>{e(measured)}</td><td class='num'>{e(threshold)}</td>"
                    f"<td>{e(result)}</td></tr>")
    body.append("</tbody></table>")
    for verdict in summary.verdicts:
        if not (verdict.figures or verdict.warnings or verdict.failures):
            continue
        body.append(f"<h2><code>{e(verdict.name)}</code>: {e(verdict.status)}</h2><ul>")
        if verdict.figures:
            body.append(f"<li>{e(_figures_line(verdict))}</li>")
        body += [f"<li>{e(check.detail)}</li>" for check in verdict.failures]
        body += [f"<li>warning: {e(warning)}</li>" for warning in verdict.warnings]
        body.append("</ul>")
    if summary.baseline_source:
        body.append(f"<p>Baseline: {e(summary.baseline_source)}</p>")
    body.append(f"<p class='meta'>epiplex {e(summary.version)}, {summary.seconds:.1f} s</p>")
    return "\n".join(body)


def html_report(summary: VetSummary) -> str:
    """A self-contained HTML page (no external assets)."""
    e = html.escape
    style = "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}" + HTML_STYLE
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>Epiplex vet: "
            f"{e(summary.status)}</title><style>{style}</style></head><body>\n"
            + html_fragment(summary) + "\n</body></html>\n")


def junit(summary: VetSummary) -> str:
    """JUnit XML: a test case per check (named after the check), failures carrying the measured values."""
    cases = [(v, c) for v in summary.verdicts for c in v.checks]
    errors = [v for v in summary.verdicts if v.status == "error"]
    failures = sum(not c.passed for _, c in cases)
    counts = {"tests": str(len(cases) + len(errors)), "failures": str(failures), "errors": str(len(errors))}
    root = ET.Element("testsuites", name="epiplex vet", time=f"{summary.seconds:.3f}", **counts)
    suite = ET.SubElement(root, "testsuite", name="epiplex vet", time=f"{summary.seconds:.3f}", **counts)
    for verdict, check in cases:
        case = ET.SubElement(suite, "testcase", classname=verdict.name, name=check.name)
        if not check.passed:
            failure = ET.SubElement(case, "failure", type="threshold", message=check.detail)
            failure.text = (f"measured {format_value(check.measured, check.unit)}, "
                            f"threshold {_threshold_text(check)}")
    for verdict in errors:
        case = ET.SubElement(suite, "testcase", classname=verdict.name, name="vet")
        ET.SubElement(case, "error", type="input", message=verdict.error or "could not be vetted")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def report_kind(path: str | Path) -> str:
    """markdown, html, json or junit, from the file's extension."""
    kind = REPORT_KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise ValueError(f"cannot tell the report type of {str(path)!r}: "
                         "name it .md, .html or .json (JUnit XML: --junit FILE.xml)")
    return kind


def render(summary: VetSummary, kind: str) -> str:
    if kind == "markdown":
        return markdown(summary)
    if kind == "html":
        return html_report(summary)
    if kind == "junit":
        return junit(summary)
    return json.dumps(summary.to_dict(), indent=2) + "\n"


def write(summary: VetSummary, path: str | Path, kind: str | None = None) -> None:
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(summary, kind or report_kind(path)), encoding="utf-8")
