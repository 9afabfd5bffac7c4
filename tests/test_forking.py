"""primitives.forking: answers, errors and deaths of forked children reach the parent intact."""

import os
import signal

import pytest

from primitives import forking


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("cannot pickle this")


def run(function, in_child=None):
    return forking.finish(*forking.start(function, in_child=in_child))


def test_the_childs_result_comes_back_and_it_exits_cleanly():
    message, status = run(lambda: {"pid": os.getpid(), "values": list(range(5))})
    assert message[0] == "ok" and message[1]["values"] == [0, 1, 2, 3, 4]
    assert message[1]["pid"] != os.getpid()  # computed in another process
    assert forking.describe(status) == "exit code 0"


def test_in_child_runs_in_the_child_before_the_function():
    calls = []
    message, _ = run(lambda: list(calls), in_child=lambda: calls.append("set up"))
    assert message == ("ok", ["set up"]) and calls == []  # the parent's list is untouched


def test_an_exception_keeps_its_type_message_and_traceback():
    def fail():
        raise ValueError("bad shape (3, 4)")
    (kind, error, trace), status = run(fail)
    assert kind == "error" and type(error) is ValueError and str(error) == "bad shape (3, 4)"
    assert "in fail" in trace and forking.describe(status) == "exit code 1"


def test_an_exception_that_does_not_pickle_arrives_as_a_runtime_error_naming_it():
    def fail():
        raise Unpicklable("held a socket")
    (kind, error, trace), _ = run(fail)
    assert kind == "error" and type(error) is RuntimeError and "Unpicklable: held a socket" in str(error)
    assert "Unpicklable" in trace


def test_a_killed_child_gives_no_message_and_its_signal_in_words():
    message, status = run(lambda: os.kill(os.getpid(), signal.SIGKILL))
    assert message is None
    assert forking.describe(status) == "ended by signal 9 (killed: out of memory?)"


def test_the_service_and_the_worker_pool_turn_a_dead_child_into_a_clear_error():
    from primitives import parallel
    from service.errors import WorkerFailed
    from service.jobs import call_in_fork
    with pytest.raises(WorkerFailed, match="ended by signal 9.*not computed"):
        call_in_fork(lambda: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(ValueError, match="kept its type"):
        call_in_fork(lambda: (_ for _ in ()).throw(ValueError("kept its type")))
    with pytest.raises(RuntimeError, match="died without a result.*SEALION_WORKERS=1"):
        parallel._collect(*parallel._fork(lambda: os.kill(os.getpid(), signal.SIGKILL)), [])
