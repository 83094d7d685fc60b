"""The Lambda front end: the scheduled dispatcher and the SQS worker (the only code that imports
aws-lambda-powertools; nothing outside this package imports it)."""
