-- SPDX-License-Identifier: MIT
-- Names of artifacts, tags, pipelines, steps, outputs and runs, and the keys
-- of metadata: non-empty valid UTF-8 without control characters (C0, DEL,
-- and C1: U+0080 to U+009F), at most 255 bytes. Names are only ever data
-- (never file paths or SQL), so "team/model" is fine.

local names = {}

local MAX = 255

-- A C1 control character in UTF-8 (U+0080 to U+009F): "\xC2" then 0x80-0x9F.
local C1 = "\xC2[\x80-\x9F]"

-- s made safe to print on a terminal: each control character (C0, DEL)
-- and each byte not part of valid UTF-8 written as \xHH, a C1 character
-- as \u{HH}; the characters in keep (e.g. "\n\t") are left. Stored
-- strings are printed through this wherever they reach a terminal, so
-- that one holding ESC cannot drive it.
function names.visible(s, keep)
  if not s:find("[%c\128-\255]") then return s end
  local out, i = {}, 1
  while i <= #s do
    local _, bad = utf8.len(s, i)   -- the first byte from i on that is not valid UTF-8
    local part = s:sub(i, (bad or #s + 1) - 1):gsub("%c", function(c)
      return not (keep and keep:find(c, 1, true)) and string.format("\\x%02X", c:byte()) or nil
    end)
    out[#out + 1] = part:gsub(C1, function(c) return string.format("\\u{%X}", utf8.codepoint(c)) end)
    if bad then out[#out + 1] = string.format("\\x%02X", s:byte(bad)) end
    i = (bad or #s) + 1
  end
  return table.concat(out)
end

-- A printable rendering of a bad name for error messages: quoted, cut to
-- 60 bytes, quotes and backslashes escaped too.
local function show(s)
  local long = #s > 60
  if long then s = s:sub(1, 60) end
  return '"' .. names.visible((s:gsub('["\\]', "\\%0"))) .. '"' .. (long and "..." or "")
end

-- What is wrong with s as a <label> ("tag name", "metadata key"), or nil.
function names.problem(label, s)
  if s == "" then return label .. " must not be empty" end
  if #s > MAX then
    return string.format("%s %s is %d bytes long (at most %d)", label, show(s), #s, MAX)
  end
  if not utf8.len(s) then return string.format("%s %s is not valid UTF-8", label, show(s)) end
  if s:find("%c") or s:find(C1) then
    return string.format("%s %s contains a control character", label, show(s))
  end
  return nil
end

-- Returns name, or raises "<kind> name ..." at the caller's level + 1.
function names.check(kind, name, level)
  level = (level or 1) + 1
  if type(name) ~= "string" then
    error(string.format("%s name must be a string (got %s)", kind, type(name)), level)
  end
  local problem = names.problem(kind .. " name", name)
  if problem then error(problem, level) end
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

-- Edit distance, for "did you mean" suggestions: characters inserted,
-- deleted, replaced, and two neighbours swapped ("cahce"), one each.
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 1, #b do d[0][j] = j end
  for i = 1, #a do
    local row, up = d[i], d[i - 1]
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(up[j] + 1, row[j - 1] + 1, up[j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      row[j] = v
    end
  end
  return d[#a][#b]
end

-- Does name stand inside candidate c: as a part of it ("model" in
-- "trained_model"), or as a word of it spelt nearly right ("cahce" for the
-- "cache" of "enable_cache")?
local function inside(name, c)
  if #name < 3 then return false end
  if c:find(name, 1, true) then return true end
  for word in c:gmatch("[^_%-%.:/ ]+") do
    if #word >= 3 and distance(name, word) <= math.max(1, #name // 4) then return true end
  end
  return false
end

-- The candidates close to name, best first (at most three): those spelt
-- nearly as it is; if none is, those it stands inside.
function names.near(name, candidates)
  -- (a name of one or two characters is near nothing: "y" is not a typo of "x")
  local limit = #name < 3 and #name - 1 or math.max(2, #name // 3)
  local found, inner = {}, {}
  for _, c in ipairs(candidates) do
    local d = distance(name, c)
    if d <= limit then found[#found + 1] = { c, d }
    elseif #found == 0 and inside(name, c) then
      inner[#inner + 1] = { c, math.abs(#c - #name) }   -- the nearest in length first
    end
  end
  if #found == 0 then found = inner end
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
