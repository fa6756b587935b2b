"""The use cases: what each trigger asks for, with adapters passed in (wiring.py builds them)."""
