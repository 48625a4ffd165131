"""The ground floor: configuration, closures, the clock, the database, models and
schema, actors, tokens and the loaders."""
