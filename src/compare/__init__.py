"""Compare runs: what changed between them, and why the KPIs moved."""
