"""What Bosun serves over HTTP besides intake: health, and later the dashboard and /metrics."""
