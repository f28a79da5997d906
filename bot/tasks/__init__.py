"""Use cases the handlers share: admitting, cancelling and releasing tasks."""
