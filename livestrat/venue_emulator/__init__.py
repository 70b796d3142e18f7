"""A local venue that speaks Binance's public protocol (spot and USD-M futures), fed by a catalog.

NautilusTrader's own Binance adapter connects to it unchanged except for its base URLs, so the live
path (start-up reconciliation, fills, halts, the risk gate) is exercised against a venue that answers
as Binance does, on this machine: tests start it, and ``livestrat rehearse`` runs a ``mode: live``
manifest against it. Market data is replayed from a catalog (the same catalogs ``livestrat run``
uses), restamped onto the wall clock, so matching is deterministic and a test can ask the venue for
every fill it made. Modules: ``events`` (what the feed hands the exchange and the streams), the
feed and market endpoints, the exchange (accounts, orders, matching), the authenticated endpoints
and user-data streams, faults on demand, and ``server`` (the aiohttp application and the command).
"""
