-- SPDX-License-Identifier: MIT
-- lupine.json: the JSON text of catalog records and stored values, for the
-- command line's --json, the dashboard's /api/* and lineage's JSON. The
-- text is valid JSON (RFC 8259) whatever the catalog holds.
--
-- The JSON text of a value, deterministic (object keys sorted by their
-- bytes). Lua values read from the catalog map as follows:
--   nil -> null; booleans; integers -> integer literals (all 64 bits);
--   finite floats -> the fewest digits that read back as the same double,
--     as core.number_text writes them: always with "." or an exponent
--     (1.0 stays "1.0", -0.0 is "-0.0", 100.0 is "100.0");
--   NaN, inf, -inf -> {"$float": "nan"|"inf"|"-inf"};
--   strings that are valid UTF-8 -> JSON strings; other strings (CBOR
--     byte strings) -> {"$bytes": "<base64, RFC 4648, padded>"};
--   a sequence (keys 1..n; the empty table too) -> an array;
--   a table whose keys are all strings that are valid UTF-8, none starting
--     with "$" -> an object;
--   any other table -> {"$map": [[key, value], ...]}, entries in CBOR map
--     order (the key's encoding, then the value's);
--   a table reached more than once (shared, or a cycle) -> at its first
--     appearance {"$shared": n, "$value": <the table>}, afterwards
--     {"$ref": n}; n counts from 0 in order of appearance.
-- So every object with a key starting with "$" is one of these forms, and
-- a value is never changed on the way.

local core = require "lupine.core"
local base64 = require("lupine.viz").base64

local json = {}

local OBJECT = { __name = "lupine.json.object" }
local ARRAY = { __name = "lupine.json.array" }
json.null = setmetatable({}, { __name = "lupine.json.null" })

-- Records of the --json shapes: object(t) is a JSON object whatever its
-- keys (empty: {}), array(t) an array; their fields are values as above.
-- A record's keys (metadata keys, parameter and input names) must be JSON
-- strings: where one is not valid UTF-8 (only a catalog written before
-- such keys were checked, or by another tool, holds one), each byte that
-- is not part of valid UTF-8 is replaced by U+FFFD.
function json.object(t) return setmetatable(t, OBJECT) end
function json.array(t) return setmetatable(t, ARRAY) end

-- Byte order, whatever the C locale says (Lua's < on strings is strcoll).
function json.byte_lt(a, b)
  if a == b then return false end
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local byte_lt = json.byte_lt

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- s, with any byte not part of valid UTF-8 replaced by U+FFFD.
local function utf8_only(s)
  local out, i = {}, 1
  while true do
    local _, bad = utf8.len(s, i)   -- the first byte from i on that is not valid UTF-8
    if not bad then break end
    out[#out + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end

-- s as a JSON string (valid UTF-8 in, else made so).
local function quote(s)
  if not utf8.len(s) then s = utf8_only(s) end
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function float_text(x)
  if x ~= x then return '{"$float":"nan"}' end
  if x == math.huge then return '{"$float":"inf"}' end
  if x == -math.huge then return '{"$float":"-inf"}' end
  return core.number_text(x)
end

-- How often each table is reached from v (keys included).
local function count_refs(v, refs)
  if type(v) ~= "table" then return end
  local n = refs[v]
  refs[v] = (n or 0) + 1
  if n then return end
  for k, x in pairs(v) do
    count_refs(k, refs)
    count_refs(x, refs)
  end
end

local encode_value

local function encode_table(t, buf, st)
  local n, max, ints, strings = 0, 0, true, true
  for k in pairs(t) do
    n = n + 1
    if math.type(k) == "integer" and k >= 1 then
      if k > max then max = k end
    else
      ints = false
    end
    if type(k) ~= "string" or k:byte(1) == 36 or not utf8.len(k) then   -- 36: "$"
      strings = false
    end
  end
  if ints and max == n then
    buf[#buf + 1] = "["
    for i = 1, n do
      if i > 1 then buf[#buf + 1] = "," end
      encode_value(t[i], buf, st)
    end
    buf[#buf + 1] = "]"
  elseif strings then
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, byte_lt)
    buf[#buf + 1] = "{"
    for i, k in ipairs(keys) do
      buf[#buf + 1] = (i > 1 and "," or "") .. quote(k) .. ":"
      encode_value(t[k], buf, st)
    end
    buf[#buf + 1] = "}"
  else
    local entries = {}
    for k, v in pairs(t) do
      entries[#entries + 1] = { k = k, v = v, kb = assert(core.encode(k)) }
    end
    table.sort(entries, function(x, y)
      if x.kb ~= y.kb then return byte_lt(x.kb, y.kb) end
      x.vb = x.vb or assert(core.encode(x.v))
      y.vb = y.vb or assert(core.encode(y.v))
      return byte_lt(x.vb, y.vb)
    end)
    buf[#buf + 1] = '{"$map":['
    for i, e in ipairs(entries) do
      buf[#buf + 1] = i > 1 and ",[" or "["
      encode_value(e.k, buf, st)
      buf[#buf + 1] = ","
      encode_value(e.v, buf, st)
      buf[#buf + 1] = "]"
    end
    buf[#buf + 1] = "]}"
  end
end

function encode_value(v, buf, st)
  local t = type(v)
  if v == nil then
    buf[#buf + 1] = "null"
  elseif t == "boolean" then
    buf[#buf + 1] = tostring(v)
  elseif math.type(v) == "integer" then
    buf[#buf + 1] = string.format("%d", v)
  elseif t == "number" then
    buf[#buf + 1] = float_text(v)
  elseif t == "string" then
    buf[#buf + 1] = utf8.len(v) and quote(v) or ('{"$bytes":"' .. base64(v) .. '"}')
  elseif t == "table" then
    if st.refs[v] == 1 then return encode_table(v, buf, st) end
    local id = st.ids[v]
    if id then
      buf[#buf + 1] = '{"$ref":' .. id .. "}"
      return
    end
    id, st.next = st.next, st.next + 1
    st.ids[v] = id
    buf[#buf + 1] = '{"$shared":' .. id .. ',"$value":'
    encode_table(v, buf, st)
    buf[#buf + 1] = "}"
  else
    error("cannot convert a " .. t .. " to JSON", 0)   -- the catalog holds none
  end
end

local function encode(v, buf)
  local mt = getmetatable(v)
  if v == json.null then
    buf[#buf + 1] = "null"
  elseif mt == OBJECT then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, byte_lt)
    buf[#buf + 1] = "{"
    for i, k in ipairs(keys) do
      buf[#buf + 1] = (i > 1 and "," or "") .. quote(k) .. ":"
      encode(v[k], buf)
    end
    buf[#buf + 1] = "}"
  elseif mt == ARRAY then
    buf[#buf + 1] = "["
    for i = 1, #v do
      if i > 1 then buf[#buf + 1] = "," end
      encode(v[i], buf)
    end
    buf[#buf + 1] = "]"
  else
    local refs = {}
    count_refs(v, refs)
    encode_value(v, buf, { refs = refs, ids = {}, next = 0 })
  end
end

-- json.encode(v): the JSON text of v (records made with json.object and
-- json.array, anything else a value as described above).
function json.encode(v)
  local buf = {}
  encode(v, buf)
  return table.concat(buf)
end

return json
