"""The model loader that checks one service's folder instead of listing every service's."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader

from log_exporter.aws.botocore_internals import ServiceLoader


@pytest.mark.parametrize(
    ("service", "type_name", "known"),
    [
        ("s3", "service-2", True),
        ("logs", "service-2", True),
        ("sts", "endpoint-rule-set-1", True),
        ("no-such-service", "service-2", False),
        ("s3", "no-such-model-1", False),
    ],
)
def test_a_service_is_known_like_botocore_says(service: str, type_name: str, known: bool) -> None:
    ours = ServiceLoader().list_available_services(type_name)
    assert (service in ours) is known
    assert (service in Loader().list_available_services(type_name)) is known


def test_the_full_list_is_botocores() -> None:
    ours = ServiceLoader().list_available_services("service-2")
    assert list(ours) == Loader().list_available_services("service-2")
    assert len(ours) > 300 and ours[:2] == list(ours)[:2]


def test_clients_are_built_and_unknown_services_refused_as_before() -> None:
    session = botocore.session.Session()
    session.register_component("data_loader", ServiceLoader())
    client = session.create_client("logs", region_name="us-east-1")
    assert client.meta.service_model.service_name == "logs"
    with pytest.raises(UnknownServiceError):
        session.create_client("no-such-service", region_name="us-east-1")
