"""How results are shown: a run's progress and summary, and the tables and JSON of the
read-only commands."""
