"""The kopf operator: reconciles LiveStrategy resources into one strategy pod each. Never imports nautilus_trader."""
