"""Speed figures for log-exporter: the real CLI against the emulator, next to the lower bound."""
