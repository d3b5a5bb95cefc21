"""openge.runtime."""
