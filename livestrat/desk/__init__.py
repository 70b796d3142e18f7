"""The desk: what a trader sees of the fleet and does to it (``kubectl livestrat``, the dashboard)."""
