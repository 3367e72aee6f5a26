"""The end of a process killed by a signal while threads still send: all accepted is delivered, nothing after it."""

from __future__ import annotations

import threading
import time
from collections import Counter

from ..conftest import QUEUE_URL, ProducerFactory
from ..fakes import FakeSqs

THREADS = 2


def _per_thread(fake_sqs: FakeSqs) -> Counter[str]:
    counts: Counter[str] = Counter()
    for metric in fake_sqs.metrics(QUEUE_URL):
        counts[metric["dimensions"]["T"]] += sum(metric.get("counts", [1] * len(metric.get("values", [0]))))
    return counts


def test_metrics_sent_during_the_exit_flush_are_delivered_and_later_calls_wait(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    # GIVEN a producer and two threads calling send_metric in a loop, tallying each call before and after it
    producer = make_producer(flush_interval=30)
    attempted, returned = [0] * THREADS, [0] * THREADS
    stop = threading.Event()

    def loop(k: int) -> None:
        while not stop.is_set():
            attempted[k] += 1
            producer.send_metric("Calls", 1.0, dimensions={"T": str(k)})
            returned[k] += 1

    threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(THREADS)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    try:
        # WHEN the process's signal handler ends the producer while the threads keep sending
        producer.end_for_signal(5.0)
        after_end = list(returned)
        time.sleep(0.2)
        # THEN the threads are held in send_metric (at most the call that was past the lock returns)
        assert all(returned[k] <= after_end[k] + 1 for k in range(THREADS)), (after_end, returned)
        # AND every call that returned is on the queue, and nothing more than was attempted
        delivered = _per_thread(fake_sqs)
        for k in range(THREADS):
            assert returned[k] <= delivered[str(k)] <= attempted[k], (k, returned, delivered, attempted)
            assert returned[k] > 100
        # AND a second signal while ending returns at once instead of waiting for the lock it holds
        producer.end_for_signal(5.0)
    finally:
        # WHEN the process survives after all: the threads go on
        stop.set()
        producer.resume_after_signal()
        for thread in threads:
            thread.join(5)
    assert not any(thread.is_alive() for thread in threads)
    stats = producer.stats()
    assert stats["dropped"] == 0
    assert stats["accepted"] == sum(returned)
