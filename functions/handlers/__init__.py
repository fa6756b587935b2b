"""Lambda entry points: each parses its trigger, calls its use case (built by wiring) and answers."""
