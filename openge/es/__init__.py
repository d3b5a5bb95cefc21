"""openge.es."""
