"""How stream records reach the notifier: one set of numbers for the stack's event source
(infra/alerts.py), the notifier, and `make run`'s stream poller (local/pollers.py).

No retry count: a count runs out in minutes when SNS and the retry queue fail together (Lambda
retries a stream batch at once), and the alerts were lost. A record is retried until its age limit,
24 hours, as long as DynamoDB keeps stream records; bisection lets the records around a failing one
through. Within the last hour of that limit, a record whose alert can still be neither published nor
queued for a retry leaves the alert whole on the notifier's failure queue (`make redrive --which
alerts` puts it back) rather than failing again and leaving only Lambda's description of the record.
"""

STREAM_BATCH_SIZE = 25
STREAM_MAX_RETRY_ATTEMPTS = -1  # Lambda's "unlimited": the record's age is the limit
STREAM_MAX_RECORD_AGE_SECONDS = 24 * 3600  # DynamoDB Streams keeps a record 24 hours
STREAM_BISECT_ON_ERROR = True
PARK_WITHIN_SECONDS = 3600  # the last stretch of a record's age in which the notifier parks what it owes
