"""The collaborators both Lambda functions share, built in one place (`LambdaApp`): settings,
sessions and clients, the engine for a config, the lane queue, the logger and the metrics."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import EphemeralMetrics

from log_exporter.aws.sessions import SessionFactory
from log_exporter.aws_lambda.config import check_destination, load_lambda_config
from log_exporter.aws_lambda.messages import LaneQueue
from log_exporter.aws_lambda.reporting import LambdaReporter
from log_exporter.aws_lambda.settings import LambdaSettings
from log_exporter.core.config import Config
from log_exporter.engine import Engine

SERVICE = "log-exporter"
NAMESPACE = "LogExporter"

EngineFactory = Callable[[Config], Engine]
Handler = TypeVar("Handler", bound=Callable[..., Any])


class LambdaApp:
    """What the dispatcher and the worker work with. The entry points named in template.yaml
    build one from the environment (`from_env`); tests build their own with a fake clock or
    engine factory."""

    def __init__(
        self,
        settings: LambdaSettings,
        *,
        sessions: SessionFactory | None = None,
        engine_factory: EngineFactory | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        logger: Logger | None = None,
        namespace: str = NAMESPACE,
    ) -> None:
        self.settings = settings
        self.sessions = sessions or SessionFactory()
        self.engine_factory = engine_factory or self._engine
        self.clock = clock
        self.sleep = sleep
        self.logger = logger or Logger(service=SERVICE)
        self.namespace = namespace
        # The core's log lines (lane and task events) go out as the same JSON lines.
        copy_config_to_registered_loggers(source_logger=self.logger, include={"log_exporter"})

    @classmethod
    def from_env(cls) -> LambdaApp:
        """The app the function's environment (set by the template) describes."""
        return cls(LambdaSettings.from_env(os.environ))

    def _engine(self, config: Config) -> Engine:
        return Engine(
            config,
            self.sessions,
            reporter=LambdaReporter(),
            clock=self.clock,
            sleep=self.sleep,
            max_parallel=1,
        )

    def config(self) -> Config:
        """The config to run, checked against the bucket and prefix the stack was deployed for."""
        config = load_lambda_config(self.settings.config, self.sessions.s3)
        check_destination(config, self.settings)
        return config

    def queue(self) -> LaneQueue:
        return LaneQueue(self.sessions.sqs(), self.settings.queue_url)

    def metrics(self) -> EphemeralMetrics:
        """A fresh embedded-metrics record (flushed by whoever fills it)."""
        return EphemeralMetrics(namespace=self.namespace, service=SERVICE)

    def lambda_handler(self, run: Handler) -> Handler:
        """`run(event, context)` as Lambda calls it: powertools' `inject_lambda_context` puts the
        request id, the function and the cold start into every log line of the invocation (the
        core's too, through the copied config)."""
        return self.logger.inject_lambda_context(run)
