"""One module per part of the native API, each with a sync and an async class."""
