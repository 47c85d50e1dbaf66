"""`distillab-serve`: an exported (or checkpointed) model behind an authenticated,
OpenAI-compatible HTTP API with request batching, and a chat page at `/`."""
