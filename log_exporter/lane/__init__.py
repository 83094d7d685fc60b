"""One account and region: the lane that keeps its single export slot busy, and what it needs
(the lease and the identity of the runner holding it)."""
