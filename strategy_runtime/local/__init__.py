"""The runtime on a laptop: ``livestrat run`` (``run``, with ``config`` turning a manifest into a
``RuntimeConfig``), ``livestrat backtest`` (``backtest``, the oracle) and the end-of-run ``summary``."""
