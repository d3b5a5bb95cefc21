"""openge.session."""
