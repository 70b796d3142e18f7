"""The strategy pod process and the local runner: a NautilusTrader node per LiveStrategy. Never imports kopf."""
