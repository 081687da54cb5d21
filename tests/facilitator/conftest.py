"""The facilitator tests' fixtures: an in-process sandbox facilitator (override `config` to change its settings) and
the SDK's own HTTPFacilitatorClient pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from x402.http import FacilitatorConfig as ClientConfig
from x402.http import HTTPFacilitatorClient

from sandbox.facilitator.config import FacilitatorConfig
from sandbox.facilitator.testing import RunningFacilitator, run_facilitator


@pytest.fixture
def config() -> FacilitatorConfig:
    return FacilitatorConfig()


@pytest_asyncio.fixture
async def facilitator(config: FacilitatorConfig) -> AsyncIterator[RunningFacilitator]:
    async with run_facilitator(config) as running:
        yield running


@pytest_asyncio.fixture
async def client(facilitator: RunningFacilitator) -> AsyncIterator[HTTPFacilitatorClient]:
    async with HTTPFacilitatorClient(ClientConfig(url=facilitator.url)) as facilitator_client:
        yield facilitator_client
