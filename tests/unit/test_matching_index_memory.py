"""The memory estimate the index budget counts with: arrays by their buffers, shared objects once."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from services.matching.ranking.index_memory import estimated_bytes


class Holder:
    def __init__(self, **parts) -> None:
        self.__dict__.update(parts)


def test_an_array_counts_its_buffer_and_a_view_of_it_nothing_more() -> None:
    array = np.zeros(100_000, dtype=np.float64)
    alone = estimated_bytes(Holder(array=array))
    with_view = estimated_bytes(Holder(array=array, view=array[::2]))
    assert alone >= array.nbytes
    assert with_view - alone < 1_000, "the view shares the buffer"


def test_an_object_reached_twice_counts_once() -> None:
    model = Holder(vectors=sp.random(1_000, 1_000, density=0.01, format="csr", random_state=1))
    one = estimated_bytes(Holder(model=model))
    two = estimated_bytes(Holder(model=model, chunks=(Holder(model=model), Holder(model=model))))
    assert one >= model.vectors.data.nbytes + model.vectors.indices.nbytes
    assert two - one < 2_000


def test_a_long_list_is_estimated_from_a_sample_near_its_true_size() -> None:
    rows = [Holder(weights=np.ones(100), name=f"row-{n}") for n in range(10_000)]
    estimate = estimated_bytes(rows)
    floor = sum(row.weights.nbytes for row in rows)
    assert floor <= estimate <= 2 * floor
