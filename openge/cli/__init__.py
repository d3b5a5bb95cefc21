"""openge.cli."""
