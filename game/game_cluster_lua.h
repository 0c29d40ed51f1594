/* game_cluster_lua.h: the Cluster's steps in Redis, one Lua script each.
 *
 * Redis runs a script atomically: no other client's command runs between
 * two of its calls. That is what makes a match one step (game_cluster.h,
 * guarantee (1)) and an end decided once (guarantee (2)). Every key is
 * under "oc:"; an incarnation E is "<instance id>/<8 hex>". The scripts
 * read no clock and draw nothing random: expiries alone carry time.
 * Not for other files than game_cluster.c.
 */
#ifndef GAME_CLUSTER_LUA_H
#define GAME_CLUSTER_LUA_H

/* ARGV: me, url, lease ms, was up ("1" once this incarnation renewed).
 * An incarnation that was up and is no longer among the watched ones, yet
 * not dead, finds that Redis lost its data (a restart without it): it
 * renews nothing and is told so (2), for its games are known nowhere but
 * in it now. Else: renew my lease unless I was declared dead, then
 * reap every watched incarnation whose lease lapsed: mark it dead, purge
 * its tickets and its inbox, and end each of its rooms that had not ended
 * (end:R "lost"). Each of those, and each whose end it had claimed but
 * whose row it had not said was in (FINISHED), then awaits its row
 * (oc:unstored, its record kept a day): every renew returns up to 16 of
 * those, whoever reaped them, until one instance's STORED says its Store
 * holds the row. So a reply lost with its connection loses no game
 * (nobody else might store it: both players may never come back), nor
 * does an owner that dies between its claim and its row; a row stored
 * twice is one row (the same result, whoever writes it). Returns
 *   {1 renewed | 0 fenced | 2 data lost, tickets purged, then per game
 *    awaiting its row: room, p1, n1, p2, n2, and the owner's claimed
 *    reason, winner, p1's score, p2's score, finished at (unix s), each
 *    '' for a game lost} */
static const char LUA_RENEW[] =
    "local me = ARGV[1]\n"
    "if redis.call('EXISTS', 'oc:dead:' .. me) == 1 then return {0, 0} end\n"
    "if ARGV[4] == '1' and redis.call('SISMEMBER', 'oc:epochs', me) == 0 "
    "then\n"
    "  return {2, 0}\n"
    "end\n"
    "redis.call('SET', 'oc:lease:' .. me, ARGV[2], 'PX', ARGV[3])\n"
    "redis.call('SADD', 'oc:epochs', me)\n"
    "local out = {1, 0}\n"
    "for _, e in ipairs(redis.call('SMEMBERS', 'oc:epochs')) do\n"
    "  if redis.call('EXISTS', 'oc:lease:' .. e) == 0 then\n"
    "    redis.call('SET', 'oc:dead:' .. e, '1', 'EX', 86400)\n"
    "    for _, p in ipairs(redis.call('SMEMBERS', 'oc:tickets:' .. e)) do\n"
    "      if redis.call('HGET', 'oc:ticket:' .. p, 'e') == e then\n"
    "        redis.call('DEL', 'oc:ticket:' .. p)\n"
    "        redis.call('ZREM', 'oc:queue', p)\n"
    "        out[2] = out[2] + 1\n"
    "      end\n"
    "    end\n"
    "    for _, r in ipairs(redis.call('SMEMBERS', 'oc:rooms:' .. e)) do\n"
    "      local k = 'oc:end:' .. r\n"
    "      if redis.call('EXISTS', 'oc:room:' .. r) == 1 and\n"
    "         (redis.call('SET', k, 'lost', 'NX', 'EX', 86400) or\n"
    "          redis.call('GET', k) == 'done') then\n"
    "        redis.call('ZADD', 'oc:unstored', redis.call('INCR', 'oc:useq'), r)\n"
    "        redis.call('PEXPIRE', 'oc:room:' .. r, 86400000)\n"
    "      end\n"
    "    end\n"
    "    redis.call('DEL', 'oc:tickets:' .. e, 'oc:inbox:' .. e,\n"
    "               'oc:rooms:' .. e)\n"
    "    redis.call('SREM', 'oc:epochs', e)\n"
    "  end\n"
    "end\n"
    "for _, r in ipairs(redis.call('ZRANGE', 'oc:unstored', 0, 15)) do\n"
    "  local rec = redis.call('HMGET', 'oc:room:' .. r, 'p1', 'n1', 'p2', "
    "'n2',\n"
    "                         'reason', 'winner', 's1', 's2', 'at')\n"
    "  if rec[1] then\n"
    "    out[#out + 1] = r\n"
    "    for i = 1, 9 do out[#out + 1] = rec[i] or '' end\n"
    "  else\n"
    "    redis.call('ZREM', 'oc:unstored', r)\n"
    "  end\n"
    "end\n"
    "return out\n";

/* ARGV: player, name, me, room id, presence ms, ghosts max, my URL (a
 * game whose owner is at my URL and not me is an earlier process's: dead,
 * not one to send the player to). A player still in a game whose owner's
 * lease lapsed is free to play again, and that owner is marked dead first:
 * else, a stalled owner not yet reaped would renew on waking and play the
 * game on, the player seated in two (swarm seed 100089). Take the
 * oldest live ticket that is not the player's and make a room of the two,
 * owned by me; else queue the player. A ticket whose incarnation's lease
 * lapsed is purged on the way (its incarnation marked dead). The player's
 * older ticket, wherever it was, is replaced (its instance is told).
 * Returns one of
 *   {'matched', opponent, opponent's name, opponent's incarnation, purged}
 *   {'queued', purged}
 *   {'playing', room, owner incarnation, owner url}  (in a game elsewhere)
 *   {'fenced'}
 *   {'lapsed'}  my own lease lapsed (not renewed in time, not yet reaped):
 *               no match, lest a player be sent to an instance nobody
 *               may take for alive */
static const char LUA_MATCH[] =
    "local p, name, me, room = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local ttl, ghosts, mine = ARGV[5], tonumber(ARGV[6]), ARGV[7]\n"
    "if redis.call('EXISTS', 'oc:dead:' .. me) == 1 then return {'fenced'} "
    "end\n"
    "local myurl = redis.call('GET', 'oc:lease:' .. me)\n"
    "if not myurl then return {'lapsed'} end\n"
    "local cur = redis.call('GET', 'oc:presence:' .. p)\n"
    "if cur then\n"
    "  local e = redis.call('HGET', 'oc:room:' .. cur, 'e')\n"
    "  if e and redis.call('EXISTS', 'oc:end:' .. cur) == 0 then\n"
    "    local url = redis.call('GET', 'oc:lease:' .. e)\n"
    "    if url and (e == me or url ~= mine) then\n"
    "      return {'playing', cur, e, url}\n"
    "    end\n"
    "    if not url then\n"
    "      redis.call('SET', 'oc:dead:' .. e, '1', 'EX', 86400)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local old = redis.call('HGET', 'oc:ticket:' .. p, 'e')\n"
    "if old then\n"
    "  redis.call('ZREM', 'oc:queue', p)\n"
    "  redis.call('SREM', 'oc:tickets:' .. old, p)\n"
    "  redis.call('DEL', 'oc:ticket:' .. p)\n"
    "  if old ~= me then redis.call('RPUSH', 'oc:inbox:' .. old, 'T\\t' .. p) "
    "end\n"
    "end\n"
    "local purged = 0\n"
    "while purged <= ghosts do\n"
    "  local head = redis.call('ZRANGE', 'oc:queue', 0, 0)\n"
    "  if #head == 0 then break end\n"
    "  local q = head[1]\n"
    "  local t = redis.call('HMGET', 'oc:ticket:' .. q, 'e', 'n')\n"
    "  redis.call('ZREM', 'oc:queue', q)\n"
    "  if t[1] then\n"
    "    redis.call('DEL', 'oc:ticket:' .. q)\n"
    "    redis.call('SREM', 'oc:tickets:' .. t[1], q)\n"
    "  end\n"
    "  if t[1] and redis.call('EXISTS', 'oc:lease:' .. t[1]) == 1 and\n"
    "     redis.call('EXISTS', 'oc:dead:' .. t[1]) == 0 then\n"
    "    redis.call('HSET', 'oc:room:' .. room, 'e', me, 'p1', q, 'n1', t[2],\n"
    "               'p2', p, 'n2', name)\n"
    "    redis.call('PEXPIRE', 'oc:room:' .. room, ttl)\n"
    "    redis.call('SADD', 'oc:rooms:' .. me, room)\n"
    "    redis.call('SET', 'oc:presence:' .. q, room, 'PX', ttl)\n"
    "    redis.call('SET', 'oc:presence:' .. p, room, 'PX', ttl)\n"
    "    if t[1] ~= me then\n"
    "      redis.call('RPUSH', 'oc:inbox:' .. t[1],\n"
    "                 'M\\t' .. q .. '\\t' .. room .. '\\t' .. myurl)\n"
    "    end\n"
    "    return {'matched', q, t[2], t[1], purged}\n"
    "  end\n"
    "  if t[1] then redis.call('SET', 'oc:dead:' .. t[1], '1', 'EX', 86400) "
    "end\n"
    "  purged = purged + 1\n"
    "end\n"
    "local seq = redis.call('INCR', 'oc:qseq')\n"
    "redis.call('ZADD', 'oc:queue', seq, p)\n"
    "redis.call('HSET', 'oc:ticket:' .. p, 'e', me, 'n', name)\n"
    "redis.call('SADD', 'oc:tickets:' .. me, p)\n"
    "return {'queued', purged}\n";

/* ARGV: player, me. Withdraw the player's ticket if it is still mine.
 * Returns 1 when withdrawn, 0 when it was gone (matched, or taken). */
static const char LUA_UNQUEUE[] =
    "local p, me = ARGV[1], ARGV[2]\n"
    "if redis.call('HGET', 'oc:ticket:' .. p, 'e') ~= me then return 0 end\n"
    "redis.call('DEL', 'oc:ticket:' .. p)\n"
    "redis.call('ZREM', 'oc:queue', p)\n"
    "redis.call('SREM', 'oc:tickets:' .. me, p)\n"
    "return 1\n";

/* ARGV: player, me, my URL. Where is the player's game? An owner at my
 * URL that is not me is an earlier process at my address, so it is dead
 * (a restart within its lease): its game is lost, not a MOVE to myself.
 * Returns
 *   {'none'}                      nowhere (or it is over)
 *   {'here', room}                mine
 *   {'move', room, url}           on a live instance: send them there
 *   {'lost', room, p1, n1, p2, n2} its owner's lease lapsed: the game is
 *                                 lost (decided here if nobody had) */
static const char LUA_LOOKUP[] =
    "local p, me, mine = ARGV[1], ARGV[2], ARGV[3]\n"
    "local r = redis.call('GET', 'oc:presence:' .. p)\n"
    "if not r then return {'none'} end\n"
    "local rec = redis.call('HMGET', 'oc:room:' .. r, 'e', 'p1', 'n1', 'p2', "
    "'n2')\n"
    "local fin = redis.call('GET', 'oc:end:' .. r)\n"
    "if not rec[1] or fin == 'done' then\n"
    "  redis.call('DEL', 'oc:presence:' .. p)\n"
    "  return {'none'}\n"
    "end\n"
    "if not fin then\n"
    "  local url = redis.call('GET', 'oc:lease:' .. rec[1])\n"
    "  if url and redis.call('EXISTS', 'oc:dead:' .. rec[1]) == 0 and\n"
    "     (rec[1] == me or url ~= mine) then\n"
    "    if rec[1] == me then return {'here', r} end\n"
    "    return {'move', r, url}\n"
    "  end\n"
    "  redis.call('SET', 'oc:dead:' .. rec[1], '1', 'EX', 86400)\n"
    "  redis.call('SET', 'oc:end:' .. r, 'lost', 'EX', 86400)\n"
    "  redis.call('ZADD', 'oc:unstored', redis.call('INCR', 'oc:useq'), r)\n"
    "  redis.call('PEXPIRE', 'oc:room:' .. r, 86400000)\n"
    "end\n"
    "redis.call('DEL', 'oc:presence:' .. p)\n"
    "return {'lost', r, rec[2], rec[3], rec[4], rec[5]}\n";

/* ARGV: room. The room's row is in the Store (a server_lost one, or its
 * dead owner's claimed result): it awaits no more, and its record lives
 * ten more minutes (a lookup then still tells a player the game was
 * lost). */
static const char LUA_STORED[] =
    "if redis.call('ZREM', 'oc:unstored', ARGV[1]) == 1 then\n"
    "  redis.call('PEXPIRE', 'oc:room:' .. ARGV[1], 600000)\n"
    "end\n"
    "return 1\n";

/* ARGV: room, me, and the result the owner will store: reason, winner,
 * p1's score, p2's score, finished at (unix s). The owner ends its room:
 * 'done' when the end is its to record (set now, or by an earlier claim),
 * 'lost' when the game was declared lost or I am dead. A claim won keeps
 * the result in the room's record (a day), and the room among mine, until
 * FINISHED says the owner's Store holds the row: were the owner to die
 * first, its reaper stores that result (LUA_RENEW). A room that was never
 * in Redis, or whose record is gone, is claimed all the same. */
static const char LUA_CLAIM[] =
    "local r, me = ARGV[1], ARGV[2]\n"
    "if redis.call('EXISTS', 'oc:dead:' .. me) == 1 then return 'lost' end\n"
    "local fin = redis.call('GET', 'oc:end:' .. r)\n"
    "if fin then return fin end\n"
    "redis.call('SET', 'oc:end:' .. r, 'done', 'EX', 86400)\n"
    "for _, p in ipairs(redis.call('HMGET', 'oc:room:' .. r, 'p1', 'p2')) do\n"
    "  if p and redis.call('GET', 'oc:presence:' .. p) == r then\n"
    "    redis.call('DEL', 'oc:presence:' .. p)\n"
    "  end\n"
    "end\n"
    "if redis.call('EXISTS', 'oc:room:' .. r) == 1 then\n"
    "  redis.call('HSET', 'oc:room:' .. r, 'reason', ARGV[3], 'winner', "
    "ARGV[4],\n"
    "             's1', ARGV[5], 's2', ARGV[6], 'at', ARGV[7])\n"
    "  redis.call('PEXPIRE', 'oc:room:' .. r, 86400000)\n"
    "else\n"
    "  redis.call('SREM', 'oc:rooms:' .. me, r)\n"
    "end\n"
    "return 'done'\n";

/* ARGV: room. The owner's Store holds the row of the end it claimed: the
 * room's record, and its place among its owner's rooms and (had the owner
 * been reaped meanwhile) the unstored, go. Returns 1, or 0 when the end
 * is not a claimed one (Redis lost it since). */
static const char LUA_FINISHED[] =
    "local r = ARGV[1]\n"
    "if redis.call('GET', 'oc:end:' .. r) ~= 'done' then return 0 end\n"
    "local e = redis.call('HGET', 'oc:room:' .. r, 'e')\n"
    "if e then redis.call('SREM', 'oc:rooms:' .. e, r) end\n"
    "redis.call('DEL', 'oc:room:' .. r)\n"
    "redis.call('ZREM', 'oc:unstored', r)\n"
    "return 1\n";

#endif
