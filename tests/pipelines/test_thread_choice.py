"""threads: auto picks the cores other work leaves free; the busy-core reading sees real load."""

import multiprocessing as mp
import os
import time

import pytest

from inforidge.pipelines.environment import busy_cores, choose_threads, set_threads


@pytest.mark.parametrize(("busy", "expected"), [(0.0, 2), (0.3, 2), (0.6, 1), (1.0, 1), (2.0, 1), (5.0, 1)])
def test_auto_leaves_the_busy_cores_alone(busy, expected):
    assert choose_threads("auto", busy=busy, cores=2, limit=2) == expected


def test_auto_on_a_bigger_machine_and_the_limit():
    assert choose_threads("auto", busy=3.2, cores=16, limit=16) == 13
    assert choose_threads("auto", busy=0.0, cores=16, limit=4) == 4  # never above torch's count
    assert choose_threads("auto", busy=None, cores=16, limit=4) == 4  # not measurable: torch's count


def test_fixed_settings_and_bad_values():
    assert choose_threads(3, limit=2) == 3
    assert choose_threads(0, limit=2) == 2 and choose_threads(None, limit=5) == 5
    for bad in (-1, "many", 1.5, True):
        with pytest.raises(ValueError, match="threads must be"):
            choose_threads(bad, limit=2)


def _spin(seconds):
    end = time.time() + seconds
    while time.time() < end:
        pass


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat (Linux)")
def test_busy_cores_sees_a_spinning_process():
    idle = busy_cores(0.2)
    assert idle is not None and 0.0 <= idle <= len(os.sched_getaffinity(0)) + 1e-6
    p = mp.get_context("spawn").Process(target=_spin, args=(3.0,))
    p.start()
    try:
        time.sleep(0.8)  # let it start spinning
        loaded = busy_cores(0.5)
    finally:
        p.join()
    # One process spinning keeps about one core busy, whatever else the machine does.
    assert loaded >= 0.7


def test_set_threads_records_the_choice():
    import torch

    before = torch.get_num_threads()
    try:
        choice = set_threads(1)
        assert choice.torch_threads == 1 == torch.get_num_threads()
        assert choice.record()["threads_setting"] == 1 and choice.busy_cores is None
        auto = set_threads("auto")
        assert auto.threads_setting == "auto" and 1 <= auto.torch_threads <= 1  # limit: the current 1
        assert auto.busy_cores is not None
    finally:
        torch.set_num_threads(before)
