"""The queueing model of a batched inference server (pure: numpy and scipy only)."""
