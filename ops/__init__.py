"""Operator commands for a deployed stack."""
