-- SPDX-License-Identifier: MIT
-- lupine.records: the JSON shape of each catalog record (an artifact, a
-- version, a pipeline, a run, a step run, a page of a listing), defined
-- once for the command line's --json (lupine.cli, `lupine run --json`)
-- and the dashboard's JSON API (lupine.ui): the same record gives the same
-- object either way; the dashboard only adds its links (a version's
-- downloads, each visualization's href) and its graph of a run (edges,
-- plan, progress, each step's layer). The shapes are listed in
-- runtime/README.md ("Records as JSON").
--
-- Times are the catalog's strings, ids strings, json.null where a value
-- is absent; stored values become JSON as lupine.json says. A record's
-- object is built anew: no table of the Client's is marked as JSON.

local core = require "lupine.core"
local lupine = require "lupine"
local client = require "lupine.client"
local json = require "lupine.json"
local shapes = require "lupine.shapes"

local M = {}

local null = json.null

-- v, or json.null for nil
local function opt(v)
  if v == nil then return null end
  return v
end
M.opt = opt

-- The artifact types (lupine.ArtifactType's values) in byte order: the
-- choices of `--type` and of the dashboard's type filter.
M.artifact_types = {}
for _, t in pairs(lupine.ArtifactType) do M.artifact_types[#M.artifact_types + 1] = t end
table.sort(M.artifact_types, json.byte_lt)

-- ---- times ----

-- "YYYY-MM-DDTHH:MM:SS.ffffffZ" -> microseconds since 1970 (days from the
-- civil date, so no time zone or DST is involved).
local function micros(t)
  if type(t) ~= "string" then return nil end
  local y, mo, d, h, mi, s, frac = t:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)Z$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
  local us = tonumber((frac .. "000000"):sub(1, 6))
  return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60 * 1000000
    + tonumber(s) * 1000000 + us
end

-- Milliseconds from start to finish (a float), or nil if either is missing;
-- a running thing with no finish yet counts up to now.
function M.duration_ms(start, finish, running)
  local a = micros(start)
  local b = micros(finish) or (running and micros(core.now()))
  if not a or not b then return nil end
  return (b - a) / 1000
end

-- How long a run or step run took, or has taken so far while running.
function M.elapsed_ms(r)
  return M.duration_ms(r.start_time, r.end_time, r.status == "running")
end

-- "850 ms", "6.0 s", "2 min 05 s": the runtime's one format of durations.
function M.human_duration(ms)
  if ms == nil then return "" end
  return core.duration(ms)
end

-- ---- the records ----

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

function M.tags(tags) return json.array(copy(tags)) end
function M.metadata(md) return json.object(copy(md)) end

-- A version named: { id, name, version }.
function M.ref(av)
  return json.object { id = av.id, name = av.name, version = av.version }
end

-- A step run's input, output or lookup: a version, or one deleted since
-- (deleted: when, else null).
function M.link(av)
  local o = M.ref(av)
  o.deleted = opt(av.deleted)
  return o
end

local function links(map)
  local out = {}
  for name, av in pairs(map) do out[name] = M.link(av) end
  return json.object(out)
end

-- An artifact version, as listings give it.
function M.version(av)
  local producer = null
  local sr = av.producer_step_run
  if sr then
    producer = json.object { step_run_id = sr.id, step = sr.name, run_id = sr.run_id,
      run = sr.pipeline_run.name }
  end
  return json.object { id = av.id, name = av.name, version = av.version, type = av.type,
    data_type = av.data_type, content_hash = av.content_hash, size = av.size,
    stored_size = av.stored_size, uri = av.uri, codec_version = av.codec_version,
    created = av.created, tags = M.tags(av.tags), producer = producer,
    save_type = av.save_type }
end

-- A visualization of a version (its bytes are apart: the object in uri).
function M.visualization(v)
  return json.object { position = v.position, type = v.type, hash = v.hash, size = v.size,
    uri = v.uri }
end

-- An artifact version described: as listed, plus its metadata, what its
-- data type reads as, its visualizations and the step runs that took it.
function M.version_record(av)
  local o = M.version(av)
  o.run_metadata = M.metadata(av.run_metadata)
  o.data_type_label = shapes.label(av.data_type)
  local vs, consumers = {}, {}
  for i, v in ipairs(av.visualizations) do vs[i] = M.visualization(v) end
  o.visualizations = json.array(vs)
  for i, sr in ipairs(av:consumers()) do
    consumers[i] = json.object { step_run_id = sr.id, step = sr.name, input = sr.input_name,
      run_id = sr.run_id, run = sr.pipeline_run.name, status = sr.status }
  end
  o.consumers = json.array(consumers)
  return o
end

function M.artifact(a)
  local latest = a.latest_version
  return json.object { id = a.id, name = a.name, created = a.created,
    version_count = a.version_count, tags = M.tags(a.tags),
    latest_version = latest and json.object { id = latest.id, version = latest.version,
      created = latest.created } or null }
end

function M.pipeline(p)
  local r = p.latest_run
  return json.object { id = p.id, name = p.name, created = p.created,
    run_count = p.run_count, latest_run = r and json.object { id = r.id, name = r.name,
      status = r.status, start_time = opt(r.start_time) } or null }
end

-- A pipeline run, as listings give it (a running run's duration is up to now).
function M.run(run)
  return json.object { id = run.id, name = run.name, pipeline = run.pipeline_name,
    status = run.status, start_time = opt(run.start_time), end_time = opt(run.end_time),
    duration_ms = opt(M.elapsed_ms(run)), tags = M.tags(run.tags) }
end

-- Whether a step run was a cache hit ("hit"), ran though it could have
-- been one ("miss": its cache note says why), or neither (nil).
function M.cache_state(sr)
  if sr.status == "cached" then return "hit" end
  if sr.cache_note then return "miss" end
  return nil
end

function M.step(sr)
  return json.object { id = sr.id, name = sr.name, step_name = sr.step_name,
    status = sr.status, start_time = opt(sr.start_time), end_time = opt(sr.end_time),
    duration_ms = opt(M.elapsed_ms(sr)),
    cache = json.object { state = opt(M.cache_state(sr)), key = opt(sr.cache_key),
      note = opt(sr.cache_note), cached_from = opt(sr.cached_from) },
    attempts = opt(sr.attempts), seed = opt(sr.seed), orchestrator = opt(sr.orchestrator),
    job = opt(sr.job),
    inputs = links(sr.inputs), outputs = links(sr.outputs),
    manual_outputs = links(sr.manual_outputs), lookups = links(sr.lookups),
    parameters = M.metadata(sr.parameters), error = opt(sr.error), traceback = opt(sr.traceback) }
end

-- The step runs of a run in the order they were recorded.
function M.steps_of(run)
  local list = {}
  for i, row in ipairs(core.query("step_runs_of_run", run.id)) do list[i] = client.step_run_of(row) end
  return list
end

-- A run described: as listed, plus its error, its metadata and its steps
-- (steps: the run's step runs in order, M.steps_of's if nil).
function M.run_record(run, steps)
  local o = M.run(run)
  o.error = opt(run.error)
  o.run_metadata = M.metadata(run.run_metadata)
  local list = {}
  for i, sr in ipairs(steps or M.steps_of(run)) do list[i] = M.step(sr) end
  o.steps = json.array(list)
  return o
end

-- One page of a listing, each record made JSON by shape.
function M.page(list, shape)
  local items = {}
  for i, record in ipairs(list) do items[i] = shape(record) end
  return json.object { items = json.array(items), page = list.page, size = list.size,
    total = list.total, total_pages = list.total_pages }
end

return M
