"""openge.offline_compile."""
