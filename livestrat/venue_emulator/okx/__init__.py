"""A local venue that speaks OKX's v5 protocol (spot, cash), on the same books as the Binance emulator.

NautilusTrader 1.231's OKX clients take a plain ``http://`` REST base and plain ``ws://`` WebSocket
URLs (the public one for the data client, the private one for the execution client; each derives its
``/business`` sibling), so they run against this venue unchanged but for their base URLs. The matching,
the balances and the trade history are the Binance emulator's :class:`~livestrat.venue_emulator.exchange.Exchange`
and :class:`~livestrat.venue_emulator.accounts.SpotAccount`; this package only speaks OKX: ``auth``
(the ``OK-ACCESS-*`` headers and the WebSocket ``login``), ``shapes`` (the JSON rows the adapter's serde
structs decode) and ``venue`` (the REST routes, the three WebSocket endpoints and the order operations).
"""
