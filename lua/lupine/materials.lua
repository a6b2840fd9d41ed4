-- SPDX-License-Identifier: MIT
-- lupine.materials: materializers, for values the codec cannot store as
-- they are: host objects (userdata) and class instances (tables with
-- metatables).
--
-- A materializer turns such a value into a plain, serializable one (save)
-- and back (load). The stored form is plain CBOR: tag 27 around [type
-- name, plain value], so other languages can still read it. Loading never
-- runs code from the artifact: only the load function registered here
-- under that type name.

local core = require "lupine.core"
local names = require "lupine.names"

local M = {}

local by_type, in_order = {}, {}
local raw_loads = 0   -- > 0 while av:load { raw = true } runs

local fields = { type = true, match = true, save = true, load = true }

-- register_materializer { type = "Matrix", match = fn, save = fn, load = fn }
function M.register(spec)
  if type(spec) ~= "table" then
    error("bad argument #1 to 'register_materializer' (table expected, got " .. type(spec) .. ")", 2)
  end
  for k in pairs(spec) do
    if not fields[k] then
      error(string.format("register_materializer: unknown field '%s'", tostring(k)), 2)
    end
  end
  names.check("materializer type", spec.type, 2)
  for _, k in ipairs { "match", "save", "load" } do
    if type(spec[k]) ~= "function" then
      error(string.format("register_materializer '%s': %s must be a function (got %s)",
        spec.type, k, type(spec[k])), 2)
    end
  end
  local m = { type = spec.type, match = spec.match, save = spec.save, load = spec.load }
  if by_type[m.type] then
    for i, old in ipairs(in_order) do if old.type == m.type then in_order[i] = m end end
  else
    in_order[#in_order + 1] = m
  end
  by_type[m.type] = m
end

-- The materializer for v (a userdata or a table with a metatable), if any.
local function find(v)
  local t = type(v)
  if t ~= "userdata" and not (t == "table" and getmetatable(v) ~= nil) then return nil end
  for _, m in ipairs(in_order) do
    if m.match(v) then return m end
  end
end

-- Does anything in v need a materializer?
local function needs(v, seen)
  if type(v) ~= "table" then return find(v) ~= nil end
  if seen[v] then return false end
  seen[v] = true
  if find(v) then return true end
  for k, x in pairs(v) do
    if needs(k, seen) or needs(x, seen) then return true end
  end
  return false
end

-- v with every value a materializer takes replaced by its tagged plain
-- form (a copy where anything changes; sharing and cycles kept), and the
-- type name if v itself was one.
function M.prepare(v)
  if #in_order == 0 or not needs(v, {}) then return v, nil end
  local memo = {}
  local function walk(x)
    local t = type(x)
    if t ~= "table" and t ~= "userdata" then return x end
    if memo[x] ~= nil then return memo[x] end
    local m = find(x)
    if m then
      local plain = walk(m.save(x))
      local tagged = core.tagged(m.type, plain)
      memo[x] = tagged
      return tagged
    end
    if t ~= "table" then return x end   -- the encoder names it, with its path
    local copy = {}
    memo[x] = copy
    for k, y in pairs(x) do copy[walk(k)] = walk(y) end
    return copy
  end
  local top = find(v)
  return walk(v), top and top.type
end

-- What the decoder calls for each tagged value.
local function restore(type_name, plain)
  if raw_loads > 0 then return plain end
  local m = by_type[type_name]
  if not m then
    error(string.format("its value is of type '%s', which has no materializer here: "
      .. "register one with lupine.register_materializer { type = %q, match = ..., "
      .. "save = ..., load = ... }, or load the stored plain value with av:load { raw = "
      .. "true }", type_name, type_name), 0)
  end
  return m.load(plain)
end
core.set_restore(restore)

-- Call f with tagged values restored to their plain stored form.
function M.raw(f, ...)
  raw_loads = raw_loads + 1
  local ok, a, b = pcall(f, ...)
  raw_loads = raw_loads - 1
  if not ok then error(a, 0) end
  return a, b
end

return M
