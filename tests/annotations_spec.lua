-- SPDX-License-Identifier: MIT
-- The editor annotations (lua/meta/*.lua, ---@meta files for LuaLS and
-- EmmyLua) against the real API: every public function and every field of
-- the objects a small run gives is declared, and what is declared exists.
local H = require "helper"
local lupine = require "lupine"
local client_mod = require "lupine.client"

local META = H.root .. "/lua/meta"

-- The classes the annotation files declare: name -> { fields = { name ->
-- { optional, method } }, parent }. Functions are declared as
-- `function Var.f(` or `function Var:f(` after `---@class C` / `local Var = {}`.
local function declared()
  local classes, files = {}, {}
  for f in H.sh("ls " .. H.quote(META)):gmatch("[^\n]+") do files[#files + 1] = f end
  for _, f in ipairs(files) do
    local path = META .. "/" .. f
    assert(loadfile(path), "not Lua: " .. path)
    local vars, pending, enum = {}, nil, nil
    for line in io.lines(path) do
      local kind, name, parent = line:match("^%-%-%-@(%a+)%s+([%w_.]+)[^:]*:?%s*([%w_.]*)")
      if kind == "class" or kind == "enum" then
        pending = { fields = {}, parent = parent ~= "" and parent or nil }
        classes[name] = pending
        enum = nil
      elseif line:find("^%-%-%-@field") then
        local rest = line:match("^%-%-%-@field%s+(.*)")
        local scope, field, opt = rest:match("^(%a+)%s+([%w_]+)(%??)%s")
        if scope ~= "private" and scope ~= "package" and scope ~= "protected" and scope ~= "public" then
          field, opt = rest:match("^([%w_]+)(%??)%s")
        end
        if field then pending.fields[field] = { optional = opt == "?" } end
      elseif line:find("^local [%w_]+ = {") then
        local var = line:match("^local ([%w_]+)")
        if pending then vars[var], enum = pending, line:find("}") == nil and pending or nil end
        pending = nil
      elseif enum and line:find("^  [%w_]+ =") then
        enum.fields[line:match("^  ([%w_]+)")] = {}
      elseif line:find("^}") then
        enum = nil
      elseif line == "" then
        pending = nil   -- a class's block ends at a blank line
      elseif line:find("^function ") then
        local var, fn = line:match("^function ([%w_]+)[.:]([%w_]+)%(")
        assert(vars[var], "a function of no class: " .. line)
        vars[var].fields[fn] = { method = true }
      end
    end
  end
  return classes
end

-- Every field of class name, its parents' too.
local function fields_of(classes, name)
  local out, c = {}, classes[name]
  assert(c, "no class '" .. name .. "' in the annotations")
  while c do
    for k, v in pairs(c.fields) do out[k] = out[k] or v end
    c = c.parent and classes[c.parent]
  end
  return out
end

-- What an object really has: its own keys (not array items), the functions
-- its metatable offers, the fields a getter computes on first use, and extra
-- (fields made by an __index function, which cannot be listed).
local function live(obj, extra)
  local keys = {}
  local function add(k) if type(k) == "string" and k:sub(1, 2) ~= "__" then keys[k] = true end end
  for k in pairs(obj) do add(k) end
  local mt = getmetatable(obj)
  if type(mt) == "table" then
    local methods = type(mt.__index) == "table" and mt.__index or mt
    for k, v in pairs(methods) do if type(v) == "function" then add(k) end end
    for k in pairs(client_mod.getters[mt] or {}) do add(k) end
  end
  for _, k in ipairs(extra or {}) do keys[k] = true end
  return keys
end

-- Objects of each class, from a small run that covers the fields that are
-- there only sometimes (an error, a cached step, a stack's jobs, ...).
local function samples()
  H.fresh(lupine)
  local make = lupine.step { name = "make", outputs = { lupine.ArtifactConfig { name = "data",
      tags = { "t" }, run_metadata = { n = 1 } } }, function(n)
    local ctx, keys = lupine.get_step_context(), {}   -- what it has, as the step sees it
    for k in pairs(ctx) do keys[#keys + 1] = k end
    for k, v in pairs(getmetatable(ctx)) do
      if type(v) == "function" and k:sub(1, 2) ~= "__" then keys[#keys + 1] = k end
    end
    lupine.save_artifact({ 1 }, "by_hand")
    return { n, ctx = keys }
  end }
  local use = lupine.step("use", function(d) return lupine.HTMLString("<b>" .. d[1] .. "</b>") end)
  local fails = lupine.step("fails", function() error("no") end)
  local p = lupine.pipeline { name = "sample", function()
    use(make(3))
    fails()
  end }
  local bad = p:with_options { raise_on_failure = false }()
  local _, err = pcall(p)
  local run = p:with_options { raise_on_failure = false }()   -- make and use cached
  local c = lupine.Client()
  c:register_artifact_store("other", { path = H.tmpdir() .. "/store" })
  c:register_stack("two", { artifact_store = "other", jobs = 2 })
  c:register_orchestrator("hpc", { flavor = "slurm", work_dir = H.tmpdir() .. "/work",
    partition = "debug", account = "lab", time = "10:00", requeue = true, sbatch_args = "-q x",
    grace = 30 })
  local data = c:get_artifact_version("data")
  local g = c:get_lineage(data)
  local nodes = {}
  for _, n in ipairs(g.nodes) do nodes[n.kind] = n end
  local out = data:load()
  local tag = c:create_tag { name = "exclusive", exclusive = true }
  return {
    { "lupine", lupine },
    { "lupine.lineage", require "lupine.lineage" },
    { "lupine.pretty", require "lupine.pretty" },
    { "lupine.help", require "lupine.help" },
    { "lupine.Client", c, { "active_stack" } },
    { "lupine.ArtifactVersion", data },
    { "lupine.ArtifactVersion", c:get_artifact_version("by_hand") },
    { "lupine.PipelineRun", bad },
    { "lupine.PipelineRun", run },
    { "lupine.StepRun", run.steps.make },
    { "lupine.StepRun", bad.steps.fails },
    { "lupine.StepRun", run.steps.use },
    { "lupine.Consumer", data:consumers()[1] },
    { "lupine.Artifact", c:list_artifacts()[1] },
    { "lupine.Pipeline", c:get_pipeline("sample") },
    { "lupine.Tag", tag },
    { "lupine.Page", c:list_artifact_versions { size = 1 } },
    { "lupine.Page", c:list_pipeline_runs() },
    { "lupine.Stack", c:get_stack("two") },
    { "lupine.Stack", c.active_stack },
    { "lupine.ArtifactStore", c:artifact_store("other") },
    { "lupine.Orchestrator", c:get_orchestrator("hpc") },
    { "lupine.Orchestrator", c:get_orchestrator("local") },
    { "lupine.Visualization", c:get_artifact_version("sample::use::output").visualizations[1] },
    { "lupine.LineageGraph", g },
    { "lupine.LineageNode", nodes.artifact_version },
    { "lupine.LineageNode", nodes.step_run },
    { "lupine.LineageEdge", g.edges[1] },
    { "lupine.GcResult", c:gc { dry_run = true } },
    { "lupine.PruneResult", c:prune_artifacts { dry_run = true } },
    { "lupine.VerifyResult", c:verify_artifact_store("default") },
    { "lupine.RunError", err },
    { "lupine.Step", make },
    { "lupine.Step", make:with_options { id = "made" } },
    { "lupine.PipelineDefinition", p },
    { "lupine.ArtifactConfig", lupine.ArtifactConfig { name = "x", version = 1 } },
    { "lupine.ArtifactVersionFilter", lupine.ArtifactVersionFilter { name = "data" } },
    { "lupine.PathRef", lupine.file("x") },
    { "lupine.Visual", lupine.MarkdownString("x") },
    { "lupine.Plot", lupine.plot { kind = "hist", x = { 1 }, bins = 2, title = "t", yscale = "log",
      xscale = "time" } },
    { "lupine.Table", lupine.table { columns = { "a" }, { { a = 1 } } } },
    -- the context's keys and methods, as the step saw them; pipeline_run and
    -- step_run come from its __index function
    { "lupine.StepContext", (function()
        local t = {}
        for _, k in ipairs(out.ctx) do t[k] = true end
        return t
      end)(), { "pipeline_run", "step_run" } },
    { "lupine.ArtifactType", lupine.ArtifactType },
  }
end

describe("the editor annotations", function()
  local classes = declared()
  local list = samples()

  it("declare every public function and every field of the objects", function()
    local set = {}
    for _, s in ipairs(list) do
      local name, obj, extra = s[1], s[2], s[3]
      assert(obj ~= nil, "no sample of " .. name)
      local have = fields_of(classes, name)
      for k in pairs(live(obj, extra)) do
        if not have[k] then set[name .. "." .. k] = true end
      end
    end
    local missing = {}
    for k in pairs(set) do missing[#missing + 1] = k end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("declare nothing that is not there", function()
    local absent, seen = {}, {}
    for _, s in ipairs(list) do
      local name = s[1]
      local keys = live(s[2], s[3])
      seen[name] = seen[name] or {}
      for k in pairs(keys) do seen[name][k] = true end
    end
    for name, keys in pairs(seen) do
      for k, f in pairs(fields_of(classes, name)) do
        if not f.optional and not keys[k] then absent[#absent + 1] = name .. "." .. k end
      end
    end
    table.sort(absent)
    assert.same({}, absent)
  end)

  it("are installed with the module", function()
    local prefix = H.tmpdir()
    local release = H.build:gsub("/asan$", "")
    local _, err, code = H.sh("make -s install-rock BUILD=" .. H.quote(release) .. " PREFIX="
      .. H.quote(prefix))
    assert.equal(0, code, err)
    for f in H.sh("ls " .. H.quote(META)):gmatch("[^\n]+") do
      assert.equal(H.read(META .. "/" .. f), H.read(prefix .. "/share/lupine/meta/" .. f), f)
    end
  end)
end)
