-- SPDX-License-Identifier: MIT
-- lupine.stacks: stacks, artifact stores and orchestrators, as ZenML has
-- them. A stack names the artifact store and the orchestrator a run uses;
-- exactly one is active. Each version records the store holding its
-- object; each step run the orchestrator that ran it.

local core = require "lupine.core"
local names = require "lupine.names"
local client = require "lupine.client"
local resources = require "lupine.resources"

local Client, ArtifactVersion = client.classes.Client, client.classes.ArtifactVersion
local getters = client.getters

local M = {}

-- The flavors of artifact store this build knows, and what each is.
M.flavors = { { name = "local", description = "a folder on this machine's file system" },
  { name = "s3", description = "a bucket of Amazon S3 or of a service that speaks its protocol" } }
-- The flavors of orchestrator: where a stack's steps run.
M.orchestrator_flavors = {
  { name = "local", description = "forked worker processes on the machine of the run" },
  { name = "slurm", description = "each step a Slurm job (sbatch), its objects in a shared store" },
}

local ArtifactStore, Stack, Orchestrator = {}, {}, {}
client.class(ArtifactStore, "lupine.ArtifactStore")
client.class(Stack, "lupine.Stack")
client.class(Orchestrator, "lupine.Orchestrator")
M.ArtifactStore, M.Stack, M.Orchestrator = ArtifactStore, Stack, Orchestrator

local function fail(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

local function flavor_names(flavors)
  local list = {}
  for i, f in ipairs(flavors or M.flavors) do list[i] = f.name end
  return list
end

-- An s3 store's location, as the catalog keeps it:
-- "s3://bucket/prefix[?endpoint=URL&region=R&path-style=1]" (store_s3.c reads it).
local function s3_settings(location)
  local where, settings = location:match("^([^?]*)%??(.*)$")
  local bucket, prefix = where:match("^s3://([^/]*)/?(.*)$")
  local s = { bucket = bucket, prefix = prefix, path_style = false }
  for k, v in settings:gmatch("([^&=]+)=([^&]*)") do
    if k == "path-style" then s.path_style = true else s[k] = v end
  end
  return where, s
end

-- The folder of a store row: the default store's is <home>/artifacts. An
-- s3 store's path is its s3://bucket/prefix, its settings are fields.
local function store_of(row)
  row.path = row.path or (core.home() .. "/artifacts")
  if row.flavor == "s3" then
    local s
    row.path, s = s3_settings(row.path)
    for k, v in pairs(s) do row[k] = v end
  end
  return setmetatable(row, ArtifactStore)
end

ArtifactStore.__tostring = function(s)
  return string.format("ArtifactStore(name=%s, flavor=%s, path=%s)", s.name, s.flavor, s.path)
end

-- Can its folder be read now? true, or nil and why not.
function ArtifactStore:reachable()
  local root, why = core.store_root(self.id)
  if root then return true end
  return nil, why
end

local function stack_of(row)
  row.active = row.active == 1
  return setmetatable(row, Stack)
end

Stack.__tostring = function(s)
  return string.format("Stack(name=%s, artifact_store=%s, orchestrator=%s%s%s)", s.name,
    s.artifact_store.name, s.orchestrator, s.jobs and (", jobs=" .. s.jobs) or "",
    s.active and ", active" or "")
end

local function orchestrator_of(row)
  row.requeue = row.requeue == 1
  return setmetatable(row, Orchestrator)
end

Orchestrator.__tostring = function(o)
  return string.format("Orchestrator(name=%s, flavor=%s%s)", o.name, o.flavor,
    o.work_dir and (", work_dir=" .. o.work_dir) or "")
end

-- The sbatch options of a step with these resources (a table checked as a
-- step's; nil: none) on this orchestrator, a Slurm one: its defaults, its
-- own arguments, then the step's.
function Orchestrator:sbatch_options(res)
  if self.flavor ~= "slurm" then
    fail(2, "orchestrator '%s' is not a Slurm one (flavor %s)", self.name, self.flavor)
  end
  if res ~= nil then
    local ok, why = resources.check(res, "sbatch_options")
    if not ok then error(why, 2) end
  end
  return resources.sbatch_options(self, res)
end

getters[Stack].artifact_store = function(s)
  return store_of(core.query("artifact_store_by_id", s.artifact_store_id)[1])
end

-- av.artifact_store: the store that holds its object
getters[ArtifactVersion].artifact_store = function(av)
  local id = av.artifact_store_id
  if id == nil then
    local row = core.query("version_by_id", av.id)[1]
    id = row and row.artifact_store_id
  end
  local row = id and core.query("artifact_store_by_id", id)[1]
  return row and store_of(row)
end

local function not_found(what, name, query)
  local list = {}
  for i, r in ipairs(core.query(query)) do list[i] = r.name end
  return string.format("%s '%s' not found%s", what, name, names.suggest(name, list))
end

local function check_name(fn, n, v, level)
  if type(v) ~= "string" then
    fail(level + 1, "bad argument #%d to '%s' (string expected, got %s)", n, fn, type(v))
  end
  names.check("name", v, level + 1)
end

-- ---- reading ----

function Client:list_artifact_stores()
  local list = {}
  for i, row in ipairs(core.query("artifact_stores")) do list[i] = store_of(row) end
  return list
end

function Client:list_stacks()
  local list = {}
  for i, row in ipairs(core.query("stacks")) do list[i] = stack_of(row) end
  return list
end

function Client:list_orchestrators()
  local list = {}
  for i, row in ipairs(core.query("orchestrators")) do list[i] = orchestrator_of(row) end
  return list
end

-- The row of a name, made an object by wrap, or an error at the caller's
-- caller naming what was not found (fn: the method, for a bad name). Not
-- called as a tail call: the level counts the method's own frame.
local function by_name(fn, what, query, names_query, wrap, name)
  check_name(fn, 1, name, 3)
  local row = core.query(query, name)[1]
  if not row then error(not_found(what, name, names_query), 3) end
  return wrap(row)
end

function Client:get_orchestrator(name)
  local o = by_name("get_orchestrator", "orchestrator", "orchestrator_by_name",
    "orchestrator_names", orchestrator_of, name)
  return o
end

function Client:artifact_store(name)
  local s = by_name("artifact_store", "artifact store", "artifact_store_by_name",
    "artifact_store_names", store_of, name)
  return s
end

function Client:get_stack(name)
  local k = by_name("get_stack", "stack", "stack_by_name", "stack_names", stack_of, name)
  return k
end

-- client.active_stack: read afresh each time (another process may switch
-- it). Client stays a plain __index table (the REPL completes from it); the
-- field comes from a metatable of the class table itself.
assert(getmetatable(Client) == nil)
setmetatable(Client, { __index = function(_, k)
  if k == "active_stack" then return stack_of(core.query("active_stack")[1]) end
end })

-- ---- registering and deleting ----

-- Bucket names as S3 allows them (3-63 lowercase letters, digits, '.', '-').
local function check_bucket(name, bucket, level)
  if type(bucket) ~= "string" or not bucket:match("^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    or #bucket > 63 then
    fail(level + 1, "artifact store '%s': bad bucket name '%s' (3 to 63 lowercase letters, "
      .. "digits, '.' and '-')", name, tostring(bucket))
  end
end

-- An s3 store: opts.path "s3://bucket/prefix", or opts.bucket and
-- opts.prefix; opts.endpoint, opts.region, opts.path_style. Nothing about
-- credentials is kept: they come from the environment at each use.
local function register_s3(self, name, opts, level)
  local bucket, prefix = opts.bucket, opts.prefix
  if opts.path ~= nil then
    if bucket ~= nil or prefix ~= nil then
      fail(level, "artifact store '%s': give path, or bucket and prefix, not both", name)
    end
    bucket, prefix = tostring(opts.path):match("^s3://([^/?]*)/?([^?]*)$")
    if not bucket then
      fail(level, "artifact store '%s': path '%s' is not s3://bucket/prefix", name,
        tostring(opts.path))
    end
  elseif bucket == nil then
    fail(level, "artifact store '%s': an s3 store needs a path (s3://bucket/prefix) or a bucket",
      name)
  end
  check_bucket(name, bucket, level)
  prefix = tostring(prefix or ""):gsub("^/+", ""):gsub("/+$", "")
  if prefix:find("[?&%c]") or prefix:find("//", 1, true) then
    fail(level, "artifact store '%s': bad prefix '%s' (no '?', '&', '//' or control "
      .. "characters)", name, prefix)
  end
  local path = "s3://" .. bucket .. (prefix ~= "" and "/" .. prefix or "")
  local settings = {}
  for _, k in ipairs { "endpoint", "region" } do
    local v = opts[k]
    if v ~= nil then
      if type(v) ~= "string" or v == "" or v:find("[?&%s]") then
        fail(level, "artifact store '%s': bad %s '%s'", name, k, tostring(v))
      end
      if k == "endpoint" and not v:match("^https?://[^/]+/?$") then
        fail(level, "artifact store '%s': endpoint '%s' is not http(s)://host[:port]", name, v)
      end
      settings[#settings + 1] = k .. "=" .. v:gsub("/$", "")
    end
  end
  if opts.path_style then settings[#settings + 1] = "path-style=1" end
  if core.query("artifact_store_by_name", name)[1] then
    fail(level, "artifact store '%s' exists already", name)
  end
  for _, s in ipairs(self:list_artifact_stores()) do
    if s.path == path then
      fail(level, "artifact store '%s': path %s is the store '%s' already", name, path, s.name)
    end
  end
  core.write("add_artifact_store", name, "s3",
    path .. (#settings > 0 and "?" .. table.concat(settings, "&") or ""))
  return self:artifact_store(name)
end

function Client:register_artifact_store(name, opts)
  check_name("register_artifact_store", 1, name, 2)
  if type(opts) ~= "table" then
    fail(2, "bad argument #2 to 'register_artifact_store' (table expected, got %s)", type(opts))
  end
  local flavor = opts.flavor or "local"
  local known = false
  for _, f in ipairs(flavor_names()) do known = known or f == flavor end
  if not known then
    fail(2, "unknown artifact store flavor '%s' (known flavors: %s)", tostring(flavor),
      table.concat(flavor_names(), ", "))
  end
  if flavor == "s3" then return register_s3(self, name, opts, 2) end
  if type(opts.path) ~= "string" or opts.path == "" then
    fail(2, "artifact store '%s': a local store needs a path", name)
  end
  if core.query("artifact_store_by_name", name)[1] then
    fail(2, "artifact store '%s' exists already", name)
  end
  local path = opts.path
  -- relative to the working directory itself: $PWD is only what a shell
  -- last set, and a program started by another (or `env PWD=...`) has a stale one
  if path:sub(1, 1) ~= "/" then path = core.cwd() .. "/" .. path end
  path = path:gsub("/+$", "")
  for _, s in ipairs(self:list_artifact_stores()) do
    if s.path == path then
      fail(2, "artifact store '%s': path %s is the store '%s' already", name, path, s.name)
    end
  end
  local ok, why = core.check_store_path(path)
  if not ok then fail(2, "artifact store '%s': %s", name, why) end
  core.write("add_artifact_store", name, flavor, path)
  return self:artifact_store(name)
end

-- Refuse (at the caller's caller) to delete what stacks still use: rows of
-- their names.
local function refuse_used(what, stacks)
  if #stacks == 0 then return end
  local list = {}
  for i, r in ipairs(stacks) do list[i] = "'" .. r.name .. "'" end
  fail(3, "%s is used by stack%s %s", what, #list > 1 and "s" or "", table.concat(list, ", "))
end

function Client:delete_artifact_store(name)
  local s = self:artifact_store(name)
  refuse_used("artifact store '" .. name .. "'", core.query("stacks_using_store", s.id))
  local n = core.query("version_count_in_store", s.id)[1].n
  if n > 0 then
    fail(2, "artifact store '%s' holds %d artifact version%s (copy them elsewhere with "
      .. "'lupine artifact-store copy' first)", name, n, n == 1 and "" or "s")
  end
  core.write("delete_artifact_store", name)
end

function Client:register_stack(name, opts)
  check_name("register_stack", 1, name, 2)
  if type(opts) ~= "table" then
    fail(2, "bad argument #2 to 'register_stack' (table expected, got %s)", type(opts))
  end
  local orchestrator = opts.orchestrator or "local"
  if type(orchestrator) ~= "string" then
    fail(2, "stack '%s': orchestrator must be the name of an orchestrator", name)
  end
  if not core.query("orchestrator_by_name", orchestrator)[1] then
    error(not_found("orchestrator", orchestrator, "orchestrator_names"), 2)
  end
  if type(opts.artifact_store) ~= "string" then
    fail(2, "stack '%s': artifact_store must be the name of an artifact store", name)
  end
  if not core.query("artifact_store_by_name", opts.artifact_store)[1] then
    error(not_found("artifact store", opts.artifact_store, "artifact_store_names"), 2)
  end
  if opts.jobs ~= nil and not (math.type(opts.jobs) == "integer" and opts.jobs >= 1) then
    fail(2, "stack '%s': jobs must be an integer from 1 (got %s)", name, tostring(opts.jobs))
  end
  if core.query("stack_by_name", name)[1] then fail(2, "stack '%s' exists already", name) end
  core.write("add_stack", name, opts.artifact_store, orchestrator, opts.jobs)
  return self:get_stack(name)
end

-- A Slurm orchestrator's options: what each must be (the CLI checks the
-- same through these).
local slurm_options = {
  work_dir = "string", partition = "string", account = "string", time = "string",
  requeue = "boolean", sbatch_args = "string", grace = "number",
}
M.slurm_options = slurm_options

function Client:register_orchestrator(name, opts)
  check_name("register_orchestrator", 1, name, 2)
  if type(opts) ~= "table" then
    fail(2, "bad argument #2 to 'register_orchestrator' (table expected, got %s)", type(opts))
  end
  local what = "orchestrator '" .. name .. "'"
  local flavor = opts.flavor
  local known = flavor_names(M.orchestrator_flavors)
  if flavor ~= "slurm" then
    fail(2, "%s: flavor must be %s (got %s)", what,
      flavor == "local" and "slurm ('local' is built in)" or "one of " .. table.concat(known, ", "),
      tostring(flavor))
  end
  for k, v in pairs(opts) do
    if k ~= "flavor" then
      if not slurm_options[k] then
        local list = {}
        for o in pairs(slurm_options) do list[#list + 1] = o end
        table.sort(list)
        fail(2, "%s: unknown option '%s'%s", what, tostring(k), names.suggest(tostring(k), list))
      end
      if type(v) ~= slurm_options[k] then
        fail(2, "%s: %s must be a %s (got %s)", what, k, slurm_options[k], type(v))
      end
    end
  end
  if type(opts.work_dir) ~= "string" or opts.work_dir == "" then
    fail(2, "%s: a Slurm orchestrator needs a work_dir (a folder every node shares)", what)
  end
  if opts.time and not resources.slurm_time(opts.time) then
    fail(2, '%s: time must be a Slurm time such as "1:30:00" or "2-00:00:00" (got "%s")',
      what, opts.time)
  end
  for _, k in ipairs { "partition", "account" } do
    if opts[k] and not opts[k]:find("^[%w_%-.]+$") then
      fail(2, "%s: %s must be a name (got \"%s\")", what, k, opts[k])
    end
  end
  if opts.grace and not (opts.grace >= 0 and opts.grace < math.huge) then
    fail(2, "%s: grace must be seconds from 0 (got %s)", what, tostring(opts.grace))
  end
  if opts.sbatch_args then
    local words, why = resources.words(opts.sbatch_args)
    if not words then fail(2, "%s: sbatch_args: %s", what, why) end
  end
  if core.query("orchestrator_by_name", name)[1] then fail(2, "%s exists already", what) end
  local dir = opts.work_dir
  if dir:sub(1, 1) ~= "/" then dir = core.cwd() .. "/" .. dir end
  dir = dir:gsub("/+$", "")
  local ok, why = core.check_store_path(dir)
  if not ok then fail(2, "%s: work_dir: %s", what, why) end
  core.write("add_orchestrator", name, flavor, dir, opts.partition, opts.account, opts.time,
    opts.requeue and 1 or 0, opts.sbatch_args, opts.grace)
  return self:get_orchestrator(name)
end

function Client:delete_orchestrator(name)
  local o = self:get_orchestrator(name)
  if o.name == "local" then fail(2, "orchestrator 'local' is built in: it cannot be deleted") end
  refuse_used("orchestrator '" .. name .. "'", core.query("stacks_using_orchestrator", o.name))
  core.write("delete_orchestrator", name)
end

function Client:set_active_stack(name)
  local s = self:get_stack(name)
  core.write("set_active_stack", s.name)
  core.use_stack()
  return self:get_stack(name)
end

function Client:delete_stack(name)
  local s = self:get_stack(name)
  if s.active then
    fail(2, "stack '%s' is the active stack; set another one first ('lupine stack set NAME')",
      name)
  end
  core.write("delete_stack", name)
end

-- ---- checking and copying objects ----

-- Every object the catalog says the store holds, read and checked, and the
-- extracted copies of its files and folders hashed again:
-- { store, checked = n objects, copies = n copies, problems = { { status =
-- "missing" | "corrupt" | "changed", kind = "value" | "visualization" |
-- "copy", hash, size, message, versions = { { id, name, version } },
-- repaired = true | nil, source = store name | nil, why = why not } } },
-- sorted by hash. With opts.repair, a missing or corrupt object is written
-- again from another store holding it intact (source), and a changed copy
-- is removed (the next load extracts it again).
function Client:verify_artifact_store(name, opts)
  opts = opts or {}
  local s = self:artifact_store(name)
  local ok, why = s:reachable()
  if not ok then error(why, 2) end
  local result, by_key, checked = { store = s.name, checked = 0, copies = 0, problems = {} }, {},
    {}
  local function problem(key, status, kind, row, message)
    by_key[key] = { status = status, kind = kind, hash = row.content_hash, size = row.size,
      message = message, versions = {} }
    result.problems[#result.problems + 1] = by_key[key]
  end
  for _, row in ipairs(core.query("objects_in_store", s.id)) do
    local key = row.content_hash
    if not checked[key] then
      checked[key] = true
      result.checked = result.checked + 1
      local status, message = core.check_object(s.id, row.content_hash, row.size)
      if status ~= "ok" then problem(key, status, row.kind, row, message) end
    end
    if (row.data_type == "file" or row.data_type == "dir") and not checked["copy " .. key] then
      checked["copy " .. key] = true
      local status, message = core.check_copy(row.content_hash)
      if status ~= "none" then result.copies = result.copies + 1 end
      if status == "changed" then problem("copy " .. key, "changed", "copy", row, message) end
    end
    for _, k in ipairs { key, "copy " .. key } do
      local p = by_key[k]
      local last = p and p.versions[#p.versions]
      if p and (not last or last.id ~= row.id) then
        p.versions[#p.versions + 1] = { id = row.id, name = row.name, version = row.version }
      end
    end
  end
  if opts.repair then
    local others = {}
    for _, o in ipairs(self:list_artifact_stores()) do
      if o.id ~= s.id and o:reachable() then others[#others + 1] = o end
    end
    for _, p in ipairs(result.problems) do
      if p.kind == "copy" then
        core.discard_copy(p.hash)
        p.repaired = true
      else
        for _, o in ipairs(others) do
          if core.check_object(o.id, p.hash, p.size) == "ok"
            and core.copy_object(o.id, s.id, p.hash, p.size, true)
            and core.check_object(s.id, p.hash, p.size) == "ok" then
            p.repaired, p.source = true, o.name
            break
          end
        end
        if not p.repaired then p.why = "no other artifact store holds it intact" end
      end
    end
  end
  return result
end

-- Copy the objects of the versions in store `from` (all, or those of
-- opts.name / with opts.tag) to store `to`, then re-point the versions in
-- one transaction: until it commits, every version still loads from `from`.
function Client:copy_artifact_store(from, to, opts)
  opts = client.options(opts, { name = "string", tag = "string" }, "copy_artifact_store", 3, 2)
  local a, b = self:artifact_store(from), self:artifact_store(to)
  if a.id == b.id then fail(2, "cannot copy artifact store '%s' onto itself", from) end
  for _, s in ipairs { a, b } do
    local ok, why = s:reachable()
    if not ok then error(why, 2) end
  end
  local versions = core.query("versions_to_copy", a.id, opts.name, opts.tag)
  local uris, objects = {}, 0
  local function copy(hash, size)
    if uris[hash] then return uris[hash] end
    local uri, why = core.copy_object(a.id, b.id, hash, size)
    if not uri then fail(3, "copying %s from '%s' to '%s': %s", hash, from, to, why) end
    uris[hash] = uri
    objects = objects + 1
    return uri
  end
  for _, v in ipairs(versions) do
    copy(v.content_hash, v.size)
    for _, z in ipairs(core.query("visualizations_of", v.id)) do copy(z.content_hash, z.size) end
  end
  core.atomic(function()
    for _, v in ipairs(versions) do core.write("move_version", v.id, b.id, uris[v.content_hash]) end
  end)
  return { versions = #versions, objects = objects }
end

return M
