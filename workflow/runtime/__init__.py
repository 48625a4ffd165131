"""The running parts: wiring, daemon, metrics and the rehearsal."""
