"""One test of each outcome drover pytest reports (tests/e2e/pytest.sh)."""
import os

import pytest


def test_pass():
    assert 1 + 1 == 2


def test_fail():
    assert 6 * 7 == 41, "the answer was wrong"


@pytest.fixture
def broken():
    raise RuntimeError("the fixture broke")


def test_error(broken):
    pass


@pytest.mark.skip(reason="not on this machine")
def test_skip():
    pass


@pytest.mark.xfail(reason="known bug 12")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="fixed meanwhile")
def test_xpass():
    assert True


def test_flaky():
    """Fails the first time (no marker file yet), passes after."""
    marker = os.path.join(os.environ["DRV_PYTEST_STATE"], "flaky.marker")
    if not os.path.exists(marker):
        open(marker, "w").close()
        assert False, "first run fails"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n > 0
