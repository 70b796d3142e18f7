"""Post-trade risk control: the risk guard actor (``guard``) on top of a pure limits tracker and the order gate."""
