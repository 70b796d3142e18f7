"""Run reports (``livestrat report``): what a run, a backtest or a live strategy traded, from its fills.

- ``selection``: which fills (a ledger and a strategy key, or a backtest run now) and what is known around them;
- ``positions``: those fills as NautilusTrader's own ``Position`` objects;
- ``analysis``: NautilusTrader's ``PortfolioAnalyzer`` fed with them, and the report's figures;
- ``comparison``: a paper run against the backtest of the same spec and window;
- ``render``: the report's files (report.html, equity.png, fills.csv, summary.json);
- ``command``: the CLI. See docs/reports.md.
"""
