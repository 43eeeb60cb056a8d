"""End-to-end layer: real training, real devices, subprocesses, redis-server and workers, the browser."""
