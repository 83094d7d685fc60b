from tests.faults.test_bucket_and_groups import *  # noqa
from tests.faults.conftest import emu  # noqa
import tests.faults.test_bucket_and_groups as m

def test_x(emu, exporter):
    orig = exporter.__call__
    class E:
        def __getattr__(self, k): return getattr(exporter, k)
        def __call__(self, *a, **k):
            r = exporter(*a, **k); print(r.output); return r
    m.test_a_log_group_deleted_during_the_run(emu, E())
