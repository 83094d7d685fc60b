"""The `log-exporter` command: click commands that parse, build the engine, call it and render."""
