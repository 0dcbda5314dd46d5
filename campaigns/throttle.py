"""Rate limits shared by every worker on every host: token buckets kept in Redis.

One bucket caps the whole system (NEWSLETTER_SEND_RATE); one per receiving domain caps what
a provider is sent (NEWSLETTER_SEND_PROVIDER_RATES), so one slow provider does not hold back
the others; and a domain that answered with a rate-limit deferral is left alone for a while.
The bucket arithmetic runs inside Redis (a Lua script using Redis's own clock), so any number
of processes see one bucket. Losing Redis loses only the buckets' state, never a message.

Asking Redis for every message cost two round trips a message, an eighth of a send's time. So
a sender takes the system bucket's tokens a few at a time (at most 50 ms worth, one at a time
under 20/s), and learns which domains are backed off from one sorted set, read at most every
quarter second: a deferral seen by one worker holds the others back within that time.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import redis

# Take ``n`` tokens from bucket KEYS[1] (rate ARGV[1] per second, burst ARGV[2]); with
# ARGV[4] = "wait" the tokens are always taken and the caller waits the returned number of
# milliseconds; with "try" they are taken only if available now (else the wait is returned).
_TAKE = """
local rate, burst, n, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
local wait = 0
if tokens < n then wait = math.ceil((n - tokens) * 1000 / rate) end
if mode == 'wait' or wait == 0 then tokens = tokens - n end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return wait
"""
# Leave domain ARGV[2] alone for ARGV[1] seconds: its deadline (Redis's clock) in sorted set
# KEYS[1], where the deadlines that passed are dropped.
_BACK_OFF = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]) * 1000, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 1000 + 60000)
"""
# The domains of sorted set KEYS[1] still backed off, each with its milliseconds to go.
_BACKED_OFF = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local found = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf', 'WITHSCORES')
for i = 2, #found, 2 do found[i] = tostring(tonumber(found[i]) - now) end
return found
"""
# How often a sender reads the backed-off domains again.
BACKOFF_REFRESH_SECONDS = 0.25
# A grab of system tokens covers at most this many seconds of the rate (and 10 tokens).
GRAB_SECONDS = 0.05

# A reply that means "you are sending too fast": 421 or 450/451 with 4.7.x, Gmail's 4.7.28.
_DEFERRAL = re.compile(r"^4\.7\.\d+|rate|too many|limit|try (?:again )?later|频率|过多", re.I)


def is_deferral(code: int, reply: str) -> bool:
    """True for a temporary refusal that asks us to slow down for that provider."""
    return code == 421 or (400 <= code < 500 and bool(_DEFERRAL.search(reply.strip())))


class Throttle:
    """The buckets of one configuration, in the Redis it names; one per worker process,
    shared by its threads."""

    def __init__(
        self, client: redis.Redis, config: Mapping[str, Any], namespace: str = "throttle"
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.rate = float(config["SEND_RATE"])
        self.providers = {
            str(domain).lower(): float(rate)
            for domain, rate in dict(config["SEND_PROVIDER_RATES"]).items()
        }
        self.backoff_seconds = int(config["SEND_PROVIDER_BACKOFF_SECONDS"])
        self.take = client.register_script(_TAKE)
        self.mark = client.register_script(_BACK_OFF)
        self.backed_off_script = client.register_script(_BACKED_OFF)
        self.grab = max(1, min(10, int(self.rate * GRAB_SECONDS)))
        self.lock = threading.Lock()
        self.tokens = 0
        self.tokens_until = 0.0
        self.backoffs: dict[str, float] = {}
        self.backoffs_read = -BACKOFF_REFRESH_SECONDS

    def wait_for_send(self) -> None:
        """Block until the system-wide bucket lets one more message go.

        Tokens taken ahead are kept only for the GRAB_SECONDS they stand for, and only once
        their wait is over: a process idle between batches, or a thread that found the
        grabber still waiting, asks the shared bucket again instead of sending early.
        """
        with self.lock:
            if self.tokens and time.monotonic() < self.tokens_until:
                self.tokens -= 1
                return
        wait_ms = self._take(f"{self.namespace}:all", self.rate, "wait", self.grab)
        if wait_ms > 0:
            time.sleep(wait_ms / 1000)
        with self.lock:
            self.tokens = self.grab - 1
            self.tokens_until = time.monotonic() + GRAB_SECONDS

    def provider_wait(self, domain: str) -> float:
        """Seconds before ``domain`` may be sent another message: 0 means now (and the
        token is taken); more means leave this recipient for later."""
        backoff = self._backoffs().get(domain, 0.0) - time.monotonic()
        if backoff > 0:
            return backoff
        rate = self.providers.get(domain)
        if rate is None:
            return 0.0
        return self._take(f"{self.namespace}:provider:{domain}", rate, "try") / 1000

    def back_off(self, domain: str) -> None:
        """``domain`` asked us to slow down: leave it alone for the configured time."""
        self.mark(keys=[f"{self.namespace}:backoff"], args=[self.backoff_seconds, domain])
        with self.lock:
            self.backoffs[domain] = time.monotonic() + self.backoff_seconds

    def _backoffs(self) -> dict[str, float]:
        """Each backed-off domain with its deadline (this process's clock), as read from
        Redis at most every BACKOFF_REFRESH_SECONDS."""
        now = time.monotonic()
        with self.lock:
            if now - self.backoffs_read < BACKOFF_REFRESH_SECONDS:
                return self.backoffs
        found = self.backed_off_script(keys=[f"{self.namespace}:backoff"])
        backoffs = {
            domain.decode(): now + int(remaining) / 1000
            for domain, remaining in zip(found[0::2], found[1::2], strict=True)
        }
        with self.lock:
            self.backoffs, self.backoffs_read = backoffs, now
        return backoffs

    def _take(self, key: str, rate: float, mode: str, tokens: int = 1) -> int:
        burst = max(1.0, rate)
        return int(self.take(keys=[key], args=[rate, burst, tokens, mode]))
