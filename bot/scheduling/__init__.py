"""Scheduling: the pure plan, branch locks as leases, and the reconcile loop."""
