"""hbmon: an observable, heartbeat-compatible failover agent."""

__version__ = "0.1.0"
