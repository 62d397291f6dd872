"""The ``migpolicy`` command line (click)."""
