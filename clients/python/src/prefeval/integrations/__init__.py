"""Integrations with training libraries. Each is imported on its own
(``prefeval.integrations.transformers``) and imports its library lazily, so none is required."""
