-- SPDX-License-Identifier: MIT
-- Names of artifacts, tags, pipelines, steps, outputs and runs: non-empty
-- valid UTF-8 without control characters, at most 255 bytes. Names are
-- only ever data (never file paths or SQL), so "team/model" is fine.

local names = {}

local MAX = 255

-- A printable rendering of a bad name for error messages.
local function show(s)
  local long = #s > 60
  if long then s = s:sub(1, 60) end
  local high = utf8.len(s) and "" or "\128-\255"
  s = s:gsub("[%c\"\\" .. high .. "]", function(c)
    return c == '"' and '\\"' or c == "\\" and "\\\\" or string.format("\\x%02X", c:byte())
  end)
  return '"' .. s .. '"' .. (long and "..." or "")
end

-- Returns name, or raises "<kind> name ..." at the caller's level + 1.
function names.check(kind, name, level)
  level = (level or 1) + 1
  if type(name) ~= "string" then
    error(string.format("%s name must be a string (got %s)", kind, type(name)), level)
  end
  if name == "" then error(kind .. " name must not be empty", level) end
  if #name > MAX then
    error(string.format("%s name %s is %d bytes long (at most %d)", kind, show(name),
      #name, MAX), level)
  end
  if not utf8.len(name) then
    error(string.format("%s name %s is not valid UTF-8", kind, show(name)), level)
  end
  if name:find("[%c]") then
    error(string.format("%s name %s contains a control character", kind, show(name)), level)
  end
  return name
end

-- Fill the {placeholders} of template from subs. Returns the name, or nil
-- and the first placeholder subs has no value for.
function names.render(template, subs)
  local missing
  local out = template:gsub("{([%w_]+)}", function(key)
    local v = subs[key]
    if v == nil then
      missing = missing or key
      return nil
    end
    return tostring(v)
  end)
  if missing then return nil, missing end
  return out
end

-- Edit distance, for "did you mean" suggestions.
local function distance(a, b)
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

-- The candidates close to name, best first (at most three).
function names.near(name, candidates)
  local limit = math.max(2, #name // 3)
  local found = {}
  for _, c in ipairs(candidates) do
    local d = distance(name, c)
    if d <= limit then found[#found + 1] = { c, d } end
  end
  table.sort(found, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
  local out = {}
  for i = 1, math.min(3, #found) do out[i] = found[i][1] end
  return out
end

-- "; did you mean 'a' or 'b'?" or "".
function names.suggest(name, candidates)
  local near = names.near(name, candidates)
  if #near == 0 then return "" end
  for i, n in ipairs(near) do near[i] = "'" .. n .. "'" end
  return "; did you mean " .. table.concat(near, " or ") .. "?"
end

return names
