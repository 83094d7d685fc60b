"""The AWS layer: sessions and role chains, the shared clients, and one small wrapper per thing
the tool touches (export tasks, log groups, the archive bucket, lane states, Organizations)."""
