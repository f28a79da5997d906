"""Bosun: the orchestration service for coding agents, driven by GitHub events."""

__version__ = "0.1.0"
