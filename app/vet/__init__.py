"""Vet: thresholds and verdicts, the config file, inputs, reports, the CLI and the API service."""
