"""Epiplex service: upload datasets, queue scoring jobs to workers, serve results and a leaderboard.

The API process never imports torch; only worker processes (see `app.jobs.worker`) call
`estimators.estimate`.
"""
