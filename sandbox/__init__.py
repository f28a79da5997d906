"""Workspaces, isolation backends and agent runtimes; never imports `bot`."""
