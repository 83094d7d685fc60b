"""moto made realistic for log-exporter: asynchronous export tasks, AWS's limits, object layout
and injectable faults, in-process (`moto.mock_aws`) or over loopback (`EmulatorServer`)."""

from .core import Emulator
from .seed import ArchivedEvent
from .server import EmulatorServer
from .tasks import TaskRecord, Timing

__all__ = ["ArchivedEvent", "Emulator", "EmulatorServer", "TaskRecord", "Timing"]
