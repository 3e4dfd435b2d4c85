"""Access control: API keys, who owns and sees what, quotas and rate limits per key, the loopback guard."""
