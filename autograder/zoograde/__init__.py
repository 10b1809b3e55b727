"""Instructor tooling for the CNN Zoo nbgrader course."""
__all__ = ["sources", "preprocessors"]
