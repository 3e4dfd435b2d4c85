"""The leaderboard: datasets ranked by their latest succeeded result (the JSON API and the page share it)."""
