-- SPDX-License-Identifier: MIT
-- lupine.ui: the pages and the JSON API of `lupine ui` (runtime/programs/ui.c serves
-- them over HTTP; everything here runs in the runtime's one Lua state).
--
-- handler(config) returns handle(method, path, args, headers) -> status,
-- content type, body, headers. args maps each query key to the list of its
-- values. The dashboard is read-only: only GET and HEAD are answered (405
-- for the rest), unknown paths are 404 (nothing is ever read from the
-- file system), and a malformed query is 400.
--
-- Pages are plain HTML with no script at all: a page that shows a run
-- still going refreshes itself (meta refresh), forms are GET forms, the
-- search box's suggestions a <datalist>. Every string taken from the
-- catalog goes through esc() (lupine.viz); visualizations are shown as
-- viz.fragment shows them (user HTML in a sandboxed frame), but SVG inline,
-- through lupine.svg's sanitizer, so that its <title> tooltips work.

local core = require "lupine.core"
local lupine = require "lupine"
local client_mod = require "lupine.client"
local query = require "lupine.query"
local lineage = require "lupine.lineage"
local viz = require "lupine.viz"
local json = require "lupine.json"
local records = require "lupine.records"   -- the records' JSON shapes, the CLI's too
local shapes = require "lupine.shapes"
local svg = require "lupine.svg"
local search = require "lupine.search"
local diff = require "lupine.diff"

local M = {}

local esc = viz.esc
local null = json.null
local opt = records.opt

M.REFRESH_SECONDS = 2      -- how often a page showing a running run reloads
M.LINEAGE_DEPTH = 3        -- the version page's lineage graph, by default
M.PAGE_SIZE = 50
M.COLUMNS = 6              -- metadata columns an artifact's page shows unless told
M.COMPARE_MAX = 8          -- versions or runs compared at once
M.COMPARE_BYTES = 16 * 1024 * 1024   -- values larger are not loaded to compare
M.DIFF_ROWS = 200          -- rows shown of each kind of a table's difference
M.DOWNLOAD_BYTES = 256 * 1024 * 1024 -- a download is made in memory: at most this

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

local elapsed_ms = records.elapsed_ms   -- a running run's or step's: up to now
local human_ms = records.human_duration   -- "850 ms", "6.0 s": as everywhere

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

-- A table: head (texts, escaped here), rows of HTML cells (escaped by the
-- caller); a row with class gets it (diff, added, removed), and the table
-- class.
local function table_html(head, rows, class)
  if #rows == 0 then return '<p class="note">none</p>' end
  local out = { class and ('<table class="' .. class .. '"><thead><tr>') or "<table><thead><tr>" }
  for _, h in ipairs(head) do out[#out + 1] = "<th>" .. esc(h) .. "</th>" end
  out[#out + 1] = "</tr></thead><tbody>"
  for _, r in ipairs(rows) do
    out[#out + 1] = r.class and ('<tr class="' .. r.class .. '">') or "<tr>"
    for i = 1, #head do out[#out + 1] = "<td>" .. (r[i] or "") .. "</td>" end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out)
end

-- What the pages add to viz.CSS: the search box, charts, compare grids,
-- differences, a run's progress.
local CSS = [[
header form.search{margin-left:auto}header input{width:320px;padding:4px 8px;border-radius:4px;border:0}
.diff{background:#fff4d6}.added{background:#e3f6e5}.removed{background:#fde7e9}
del{color:#a3303a}ins{color:#1b6e2a;text-decoration:none;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:14px;align-items:start}
.grid>div{min-width:0}.chart svg,.viz-svg svg{max-width:100%;height:auto}
.viz-svg{border:1px solid #e0e0e0;background:#fff;display:inline-block;max-width:100%}
.chart{background:#fff;border:1px solid #e0e0e0;display:inline-block;max-width:100%}
progress{width:260px;height:14px;vertical-align:middle}table.listing td{white-space:nowrap}.s-pending{background:#b0b0b0}
form.columns{display:flex;flex-wrap:wrap;gap:4px 14px;align-items:center;margin:6px 0 10px}
.suggest a{margin-right:10px}.downloads a{margin-right:12px}
pre.value{max-height:300px}
]]

local names_list = nil   -- the search box's suggestions, made once per request

-- The names the search box suggests (a <datalist>: no script): artifacts,
-- pipelines, tags.
local function datalist()
  if not names_list then
    local out, n = { '<datalist id="lupine-names">' }, 0
    for _, q in ipairs { "artifact_names", "pipeline_names", "tags" } do
      local ok, rows = pcall(core.query, q)   -- an error page is still shown
      for _, row in ipairs(ok and rows or {}) do
        n = n + 1
        if n > 300 then break end
        out[#out + 1] = '<option value="' .. esc(row.name) .. '">'
      end
    end
    out[#out + 1] = "</datalist>"
    names_list = table.concat(out)
  end
  return names_list
end

local function page(title, body, refresh, query)
  local head = "<style>" .. CSS .. "</style>\n"
    .. (refresh and string.format('<meta http-equiv="refresh" content="%d">\n', refresh) or "")
  return viz.page(title .. " · lupine", '<header><a class="brand" href="/">lupine</a>'
    .. '<a href="/">Runs</a><a href="/artifacts">Artifacts</a><a href="/api">API</a>'
    .. '<form class="search" method="get" action="/search"><input type="search" name="q" '
    .. 'placeholder="search artifacts, versions, runs, tags, metadata" list="lupine-names" value="'
    .. esc(query or "") .. '" aria-label="search">' .. datalist() .. "</form></header>\n"
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
  version = { "#ede7f6", "#5e35b1" }, pending = { "#ffffff", "#b0b0b0" },
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
-- bold, dashed }; edges: { from, to, label, planned (drawn dashed) }.
-- Every text is escaped.
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
      out[#out + 1] = string.format('<path class="edge%s" d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" '
        .. 'stroke="#777" stroke-width="1.5"%s marker-end="url(#%s-arrow)"><title>%s</title></path>',
        e.planned and " planned" or "", x1, y1, x1 + bend, y1, x2 - bend, y2, x2, y2,
        e.planned and ' stroke-dasharray="5 4"' or "", gid, esc(e.label or ""))
    end
  end
  for i, n in ipairs(nodes) do
    local x, y = xy(i)
    local fill, stroke = n.colors[1], n.colors[2]
    local g = { string.format('<g class="node" data-id="%s">', esc(n.id)) }
    if n.href then g[1] = g[1] .. '<a href="' .. esc(n.href) .. '">' end
    g[#g + 1] = "<title>" .. esc(n.title or n.lines[1]) .. "</title>"
    g[#g + 1] = string.format('<rect x="%d" y="%d" width="%d" height="%d" rx="%d" fill="%s" stroke="%s" '
      .. 'stroke-width="%s"%s/>', x, y, NODE_W, NODE_H, n.round and 14 or 3, fill, stroke,
      n.bold and "3" or "1.5", n.dashed and ' stroke-dasharray="5 4"' or "")
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

-- ---- SVG and visualizations in a page ----

local svg_count = 0   -- inline SVGs in the page being made: each has its own id prefix

-- SVG made safe (lupine.svg) and put inline, so that its <title> tooltips
-- work; one that is not an SVG document is shown as text, saying why.
local function inline_svg(text, class)
  svg_count = svg_count + 1
  local safe, why = svg.sanitize(text, "svg" .. svg_count .. "-")
  if not safe then
    return '<p class="error">SVG not shown: ' .. esc(why) .. '</p><pre class="viz-text">'
      .. esc(viz.clean(text)) .. "</pre>"
  end
  return '<div class="' .. class .. '">' .. safe .. "</div>"
end

-- The height of an HTML visualization's frame, which no script may measure:
-- reckoned from what it holds, at the sizes of Lupine's own tables (a row
-- of 13 px text with its padding takes 20 px, the page and the note under
-- a table 80; measured in Chromium), with room to spare, so that a table's
-- last rows and the note under it are never cut.
local function frame_height(html)
  local function count(p) return select(2, html:gsub(p, "")) end
  local rows, paras, heads, brs, items = count("<tr"), count("<p[ >]"), count("<h%d"),
    count("<br"), count("<li")
  local pre = 0
  for block in html:gmatch("<pre.-</pre>") do pre = pre + select(2, block:gsub("\n", "")) + 1 end
  local h = 60 + 21 * rows + 28 * paras + 40 * heads + 20 * brs + 22 * items + 19 * pre
  if rows + paras + heads + brs + items + pre == 0 then h = 120 + math.min(400, #html // 20) end
  return math.max(60, math.min(h, 900))
end

-- A visualization in a page: SVG inline, HTML in a sandboxed frame (no
-- script, no origin) sized as above, the rest as viz.fragment shows it.
local function fragment(t, bytes)
  if t == "svg" then return inline_svg(bytes, "viz-svg") end
  if t == "html" then
    return string.format('<iframe class="viz-html" sandbox="" referrerpolicy="no-referrer" '
      .. 'title="HTML visualization" style="height:%dpx" srcdoc="%s"></iframe>',
      frame_height(bytes), esc(bytes))
  end
  return viz.fragment(t, bytes)
end

-- The visualizations of av as sections.
local function viz_sections(av)
  local list = av.visualizations
  if #list == 0 then return '<p class="note">This version has no visualizations.</p>' end
  local out = {}
  for _, v in ipairs(list) do
    local bytes, msg = v:read()
    out[#out + 1] = string.format('<section class="viz" id="viz-%d"><h3>%d. %s <span class="note">'
      .. "%s · %s</span></h3>", v.position, v.position, esc(v.type), viz.size_text(v.size),
      esc(v.hash:sub(1, 19)))
    out[#out + 1] = bytes and fragment(v.type, bytes)
      or ('<p class="error">cannot read it: ' .. esc(msg) .. "</p>")
    out[#out + 1] = "</section>"
  end
  return table.concat(out, "\n")
end

-- A line chart of ys over xs (lupine.plot's rendering), inline.
local function chart(title, xs, ys, xlabel, ylabel)
  local plot = { kind = "line", x = xs, y = ys, title = title, xlabel = xlabel, ylabel = ylabel }
  return inline_svg(viz.render_plot(plot), "chart")
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

-- A step run with its links added ({ kind, name, version = { id, name,
-- version } }); kind is "input", "output" (the step's own) or "manual" (an
-- output it saved by hand).
local function with_links(sr)
  sr.links = {}
  for _, l in ipairs(core.query("step_run_artifacts", sr.id)) do
    local kind = l.kind == "output" and l.save_type ~= "step_output" and "manual" or l.kind
    sr.links[#sr.links + 1] = { kind = kind, name = l.name, version = version_ref(l.artifact_version_id) }
  end
  return sr
end

-- The step runs of a run in the order they ran, each with its links.
local function steps_of(run)
  local list = records.steps_of(run)
  for _, sr in ipairs(list) do with_links(sr) end
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

local cache_state = records.cache_state

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
  return with_links(client_mod.step_run_of(row))
end

local function get_version(key)
  if not key:find("^[%x%-]+$") then http_error(404, "artifact version '%s' not found", key) end
  return attempt(404, client.get_artifact_version, client, key)
end

local function get_artifact(id)
  local row = id:find("^[%x%-]+$") and core.query("artifact_by_id", id:lower())[1]
  if not row then http_error(404, "artifact '%s' not found", id) end
  return client_mod.artifact_of(row)
end

local function get_pipeline(id)
  local row = id:find("^[%x%-]+$") and core.query("pipeline_by_id", id:lower())[1]
  if not row then http_error(404, "pipeline '%s' not found", id) end
  return client_mod.pipeline_of(row)
end

local ids = {}   -- per request: { artifact = { name -> id }, pipeline = ... }

-- The id of the artifact or pipeline named name (nil: none), for links to
-- their pages.
local function id_of(kind, name)
  ids[kind] = ids[kind] or {}
  local known = ids[kind][name]
  if known == nil then
    local row = core.query(kind .. "_by_name", name)[1]
    known = row and row.id or false
    ids[kind][name] = known
  end
  return known or nil
end

local function artifact_link(name)
  local id = id_of("artifact", name)
  return id and link("/artifacts/" .. id, name) or esc(name)
end

local function pipeline_link(name)
  local id = id_of("pipeline", name)
  return id and link("/pipelines/" .. id, name) or esc(name)
end

-- The steps run planned as it started: { { name, step, after = { names } } }
-- in the order of its body; nil for a run recorded before plans were.
local function plan_of(run)
  local row = core.query("run_plan", run.id)[1]
  return row and row.plan and core.decode(row.plan) or nil
end

-- ---- JSON shapes (lupine.records's, with the dashboard's links) ----

local TABULAR = { records = true, columns = true }
local FILES = { file = true, dir = true }

-- The downloads of av: { json, cbor, csv, file } paths (nil where none):
-- a file or folder as itself, any other value as JSON and CBOR, a table as
-- CSV too.
local function downloads_of(av)
  local base = "/versions/" .. av.id
  if FILES[av.data_type] then return { file = base .. "/file" } end
  return { json = base .. "/value.json", cbor = base .. "/value.cbor",
    csv = TABULAR[av.data_type] and (base .. "/value.csv") or nil }
end

-- A version as listed; full: described, with its downloads and each
-- visualization's path.
local function version_json(av, full)
  if not full then return records.version(av) end
  local o = records.version_record(av)
  local d = downloads_of(av)
  o.downloads = json.object { json = opt(d.json), cbor = opt(d.cbor), csv = opt(d.csv),
    file = opt(d.file) }
  for _, v in ipairs(o.visualizations) do
    v.href = "/api/versions/" .. av.id .. "/visualizations/" .. v.position
  end
  return o
end

-- ---- query arguments ----

-- The single value of each allowed key in args (a 400 for anything else);
-- the keys in multi may repeat, and give the list of their non-empty values.
local function params(args, allowed, multi)
  local out, ok, many = {}, {}, {}
  for _, k in ipairs(allowed) do ok[k] = true end
  for _, k in ipairs(multi or {}) do ok[k], many[k], out[k] = true, true, {} end
  for k, list in pairs(args) do
    if not ok[k] then
      local all = {}
      for _, name in ipairs(allowed) do all[#all + 1] = name end
      for _, name in ipairs(multi or {}) do all[#all + 1] = name end
      http_error(400, "unknown query parameter '%s'%s", k, #all > 0
        and (" (allowed: " .. table.concat(all, ", ") .. ")") or " (this path takes none)")
    end
    if many[k] then
      for _, v in ipairs(list) do
        if v ~= "" then out[k][#out[k] + 1] = v end
      end
    elseif #list > 1 then
      http_error(400, "query parameter '%s' is given %d times", k, #list)
    elseif list[1] ~= "" then
      out[k] = list[1]
    end
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

local TYPES = records.artifact_types

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

local paged_json = records.page

-- ---- the JSON API ----

local api = {}

api.index = function()
  return json.object { paths = json.array {
    "/api/search?q=",
    "/api/pipelines?name=&page=&size=",
    "/api/pipelines/{pipeline id}",
    "/api/runs?pipeline=&status=&tag=&page=&size=",
    "/api/runs/{run id}",
    "/api/steps/{step run id}",
    "/api/artifacts?name=&tag=&page=&size=",
    "/api/artifacts/{artifact id}",
    "/api/versions?name=&tag=&type=&page=&size=",
    "/api/versions/{version id}",
    "/api/versions/{version id}/lineage?direction=&depth=",
    "/api/versions/{version id}/visualizations/{position}",
    "/api/compare?v={version id}&v={version id}&key=",
    "/api/compare?r={run id}&r={run id}",
  } }
end

api.pipelines = function(args)
  local p = params(args, { "name", "page", "size" })
  local page_n, size = paging(p)
  local list = attempt(400, client.list_pipelines, client, { name = p.name, page = page_n, size = size })
  return paged_json(list, records.pipeline)
end

api.runs = function(args)
  local list = list_runs(params(args, { "pipeline", "status", "tag", "page", "size" }))
  return paged_json(list, records.run)
end

-- A run with its steps and its graph: the steps in the order they ran,
-- then the steps of its plan yet to start (status "pending", an id of
-- "pending:" and the name); edges from the links (an output of one step
-- another took), and, into a step with no input linked (yet to start, or
-- skipped), the edges its plan gives (planned = true); each step's layer
-- (0 for steps with no input from another step). Also the plan, if the
-- run recorded one.
local function run_detail(run)
  local steps = steps_of(run)
  local edges = step_edges(steps)
  local plan = plan_of(run)
  if plan then
    local by_name, linked = {}, {}
    for _, sr in ipairs(steps) do by_name[sr.name] = sr end
    for _, p in ipairs(plan) do
      if not by_name[p.name] then
        local pending = { id = "pending:" .. p.name, name = p.name, step_name = p.step,
          status = "pending", links = {}, pending = true }
        steps[#steps + 1], by_name[p.name] = pending, pending
      end
    end
    for _, e in ipairs(edges) do linked[e.to] = true end
    for _, p in ipairs(plan) do
      local to = by_name[p.name]
      for _, a in ipairs(linked[to.id] and {} or p.after) do
        local from = by_name[a]
        if from then
          edges[#edges + 1] = { from = from.id, to = to.id, planned = true,
            label = "planned: an output of " .. a }
        end
      end
    end
  end
  return steps, edges, layers(steps, edges), plan
end

local FINISHED = { completed = true, cached = true, failed = true, skipped = true, stopped = true }

-- How far a run is: { planned = steps in its plan (nil: no plan), counts =
-- { status -> n }, finished = steps that ended }.
local function progress_of(steps, plan)
  local counts, finished = {}, 0
  for _, sr in ipairs(steps) do
    counts[sr.status] = (counts[sr.status] or 0) + 1
    if FINISHED[sr.status] then finished = finished + 1 end
  end
  return { planned = plan and #plan, counts = counts, finished = finished }
end

api.run = function(args, id)
  params(args, {})
  local run = get_run(id)
  local steps, edges, layer, plan = run_detail(run)
  local ran, layers_of, es, by_name = {}, {}, {}, {}
  for i, sr in ipairs(steps) do
    if not sr.pending then
      ran[#ran + 1] = sr
      layers_of[#ran] = layer[i]
    end
    by_name[sr.name] = sr
  end
  local o = records.run_record(run, ran)
  for i, step in ipairs(o.steps) do step.layer = opt(layers_of[i]) end
  for _, e in ipairs(edges) do
    if not e.planned then
      es[#es + 1] = json.object { from = e.from, to = e.to, name = e.name, version_id = e.version }
    end
  end
  o.edges = json.array(es)
  if plan then
    local items = {}
    for i, p in ipairs(plan) do
      local sr = by_name[p.name]
      items[i] = json.object { name = p.name, step = p.step, after = json.array(p.after),
        status = sr.status, step_run_id = sr.pending and null or sr.id }
    end
    o.plan = json.array(items)
  else
    o.plan = null
  end
  local pr = progress_of(steps, plan)
  o.progress = json.object { planned = opt(pr.planned), finished = pr.finished,
    counts = json.object(pr.counts) }
  return o
end

api.step = function(args, id)
  params(args, {})
  local sr = get_step(id)
  local o = records.step(sr)
  o.run_id = sr.run_id
  o.run = sr.pipeline_run.name
  o.logs = opt(sr.logs)
  o.run_metadata = records.metadata(sr.run_metadata)
  return o
end

api.artifacts = function(args)
  local p = params(args, { "name", "tag", "page", "size" })
  local page_n, size = paging(p)
  local list = attempt(400, client.list_artifacts, client, { name = p.name, tag = p.tag,
    page = page_n, size = size })
  return paged_json(list, records.artifact)
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
  local o = records.visualization(v)
  o.content = bytes
  return o
end

-- ---- the pages ----

local pages = {}

local function runs_table(list)
  local rows, running = {}, false
  for i, run in ipairs(list) do
    running = running or run.status == "running"
    rows[i] = { link("/runs/" .. run.id, run.name), pipeline_link(run.pipeline_name), status_badge(run.status),
      esc(human_time(run.start_time)),
      esc(human_ms(elapsed_ms(run))),
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
    prow[i] = { link("/pipelines/" .. pl.id, pl.name),
      link("/", tostring(pl.run_count), { { "pipeline", exactly(pl.name) } }),
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
  if sr.pending then
    return { id = sr.id, lines = { sr.name, "pending", "not started yet" }, colors = STATUS_COLORS.pending,
      title = sr.name .. " (" .. sr.step_name .. "): pending", round = true, dashed = true }
  end
  local colors = STATUS_COLORS[sr.status] or STATUS_COLORS.skipped
  local second = sr.status
  local ms = elapsed_ms(sr)
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
  local steps, edges, _, plan = run_detail(run)
  local running = run.status == "running"
  local nodes, rows = {}, {}
  for i, sr in ipairs(steps) do
    nodes[i] = step_node(sr)
    local outs = {}
    for _, l in ipairs(sr.links) do
      if l.kind == "output" then
        outs[#outs + 1] = esc(l.name) .. " → " .. version_link(l.version)
      end
    end
    rows[i] = { sr.pending and esc(sr.name) or link("/steps/" .. sr.id, sr.name), status_badge(sr.status),
      esc(human_ms(elapsed_ms(sr))),
      esc(cache_state(sr) or ""), table.concat(outs, "<br>"),
      sr.error and ('<span class="error">' .. esc(viz.shorten(first_line(sr.error), 200)) .. "</span>") or "" }
  end
  local pr = progress_of(steps, plan)
  local progress = {}
  for _, s in ipairs { "completed", "cached", "running", "pending", "failed", "skipped", "stopped" } do
    if pr.counts[s] then progress[#progress + 1] = pr.counts[s] .. " " .. s end
  end
  local total = pr.planned or #steps
  local body = string.format("<h1>Run %s %s</h1>\n", esc(run.name), status_badge(run.status))
    .. fields_html {
      { "pipeline", pipeline_link(run.pipeline_name), raw = true },
      { "id", run.id }, { "started", human_time(run.start_time) },
      { "ended", run.end_time and human_time(run.end_time) or "still running" },
      { "duration", human_ms(elapsed_ms(run)) },
      { "steps", total .. (plan and " planned" or "") .. (#progress > 0 and (": " .. table.concat(progress, ", ")) or "") },
      { "progress", string.format('<progress value="%d" max="%d"></progress> %d of %d finished',
        pr.finished, math.max(total, 1), pr.finished, total), raw = true },
      { "tags", tags_html(run.tags), raw = true },
      { "compare", link("/pipelines/" .. (id_of("pipeline", run.pipeline_name) or ""),
        "with other runs of " .. run.pipeline_name), raw = true },
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
      { "duration", human_ms(elapsed_ms(sr)) },
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
    rows[i] = { artifact_link(av.name), link("/versions/" .. av.id, av.version),
      esc(av.type), esc(shapes.label(av.data_type)), esc(viz.size_text(av.size)), esc(human_time(av.created)),
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

-- The download links of av.
local function downloads_html(av)
  local d, out = downloads_of(av), {}
  for _, k in ipairs { "file", "json", "cbor", "csv" } do
    if d[k] then
      local text = k == "file" and (av.data_type == "dir" and "folder (tar)" or "file") or k:upper()
      out[#out + 1] = '<a href="' .. esc(d[k]) .. '" download>' .. text .. "</a>"
    end
  end
  return '<span class="downloads">' .. table.concat(out) .. "</span>"
end

pages.version = function(args, id)
  local p = params(args, { "depth" })
  local av = get_version(id)
  local depth = int_param(p, "depth", 0, 100) or M.LINEAGE_DEPTH
  local sr = av.producer_step_run
  local previous = core.query("previous_version", av.id)[1]
  local crow = {}
  for i, c in ipairs(av:consumers()) do
    crow[i] = { link("/steps/" .. c.id, c.name), esc(c.input_name), link("/runs/" .. c.run_id,
      c.pipeline_run.name), status_badge(c.status) }
  end
  local body = string.format('<h1>%s <span class="note">version %s</span></h1>\n', esc(av.name), esc(av.version))
    .. fields_html {
      { "artifact", artifact_link(av.name), raw = true },
      { "id", av.id }, { "type", av.type },
      { "data type", esc(shapes.label(av.data_type)) .. (shapes.label(av.data_type):lower() ~= av.data_type
        and (' <span class="note">' .. esc(av.data_type) .. "</span>") or ""), raw = true },
      { "content hash", av.content_hash }, { "size", viz.size_text(av.size) .. " (" .. av.size .. " bytes)" },
      { "stored size", viz.size_text(av.stored_size) }, { "uri", av.uri },
      { "codec version", tostring(av.codec_version) }, { "created", human_time(av.created) },
      { "save type", av.save_type },
      { "tags", tags_html(av.tags), raw = true },
      { "producer", sr and (link("/steps/" .. sr.id, sr.name) .. " in run "
        .. link("/runs/" .. sr.run_id, sr.pipeline_run.name)) or "none (saved by hand)", raw = true },
      { "download", downloads_html(av), raw = true },
      { "compare", previous and link("/compare", "with version " .. previous.version,
        { { "v", previous.id }, { "v", av.id } }), raw = true },
    }
    .. "\n<h2>Metadata</h2>\n" .. metadata_table(av.run_metadata)
    .. "\n<h2>Consumers</h2>\n" .. table_html({ "step run", "as input", "run", "status" }, crow)
    .. string.format('\n<h2>Lineage <span class="note">depth %d · %s · %s</span></h2>\n', depth,
      link("/versions/" .. av.id, "deeper", { { "depth", tostring(depth + 1) } }),
      link("/api/versions/" .. av.id .. "/lineage", "JSON"))
    .. lineage_svg(lineage_of(av, {}, depth))
    .. "\n<h2>Visualizations</h2>\n" .. viz_sections(av)
  return page(av.name .. ":" .. av.version, body)
end

-- ---- an artifact's page and a pipeline's: tables with metadata columns ----

-- The metadata of the rows of a listing ({ id, key, value }, CBOR values):
-- { id -> { key -> value } }, the keys in byte order, and for each key
-- whether all its values are numbers (a key a chart can draw).
local function metadata_by_id(rows)
  local by, keys, numeric = {}, {}, {}
  for _, r in ipairs(rows) do
    local v = core.decode(r.value)
    by[r.id] = by[r.id] or {}
    by[r.id][r.key] = v
    if numeric[r.key] == nil then keys[#keys + 1], numeric[r.key] = r.key, true end
    if type(v) ~= "number" then numeric[r.key] = false end
  end
  table.sort(keys, json.byte_lt)
  return by, keys, numeric
end

-- { id -> { tag, ... } } from rows { id, name }
local function tags_by_id(rows)
  local by = {}
  for _, r in ipairs(rows) do
    by[r.id] = by[r.id] or {}
    by[r.id][#by[r.id] + 1] = r.name
  end
  return by
end

-- A value in a table cell: a float to 6 significant digits (all of them
-- in its tooltip), a string as it is, anything else as JSON; shortened to
-- width characters (80 unless given).
local function value_cell(v, width)
  if v == nil then return "" end
  if math.type(v) == "float" and v == v and v ~= math.huge and v ~= -math.huge then
    return '<span title="' .. esc(viz.num_text(v)) .. '">' .. esc(string.format("%.6g", v)) .. "</span>"
  end
  local text = type(v) == "string" and viz.clean(v) or value_json(v)
  return esc(viz.shorten(text, width or 80))
end

-- The metadata columns shown and the key charted, from the query: col
-- (repeated) once the form was sent (chosen), else the first M.COLUMNS keys;
-- chart: a key whose values are numbers, else (the form not sent) the
-- first such key.
local function columns_of(p, keys, numeric)
  local shown, list = {}, {}
  if p.chosen then
    for _, c in ipairs(p.col) do shown[c] = true end
  else
    for i = 1, math.min(#keys, M.COLUMNS) do shown[keys[i]] = true end
  end
  for _, k in ipairs(keys) do
    if shown[k] then list[#list + 1] = k end
  end
  local chart_key = p.chart
  if chart_key and not numeric[chart_key] then
    http_error(400, "query parameter 'chart' must be a metadata key whose values are numbers "
      .. "(got '%s')", chart_key)
  end
  if not chart_key and not p.chosen then
    for _, k in ipairs(keys) do
      if numeric[k] then chart_key = k break end
    end
  end
  return list, chart_key
end

-- The form that chooses the columns and the chart (a GET form: no script).
local function columns_form(path, keys, numeric, list, chart_key)
  if #keys == 0 then return '<p class="note">no metadata to show as columns or to chart</p>' end
  local shown = {}
  for _, k in ipairs(list) do shown[k] = true end
  local out = { '<form class="columns" method="get" action="' .. esc(path) .. '">'
    .. '<input type="hidden" name="chosen" value="1"><span class="note">metadata columns:</span>' }
  for _, k in ipairs(keys) do
    out[#out + 1] = '<label><input type="checkbox" name="col" value="' .. esc(k) .. '"'
      .. (shown[k] and " checked" or "") .. "> " .. esc(k) .. "</label>"
  end
  out[#out + 1] = '<label>chart <select name="chart"><option value="">none</option>'
  for _, k in ipairs(keys) do
    if numeric[k] then
      out[#out + 1] = "<option" .. (k == chart_key and " selected" or "") .. ' value="' .. esc(k)
        .. '">' .. esc(k) .. "</option>"
    end
  end
  out[#out + 1] = '</select></label><button type="submit">show</button></form>'
  return table.concat(out)
end

-- The query of the form as it stands, for the pager's links.
local function columns_params(list, chart_key)
  local ps = { { "chosen", "1" }, { "chart", chart_key } }
  for _, k in ipairs(list) do ps[#ps + 1] = { "col", k } end
  return ps
end

-- items[first..last] of page page_n (newest first), as pager() wants it.
local function paged(items, page_n)
  local total = #items
  local pages_n = math.max(1, math.ceil(total / M.PAGE_SIZE))
  local out = { page = page_n, total = total, total_pages = pages_n }
  for i = (page_n - 1) * M.PAGE_SIZE + 1, math.min(total, page_n * M.PAGE_SIZE) do
    out[#out + 1] = items[total - i + 1]
  end
  return out
end

local step_names = {}   -- per request: step run id -> { name, run_id, run }

-- The step run that made a version, as "step in run" links.
local function producer_html(step_run_id)
  if not step_run_id then return '<span class="note">saved by hand</span>' end
  local s = step_names[step_run_id]
  if not s then
    local row = core.query("step_run_by_id", step_run_id)[1]
    local run = row and core.query("run_by_id", row.run_id)[1]
    s = { name = row and row.name or "?", run_id = row and row.run_id, run = run and run.name or "?" }
    step_names[step_run_id] = s
  end
  return link("/steps/" .. step_run_id, s.name) .. " in " .. (s.run_id and link("/runs/" .. s.run_id, s.run) or "?")
end

-- An artifact's versions, oldest first, with their tags and metadata.
local function artifact_detail(a)
  local versions = core.query("versions_of_artifact", a.id)
  local md, keys, numeric = metadata_by_id(core.query("metadata_of_artifact_versions", a.id))
  local tags = tags_by_id(core.query("tags_of_artifact_versions", a.id))
  return versions, md, tags, keys, numeric
end

pages.artifact = function(args, id)
  local p = params(args, { "chart", "chosen", "page" }, { "col" })
  local a = get_artifact(id)
  local versions, md, tags, keys, numeric = artifact_detail(a)
  local list, chart_key = columns_of(p, keys, numeric)
  local chart_html = ""
  if chart_key then
    local numbered = true
    for _, v in ipairs(versions) do numbered = numbered and v.version:find("^%d+$") ~= nil end
    local xs, ys = {}, {}
    for i, v in ipairs(versions) do
      local y = md[v.id] and md[v.id][chart_key]
      if type(y) == "number" then xs[#xs + 1], ys[#ys + 1] = numbered and tonumber(v.version) or i, y end
    end
    chart_html = chart(chart_key .. " across versions", xs, ys,
      numbered and "version" or "version (oldest first)", chart_key)
  end
  local shown = paged(versions, int_param(p, "page", 1, 1000000) or 1)
  local rows = {}
  for i, v in ipairs(shown) do
    local r = { '<input type="checkbox" name="v" value="' .. esc(v.id) .. '" aria-label="compare version '
        .. esc(v.version) .. '">', link("/versions/" .. v.id, v.version), esc(human_time(v.created)),
      esc(shapes.label(v.data_type)), esc(viz.size_text(v.size)), tags_html(tags[v.id]),
      producer_html(v.producer_step_run_id) }
    for _, k in ipairs(list) do r[#r + 1] = value_cell(md[v.id] and md[v.id][k], 40) end
    rows[i] = r
  end
  local head = { "", "version", "created", "data type", "size", "tags", "producer" }
  for _, k in ipairs(list) do head[#head + 1] = k end
  local body = string.format('<h1>%s <span class="note">artifact</span></h1>\n', esc(a.name))
    .. fields_html {
      { "id", a.id }, { "created", human_time(a.created) },
      { "versions", link("/artifacts", tostring(#versions), { { "name", exactly(a.name) } }), raw = true },
      { "tags", tags_html(a.tags), raw = true },
    }
    .. "\n<h2>Versions</h2>\n" .. columns_form("/artifacts/" .. a.id, keys, numeric, list, chart_key)
    .. (chart_html ~= "" and ('<div class="grid"><div>' .. chart_html .. "</div></div>") or "")
    .. '\n<form method="get" action="/compare">'
    .. table_html(head, rows, "listing")
    .. '<p><button type="submit">compare the versions ticked</button> '
    .. '<span class="note">(two or more)</span></p></form>'
    .. pager("/artifacts/" .. a.id, columns_params(list, chart_key), shown)
  return page(a.name, body)
end

api.artifact = function(args, id)
  params(args, {})
  local a = get_artifact(id)
  local versions, md, tags, keys, numeric = artifact_detail(a)
  local list, numbers = {}, {}
  for i, v in ipairs(versions) do
    list[i] = json.object { id = v.id, version = v.version, created = v.created,
      data_type = v.data_type, size = v.size, content_hash = v.content_hash,
      tags = json.array(tags[v.id] or {}), run_metadata = json.object(md[v.id] or {}),
      producer_step_run_id = opt(v.producer_step_run_id) }
  end
  for _, k in ipairs(keys) do
    if numeric[k] then numbers[#numbers + 1] = k end
  end
  return json.object { id = a.id, name = a.name, created = a.created, tags = records.tags(a.tags),
    metadata_keys = json.array(keys), numeric_keys = json.array(numbers),
    versions = json.array(list) }
end

-- A pipeline's runs, newest first, with their tags and metadata.
local function pipeline_detail(pl)
  local runs = core.query("runs_of_pipeline", pl.id)
  for _, r in ipairs(runs) do client_mod.run_of(r) end
  local md, keys, numeric = metadata_by_id(core.query("metadata_of_pipeline_runs", pl.id))
  local tags = tags_by_id(core.query("tags_of_pipeline_runs", pl.id))
  return runs, md, tags, keys, numeric
end

pages.pipeline = function(args, id)
  local p = params(args, { "chart", "chosen", "page" }, { "col" })
  local pl = get_pipeline(id)
  local runs, md, tags, keys, numeric = pipeline_detail(pl)
  local list, chart_key = columns_of(p, keys, numeric)
  local chart_html = ""
  local running = false
  if chart_key then
    local xs, ys = {}, {}
    for i = #runs, 1, -1 do
      local y = md[runs[i].id] and md[runs[i].id][chart_key]
      if type(y) == "number" then xs[#xs + 1], ys[#ys + 1] = #runs - i + 1, y end
    end
    chart_html = chart(chart_key .. " across runs", xs, ys, "run (oldest first)", chart_key)
  end
  local oldest_first = {}
  for i = #runs, 1, -1 do oldest_first[#oldest_first + 1] = runs[i] end
  local shown = paged(oldest_first, int_param(p, "page", 1, 1000000) or 1)
  local rows = {}
  for i, run in ipairs(shown) do
    running = running or run.status == "running"
    local r = { '<input type="checkbox" name="r" value="' .. esc(run.id) .. '" aria-label="compare run '
        .. esc(run.name) .. '">', link("/runs/" .. run.id, run.name), status_badge(run.status),
      esc(human_time(run.start_time)),
      esc(human_ms(elapsed_ms(run))),
      tags_html(tags[run.id]) }
    for _, k in ipairs(list) do r[#r + 1] = value_cell(md[run.id] and md[run.id][k], 40) end
    rows[i] = r
  end
  local head = { "", "run", "status", "started", "duration", "tags" }
  for _, k in ipairs(list) do head[#head + 1] = k end
  local body = string.format('<h1>%s <span class="note">pipeline</span></h1>\n', esc(pl.name))
    .. fields_html {
      { "id", pl.id }, { "created", human_time(pl.created) },
      { "runs", link("/", tostring(#runs), { { "pipeline", exactly(pl.name) } }), raw = true },
    }
    .. "\n<h2>Runs</h2>\n" .. columns_form("/pipelines/" .. pl.id, keys, numeric, list, chart_key)
    .. (chart_html ~= "" and ('<div class="grid"><div>' .. chart_html .. "</div></div>") or "")
    .. '\n<form method="get" action="/compare">'
    .. table_html(head, rows, "listing")
    .. '<p><button type="submit">compare the runs ticked</button> '
    .. '<span class="note">(two or more)</span></p></form>'
    .. pager("/pipelines/" .. pl.id, columns_params(list, chart_key), shown)
  return page(pl.name, body, running and M.REFRESH_SECONDS or nil)
end

api.pipeline = function(args, id)
  params(args, {})
  local pl = get_pipeline(id)
  local runs, md, tags, keys, numeric = pipeline_detail(pl)
  local list, numbers = {}, {}
  for i, run in ipairs(runs) do
    local o = records.run(run)
    o.tags = json.array(tags[run.id] or {})
    o.run_metadata = json.object(md[run.id] or {})
    list[i] = o
  end
  for _, k in ipairs(keys) do
    if numeric[k] then numbers[#numbers + 1] = k end
  end
  return json.object { id = pl.id, name = pl.name, created = pl.created,
    metadata_keys = json.array(keys), numeric_keys = json.array(numbers), runs = json.array(list) }
end

-- ---- search ----

M.SEARCH_MAX = 200   -- bytes of a query

local function search_of(p)
  local q = p.q
  if q and #q > M.SEARCH_MAX then
    http_error(400, "query parameter 'q' is longer than %d bytes", M.SEARCH_MAX)
  end
  return q and search.find(q)
end

-- Where a metadata row is: a link to its version, run or step run.
local function owner_link(o)
  local path = o.kind == "artifact_version" and "/versions/" or o.kind == "pipeline_run" and "/runs/"
    or "/steps/"
  return link(path .. o.id, o.label)
end

local function near_note(row)
  return row.near and ' <span class="note">(near spelling)</span>' or ""
end

pages.search = function(args)
  local p = params(args, { "q" })
  local r = search_of(p)
  if not r then
    return page("Search", '<h1>Search</h1>\n<p class="note">One box for artifacts, versions '
      .. "(name:version), runs, pipelines, tags, metadata keys and values, and ids: it matches "
      .. "parts of names in any case, and names spelled nearly right.</p>")
  end
  local sections = {}
  local function section(title, head, rows, more)
    if #rows == 0 then return end
    sections[#sections + 1] = "<h2>" .. esc(title) .. ' <span class="note">' .. #rows
      .. (more and "+" or "") .. "</span></h2>\n" .. table_html(head, rows)
      .. (more and ('<p class="note">the first ' .. #rows .. " are shown" .. (type(more) == "string"
        and (": " .. more) or "") .. "</p>") or "")
  end
  local rows = {}
  for i, a in ipairs(r.artifacts) do
    rows[i] = { link("/artifacts/" .. a.id, a.name) .. near_note(a), tostring(a.version_count) }
  end
  section("Artifacts", { "artifact", "versions" }, rows, r.more.artifacts)
  rows = {}
  for i, v in ipairs(r.versions) do
    rows[i] = { link("/versions/" .. v.id, client_mod.version_label(v.name, v.version)),
      artifact_link(v.name), esc(shapes.label(v.data_type)), esc(human_time(v.created)) }
  end
  section("Versions", { "version", "artifact", "data type", "created" }, rows, r.more.versions
    and link("/artifacts", "all versions whose name contains it", { { "name", "contains:" .. r.query } }))
  rows = {}
  for i, run in ipairs(r.runs) do
    rows[i] = { link("/runs/" .. run.id, run.name), pipeline_link(run.pipeline_name),
      status_badge(run.status), esc(human_time(run.start_time)) }
  end
  section("Runs", { "run", "pipeline", "status", "started" }, rows, r.more.runs)
  rows = {}
  for i, pl in ipairs(r.pipelines) do rows[i] = { link("/pipelines/" .. pl.id, pl.name) .. near_note(pl) } end
  section("Pipelines", { "pipeline" }, rows, r.more.pipelines)
  rows = {}
  for i, t in ipairs(r.tags) do
    rows[i] = { '<span class="tag">' .. esc(t.name) .. "</span>" .. near_note(t), tostring(t.tagged_count),
      link("/artifacts", "versions", { { "tag", exactly(t.name) } }) .. " · "
        .. link("/", "runs", { { "tag", exactly(t.name) } }) }
  end
  section("Tags", { "tag", "on", "tagged" }, rows, r.more.tags)
  rows = {}
  for i, m in ipairs(r.metadata) do
    rows[i] = { esc(m.key), value_cell(m.value), owner_link(m.owner), esc(m.owner.kind:gsub("_", " ")) }
  end
  section("Metadata", { "key", "value", "on", "of a" }, rows, r.more.metadata)
  local suggest = ""
  if #r.suggestions > 0 then
    local links = {}
    for i, name in ipairs(r.suggestions) do links[i] = link("/search", name, { { "q", name } }) end
    suggest = '<p class="suggest">Did you mean ' .. table.concat(links, " ") .. "</p>\n"
  end
  local body = string.format("<h1>Search: %s</h1>\n", esc(r.query)) .. suggest
    .. (#sections > 0 and table.concat(sections, "\n")
      or ('<p class="note">Nothing matches “' .. esc(r.query) .. "”.</p>"))
  return page("Search " .. r.query, body, nil, r.query)
end

api.search = function(args)
  local p = params(args, { "q" })
  local r = search_of(p)
  if not r then http_error(400, "query parameter 'q' is required") end
  local function list(items, f)
    local out = {}
    for i, x in ipairs(items) do out[i] = f(x) end
    return json.array(out)
  end
  return json.object { query = r.query,
    artifacts = list(r.artifacts, function(a)
      return json.object { id = a.id, name = a.name, version_count = a.version_count, near = opt(a.near) }
    end),
    versions = list(r.versions, function(v) return version_json(client_mod.version_of(v)) end),
    runs = list(r.runs, function(run) return records.run(client_mod.run_of(run)) end),
    pipelines = list(r.pipelines, function(pl)
      return json.object { id = pl.id, name = pl.name, created = pl.created, near = opt(pl.near) }
    end),
    tags = list(r.tags, function(t)
      return json.object { name = t.name, tagged_count = t.tagged_count, near = opt(t.near) }
    end),
    metadata = list(r.metadata, function(m)
      return json.object { key = m.key, value = m.value, on = json.object { kind = m.owner.kind,
        id = m.owner.id, label = m.owner.label } }
    end),
    more = json.object(r.more), suggestions = json.array(r.suggestions) }
end

-- ---- compare ----

-- The ids to compare, checked: v (versions) or r (runs), two or more, at
-- most M.COMPARE_MAX.
local function compared(p)
  if #p.v > 0 and #p.r > 0 then
    http_error(400, "compare takes versions (v=) or runs (r=), not both")
  end
  local list, what = #p.v > 0 and p.v or p.r, #p.v > 0 and "versions" or "runs"
  if #list < 2 or #list > M.COMPARE_MAX then
    http_error(400, "compare takes from 2 to %d versions (v=ID&v=ID) or runs (r=ID&r=ID) (got %d)",
      M.COMPARE_MAX, #list)
  end
  return list, what
end

-- The value of av to compare (its plain stored form), or nil and why not.
local function comparable(av)
  if FILES[av.data_type] then return nil, "a " .. shapes.label(av.data_type) end
  if av.size > M.COMPARE_BYTES then
    return nil, string.format("too large to compare here (%s)", viz.size_text(av.size))
  end
  return attempt(500, av.load, av, { raw = true })
end

-- What differs between the values of versions: {
--   kind = "tables" | "numbers" | "number_map" | "other",
--   same = all have the same content hash,
--   why = why the values were not compared (nil: they were),
--   values = { the values }, tables = { { columns, rows, n } },
--   diffs = { [i] = diff of version i against the first (i >= 2) } }
local function value_diff(list, key)
  local out = { same = true, values = {}, kind = "other", diffs = {} }
  for i, av in ipairs(list) do
    out.same = out.same and av.content_hash == list[1].content_hash
    local v, why = comparable(av)
    if why then
      out.why = client_mod.version_label(av.name, av.version) .. " is " .. why
      return out
    end
    out.values[i] = v
  end
  local kinds = {}
  for i, v in ipairs(out.values) do
    local k = shapes.data_type(v)
    kinds[i] = (k == "records" or k == "columns") and "tables" or k
  end
  for i = 2, #kinds do
    if kinds[i] ~= kinds[1] then return out end
  end
  if kinds[1] == "tables" then
    out.kind, out.tables = "tables", {}
    for i, v in ipairs(out.values) do
      local cols, rows, n = shapes.tabular(v)
      out.tables[i] = { columns = cols, rows = rows, n = n }
    end
    for i = 2, #list do
      local d, why = diff.tables(out.tables[1], out.tables[i], key)
      if not d then http_error(400, "query parameter 'key': %s", why) end
      out.diffs[i] = d
    end
  elseif kinds[1] == "numbers" then
    out.kind = "numbers"
    for i = 2, #list do out.diffs[i] = diff.numbers(out.values[1], out.values[i]) end
  elseif kinds[1] == "number_map" then
    out.kind = "number_map"
    out.diffs = diff.maps(out.values)
  end
  return out
end

local function label_of(av) return client_mod.version_label(av.name, av.version) end

-- The rows of one table's difference, as HTML: added, removed, changed
-- (the changed cells with the old value struck through above the new).
local function table_diff_html(d, base, other)
  local cols = d.columns
  local head = { d.key and ("row (" .. d.key .. ")") or "row", "change" }
  for _, c in ipairs(cols.common) do head[#head + 1] = c end
  local rows = {}
  local function add(at, what, class, row, changed)
    if #rows >= M.DIFF_ROWS then return end
    local r = { esc(type(at) == "number" and math.type(at) == "integer" and not d.key and ("#" .. at) or tostring(at)),
      what, class = class }
    for _, c in ipairs(cols.common) do
      local cell = value_cell(row[c])
      if changed and changed.set[c] then
        cell = '<del>' .. value_cell(changed.before[c]) .. "</del><br><ins>" .. cell .. "</ins>"
      end
      r[#r + 1] = cell
    end
    rows[#rows + 1] = r
  end
  for _, c in ipairs(d.changed) do
    local set = {}
    for _, name in ipairs(c.columns) do set[name] = true end
    add(c.at, "changed", "diff", c.after, { set = set, before = c.before })
  end
  for _, a in ipairs(d.added) do add(a.at, "added", "added", a.row) end
  for _, r in ipairs(d.removed) do add(r.at, "removed", "removed", r.row) end
  local function names(list)
    local out = {}
    for i, n in ipairs(list) do out[i] = "<code>" .. esc(n) .. "</code>" end
    return #out > 0 and table.concat(out, ", ") or "none"
  end
  local total = #d.changed + #d.added + #d.removed
  return string.format("<h3>%s against %s</h3>\n", esc(label_of(other)), esc(label_of(base)))
    .. string.format('<p>rows: <b>%d added</b>, <b>%d removed</b>, <b>%d changed</b>, %d the same '
      .. "(matched %s) · columns added: %s · removed: %s</p>\n", #d.added, #d.removed, #d.changed,
      d.unchanged, d.key and ("by column <code>" .. esc(d.key) .. "</code>") or "by position",
      names(cols.added), names(cols.removed))
    .. (total > 0 and table_html(head, rows) or "")
    .. (total > #rows and string.format('<p class="note">the first %d of %d rows that differ</p>',
      #rows, total) or "")
end

local function versions_compare_html(list, vd, md)
  local fields = {
    { "artifact", function(av) return artifact_link(av.name) end },
    { "version", function(av) return link("/versions/" .. av.id, av.version) end },
    { "data type", function(av) return esc(shapes.label(av.data_type)) end },
    { "size", function(av) return esc(viz.size_text(av.size)) end },
    { "content hash", function(av) return esc(av.content_hash:sub(1, 19)) end },
    { "created", function(av) return esc(human_time(av.created)) end },
    { "producer", function(av) return producer_html(av.producer_step_run_id) end },
    { "tags", function(av) return tags_html(av.tags) end },
  }
  local head = { "" }
  for i, av in ipairs(list) do head[i + 1] = label_of(av) end
  local rows = {}
  for i, f in ipairs(fields) do
    local r = { esc(f[1]) }
    for j, av in ipairs(list) do r[j + 1] = f[2](av) end
    for j = 3, #r do
      if r[j] ~= r[2] then r.class = "diff" end
    end
    rows[i] = r
  end
  local mrows = {}
  for i, m in ipairs(md) do
    local r = { esc(m.key), class = m.differs and "diff" or nil }
    for j = 1, #list do r[j + 1] = value_cell(m.values[j]) end
    mrows[i] = r
  end
  local out = { "<h1>Compare versions</h1>\n", table_html(head, rows),
    "\n<h2>Metadata</h2>\n", table_html(head, mrows), "\n<h2>Value</h2>\n" }
  if vd.same then
    out[#out + 1] = '<p>The same value (the same content hash).</p>'
  elseif vd.why then
    out[#out + 1] = '<p class="note">The values differ; not compared: ' .. esc(vd.why) .. ".</p>"
  elseif vd.kind == "tables" then
    for i = 2, #list do out[#out + 1] = table_diff_html(vd.diffs[i], list[1], list[i]) end
  elseif vd.kind == "numbers" then
    local series, srows = {}, {}
    for i, v in ipairs(vd.values) do
      series[i] = { name = label_of(list[i]), y = v }
      local d = vd.diffs[i]
      srows[i] = { esc(label_of(list[i])), tostring(#v),
        d and tostring(d.differing) or "", d and value_cell(d.largest) or "" }
    end
    out[#out + 1] = '<div class="grid"><div>' .. inline_svg(viz.render_plot { kind = "line",
      series = series, title = list[1].name .. ": the arrays", xlabel = "position" }, "chart")
      .. "</div></div>"
    out[#out + 1] = table_html({ "version", "length", "positions that differ from the first",
      "largest difference" }, srows)
  elseif vd.kind == "number_map" then
    local series, krows = {}, {}
    local xs = {}
    for i, m in ipairs(vd.diffs) do xs[i] = m.key end
    for i = 1, #list do
      local ys = {}
      for k, m in ipairs(vd.diffs) do ys[k] = m.values[i] or (0 / 0) end
      series[i] = { name = label_of(list[i]), y = ys }
    end
    for i, m in ipairs(vd.diffs) do
      local r = { esc(m.key), class = m.differs and "diff" or nil }
      for j = 1, #list do r[j + 1] = value_cell(m.values[j]) end
      krows[i] = r
    end
    out[#out + 1] = '<div class="grid"><div>' .. inline_svg(viz.render_plot { kind = "bar", x = xs,
      series = series, title = list[1].name }, "chart") .. "</div></div>"
    out[#out + 1] = table_html(head, krows)
  else
    local cells = {}
    for i, v in ipairs(vd.values) do
      cells[i] = "<div><h3>" .. esc(label_of(list[i])) .. '</h3><pre class="value">'
        .. esc(viz.clean(viz.shorten(value_json(v), 4000))) .. "</pre></div>"
    end
    out[#out + 1] = "<p>The values differ.</p>\n" .. '<div class="grid">' .. table.concat(cells) .. "</div>"
  end
  local vcells = {}
  for i, av in ipairs(list) do
    vcells[i] = "<div><h3>" .. esc(label_of(av)) .. "</h3>" .. viz_sections(av) .. "</div>"
  end
  out[#out + 1] = '\n<h2>Visualizations</h2>\n<div class="grid">' .. table.concat(vcells) .. "</div>"
  return table.concat(out)
end

-- Runs side by side: for each step (by invocation name, in the order of
-- the first run, then the others'), its step run in each run (or nil).
local function runs_side_by_side(runs)
  local order, seen, by = {}, {}, {}
  for j, run in ipairs(runs) do
    by[j] = {}
    for _, sr in ipairs(steps_of(run)) do
      if not seen[sr.name] then seen[sr.name], order[#order + 1] = true, sr.name end
      by[j][sr.name] = sr
    end
  end
  return order, by
end

-- For each step and each of its parameters: the values in each run;
-- for each step and output: the version in each run, with its hash.
local function steps_diff(runs, order, by)
  local params_rows, outputs = {}, {}
  for _, name in ipairs(order) do
    local maps = {}
    for j = 1, #runs do maps[j] = by[j][name] and by[j][name].parameters or {} end
    for _, m in ipairs(diff.maps(maps)) do
      params_rows[#params_rows + 1] = { step = name, name = m.key, values = m.values, differs = m.differs }
    end
    local outs, seen = {}, {}
    for j = 1, #runs do
      local sr = by[j][name]
      for _, l in ipairs(sr and sr.links or {}) do
        if l.kind ~= "input" and not seen[l.name] then
          seen[l.name] = true
          outs[#outs + 1] = l.name
        end
      end
    end
    for _, out_name in ipairs(outs) do
      local versions, same = {}, true
      for j = 1, #runs do
        local sr = by[j][name]
        for _, l in ipairs(sr and sr.links or {}) do
          if l.kind ~= "input" and l.name == out_name then
            local row = core.query("version_by_id", l.version.id)[1]
            versions[j] = { id = l.version.id, name = l.version.name, version = l.version.version,
              content_hash = row and row.content_hash, deleted = l.version.deleted }
          end
        end
        if not versions[j] or not versions[1] or versions[j].content_hash ~= versions[1].content_hash then
          same = false
        end
      end
      outputs[#outputs + 1] = { step = name, name = out_name, versions = versions, same = same }
    end
  end
  return params_rows, outputs
end

local function runs_compare_html(runs, order, by, params_rows, outputs, md)
  local head = { "" }
  for j, run in ipairs(runs) do head[j + 1] = run.name end
  local function row_of(label, f)
    local r = { esc(label) }
    for j, run in ipairs(runs) do r[j + 1] = f(run, j) end
    for j = 3, #r do
      if r[j] ~= r[2] then r.class = "diff" end
    end
    return r
  end
  local frows = {
    row_of("run", function(run) return link("/runs/" .. run.id, run.name) end),
    row_of("pipeline", function(run) return pipeline_link(run.pipeline_name) end),
    row_of("status", function(run) return status_badge(run.status) end),
    row_of("started", function(run) return esc(human_time(run.start_time)) end),
    row_of("duration", function(run)
      return esc(human_ms(elapsed_ms(run)))
    end),
    row_of("tags", function(run) return tags_html(run.tags) end),
  }
  frows[1].class, frows[4].class, frows[5].class = nil, nil, nil   -- always differ
  local mrows = {}
  for i, m in ipairs(md) do
    local r = { esc(m.key), class = m.differs and "diff" or nil }
    for j = 1, #runs do r[j + 1] = value_cell(m.values[j]) end
    mrows[i] = r
  end
  local srows = {}
  for i, name in ipairs(order) do
    local r = { esc(name) }
    local keys = {}
    for j = 1, #runs do
      local sr = by[j][name]
      if sr then
        local cache = cache_state(sr)
        r[j + 1] = '<a href="' .. href("/steps/" .. sr.id) .. '">' .. status_badge(sr.status) .. "</a>"
          .. (cache and (' <span class="note">cache ' .. esc(cache) .. "</span>") or "")
          .. ' <span class="note">' .. esc(human_ms(elapsed_ms(sr))) .. "</span>"
        keys[j] = sr.status .. "/" .. tostring(cache)
      else
        r[j + 1], keys[j] = '<span class="note">not in this run</span>', "none"
      end
    end
    for j = 2, #runs do
      if keys[j] ~= keys[1] then r.class = "diff" end
    end
    srows[i] = r
  end
  local prows, same = {}, 0
  for _, pr in ipairs(params_rows) do
    if pr.differs then
      local r = { esc(pr.step .. "." .. pr.name), class = "diff" }
      for j = 1, #runs do r[j + 1] = value_cell(pr.values[j]) end
      prows[#prows + 1] = r
    else
      same = same + 1
    end
  end
  local orows = {}
  for i, o in ipairs(outputs) do
    local r = { esc(o.step .. " → " .. o.name), class = not o.same and "diff" or nil }
    for j = 1, #runs do
      r[j + 1] = o.versions[j] and version_link(o.versions[j]) or '<span class="note">none</span>'
    end
    local ids = {}
    for j = 1, #runs do
      if o.versions[j] and not o.versions[j].deleted then ids[#ids + 1] = { "v", o.versions[j].id } end
    end
    r[#runs + 2] = o.same and "the same value"
      or ("differ" .. (#ids > 1 and (" · " .. link("/compare", "compare", ids)) or ""))
    orows[i] = r
  end
  local ohead = { table.unpack(head) }
  ohead[#ohead + 1] = "values"
  return "<h1>Compare runs</h1>\n" .. table_html(head, frows)
    .. "\n<h2>Metadata</h2>\n" .. table_html(head, mrows)
    .. "\n<h2>Steps</h2>\n" .. table_html(head, srows)
    .. "\n<h2>Parameters</h2>\n" .. (#prows > 0 and table_html(head, prows)
      or '<p class="note">no parameter differs</p>')
    .. string.format('<p class="note">%d parameter%s the same in every run</p>', same,
      same == 1 and " is" or "s are")
    .. "\n<h2>Outputs</h2>\n" .. table_html(ohead, orows)
end

local function runs_compared(ids)
  local runs = {}
  for i, id in ipairs(ids) do runs[i] = get_run(id) end
  table.sort(runs, function(a, b) return a.start_time < b.start_time end)
  local order, by = runs_side_by_side(runs)
  local params_rows, outputs = steps_diff(runs, order, by)
  local metas = {}
  for i, run in ipairs(runs) do metas[i] = run.run_metadata end
  return runs, order, by, params_rows, outputs, diff.maps(metas)
end

local function versions_compared(ids, key)
  local list, metas = {}, {}
  for i, id in ipairs(ids) do list[i] = get_version(id) end
  table.sort(list, function(a, b) return a.created < b.created end)
  for i, av in ipairs(list) do metas[i] = av.run_metadata end
  return list, value_diff(list, key), diff.maps(metas)
end

pages.compare = function(args)
  local p = params(args, { "key" }, { "v", "r" })
  local ids, what = compared(p)
  if what == "versions" then
    local list, vd, md = versions_compared(ids, p.key)
    local names = {}
    for i, av in ipairs(list) do names[i] = label_of(av) end
    return page("Compare " .. table.concat(names, ", "), versions_compare_html(list, vd, md))
  end
  if p.key then http_error(400, "query parameter 'key' is for comparing versions' tables") end
  local runs, order, by, params_rows, outputs, md = runs_compared(ids)
  local running = false
  for _, run in ipairs(runs) do running = running or run.status == "running" end
  return page("Compare runs", runs_compare_html(runs, order, by, params_rows, outputs, md),
    running and M.REFRESH_SECONDS or nil)
end

-- JSON of a list that may hold nils (absent values): null there.
local function with_nulls(list, n, f)
  local out = {}
  for i = 1, n do
    local v = list[i]
    if v == nil then out[i] = null else out[i] = f and f(v) or v end
  end
  return json.array(out)
end

local function metadata_diff_json(md, n)
  local out = {}
  for i, m in ipairs(md) do
    out[i] = json.object { key = m.key, values = with_nulls(m.values, n), differs = m.differs }
  end
  return json.array(out)
end

local function rows_json(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = json.object { at = x.at, row = json.object(x.row) } end
  return json.array(out)
end

api.compare = function(args)
  local p = params(args, { "key" }, { "v", "r" })
  local ids, what = compared(p)
  if what == "versions" then
    local list, vd, md = versions_compared(ids, p.key)
    local vs = {}
    for i, av in ipairs(list) do vs[i] = version_json(av) end
    local value = json.object { kind = vd.kind, same = vd.same, not_compared = opt(vd.why) }
    if not vd.why and not vd.same then
      local against = {}
      for i = 2, #list do
        local d = vd.diffs[i]
        local o = json.object { version_id = list[i].id }
        if vd.kind == "tables" then
          local changed = {}
          for k, c in ipairs(d.changed) do
            changed[k] = json.object { at = c.at, before = json.object(c.before),
              after = json.object(c.after), columns = json.array(c.columns) }
          end
          o.key = opt(d.key)
          o.columns = json.object { added = json.array(d.columns.added),
            removed = json.array(d.columns.removed), common = json.array(d.columns.common) }
          o.rows = json.object { added = rows_json(d.added), removed = rows_json(d.removed),
            changed = json.array(changed), unchanged = d.unchanged }
        elseif vd.kind == "numbers" then
          o.length = #vd.values[i]
          o.differing = d.differing
          o.largest_difference = opt(d.largest)
        end
        against[#against + 1] = o
      end
      value.against_first = json.array(against)
      if vd.kind == "number_map" then value.keys = metadata_diff_json(vd.diffs, #list) end
    end
    return json.object { versions = json.array(vs), run_metadata = metadata_diff_json(md, #list),
      value = value }
  end
  if p.key then http_error(400, "query parameter 'key' is for comparing versions' tables") end
  local runs, order, by, params_rows, outputs, md = runs_compared(ids)
  local n = #runs
  local rs, steps, ps, os = {}, {}, {}, {}
  for i, run in ipairs(runs) do rs[i] = records.run(run) end
  for i, name in ipairs(order) do
    local per = {}
    for j = 1, n do per[j] = by[j][name] end
    steps[i] = json.object { name = name, runs = with_nulls(per, n, function(sr)
      return json.object { step_run_id = sr.id, status = sr.status, cache = opt(cache_state(sr)),
        duration_ms = opt(elapsed_ms(sr)) }
    end) }
  end
  for i, pr in ipairs(params_rows) do
    ps[i] = json.object { step = pr.step, name = pr.name, values = with_nulls(pr.values, n),
      differs = pr.differs }
  end
  for i, o in ipairs(outputs) do
    os[i] = json.object { step = o.step, name = o.name, same = o.same,
      versions = with_nulls(o.versions, n, function(v)
        local o = records.ref(v)
        o.content_hash = opt(v.content_hash)
        return o
      end) }
  end
  return json.object { runs = json.array(rs), run_metadata = metadata_diff_json(md, n),
    steps = json.array(steps), parameters = json.array(ps), outputs = json.array(os) }
end

-- ---- downloads ----

local downloads = {}

local HTML = "text/html; charset=utf-8"
local JSON = "application/json; charset=utf-8"

-- A download: content type, body, and the headers that make it one (a
-- file name of letters, digits, ".", "-" and "_" only: nothing in it can
-- break the header; a sandbox, should a browser show it anyway).
local function attachment(type_, body, base, ext)
  local name = base:gsub("[^%w%._%-]", "_"):sub(1, 120) .. ext
  return { type = type_, body = body, headers = {
    ["Content-Disposition"] = 'attachment; filename="' .. name .. '"',
    ["Content-Security-Policy"] = CSP .. "; sandbox" } }
end

-- av, checked: small enough to be made in memory, and a value (files and
-- folders have their own download) unless file is set, then a file or
-- folder.
local function downloadable(id, file)
  local av = get_version(id)
  if FILES[av.data_type] and not file then
    http_error(404, "artifact version %s is a %s, not a value: download it from /versions/%s/file",
      av.id, av.data_type == "dir" and "folder" or "file", av.id)
  elseif file and not FILES[av.data_type] then
    http_error(404, "artifact version %s is not a file or folder: download its value as JSON, "
      .. "CBOR or CSV", av.id)
  end
  if av.size > M.DOWNLOAD_BYTES then
    http_error(413, "artifact version %s is too large to download from the dashboard (%d bytes, "
      .. "at most %d): use `lupine artifact export`", av.id, av.size, M.DOWNLOAD_BYTES)
  end
  return av
end

local function file_base(av) return av.name .. "_" .. av.version end

-- The value as JSON ("Values as JSON"); a value a materializer stored is
-- its plain stored form.
downloads.json = function(args, id)
  params(args, {})
  local av = downloadable(id)
  local value = attempt(500, av.load, av, { raw = true })
  return attachment(JSON, json.encode(value) .. "\n", file_base(av), ".json")
end

-- The stored CBOR bytes, as they are.
downloads.cbor = function(args, id)
  params(args, {})
  local av = downloadable(id)
  return attachment("application/cbor", attempt(500, core.read, av.id), file_base(av), ".cbor")
end

-- A table's rows, all of them, as CSV (as the CSV visualization writes
-- them, which stops at 1 MiB).
downloads.csv = function(args, id)
  params(args, {})
  local av = downloadable(id)
  local cols, rows, n = shapes.tabular(attempt(500, av.load, av, { raw = true }))
  if not cols then
    http_error(404, "artifact version %s is not a table (it is %s): it has no CSV", av.id,
      shapes.label(av.data_type))
  end
  return attachment("text/csv; charset=utf-8", (core.csv(rows, cols, n, math.maxinteger,
    math.maxinteger)), file_base(av), ".csv")
end

-- The one file of a ustar archive of one file (as a file is stored): its
-- path and its bytes.
local function untar_one(tar)
  local name = tar:sub(1, 100):match("^[^%z]*")
  local prefix = tar:sub(346, 500):match("^[^%z]*")
  local size = tonumber(tar:sub(125, 136):match("^%s*([0-7]+)") or "", 8)
  if not size or #tar < 512 + size then return nil end
  return (prefix ~= "" and (prefix .. "/") or "") .. name, tar:sub(513, 512 + size)
end

-- A file as itself; a folder as the tar archive it is stored as (its one
-- top-level entry is the folder).
downloads.file = function(args, id)
  params(args, {})
  local av = downloadable(id, true)
  local tar, msg = core.read_object(av.content_hash, av.size, av.artifact_store_id)
  if not tar then http_error(500, "artifact version %s: %s", av.id, msg) end
  if av.data_type == "dir" then return attachment("application/x-tar", tar, file_base(av), ".tar") end
  local path, bytes = untar_one(tar)
  if not path then http_error(500, "artifact version %s: its stored file is malformed", av.id) end
  local name = path:match("[^/]*$")
  if name:find("^%.*$") then name = file_base(av) end
  return attachment("application/octet-stream", bytes, name, "")
end

-- ---- routing ----

local routes = {
  { "^/$", pages.runs }, { "^/runs/([^/]+)$", pages.run }, { "^/steps/([^/]+)$", pages.step },
  { "^/artifacts$", pages.artifacts }, { "^/versions/([^/]+)$", pages.version },
  { "^/artifacts/([^/]+)$", pages.artifact }, { "^/pipelines/([^/]+)$", pages.pipeline },
  { "^/search$", pages.search }, { "^/compare$", pages.compare },
  { "^/versions/([^/]+)/value%.json$", downloads.json, download = true },
  { "^/versions/([^/]+)/value%.cbor$", downloads.cbor, download = true },
  { "^/versions/([^/]+)/value%.csv$", downloads.csv, download = true },
  { "^/versions/([^/]+)/file$", downloads.file, download = true },
  { "^/api/search$", api.search, json = true }, { "^/api/compare$", api.compare, json = true },
  { "^/api/artifacts/([^/]+)$", api.artifact, json = true },
  { "^/api/pipelines/([^/]+)$", api.pipeline, json = true },
  { "^/api/?$", api.index, json = true }, { "^/api/pipelines$", api.pipelines, json = true },
  { "^/api/runs$", api.runs, json = true }, { "^/api/runs/([^/]+)$", api.run, json = true },
  { "^/api/steps/([^/]+)$", api.step, json = true },
  { "^/api/artifacts$", api.artifacts, json = true },
  { "^/api/versions$", api.versions, json = true },
  { "^/api/versions/([^/]+)$", api.version, json = true },
  { "^/api/versions/([^/]+)/lineage$", api.lineage, json = true },
  { "^/api/versions/([^/]+)/visualizations/(%d+)$", api.visualization, json = true },
}


local function error_response(status, msg, as_json)
  msg = viz.clean(msg)   -- a path may hold any bytes
  if as_json then
    return status, JSON, json.encode(json.object { error = json.object { status = status,
      message = msg } }) .. "\n", headers_for()
  end
  local titles = { [400] = "Bad request", [404] = "Not found", [405] = "Method not allowed",
    [413] = "Too large", [500] = "Internal error" }
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
      if r.download then return 200, body.type, body.body, headers_for(body.headers) end
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
    svg_count, names_list, ids, step_names = 0, nil, {}, {}   -- what one page gathers
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
