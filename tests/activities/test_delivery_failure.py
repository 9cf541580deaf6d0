"""What a failed delivery attempt tells the workflow (DeliveryFailure in the ApplicationError's details), through
Herald's data converter and back, as the workflow reads it."""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from activities.delivery import to_application_error
from herald.adapters.codec import codec_data_converter
from herald.domain.errors import PermanentDeliveryError, TransientDeliveryError
from herald.models import DeliveryFailure
from workflows.notification import delivery_failure


async def through_temporal(error: ApplicationError) -> ApplicationError:
    converter = codec_data_converter(None)
    failure = Failure()
    await converter.encode_failure(error, failure)
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    return decoded


async def test_a_local_attempt_carries_the_providers_retry_after_for_the_workflows_timer() -> None:
    error = to_application_error(TransientDeliveryError("429", retry_after=3), 1, local=True)
    assert error.next_retry_delay is None  # Temporal must not retry the local activity itself
    assert delivery_failure(await through_temporal(error)) == DeliveryFailure(attempt=1, retry_after=3)


async def test_a_durable_attempt_leaves_the_retry_after_to_temporal() -> None:
    error = to_application_error(TransientDeliveryError("429", retry_after=3), 4)
    assert error.next_retry_delay == timedelta(seconds=3)
    assert delivery_failure(await through_temporal(error)) == DeliveryFailure(attempt=4)
    assert not error.non_retryable


async def test_a_permanent_failure_reports_its_attempt_and_is_not_retried() -> None:
    error = to_application_error(PermanentDeliveryError("no such address"), 2)
    assert error.non_retryable
    assert delivery_failure(await through_temporal(error)) == DeliveryFailure(attempt=2)
