"""Performance harness of the Mirage operator (run with ``make benchmark``)."""
