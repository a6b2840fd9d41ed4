-- lupine: steps and pipelines.
--
-- A pipeline's body is run once to record its graph: calling a step there
-- records a node and returns placeholders for its outputs. The graph then
-- goes to the C runtime (lupine.core), which orders the steps, runs them,
-- stores every output and records the run in the catalog.

local core = require "lupine.core"
local client_mod = require "lupine.client"
local names = require "lupine.names"

local lupine = {
  version = core.version,
  codec_version = core.codec_version,
  Client = client_mod.Client,
}

-- The pipeline body being recorded, if any (one per Lua state).
local building = nil

local Step, Pipeline, Placeholder = {}, {}, {}
Step.__index, Pipeline.__index = Step, Pipeline

Placeholder.__index = function(p, k)
  error(string.format("output '%s' of step '%s' is not a value yet: inside a pipeline "
    .. "body, step outputs can only be passed to other steps (tried to read field '%s')",
    rawget(p, "output_name"), rawget(p, "step_name"), tostring(k)), 2)
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

-- step { name = ..., outputs = { ... }, fn }  |  step("name", fn)
function lupine.step(spec, fn)
  if type(spec) == "string" then spec = { name = spec, fn } end
  if type(spec) ~= "table" then
    error("bad argument #1 to 'step' (table or string expected, got " .. type(spec) .. ")", 2)
  end
  fn = fn or spec[1] or spec.fn
  if type(fn) ~= "function" then
    error("bad argument #1 to 'step' (the step's function is missing)", 2)
  end
  local name = names.check("step", spec.name, 2)
  local s = setmetatable({ name = name, fn = fn, where = where(fn),
    params = param_names(fn), outputs = {} }, Step)
  if spec.outputs == nil then
    s.outputs[1], s.default_output = "output", true
  else
    if type(spec.outputs) ~= "table" or #spec.outputs == 0 then
      error(string.format("step '%s': outputs must be a non-empty list of names", name), 2)
    end
    local seen = {}
    for i, o in ipairs(spec.outputs) do
      o = names.check("output", o, 2)
      if seen[o] then
        error(string.format("step '%s': output '%s' is declared twice", name, o), 2)
      end
      seen[o], s.outputs[i] = true, o
    end
    s.default_output = false
  end
  return s
end

Step.__tostring = function(s)
  return string.format("<step '%s' (%s)>", s.name, s.where)
end

-- The argument records of one call of step s (see runtime/executor.c).
local function bind_args(s, ctx, level, ...)
  local n = select("#", ...)
  if n > #s.params then
    error(string.format("step '%s' takes %d input%s (%s) but was given %d", s.name,
      #s.params, #s.params == 1 and "" or "s", table.concat(s.params, ", "), n), level)
  end
  local args = {}
  for i, param in ipairs(s.params) do
    local v = (select(i, ...))
    if getmetatable(v) == Placeholder then
      if rawget(v, "ctx") ~= ctx then
        error(string.format("step '%s': input '%s' is an output of another pipeline's "
          .. "body", s.name, param), level)
      end
      args[i] = { param = param, node = rawget(v, "node"), output = rawget(v, "output") }
    elseif client_mod.is_version(v) then
      args[i] = { param = param, version = v.id }
    else
      local ok, msg = core.encode(v)
      if not ok then
        error(string.format("step '%s': parameter '%s': %s", s.name, param, msg), level)
      end
      args[i] = { param = param, value = v }
    end
  end
  return args
end

-- The node of a call of s in the body being recorded.
local function add_node(s, ctx, args)
  local count = (ctx.uses[s.name] or 0) + 1
  ctx.uses[s.name] = count
  local inv = count == 1 and s.name or (s.name .. "_" .. count)
  local outputs = {}
  for k, o in ipairs(s.outputs) do
    outputs[k] = { name = o,
      artifact = s.default_output and (ctx.pipeline .. "::" .. inv .. "::" .. o) or o }
  end
  local node = { name = inv, step = s.name, where = s.where, fn = s.fn, args = args,
    outputs = outputs, default_output = s.default_output }
  ctx.nodes[#ctx.nodes + 1] = node
  return node
end

local function new_context(pipeline)
  return { pipeline = pipeline, nodes = {}, uses = {} }
end

local RunError = {
  __tostring = function(e) return e.message end,
}

-- Hand a recorded graph to the runtime; return the PipelineRun.
local function execute(ctx, options, level)
  local id, _, status, errors = core.run {
    pipeline = ctx.pipeline, run_name = options.run_name, nodes = ctx.nodes }
  local run = lupine.Client():get_pipeline_run(id)
  if status == "failed" and options.raise_on_failure ~= false then
    error(setmetatable({ run = run,
      message = string.format("pipeline run '%s' failed:\n%s", run.name, errors) },
      RunError), level)
  end
  return run
end

function Step:__call(...)
  local ctx = building
  if ctx then
    local node = add_node(self, ctx, bind_args(self, ctx, 3, ...))
    local placeholders = {}
    for k, o in ipairs(self.outputs) do
      placeholders[k] = setmetatable({ ctx = ctx, node = #ctx.nodes, output = k,
        output_name = o, step_name = node.name }, Placeholder)
    end
    return table.unpack(placeholders)
  end
  -- Outside a pipeline: a one-step run, returning the step's outputs.
  ctx = new_context(self.name)
  add_node(self, ctx, bind_args(self, ctx, 3, ...))
  local run = execute(ctx, {}, 3)
  local step_run = run.steps[self.name]
  local values = {}
  for k, o in ipairs(self.outputs) do values[k] = step_run.outputs[o]:load() end
  return table.unpack(values, 1, #self.outputs)
end

-- pipeline { name = ..., fn }
function lupine.pipeline(spec, fn)
  if type(spec) == "string" then spec = { name = spec, fn } end
  if type(spec) ~= "table" then
    error("bad argument #1 to 'pipeline' (table or string expected, got "
      .. type(spec) .. ")", 2)
  end
  fn = fn or spec[1] or spec.fn
  if type(fn) ~= "function" then
    error("bad argument #1 to 'pipeline' (the pipeline's function is missing)", 2)
  end
  return setmetatable({ name = names.check("pipeline", spec.name, 2), fn = fn,
    where = where(fn), options = {} }, Pipeline)
end

local run_options = { run_name = "string", raise_on_failure = "boolean" }

-- A copy of the pipeline with options set for its runs.
function Pipeline:with_options(options)
  if type(options) ~= "table" then
    error("bad argument #1 to 'with_options' (table expected, got " .. type(options) .. ")", 2)
  end
  local merged = {}
  for k, v in pairs(self.options) do merged[k] = v end
  for k, v in pairs(options) do
    if run_options[k] == nil then
      error(string.format("pipeline '%s': unknown option '%s'", self.name, tostring(k)), 2)
    end
    if type(v) ~= run_options[k] then
      error(string.format("pipeline '%s': option '%s' must be a %s (got %s)", self.name, k,
        run_options[k], type(v)), 2)
    end
    merged[k] = v
  end
  if merged.run_name then names.check("run", merged.run_name, 2) end
  return setmetatable({ name = self.name, fn = self.fn, where = self.where,
    options = merged }, Pipeline)
end

function Pipeline:__call(...)
  if building then
    error(string.format("pipeline '%s' was called inside the body of pipeline '%s'",
      self.name, building.pipeline), 2)
  end
  local ctx = new_context(self.name)
  building = ctx
  local ok, err = xpcall(self.fn, debug.traceback, ...)
  building = nil
  if not ok then error(err, 0) end
  if #ctx.nodes == 0 then
    error(string.format("pipeline '%s' (%s) calls no steps", self.name, self.where), 2)
  end
  return execute(ctx, self.options, 3)
end

Pipeline.__tostring = function(p)
  return string.format("<pipeline '%s' (%s)>", p.name, p.where)
end

-- The catalog folder in use; set_home(dir) switches to another one.
lupine.home = core.home
lupine.set_home = core.set_home

return lupine
