"""Acceptance gates: rules as data (metric, operator, threshold), never evaluated as code."""
