"""Canvas SIS import state: the domain core and its AWS adapters.

Modules without AWS imports (the pure core): states, events, batch, redact, alerts.
Adapters: store (DynamoDB), publisher (SNS), auth (JWKS / Secrets Manager), http.
"""
