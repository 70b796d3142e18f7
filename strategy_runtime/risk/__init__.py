"""Post-trade risk control: the risk guard actor and the parts it decides with.

``limits`` (the pure limits tracker: PnL books, the UTC day, the peak, breaches; no node),
``breach`` (a breach, the limit names, the RiskEngine's denials translated), ``gate`` (the order
gate on ``ExecEngine.execute``), ``guard`` (``RiskGuard``, the NautilusTrader actor, and its
frozen ``RiskGuardConfig``), ``persistence`` (risk halts and baselines kept in the ledger, and
orders held while the ledger lags).
"""
