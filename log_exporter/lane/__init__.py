"""One account and region: the lane that keeps its single export slot busy, built from parts
(build.py): pacer, lease, record, window, backlog, slot, direct_reads, tied by lane.py; and
view.py, what the read-only commands see of a lane."""
