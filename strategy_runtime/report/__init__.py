"""What the runtime tells the world: the reporter actor (fills into the ledger, the trading state), the status
push into its own LiveStrategy, and the HTTP endpoints and Prometheus metrics."""
