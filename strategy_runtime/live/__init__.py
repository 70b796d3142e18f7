"""Live trading: the venue adapters' data and execution clients (``venues``) and the conversion of
``spec.venue.options`` to the adapters' config fields (``venue_options``)."""
