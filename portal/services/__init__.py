"""Write operations: plain functions with explicit arguments that own their transaction."""
