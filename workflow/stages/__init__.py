"""One module per contest stage; a stage calls the engine and the outbox and never writes state itself."""
