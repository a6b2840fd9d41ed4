-- SPDX-License-Identifier: MIT
-- lupine.progress: what `lupine run` shows of its runs, drawn from the
-- runtime's events (lupine.h, lupine_event; runtime/programs/main.c hands each one
-- over as a table: type, run, pipeline, step, status, detail, ms, at,
-- total, attempt).
--
-- On a terminal: a line when a run starts (its name, its steps); while it
-- runs, a live block at the bottom with each running step and how long it
-- has run, and the counts over the steps planned; lines above it for what
-- must stay (a failure, what a step prints; every step with --verbose);
-- when it ends, the block gives way to the summary: the run's line and a
-- table of its steps. Not on a terminal: no cursor movement, one line per
-- step as it settles, then the run's line.
--
-- The view only writes to its stream: it is called from inside the run,
-- and calls nothing of the runtime. Durations all go through core.duration.

local core = require "lupine.core"
local names = require "lupine.names"

local M = {}

local View = {}
View.__index = View

local RUNNING_LINES = 8     -- running steps listed in the block; then "and N more"
local REDRAW_MS = 50        -- the block is drawn again at most this often (ticks: 100 ms)

-- new { out = file, err = file, tty = bool, verbose = bool, quiet = bool,
--       columns = n, catalog = path | nil }: progress goes to out (stdout),
-- errors and warnings to err (stderr)
function M.new(opts)
  return setmetatable({ out = opts.out or io.stdout, err = opts.err or io.stderr,
    tty = opts.tty, verbose = opts.verbose,
    quiet = opts.quiet, columns = (opts.columns or 0) > 0 and opts.columns or 80,
    catalog = opts.catalog, runs = {}, run = nil, drawn = 0, drawn_at = -math.huge },
    View)
end

local function plural(n, one, many)
  return string.format("%d %s", n, n == 1 and one or (many or one .. "s"))
end

-- The text of stored or printed strings, safe on a terminal; newlines kept
-- and each following line indented under the first.
local function visible(s)
  s = names.visible(s, "\n")
  if s:find("\n", 1, true) then s = s:gsub("\n", "\n  ") end
  return s
end

-- the terminal columns s takes (a CJK character two)
local width = core.text_width

-- s cut to n columns, its end "…" when cut.
local function cut(s, n)
  if width(s) <= n then return s end
  local _, fit = width(s, n - 1)
  return s:sub(1, fit) .. "…"
end

function View:write(...)
  self.out:write(...)
end

-- Erase the live block (the cursor is at the start of the line below it).
function View:erase()
  if self.drawn > 0 then
    self:write(string.format("\27[%dA\27[J", self.drawn))
    self.drawn = 0
  end
end

-- A line that stays: above the live block, which is drawn again after it.
function View:line(text)
  self:erase()
  self:write(text, "\n")
end

-- An error or a warning, "lupine: text", on err: above the live block too.
function View:error(text)
  self:erase()
  self.out:flush()
  self.err:write("lupine: ", text, "\n")
  self.err:flush()
end

-- A warning of the runtime's (runtime/programs/main.c passes on its log's).
function View:warn(msg)
  self:error(names.visible(msg, "\n"))
  self:redraw(self.drawn_at, true)
end

-- The counts of a run's settled steps, for the block and the summary:
-- "2 done, 1 cached, 1 failed".
local function counts_text(run, with_zeros)
  local c, parts = run.counts, {}
  for _, k in ipairs { { "completed", "done" }, { "cached" }, { "failed" }, { "stopped" },
      { "skipped" } } do
    local n = c[k[1]] or 0
    if n > 0 or (with_zeros and k[1] ~= "stopped" and k[1] ~= "skipped") then
      parts[#parts + 1] = n .. " " .. (k[2] or k[1])
    end
  end
  return table.concat(parts, ", ")
end

-- The live block of the run in progress: each running step and how long it
-- has run, then the counts.
function View:draw(at)
  local run = self.run
  self:erase()
  if not run then return end
  local list = {}
  for name, s in pairs(run.running) do
    list[#list + 1] = { name = name, since = s.at, attempt = s.attempt }
  end
  table.sort(list, function(a, b)
    if a.since ~= b.since then return a.since < b.since end
    return a.name < b.name
  end)
  local lines = {}
  local w = 0
  for i = 1, math.min(#list, RUNNING_LINES) do w = math.max(w, width(list[i].name)) end
  for i = 1, math.min(#list, RUNNING_LINES) do
    local s = list[i]
    local label = s.name .. string.rep(" ", w - width(s.name))
    lines[#lines + 1] = string.format("  %s  %s%s", label, core.duration(at - s.since),
      s.attempt > 1 and string.format(" (attempt %d)", s.attempt) or "")
  end
  if #list > RUNNING_LINES then
    lines[#lines + 1] = string.format("  ... and %d more running", #list - RUNNING_LINES)
  end
  local settled = 0
  for _, n in pairs(run.counts) do settled = settled + n end
  lines[#lines + 1] = string.format("%s: %s, %d running, %d pending (%s)",
    plural(run.total, "step"), counts_text(run, true), #list, run.total - settled - #list,
    core.duration(at))
  for i, l in ipairs(lines) do lines[i] = cut(l, self.columns - 1) end
  self:write(table.concat(lines, "\n"), "\n")
  self.drawn, self.drawn_at = #lines, at
end

function View:redraw(at, now)
  if self.tty and not self.quiet and self.run and (now or at - self.drawn_at >= REDRAW_MS) then
    self:draw(at)
  end
end

-- The line of a settled step (a failure's error goes to stderr apart).
local function step_line(e)
  local status, detail = e.status, e.detail
  if status == "failed" or status == "stopped" then
    return string.format("step '%s' %s after %s", e.step, status, core.duration(e.ms))
  elseif status == "completed" then
    return string.format("step '%s' completed in %s%s", e.step, core.duration(e.ms),
      detail and detail ~= "" and (": " .. visible(detail)) or "")
  end
  return string.format("step '%s' %s%s", e.step, status,
    detail and detail ~= "" and (": " .. visible(detail)) or "")
end

local handlers = {}

function handlers.run_start(self, e)
  local run = { id = e.run_id, name = e.run, pipeline = e.pipeline, total = e.total,
    running = {}, counts = {}, steps = {} }
  self.runs[#self.runs + 1] = run
  self.run = run
  if not self.quiet then
    self:line(string.format("run '%s' of pipeline '%s': %s%s", e.run, e.pipeline,
      plural(e.total, "step"), self.tty and self.catalog and (" (catalog " .. self.catalog .. ")")
        or ""))
  end
  self:redraw(e.at, true)
end

function handlers.step_start(self, e)
  self.run.running[e.step] = { at = e.at, attempt = e.attempt }
  if self.verbose then
    self:line(string.format("step '%s' started%s", e.step,
      e.attempt > 1 and string.format(" (attempt %d)", e.attempt) or ""))
  end
  self:redraw(e.at)
end

function handlers.step_retry(self, e)
  self.run.running[e.step] = nil
  if not self.quiet then
    self:line(string.format("step '%s' failed (attempt %d), trying again in %s: %s", e.step,
      e.attempt, core.duration(e.ms), visible(e.detail or "")))
  end
  self:redraw(e.at, true)
end

function handlers.step_end(self, e)
  local run = self.run
  run.running[e.step] = nil
  run.counts[e.status] = (run.counts[e.status] or 0) + 1
  if self.tty then   -- for the summary's table
    run.steps[#run.steps + 1] = { name = e.step, status = e.status, ms = e.ms, detail = e.detail }
  end
  -- a failure's error, once, on stderr; on a terminal the block counts the
  -- other steps, but a stopped one stays in sight
  if e.status == "failed" then
    self:error(visible(e.detail or string.format("step '%s' failed", e.step)))
  end
  if e.status == "stopped" or self.verbose or not (self.tty or self.quiet) then
    self:line(step_line(e))
  end
  self:redraw(e.at, e.status == "failed" or e.status == "stopped")
end

function handlers.tick(self, e)
  self:redraw(e.at, true)
end

function handlers.run_end(self, e)
  local run = self.run
  run.status, run.ms = e.status, e.ms
  self:erase()
  self.run = nil
  local counts = counts_text(run)
  self:write(string.format("run '%s' %s in %s%s\n", run.name, e.status, core.duration(e.ms),
    counts ~= "" and (": " .. counts) or ""))
  if self.tty and not self.quiet then self:summary(run) end
end

-- The table of a run's steps, in the order they settled: name, status,
-- duration, and the versions made (a failure's error was shown above).
function View:summary(run)
  local w, dw = 0, 0
  local durations = {}
  for i, s in ipairs(run.steps) do
    w = math.max(w, width(s.name))
    durations[i] = (s.status == "skipped") and "" or core.duration(s.ms or 0)
    dw = math.max(dw, #durations[i])
  end
  for i, s in ipairs(run.steps) do
    local detail = (s.status == "completed" or s.status == "cached") and s.detail or ""
    local line = string.format("  %s%s  %-9s  %s%s%s", s.name, string.rep(" ", w - width(s.name)),
      s.status, string.rep(" ", dw - #durations[i]), durations[i],
      detail ~= "" and ("  " .. names.visible(detail)) or "")
    self:write(cut((line:gsub("%s+$", "")), self.columns - 1), "\n")
  end
end

-- A line a step printed is written by runtime/programs/main.c (as "[step] line",
-- unless --quiet: output_begin says whether), between these two: the block
-- out of its way, then drawn again.
function View:output_begin()
  if self.quiet then return false end
  self:erase()
  self.out:flush()
  return true
end

function View:output_end(at)
  self:redraw(at)
end

-- Called by runtime/programs/main.c for each other event; the stream is flushed
-- after each, so a pipe reads the lines as they come.
function View:event(e)
  local handler = handlers[e.type]
  if handler then handler(self, e) end
  self.out:flush()
end

-- The runs shown, in order: { id, name, pipeline, status, ... }.
function View:shown()
  return self.runs
end

-- Is msg the error of a run this view showed failing or stopped? (Its
-- line said so, and its steps' errors were shown: not again.)
function View:told(msg)
  local name = msg:match("^pipeline run '(.-)' ") or msg:match("; the last: pipeline run '(.-)' ")
  for _, run in ipairs(self.runs) do
    if run.name == name and run.status and run.status ~= "completed" then return true end
  end
  return false
end

return M
