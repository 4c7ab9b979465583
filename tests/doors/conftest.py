from __future__ import annotations

import httpx
import pytest

from .rig import door_rig


@pytest.fixture(scope="module")
async def rig(amqp, tmp_path_factory):
    async with door_rig(tmp_path_factory.mktemp("doors")) as the_rig:
        yield the_rig


@pytest.fixture(scope="module")
async def http(rig):
    async with httpx.AsyncClient(base_url=rig.edge_url, timeout=15) as client:
        yield client
