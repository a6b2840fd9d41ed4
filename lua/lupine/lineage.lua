-- SPDX-License-Identifier: MIT
-- lupine.lineage: where artifact versions came from and where they went,
-- and cleaning up the catalog and the store.
--
-- API (methods on the objects of lupine.client):
--   av:consumers() -> { StepRun, ... }
--       the step runs, in any run, that took av as an input, oldest first
--       (each once, with input_name: the input that took it).
--   client:get_lineage(av [, { direction = "upstream"|"downstream"|"both",
--                              depth = N }]) -> graph
--       av: an ArtifactVersion, a version id (or unique prefix), or an
--       artifact name (its latest version). direction defaults to "both",
--       depth (hops between artifact versions) to unlimited.
--       graph = { root = id, direction = ..., depth = N or nil,
--                 nodes = { node, ... }, edges = { edge, ... } }
--       node  = { kind = "artifact_version", id, label = "name:v2", name, version }
--               (label "name:nightly" for a custom version that is not a number)
--             | { kind = "step_run", id, label = "step (run <run name>)", name,
--                 step_name, status, run_id, run_name }
--       edge  = { from = id, to = id, kind = "input" | "output", name = ... }
--               (input: version -> step run; output: step run -> version)
--   require("lupine.lineage").format(graph [, "text"|"dot"|"mermaid"|"json"]) -> string
--   client:delete_artifact_version(av | id [, { force = false }]) -> deleted version
--   client:delete_artifact_version(name, version [, { force = false }])
--       refuses a version some step run produced or took as input unless
--       force; a bare name is refused (say the version). Deletes the catalog
--       rows only; the step runs' links stay, and show it as deleted.
--   client:delete_artifact(name [, { force = false }]) -> { deleted version, ... }
--   client:delete_pipeline_run(run | name | id [, { force = false }])
--       -> deleted run, { deleted version, ... }: the run, its step runs and
--       the versions they made; refused unless force when a step run of
--       another run used one of those versions.
--   client:prune_artifacts { dry_run = false, versions = nil }
--     -> { versions = { av, ... }, artifacts = { name, ... } }
--   client:gc { dry_run = false, grace = 3600, force = false }
--     -> { objects = n, bytes = n, kept = n, recent = n, skipped = { store names } }

local core = require "lupine.core"
local client_mod = require "lupine.client"
local names = require "lupine.names"
local json = require "lupine.json"

local Client = client_mod.classes.Client
local ArtifactVersion = client_mod.classes.ArtifactVersion
local PipelineRun = client_mod.classes.PipelineRun
local version_of, step_run_of = client_mod.version_of, client_mod.step_run_of
local run_of = client_mod.run_of

local M = {}

local function fail(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

local function one(query, ...)
  return core.query(query, ...)[1]
end

local options = client_mod.options

-- Call a Client method, raising its error (which carries no position) at level.
local function call(level, method, ...)
  local ok, res = pcall(method, ...)
  if not ok then error(res, level + 1) end
  return res
end

local version_label = client_mod.version_label

local function label_of(av)
  return version_label(av.name, av.version)
end

-- ---- consumers ----

function ArtifactVersion:consumers()
  local out, seen = {}, {}
  for _, row in ipairs(core.query("consumers", self.id)) do
    if not seen[row.id] then
      seen[row.id] = true
      out[#out + 1] = step_run_of(row)
    end
  end
  return out
end

-- ---- the lineage graph ----

local directions = { upstream = true, downstream = true, both = true }

-- The version an argument names: an ArtifactVersion, or what
-- get_artifact_version finds for a string.
local function resolve(client, key, fname, level)
  if client_mod.is_version(key) then return key end
  if type(key) ~= "string" then
    fail(level + 1, "bad argument #1 to '%s' (ArtifactVersion or string expected, got %s)",
      fname, type(key))
  end
  return call(level + 1, client.get_artifact_version, client, key)
end

-- Breadth-first from the root version, one direction after the other;
-- neighbours come in the catalog's order (links as recorded, consumers by
-- creation), so the same catalog always gives the same graph.
local function build(root, direction, depth)
  local g = { root = root.id, direction = direction, depth = depth, nodes = {}, edges = {} }
  local nodes, edges, runs = {}, {}, {}

  local function add(node)
    if nodes[node.id] then return false end
    nodes[node.id] = node
    g.nodes[#g.nodes + 1] = node
    return true
  end

  local function link(from, to, kind, name)
    local key = from .. "\0" .. to .. "\0" .. kind .. "\0" .. tostring(name)
    if edges[key] then return end
    edges[key] = true
    g.edges[#g.edges + 1] = { from = from, to = to, kind = kind, name = name }
  end

  -- row: a version, or the tombstone of a deleted one (which has no
  -- producer and no consumers to follow: it ends the walk)
  local function version_node(row)
    return nodes[row.id] or { kind = "artifact_version", id = row.id,
      label = label_of(row) .. (row.deleted and " (deleted)" or ""), name = row.name,
      version = row.version, deleted = row.deleted }
  end

  local function linked_version(id)
    return one("version_by_id", id) or one("deleted_version_by_id", id)
  end

  local function step_node(row)
    if nodes[row.id] then return nodes[row.id] end
    local run_name = runs[row.run_id]
    if not run_name then
      local run = one("run_by_id", row.run_id)
      run_name = run and run.name or row.run_id
      runs[row.run_id] = run_name
    end
    return { kind = "step_run", id = row.id, label = row.name .. " (run " .. run_name .. ")",
      name = row.name, step_name = row.step_name, status = row.status, run_id = row.run_id,
      run_name = run_name }
  end

  -- Upstream of version row: its producer, and the producer's inputs.
  local function up(row, expanded, push)
    local sid = row.producer_step_run_id
    local srow = sid and one("step_run_by_id", sid)
    if not srow then return end
    local links = core.query("step_run_artifacts", sid)
    local output
    for _, l in ipairs(links) do
      if l.kind == "output" and l.artifact_version_id == row.id then output = l.name; break end
    end
    add(step_node(srow))
    link(sid, row.id, "output", output)
    if expanded[sid] then return end
    expanded[sid] = true
    for _, l in ipairs(links) do
      local vrow = l.kind == "input" and linked_version(l.artifact_version_id)
      if vrow then
        add(version_node(vrow))
        link(vrow.id, sid, "input", l.name)
        push(vrow)
      end
    end
  end

  -- Downstream of version row: the step runs that took it, and their outputs.
  local function down(row, expanded, push)
    for _, srow in ipairs(core.query("consumers", row.id)) do
      local sid = srow.id
      add(step_node(srow))
      link(row.id, sid, "input", srow.input_name)
      if not expanded[sid] then
        expanded[sid] = true
        for _, l in ipairs(core.query("step_run_artifacts", sid)) do
          local vrow = l.kind == "output" and linked_version(l.artifact_version_id)
          if vrow then
            add(version_node(vrow))
            link(sid, vrow.id, "output", l.name)
            push(vrow)
          end
        end
      end
    end
  end

  local function walk(expand)
    local queue, head, seen, expanded = { { root, 0 } }, 1, { [root.id] = true }, {}
    while queue[head] do
      local row, level = queue[head][1], queue[head][2]
      head = head + 1
      if depth == nil or level < depth then
        expand(row, expanded, function(v)
          if not seen[v.id] then
            seen[v.id] = true
            queue[#queue + 1] = { v, level + 1 }
          end
        end)
      end
    end
  end

  add(version_node(root))
  if direction ~= "downstream" then walk(up) end
  if direction ~= "upstream" then walk(down) end
  return g
end

function Client:get_lineage(key, opts)
  local av = resolve(self, key, "get_lineage", 2)
  opts = options(opts, { direction = "any", depth = "any" }, "get_lineage", 2, 2)
  local direction = opts.direction or "both"
  if not directions[direction] then
    fail(2, "get_lineage: direction must be 'upstream', 'downstream' or 'both' (got %s)",
      type(direction) == "string" and ("'" .. direction .. "'") or tostring(direction))
  end
  local depth = opts.depth
  if depth == math.huge then depth = nil end
  if depth ~= nil and (math.type(depth) ~= "integer" or depth < 0) then
    fail(2, "get_lineage: depth must be a non-negative integer (got %s)",
      type(depth) == "string" and ("'" .. depth .. "'") or tostring(depth))
  end
  local root = one("version_by_id", av.id)
  if not root then fail(2, "get_lineage: artifact version %s not found", av.id) end
  return build(root, direction, depth)
end

-- ---- formats ----

-- Escapes for each format. Names hold no control characters (lupine.names
-- refuses them), but a catalog written by another tool might: each format
-- still shows them safely.

local function text_escape(s)
  return names.visible(s)
end

local function text_quote(s)
  if s == nil then return "?" end
  return "'" .. text_escape(s:gsub("[\\']", "\\%0")) .. "'"
end

-- Graphviz reads HTML entities ("&amp;", "&#945;") even in plain labels, so '&'
-- is written as "&amp;".
local function dot_string(s)
  s = s:gsub("&", "&amp;"):gsub("[\\\"]", "\\%0"):gsub("%c", function(c)
    return c == "\n" and "\\n" or " "
  end)
  return '"' .. s .. '"'
end

-- Mermaid reads "#<decimal>;" as a character in quoted text; '#', the quote,
-- '<' and '>' (HTML), '&', '\' (its "\n"), '`' (markdown strings) and '|'
-- (edge text) are written that way.
local function mermaid_string(s)
  return '"' .. s:gsub('[#"<>&\\`|%c]', function(c) return "#" .. c:byte() .. ";" end) .. '"'
end

-- A string (or nil) as JSON, as the command line's --json writes values:
-- valid JSON whatever the catalog holds.
local json_string = json.encode

-- Node lookup, and each node's incoming and outgoing edges in graph order.
local function index(g)
  local byid, ins, outs = {}, {}, {}
  for _, n in ipairs(g.nodes) do byid[n.id], ins[n.id], outs[n.id] = n, {}, {} end
  for _, e in ipairs(g.edges) do
    if ins[e.to] and outs[e.from] then
      ins[e.to][#ins[e.to] + 1] = e
      outs[e.from][#outs[e.from] + 1] = e
    end
  end
  return byid, ins, outs
end

local function step_text(n)
  return text_escape(n.label) .. " [" .. text_escape(n.status or "?") .. "]"
end

-- An indented tree from the root: upstream first (what it was made from),
-- then downstream (what was made from it). A node reached again is marked
-- "(see above)" and not expanded again.
local function text(g)
  local byid, ins, outs = index(g)
  local root = byid[g.root]
  if not root then error("format: the graph has no root node", 3) end
  local lines = { text_escape(root.label) }
  local function add(depth, s) lines[#lines + 1] = string.rep("  ", depth) .. s end

  -- One walk serves both directions: links[id] are the links to follow from
  -- a node, `far` the field of a link that leads on.
  local function walker(links, far, verb, kind)
    local seen = {}
    local function go(id, depth)
      for _, e in ipairs(links[id]) do
        local step = byid[e[far]]
        local line = verb .. " by " .. step_text(step) .. " as " .. text_quote(e.name)
        if seen[step.id] then
          add(depth, line .. " (see above)")
        else
          seen[step.id] = true
          add(depth, line)
          for _, l in ipairs(links[step.id]) do
            local av = byid[l[far]]
            local item = kind .. " " .. text_quote(l.name) .. ": " .. text_escape(av.label)
            if seen[av.id] then
              add(depth + 1, item .. " (see above)")
            else
              seen[av.id] = true
              add(depth + 1, item)
              go(av.id, depth + 2)
            end
          end
        end
      end
    end
    return go
  end
  local up = walker(ins, "from", "produced", "input")
  local down = walker(outs, "to", "consumed", "output")

  if g.direction ~= "downstream" then up(root.id, 1) end
  if g.direction ~= "upstream" then down(root.id, 1) end
  return table.concat(lines, "\n") .. "\n"
end

-- Graphviz: versions are boxes, step runs ellipses (red when failed), the
-- root drawn bold; edges are labelled with the input or output name.
local function dot(g)
  local out = { "digraph lineage {", "  rankdir=LR;", "  node [shape=box];" }
  for _, n in ipairs(g.nodes) do
    local attrs
    if n.kind == "step_run" then
      attrs = "label=" .. dot_string(n.label .. "\n[" .. (n.status or "?") .. "]")
        .. ", shape=ellipse" .. (n.status == "failed" and ", color=red" or "")
    else
      attrs = "label=" .. dot_string(n.label) .. (n.deleted and ", color=gray, style=dashed" or "")
    end
    if n.id == g.root then attrs = attrs .. ", style=bold" end
    out[#out + 1] = "  " .. dot_string(n.id) .. " [" .. attrs .. "];"
  end
  for _, e in ipairs(g.edges) do
    out[#out + 1] = "  " .. dot_string(e.from) .. " -> " .. dot_string(e.to)
      .. (e.name and (" [label=" .. dot_string(e.name) .. "]") or "") .. ";"
  end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

-- Mermaid flowchart: nodes n1, n2, ... in graph order; versions are
-- rectangles, step runs stadiums.
local function mermaid(g)
  local out, ids = { "flowchart LR" }, {}
  for i, n in ipairs(g.nodes) do
    ids[n.id] = "n" .. i
    if n.kind == "step_run" then
      out[#out + 1] = "  n" .. i .. "([" .. mermaid_string(n.label .. " [" .. (n.status or "?")
        .. "]") .. "])"
    else
      out[#out + 1] = "  n" .. i .. "[" .. mermaid_string(n.label) .. "]"
    end
  end
  for _, e in ipairs(g.edges) do
    if ids[e.from] and ids[e.to] then
      out[#out + 1] = "  " .. ids[e.from] .. " -->"
        .. (e.name and ("|" .. mermaid_string(e.name) .. "|") or "") .. " " .. ids[e.to]
    end
  end
  return table.concat(out, "\n") .. "\n"
end

local node_fields = {
  artifact_version = { "kind", "id", "label", "name", "version", "deleted" },
  step_run = { "kind", "id", "label", "name", "step_name", "status", "run_id", "run_name" },
}
local edge_fields = { "from", "to", "kind", "name" }

local function json_object(t, fields)
  local parts = {}
  for i, f in ipairs(fields) do parts[i] = json_string(f) .. ": " .. json_string(t[f]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- One object per line, fields in a fixed order (lua/README.md, "Lineage and
-- clean-up", gives the shape).
local function json(g)
  local out = { "{",
    '  "root": ' .. json_string(g.root) .. ",",
    '  "direction": ' .. json_string(g.direction) .. ",",
    '  "depth": ' .. (g.depth and string.format("%d", g.depth) or "null") .. "," }
  local function list(name, items, fields_of, last)
    if #items == 0 then
      out[#out + 1] = '  "' .. name .. '": []' .. (last and "" or ",")
      return
    end
    out[#out + 1] = '  "' .. name .. '": ['
    for i, item in ipairs(items) do
      out[#out + 1] = "    " .. json_object(item, fields_of(item)) .. (i < #items and "," or "")
    end
    out[#out + 1] = "  ]" .. (last and "" or ",")
  end
  list("nodes", g.nodes, function(n) return node_fields[n.kind] or { "kind", "id", "label" } end)
  list("edges", g.edges, function() return edge_fields end, true)
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

local formats = { text = text, dot = dot, mermaid = mermaid, json = json }

function M.format(g, fmt)
  if type(g) ~= "table" or type(g.nodes) ~= "table" or type(g.edges) ~= "table" then
    fail(2, "bad argument #1 to 'format' (lineage graph expected, got %s)", type(g))
  end
  fmt = fmt or "text"
  local f = formats[fmt]
  if not f then
    fail(2, "format: unknown format '%s' (one of: dot, json, mermaid, text)", tostring(fmt))
  end
  return f(g)
end

-- ---- deleting and pruning ----

local function looks_like_id(s)
  return #s >= 4 and #s <= 36 and s:find("^[0-9a-f%-]+$") ~= nil
end

-- The version row to delete: an ArtifactVersion, an id or unique id prefix,
-- or an artifact name with a version. A bare name is refused rather than
-- taken as "latest".
local function version_to_delete(client, key, version, level)
  local fname = "delete_artifact_version"
  if client_mod.is_version(key) then
    local row = one("version_by_id", key.id)
    if not row then fail(level + 1, "%s: artifact version %s not found", fname, key.id) end
    return row
  end
  if type(key) ~= "string" then
    fail(level + 1, "bad argument #1 to '%s' (ArtifactVersion or string expected, got %s)",
      fname, type(key))
  end
  if version ~= nil then
    if type(version) ~= "string" and math.type(version) ~= "integer" then
      fail(level + 1, "bad argument #2 to '%s' (string or integer expected, got %s)", fname,
        type(version))
    end
    return call(level + 1, client.get_artifact_version, client, key, version)
  end
  local row = one("version_by_id", key)
  if row then return row end
  if looks_like_id(key) then
    local rows = core.query("versions_by_id_prefix", key)
    if #rows == 1 then return rows[1] end
    if #rows > 1 then
      -- get_artifact_version says which ids it matches
      return call(level + 1, client.get_artifact_version, client, key)
    end
  end
  if one("artifact_by_name", key) then
    fail(level + 1, "%s: '%s' is an artifact name; say which version to delete "
      .. "(delete_artifact_version('%s', '<version>'))", fname, key, key)
  end
  fail(level + 1, "%s: artifact version '%s' not found", fname, key)
end

-- How step runs used a version (rows of version_uses or
-- uses_of_run_versions, outputs first): the first output and the first
-- input named, then how many more.
local function uses_text(uses)
  local shown, output, input = {}, nil, nil
  for _, u in ipairs(uses) do
    if u.kind == "output" then output = output or u else input = input or u end
  end
  for _, u in ipairs { output or false, input or false } do
    if u then
      shown[#shown + 1] = string.format("%s '%s' of step run '%s' (run '%s')", u.kind, u.name,
        u.step, u.run)
    end
  end
  local more = #uses - #shown
  if more > 0 then return table.concat(shown, ", ") .. string.format(" and %d more", more) end
  return table.concat(shown, " and ")
end

-- Run fn in one transaction; its error is raised at level without a
-- position of ours (fn raises its messages at level 0).
local function atomically(level, fn)
  local res = table.pack(pcall(core.atomic, fn))
  if not res[1] then error(res[2], level + 1) end
  return table.unpack(res, 2, res.n)
end

-- delete_artifact_version(av | id [, opts]) | (name, version [, opts])
function Client:delete_artifact_version(key, version, opts)
  if type(version) == "table" and opts == nil then version, opts = nil, version end
  opts = options(opts, { force = "boolean" }, "delete_artifact_version", version and 3 or 2, 2)
  local target = version_to_delete(self, key, version, 2)
  return version_of(atomically(2, function()
    local row = one("version_by_id", target.id)
    if not row then
      error(string.format("delete_artifact_version: artifact version %s not found", target.id), 0)
    end
    local uses = not opts.force and core.query("version_uses", row.id) or {}
    if uses[1] then
      error(string.format("delete_artifact_version: artifact version %s (%s) is %s; pass "
        .. "{ force = true } to delete it anyway", label_of(row), row.id, uses_text(uses)), 0)
    end
    core.write("delete_version", row.id)
    return row
  end))
end

-- delete_artifact(name [, { force }]): the artifact and every version of it.
function Client:delete_artifact(name, opts)
  if type(name) ~= "string" then
    fail(2, "bad argument #1 to 'delete_artifact' (string expected, got %s)", type(name))
  end
  opts = options(opts, { force = "boolean" }, "delete_artifact", 2, 2)
  local versions = atomically(2, function()
    local artifact = one("artifact_by_name", name)
    if not artifact then
      local candidates = {}
      for i, r in ipairs(core.query("artifact_names")) do candidates[i] = r.name end
      error(string.format("delete_artifact: artifact '%s' not found%s", name,
        names.suggest(name, candidates)), 0)
    end
    local versions = core.query("versions_of_artifact", artifact.id)
    if not opts.force then
      local used, first = 0, nil
      for _, v in ipairs(versions) do
        local uses = core.query("version_uses", v.id)
        if uses[1] then
          used = used + 1
          first = first or string.format("%s (%s) is %s", label_of(v), v.id, uses_text(uses))
        end
      end
      if first then
        error(string.format("delete_artifact: artifact '%s' has %d %s that step runs produced "
          .. "or used: %s; pass { force = true } to delete it anyway", name, used,
          used == 1 and "version" or "versions", first), 0)
      end
    end
    for _, v in ipairs(versions) do core.write("delete_version", v.id) end
    core.write("delete_empty_artifact", artifact.id)
    return versions
  end)
  for _, v in ipairs(versions) do version_of(v) end
  return versions
end

-- delete_pipeline_run(run | name | id [, { force }]): the run with its step
-- runs, their links and metadata, and the versions they made. The versions
-- it took from other runs stay. Links to its versions from step runs of
-- other runs (an input, or a cache hit's output) are why force is needed;
-- they stay, showing those versions as deleted.
function Client:delete_pipeline_run(key, opts)
  if type(key) ~= "string" and getmetatable(key) ~= PipelineRun then
    fail(2, "bad argument #1 to 'delete_pipeline_run' (PipelineRun or string expected, got %s)",
      type(key))
  end
  opts = options(opts, { force = "boolean" }, "delete_pipeline_run", 2, 2)
  local id = getmetatable(key) == PipelineRun and key.id
    or call(2, self.get_pipeline_run, self, key).id
  local run, versions = atomically(2, function()
    local row = one("run_by_id", id)
    if not row then
      error(string.format("delete_pipeline_run: pipeline run %s not found", id), 0)
    end
    if row.status == "running" then
      error(string.format("delete_pipeline_run: run '%s' is still running", row.name), 0)
    end
    local uses = not opts.force and core.query("uses_of_run_versions", id) or {}
    if uses[1] then
      local u, versions = uses[1], {}
      local mine = {}
      for _, x in ipairs(uses) do
        if x.id == u.id then mine[#mine + 1] = x else versions[x.id] = true end
      end
      local others = 0
      for _ in pairs(versions) do others = others + 1 end
      error(string.format("delete_pipeline_run: run '%s' made artifact version %s (%s), which "
        .. "is %s%s; pass { force = true } to delete it anyway", row.name,
        version_label(u.artifact, u.version), u.id, uses_text(mine),
        others > 0 and string.format(" (and %d more of its versions are used by other runs)",
          others) or ""), 0)
    end
    local made = core.query("versions_of_run", id)
    core.write("delete_run_links", id)
    for _, v in ipairs(made) do core.write("delete_version", v.id) end
    core.write("delete_run", id)
    return row, made
  end)
  for _, v in ipairs(versions) do version_of(v) end
  return run_of(run), versions
end

-- What prune would delete, read in the caller's transaction when there is
-- one; only (a set of version ids, or nil for all) limits the versions.
local function prunable(only)
  local versions, artifacts, ids, left = {}, {}, {}, {}
  for _, v in ipairs(core.query("prunable_versions")) do
    if not only or only[v.id] then versions[#versions + 1] = version_of(v)
    else left[v.name] = true end   -- its artifact keeps a version
  end
  for _, row in ipairs(core.query("prunable_artifacts")) do
    if not left[row.name] then artifacts[#artifacts + 1], ids[#ids + 1] = row.name, row.id end
  end
  return versions, artifacts, ids
end

-- prune_artifacts { dry_run, versions = { av | id, ... } }: versions limits
-- the deletion to those listed (a plan a person agreed to: a version saved
-- since is not in it).
function Client:prune_artifacts(opts)
  opts = options(opts, { dry_run = "boolean", versions = "table" }, "prune_artifacts", 1, 2)
  local only
  if opts.versions then
    only = {}
    for i, v in ipairs(opts.versions) do
      local id = getmetatable(v) == ArtifactVersion and v.id or v
      if type(id) ~= "string" then
        fail(2, "prune_artifacts: versions[%d] is not an ArtifactVersion or a version id", i)
      end
      only[id] = true
    end
  end
  local versions, artifacts
  if opts.dry_run then
    versions, artifacts = prunable(only)
  else
    versions, artifacts = core.atomic(function()
      local v, a, ids = prunable(only)
      for _, row in ipairs(v) do core.write("delete_version", row.id) end
      for _, id in ipairs(ids) do core.write("delete_empty_artifact", id) end
      return v, a
    end)
  end
  return { versions = versions, artifacts = artifacts }
end

-- An object written within this many seconds is never removed by gc: it
-- may be one a writer is about to record, or the catalog may not be the
-- one its store belongs to.
local GC_GRACE = 3600

-- gc { dry_run, store = name, grace = seconds, force }: every artifact
-- store, or the one named; stores that cannot be read are left alone and
-- listed in `skipped`. A refusal (the catalog records no version) raises.
function Client:gc(opts)
  opts = options(opts, { dry_run = "boolean", store = "string", grace = "number",
    force = "boolean" }, "gc", 1, 2)
  local grace = opts.grace or GC_GRACE
  if not (grace >= 0) then
    fail(2, "gc: option 'grace' must be a number of seconds, at least 0 (got %s)",
      grace ~= grace and "nan" or grace)
  end
  local stores = opts.store and { self:artifact_store(opts.store) } or self:list_artifact_stores()
  local total = { objects = 0, bytes = 0, kept = 0, recent = 0, skipped = {} }
  for _, store in ipairs(stores) do
    local ok, objects, bytes, kept, recent = pcall(core.gc, opts.dry_run == true, store.id,
      grace, opts.force == true)
    if ok and objects == nil then
      error(bytes, 2)
    elseif ok then
      total.objects, total.bytes = total.objects + objects, total.bytes + bytes
      total.kept, total.recent = total.kept + kept, total.recent + recent
    elseif opts.store then
      error(objects, 2)
    else
      total.skipped[#total.skipped + 1] = store.name
    end
  end
  -- the extracted copies of files and folders: in the catalog folder, for every store
  total.copies, total.copy_bytes = core.gc_copies(opts.dry_run == true)
  return total
end

return M
