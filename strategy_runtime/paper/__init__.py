"""Paper trading: a simulated venue fed by a catalog's history, through the same live node a live strategy runs in.

``catalog`` (the ParquetDataCatalog a paper strategy reads, ``sample_data`` for ``data.sample``),
``replay`` (the data client streaming it in lockstep), ``sandbox`` (the fixed sandbox execution
client) and ``venue`` (the simulated venue's settings, shared with the backtest oracle).
"""
