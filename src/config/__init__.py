"""Configuration: typed schemas, the one loader, and value validation."""
