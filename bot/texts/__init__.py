"""Every text Bosun posts where people read it, pinned by golden tests."""
