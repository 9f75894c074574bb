"""The ``backend`` every contract case runs on: the in-memory broker, then the real one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.backends import Backend, KafkaBackend, MemoryBackend


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def backend(request) -> Iterator[Backend]:
    if request.param == "kafka":
        # Asked for here rather than in the signature, so that ``-k memory`` never starts a broker.
        made: Backend = KafkaBackend(request.getfixturevalue("bootstrap_servers"))
    else:
        made = MemoryBackend()
    yield made
    made.close()
