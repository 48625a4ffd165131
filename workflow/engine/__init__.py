"""The one door for a state change: moves, their audit rows and events."""
