"""Settings, database, security, problems, NATS link and body helpers of the gateway."""
