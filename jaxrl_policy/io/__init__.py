"""Files: run folders (locking, atomic writes), checkpoints, reading a run folder back, datasets, metadata,
live-logging sinks. Plain data in and out; nothing here builds a config or a program."""
