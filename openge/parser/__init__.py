"""openge.parser."""
