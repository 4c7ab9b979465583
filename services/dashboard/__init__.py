"""The live web dashboard (`switchboard run dashboard`): statuses per channel, the live tail,
workers, SMSC binds, queues and dead letters, read from the broker only (CONTRACT section 12)."""
