"""vizcli.common.signals: a handled signal raises ``Interrupted``, and stays pending if that raise is lost."""

import os
import signal

import pytest

from vizcli.common import signals
from vizcli.common.errors import Interrupted


@pytest.fixture
def handlers():
    previous = signals.install()
    yield
    signals.restore(previous)


def test_a_handled_signal_raises_interrupted_with_the_shell_exit_code(handlers):
    with pytest.raises(Interrupted) as caught:
        os.kill(os.getpid(), signal.SIGTERM)
    assert caught.value.exit_code == 128 + signal.SIGTERM


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed raise, on purpose
def test_a_signal_whose_raise_was_swallowed_is_raised_again_at_the_next_step(handlers):
    class Swallows:
        def __del__(self):  # exceptions raised here are only printed ("Exception ignored in ...")
            os.kill(os.getpid(), signal.SIGTERM)

    Swallows()
    with pytest.raises(Interrupted) as caught:
        signals.raise_if_interrupted()
    assert caught.value.exit_code == 128 + signal.SIGTERM


def test_install_forgets_a_signal_of_an_earlier_run(handlers):
    with pytest.raises(Interrupted):
        os.kill(os.getpid(), signal.SIGHUP)
    signals.restore(signals.install())
    signals.raise_if_interrupted()  # nothing pending: returns


def test_restore_puts_back_the_previous_handlers():
    before = signal.getsignal(signal.SIGTERM)
    signals.restore(signals.install())
    assert signal.getsignal(signal.SIGTERM) is before
