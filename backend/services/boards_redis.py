"""Leaderboards mirrored in Redis sorted sets, exact on ties.

A board is a sorted set whose score is the metric in mg (exact in a double up to 2^53 mg) and
whose member sorts earlier seqs, then smaller pids (team keys), first among equal scores when
read in descending order: the member is the inverted seq followed by the inverted, padded key.
A hash maps each pid to its current member so a new score swaps it atomically (one Lua call).
Scores are absolute values from the SQL projections (never increments), so re-applying is
harmless; each carries the version of the state it comes from (the head seq after the append
that produced it, or a lower bound of it when read back), and a score older than the one a
member has is ignored: two writers' after-commit updates may reach Redis in either order.
Each campaign has a watermark: the highest seq below which every seq is applied.
"""

from __future__ import annotations

import functools
import logging

import redis

log = logging.getLogger(__name__)

SEQ_SPAN = 16**12 - 1
KEY_BYTES = 64
PREFIX = "tanpu:boards"

SET_SCRIPT = """
local seen = redis.call('HGET', KEYS[3], ARGV[1])
if seen and tonumber(ARGV[4]) < tonumber(seen) then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
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


MINE_SCRIPT = """
local member = redis.call('HGET', KEYS[2], ARGV[1])
if not member then return false end
local position = redis.call('ZREVRANK', KEYS[1], member)
if not position then return false end
return {member, position, redis.call('ZSCORE', KEYS[1], member)}
"""

# Each byte b becomes 255 - b (a board reads 50 members per request: bytes.translate, not a
# Python loop over every byte).
_INVERT = bytes(255 - b for b in range(256))


def encode_member(key: str, seq: int) -> bytes:
    """A member that sorts (seq asc, key asc) first when read by ZREVRANGE."""
    raw = key.encode("utf-8")
    if len(raw) > KEY_BYTES:
        raise ValueError("board member key too long")
    padded = raw + b"\x00" * (KEY_BYTES - len(raw))
    return f"{SEQ_SPAN - seq:012x}".encode() + padded.translate(_INVERT)


@functools.lru_cache(maxsize=8192)  # a board's top: the same 50 members read by every request
def decode_member(member: bytes) -> tuple[str, int]:
    seq = SEQ_SPAN - int(member[:12], 16)
    raw = member[12:].translate(_INVERT).rstrip(b"\x00")
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
        self._mine = client.register_script(MINE_SCRIPT)

    def set_score(self, pipe, key: str, member_id: str, metric_mg: int | None, seq: int,
                  version: int) -> None:
        """Queue a swap of one member's score (None or 0 removes it from the board), unless
        the member has a score of a later ``version`` already."""
        member = encode_member(member_id, seq) if metric_mg else b""
        self._set(keys=[key, key + ":m", key + ":v"],
                  args=[member_id, member, metric_mg or 0, version], client=pipe)

    def advance(self, campaign_id: int, seqs: list[int], pipe=None) -> int | None:
        """Mark seqs applied; returns the new watermark (-1 while there is none: a
        watermark starts only once seq 1 is applied, by the first entry or a replay). With
        ``pipe``: queued there (after what is queued before it), returns None."""
        watermark = self._advance(keys=[watermark_key(campaign_id),
                                        watermark_key(campaign_id) + ":applied"],
                                  args=[str(s) for s in seqs], client=pipe or self.client)
        return None if pipe is not None else int(watermark)

    def watermark(self, campaign_id: int) -> int:
        """The applied watermark; -1 when the boards were never built or Redis was flushed
        (so that no read trusts a board that does not exist)."""
        value = self.client.get(watermark_key(campaign_id))
        return int(value) if value is not None else -1

    def snapshot(self, campaign_id: int, key: str, limit: int, member_id: str | None):
        """In one round trip: the watermark (-1 when missing), the first ``limit`` members as
        (member id, metric mg, seq), and ``member_id``'s (rank, metric mg, seq) when it is on
        the board, else None."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(watermark_key(campaign_id))
        if limit > 0:  # ZREVRANGE 0 -1 would be the whole board
            pipe.zrevrange(key, 0, limit - 1, withscores=True)
        if member_id is not None:
            self._mine(keys=[key, key + ":m"], args=[member_id], client=pipe)
        replies = iter(pipe.execute())
        watermark = next(replies)
        watermark = int(watermark) if watermark is not None else -1
        top = []
        for member, score in (next(replies) if limit > 0 else ()):
            decoded_id, seq = decode_member(member)
            top.append((decoded_id, int(score), seq))
        mine = None
        found = next(replies) if member_id is not None else None
        if found:
            member, position, score = found
            mine = (int(position) + 1, int(score), decode_member(member)[1])
        return watermark, top, mine

    def rank(self, key: str, member_id: str, metric_mg: int, seq: int,
             mine: tuple | None = None) -> int:
        """1 + the members ahead of (metric, seq, id), whether the member is on the board.
        ``mine``: the member's (rank, metric, seq) from snapshot(), when it is on the board."""
        if mine is not None:
            return mine[0]
        if metric_mg <= 0:  # behind everyone on the board (all of them are above 0)
            return self.client.zcard(key) + 1
        # Not on the board yet visible is rare (hidden participants): ties compared in Python
        # (bytes), not in Lua, whose string order follows the server's locale.
        pipe = self.client.pipeline(transaction=False)
        pipe.zcount(key, f"({metric_mg}", "+inf")
        pipe.zrangebyscore(key, metric_mg, metric_mg)
        higher, equal = pipe.execute()
        encoded = encode_member(member_id, seq)
        return higher + sum(1 for other in equal if other > encoded) + 1

    def clear_campaign(self, campaign_id: int) -> None:
        for key in self.client.scan_iter(f"{PREFIX}:{campaign_id}:*", count=1000):
            self.client.delete(key)

