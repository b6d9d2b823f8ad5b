"""A test that kills its own process, and tests around it that must still get results."""
import os
import signal


def test_before_crash():
    pass


def test_crash():
    if os.environ.get("DRV_PYTEST_CRASH"):
        os.kill(os.getpid(), signal.SIGKILL)


def test_after_crash():
    pass
