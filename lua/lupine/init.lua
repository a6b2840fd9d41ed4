-- SPDX-License-Identifier: MIT
-- lupine: steps and pipelines.
--
-- A pipeline's body is run once to record its graph: calling a step there
-- records a node and returns placeholders for its outputs. The graph then
-- goes to the C runtime (lupine.core), which orders the steps, runs them
-- (each through `invoke` below, which gives it its step context), stores
-- every output and records the run in the catalog.

local core = require "lupine.core"
local client_mod = require "lupine.client"
local names = require "lupine.names"
local materials = require "lupine.materials"
local shapes = require "lupine.shapes"
local resources = require "lupine.resources"
require "lupine.lineage"
require "lupine.stacks"    -- stacks and artifact stores: Client:list_stacks, ...
local query = require "lupine.query"   -- listing and filtering: Client:list_*

local lupine = {
  version = core.version,
  codec_version = core.codec_version,
  Client = client_mod.Client,
  ArtifactVersionFilter = query.ArtifactVersionFilter,
}
for k, f in pairs(require("lupine.viz").api) do lupine[k] = f end   -- HTMLString, plot, ...

-- The pipeline body being recorded, and the step context of the step
-- running now, if any (one of each per Lua state).
local building, current = nil, nil
-- What the script's top level made in this process, in order: the run of
-- each pipeline call and one-step run (its id; false while it runs, or if
-- the call raised before its run was made), and the version of each
-- save_artifact and register_artifact outside a step and a pipeline body.
-- A step's spec carries them (lua/lupine/exec.lua), for its replay.
local made = { runs = {}, saves = {} }
-- While `lupine exec` replays a script's top level (client_mod.exec.load):
-- the steps it defines, in order, and the replay (what the coordinator's
-- top level made: made.runs and made.saves as the spec has them; the index
-- of the call that made the run of the step, which ends the loading; the
-- calls and saves replayed so far).
local loading = nil
local LOADED = setmetatable({}, { __tostring = function() return "script loaded" end })

local Step, Pipeline, Placeholder, ArtifactConfig, StepContext = {}, {}, {}, {}, {}
-- (a lazy version, like a placeholder, has no name: its __index raises, so
-- the REPL must not walk into it)
local PathRef, LazyVersion, External = { __name = "lupine.PathRef" }, {},
  { __name = "lupine.ExternalArtifact" }
local store_path, run_stack
Step.__index, Pipeline.__index, ArtifactConfig.__index = Step, Pipeline, ArtifactConfig
-- named as the annotations (lua/meta) name them: the REPL's help finds them there
Step.__name, Pipeline.__name, ArtifactConfig.__name, StepContext.__name =
  "lupine.Step", "lupine.PipelineDefinition", "lupine.ArtifactConfig", "lupine.StepContext"

local function fail(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

-- Check that t has only the keys in allowed (array part allowed if array).
local function check_keys(t, allowed, what, level)
  for k in pairs(t) do
    if allowed[k] == nil and not (allowed[1] and math.type(k) == "integer") then
      local known = {}
      for name in pairs(allowed) do
        if type(name) == "string" then known[#known + 1] = name end
      end
      fail(level + 1, "%s: unknown field '%s'%s", what, tostring(k),
        names.suggest(tostring(k), known))
    end
  end
end

-- ---- artifact types and configurations ----

lupine.ArtifactType = {
  DATA = "data", MODEL = "model", DATA_ANALYSIS = "data_analysis", SCHEMA = "schema",
  STATISTICS = "statistics", SERVICE = "service", BASE = "base",
}
local known_types = {}
for _, v in pairs(lupine.ArtifactType) do known_types[v] = true end

local function check_type(t, what, level)
  if known_types[t] then return t end
  local list = {}
  for v in pairs(known_types) do list[#list + 1] = v end
  table.sort(list)
  fail(level + 1, "%s: unknown artifact type %s (one of: %s)", what,
    type(t) == "string" and ("'" .. t .. "'") or tostring(t), table.concat(list, ", "))
end

local function check_tags(tags, what, level)
  if tags == nil then return {} end
  if type(tags) == "string" then tags = { tags } end
  if type(tags) ~= "table" then fail(level + 1, "%s: tags must be a list of strings", what) end
  local out = {}
  for i, t in ipairs(tags) do out[i] = names.check("tag", t, level + 1) end
  return out
end

-- The catalog rows of a metadata table: { key, CBOR, number, text }, by key.
-- Keys follow the rules of names (lupine.names). The text copy, which
-- searches match, is kept for a UTF-8 string without NUL only: what every
-- catalog's text holds (the CBOR value keeps any string).
local function metadata_rows(md, what, level)
  if md == nil then return {} end
  if type(md) ~= "table" then fail(level + 1, "%s: metadata must be a table", what) end
  local rows = {}
  for k, v in pairs(md) do
    if type(k) ~= "string" then
      fail(level + 1, "%s: metadata keys must be strings (got %s)", what, type(k))
    end
    local problem = names.problem("metadata key", k)
    if problem then fail(level + 1, "%s: %s", what, problem) end
    local bytes, msg = core.encode(v, "metadata." .. k)
    if not bytes then fail(level + 1, "%s: %s", what, msg) end
    local text = type(v) == "string" and utf8.len(v) and not v:find("\0", 1, true) and v or nil
    rows[#rows + 1] = { k, bytes, math.type(v) and v or nil, text }
  end
  table.sort(rows, function(a, b) return a[1] < b[1] end)
  return rows
end

local config_fields = { name = true, version = true, tags = true, artifact_type = true,
  run_metadata = true }

-- An ArtifactConfig from spec's fields; errors start with what and blame
-- the caller's level + 1.
local function make_config(spec, what, level)
  level = level + 1
  local c = setmetatable({}, ArtifactConfig)
  if spec.name ~= nil then c.name = names.check("artifact", spec.name, level) end
  if spec.version ~= nil then
    if type(spec.version) ~= "string" and math.type(spec.version) ~= "integer" then
      fail(level, "%s: version must be a string or an integer (got %s)", what, type(spec.version))
    end
    c.version = names.check("version", tostring(spec.version), level)
  end
  c.tags = check_tags(spec.tags, what, level)
  c.artifact_type = check_type(spec.artifact_type or "data", what, level)
  c.run_metadata = spec.run_metadata
  c.metadata_rows = metadata_rows(spec.run_metadata, what, level)
  return c
end

-- ArtifactConfig { name = ..., version = ..., tags = ..., artifact_type = ...,
--                  run_metadata = ... }
function lupine.ArtifactConfig(spec)
  if type(spec) ~= "table" then
    fail(2, "bad argument #1 to 'ArtifactConfig' (table expected, got %s)", type(spec))
  end
  check_keys(spec, config_fields, "ArtifactConfig", 2)
  return make_config(spec, "ArtifactConfig" .. (spec.name and (" '" .. tostring(spec.name)
    .. "'") or ""), 2)
end

ArtifactConfig.__tostring = function(c)
  return string.format("<ArtifactConfig '%s'>", c.name or "output")
end

-- ---- steps ----

Placeholder.__index = function(p, k)
  fail(2, "output '%s' of step '%s' is not a value yet: inside a pipeline body, step "
    .. "outputs can only be passed to other steps (tried to read field '%s')",
    rawget(p, "output_name"), rawget(p, "step_name"), tostring(k))
end
Placeholder.__tostring = function(p)
  return string.format("<output '%s' of step '%s'>", rawget(p, "output_name"),
    rawget(p, "step_name"))
end

local function where(fn)
  local info = debug.getinfo(fn, "S")
  return info.short_src .. ":" .. info.linedefined
end

local function param_names(fn)
  local list, i = {}, 1
  while true do
    local n = debug.getlocal(fn, i)
    if not n then break end
    list[i], i = n, i + 1
  end
  return list
end

local function check_substitutions(subs, what, level)
  if subs == nil then return {} end
  if type(subs) ~= "table" then fail(level + 1, "%s: substitutions must be a table", what) end
  local out = {}
  for k, v in pairs(subs) do
    if type(k) ~= "string" or not k:find("^[%w_]+$") then
      fail(level + 1, "%s: substitution names are words of letters, digits and _ (got %s)",
        what, tostring(k))
    end
    if type(v) ~= "string" and type(v) ~= "number" then
      fail(level + 1, "%s: substitution '%s' must be a string or a number", what, k)
    end
    out[k] = tostring(v)
  end
  return out
end

-- How steps run. A step's own setting wins over its pipeline's, and one
-- call's (s:with_options) over its step's; a run's (p:with_options) wins
-- over those; lupine.overrides (the CLI's --no-cache and --jobs) over
-- everything.
local settings = {
  enable_cache = function(v) return type(v) == "boolean", "a boolean" end,
  cache_key = function(v) return type(v) == "string", "a string" end,
  timeout = function(v) return type(v) == "number" and v > 0, "a number of seconds above 0" end,
  retries = function(v) return math.type(v) == "integer" and v >= 0, "an integer from 0" end,
  on_failure = function(v) return v == "continue" or v == "stop", '"continue" or "stop"' end,
  jobs = function(v) return math.type(v) == "integer" and v >= 1, "an integer from 1" end,
  seed = function(v) return math.type(v) == "integer", "an integer" end,
  -- where the step runs: the run's stack's orchestrator, or "local" (the
  -- forked workers of the run's own process, for a small step)
  orchestrator = function(v)
    return v == "local", '"local" (or left out: the orchestrator of the run\'s stack)'
  end,
  -- { cpus, mem, time, gpus, partition } (lupine.resources): the third
  -- result is the whole message, naming the step and the key
  resources = function(v, what)
    local ok, why = resources.check(v, what)
    return ok ~= nil, nil, why
  end,
}
local step_settings = { enable_cache = true, cache_key = true, timeout = true, retries = true,
  seed = true, orchestrator = true, resources = true }
local run_settings = { enable_cache = true, timeout = true, retries = true, on_failure = true,
  jobs = true, seed = true }

-- Copy the settings named in allowed from spec into out, checking them.
local function take_settings(spec, allowed, out, what, level)
  for k in pairs(allowed) do
    local v = spec[k]
    if v ~= nil then
      local ok, expected, message = settings[k](v, what)
      if message then error(message, level + 1) end
      if not ok then
        fail(level + 1, "%s: %s must be %s (got %s)", what, k, expected, tostring(v))
      end
      out[k] = v
    end
  end
  return out
end

lupine.overrides = {}

local step_fields = { name = true, outputs = true, substitutions = true, fn = true, true,
  enable_cache = true, cache_key = true, timeout = true, retries = true, seed = true,
  orchestrator = true, resources = true }

-- step { name = ..., outputs = { ... }, substitutions = { ... }, fn }
-- | step("name", fn)
function lupine.step(spec, fn)
  if type(spec) == "string" then spec = { name = spec, fn } end
  if type(spec) ~= "table" then
    fail(2, "bad argument #1 to 'step' (table or string expected, got %s)", type(spec))
  end
  fn = fn or spec[1] or spec.fn
  if type(fn) ~= "function" then fail(2, "bad argument #1 to 'step' (the step's function is missing)") end
  local name = names.check("step", spec.name, 2)
  local what = "step '" .. name .. "'"
  check_keys(spec, step_fields, what, 2)
  local s = setmetatable({ name = name, fn = fn, where = where(fn), params = param_names(fn),
    outputs = {}, substitutions = check_substitutions(spec.substitutions, what, 2),
    settings = take_settings(spec, step_settings, {}, what, 2) }, Step)
  if loading then loading[#loading + 1] = s end
  local outputs = spec.outputs
  s.default_output = outputs == nil
  if outputs == nil then outputs = { lupine.ArtifactConfig {} } end
  if type(outputs) ~= "table" or (#outputs == 0 and next(outputs) ~= nil) then
    fail(2, "%s: outputs must be a list of names or ArtifactConfigs", what)
  end
  local seen = {}
  for i, o in ipairs(outputs) do
    if type(o) == "string" then o = lupine.ArtifactConfig { name = o } end
    if getmetatable(o) ~= ArtifactConfig then
      fail(2, "%s: output %d must be a name or an ArtifactConfig (got %s)", what, i, type(o))
    end
    local out_name = o.name or "output"
    if seen[out_name] then fail(2, "%s: output '%s' is declared twice", what, out_name) end
    seen[out_name], s.outputs[i] = true, { name = out_name, config = o }
  end
  return s
end

Step.__tostring = function(s)
  return string.format("<step '%s' (%s)>", s.name, s.where)
end

-- ---- what a step takes ----
--
-- A step's argument is a parameter (a value, recorded with the step run)
-- or holds inputs (artifact versions the step reads, recorded as its
-- inputs and hashed into its cache key by content): outputs of other steps
-- (placeholders), stored versions, lookups of an artifact's latest version
-- made in the body, and external files, folders or values. Inputs may be
-- the argument or sit anywhere in a table passed as one (fan-in); each is
-- named by its path from the parameter (models[1], cfg.model), and what
-- is left of the table is the parameter.

-- A lookup of an artifact's latest version in a pipeline body
-- (client:get_artifact_version(name)): it becomes this run's version when
-- a step of the run makes that artifact, else the latest version when the
-- step that takes it starts.
LazyVersion.__index = function(lv, k)
  fail(2, "the latest version of artifact '%s' is looked up when the step that takes it "
    .. "starts: inside a pipeline body it can only be passed to steps (tried to read field "
    .. "'%s'; give a version to look it up now)", rawget(lv, "name"), tostring(k))
end
LazyVersion.__tostring = function(lv)
  return string.format("<latest version of '%s', looked up when its step starts>",
    rawget(lv, "name"))
end
client_mod.lazy_version = function(name)
  if building then return setmetatable({ name = name }, LazyVersion) end
end

-- lupine.ExternalArtifact { value = v }: a value given to a step in a
-- pipeline body and stored as an artifact version before the steps run
-- (ZenML's ExternalArtifact(value=...)).
function lupine.ExternalArtifact(spec)
  if type(spec) ~= "table" or getmetatable(spec) ~= nil then
    fail(2, "bad argument #1 to 'ExternalArtifact' (table expected, got %s)", type(spec))
  end
  check_keys(spec, { value = true }, "ExternalArtifact", 2)
  if spec.value == nil then fail(2, "ExternalArtifact: value is missing") end
  local plain, data_type = materials.prepare(spec.value)
  local ok, msg = core.encode(plain)
  if not ok then fail(2, "ExternalArtifact: %s", msg) end
  return setmetatable({ value = plain, data_type = data_type }, External)
end
External.__tostring = function(e)
  return string.format("<ExternalArtifact %s>", e.data_type or type(e.value))
end

local empty = {}

-- The metatables of the values that are inputs.
local input_kinds = { [Placeholder] = true, [LazyVersion] = true, [PathRef] = true,
  [External] = true, [client_mod.classes.ArtifactVersion] = true }

-- The record of input v (a value of one of input_kinds) named name: what
-- it reads, and keys, where it sits inside an argument.
local function input_of(v, name, keys)
  local mt = getmetatable(v)
  if mt == Placeholder then
    return { name = name, keys = keys, node = rawget(v, "node"), output = rawget(v, "output") }
  elseif mt == LazyVersion then
    return { name = name, keys = keys, lookup = rawget(v, "name") }
  elseif mt == PathRef or mt == External then
    return { name = name, keys = keys, external = v }
  end
  return { name = name, keys = keys, version = v.id }
end

-- How a key reads in an input's name: [1], .a, ["a b"].
local function key_text(k)
  if type(k) == "string" then
    if k:find("^[%a_][%w_]*$") then return "." .. k end
    return "[" .. string.format("%q", k):gsub("\\\n", "\\n") .. "]"
  end
  return "[" .. tostring(k) .. "]"
end

-- Take the inputs inside argument v (a table) of step s, parameter param,
-- into inputs; return what is left: v itself if it held none, else a copy
-- without them (nil where nothing else was in it). Tables with metatables
-- are values of their own (materializers): inputs must not hide in them.
local function take_inputs(s, ctx, param, v, inputs, level)
  local keys, walking = {}, {}
  local function path_name(path)
    local name = param
    for _, key in ipairs(path) do name = name .. key_text(key) end
    return name
  end
  local function take(x, k)   -- input x, at key k of the table walked
    local path = table.move(keys, 1, #keys, 1, {})
    path[#path + 1] = k
    local name = path_name(path)
    if getmetatable(x) == Placeholder and rawget(x, "ctx") ~= ctx then
      error(string.format("step '%s': parameter '%s': %s is an output of another pipeline's "
        .. "body", s.name, param, name), 0)
    end
    inputs[#inputs + 1] = input_of(x, name, path)
  end
  local function walk(t)
    local copy
    walking[t] = true
    for k, x in next, t do
      local rest = x
      if type(k) == "table" and input_kinds[getmetatable(k)] then
        error(string.format("step '%s': parameter '%s': %s has %s as a key: a step's inputs "
          .. "can be values in a table, not keys", s.name, param, path_name(keys),
          tostring(k)), 0)
      end
      if type(x) == "table" then
        if input_kinds[getmetatable(x)] then
          take(x, k)
          rest = nil
        elseif not walking[x] then
          keys[#keys + 1] = k
          rest = walk(x)
          keys[#keys] = nil
        end
      end
      if rest ~= x then
        if copy == nil then
          copy = {}
          for kk, xx in next, t do copy[kk] = xx end
        end
        copy[k] = rest
      end
    end
    walking[t] = nil
    if copy == nil then return t end
    if getmetatable(t) ~= nil then
      error(string.format("step '%s': parameter '%s': %s holds step inputs but has a "
        .. "metatable: pass them in a plain table", s.name, param, path_name(keys)), 0)
    end
    if next(copy) == nil then return nil end
    return copy
  end
  local ok, rest = pcall(walk, v)
  if not ok then fail(level, "%s", rest) end
  return rest
end

-- The argument records of one call of step s (see runtime/executor.c).
local function bind_args(s, ctx, level, ...)
  local n = select("#", ...)
  if n > #s.params then
    fail(level, "step '%s' takes %d input%s (%s) but was given %d", s.name, #s.params,
      #s.params == 1 and "" or "s", table.concat(s.params, ", "), n)
  end
  if n < #s.params then   -- an explicit nil counts: select('#') sees it
    local missing = table.move(s.params, n + 1, #s.params, 1, {})
    fail(level, "step '%s' takes %d input%s (%s) but was given %d: %s %s %s missing (pass "
      .. "nil for an input meant to be empty)", s.name, #s.params, #s.params == 1 and "" or "s",
      table.concat(s.params, ", "), n, #missing == 1 and "input" or "inputs",
      "'" .. table.concat(missing, "', '") .. "'", #missing == 1 and "is" or "are")
  end
  local args = {}
  for i, param in ipairs(s.params) do
    local v = (select(i, ...))
    local t, inputs = type(v), nil
    local mt = t == "table" and getmetatable(v)
    if mt == Placeholder then   -- input_of's record, made here: the common case
      if rawget(v, "ctx") ~= ctx then
        fail(level, "step '%s': input '%s' is an output of another pipeline's body", s.name,
          param)
      end
      args[i] = { name = param, node = rawget(v, "node"), output = rawget(v, "output") }
    elseif input_kinds[mt] then   -- the argument is an input
      args[i] = input_of(v, param, nil)
      ctx.linking = true
    else
      if t == "table" then
        inputs = {}
        v = take_inputs(s, ctx, param, v, inputs, level + 1)
        t = type(v)
        if #inputs == 0 then inputs = nil else ctx.linking = true end
      end
      -- nil, numbers, strings and booleans always encode
      if t ~= "nil" and t ~= "number" and t ~= "string" and t ~= "boolean" then
        v = materials.prepare(v)
        local ok, msg = core.encode(v)
        if not ok then fail(level, "step '%s': parameter '%s': %s", s.name, param, msg) end
      end
      args[i] = { param = param, value = v }
      args[i].inputs = inputs   -- nil mostly: then no field
    end
  end
  return args
end

-- Call f(node, input) for each input of node: the arguments that are one
-- (named by `name`, where a parameter is by `param`), and those inside
-- arguments.
local function each_input(node, f)
  for _, arg in ipairs(node.args) do
    if arg.name then
      f(node, arg)
    elseif arg.inputs then
      for _, input in ipairs(arg.inputs) do f(node, input) end
    end
  end
end

-- The node of a call of s in the body being recorded (an error at level
-- for an id already taken). Its invocation name is the id given with
-- with_options, else the step's name, with _2, _3, ... from its second
-- call on (past the names ids took).
local function add_node(s, ctx, args, level)
  local inv = s.id
  if inv then
    if ctx.taken[inv] then
      fail(level, "step '%s': id '%s' is already used in pipeline '%s'", s.name, inv,
        ctx.pipeline)
    end
  else
    local count = ctx.uses[s.name] or 0
    repeat
      count = count + 1
      inv = count == 1 and s.name or (s.name .. "_" .. count)
    until not ctx.taken[inv]
    ctx.uses[s.name] = count
  end
  ctx.taken[inv] = true
  local outputs = {}
  for k, o in ipairs(s.outputs) do
    local c = o.config
    outputs[k] = { name = o.name, config = c, type = c.artifact_type, version = c.version,
      template = c.name or (ctx.pipeline .. "::" .. inv .. "::" .. o.name) }
  end
  if s.run_after then ctx.linking = true end
  local node = { name = inv, step = s.name, where = s.where, fn = s.fn, args = args,
    after = s.run_after, outputs = outputs, default_output = s.default_output,
    substitutions = s.substitutions, settings = s.settings }
  ctx.nodes[#ctx.nodes + 1] = node
  return node
end

-- linking: whether a step was given something resolved once the whole
-- graph is known (a lookup, an external input, an input inside a table or
-- an ordering): see link_graph.
-- The build of a pipeline call or one-step run of the top level: call is
-- its place among made.runs.
local function new_build(pipeline)
  local call = #made.runs + 1
  made.runs[call] = false
  return { pipeline = pipeline, nodes = {}, uses = {}, taken = {}, substitutions = {},
    linking = false, call = call }
end

-- ---- running ----

local RunError = {
  __name = "lupine.RunError",
  __tostring = function(e) return e.message end,
}

local function merged(...)
  local out = {}
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...))) do out[k] = v end
  end
  return out
end

-- The substitutions for the outputs of node: built-ins, then pipeline,
-- step and run substitutions (later ones win).
local function output_subs(build, node, run_name)
  return merged(build.builtin, { step_name = node.name, run_name = run_name },
    build.substitutions, node.substitutions, build.run_substitutions)
end

-- The artifact name of output out of node, or an error at level.
local function artifact_name(build, node, out, run_name, level)
  local name, missing = out.template, nil
  if name:find("{", 1, true) then
    name, missing = names.render(name, output_subs(build, node, run_name))
  end
  if not name then
    fail(level + 1, "step '%s': output '%s': unknown placeholder '{%s}' in name template '%s'",
      node.name, out.name, missing, out.template)
  end
  if name == "" then
    fail(level + 1, "step '%s': output '%s': name template '%s' gives an empty name",
      node.name, out.name, out.template)
  end
  local ok, msg = pcall(names.check, "artifact", name)
  if not ok then
    fail(level + 1, "step '%s': output '%s': %s", node.name, out.name, msg)
  end
  return name
end

-- ---- files and folders ----

-- lupine.file(path) / lupine.dir(path): what a step returns to store a file
-- or a folder by value, or what a pipeline body gives a step as an
-- external input. Loading gives the path of a read-only copy.
PathRef.__index = PathRef
PathRef.__tostring = function(p) return string.format("<lupine.%s %s>", p.kind, p.path) end

local function path_ref(kind, fname)
  return function(path)
    if type(path) ~= "string" or path == "" then
      fail(2, "bad argument #1 to '%s' (a path expected, got %s)", fname, tostring(path))
    end
    return setmetatable({ kind = kind, path = path }, PathRef)
  end
end
lupine.file = path_ref("file", "file")
lupine.dir = path_ref("dir", "dir")

-- Store what ref names as one object (in the step's process, for an
-- output): returns the object ({ hash, size, stored_size }) and its kind;
-- errors start with what (the output or input it is).
store_path = function(ref, what)
  local hash, size, stored, kind = core.store_path(ref.path)
  if not hash then error(string.format("%s: %s", what, size), 0) end
  if kind ~= ref.kind then
    error(string.format("%s: lupine.%s('%s') is a %s: use lupine.%s", what, ref.kind,
      ref.path, kind == "dir" and "folder" or "file", kind), 0)
  end
  return { hash = hash, size = size, stored_size = stored }, kind
end

-- Store the external inputs given in the body (lupine.file, lupine.dir,
-- ExternalArtifact) as versions in the run's store before any step runs:
-- the steps then read stored versions, as any input. Each is a version of
-- the artifact external::<pipeline>::<invocation>::<input>; content stored
-- before under that name is that version again.
local function store_externals(build, list, stack, level)
  if #list == 0 then return end
  core.use_stack(stack)
  local ok, msg = pcall(function()
    local objects = {}   -- a file given to several steps is read once
    for _, e in ipairs(list) do
      local ext, what = e.input.external,
        string.format("step '%s': input '%s'", e.node.name, e.input.name)
      local name = "external::" .. build.pipeline .. "::" .. e.node.name .. "::" .. e.input.name
      local named, err = pcall(names.check, "artifact", name)
      if not named then error(what .. ": " .. err, 0) end
      local cfg = { artifact = name, type = "data", save_type = "external", reuse = true }
      local id
      if getmetatable(ext) == PathRef then
        local key = ext.kind .. ":" .. ext.path
        objects[key] = objects[key] or store_path(ext, what)
        id, err = core.record_object(objects[key], ext.kind, cfg)
      else
        id, err = core.save(ext.value, cfg, { data_type = ext.data_type,
          visualizations = require("lupine.viz").compute(ext.value) })
      end
      if not id then error(what .. ": " .. err, 0) end
      e.input.version, e.input.external = id, nil
    end
  end)
  core.use_stack()
  if not ok then fail(level + 1, "%s", msg) end
end

-- Resolve what needs the whole graph: a lookup of an artifact that a step
-- of this run makes reads that step's output (the last such step but the
-- one looking it up); `after` names become the nodes they name. Returns
-- the external inputs ({ node, input }) to store.
local function link_graph(build, level)
  local producers, invocations, externals = nil, nil, {}
  local i   -- the node whose inputs are visited
  local function visit(node, input)
    if input.external then
      externals[#externals + 1] = { node = node, input = input }
    elseif input.lookup then
      if not producers then
        producers = {}
        for j, other in ipairs(build.nodes) do
          for k, out in ipairs(other.outputs) do
            local list = producers[out.artifact] or {}
            list[#list + 1] = { node = j, output = k }
            producers[out.artifact] = list
          end
        end
      end
      local list = producers[input.lookup] or empty
      for p = #list, 1, -1 do
        if list[p].node ~= i then
          input.node, input.output, input.lookup = list[p].node, list[p].output, nil
          return
        end
      end
      node.lookups = true   -- looked up when the step starts
    end
  end
  for n, node in ipairs(build.nodes) do
    i = n
    each_input(node, visit)
    if node.after then   -- outputs and invocation names, to node numbers
      local after = {}
      for _, ref in ipairs(node.after) do
        local j = type(ref) ~= "string" and rawget(ref, "node")
        if not j then
          if not invocations then
            invocations = {}
            for k, other in ipairs(build.nodes) do invocations[other.name] = k end
          end
          j = invocations[ref]
        end
        if not j then
          local steps = {}
          for k, other in ipairs(build.nodes) do steps[k] = other.name end
          fail(level + 1, "step '%s': after: pipeline '%s' has no step '%s' (its steps: %s)",
            node.name, build.pipeline, ref, table.concat(steps, ", "))
        end
        after[#after + 1] = j
      end
      node.after = after
    end
  end
  return externals
end

-- The tags of the version of output out: its configuration's, then those
-- the step added, less those it removed (ctx.output_tags[out.name]).
local function output_tags(ctx, out)
  local change = ctx.output_tags[out.name]
  if not change then return out.config.tags end
  local tags, seen = {}, {}
  for _, list in ipairs { out.config.tags, change } do
    for _, t in ipairs(list) do
      if not change.removed[t] and not seen[t] then tags[#tags + 1], seen[t] = t, true end
    end
  end
  return tags
end

-- spec.invoke: run node i's function with its context, its random numbers
-- from seed; return the outputs' extras (resolved name, tags, metadata
-- rows; and, in extras.lookups, the versions its lookups of a latest
-- found) and its values (none if a step with the default output returned
-- none: then nothing is stored).
local function invoker(build)
  return function(i, step_run_id, run_id, run_name, seed, ...)
    local node = build.nodes[i]
    local ctx = setmetatable({ step_name = node.name, pipeline_name = build.pipeline,
      step_run_id = step_run_id, run_id = run_id, run_name = run_name, node = node,
      build = build, output_tags = {}, output_metadata = {}, saved = {}, lookups = {} },
      StepContext)
    local previous = current
    current = ctx
    local restore <close> = setmetatable({}, { __close = function() current = previous end })
    math.randomseed(seed)
    local results = table.pack(node.fn(...))
    local extras = { lookups = next(ctx.lookups) and ctx.lookups or nil }
    if results.n == 0 and node.default_output then return extras end
    for k, out in ipairs(node.outputs) do
      local data_type, stored
      if getmetatable(results[k]) == PathRef then
        stored, data_type = store_path(results[k], "output '" .. out.name .. "'")
        results[k] = nil
      else
        results[k], data_type = materials.prepare(results[k])
        data_type = data_type or shapes.data_type(results[k])
      end
      out.artifact = artifact_name(build, node, out, run_name, 2)
      local md = merged(out.config.run_metadata or {}, ctx.output_metadata[out.name] or {})
      extras[k] = { artifact = out.artifact, tags = output_tags(ctx, out), data_type = data_type,
        stored = stored, metadata = metadata_rows(md, "step '" .. node.name .. "'", 2) }
      extras[k].visualizations = require("lupine.viz").compute(results[k])
    end
    return extras, table.unpack(results, 1, results.n)
  end
end

-- Why a step was not a cache hit: what changed in its cache key since the
-- latest earlier run of the same step (prev and cur: the parts, as CBOR).
local function explain(prev, cur)
  if prev == nil then return "it never ran before" end
  prev, cur = core.decode(prev), core.decode(cur)
  local why = {}
  local function compare(kind, a, b)
    local keys = {}
    for k in pairs(a) do keys[#keys + 1] = k end
    for k in pairs(b) do if a[k] == nil then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do
      if a[k] == nil then why[#why + 1] = string.format("%s '%s' is new", kind, k)
      elseif b[k] == nil then why[#why + 1] = string.format("%s '%s' was removed", kind, k)
      elseif a[k] ~= b[k] then why[#why + 1] = string.format("%s '%s' changed", kind, k) end
    end
  end
  if prev.codec ~= cur.codec then why[#why + 1] = "the codec version changed" end
  if prev.code ~= cur.code then why[#why + 1] = "its code changed" end
  compare("parameter", prev.params, cur.params)
  compare("input", prev.inputs, cur.inputs)
  if prev.outputs ~= cur.outputs then why[#why + 1] = "its output configuration changed" end
  if prev.user ~= cur.user then why[#why + 1] = "its cache_key changed" end
  if prev.seed ~= cur.seed then why[#why + 1] = "its seed changed" end
  if #why == 0 then return "no run of it with the same cache key completed" end
  return table.concat(why, "; ")
end

-- The run's stack (options.stack, or the active one) and its orchestrator.
run_stack = function(name)
  local client = lupine.Client()
  local stack = name and client:get_stack(name) or client.active_stack
  return stack, client:get_orchestrator(stack.orchestrator)
end

-- Hand a recorded graph to the runtime; return the PipelineRun. Errors
-- blame level as fail() counts it from here: 2, the caller of the function
-- that called execute (which must not call it as a tail call: that would
-- take its own level away).
local function execute(build, options, level)
  local start = core.now()   -- "YYYY-MM-DDTHH:MM:SS.ffffffZ", UTC
  build.builtin = { date = start:sub(1, 4) .. start:sub(6, 7) .. start:sub(9, 10),
    time = start:sub(12, 13) .. start:sub(15, 16) .. start:sub(18, 19),
    pipeline_name = build.pipeline }
  build.run_substitutions = options.substitutions or {}
  local run_name
  if options.run_name then
    local subs = merged(build.builtin, build.substitutions, build.run_substitutions)
    local missing
    run_name, missing = names.render(options.run_name, subs)
    if not run_name then
      fail(level + 1, "pipeline '%s': unknown placeholder '{%s}' in run name template '%s'",
        build.pipeline, missing, options.run_name)
    end
    names.check("run", run_name, level + 1)
  end
  -- Every output name must resolve before anything runs.
  for _, node in ipairs(build.nodes) do
    for _, out in ipairs(node.outputs) do
      out.artifact = artifact_name(build, node, out, run_name or "run", level + 1)
    end
  end
  local run_opts, pipeline_opts = options.run or {}, build.defaults or {}
  local function setting(k, step_value, default)
    local v = lupine.overrides[k]
    if v == nil then v = run_opts[k] end
    if v == nil then v = step_value end
    if v == nil then v = pipeline_opts[k] end
    if v == nil then return default end
    return v
  end
  local stack, orchestrator = run_stack(options.stack)
  local code_hashes = {}   -- per function: a step called 1000 times is hashed once
  local step_subs = {}     -- per step's substitutions, merged once too
  for _, node in ipairs(build.nodes) do
    -- the output configuration in the cache key: names (as templates, with
    -- the user's substitutions, but not {date} and {time}), types, custom
    -- versions and tags
    local subs = step_subs[node.substitutions]
    if not subs then
      subs = merged(build.substitutions, node.substitutions, build.run_substitutions)
      step_subs[node.substitutions] = subs
    end
    local config = { subs }
    for k, o in ipairs(node.outputs) do
      config[k + 1] = { o.name, o.template, o.type, o.version or false, o.config.tags }
    end
    node.outputs_hash = core.hash(assert(core.encode(config)))
    -- now: what it reaches may have changed since the step was defined
    node.code_hash = code_hashes[node.fn] or core.code_hash(node.fn)
    code_hashes[node.fn] = node.code_hash
    local st = node.settings
    node.enable_cache = setting("enable_cache", st.enable_cache, true)
    node.cache_key = st.cache_key
    node.timeout = setting("timeout", st.timeout, nil)
    node.retries = setting("retries", st.retries, 0)
    node.on_failure = setting("on_failure", nil, "continue")
    node.seed = setting("seed", st.seed, nil)
    node.resources = st.resources
    node.orchestrator = st.orchestrator or orchestrator.name
  end
  for k, v in pairs(lupine.overrides) do
    if not run_settings[k] then fail(level + 1, "lupine.overrides: unknown setting '%s'", tostring(k)) end
    local ok, expected = settings[k](v)
    if not ok then fail(level + 1, "lupine.overrides: %s must be %s", k, expected) end
  end
  if build.linking then   -- a lookup, an external input or an ordering was given
    store_externals(build, link_graph(build, level + 1), options.stack, level + 1)
  end
  -- what core.run raises (the catalog failed, a run name is taken) is the
  -- caller's problem: at their line
  local fresh = os.getenv("LUPINE_EXEC")   -- each step in a process of its own
  if fresh == "" then fresh = nil end
  -- on a Slurm orchestrator: each step a job, the workers waiting for them
  -- (as many as the runtime allows at once, unless the stack says); what
  -- it refuses, such as a --resume run not found, at the caller's line
  local started, runner = pcall(function()
    return orchestrator.flavor == "slurm" and require("lupine.slurm").runner(build, orchestrator)
  end)
  if not started then fail(level + 1, "%s", runner) end
  local fresh_step, fresh_done
  if fresh and not runner then fresh_step, fresh_done = require("lupine.exec").fresh(build, fresh) end
  local ok, id, _, status, errors = pcall(core.run, { pipeline = build.pipeline,
    run_name = run_name, start = start, tags = options.tags, nodes = build.nodes,
    invoke = invoker(build), explain = explain, stack = options.stack,
    jobs = setting("jobs", nil, stack.jobs or (runner and math.maxinteger)),
    fresh = runner and runner.step or fresh_step, cached = runner and runner.cached })
  if runner then runner.finish(ok and id) end
  if fresh_done then fresh_done() end
  if not ok then error(id, type(id) == "string" and level + 1 or 0) end
  made.runs[build.call] = id
  local run = lupine.Client():get_pipeline_run(id)
  if status ~= "completed" and options.raise_on_failure ~= false then
    error(setmetatable({ run = run, message = status == "stopped"
        and string.format("pipeline run '%s' was stopped", run.name)
        or string.format("pipeline run '%s' failed:\n%s", run.name, errors) },
      RunError), level)
  end
  return run
end

-- In `lupine exec`'s replay of the top level, a pipeline call or one-step
-- run (of name, with options) gives the run the coordinator's call at that
-- place made, as that call gave it (raising if it raised); the call that
-- made the run of the step to run ends the replay. Nothing runs.
local function replayed_run(name, options, level)
  local call = #loading.runs_seen + 1
  loading.runs_seen[call] = true
  if call >= loading.call then
    loading.loaded = true
    error(LOADED, 0)
  end
  local id = loading.runs[call]
  if not id then
    fail(level + 1, "'%s': this call made no run when the coordinator ran the script (it "
      .. "raised an error there)", name)
  end
  local run = lupine.Client():get_pipeline_run(id)
  if run.status ~= "completed" and options.raise_on_failure ~= false then
    error(setmetatable({ run = run, message = string.format("pipeline run '%s' %s", run.name,
      run.status == "stopped" and "was stopped" or "failed") }, RunError), level + 1)
  end
  return run
end

-- In that replay, a save_artifact or register_artifact (what, in messages)
-- outside a step: the version the coordinator's call at that place made.
local function replayed_save(what, level)
  local k = #loading.saves_seen + 1
  loading.saves_seen[k] = true
  local id = loading.saves[k]
  if not id then
    fail(level + 1, "%s: this call made no version when the coordinator ran the script", what)
  end
  return client_mod.get_version(id, nil, level + 1)
end

function Step:__call(...)
  local build = building
  if build then
    if self.run_after then
      for _, ref in ipairs(self.run_after) do   -- placeholders of this body
        if type(ref) ~= "string" and rawget(ref, "ctx") ~= build then
          fail(2, "step '%s': after: %s is an output of another pipeline's body", self.name,
            tostring(ref))
        end
      end
    end
    local node = add_node(self, build, bind_args(self, build, 3, ...), 3)
    local placeholders = {}
    for k, o in ipairs(self.outputs) do
      placeholders[k] = setmetatable({ ctx = build, node = #build.nodes, output = k,
        output_name = o.name, step_name = node.name }, Placeholder)
    end
    return table.unpack(placeholders)
  end
  if self.run_after then
    fail(2, "step '%s': after(...) orders steps inside a pipeline body, but it was called "
      .. "outside one", self.name)
  end
  -- Outside a pipeline: a one-step run, returning the values of the
  -- step's outputs (none if it stored none).
  local outputs
  if loading then
    outputs = select(2, next(replayed_run(self.name, {}, 2).steps)).outputs
  else
    build = new_build(self.name)
    local node = add_node(self, build, bind_args(self, build, 3, ...), 3)
    outputs = execute(build, {}, 2).steps[node.name].outputs
  end
  if next(outputs) == nil then return end
  local values = {}
  for k, o in ipairs(self.outputs) do values[k] = outputs[o.name]:load() end
  return table.unpack(values, 1, #self.outputs)
end

-- Raise message (with '%s' for k), suggesting the nearest of the keys of the
-- tables given.
local function unknown_option(level, message, k, ...)
  local known = {}
  for i = 1, select("#", ...) do
    for name in pairs((select(i, ...))) do known[#known + 1] = name end
  end
  table.sort(known)
  fail(level + 1, message .. "%s", tostring(k), names.suggest(tostring(k), known))
end

-- What with_options takes for a step besides its settings: each checks its
-- value and sets it on the copy (what names the step in errors).
local call_options = {
  id = function(copy, v, what, level)
    if type(v) ~= "string" then fail(level + 1, "%s: id must be a string (got %s)", what, type(v)) end
    copy.id = names.check("step", v, level + 1)
  end,
  substitutions = function(copy, v, what, level)
    copy.substitutions = merged(copy.substitutions, check_substitutions(v, what, level + 1))
  end,
}

-- A copy of the step with options for its calls, as ZenML's
-- step.with_options: { id = invocation name, substitutions = ..., and the
-- step settings }. An id names one call: a second call with it is an error.
function Step:with_options(options)
  if type(options) ~= "table" then
    fail(2, "bad argument #1 to 'with_options' (table expected, got %s)", type(options))
  end
  local what = "step '" .. self.name .. "'"
  for k in pairs(options) do
    if not call_options[k] and not step_settings[k] then
      unknown_option(2, what .. ": unknown option '%s' in with_options", k, call_options,
        step_settings)
    end
  end
  local copy = setmetatable(merged(self), Step)
  copy.settings = take_settings(options, step_settings, merged(self.settings), what, 2)
  -- resources given for a call add to the step's, key by key
  if options.resources and self.settings.resources then
    copy.settings.resources = merged(self.settings.resources, options.resources)
  end
  for k, set in pairs(call_options) do
    if options[k] ~= nil then set(copy, options[k], what, 2) end
  end
  return copy
end

-- s:after(...): step s, to be called in a pipeline body, that runs only
-- once the steps given have completed, as ZenML's after=: each is an
-- output of a step called before, or an invocation name ("train",
-- "train_2": also of a step called later in the body), or a list of them.
function Step:after(...)
  local refs = {}
  for _, ref in ipairs(self.run_after or {}) do refs[#refs + 1] = ref end
  for i = 1, select("#", ...) do
    local given = (select(i, ...))
    local list = (type(given) == "table" and getmetatable(given) == nil) and given or { given }
    for j = 1, math.max(#list, 1) do
      local ref = list[j]
      if getmetatable(ref) ~= Placeholder and type(ref) ~= "string" then
        fail(2, "step '%s': after: each step to wait for is given by one of its outputs or its "
          .. "invocation name (got %s)", self.name, type(ref))
      end
      refs[#refs + 1] = ref
    end
  end
  local copy = {}
  for k, v in pairs(self) do copy[k] = v end
  copy.run_after = refs
  return setmetatable(copy, Step)
end

-- ---- pipelines ----

local pipeline_fields = { name = true, substitutions = true, tags = true, fn = true, true,
  enable_cache = true, timeout = true, retries = true, on_failure = true, jobs = true,
  seed = true }

-- Each pipeline defined, in order, and whether it (or a copy with_options
-- made) was ever called: `lupine run` warns of one its script defines and
-- never calls. { name, where, source (the chunk's), called }
local definitions, definition_of = {}, setmetatable({}, { __mode = "k" })
client_mod.defined_pipelines = definitions

-- pipeline { name = ..., substitutions = { ... }, tags = { ... }, fn }
function lupine.pipeline(spec, fn)
  if type(spec) == "string" then spec = { name = spec, fn } end
  if type(spec) ~= "table" then
    fail(2, "bad argument #1 to 'pipeline' (table or string expected, got %s)", type(spec))
  end
  fn = fn or spec[1] or spec.fn
  if type(fn) ~= "function" then
    fail(2, "bad argument #1 to 'pipeline' (the pipeline's function is missing)")
  end
  local name = names.check("pipeline", spec.name, 2)
  local what = "pipeline '" .. name .. "'"
  check_keys(spec, pipeline_fields, what, 2)
  local p = setmetatable({ name = name, fn = fn, where = where(fn),
    substitutions = check_substitutions(spec.substitutions, what, 2),
    defaults = take_settings(spec, run_settings, {}, what, 2),
    options = { tags = check_tags(spec.tags, what, 2) } }, Pipeline)
  local definition = { name = name, where = p.where, source = debug.getinfo(fn, "S").source,
    called = false }
  definitions[#definitions + 1] = definition
  definition_of[p] = definition
  return p
end

local run_options = { run_name = "string", raise_on_failure = "boolean", stack = "string",
  substitutions = "table", tags = "table", enable_cache = true, timeout = true,
  retries = true, on_failure = true, jobs = true, seed = true }

-- A copy of the pipeline with options set for its runs.
function Pipeline:with_options(options)
  if type(options) ~= "table" then
    fail(2, "bad argument #1 to 'with_options' (table expected, got %s)", type(options))
  end
  local what = "pipeline '" .. self.name .. "'"
  local opts = merged(self.options)
  for k, v in pairs(options) do
    if run_options[k] == nil then unknown_option(2, what .. ": unknown option '%s'", k, run_options) end
    if run_options[k] ~= true and type(v) ~= run_options[k] then
      fail(2, "%s: option '%s' must be a %s (got %s)", what, k, run_options[k], type(v))
    end
    opts[k] = v
  end
  opts.run = take_settings(options, run_settings, merged(self.options.run or {}), what, 2)
  if options.substitutions then
    opts.substitutions = check_substitutions(options.substitutions, what, 2)
  end
  if options.tags then opts.tags = check_tags(options.tags, what, 2) end
  if options.run_name then names.check("run", options.run_name, 2) end
  local copy = setmetatable({ name = self.name, fn = self.fn, where = self.where,
    substitutions = self.substitutions, defaults = self.defaults, options = opts }, Pipeline)
  definition_of[copy] = definition_of[self]
  return copy
end

function Pipeline:__call(...)
  if building then
    fail(2, "pipeline '%s' was called inside the body of pipeline '%s'", self.name,
      building.pipeline)
  end
  if current then
    fail(2, "pipeline '%s' was called inside step '%s'", self.name, current.step_name)
  end
  if loading then return replayed_run(self.name, self.options, 2) end
  if definition_of[self] then definition_of[self].called = true end
  local build = new_build(self.name)
  build.substitutions, build.defaults = self.substitutions, self.defaults
  do
    -- an error in the body goes on as it is, with the body's position and
    -- its own traceback; the body is no longer being recorded (made before
    -- building is set: making it may run out of memory)
    local _ <close> = setmetatable({}, { __close = function() building = nil end })
    building = build
    self.fn(...)
  end
  if #build.nodes == 0 then fail(2, "pipeline '%s' (%s) calls no steps", self.name, self.where) end
  local run = execute(build, self.options, 2)
  return run
end

Pipeline.__tostring = function(p)
  return string.format("<pipeline '%s' (%s)>", p.name, p.where)
end

-- ---- the step context ----

StepContext.__index = function(ctx, k)
  if k == "pipeline_run" then
    return lupine.Client():get_pipeline_run(rawget(ctx, "run_id"))
  elseif k == "step_run" then
    return client_mod.step_run_of(core.query("step_run_by_id", rawget(ctx, "step_run_id"))[1])
  end
  return StepContext[k]
end

-- Methods that work called with . or with : (ZenML's are plain functions).
-- Not tail calls: the methods name their caller's line at a fixed level.
local function method(f)
  return function(first, ...)
    if getmetatable(first) == StepContext then return (f(first, ...)) end
    return (f(current, first, ...))
  end
end

-- The declared output of the running step that out names (or the only one).
local function context_output(ctx, out, fname)
  local node = ctx.node
  if out == nil and #node.outputs == 1 then return node.outputs[1].name end
  for _, o in ipairs(node.outputs) do
    if o.name == out then return out end
  end
  local list = {}
  for i, o in ipairs(node.outputs) do list[i] = o.name end
  fail(4, "%s: step '%s' has no output '%s' (its outputs: %s)", fname, ctx.step_name,
    tostring(out), table.concat(list, ", "))
end

-- Metadata md for output name's version, recorded with it; fname names
-- the caller in errors.
local function add_metadata(ctx, name, md, fname, level)
  metadata_rows(md, fname, level + 1)   -- checks it is serializable now
  local into = ctx.output_metadata[name] or {}
  for k, v in pairs(md) do into[k] = v end
  ctx.output_metadata[name] = into
end

StepContext.add_output_metadata = method(function(ctx, out, md)
  if type(out) == "table" and md == nil then out, md = nil, out end
  local name = context_output(ctx, out, "add_output_metadata")
  add_metadata(ctx, name, md, "add_output_metadata", 3)
end)

-- Tag changes to output name's version, made when it is recorded: the
-- tags added, in order, and the set of those removed (output_tags above).
local function change_tags(ctx, name, add, remove)
  local change = ctx.output_tags[name] or { removed = {} }
  for _, t in ipairs(add) do
    change.removed[t] = nil
    change[#change + 1] = t
  end
  for _, t in ipairs(remove) do change.removed[t] = true end
  ctx.output_tags[name] = change
end

StepContext.add_output_tags = method(function(ctx, out, tags)
  if type(out) == "table" and tags == nil then out, tags = nil, out end
  local name = context_output(ctx, out, "add_output_tags")
  change_tags(ctx, name, check_tags(tags, "add_output_tags", 3), {})
end)

-- remove_output_tags(output, tags): the counterpart of add_output_tags, for
-- the tags of the output's configuration too.
StepContext.remove_output_tags = method(function(ctx, out, tags)
  if type(out) == "table" and tags == nil then out, tags = nil, out end
  local name = context_output(ctx, out, "remove_output_tags")
  change_tags(ctx, name, {}, check_tags(tags, "remove_output_tags", 3))
end)

-- The output of the running step whose version artifact name is being made
-- (the name an output's template gives in this run), or nil; with the
-- running step's context.
local function own_output(name)
  local ctx = current
  if not ctx or type(name) ~= "string" then return nil end
  local own = rawget(ctx, "own")
  if not own then
    own = {}
    for _, out in ipairs(ctx.node.outputs) do
      own[artifact_name(ctx.build, ctx.node, out, ctx.run_name, 2)] = out.name
    end
    rawset(ctx, "own", own)
  end
  if own[name] then return own[name], ctx end
end

-- What the Client does inside a step (see client_mod.step).
client_mod.step = {
  own = own_output,
  tag_own = change_tags,
  looked_up = function(name, row)
    local ctx = current
    if ctx and not ctx.lookups[name] then ctx.lookups[name] = row.id end
  end,
}

StepContext.__tostring = function(ctx)
  return string.format("<StepContext step '%s' of run %s>", ctx.step_name, ctx.run_name)
end

function lupine.get_step_context()
  if not current then fail(2, "get_step_context() was called outside a running step") end
  return current
end

-- ---- metadata and artifacts from anywhere ----

local function write_metadata(entity, id, md, level)
  local now = core.now()
  for _, row in ipairs(metadata_rows(md, "log_metadata", level + 1)) do
    core.write("set_metadata", entity, id, row[1], row[2], row[3], row[4], now)
  end
end

-- The pipeline run key names, or an error at level.
local function find_run(key, level)
  local run, msg = client_mod.find_run(key)
  if not run then error(msg, level + 1) end
  return run
end

local log_fields = { metadata = true, artifact_name = true, artifact_version = true,
  artifact_version_id = true, step_name = true, run = true, run_id = true }

-- log_metadata { metadata = { ... }, [artifact_name = ..., artifact_version = ...]
--                | [artifact_version_id = ...] | [step_name = ..., run = ...] | [run = ...] }
function lupine.log_metadata(spec)
  if type(spec) ~= "table" then
    fail(2, "bad argument #1 to 'log_metadata' (table expected, got %s)", type(spec))
  end
  check_keys(spec, log_fields, "log_metadata", 2)
  if type(spec.metadata) ~= "table" then fail(2, "log_metadata: metadata must be a table") end
  local client = lupine.Client()
  local run_key = spec.run or spec.run_id
  if type(run_key) == "table" then run_key = run_key.id end
  local own, ctx = nil, nil
  if spec.artifact_version == nil or spec.artifact_version == "latest" then
    own, ctx = own_output(spec.artifact_name)
  end
  if own then   -- the version this step run is making: recorded with it
    add_metadata(ctx, own, spec.metadata, "log_metadata", 2)
    return
  end
  if spec.artifact_version_id or spec.artifact_name then
    local av = client_mod.get_version(spec.artifact_version_id or spec.artifact_name,
      spec.artifact_version, 2)
    return write_metadata("artifact_version", av.id, spec.metadata, 2)
  end
  if spec.step_name then
    local run = run_key and find_run(run_key, 2)
      or (current and client:get_pipeline_run(current.run_id))
    if not run then fail(2, "log_metadata: step_name '%s' needs a run outside a step", spec.step_name) end
    local sr = rawget(run.steps, spec.step_name)
    if not sr then fail(2, "log_metadata: run '%s' has no step '%s'", run.name, spec.step_name) end
    return write_metadata("step_run", sr.id, spec.metadata, 2)
  end
  if run_key then
    return write_metadata("pipeline_run", find_run(run_key, 2).id, spec.metadata, 2)
  end
  if not current then
    fail(2, "log_metadata: outside a step, say what to attach to (artifact_name, "
      .. "artifact_version_id, step_name with run, or run)")
  end
  write_metadata("step_run", current.step_run_id, spec.metadata, 2)
end

local save_fields = { version = true, tags = true, artifact_type = true, run_metadata = true }

-- save_artifact(value, name, { version, tags, artifact_type, run_metadata })
function lupine.save_artifact(value, name, opts)
  names.check("artifact", name, 2)
  opts = opts or {}
  if type(opts) ~= "table" then fail(2, "bad argument #3 to 'save_artifact' (table expected)") end
  check_keys(opts, save_fields, "save_artifact", 2)
  local c = make_config({ name = name, version = opts.version, tags = opts.tags,
    artifact_type = opts.artifact_type, run_metadata = opts.run_metadata },
    "save_artifact '" .. name .. "'", 2)
  if getmetatable(value) == PathRef then
    fail(2, "save_artifact '%s': files and folders are registered with "
      .. "lupine.register_artifact { path = ..., name = ... }, or returned from a step as "
      .. "lupine.%s(...)", name, value.kind)
  end
  -- inside a step, the version is linked to its step run under its name:
  -- one link per name, apart from the step's own outputs
  if current then
    for _, o in ipairs(current.node.outputs) do
      if o.name == name then
        fail(2, "save_artifact '%s': step '%s' has an output named '%s' (save the version "
          .. "under another name)", name, current.step_name, name)
      end
    end
    if current.saved[name] then
      fail(2, "save_artifact '%s': step '%s' saved a version of '%s' already (one per name "
        .. "in a step run)", name, current.step_name, name)
    end
  end
  if loading and not current then return replayed_save("save_artifact '" .. name .. "'", 2) end
  local plain, data_type = materials.prepare(value)
  local id, version, row = core.save(plain, { artifact = name, type = c.artifact_type,
      version = c.version, save_type = "manual" }, { tags = c.tags, metadata = c.metadata_rows,
      data_type = data_type or shapes.data_type(plain), visualizations = require("lupine.viz").compute(plain) },
    current and current.step_run_id, current and name)
  if not id then fail(2, "save_artifact '%s': %s", name, version) end
  if current then current.saved[name] = true
  elseif not building then made.saves[#made.saves + 1] = row.id end   -- (a body is not replayed)
  -- the row read as it was recorded: a prune in another process may have
  -- deleted the version since
  return client_mod.version_of(row)
end

local register_fields = { path = true, name = true, version = true, tags = true,
  artifact_type = true, run_metadata = true }

-- register_artifact { path = ..., name = ..., version, tags, artifact_type,
-- run_metadata }: the file or folder at path, stored by value as a new
-- version of name outside any pipeline (ZenML's register_artifact).
function lupine.register_artifact(spec)
  if type(spec) ~= "table" then
    fail(2, "bad argument #1 to 'register_artifact' (table expected, got %s)", type(spec))
  end
  check_keys(spec, register_fields, "register_artifact", 2)
  if spec.name == nil then fail(2, "register_artifact: name is missing") end
  local name = names.check("artifact", spec.name, 2)
  local what = "register_artifact '" .. name .. "'"
  if type(spec.path) ~= "string" or spec.path == "" then
    fail(2, "%s: path must be the path of a file or a folder (got %s)", what, tostring(spec.path))
  end
  if current then
    fail(2, "%s: inside step '%s', return lupine.file(...) or lupine.dir(...) as an output "
      .. "instead", what, current.step_name)
  end
  local c = make_config({ name = name, version = spec.version, tags = spec.tags,
    artifact_type = spec.artifact_type, run_metadata = spec.run_metadata }, what, 2)
  if loading then return replayed_save(what, 2) end
  local hash, size, stored, kind = core.store_path(spec.path)
  if not hash then fail(2, "%s: %s", what, size) end
  local id, version, row = core.record_object({ hash = hash, size = size, stored_size = stored },
    kind, { artifact = name, type = c.artifact_type, version = c.version,
      save_type = "registered" }, { tags = c.tags, metadata = c.metadata_rows })
  if not id then fail(2, "%s: %s", what, version) end
  if not building then made.saves[#made.saves + 1] = row.id end
  return client_mod.version_of(row)   -- as recorded, as save_artifact's
end

-- load_artifact(name_or_id [, version]): inside a step, recorded as an input.
function lupine.load_artifact(key, version)
  if version == nil or version == "latest" then
    local out, ctx = own_output(key)
    if out then client_mod.not_yet("load_artifact", key, out, ctx, 2) end
  end
  local av = client_mod.get_version(key, version, 2)
  if current then core.write("add_input", current.step_run_id, av.name, av.id) end
  return av:load()
end

lupine.register_materializer = materials.register

-- The message of an error raised while the top level of the script whose
-- chunk has source was replayed, naming the script's line where lupine's
-- own code raised it (a C function's error names no line).
local function replay_error(source, err)
  if type(err) ~= "string" then return err end
  if err:match("^[^\n]-:%d+: ") then return err end
  for level = 2, math.huge do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.source == source and info.currentline > 0 then
      return string.format("%s:%d: %s", info.short_src, info.currentline, err)
    end
  end
  return err
end

-- What lupine.exec needs of this module: replay a script's top level to
-- find its steps (the steps it defines, in order), a step's invoke, the
-- substitutions of a node's outputs and the tags of its configuration,
-- and what the top level made (for a spec).
client_mod.exec = {
  -- Run chunk (with its arguments) as the coordinator ran it, up to the
  -- call that made the run of the step: replay = { call = its index among
  -- the top level's runs, runs, saves } (a spec's: made's, as it was
  -- then). Nothing is written: pipeline calls and one-step runs give the
  -- coordinator's runs, saves its versions, other writes are not made
  -- (runtime.c); reads read the catalog (read only). Steps defined
  -- after that call are not seen: a step ran before they were made.
  load = function(chunk, replay, ...)
    local steps = { call = replay.call or 1, runs = replay.runs or {}, saves = replay.saves or {},
      runs_seen = {}, saves_seen = {} }
    local _ <close> = setmetatable({}, { __close = function() loading = nil end })
    loading = steps
    local source = debug.getinfo(chunk, "S").source
    local ok, err = xpcall(chunk, function(e) return replay_error(source, e) end, ...)
    -- an error after that call (one the script caught, then used the
    -- missing result) is not the steps' concern
    if not ok and err ~= LOADED and not steps.loaded then error(tostring(err), 0) end
    return steps
  end,
  made = made,
  invoker = invoker,
  output_subs = output_subs,
}

-- The catalog folder in use; set_home(dir) switches to another one.
-- The catalog in use: the folder's file, or a PostgreSQL connection string.
-- In `lupine exec`'s replay the spec says which folder and catalog the
-- step uses: the script's choice, made for `lupine run`, is not made again.
lupine.home = core.home
function lupine.set_home(...)
  if not loading then return core.set_home(...) end
end
function lupine.set_catalog(...)
  if not loading then return core.set_catalog(...) end
end

return lupine
