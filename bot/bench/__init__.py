"""Benchmarks: each prints figures for people and one `bench=<name> key=value` line for machines."""
