"""The origin of an event chain: stamped on events written while handling another, never on a request's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared import origin
from shared.events import decode_event, encode_event, load_example, rfc3339

MATCH_PROPOSED = "nl.werkbrug.match.proposed"
POSTED_AT = "2026-11-30T09:15:02.250Z"


def event(**extensions):
    document = {**load_example(MATCH_PROPOSED), "time": "2026-11-30T09:15:03.500Z", **extensions}
    return decode_event(encode_event(document))


def test_an_event_written_outside_any_handling_carries_no_origin():
    # A web request or a scheduled decision: the event's own time is where its chain begins.
    assert origin.current() is None
    assert origin.stamp({"id": "1"}) == {"id": "1"}


def test_an_event_without_an_origin_is_the_origin_of_what_its_handling_writes():
    handled = event()
    assert handled.extensions == {}, "an event from before origintime existed still decodes"

    with origin.following(handled) as moment:
        assert moment == origin.current() == handled.time
        assert origin.stamp({"id": "1"}) == {"id": "1", "origintime": "2026-11-30T09:15:03.500Z"}
    assert origin.current() is None


def test_an_event_with_an_origin_passes_it_on_unchanged():
    handled = event(origintime=POSTED_AT)

    assert handled.extensions == {"origintime": POSTED_AT}
    assert origin.of(handled) == datetime(2026, 11, 30, 9, 15, 2, 250000, tzinfo=UTC)
    with origin.following(handled):
        assert origin.stamp({"id": "1"}) == {"id": "1", "origintime": POSTED_AT}
        assert origin.stamp({"origintime": "kept"}) == {"origintime": "kept"}


def test_nested_handling_restores_the_outer_origin():
    with origin.following(event(origintime=POSTED_AT)), origin.following(event()):
        assert origin.current() == event().time
    assert origin.current() is None


def test_an_origin_in_another_offset_is_passed_on_in_utc():
    handled = event(origintime="2026-11-30T10:15:02.250+01:00")

    with origin.following(handled):
        assert origin.stamp({})["origintime"] == POSTED_AT


@pytest.mark.parametrize("value", ["yesterday", "2026-11-30T09:15:02", "", True, 1764493502])
def test_an_origin_that_is_no_instant_counts_as_absent(value):
    handled = event(origintime=value)

    assert origin.of(handled) == handled.time
    with origin.following(handled):
        assert origin.stamp({})["origintime"] == "2026-11-30T09:15:03.500Z"


def test_rfc3339_writes_utc_to_the_millisecond():
    moment = datetime(2026, 11, 30, 10, 15, 2, 250999, tzinfo=timezone(timedelta(hours=1)))

    assert rfc3339(moment) == POSTED_AT
