"""`distillab-chat`: talk to a trained model in the terminal (or through a pipe)."""
