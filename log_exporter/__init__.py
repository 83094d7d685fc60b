"""log-exporter: archive CloudWatch Logs log groups from many AWS accounts into one S3 bucket."""

__version__ = "0.1.0"
