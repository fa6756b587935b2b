"""Canvas SIS import state and outcome alerts.

core/: the domain rules and formats (no AWS SDK, no HTTP, no environment reads); adapters/: each AWS
or Canvas edge; usecases/: what each trigger asks for, adapters passed in; wiring.py: the one place
that builds adapters from the environment. tests/test_layers.py checks who imports whom.
"""
