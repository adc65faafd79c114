"""Provenance: the guard before a run, digests of what went in, and the run's record."""
