"""Customer-initiated collections: Daraja's C2B Register URL, validation and confirmation."""
