-- SPDX-License-Identifier: MIT
-- lupine.client: reading the catalog. Client, ArtifactVersion, PipelineRun
-- and StepRun objects over the runtime's named queries (runtime/catalog.c).

local core = require "lupine.core"
local names = require "lupine.names"

local M = {}

local Client, ArtifactVersion, PipelineRun, StepRun, Tag = {}, {}, {}, {}, {}
Client.__index, Client.__name = Client, "lupine.Client"

-- Fields computed on first access: getters[class][field](object).
local getters = {}

local function class(cls, name)
  getters[cls] = {}
  cls.__name = name
  cls.__index = function(obj, k)
    local get = getters[cls][k]
    if get then
      local v = get(obj)
      rawset(obj, k, v)
      return v
    end
    return cls[k]
  end
end
class(ArtifactVersion, "lupine.ArtifactVersion")
class(PipelineRun, "lupine.PipelineRun")
class(StepRun, "lupine.StepRun")
class(Tag, "lupine.Tag")

local function version_of(row) return setmetatable(row, ArtifactVersion) end
local function run_of(row) return setmetatable(row, PipelineRun) end
local function step_run_of(row)
  row.parameters = row.parameters and core.decode(row.parameters) or {}
  return setmetatable(row, StepRun)
end

function M.is_version(v) return getmetatable(v) == ArtifactVersion end

-- Set by lupine (init.lua): while a pipeline body is recorded, a lazy
-- reference to the latest version of the artifact name; else nil.
M.lazy_version = nil

-- For the modules that add methods (lupine.query, lupine.lineage): the
-- classes, the lazy-field table, and the row-to-object constructors.
M.classes = { Client = Client, ArtifactVersion = ArtifactVersion, PipelineRun = PipelineRun,
  StepRun = StepRun, Tag = Tag }
M.getters, M.class = getters, class
M.version_of, M.run_of, M.step_run_of = version_of, run_of, step_run_of

local function one(query, ...)
  return core.query(query, ...)[1]
end

-- "processed:v2"; a custom version that is not a number: "processed:nightly".
local function version_label(name, version)
  return name .. ":" .. (version:find("^%d+$") and "v" or "") .. version
end
M.version_label = version_label

-- A version deleted after step runs made or used it, as their links show
-- it: an ArtifactVersion with id, name, version and deleted (the time);
-- nil if there is no tombstone for id.
local function deleted_version(id)
  local row = one("deleted_version_by_id", id)
  return row and setmetatable(row, ArtifactVersion)
end
M.deleted_version = deleted_version

-- Check an options table (nil: none): only the keys in types, each of its
-- type (or "any").
local function options(opts, types, fname, argn, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string.format("bad argument #%d to '%s' (table expected, got %s)", argn, fname,
      type(opts)), level + 1)
  end
  for k, v in pairs(opts) do
    if types[k] == nil then
      error(string.format("%s: unknown option '%s'", fname, tostring(k)), level + 1)
    end
    if types[k] ~= "any" and type(v) ~= types[k] then
      error(string.format("%s: option '%s' must be a %s (got %s)", fname, k, types[k], type(v)),
        level + 1)
    end
  end
  return opts
end
M.options = options

local function looks_like_id(s)
  return #s >= 4 and #s <= 36 and s:find("^[%x%-]+$") ~= nil
end

-- Does key name a version by its id or a unique id prefix (and no artifact
-- by its name)?
local function is_id(key)
  local id = looks_like_id(key) and key:lower()
  return id and (one("version_by_id", id) ~= nil
    or (one("artifact_by_name", key) == nil and #core.query("versions_by_id_prefix", id) == 1))
end

-- Find by exact id, else by name (find_by_name), else by unique id prefix.
-- Ids are stored in lower case: typed in upper case they match the same.
-- Returns the row, or nil, the message and why: "notfound", or "ambiguous"
-- for a prefix of several ids (the C API's result codes come from why).
local function find(what, key, by_id, by_prefix, find_by_name, all_names)
  local id = looks_like_id(key) and key:lower()
  local row = id and one(by_id, id)
  if row then return row end
  row = find_by_name(key)
  if row then return row end
  if id then
    local rows = core.query(by_prefix, id)
    if #rows == 1 then return rows[1] end
    if #rows > 1 then
      local ids = {}
      for i = 1, math.min(#rows, 10) do ids[i] = rows[i].id end
      return nil, string.format("%s id prefix '%s' is ambiguous: it matches %s%s", what, key,
        table.concat(ids, ", "), #rows > 10 and ", ..." or ""), "ambiguous"
    end
  end
  local candidates = {}
  for _, r in ipairs(core.query(all_names)) do
    -- an artifact whose versions were all deleted is still a name
    if r.name == key then return nil, string.format("%s '%s' has no versions", what, key), "notfound" end
    candidates[#candidates + 1] = r.name
  end
  return nil, string.format("%s '%s' not found%s", what, key, names.suggest(key, candidates)),
    "notfound"
end

-- find, raising its message at the caller's level + 1.
local function lookup(what, key, by_id, by_prefix, find_by_name, all_names, level)
  local row, msg = find(what, key, by_id, by_prefix, find_by_name, all_names)
  if not row then error(msg, level + 1) end
  return row
end

local function tags_of(entity, id)
  local list = {}
  for i, row in ipairs(core.query("tags_of", entity, id)) do list[i] = row.name end
  return list
end

local function metadata_of(entity, id)
  local map = {}
  for _, row in ipairs(core.query("metadata_of", entity, id)) do
    map[row.key] = core.decode(row.value)
  end
  return map
end
M.tags_of, M.metadata_of, M.lookup = tags_of, metadata_of, lookup

-- ---- Client ----

-- What the Client does inside a running step, set by lupine (init.lua):
-- own(name) -> the output of the running step whose new version artifact
-- name is, and the step's context (nil elsewhere); tag_own(ctx, output,
-- add, remove) changes that version's tags before it is recorded;
-- looked_up(name, row) notes that a lookup of name's latest version found
-- row (the step run records it: see "Caching" in runtime/README.md).
M.step = { own = function() end, tag_own = function() end, looked_up = function() end }

-- The message for artifact name of the running step's output out (ctx:
-- its context), which has no version yet.
local function not_yet_message(fname, name, out, ctx)
  return string.format("%s: artifact '%s' is output '%s' of the running step '%s': its "
    .. "version is recorded when the step returns (pass a version to read an earlier one)",
    fname, name, out, ctx.step_name)
end

local function not_yet(fname, name, out, ctx, level)
  error(not_yet_message(fname, name, out, ctx), level + 1)
end
M.not_yet = not_yet

function M.Client()
  return setmetatable({}, Client)
end

local version_fields = { name_id_or_prefix = true, version = true }

-- The version key (a name, an id or a unique id prefix) and version (a
-- version; nil or "latest": the latest) name, looked up now: the
-- version, or nil, the message and why ("notfound", "ambiguous", or
-- "misuse" for an id given a version).
function M.find_version(key, version)
  if version ~= nil and version ~= "latest" then
    local row = one("version_by_name", key, tostring(version))
    -- "v2" as lineage and the tables write version 2, unless a version is named so
    local number = not row and tostring(version):match("^v(%d+)$")
    if number then row = one("version_by_name", key, number) end
    if row then return version_of(row) end
    local all = core.query("versions_of", key)
    if #all == 0 then   -- not a name: an id (or prefix), which names one version alone
      local found, msg, why = find("artifact", key, "version_by_id", "versions_by_id_prefix",
        function() return nil end, "artifact_names")
      if not found then return nil, msg, why end
      return nil, string.format("bad argument #2 to 'get_artifact_version' (a version id "
        .. "takes no version: '%s' is version %s of artifact '%s')", key, found.version,
        found.name), "misuse"
    end
    local have = {}
    for i = #all, 1, -1 do have[#have + 1] = all[i].version end
    return nil, string.format("artifact '%s' has no version '%s' (it has %s)", key,
      tostring(version), table.concat(have, ", ")), "notfound"
  end
  local out, ctx = M.step.own(key)
  if out then return nil, not_yet_message("get_artifact_version", key, out, ctx), "notfound" end
  local row, msg, why = find("artifact", key, "version_by_id", "versions_by_id_prefix",
    function(name)
      local latest = one("latest_version", name)
      if latest then M.step.looked_up(name, latest) end
      return latest
    end, "artifact_names")
  if not row then return nil, msg, why end
  return version_of(row)
end

-- M.find_version with its arguments' types checked, raising its message at
-- level.
local function find_version(key, version, level)
  if type(key) ~= "string" then
    error("bad argument #1 to 'get_artifact_version' (string expected, got "
      .. type(key) .. ")", level + 1)
  end
  if version ~= nil and version ~= "latest" and type(version) ~= "string"
      and math.type(version) ~= "integer" then
    error("bad argument #2 to 'get_artifact_version' (string or integer expected, got "
      .. type(version) .. ")", level + 1)
  end
  local av, msg = M.find_version(key, version)
  if not av then error(msg, level + 1) end
  return av
end
M.get_version = find_version

-- get_artifact_version(name_id_or_prefix [, version]), or with ZenML's
-- keywords: get_artifact_version { name_id_or_prefix = ..., version = ... }.
-- In a pipeline body, the latest version of a name is a lazy reference
-- (ids are exact: they are looked up now).
function Client:get_artifact_version(key, version)
  if type(key) == "table" and getmetatable(key) == nil and version == nil then
    for k in pairs(key) do
      if not version_fields[k] then
        error(string.format("get_artifact_version: unknown field '%s' (it takes "
          .. "name_id_or_prefix and version)", tostring(k)), 2)
      end
    end
    key, version = key.name_id_or_prefix, key.version
    if type(key) ~= "string" then
      error("get_artifact_version: name_id_or_prefix must be a string (got " .. type(key)
        .. ")", 2)
    end
  end
  if M.lazy_version and (version == nil or version == "latest") and type(key) == "string"
      and not is_id(key) then
    local lazy = M.lazy_version(key)
    if lazy then return lazy end
  end
  return (find_version(key, version, 2))   -- not a tail call: the error names the caller
end

function Client:get_pipeline_run(key)
  if type(key) ~= "string" then
    error("bad argument #1 to 'get_pipeline_run' (string expected, got "
      .. type(key) .. ")", 2)
  end
  local run, msg = M.find_run(key)
  if not run then error(msg, 2) end
  return run
end

-- get_pipeline_run(key) with its argument checked: the run, or nil, the
-- message and why (as find_version).
function M.find_run(key)
  local row, msg, why = find("pipeline run", key, "run_by_id", "runs_by_id_prefix",
    function(name) return one("run_by_name", name) end, "run_names")
  if not row then return nil, msg, why end
  return run_of(row)
end

-- ---- tags ----

local function tag_of(row)
  row.exclusive = row.exclusive == 1
  return setmetatable(row, Tag)
end

Tag.__tostring = function(t)
  return string.format("<Tag %s (%son %d)>", t.name, t.exclusive and "exclusive, " or "",
    t.tagged_count)
end

-- The tag row of name, or an error naming it (with the nearest names).
local function find_tag(name, fname, level)
  names.check("tag", name, level + 1)
  local row = one("tag_by_name", name)
  if row then return row end
  local candidates = {}
  for i, r in ipairs(core.query("tags")) do candidates[i] = r.name end
  error(string.format("%s: tag '%s' not found%s", fname, name, names.suggest(name, candidates)),
    level + 1)
end

-- Why tag name cannot be made exclusive: it is on several versions of one
-- artifact, several runs of one pipeline, or on an artifact itself (where
-- "one of each" means nothing, as ZenML has it). nil if it can.
local function exclusive_conflict(name)
  local rows, i = core.query("tagged_with", name), 1
  while rows[i] do
    local r, members = rows[i], {}
    local j = i
    while rows[j] and rows[j].entity == r.entity and rows[j].owner == r.owner do
      members[#members + 1] = rows[j].member
      j = j + 1
    end
    if r.entity == "artifact" then
      return string.format("it is on artifact '%s' itself, and only artifact versions and "
        .. "pipeline runs take exclusive tags", r.owner)
    end
    if #members > 1 then
      local shown = {}
      for k = 1, math.min(#members, 5) do shown[k] = "'" .. members[k] .. "'" end
      return string.format("it is on %d %s of %s '%s' (%s%s); remove it from all but one first",
        #members, r.entity == "artifact_version" and "versions" or "runs",
        r.entity == "artifact_version" and "artifact" or "pipeline", r.owner,
        table.concat(shown, ", "), #members > 5 and ", ..." or "")
    end
    i = j
  end
  return nil
end

-- create_tag { name = ..., exclusive = false } -> Tag
function Client:create_tag(spec)
  if type(spec) ~= "table" then
    error("bad argument #1 to 'create_tag' (table expected, got " .. type(spec) .. ")", 2)
  end
  options(spec, { name = "string", exclusive = "boolean" }, "create_tag", 1, 2)
  if spec.name == nil then error("create_tag: missing field 'name'", 2) end
  names.check("tag", spec.name, 2)
  if one("tag_by_name", spec.name) then
    error(string.format("create_tag: tag '%s' already exists", spec.name), 2)
  end
  core.write("create_tag", spec.name, spec.exclusive and 1 or 0)
  return tag_of(one("tag_by_name", spec.name))
end

-- get_tag(name) -> Tag
function Client:get_tag(name)
  return tag_of(find_tag(name, "get_tag", 2))
end

-- list_tags { name = ..., exclusive = ... } -> { Tag, ... } by name
function Client:list_tags(filter)
  filter = options(filter, { name = "string", exclusive = "boolean" }, "list_tags", 1, 2)
  local out = {}
  for _, row in ipairs(core.query("tags")) do
    tag_of(row)
    if (filter.name == nil or row.name == filter.name)
        and (filter.exclusive == nil or row.exclusive == filter.exclusive) then
      out[#out + 1] = row
    end
  end
  return out
end

-- update_tag(name, { name = new name, exclusive = bool }) -> Tag. Making a
-- tag exclusive is refused while it is on more than one version of an
-- artifact or run of a pipeline: which one should keep it is the user's
-- call. The statement checks that too, so a concurrent tagging cannot slip
-- in between.
function Client:update_tag(name, opts)
  find_tag(name, "update_tag", 2)
  opts = options(opts, { name = "string", exclusive = "boolean" }, "update_tag", 2, 2)
  if opts.name ~= nil then
    names.check("tag", opts.name, 2)
    if opts.name ~= name and one("tag_by_name", opts.name) then
      error(string.format("update_tag: tag '%s' already exists", opts.name), 2)
    end
  end
  local exclusive = opts.exclusive
  if exclusive ~= nil then exclusive = exclusive and 1 or 0 end
  if core.write("update_tag", name, opts.name, exclusive) == 0 then
    local why = exclusive_conflict(name)
    if not why then error(string.format("update_tag: tag '%s' not found", name), 2) end
    error(string.format("update_tag: tag '%s' cannot be made exclusive: %s", name, why), 2)
  end
  return tag_of(one("tag_by_name", opts.name or name))
end

-- delete_tag(name) -> the Tag as it was: it is taken off everything that
-- had it.
function Client:delete_tag(name)
  local t = tag_of(find_tag(name, "delete_tag", 2))
  core.write("delete_tag", name)
  return t
end

-- The tag changes in opts ({ add_tags, remove_tags, tags }): the tags to
-- add, then those to remove; tags is ZenML's name for add_tags.
local function tag_changes(opts, fname, level)
  if type(opts) ~= "table" then
    error(string.format("bad argument #2 to '%s' (table expected, got %s)", fname, type(opts)),
      level + 1)
  end
  local lists = {}
  for k, v in pairs(opts) do
    if k ~= "add_tags" and k ~= "remove_tags" and k ~= "tags" then
      error(string.format("%s: unknown option '%s'", fname, tostring(k)), level + 1)
    end
    if type(v) == "string" then v = { v } end
    if type(v) ~= "table" then
      error(string.format("%s: %s must be a list of tags", fname, k), level + 1)
    end
    for _, t in ipairs(v) do names.check("tag", t, level + 1) end
    lists[k] = v
  end
  local add = {}
  for _, k in ipairs { "tags", "add_tags" } do
    for _, t in ipairs(lists[k] or {}) do add[#add + 1] = t end
  end
  return add, lists.remove_tags or {}
end

-- The tag changes in opts applied to entity id. An artifact takes no
-- exclusive tag: "one version of each artifact" says nothing about it.
local function update_tags(entity, id, opts, fname, level)
  local add, remove = tag_changes(opts, fname, level + 1)
  if entity == "artifact" then
    for _, t in ipairs(add) do
      local row = one("tag_by_name", t)
      if row and row.exclusive == 1 then
        error(string.format("%s: tag '%s' is exclusive: only artifact versions and pipeline "
          .. "runs take it", fname, t), level + 1)
      end
    end
  end
  for _, t in ipairs(add) do core.write("tag", entity, id, t) end
  for _, t in ipairs(remove) do core.write("untag", entity, id, t) end
end

-- update_artifact_version(version or id or name [, version], { add_tags, remove_tags }).
-- Inside a step, the name of one of its outputs (without a version) means
-- the version it is making: the changes apply when that is recorded, and
-- nil is returned.
function Client:update_artifact_version(key, version, opts)
  if opts == nil and type(version) == "table" then version, opts = nil, version end
  local out, ctx
  if version == nil or version == "latest" then out, ctx = M.step.own(key) end
  if out then
    local add, remove = tag_changes(opts, "update_artifact_version", 2)
    M.step.tag_own(ctx, out, add, remove)
    return nil
  end
  local av = M.is_version(key) and key or find_version(key, version, 2)
  update_tags("artifact_version", av.id, opts, "update_artifact_version", 2)
  return find_version(av.id, nil, 2)
end

-- update_artifact(name, { add_tags, remove_tags }): tags on the artifact itself.
function Client:update_artifact(name, opts)
  if type(name) ~= "string" then
    error("bad argument #1 to 'update_artifact' (string expected, got " .. type(name) .. ")", 2)
  end
  local row = one("artifact_by_name", name)
  if not row then
    local candidates = {}
    for i, r in ipairs(core.query("artifact_names")) do candidates[i] = r.name end
    error(string.format("artifact '%s' not found%s", name, names.suggest(name, candidates)), 2)
  end
  update_tags("artifact", row.id, opts, "update_artifact", 2)
  return tags_of("artifact", row.id)
end

-- update_pipeline_run(run or name or id, { add_tags, remove_tags })
function Client:update_pipeline_run(key, opts)
  local run = key
  if getmetatable(key) ~= PipelineRun then
    if type(key) ~= "string" then
      error("bad argument #1 to 'update_pipeline_run' (string expected, got " .. type(key)
        .. ")", 2)
    end
    local msg
    run, msg = M.find_run(key)
    if not run then error(msg, 2) end
  end
  update_tags("pipeline_run", run.id, opts, "update_pipeline_run", 2)
  return self:get_pipeline_run(run.id)
end

Client.__tostring = function() return "<lupine.Client " .. core.home() .. ">" end

-- ---- ArtifactVersion ----

-- av:load() -> the value; av:load { raw = true } -> values of user-defined
-- types as their stored plain form (no materializer needed).
function ArtifactVersion:load(opts)
  local deleted = rawget(self, "deleted")
  if deleted then
    error(string.format("artifact version %s (%s) was deleted (%s)",
      version_label(self.name, self.version), self.id, deleted), 2)
  end
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("bad argument #1 to 'load' (table expected, got " .. type(opts) .. ")", 2)
    end
    for k in pairs(opts) do
      if k ~= "raw" then error(string.format("load: unknown option '%s'", tostring(k)), 2) end
    end
    if opts.raw then return require("lupine.materials").raw(core.load, self.id) end
  end
  return core.load(self.id)
end

getters[ArtifactVersion].producer_step_run = function(av)
  local id = rawget(av, "producer_step_run_id")
  return id and step_run_of(one("step_run_by_id", id)) or nil
end

getters[ArtifactVersion].tags = function(av) return tags_of("artifact_version", av.id) end
getters[ArtifactVersion].run_metadata = function(av)
  return metadata_of("artifact_version", av.id)
end
getters[PipelineRun].tags = function(run) return tags_of("pipeline_run", run.id) end
getters[PipelineRun].run_metadata = function(run) return metadata_of("pipeline_run", run.id) end
getters[StepRun].run_metadata = function(sr) return metadata_of("step_run", sr.id) end

ArtifactVersion.__tostring = function(av)
  if rawget(av, "deleted") then
    return string.format("<ArtifactVersion %s v%s (deleted %s) %s>", av.name, av.version,
      av.deleted, av.id)
  end
  return string.format("<ArtifactVersion %s v%s (%s, %d bytes) %s>", av.name, av.version,
    av.data_type, av.size, av.id)
end

-- A map by name (a run's steps, a step run's outputs) in which a name it
-- does not hold raises, naming what there is: `run.steps.proces_data` is a
-- typo to point out, not a nil to trip over a line later. what(k) is the
-- message's start ("pipeline run 'r' has no step 'x'"), kind the plural.
local function named_map(map, what, kind)
  return setmetatable(map, { __index = function(t, k)
    local list = {}
    for name in pairs(t) do list[#list + 1] = name end
    table.sort(list)
    error(string.format("%s%s (its %s: %s)", what(tostring(k)), names.suggest(tostring(k), list),
      kind, #list > 0 and table.concat(list, ", ") or "none"), 2)
  end })
end
M.named_map = named_map

-- ---- PipelineRun ----

getters[PipelineRun].steps = function(run)
  local steps = {}
  for _, row in ipairs(core.query("step_runs_of_run", run.id)) do
    steps[row.name] = step_run_of(row)
  end
  return named_map(steps, function(k)
    return string.format("pipeline run '%s' has no step '%s'", run.name, k)
  end, "steps")
end

PipelineRun.__tostring = function(run)
  return string.format("<PipelineRun %s [%s] %s>", run.name, run.status, run.id)
end

-- ---- StepRun ----

-- The versions linked to a step run as kind ("input" or "output") that
-- keep(link) is true of, by name; what names the map in errors.
local function artifacts_of(step_run, kind, keep, what)
  local out = {}
  for _, link in ipairs(core.query("step_run_artifacts", step_run.id)) do
    if link.kind == kind and keep(link) then
      local row = one("version_by_id", link.artifact_version_id)
      out[link.name] = row and version_of(row) or deleted_version(link.artifact_version_id)
    end
  end
  return named_map(out, function(k)
    return string.format("step run '%s' has no %s '%s'", step_run.name, what, k)
  end, what .. "s")
end

-- A step run's outputs are its step's own; what the step saved by hand
-- (save_artifact) is apart, in manual_outputs.
local function own(link) return link.save_type == "step_output" end
local function by_hand(link) return link.save_type ~= "step_output" end
local function any() return true end

getters[StepRun].outputs = function(sr) return artifacts_of(sr, "output", own, "output") end
getters[StepRun].manual_outputs = function(sr)
  return artifacts_of(sr, "output", by_hand, "manual output")
end
getters[StepRun].inputs = function(sr) return artifacts_of(sr, "input", any, "input") end

-- The versions its lookups of a latest version found, by artifact name (a
-- cached step run carries those of the one it reused); deleted ones left out.
getters[StepRun].lookups = function(sr)
  local out = {}
  for _, row in ipairs(core.query("step_run_lookups", sr.id)) do
    local v = one("version_by_id", row.artifact_version_id)
    if v then out[row.artifact_name] = version_of(v) end
  end
  return out
end

getters[StepRun].output = function(sr)
  local only, list = nil, {}
  for name, av in pairs(sr.outputs) do only, list[#list + 1] = av, name end
  if #list == 0 then error(string.format("step run '%s' has no outputs", sr.name), 3) end
  if #list > 1 then
    table.sort(list)
    error(string.format("step run '%s' has %d outputs (%s): use .outputs[name]", sr.name,
      #list, table.concat(list, ", ")), 3)
  end
  return only
end

getters[StepRun].pipeline_run = function(sr)
  return run_of(one("run_by_id", sr.run_id))
end

StepRun.__tostring = function(sr)
  return string.format("<StepRun %s [%s] %s>", sr.name, sr.status, sr.id)
end

return M
