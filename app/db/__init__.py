"""Tortoise models and the queries services use."""
