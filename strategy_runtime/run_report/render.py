"""The report's files: equity.png (matplotlib), report.html (NautilusTrader's plotly tearsheet and the
report's tables), fills.csv (as ``livestrat fills`` writes it) and summary.json (the figures).

The HTML page embeds plotly.js and the PNG, so it opens offline, from a copy, anywhere. Nothing
in any file comes from a DSN but ``host:port/database``.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from strategy_runtime.ledger.export import fill_to_json, fills_csv
from strategy_runtime.ledger.records import COLUMNS
from strategy_runtime.run_report.analysis import RunFigures
from strategy_runtime.run_report.comparison import SHOWN, PaperVsBacktest
from strategy_runtime.run_report.selection import ReportInput

FILES = ("report.html", "equity.png", "fills.csv", "summary.json")


@dataclass(frozen=True)
class Written:
    directory: Path
    files: dict[str, Path]


def amounts(values: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{amount:f} {currency}" for currency, amount in sorted(values.items())) or "none"


def _plain(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {currency: f"{amount:f}" for currency, amount in sorted(values.items())}


def slippage_text(figures: RunFigures) -> str:
    """The slippage line: the figure, and over how many of the fills (those with an arrival price)."""
    if figures.slippage_bps is None:
        return "none: no fill has an arrival price"
    return (
        f"{figures.slippage_bps:f} bps over {figures.fills_with_arrival_price} of {figures.fills} fills "
        "(positive: worse than the market when the order was sent)"
    )


def summary_of(report: ReportInput, figures: RunFigures, comparison: PaperVsBacktest | None, note: str | None) -> dict:
    """summary.json: the figures, exact decimals as text."""
    stats = figures.statistics
    return {
        "kind": report.kind,
        "strategy_key": report.strategy_key,
        "ledger": report.ledger,
        "fills": figures.fills,
        "trades": figures.trades,
        "first_fill": figures.first_fill.isoformat() if figures.first_fill is not None else None,
        "last_fill": figures.last_fill.isoformat() if figures.last_fill is not None else None,
        "realized_pnl": _plain(figures.realized_pnl),
        "commissions": _plain(figures.commissions),
        "starting_balances": _plain(figures.starting_balances),
        "final_equity": _plain(figures.final_equity),
        # Against the arrival price, over the fills that have one (the status's slippageBps, recomputed).
        "slippage_bps": None if figures.slippage_bps is None else f"{figures.slippage_bps:f}",
        "fills_with_arrival_price": figures.fills_with_arrival_price,
        "open_positions": [
            {k: f"{v:f}" if isinstance(v, Decimal) else v for k, v in asdict(p).items()} for p in figures.open_positions
        ],
        "statistics": {"pnls": stats.pnls, "returns": stats.returns, "general": stats.general},
        "comparison": _comparison_json(comparison),
        "comparison_note": note,
        "instruments": "catalog" if report.instruments else "stand-in (linear, multiplier 1, in the quote currency)",
    }


def _comparison_json(comparison: PaperVsBacktest | None) -> dict | None:
    if comparison is None:
        return None
    return {
        "agrees": comparison.agrees,
        "verdict": comparison.verdict(),
        "paper_fills": comparison.paper_fills,
        "backtest_fills": comparison.backtest_fills,
        "matched": comparison.matched,
        "only_in_paper": list(comparison.only_in_paper),
        "only_in_backtest": list(comparison.only_in_backtest),
        "price_differences": [asdict(d) for d in comparison.price_differences],
        "differences": [asdict(d) for d in comparison.differences],
        "paper_realized_pnl": _plain(comparison.paper_realized_pnl),
        "backtest_realized_pnl": _plain(comparison.backtest_realized_pnl),
    }


def equity_png(figures: RunFigures, title: str) -> bytes:
    """Equity (the account's balance after each fill) and its drawdown from the running peak, per currency."""
    figure = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # Agg, set on this figure alone: no global backend, no display
    equity_axes, drawdown_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    figure.suptitle(title, fontsize=11)
    if not figures.fills:
        for axes in (equity_axes, drawdown_axes):
            axes.text(0.5, 0.5, "no fills", ha="center", va="center", fontsize=16, transform=axes.transAxes)
            axes.set_xticks([])
    for currency, points in sorted(figures.equity.items()):
        if not points:
            continue
        times = [t.to_pydatetime(warn=False) for t, _ in points]  # matplotlib plots microseconds
        values = [float(v) for _, v in points]
        peaks, drawdowns = [], []
        for value in values:
            peaks.append(max(value, peaks[-1]) if peaks else value)
            drawdowns.append(value - peaks[-1])
        equity_axes.step(times, values, where="post", label=currency, linewidth=1.2)
        drawdown_axes.fill_between(times, drawdowns, 0, step="post", alpha=0.35, label=currency)
        drawdown_axes.step(times, drawdowns, where="post", linewidth=0.8)
    unit = f" ({next(iter(figures.equity))})" if len(figures.equity) == 1 else ""
    equity_axes.set_ylabel(f"equity{unit}")
    equity_axes.grid(True, alpha=0.3)
    drawdown_axes.set_ylabel(f"drawdown{unit}")
    drawdown_axes.set_xlabel("time of the fills (UTC)")
    drawdown_axes.grid(True, alpha=0.3)
    if len(figures.equity) > 1:
        equity_axes.legend(loc="upper left")
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _table(rows: Iterable[Iterable[Any]], header: Iterable[str] | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


STYLE = """<style>
.livestrat-report { font-family: sans-serif; margin: 1em 2em; }
.livestrat-report table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
.livestrat-report th, .livestrat-report td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
.livestrat-report th:first-child, .livestrat-report td:first-child { text-align: left; }
.livestrat-report .agrees { color: #1a7f37; } .livestrat-report .differs { color: #cf222e; }
</style>"""


def report_sections(
    report: ReportInput, figures: RunFigures, comparison: PaperVsBacktest | None, note: str | None, png: bytes
) -> str:
    """The report's own part of the page: the figures, statistics, comparison and the fills."""
    parts = [STYLE, '<div class="livestrat-report">']
    title = f"{report.strategy_key} ({report.kind}{', ' + report.ledger if report.ledger else ''})"
    parts.append(f"<h1>livestrat report: {html.escape(title)}</h1>")
    if not figures.fills:
        parts.append(f"<p><b>{html.escape(report.strategy_key)}: no fills</b> in this {html.escape(report.kind)}.</p>")
    rows = [
        ("fills", f"{figures.fills} fills"),
        ("positions (round trips)", figures.trades),
        ("first fill", figures.first_fill),
        ("last fill", figures.last_fill),
        ("realized PnL", amounts(figures.realized_pnl)),
        ("commissions", amounts(figures.commissions)),
        ("starting balances", amounts(figures.starting_balances)),
        ("final equity", amounts(figures.final_equity)),
        ("slippage vs arrival", slippage_text(figures)),
    ]
    for p in figures.open_positions:
        rows.append(
            (
                f"open: {p.instrument_id}",
                f"{p.side} {p.quantity:f} @ {p.average_price:f}, unrealized {p.unrealized_pnl:f} {p.currency} "
                f"at the last fill's price {p.last_price:f}",
            )
        )
    parts.append("<h2>Figures</h2>" + _table(rows))
    encoded = base64.b64encode(png).decode()
    parts.append(f'<h2>Equity and drawdown</h2><img alt="equity and drawdown" src="data:image/png;base64,{encoded}">')
    stats = figures.statistics
    if stats.pnls or stats.returns or stats.general:
        parts.append("<h2>Statistics (NautilusTrader PortfolioAnalyzer)</h2>")
        for currency, values in stats.pnls.items():
            parts.append(f"<h3>PnL, {html.escape(currency)}</h3>" + _table(values.items()))
        parts.append("<h3>Returns</h3>" + _table(stats.returns.items()))
        parts.append("<h3>General</h3>" + _table(stats.general.items()))
    parts.append(_comparison_html(comparison, note))
    parts.append(f"<h2>Fills ({figures.fills})</h2>")
    parts.append(_table(([fill_to_json(f)[c] for c in COLUMNS] for f in report.fills), COLUMNS))
    parts.append("</div>")
    return "\n".join(parts)


def _comparison_html(comparison: PaperVsBacktest | None, note: str | None) -> str:
    if comparison is None:
        return f"<h2>Paper against the backtest</h2><p>{html.escape(note)}</p>" if note else ""
    verdict = "agrees" if comparison.agrees else "differs"
    out = [
        "<h2>Paper against the backtest of the same window</h2>",
        f'<p class="{verdict}">{html.escape(comparison.verdict())}</p>',
        _table(
            [
                ("fills", comparison.paper_fills, comparison.backtest_fills),
                ("realized PnL", amounts(comparison.paper_realized_pnl), amounts(comparison.backtest_realized_pnl)),
                ("only here", len(comparison.only_in_paper), len(comparison.only_in_backtest)),
            ],
            ("", "paper", "backtest"),
        ),
    ]
    if comparison.only_in_paper or comparison.only_in_backtest:
        shown = [*comparison.only_in_paper[:SHOWN], *comparison.only_in_backtest[:SHOWN]]
        out.append(f"<p>unmatched (first {SHOWN} of each): {html.escape(', '.join(shown))}</p>")
    if comparison.differences:
        out.append(
            _table(
                (
                    (d.instrument_id, d.trade_id, d.what, d.paper, d.backtest, d.difference)
                    for d in comparison.differences
                ),
                ("instrument", "trade id", "what", "paper", "backtest", "paper - backtest"),
            )
        )
    return "\n".join(out)


def tearsheet_html(report: ReportInput, figures: RunFigures) -> str | None:
    """NautilusTrader's plotly tearsheet of the statistics and returns, a whole page with plotly.js in it; None
    when there is nothing to chart (no position closed, so no return)."""
    from nautilus_trader.analysis.tearsheet import create_tearsheet_from_stats

    stats = figures.statistics
    if stats.returns_series.empty:
        return None
    run_info = {
        "Strategy key": report.strategy_key,
        "Kind": report.kind,
        "Fills": str(figures.fills),
        "First fill": str(figures.first_fill),
        "Last fill": str(figures.last_fill),
    }
    account_info = {f"Starting balance ({c})": f"{a:f}" for c, a in sorted(figures.starting_balances.items())}
    account_info |= {f"Final equity ({c})": f"{a:f}" for c, a in sorted(figures.final_equity.items())}
    # output_path=None: the page as text, plotly.js embedded (fig.to_html's default), so it works offline
    return create_tearsheet_from_stats(
        stats_pnls=stats.pnls,
        stats_returns=stats.returns,
        stats_general=stats.general,
        returns=stats.returns_series,
        output_path=None,
        title=f"livestrat report: {report.strategy_key}",
        run_info=run_info,
        account_info=account_info,
    )


def page(
    report: ReportInput, figures: RunFigures, comparison: PaperVsBacktest | None, note: str | None, png: bytes
) -> str:
    sections = report_sections(report, figures, comparison, note, png)
    tearsheet = tearsheet_html(report, figures)
    if tearsheet is None or "</body>" not in tearsheet:
        title = html.escape(f"livestrat report: {report.strategy_key}")
        head = f'<head><meta charset="utf-8"><title>{title}</title></head>'
        return f"<!DOCTYPE html>\n<html>{head}<body>\n{sections}\n</body></html>\n"
    # The report's tables first, then NautilusTrader's tearsheet below them.
    head, _, rest = tearsheet.partition("<body>")
    return f"{head}<body>\n{sections}\n{rest}"


def write_report(
    report: ReportInput, figures: RunFigures, comparison: PaperVsBacktest | None, note: str | None
) -> Written:
    directory = report.output
    directory.mkdir(parents=True, exist_ok=True)
    png = equity_png(figures, f"{report.strategy_key}: equity and drawdown")
    files = {name: directory / name for name in FILES}
    files["equity.png"].write_bytes(png)
    files["fills.csv"].write_text(fills_csv(report.fills))
    summary = summary_of(report, figures, comparison, note)
    files["summary.json"].write_text(json.dumps(summary, indent=1, default=str) + "\n")
    files["report.html"].write_text(page(report, figures, comparison, note, png))
    return Written(directory, files)
