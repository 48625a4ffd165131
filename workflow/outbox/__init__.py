"""Notices: queued in the move's transaction, dispatched after commit, and the office's actions on the outbox."""
