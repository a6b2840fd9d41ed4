-- SPDX-License-Identifier: MIT
-- lupine.ui: the pages and the JSON API of `lupine ui` (runtime/ui.c serves
-- them over HTTP; everything here runs in the runtime's one Lua state).
--
-- handler(config) returns handle(method, path, args, headers) -> status,
-- content type, body, headers. args maps each query key to the list of its
-- values. The dashboard is read-only: only GET and HEAD are answered (405
-- for the rest), unknown paths are 404 (nothing is ever read from the
-- file system), and a malformed query is 400.
--
-- Pages are plain HTML with no script at all: a page that shows a run
-- still going refreshes itself (meta refresh). Every string taken from the
-- catalog goes through esc() (lupine.viz); visualizations are shown as
-- viz.fragment shows them (user HTML in a sandboxed frame, SVG as images).

local core = require "lupine.core"
local lupine = require "lupine"
local client_mod = require "lupine.client"
local query = require "lupine.query"
local lineage = require "lupine.lineage"
local viz = require "lupine.viz"
local cli = require "lupine.cli"   -- the JSON encoder and the records' JSON shapes

local M = {}

local esc = viz.esc
local json = cli.json
local null = json.null

M.REFRESH_SECONDS = 2      -- how often a page showing a running run reloads
M.LINEAGE_DEPTH = 3        -- the version page's lineage graph, by default
M.PAGE_SIZE = 50

local CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
  .. "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

local function headers_for(extra)
  local h = { ["Content-Security-Policy"] = CSP, ["X-Content-Type-Options"] = "nosniff",
    ["Referrer-Policy"] = "no-referrer", ["Cache-Control"] = "no-store",
    ["X-Frame-Options"] = "DENY" }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- ---- errors ----

local HttpError = { __name = "lupine.ui.HttpError" }
HttpError.__tostring = function(e) return e.message end

local function http_error(status, fmt, ...)
  error(setmetatable({ status = status, message = string.format(fmt, ...) }, HttpError), 0)
end

-- A message raised by the Client, without its "file:line: " prefix.
local function clean(msg)
  return (tostring(msg):gsub("^[^\n:]+%.lua:%d+: ", "", 1))
end

-- Call f(...); an error it raises becomes an HTTP error with status.
local function attempt(status, f, ...)
  local ok, a, b = pcall(f, ...)
  if not ok then
    if getmetatable(a) == HttpError then error(a, 0) end
    http_error(status, "%s", clean(a))
  end
  return a, b
end

-- ---- times and sizes ----

local duration_ms = cli.duration_ms

local function human_ms(ms)
  if not ms then return "" end
  if ms < 1000 then return string.format("%.1f ms", ms) end
  if ms < 60000 then return string.format("%.2f s", ms / 1000) end
  local s = math.floor(ms / 1000 + 0.5)
  if s < 3600 then return string.format("%d min %d s", s // 60, s % 60) end
  return string.format("%d h %d min", s // 3600, s % 3600 // 60)
end

local function human_time(t)
  if type(t) ~= "string" then return "" end
  return (t:gsub("^(%d+%-%d+%-%d+)T(%d+:%d+:%d+).*$", "%1 %2 UTC"))
end

-- ---- HTML pieces ----

local function url_part(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function href(path, params)
  local q = {}
  for _, kv in ipairs(params or {}) do
    if kv[2] ~= nil and kv[2] ~= "" then q[#q + 1] = url_part(kv[1]) .. "=" .. url_part(kv[2]) end
  end
  return esc(path .. (#q > 0 and ("?" .. table.concat(q, "&")) or ""))
end

-- The filter value that matches name exactly (a name such as "team:a"
-- would read as an operator and its operand).
local function exactly(name)
  if name and name:find("^%w+:[^:]") then return "equals:" .. name end
  return name
end

local function link(path, text, params)
  return '<a href="' .. href(path, params) .. '">' .. esc(text) .. "</a>"
end

local function status_badge(s)
  return '<span class="status s-' .. esc(s or "unknown") .. '">' .. esc(s or "?") .. "</span>"
end

local function tags_html(tags)
  if not tags or #tags == 0 then return '<span class="note">none</span>' end
  local out = {}
  for i, t in ipairs(tags) do out[i] = '<span class="tag">' .. esc(t) .. "</span>" end
  return table.concat(out)
end

local sorted_keys = query.sorted_keys

local function value_json(v)
  if v == nil then return "null" end
  return json.encode(v)
end

local function fields_html(list)
  local out = { '<dl class="fields">' }
  for _, f in ipairs(list) do
    if f[2] ~= nil then
      out[#out + 1] = "<dt>" .. esc(f[1]) .. "</dt><dd>" .. (f.raw and f[2] or esc(f[2])) .. "</dd>"
    end
  end
  out[#out + 1] = "</dl>"
  return table.concat(out)
end

local function table_html(head, rows)
  if #rows == 0 then return '<p class="note">none</p>' end
  local out = { "<table><thead><tr>" }
  for _, h in ipairs(head) do out[#out + 1] = "<th>" .. esc(h) .. "</th>" end
  out[#out + 1] = "</tr></thead><tbody>"
  for _, r in ipairs(rows) do
    out[#out + 1] = "<tr>"
    for i = 1, #head do out[#out + 1] = "<td>" .. (r[i] or "") .. "</td>" end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out)
end

local function page(title, body, refresh)
  local head = refresh and string.format('<meta http-equiv="refresh" content="%d">\n', refresh) or nil
  return viz.page(title .. " · lupine", '<header><a class="brand" href="/">lupine</a>'
    .. '<a href="/">Runs</a><a href="/artifacts">Artifacts</a><a href="/api">API</a></header>\n'
    .. "<main>\n" .. body .. "\n</main>", head)
end

local function pager(path, params, list)
  if (list.total_pages or 1) <= 1 then
    return string.format('<p class="note">%d in all</p>', list.total or #list)
  end
  local out = { string.format('<p class="note">page %d of %d (%d in all) ', list.page,
    list.total_pages, list.total) }
  local function at(p, text)
    local ps = {}
    for i, kv in ipairs(params) do ps[i] = kv end
    ps[#ps + 1] = { "page", tostring(p) }
    out[#out + 1] = link(path, text, ps) .. " "
  end
  if list.page > 1 then at(list.page - 1, "← newer") end
  if list.page < list.total_pages then at(list.page + 1, "older →") end
  out[#out + 1] = "</p>"
  return table.concat(out)
end

-- ---- graphs (SVG) ----

local NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 210, 60, 64, 18, 14

local STATUS_COLORS = {
  completed = { "#e8f5e9", "#2e7d32" }, cached = { "#e3f2fd", "#1565c0" },
  failed = { "#ffebee", "#c62828" }, running = { "#fff3e0", "#ef8f00" },
  skipped = { "#f5f5f5", "#9e9e9e" }, stopped = { "#efebe9", "#6d4c41" },
  version = { "#ede7f6", "#5e35b1" },
}

-- The layer of each node: the longest path to it from a node with no
-- inputs, so every edge goes left to right. Nodes keep their order within
-- a layer.
local function layers(nodes, edges)
  local index, preds = {}, {}
  for i, n in ipairs(nodes) do index[n.id], preds[i] = i, {} end
  for _, e in ipairs(edges) do
    local a, b = index[e.from], index[e.to]
    if a and b and a ~= b then preds[b][#preds[b] + 1] = a end
  end
  local layer, busy = {}, {}
  local function depth(i)
    if layer[i] then return layer[i] end
    if busy[i] then return 0 end   -- a cycle: a catalog edited by hand
    busy[i] = true
    local d = 0
    for _, p in ipairs(preds[i]) do d = math.max(d, depth(p) + 1) end
    busy[i] = nil
    layer[i] = d
    return d
  end
  for i = 1, #nodes do depth(i) end
  return layer, index
end
M.layers = layers

-- An SVG drawing of a graph, layered left to right. nodes: { id, lines =
-- { bold first line, ... }, colors = { fill, stroke }, href, title, round,
-- bold }; edges: { from, to, label }. Every text is escaped.
local function graph_svg(gid, nodes, edges)
  if #nodes == 0 then return '<p class="note">nothing to draw</p>' end
  local layer, index = layers(nodes, edges)
  local cols, pos, maxcol, maxrow = {}, {}, 0, 0
  for i = 1, #nodes do
    local l = layer[i]
    cols[l] = (cols[l] or 0) + 1
    pos[i] = { l, cols[l] - 1 }
    maxcol, maxrow = math.max(maxcol, l), math.max(maxrow, cols[l])
  end
  local w = PAD * 2 + (maxcol + 1) * NODE_W + maxcol * COL_GAP
  local h = PAD * 2 + maxrow * NODE_H + (maxrow - 1) * ROW_GAP
  local function xy(i) return PAD + pos[i][1] * (NODE_W + COL_GAP), PAD + pos[i][2] * (NODE_H + ROW_GAP) end
  local out = { string.format('<svg xmlns="http://www.w3.org/2000/svg" class="graph-svg" width="%d" '
    .. 'height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">', w, h, w, h),
    string.format('<defs><marker id="%s-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
      .. 'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#777"/>'
      .. "</marker></defs>", gid) }
  for _, e in ipairs(edges) do
    local a, b = index[e.from], index[e.to]
    if a and b and a ~= b then
      local x1, y1 = xy(a)
      local x2, y2 = xy(b)
      x1, y1, y2 = x1 + NODE_W, y1 + NODE_H / 2, y2 + NODE_H / 2
      local bend = math.max(24, (x2 - x1) / 2)
      out[#out + 1] = string.format('<path class="edge" d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" '
        .. 'stroke="#777" stroke-width="1.5" marker-end="url(#%s-arrow)"><title>%s</title></path>',
        x1, y1, x1 + bend, y1, x2 - bend, y2, x2, y2, gid, esc(e.label or ""))
    end
  end
  for i, n in ipairs(nodes) do
    local x, y = xy(i)
    local fill, stroke = n.colors[1], n.colors[2]
    local g = { string.format('<g class="node" data-id="%s">', esc(n.id)) }
    if n.href then g[1] = g[1] .. '<a href="' .. esc(n.href) .. '">' end
    g[#g + 1] = "<title>" .. esc(n.title or n.lines[1]) .. "</title>"
    g[#g + 1] = string.format('<rect x="%d" y="%d" width="%d" height="%d" rx="%d" fill="%s" stroke="%s" '
      .. 'stroke-width="%s"/>', x, y, NODE_W, NODE_H, n.round and 14 or 3, fill, stroke, n.bold and "3" or "1.5")
    for k, line in ipairs(n.lines) do
      if k > 3 then break end
      g[#g + 1] = string.format('<text x="%d" y="%d"%s>%s</text>', x + 12, y + 6 + 16 * k,
        k == 1 and ' font-weight="bold" font-size="13"' or ' fill="#333"', esc(viz.shorten(line, 28)))
    end
    if n.href then g[#g + 1] = "</a>" end
    g[#g + 1] = "</g>"
    out[#out + 1] = table.concat(g)
  end
  out[#out + 1] = "</svg>"
  return '<div class="graph">' .. table.concat(out, "\n") .. "</div>"
end

-- ---- reading the catalog ----

local client = nil   -- made per request (objects are snapshots)

-- A version a step run links to; one deleted since has its tombstone's
-- name and version, and deleted (when).
local function version_ref(id)
  local row = core.query("version_by_id", id)[1] or client_mod.deleted_version(id)
  if not row then return { id = id, name = "?", version = "?" } end
  return { id = row.id, name = row.name, version = row.version, deleted = row.deleted }
end

-- A link to a version's page; a deleted version has none.
local function version_link(v)
  local text = v.name .. ":" .. v.version
  if v.deleted then return esc(text) .. ' <span class="note">(deleted)</span>' end
  return link("/versions/" .. v.id, text)
end

-- A step run from its catalog row, with its links
-- ({ kind, name, version = { id, name, version } }); kind is "input",
-- "output" (the step's own) or "manual" (an output it saved by hand).
local function step_with_links(row)
  local sr = client_mod.step_run_of(row)
  sr.links = {}
  for _, l in ipairs(core.query("step_run_artifacts", sr.id)) do
    local kind = l.kind == "output" and l.save_type ~= "step_output" and "manual" or l.kind
    sr.links[#sr.links + 1] = { kind = kind, name = l.name, version = version_ref(l.artifact_version_id) }
  end
  return sr
end

-- The step runs of a run in the order they ran, each with its links.
local function steps_of(run)
  local list = {}
  for i, row in ipairs(core.query("step_runs_of_run", run.id)) do list[i] = step_with_links(row) end
  return list
end

-- The edges between the steps of one run: an output of one step that is
-- an input of another.
local function step_edges(steps)
  local producer, edges = {}, {}
  for _, s in ipairs(steps) do
    for _, l in ipairs(s.links) do
      if l.kind ~= "input" then producer[l.version.id] = s end
    end
  end
  for _, s in ipairs(steps) do
    for _, l in ipairs(s.links) do
      local p = l.kind == "input" and producer[l.version.id]
      if p and p ~= s then
        edges[#edges + 1] = { from = p.id, to = s.id, label = l.name .. " (" .. l.version.name
          .. ":" .. l.version.version .. ")", name = l.name, version = l.version.id }
      end
    end
  end
  return edges
end

local function cache_state(sr)
  if sr.status == "cached" then return "hit" end
  if sr.cache_note then return "miss" end
  return nil
end

local function first_line(s)
  return s and (s:match("^[^\n]*")) or nil
end

local function get_run(key)
  if not key:find("^[%x%-]+$") then http_error(404, "pipeline run '%s' not found", key) end
  return attempt(404, client.get_pipeline_run, client, key)
end

local function get_step(key)
  local row = key:find("^[%x%-]+$") and core.query("step_run_by_id", key)[1]
  if not row then http_error(404, "step run '%s' not found", key) end
  return step_with_links(row)
end

local function get_version(key)
  if not key:find("^[%x%-]+$") then http_error(404, "artifact version '%s' not found", key) end
  return attempt(404, client.get_artifact_version, client, key)
end

-- ---- JSON shapes ----

local function opt(v) if v == nil then return null end return v end

local function run_json(run)
  return json.object { id = run.id, name = run.name, pipeline = run.pipeline_name,
    status = run.status, start_time = run.start_time, end_time = opt(run.end_time),
    duration_ms = opt(duration_ms(run.start_time, run.end_time, run.status == "running")),
    tags = json.array(run.tags) }
end

local function viz_list_json(av)
  local list = {}
  for i, v in ipairs(av.visualizations) do
    list[i] = json.object { position = v.position, type = v.type, hash = v.hash, size = v.size,
      uri = v.uri, href = "/api/versions/" .. av.id .. "/visualizations/" .. v.position }
  end
  return json.array(list)
end

local function version_json(av, full)
  local o = cli.version_json(av)
  if full then
    o.run_metadata = json.object(av.run_metadata)
    o.visualizations = viz_list_json(av)
    local consumers = {}
    for i, sr in ipairs(av:consumers()) do
      consumers[i] = json.object { step_run_id = sr.id, step = sr.name, input = sr.input_name,
        run_id = sr.run_id, run = sr.pipeline_run.name, status = sr.status }
    end
    o.consumers = json.array(consumers)
  end
  return o
end

local function links_json(sr, kind)
  local o = {}
  for _, l in ipairs(sr.links) do
    if l.kind == kind then o[l.name] = cli.link_json(l.version) end
  end
  return json.object(o)
end

local function step_json(sr, layer)
  return json.object { id = sr.id, name = sr.name, step_name = sr.step_name, status = sr.status,
    start_time = sr.start_time, end_time = opt(sr.end_time),
    duration_ms = opt(duration_ms(sr.start_time, sr.end_time, sr.status == "running")),
    cache = json.object { state = opt(cache_state(sr)), key = opt(sr.cache_key),
      note = opt(sr.cache_note), cached_from = opt(sr.cached_from) },
    attempts = opt(sr.attempts), seed = opt(sr.seed), inputs = links_json(sr, "input"),
    outputs = links_json(sr, "output"), manual_outputs = links_json(sr, "manual"),
    parameters = json.object(sr.parameters),
    error = opt(sr.error), traceback = opt(sr.traceback), layer = opt(layer) }
end

-- ---- query arguments ----

-- The single value of each allowed key in args (a 400 for anything else).
local function params(args, allowed)
  local out, ok = {}, {}
  for _, k in ipairs(allowed) do ok[k] = true end
  for k, list in pairs(args) do
    if not ok[k] then
      http_error(400, "unknown query parameter '%s'%s", k, #allowed > 0
        and (" (allowed: " .. table.concat(allowed, ", ") .. ")") or " (this path takes none)")
    end
    if #list > 1 then http_error(400, "query parameter '%s' is given %d times", k, #list) end
    if list[1] ~= "" then out[k] = list[1] end
  end
  return out
end

local function int_param(p, k, min, max)
  local v = p[k]
  if v == nil then return nil end
  local n = v:find("^%d+$") and #v <= 9 and math.tointeger(tonumber(v))
  if not n or n < min or n > max then
    http_error(400, "query parameter '%s' must be an integer from %d to %d (got '%s')", k, min,
      max, v)
  end
  return n
end

local function paging(p)
  return int_param(p, "page", 1, 1000000) or 1, int_param(p, "size", 1, query.MAX_SIZE) or M.PAGE_SIZE
end

local RUN_STATUSES = { running = true, completed = true, failed = true, stopped = true }

local function list_runs(p)
  if p.status and not RUN_STATUSES[p.status] then
    http_error(400, "query parameter 'status' must be running, completed, failed or stopped (got '%s')",
      p.status)
  end
  local page_n, size = paging(p)
  return attempt(400, client.list_pipeline_runs, client, { pipeline_name = p.pipeline,
    status = p.status, tag = p.tag, page = page_n, size = size })
end

local TYPES = {}
for _, t in pairs(lupine.ArtifactType) do TYPES[#TYPES + 1] = t end
table.sort(TYPES)

local function list_versions(p)
  local known = p.type == nil
  for _, t in ipairs(TYPES) do known = known or t == p.type end
  if not known then
    http_error(400, "query parameter 'type' must be one of %s (got '%s')", table.concat(TYPES, ", "),
      p.type)
  end
  local page_n, size = paging(p)
  return attempt(400, client.list_artifact_versions, client, { name = p.name, tag = p.tag,
    artifact_type = p.type, page = page_n, size = size, sort_by = "desc:created" })
end

local paged_json = cli.paged_json

-- ---- the JSON API ----

local api = {}

api.index = function()
  return json.object { paths = json.array {
    "/api/pipelines?name=&page=&size=",
    "/api/runs?pipeline=&status=&tag=&page=&size=",
    "/api/runs/{run id}",
    "/api/steps/{step run id}",
    "/api/artifacts?name=&tag=&page=&size=",
    "/api/versions?name=&tag=&type=&page=&size=",
    "/api/versions/{version id}",
    "/api/versions/{version id}/lineage?direction=&depth=",
    "/api/versions/{version id}/visualizations/{position}",
  } }
end

api.pipelines = function(args)
  local p = params(args, { "name", "page", "size" })
  local page_n, size = paging(p)
  local list = attempt(400, client.list_pipelines, client, { name = p.name, page = page_n, size = size })
  return paged_json(list, cli.pipeline_json)
end

api.runs = function(args)
  local list = list_runs(params(args, { "pipeline", "status", "tag", "page", "size" }))
  return paged_json(list, run_json)
end

-- A run with its steps and its graph (nodes in the order the steps ran,
-- with their layer: 0 for steps with no input from another step).
local function run_detail(run)
  local steps = steps_of(run)
  local edges = step_edges(steps)
  local layer = layers(steps, edges)
  return steps, edges, layer
end

api.run = function(args, id)
  params(args, {})
  local run = get_run(id)
  local steps, edges, layer = run_detail(run)
  local o = run_json(run)
  o.error = opt(run.error)
  o.run_metadata = json.object(run.run_metadata)
  local list, es = {}, {}
  for i, sr in ipairs(steps) do list[i] = step_json(sr, layer[i]) end
  for i, e in ipairs(edges) do
    es[i] = json.object { from = e.from, to = e.to, name = e.name, version_id = e.version }
  end
  o.steps = json.array(list)
  o.edges = json.array(es)
  return o
end

api.step = function(args, id)
  params(args, {})
  local sr = get_step(id)
  local o = step_json(sr)
  o.run_id = sr.run_id
  o.run = sr.pipeline_run.name
  o.logs = opt(sr.logs)
  o.run_metadata = json.object(sr.run_metadata)
  return o
end

api.artifacts = function(args)
  local p = params(args, { "name", "tag", "page", "size" })
  local page_n, size = paging(p)
  local list = attempt(400, client.list_artifacts, client, { name = p.name, tag = p.tag,
    page = page_n, size = size })
  return paged_json(list, cli.artifact_json)
end

api.versions = function(args)
  local list = list_versions(params(args, { "name", "tag", "type", "page", "size" }))
  return paged_json(list, version_json)
end

api.version = function(args, id)
  params(args, {})
  return version_json(get_version(id), true)
end

local DIRECTIONS = { upstream = true, downstream = true, both = true }

local function lineage_of(av, p, default_depth)
  if p.direction and not DIRECTIONS[p.direction] then
    http_error(400, "query parameter 'direction' must be upstream, downstream or both (got '%s')",
      p.direction)
  end
  return attempt(400, client.get_lineage, client, av, { direction = p.direction or "both",
    depth = int_param(p, "depth", 0, 100) or default_depth })
end

api.lineage = function(args, id)
  local p = params(args, { "direction", "depth" })
  local g = lineage_of(get_version(id), p, nil)
  return lineage.format(g, "json")   -- already JSON text
end

api.visualization = function(args, id, n)
  params(args, {})
  local av = get_version(id)
  local v = av.visualizations[tonumber(n)]
  if not v then http_error(404, "artifact version %s has no visualization %s", av.id, n) end
  local bytes, msg = v:read()
  if not bytes then http_error(500, "visualization %d of %s: %s", v.position, av.id, msg) end
  return json.object { position = v.position, type = v.type, hash = v.hash, size = v.size,
    content = bytes }
end

-- ---- the pages ----

local pages = {}

local function runs_table(list)
  local rows, running = {}, false
  for i, run in ipairs(list) do
    running = running or run.status == "running"
    rows[i] = { link("/runs/" .. run.id, run.name), link("/", run.pipeline_name,
        { { "pipeline", exactly(run.pipeline_name) } }), status_badge(run.status),
      esc(human_time(run.start_time)),
      esc(human_ms(duration_ms(run.start_time, run.end_time, run.status == "running"))),
      tags_html(run.tags) }
  end
  return table_html({ "run", "pipeline", "status", "started", "duration", "tags" }, rows), running
end

pages.runs = function(args)
  local p = params(args, { "pipeline", "status", "tag", "page" })
  local list = list_runs(p)
  local pipelines = attempt(400, client.list_pipelines, client, { size = 100 })
  local prow = {}
  for i, pl in ipairs(pipelines) do
    local latest = pl.latest_run
    prow[i] = { link("/", pl.name, { { "pipeline", exactly(pl.name) } }), tostring(pl.run_count),
      latest and (link("/runs/" .. latest.id, latest.name) .. " " .. status_badge(latest.status)) or "" }
  end
  local runs, running = runs_table(list)
  local status_opts = { '<option value="">any</option>' }
  for _, s in ipairs { "running", "completed", "failed", "stopped" } do
    status_opts[#status_opts + 1] = string.format('<option%s>%s</option>',
      p.status == s and " selected" or "", s)
  end
  local body = "<h1>Pipelines</h1>\n" .. table_html({ "pipeline", "runs", "latest run" }, prow)
    .. "\n<h2>Runs</h2>\n"
    .. '<form class="filters" method="get" action="/">'
    .. '<label>pipeline<input name="pipeline" value="' .. esc(p.pipeline or "") .. '"></label>'
    .. '<label>status<select name="status">' .. table.concat(status_opts) .. "</select></label>"
    .. '<label>tag<input name="tag" value="' .. esc(p.tag or "") .. '"></label>'
    .. '<button type="submit">filter</button></form>\n'
    .. runs .. pager("/", { { "pipeline", p.pipeline }, { "status", p.status }, { "tag", p.tag } }, list)
  return page("Runs", body, running and M.REFRESH_SECONDS or nil)
end

local function step_node(sr)
  local colors = STATUS_COLORS[sr.status] or STATUS_COLORS.skipped
  local second = sr.status
  local ms = duration_ms(sr.start_time, sr.end_time, sr.status == "running")
  if ms then second = second .. " · " .. human_ms(ms) end
  -- the error without "step 'x' (file:line) failed: file:line: "
  local third = sr.error and first_line(sr.error):gsub("^step '.-' %(.-%) failed: ", "", 1)
    :gsub("^[^:%s]+:%d+: ", "", 1)
  if not third and sr.status == "cached" then third = "cache hit" end
  if not third and (sr.attempts or 1) > 1 then third = sr.attempts .. " attempts" end
  return { id = sr.id, lines = { sr.name, second, third }, colors = colors, href = "/steps/" .. sr.id,
    title = sr.name .. " (" .. sr.step_name .. "): " .. sr.status .. (sr.error and ("\n" .. sr.error) or ""),
    round = true }
end

pages.run = function(args, id)
  params(args, {})
  local run = get_run(id)
  local steps, edges = run_detail(run)
  local running = run.status == "running"
  local nodes, rows, counts = {}, {}, {}
  for i, sr in ipairs(steps) do
    nodes[i] = step_node(sr)
    counts[sr.status] = (counts[sr.status] or 0) + 1
    local outs = {}
    for _, l in ipairs(sr.links) do
      if l.kind == "output" then
        outs[#outs + 1] = esc(l.name) .. " → " .. version_link(l.version)
      end
    end
    rows[i] = { link("/steps/" .. sr.id, sr.name), status_badge(sr.status),
      esc(human_ms(duration_ms(sr.start_time, sr.end_time, sr.status == "running"))),
      esc(cache_state(sr) or ""), table.concat(outs, "<br>"),
      sr.error and ('<span class="error">' .. esc(viz.shorten(first_line(sr.error), 200)) .. "</span>") or "" }
  end
  local progress = {}
  for _, s in ipairs { "completed", "cached", "running", "failed", "skipped", "stopped" } do
    if counts[s] then progress[#progress + 1] = counts[s] .. " " .. s end
  end
  local body = string.format("<h1>Run %s %s</h1>\n", esc(run.name), status_badge(run.status))
    .. fields_html {
      { "pipeline", link("/", run.pipeline_name, { { "pipeline", exactly(run.pipeline_name) } }), raw = true },
      { "id", run.id }, { "started", human_time(run.start_time) },
      { "ended", run.end_time and human_time(run.end_time) or "still running" },
      { "duration", human_ms(duration_ms(run.start_time, run.end_time, running)) },
      { "steps", #steps .. (#progress > 0 and (": " .. table.concat(progress, ", ")) or "") },
      { "tags", tags_html(run.tags), raw = true },
    }
    .. (running and string.format('<p class="note progress">running: this page refreshes every %d s</p>',
      M.REFRESH_SECONDS) or "")
    .. (run.error and ('<h2>Error</h2><pre class="error">' .. esc(run.error) .. "</pre>") or "")
    .. "\n<h2>Graph</h2>\n" .. graph_svg("run", nodes, edges)
    .. "\n<h2>Steps</h2>\n"
    .. table_html({ "step", "status", "duration", "cache", "outputs", "error" }, rows)
  local md = run.run_metadata
  if next(md) then
    local mrows = {}
    for _, k in ipairs(sorted_keys(md)) do mrows[#mrows + 1] = { esc(k), esc(value_json(md[k])) } end
    body = body .. "\n<h2>Metadata</h2>\n" .. table_html({ "key", "value" }, mrows)
  end
  return page("Run " .. run.name, body, running and M.REFRESH_SECONDS or nil)
end

local function has_links(sr, kind)
  for _, l in ipairs(sr.links) do
    if l.kind == kind then return true end
  end
  return false
end

local function refs_table(sr, kind)
  local rows = {}
  for _, l in ipairs(sr.links) do
    if l.kind == kind then
      rows[#rows + 1] = { esc(l.name), version_link(l.version), esc(l.version.id) }
    end
  end
  return table_html({ "name", "artifact version", "id" }, rows)
end

local function metadata_table(md)
  local rows = {}
  for _, k in ipairs(sorted_keys(md)) do rows[#rows + 1] = { esc(k), esc(value_json(md[k])) } end
  return table_html({ "key", "value" }, rows)
end

pages.step = function(args, id)
  params(args, {})
  local sr = get_step(id)
  local run = sr.pipeline_run
  local prow = {}
  for _, k in ipairs(sorted_keys(sr.parameters)) do
    prow[#prow + 1] = { esc(k), esc(value_json(sr.parameters[k])) }
  end
  local running = sr.status == "running"
  local body = string.format("<h1>Step %s %s</h1>\n", esc(sr.name), status_badge(sr.status))
    .. fields_html {
      { "run", link("/runs/" .. run.id, run.name), raw = true },
      { "step", sr.step_name }, { "id", sr.id }, { "started", human_time(sr.start_time) },
      { "ended", sr.end_time and human_time(sr.end_time) or (running and "still running" or nil) },
      { "duration", human_ms(duration_ms(sr.start_time, sr.end_time, running)) },
      { "attempts", sr.attempts and tostring(sr.attempts) },
      { "seed", sr.seed and tostring(sr.seed) },
      { "cache", cache_state(sr) }, { "cache key", sr.cache_key }, { "cache note", sr.cache_note },
      { "reused", sr.cached_from and link("/steps/" .. sr.cached_from, sr.cached_from), raw = true },
    }
    .. "\n<h2>Inputs</h2>\n" .. refs_table(sr, "input")
    .. "\n<h2>Outputs</h2>\n" .. refs_table(sr, "output")
    .. (has_links(sr, "manual") and ("\n<h2>Saved by hand</h2>\n" .. refs_table(sr, "manual")) or "")
    .. "\n<h2>Parameters</h2>\n" .. table_html({ "name", "value (JSON)" }, prow)
    .. "\n<h2>Metadata</h2>\n" .. metadata_table(sr.run_metadata)
    .. (sr.error and ('\n<h2>Error</h2>\n<pre class="error">' .. esc(sr.error) .. "</pre>") or "")
    .. (sr.traceback and ("\n<h2>Traceback</h2>\n<pre>" .. esc(sr.traceback) .. "</pre>") or "")
    .. (sr.logs and sr.logs ~= "" and ("\n<h2>Output</h2>\n<pre>" .. esc(sr.logs) .. "</pre>") or "")
  return page("Step " .. sr.name, body, running and M.REFRESH_SECONDS or nil)
end

pages.artifacts = function(args)
  local p = params(args, { "name", "tag", "type", "page" })
  local list = list_versions(p)
  local rows = {}
  for i, av in ipairs(list) do
    local sr = av.producer_step_run
    rows[i] = { link("/versions/" .. av.id, av.name), link("/versions/" .. av.id, av.version),
      esc(av.type), esc(av.data_type), esc(viz.size_text(av.size)), esc(human_time(av.created)),
      tags_html(av.tags), sr and link("/steps/" .. sr.id, sr.name) or "" }
  end
  local types = { '<option value="">any</option>' }
  for _, t in ipairs(TYPES) do
    types[#types + 1] = string.format("<option%s>%s</option>", p.type == t and " selected" or "", esc(t))
  end
  local body = "<h1>Artifact versions</h1>\n"
    .. '<form class="filters" method="get" action="/artifacts">'
    .. '<label>name<input name="name" value="' .. esc(p.name or "") .. '"></label>'
    .. '<label>tag<input name="tag" value="' .. esc(p.tag or "") .. '"></label>'
    .. '<label>type<select name="type">' .. table.concat(types) .. "</select></label>"
    .. '<button type="submit">filter</button></form>\n'
    .. '<p class="note">name and tag take the filter operators: contains:, startswith:, ...</p>'
    .. table_html({ "artifact", "version", "type", "data type", "size", "created", "tags", "producer" }, rows)
    .. pager("/artifacts", { { "name", p.name }, { "tag", p.tag }, { "type", p.type } }, list)
  return page("Artifacts", body)
end

local function lineage_svg(g)
  local nodes = {}
  for i, n in ipairs(g.nodes) do
    if n.kind == "artifact_version" and n.deleted then
      nodes[i] = { id = n.id, lines = { n.name, "version " .. n.version, "deleted" },
        colors = STATUS_COLORS.skipped, title = n.label .. " " .. n.deleted }
    elseif n.kind == "artifact_version" then
      nodes[i] = { id = n.id, lines = { n.name, "version " .. n.version, "artifact version" },
        colors = STATUS_COLORS.version, href = "/versions/" .. n.id, title = n.label,
        bold = n.id == g.root }
    else
      nodes[i] = { id = n.id, lines = { n.name, n.status, "run " .. n.run_name },
        colors = STATUS_COLORS[n.status] or STATUS_COLORS.skipped, href = "/steps/" .. n.id,
        title = n.label, round = true }
    end
  end
  local edges = {}
  for i, e in ipairs(g.edges) do edges[i] = { from = e.from, to = e.to, label = e.kind .. " '" .. tostring(e.name) .. "'" } end
  return graph_svg("lineage", nodes, edges)
end

pages.version = function(args, id)
  local p = params(args, { "depth" })
  local av = get_version(id)
  local depth = int_param(p, "depth", 0, 100) or M.LINEAGE_DEPTH
  local sr = av.producer_step_run
  local crow = {}
  for i, c in ipairs(av:consumers()) do
    crow[i] = { link("/steps/" .. c.id, c.name), esc(c.input_name), link("/runs/" .. c.run_id,
      c.pipeline_run.name), status_badge(c.status) }
  end
  local body = string.format('<h1>%s <span class="note">version %s</span></h1>\n', esc(av.name), esc(av.version))
    .. fields_html {
      { "id", av.id }, { "type", av.type }, { "data type", av.data_type },
      { "content hash", av.content_hash }, { "size", viz.size_text(av.size) .. " (" .. av.size .. " bytes)" },
      { "stored size", viz.size_text(av.stored_size) }, { "uri", av.uri },
      { "codec version", tostring(av.codec_version) }, { "created", human_time(av.created) },
      { "save type", av.save_type },
      { "tags", tags_html(av.tags), raw = true },
      { "producer", sr and (link("/steps/" .. sr.id, sr.name) .. " in run "
        .. link("/runs/" .. sr.run_id, sr.pipeline_run.name)) or "none (saved by hand)", raw = true },
    }
    .. "\n<h2>Metadata</h2>\n" .. metadata_table(av.run_metadata)
    .. "\n<h2>Consumers</h2>\n" .. table_html({ "step run", "as input", "run", "status" }, crow)
    .. string.format('\n<h2>Lineage <span class="note">depth %d · %s · %s</span></h2>\n', depth,
      link("/versions/" .. av.id, "deeper", { { "depth", tostring(depth + 1) } }),
      link("/api/versions/" .. av.id .. "/lineage", "JSON"))
    .. lineage_svg(lineage_of(av, {}, depth))
    .. "\n<h2>Visualizations</h2>\n" .. viz.sections(av)
  return page(av.name .. ":" .. av.version, body)
end

-- ---- routing ----

local routes = {
  { "^/$", pages.runs }, { "^/runs/([^/]+)$", pages.run }, { "^/steps/([^/]+)$", pages.step },
  { "^/artifacts$", pages.artifacts }, { "^/versions/([^/]+)$", pages.version },
  { "^/api/?$", api.index, json = true }, { "^/api/pipelines$", api.pipelines, json = true },
  { "^/api/runs$", api.runs, json = true }, { "^/api/runs/([^/]+)$", api.run, json = true },
  { "^/api/steps/([^/]+)$", api.step, json = true },
  { "^/api/artifacts$", api.artifacts, json = true },
  { "^/api/versions$", api.versions, json = true },
  { "^/api/versions/([^/]+)$", api.version, json = true },
  { "^/api/versions/([^/]+)/lineage$", api.lineage, json = true },
  { "^/api/versions/([^/]+)/visualizations/(%d+)$", api.visualization, json = true },
}

local HTML = "text/html; charset=utf-8"
local JSON = "application/json; charset=utf-8"

local function error_response(status, msg, as_json)
  msg = viz.clean(msg)   -- a path may hold any bytes
  if as_json then
    return status, JSON, json.encode(json.object { error = json.object { status = status,
      message = msg } }) .. "\n", headers_for()
  end
  local titles = { [400] = "Bad request", [404] = "Not found", [405] = "Method not allowed",
    [500] = "Internal error" }
  local title = titles[status] or "Error"
  return status, HTML, page(title, string.format('<h1>%d %s</h1>\n<p class="error">%s</p>\n'
    .. '<p><a href="/">back to the runs</a></p>', status, esc(title), esc(msg))), headers_for()
end

-- Whether a request's Host header (name or address, and maybe a port) is
-- one to answer: an IP address (a web page of another origin cannot make a
-- browser send one: DNS rebinding needs a name), localhost, or a name given
-- with --allowed-host (config.allowed, lower case).
local function host_allowed(config, h)
  local name = (h:match("^(%[[%x:.]+%]):%d+$") or h:match("^(%[[%x:.]+%])$")
    or h:match("^([^:]+):%d+$") or h:match("^([^:]+)$") or ""):lower()
  return name:find("^%[") or name:find("^%d+%.%d+%.%d+%.%d+$") or name == "localhost"
    or config.allowed[name] ~= nil
end

-- The Host headers of a request, checked: exactly one (none from an HTTP/1.0
-- client), naming this server as host_allowed says; else an error response.
local function check_host(config, headers, as_json)
  if headers.hosts and headers.hosts > 1 then
    return error_response(400, "more than one Host header", as_json)
  end
  if not headers.host then
    if headers.version ~= "HTTP/1.1" then return nil end
    return error_response(400, "no Host header (HTTP/1.1 requires one)", as_json)
  end
  if not host_allowed(config, headers.host) then
    -- a page of this machine asked for by a name of the page's: DNS rebinding
    return error_response(400, "unexpected Host header '" .. headers.host .. "' (the "
      .. "dashboard answers under an IP address, localhost, or a name given with "
      .. "--allowed-host)", as_json)
  end
end

local function route(config, method, path, args, headers)
  local as_json = path:find("^/api") ~= nil
  local s, t, b, h = check_host(config, headers, as_json)
  if s then return s, t, b, h end
  if method ~= "GET" and method ~= "HEAD" then
    local s, t, b, h = error_response(405, "the dashboard is read-only: only GET and HEAD are "
      .. "answered (got " .. method .. ")", as_json)
    h.Allow = "GET, HEAD"
    return s, t, b, h
  end
  if headers.too_many_args then
    return error_response(400, "too many query parameters", as_json)
  end
  for _, r in ipairs(routes) do
    if path:find(r[1]) then
      local caps = r[1]:find("(", 1, true) and { path:match(r[1]) } or {}
      client = lupine.Client()
      local body = r[2](args, table.unpack(caps))
      if r.json then
        return 200, JSON, (type(body) == "string" and body or json.encode(body)) .. "\n", headers_for()
      end
      return 200, HTML, body, headers_for()
    end
  end
  return error_response(404, "no such page: " .. path, as_json)
end

-- handler(config) -> handle(method, path, args, headers); config: { address
-- = "127.0.0.1:8237", allowed_hosts = { name, ... } }; headers:
-- { host, hosts = n, version = "HTTP/1.1", too_many_args }. Opens the catalog
-- now, so that a catalog that cannot be opened is reported at start.
function M.handler(config)
  core.query("pipeline_names")
  config.allowed = {}
  for _, name in ipairs(config.allowed_hosts or {}) do config.allowed[name:lower()] = true end
  return function(method, path, args, headers)
    local ok, s, t, b, h = xpcall(route, function(e)
      if getmetatable(e) == HttpError then return e end
      return debug.traceback(tostring(e), 2)
    end, config, method, path, args or {}, headers or {})
    client = nil
    if ok then return s, t, b, h end
    local as_json = path:find("^/api") ~= nil
    if getmetatable(s) == HttpError then return error_response(s.status, s.message, as_json) end
    io.stderr:write("lupine ui: ", method, " ", path, ": ", s, "\n")
    return error_response(500, "the page failed; the server's log says why", as_json)
  end
end

return M
