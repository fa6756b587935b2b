"""Lambda entry points: each parses its trigger's event, calls the core and answers."""
