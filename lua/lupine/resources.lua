-- SPDX-License-Identifier: MIT
-- lupine.resources: what a step asks of the machine that runs it
-- (resources = { cpus, mem, time, gpus, partition }), checked, and its
-- mapping to the options of sbatch together with a Slurm orchestrator's
-- defaults. Pure functions: nothing here runs a job.

local names = require "lupine.names"

local M = {}

-- A Slurm time limit: "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM",
-- "D-HH:MM:SS" (sbatch(1), --time), or UNLIMITED. true, or nil.
function M.slurm_time(s)
  if type(s) ~= "string" then return nil end
  if s == "UNLIMITED" or s == "INFINITE" then return true end
  for _, p in ipairs { "^%d+$", "^%d+:%d%d?$", "^%d+:%d%d?:%d%d?$", "^%d+%-%d%d?$",
    "^%d+%-%d%d?:%d%d?$", "^%d+%-%d%d?:%d%d?:%d%d?$" } do
    if s:find(p) then return true end
  end
  return nil
end

-- seconds -> "H:MM:SS" (Slurm rounds it up to whole minutes itself)
local function hms(seconds)
  local s = math.ceil(seconds)
  return string.format("%d:%02d:%02d", s // 3600, s // 60 % 60, s % 60)
end

-- Each key: a check of its value (true, or what it must be) and its sbatch
-- option for a valid value.
local keys = {
  cpus = {
    check = function(v) return math.type(v) == "integer" and v >= 1, "an integer from 1" end,
    option = function(v) return "--cpus-per-task=" .. v end,
  },
  mem = {
    -- megabytes, or a number with Slurm's unit: "512M", "4G", "1T"
    check = function(v)
      return (math.type(v) == "integer" and v >= 1)
        or (type(v) == "string" and v:find("^[1-9]%d*[KMGT]?$") ~= nil),
        'megabytes (an integer from 1) or a size such as "4G" (K, M, G, T)'
    end,
    option = function(v) return "--mem=" .. v end,
  },
  time = {
    check = function(v)
      return (type(v) == "number" and v > 0 and v < math.huge) or M.slurm_time(v) == true,
        'seconds (a number above 0) or a Slurm time such as "1:30:00" or "2-00:00:00"'
    end,
    option = function(v) return "--time=" .. (type(v) == "number" and hms(v) or v) end,
  },
  gpus = {
    -- a count, or "type:count"
    check = function(v)
      return (math.type(v) == "integer" and v >= 1)
        or (type(v) == "string" and v:find("^[%w_%-]+:[1-9]%d*$") ~= nil),
        'an integer from 1 or "type:count" such as "a100:2"'
    end,
    option = function(v) return "--gpus=" .. v end,
  },
  partition = {
    check = function(v)
      return type(v) == "string" and v:find("^[%w_%-.]+$") ~= nil, "a partition's name"
    end,
    option = function(v) return "--partition=" .. v end,
  },
}
-- in this order on the command line (the partition first: it is read first)
local order = { "partition", "cpus", "mem", "time", "gpus" }
M.keys = order

-- Check a resources table of the step named by what ("step 'train'"):
-- returns it, or nil and the message naming the step and the key.
function M.check(t, what)
  if type(t) ~= "table" then
    return nil, string.format("%s: resources must be a table (got %s)", what, type(t))
  end
  for k, v in pairs(t) do
    local key = keys[k]
    if not key then
      local near = names.suggest(tostring(k), order)
      return nil, string.format("%s: unknown resource '%s'%s", what, tostring(k),
        near ~= "" and near or " (known: " .. table.concat(order, ", ") .. ")")
    end
    local ok, expected = key.check(v)
    if not ok then
      return nil, string.format("%s: resources.%s must be %s (got %s)", what, k, expected,
        type(v) == "string" and string.format("%q", v) or tostring(v))
    end
  end
  return t
end

-- The words of a string as a shell would split it (blanks; '...' and
-- "..." quote; \ escapes one character outside '...'): nil and why for an
-- unclosed quote.
function M.words(s)
  local words, word, i, quote = {}, nil, 1, nil
  while i <= #s do
    local c = s:sub(i, i)
    if quote == "'" then
      if c == "'" then quote = nil else word = word .. c end
    elseif c == "\\" and i < #s then
      i = i + 1
      word = (word or "") .. s:sub(i, i)
    elseif quote == '"' then
      if c == '"' then quote = nil else word = word .. c end
    elseif c == "'" or c == '"' then
      quote, word = c, word or ""
    elseif c:find("%s") then
      if word then words[#words + 1], word = word, nil end
    else
      word = (word or "") .. c
    end
    i = i + 1
  end
  if quote then return nil, "a quote (" .. quote .. ") is not closed" end
  if word then words[#words + 1] = word end
  return words
end

-- The sbatch options of one step on a Slurm orchestrator (o: its row:
-- partition, account, time_limit, requeue, sbatch_args), in order: the
-- orchestrator's defaults, then its own arguments, then the step's
-- resources (sbatch takes the last of a repeated option: the step wins).
function M.sbatch_options(o, resources)
  local args = {}
  if o.partition then args[#args + 1] = "--partition=" .. o.partition end
  if o.account then args[#args + 1] = "--account=" .. o.account end
  if o.time_limit then args[#args + 1] = "--time=" .. o.time_limit end
  -- a requeued job runs the step again: only where preemption asks for it
  args[#args + 1] = (o.requeue == true or o.requeue == 1) and "--requeue" or "--no-requeue"
  for _, w in ipairs(o.sbatch_args and assert(M.words(o.sbatch_args)) or {}) do
    args[#args + 1] = w
  end
  for _, k in ipairs(order) do
    local v = resources and resources[k]
    if v ~= nil then args[#args + 1] = keys[k].option(v) end
  end
  return args
end

return M
