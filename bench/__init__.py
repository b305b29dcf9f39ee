"""Side-by-side benchmark of hbmon, heartbeat 3.0.6 and keepalived: `python -m bench`."""
