"""Deadline rows from the lifecycle table (plan), their changes (reschedule, extend) and the ticker that fires them."""
