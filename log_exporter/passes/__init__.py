"""Passes over the archive that are not a run: `plan`'s forecast, `check`'s rows, `stats`,
`sync`, `cat`, and the survey that runs one over every lane. None creates an export task."""
