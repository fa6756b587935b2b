"""The edges: each AWS service or Canvas behind a small class. Adapters never import use cases."""
