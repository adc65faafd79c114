"""Stress suites (issue 6): bad input, interrupts, parallel runs, tampering, security.

A package so that its conftest and modules import as `stress.*` and never shadow the
top-level tests/conftest.py (imported as `conftest` by the other test modules).
"""
