-- SPDX-License-Identifier: MIT
-- Codec throughput: `make bench` runs this against the release build.
--
-- Two values: an array of 1,000,000 floats (random doubles) and 100,000
-- records { id = i, name = "x" .. i, score = <random double> }. Each is
-- taken both ways through the real path, in this process:
--   encode + compress: lupine.save_artifact (CBOR encode, SHA-256, zstd
--     level 3, the object written durably, the version recorded); each
--     round saves a value with one element changed, so each writes a new
--     object;
--   decompress + decode: av:load() (the catalog row, the object read,
--     zstd, the hash checked, CBOR decode);
--   and, for information, save_artifact of a value whose object exists:
--     the object is checked before it is trusted, not written.
-- The floor is what no codec can beat on the same value: a bare Lua walk
-- of the table (a loop reading every field) plus zstd alone on the same
-- CBOR bytes at the same level (tests/bench/zstd_bare.c, buffers
-- allocated ahead). Target: the path reaches half the floor's throughput
-- both ways. Throughput is in MB of CBOR per second (1 MB = 10^6 bytes).
-- The parts (core.encode, core.decode and core.hash alone) show where the
-- time goes, and "the codec alone" (core.encode or core.decode plus zstd
-- alone, no hashing, no file) shows how far the codec is from the floor by
-- itself. Building the same table in bare Lua (numbers at hand, strings
-- made anew from bytes as a decoder must) shows what decoding cannot avoid
-- beyond the floor. Every figure is a median over rounds of wall time.
--
-- Environment: see benchlib.lua; LUPINE_BENCH_SCALE (1: the sizes above).

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local B = require "benchlib"
local lupine = require "lupine"
local core = require "lupine.core"

local SCALE = tonumber(os.getenv("LUPINE_BENCH_SCALE") or "1")
local TARGET = 0.5   -- of the floor's throughput
local ROUNDS = B.rounds(7)

local dir = B.scratch()
lupine.set_home(dir .. "/home")
math.randomseed(42)

local datasets = {
  {
    label = "floats", count = math.floor(1000000 * SCALE),
    make = function(n)
      local t = {}
      for i = 1, n do t[i] = math.random() end
      return t
    end,
    walk = function(t)
      local s = 0.0
      for i = 1, #t do s = s + t[i] end
      return s
    end,
    -- what building the same table costs bare Lua, from values at hand
    build = function(src)
      local t = {}
      for i = 1, #src do t[i] = src[i] end
      return t
    end,
    change = function(t, r) t[1] = r + 0.5 end,
    what = "float64 in an array",
  },
  {
    label = "records", count = math.floor(100000 * SCALE),
    make = function(n)
      local t = {}
      for i = 1, n do t[i] = { id = i, name = "x" .. i, score = math.random() } end
      return t
    end,
    walk = function(t)
      local s = 0.0
      for i = 1, #t do
        local r = t[i]
        s = s + r.id + #r.name + r.score
      end
      return s
    end,
    -- the names made anew from bytes, as a decoder must (string.sub
    -- interns them as lua_pushlstring does)
    prepare = function(src)
      local parts, at = {}, {}
      for i = 1, #src do parts[i] = src[i].name end
      local blob, pos = table.concat(parts), 1
      for i = 1, #src do
        at[i] = pos
        pos = pos + #parts[i]
      end
      at[#src + 1] = pos
      return { blob = blob, at = at }
    end,
    build = function(src, aux)
      local t, blob, at, sub = {}, aux.blob, aux.at, string.sub
      for i = 1, #src do
        local r = src[i]
        t[i] = { id = r.id, name = sub(blob, at[i], at[i + 1] - 1), score = r.score }
      end
      return t
    end,
    change = function(t, r) t[1].score = r + 0.5 end,
    what = "records {id, name, score}",
  },
}

local function mbs(bytes, s) return string.format("%.0f MB/s", bytes / s / 1e6) end
local function ns(s, n) return string.format("%.0f ns/element", s / n * 1e9) end

print(string.format("zstd level 3; %d rounds; %s", ROUNDS, B.machine()))
for _, d in ipairs(datasets) do
  local v = d.make(d.count)
  local bytes = assert(core.encode(v))
  local n = #bytes
  local file = B.write(dir .. "/" .. d.label .. ".cbor", bytes)
  local zc, zd, frame = B.sh(B.quote(B.zstd_bin) .. " " .. B.quote(file) .. " " .. ROUNDS)
    :match("^(%d+) (%d+) (%d+)")
  if not zc then error("zstd_bare failed; build it with `make bench`") end
  zc, zd = tonumber(zc) / 1e9, tonumber(zd) / 1e9
  local t_walk = B.time(function() d.walk(v) end, ROUNDS)
  local aux = d.prepare and d.prepare(v)
  local t_build = B.time(function() d.build(v, aux) end, ROUNDS)
  local t_enc = B.time(function() core.encode(v) end, ROUNDS)
  local t_dec = B.time(function() core.decode(bytes) end, ROUNDS)
  local t_hash = B.time(function() core.hash(bytes) end, ROUNDS)
  local av
  local t_save = B.time(function(r)
    d.change(v, r)
    av = lupine.save_artifact(v, d.label)
  end, ROUNDS)
  local t_load = B.time(function() av:load() end, ROUNDS)
  -- the same value again: its object is there, checked (decompressed and
  -- compared) instead of written
  local t_again = B.time(function() lupine.save_artifact(v, d.label) end, ROUNDS)
  print(string.format("%s: %d %s, %.1f MB as CBOR, %.1f MB stored", d.label, d.count, d.what,
    n / 1e6, tonumber(frame) / 1e6))
  for _, way in ipairs {
    { "encode + compress (save_artifact)", t_save, zc,
      string.format("core.encode %s, SHA-256 %s, zstd %s, "
        .. "the rest (Lua side, file, fsync, catalog) %s",
        B.ms(t_enc), B.ms(t_hash), B.ms(zc), B.ms(t_save - t_enc - t_hash - zc)) },
    { "decompress + decode (av:load)", t_load, zd,
      string.format("core.decode %s, SHA-256 %s, zstd %s, the rest (Lua side, file, catalog) %s; "
        .. "building the same table in bare Lua takes %s",
        B.ms(t_dec), B.ms(t_hash), B.ms(zd), B.ms(t_load - t_dec - t_hash - zd),
        B.ms(t_build)) },
  } do
    local label, t, z, parts = way[1], way[2], way[3], way[4]
    local floor = t_walk + z
    B.verdict(string.format("  %s, %s: %s median, %s, %s (floor: Lua walk %s + zstd %s = %s): "
      .. "%.2f of the floor (target %.2f)", d.label, label, B.ms(t), mbs(n, t), ns(t, d.count),
      B.ms(t_walk), B.ms(z), mbs(n, floor), floor / t, TARGET), floor / t >= TARGET)
    print("    parts: " .. parts)
  end
  print(string.format("  %s, save_artifact of the same value again (its object checked, not "
    .. "written): %s median, %.2f of a new object's", d.label, B.ms(t_again), t_again / t_save))
  print(string.format("  %s, the codec alone: core.encode + zstd %s: %.2f of the floor; "
    .. "zstd + core.decode %s: %.2f of the floor", d.label, B.ms(t_enc + zc),
    (t_walk + zc) / (t_enc + zc), B.ms(t_dec + zd), (t_walk + zd) / (t_dec + zd)))
end

lupine.set_home(dir .. "/unused")
B.finish()
