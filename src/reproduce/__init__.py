"""Make a recorded run again from its record and prove it byte for byte (`python -m src.reproduce`)."""
