"""The send throttle: token buckets in the real Redis, shared by every process that uses them."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import redis as redis_lib

from campaigns.throttle import Throttle
from campaigns.throttle import is_deferral

CONFIG: dict[str, Any] = {
    "SEND_RATE": 20,
    "SEND_PROVIDER_RATES": {"163.com": 2},
    "SEND_PROVIDER_BACKOFF_SECONDS": 5,
}


def _throttle(client: redis_lib.Redis) -> Throttle:
    """A throttle with buckets of its own, so that runs never share state."""
    return Throttle(client, CONFIG, namespace=f"test-{uuid.uuid4().hex}")


def test_the_system_rate_holds_across_threads(redis: redis_lib.Redis) -> None:
    """Two senders taking 30 messages each at 20/s (burst 20) need at least two seconds."""
    throttle = _throttle(redis)
    started = time.monotonic()

    def send() -> None:
        for _ in range(30):
            throttle.wait_for_send()

    senders = [threading.Thread(target=send) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    # 60 tokens, 20 available at once, 20 more per second: no fewer than 2 s.
    assert time.monotonic() - started >= 1.9


def test_a_limited_provider_defers_without_blocking(redis: redis_lib.Redis) -> None:
    """163.com at 2/s: two messages go now, the third is told to wait; others are unlimited."""
    throttle = _throttle(redis)
    assert [throttle.provider_wait("163.com") for _ in range(2)] == [0.0, 0.0]
    assert 0 < throttle.provider_wait("163.com") <= 0.5
    assert throttle.provider_wait("qq.com") == 0.0


def test_a_provider_that_asked_to_slow_down_is_left_alone(redis: redis_lib.Redis) -> None:
    """After a deferral the domain waits out the backoff; the others do not."""
    throttle = _throttle(redis)
    throttle.back_off("gmail.com")
    assert 4 < throttle.provider_wait("gmail.com") <= 5
    assert throttle.provider_wait("qq.com") == 0.0


def test_which_replies_ask_to_slow_down() -> None:
    """421 and 4.7.x deferrals (Gmail's 4.7.28) slow a provider down; a full mailbox does not."""
    assert is_deferral(421, "4.7.0 Try again later")
    assert is_deferral(450, "4.7.28 Our system has detected an unusual rate")
    assert is_deferral(451, "4.7.1 Rate limited")
    assert not is_deferral(452, "4.2.2 Mailbox full")
    assert not is_deferral(550, "5.7.1 rate")


class CountingRedis(redis_lib.Redis):
    """The real Redis client, counting the commands it sends."""

    commands = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        type(self).commands += 1
        return super().execute_command(*args, **options)


def test_a_fast_rate_takes_system_tokens_a_few_at_a_time(redis_dbs: dict[str, str]) -> None:
    """At 1,000/s a sender asks Redis once per 10 messages (50 ms worth), not once each."""
    client = CountingRedis.from_url(redis_dbs["limits"])
    throttle = Throttle(client, CONFIG | {"SEND_RATE": 1000}, namespace=f"t-{uuid.uuid4().hex}")
    CountingRedis.commands = 0
    for _ in range(100):
        throttle.wait_for_send()
    assert 10 <= CountingRedis.commands <= 12
    client.close()


def test_a_backoff_seen_by_one_worker_holds_back_the_others_within_a_refresh(
    redis: redis_lib.Redis,
) -> None:
    """Two throttles (two worker processes) on one namespace: a deferral met by the first is
    known to the second at its next read of the backed-off domains, a quarter second on."""
    namespace = f"test-{uuid.uuid4().hex}"
    first, second = (Throttle(redis, CONFIG, namespace=namespace) for _ in range(2))
    assert second.provider_wait("gmail.com") == 0.0
    first.back_off("gmail.com")
    time.sleep(0.3)
    assert 4 < second.provider_wait("gmail.com") <= 5
    assert second.provider_wait("qq.com") == 0.0


def test_domain_checks_read_redis_at_most_four_times_a_second(redis_dbs: dict[str, str]) -> None:
    """A thousand checks of many domains within a quarter second read the backoffs once."""
    client = CountingRedis.from_url(redis_dbs["limits"])
    throttle = Throttle(client, CONFIG, namespace=f"t-{uuid.uuid4().hex}")
    CountingRedis.commands = 0
    for index in range(1000):
        assert throttle.provider_wait(f"company{index % 50}.example") == 0.0
    assert CountingRedis.commands <= 2
    client.close()


def test_tokens_taken_ahead_expire_and_others_do_not_spend_them_early(
    redis: redis_lib.Redis,
) -> None:
    """A process that took ten tokens and went idle asks the shared bucket again later
    (another process may have used it up meanwhile), instead of sending nine at once."""
    namespace = f"test-{uuid.uuid4().hex}"
    fast = CONFIG | {"SEND_RATE": 200}
    first, second = (Throttle(redis, fast, namespace=namespace) for _ in range(2))
    first.wait_for_send()
    assert first.tokens == 9
    # The first process goes idle past the time its tokens stand for; then the other
    # process drains the bucket (burst 200).
    time.sleep(0.1)
    for _ in range(200):
        second.wait_for_send()
    started = time.monotonic()
    for _ in range(9):
        first.wait_for_send()
    # Nine more messages on an empty bucket at 200/s wait for it, rather than go at once.
    assert time.monotonic() - started >= 0.03
