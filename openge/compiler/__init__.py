"""openge.compiler."""
