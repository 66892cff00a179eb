"""Small shared helpers: ids, clock, phones, secrets, pagination, logging."""
