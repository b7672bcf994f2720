"""Leaderboards mirrored in Redis sorted sets, exact on ties.

A board is a sorted set whose score is the metric in mg (exact in a double up to 2^53 mg) and
whose member sorts earlier seqs, then smaller pids (team keys), first among equal scores when
read in descending order: the member is the inverted seq followed by the inverted, padded key.
A hash maps each pid to its current member so a new score swaps it atomically (one Lua call).
Scores are absolute values read from the SQL projections (never increments), so re-applying is
harmless. Each campaign has a watermark: the highest seq below which every seq is applied.
"""

from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)

SEQ_SPAN = 16**12 - 1
KEY_BYTES = 64
PREFIX = "tanpu:boards"

SET_SCRIPT = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then redis.call('ZREM', KEYS[1], old) end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 1
"""

ADVANCE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
local wm = tonumber(current or '0')
for i = 1, #ARGV do
  local s = tonumber(ARGV[i])
  if s > wm then redis.call('ZADD', KEYS[2], s, ARGV[i]) end
end
-- Without a watermark (never built, or flushed) one starts only from seq 1: the boards then
-- hold everything from the beginning.
if not current and not redis.call('ZSCORE', KEYS[2], '1') then return -1 end
while true do
  local nxt = redis.call('ZRANGEBYSCORE', KEYS[2], wm + 1, wm + 1)
  if #nxt == 0 then break end
  wm = wm + 1
  redis.call('ZREM', KEYS[2], nxt[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', wm)
redis.call('SET', KEYS[1], wm)
return wm
"""


def encode_member(key: str, seq: int) -> bytes:
    """A member that sorts (seq asc, key asc) first when read by ZREVRANGE."""
    raw = key.encode("utf-8")
    if len(raw) > KEY_BYTES:
        raise ValueError("board member key too long")
    padded = raw + b"\x00" * (KEY_BYTES - len(raw))
    inverted = bytes(255 - b for b in padded)
    return f"{SEQ_SPAN - seq:012x}".encode() + inverted


def decode_member(member: bytes) -> tuple[str, int]:
    seq = SEQ_SPAN - int(member[:12], 16)
    raw = bytes(255 - b for b in member[12:]).rstrip(b"\x00")
    return raw.decode("utf-8"), seq


def board_key(campaign_id: int, kind: str, period: str, start: str) -> str:
    return f"{PREFIX}:{campaign_id}:{kind}:{period}:{start}"


def watermark_key(campaign_id: int) -> str:
    return f"{PREFIX}:{campaign_id}:wm"


class RedisBoards:
    """Reads and writes of the boards of campaigns in one Redis database."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._set = client.register_script(SET_SCRIPT)
        self._advance = client.register_script(ADVANCE_SCRIPT)

    def set_score(self, pipe, key: str, member_id: str, metric_mg: int | None, seq: int) -> None:
        """Queue a swap of one member's score (None or 0 removes it from the board)."""
        member = encode_member(member_id, seq) if metric_mg else b""
        self._set(keys=[key, key + ":m"], args=[member_id, member, metric_mg or 0],
                  client=pipe)

    def advance(self, campaign_id: int, seqs: list[int]) -> int:
        """Mark seqs applied; returns the new watermark (-1 while there is none: a
        watermark starts only once seq 1 is applied, by the first entry or a replay)."""
        return int(self._advance(keys=[watermark_key(campaign_id),
                                       watermark_key(campaign_id) + ":applied"],
                                 args=[str(s) for s in seqs]))

    def watermark(self, campaign_id: int) -> int:
        """The applied watermark; -1 when the boards were never built or Redis was flushed
        (so that no read trusts a board that does not exist)."""
        value = self.client.get(watermark_key(campaign_id))
        return int(value) if value is not None else -1

    def top(self, key: str, limit: int) -> list[tuple[str, int, int]]:
        """(member id, metric mg, seq) of the first ``limit`` members."""
        result = []
        for member, score in self.client.zrevrange(key, 0, limit - 1, withscores=True):
            member_id, seq = decode_member(member)
            result.append((member_id, int(score), seq))
        return result

    def rank(self, key: str, member_id: str, metric_mg: int, seq: int) -> int:
        """1 + the members ahead of (metric, seq, id), whether the member is on the board."""
        member = self.client.hget(key + ":m", member_id)
        if member is not None:
            position = self.client.zrevrank(key, member)
            if position is not None:
                return position + 1
        mine = encode_member(member_id, seq)
        ahead = self.client.zcount(key, f"({metric_mg}", "+inf")
        if metric_mg > 0:
            ahead += sum(1 for other in self.client.zrangebyscore(key, metric_mg, metric_mg)
                         if other > mine)
        return ahead + 1

    def clear_campaign(self, campaign_id: int) -> None:
        for key in self.client.scan_iter(f"{PREFIX}:{campaign_id}:*", count=1000):
            self.client.delete(key)

