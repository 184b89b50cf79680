"""promptctl.records: the frozen record type used instead of dataclasses on the CLI's start-up path."""

from __future__ import annotations

import copy
import pickle

import pytest

from promptctl.model import ChannelState, Serving, VersionInfo
from promptctl.records import Factory, FrozenRecordError, Record


class Move(Record):
    prompt_id: str
    channel: str
    percent: int = 100
    notes: list[str] = Factory(list)


def test_fields_defaults_and_fresh_factory_defaults():
    move = Move("p", "production")
    assert (move.prompt_id, move.channel, move.percent, move.notes) == ("p", "production", 100, [])
    assert Move("p", channel="c", notes=["x"]).notes == ["x"]
    assert Move("p", "c").notes is not Move("p", "c").notes  # one list per record, as default_factory
    assert Move._fields == ("prompt_id", "channel", "percent", "notes")


def test_wrong_arguments_are_type_errors_like_a_dataclass():
    with pytest.raises(TypeError, match="missing the argument 'channel'"):
        Move("p")
    with pytest.raises(TypeError, match="unexpected argument 'colour'"):
        Move("p", "c", colour="red")
    with pytest.raises(TypeError, match="two values for 'prompt_id'"):
        Move("p", "c", prompt_id="q")
    with pytest.raises(TypeError, match="takes 4 arguments, 5 given"):
        Move("p", "c", 1, [], 2)
    with pytest.raises(TypeError, match="without a default follows one with a default"):

        class Broken(Record):
            a: int = 1
            b: int


def test_records_are_frozen_compare_by_value_and_hash():
    move = Move("p", "c", 50)
    with pytest.raises(FrozenRecordError):
        move.percent = 10  # type: ignore[misc]
    with pytest.raises(AttributeError):  # FrozenRecordError is an AttributeError, as dataclasses' is
        del move.channel
    assert move == Move("p", "c", 50) and move != Move("p", "c", 10)
    assert Serving("v1", 100) == Serving("v1", 100, "") and hash(Serving("v1", 100)) == hash(
        Serving("v1", 100, "")
    )
    assert len({Serving("v1", 100), Serving("v1", 100), Serving("v2", 100)}) == 2
    assert Serving("v1", 100) != ("v1", 100, "")  # not a tuple
    assert repr(Serving("v1", 50)) == "Serving(version='v1', percent=50, template_hash='')"


def test_records_copy_and_pickle():
    version = VersionInfo("p", 2, "t" * 40, "c" * 40, "h" * 64, "2026-11-26T00:00:00+00:00", "A <a@b>", "msg")
    state = ChannelState("p", "production", (Serving("v2", 100),))
    for record in (version, state):
        assert pickle.loads(pickle.dumps(record)) == record
        assert copy.copy(record) == record and copy.deepcopy(record) == record
    assert state.extra == {} and version.tag == "p/v2"
