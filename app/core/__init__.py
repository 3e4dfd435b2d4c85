"""Settings, database, models and migrations, logging, ids and metrics: what every feature uses."""
