"""Datasets as the API and the pages read them."""
