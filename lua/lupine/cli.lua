-- SPDX-License-Identifier: MIT
-- lupine.cli: the catalog commands of the `lupine` program, and the tree of
-- every command, which lupine.command parses (one grammar for all) and runs.
-- A command writes with io.write and io.stderr:write and returns the exit
-- status: 0 ok, 1 not found or an operational failure, 2 a usage error.
--
-- Output. With stdout on a terminal, lists are aligned tables (long values
-- cut short with "…") and describe commands labelled fields. Otherwise the
-- same information is printed as tab-separated lines without a header, for
-- scripts: `\`, tab, newline and carriage return inside a field are written
-- as \\, \t, \n and \r. Either way, stored strings reach the terminal
-- through names.visible (other control characters and bytes of invalid
-- UTF-8 as \xHH). --json prints one JSON document: a catalog record as
-- lupine.records shapes it, the dashboard's shape too; values stored in the
-- catalog are converted as M.json documents.

local core = require "lupine.core"
local names = require "lupine.names"
local query = require "lupine.query"       -- the list_* methods with filters and pages
local lineage = require "lupine.lineage"   -- get_lineage, prune_artifacts, gc
local pretty = require "lupine.pretty"     -- tables in terminal columns

local command = require "lupine.command"   -- the grammar, and run, repl, ui, help

local M = {}

local json = require "lupine.json"
M.json = json
local records = require "lupine.records"   -- the records' JSON shapes, the dashboard's too
local duration_ms, human_duration = records.duration_ms, records.human_duration
local opt = records.opt
local byte_lt = json.byte_lt

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, byte_lt)
  return keys
end

-- usage(): a usage error (exit 2); fail(): an operational one (exit 1)
local usage, fail = command.usage, command.fail

-- ---- formatting ----

local function plural(n, one, many)
  return string.format("%d %s", n, n == 1 and one or (many or one .. "s"))
end

local function human_size(n)
  if n == nil then return "" end
  if n < 1024 then return n .. " B" end
  local units, i, x = { "KiB", "MiB", "GiB", "TiB" }, 0, n
  repeat x, i = x / 1024, i + 1 until x < 1024 or i == #units
  return string.format(x < 10 and "%.1f %s" or "%.0f %s", x, units[i])
end

-- "2026-11-27T13:05:01.123456Z" -> "2026-11-27 13:05:01"
local function human_time(t)
  if t == nil then return "" end
  return (t:gsub("^(%d+%-%d+%-%d+)T(%d+:%d+:%d+).*$", "%1 %2"))
end

-- in terminal columns (CJK characters take two)
local text_width, truncate = pretty.width, pretty.truncate

local function tsv_field(s)
  return names.visible((tostring(s):gsub("[\\\t\n\r]", { ["\\"] = "\\\\", ["\t"] = "\\t",
    ["\n"] = "\\n", ["\r"] = "\\r" })))
end

local function tsv_line(fields)
  local out = {}
  for i, f in ipairs(fields) do out[i] = tsv_field(f) end
  io.write(table.concat(out, "\t"), "\n")
end

-- The compact JSON of a stored value, for humans and tab-separated lines.
local function value_text(v)
  return json.encode(v)
end

-- A list: on a terminal an aligned table with a header; otherwise the
-- `plain` fields of each row, tab-separated. cols: { title, max, right }.
local function print_table(ctx, cols, rows)
  if not ctx.tty then
    for _, row in ipairs(rows) do tsv_line(row.plain) end
    return
  end
  local cells = {}
  for r, row in ipairs(rows) do cells[r] = row.human end
  io.write(pretty.columns(cols, cells), "\n")
end

-- Labelled fields of one record: "label  value" on a terminal (values
-- cut to the line), "key<TAB>value" otherwise. fields: { key, label, value }
-- with value a string or a list of strings (one line each).
local function print_record(ctx, fields)
  local width = 0
  for _, f in ipairs(fields) do width = math.max(width, text_width(f[2])) end
  for _, f in ipairs(fields) do
    local v = f[3]
    if ctx.tty then
      local list = type(v) == "table" and v or { v }
      if #list == 0 then list = { "" } end
      for i, s in ipairs(list) do
        local label = i == 1 and f[2] or ""
        local text = (label .. string.rep(" ", width - text_width(label)) .. "  "
          .. truncate(names.visible((s:gsub("\n", " "))), 100)):gsub("%s+$", "")
        io.write(text, "\n")
      end
    elseif type(v) == "table" then
      for _, s in ipairs(v) do tsv_line { f[1], s } end
    else
      tsv_line { f[1], v }
    end
  end
end

local function print_json(v)
  io.write(json.encode(v), "\n")
end

-- The paging line of a list: on stdout under a terminal table, on stderr
-- otherwise (stdout then holds only rows), and only if there are more pages.
local function print_paging(ctx, list, noun)
  local pages = list.total_pages or 1
  if pages <= 1 and (list.page or 1) <= 1 then return end
  local msg = string.format("page %d of %d (%s)", list.page, pages,
    plural(list.total, noun))
  if list.page < pages then msg = msg .. string.format("; --page %d for more", list.page + 1) end
  if ctx.tty then io.write(msg, "\n") else io.stderr:write(msg, "\n") end
end

-- A page of a listing: its table (or, under a terminal, what an empty one
-- means), then the paging line; noun names one row in that line.
local function print_listing(ctx, list, empty, noun, columns, rows)
  if #list > 0 then
    print_table(ctx, columns, rows)
  elseif ctx.tty then
    io.write(empty, "\n")
  end
  print_paging(ctx, list, noun)
  return 0
end

-- ---- resolving arguments ----

-- NAME[:VERSION]|ID: an artifact named exactly key (its latest version);
-- else NAME:VERSION split at the last ":" not next to another ":" (names
-- like "p::step::output" contain "::"); else an id or unique id prefix.
local function resolve_version(client, key)
  if core.query("artifact_by_name", key)[1] then return client:get_artifact_version(key) end
  local name, version = key:match("^(.*[^:]):([^:]+)$")
  if name then return client:get_artifact_version(name, version) end
  return client:get_artifact_version(key)
end

-- ---- the commands ----


local function cmd_artifact_list(ctx)
  local o = ctx.opts
  local page, size = o.page, o.size
  local list = ctx.client:list_artifacts { name = o.name, tag = o.tag, page = page, size = size }
  if o.json then print_json(records.page(list, records.artifact)); return 0 end
  local rows = {}
  for i, a in ipairs(list) do
    local latest = a.latest_version
    local tags = table.concat(a.tags or {}, ",")
    rows[i] = {
      human = { a.id:sub(1, 8), a.name, a.version_count, latest and latest.version or "",
        human_time(a.created), table.concat(a.tags or {}, ", ") },
      plain = { a.id, a.name, a.version_count, latest and latest.version or "", a.created, tags },
    }
  end
  return print_listing(ctx, list, "no artifacts", "artifact",
    { { title = "ID", max = 8 }, { title = "NAME" }, { title = "VERSIONS", right = true },
      { title = "LATEST" }, { title = "CREATED" }, { title = "TAGS" } }, rows)
end

local function cmd_version_list(ctx)
  local o = ctx.opts
  local page, size = o.page, o.size
  local run = o.run and ctx.client:get_pipeline_run(o.run)   -- "not found; did you mean"
  -- newest first, as every list of the CLI (the client's default is oldest first)
  local list = ctx.client:list_artifact_versions { name = o.name, tag = o.tag,
    artifact_type = o.type, pipeline_run = run, page = page, size = size,
    sort_by = "desc:created" }
  if o.json then print_json(records.page(list, records.version)); return 0 end
  local rows = {}
  for i, av in ipairs(list) do
    rows[i] = {
      human = { av.id:sub(1, 8), av.name, av.version, av.type, av.data_type,
        human_size(av.size), human_time(av.created), table.concat(av.tags, ", ") },
      plain = { av.id, av.name, av.version, av.type, av.data_type, av.size, av.created,
        table.concat(av.tags, ",") },
    }
  end
  return print_listing(ctx, list, "no artifact versions", "version",
    { { title = "ID", max = 8 }, { title = "NAME" }, { title = "VERSION" }, { title = "TYPE" },
      { title = "DATA TYPE" }, { title = "SIZE", right = true }, { title = "CREATED" },
      { title = "TAGS" } }, rows)
end

local function describe_version(ctx, av)
  if ctx.opts.json then
    print_json(records.version_record(av))
    return 0
  end
  local sr = av.producer_step_run
  local md, md_lines = av.run_metadata, {}
  for _, k in ipairs(sorted_keys(md)) do
    md_lines[#md_lines + 1] = ctx.tty and (k .. " = " .. value_text(md[k]))
      or (tsv_field(k) .. "\t" .. value_text(md[k]))
  end
  if ctx.tty then
    print_record(ctx, {
      { "artifact", "artifact version", av.name .. ":" .. av.version },
      { "id", "id", av.id },
      { "type", "type", av.type },
      { "data_type", "data type", av.data_type },
      { "size", "size", string.format("%s (stored %s)", human_size(av.size),
        human_size(av.stored_size)) },
      { "content_hash", "content hash", av.content_hash },
      { "uri", "uri", av.uri },
      { "created", "created", human_time(av.created) .. " UTC" },
      { "tags", "tags", table.concat(av.tags, ", ") },
      { "producer", "produced by", sr and string.format("step '%s' of run '%s'", sr.name,
        sr.pipeline_run.name) or "" },
      { "save_type", "saved as", av.save_type },
      { "metadata", "metadata", md_lines },
    })
    return 0
  end
  local fields = {
    { "id", "", av.id }, { "name", "", av.name }, { "version", "", av.version },
    { "type", "", av.type }, { "data_type", "", av.data_type },
    { "content_hash", "", av.content_hash }, { "size", "", tostring(av.size) },
    { "stored_size", "", tostring(av.stored_size) }, { "uri", "", av.uri },
    { "codec_version", "", tostring(av.codec_version) }, { "created", "", av.created },
    { "tags", "", table.concat(av.tags, ",") },
    { "producer_step", "", sr and sr.name or "" },
    { "producer_run", "", sr and sr.pipeline_run.name or "" },
    { "save_type", "", av.save_type },
  }
  print_record(ctx, fields)
  for _, line in ipairs(md_lines) do io.write("metadata\t", line, "\n") end
  return 0
end

local function cmd_version_describe(ctx)
  return describe_version(ctx, resolve_version(ctx.client, ctx.args[1]))
end

local function cmd_version_update(ctx)
  local o = ctx.opts
  if #o.tag == 0 and #o["remove-tag"] == 0 then
    usage(ctx.path, "nothing to do: give -t TAG to add a tag or -r TAG to remove one")
  end
  for _, list in ipairs { o.tag, o["remove-tag"] } do
    for _, t in ipairs(list) do
      local ok, msg = pcall(names.check, "tag", t)
      if not ok then usage(ctx.path, "%s", msg) end
    end
  end
  local av = resolve_version(ctx.client, ctx.args[1])
  av = ctx.client:update_artifact_version(av, { add_tags = o.tag, remove_tags = o["remove-tag"] })
  if o.json then return describe_version(ctx, av) end
  local tags = av.tags
  io.write(names.visible(string.format("%s:%s tags: %s", av.name, av.version,
    #tags > 0 and table.concat(tags, ", ") or "(none)")), "\n")
  return 0
end

local function cmd_export(ctx)
  local o = ctx.opts
  local format = o.format or "json"
  if o.json and o.format == "cbor" and not o.output then
    usage(ctx.path, "--json and --format cbor ask for different things")
  end
  local av = resolve_version(ctx.client, ctx.args[1])
  local data
  if av.data_type == "file" or av.data_type == "dir" then
    -- a file or a folder is written back out as it was, not as a value
    if not o.output then
      usage(ctx.path, string.format("%s:%s is a %s: give -o PATH to write it to", av.name,
        av.version, av.data_type == "dir" and "folder" or "file"))
    end
    local ok, msg = pcall(core.export_path, av.id, o.output)
    if not ok then fail("%s", msg) end
    io.write(names.visible(string.format("wrote %s:%s to %s", av.name, av.version, o.output)),
      "\n")
    return 0
  end
  if format == "cbor" then
    data = core.read(av.id)
  else
    data = json.encode(av:load()) .. "\n"
  end
  if not o.output then
    if format == "cbor" and ctx.tty then
      usage(ctx.path, "not writing CBOR to a terminal: give -o FILE or redirect stdout")
    end
    io.write(data)
    return 0
  end
  local f, msg = io.open(o.output, "wb")
  if not f then fail("cannot write %s", msg) end
  local ok, werr = f:write(data)
  local closed, cerr = f:close()
  if not ok or not closed then fail("cannot write %s: %s", o.output, werr or cerr) end
  if o.json then
    print_json(json.object { id = av.id, name = av.name, version = av.version,
      format = format, file = o.output, bytes = #data })
  else
    io.write(names.visible(string.format("wrote %s:%s as %s to %s (%s)", av.name, av.version,
      format, o.output, plural(#data, "byte"))), "\n")
  end
  return 0
end

-- One self-contained HTML page with a version's visualizations (lupine.viz):
-- to -o FILE; without it, to stdout, or on a terminal (and for --json,
-- which reports the file) to a new file in $TMPDIR.
local function cmd_visualize(ctx)
  local o, viz = ctx.opts, require "lupine.viz"
  local av = resolve_version(ctx.client, ctx.args[1])
  local html = viz.document(av)
  local file = o.output
  if not file and not ctx.tty and not o.json then
    io.write(html)
    return 0
  end
  local f, msg
  if not file then
    file, msg = core.temp_file(av.name .. "-" .. av.version, ".html")
    if not file then fail("%s", msg) end
  end
  f, msg = io.open(file, "wb")
  if not f then fail("cannot write %s", msg) end
  local ok, werr = f:write(html)
  local closed, cerr = f:close()
  if not ok or not closed then fail("cannot write %s: %s", file, werr or cerr) end
  local n = #av.visualizations
  if o.json then
    print_json(json.object { id = av.id, name = av.name, version = av.version, file = file,
      visualizations = n, bytes = #html })
  else
    io.write(names.visible(string.format("wrote %s of %s:%s to %s", plural(n, "visualization"),
      av.name, av.version, file)), "\n")
  end
  return 0
end

local function cmd_pipeline_list(ctx)
  local o = ctx.opts
  local list = ctx.client:list_pipelines { name = o.name, page = o.page, size = o.size }
  if o.json then print_json(records.page(list, records.pipeline)); return 0 end
  local rows = {}
  for i, p in ipairs(list) do
    local r = p.latest_run
    rows[i] = {
      human = { p.id:sub(1, 8), p.name, p.run_count, r and r.name or "", r and r.status or "",
        human_time(p.created) },
      plain = { p.id, p.name, p.run_count, r and r.name or "", r and r.status or "", p.created },
    }
  end
  return print_listing(ctx, list, "no pipelines", "pipeline",
    { { title = "ID", max = 8 }, { title = "NAME" }, { title = "RUNS", right = true },
      { title = "LATEST RUN" }, { title = "STATUS" }, { title = "CREATED" } }, rows)
end

local function cmd_runs_list(ctx)
  local o = ctx.opts
  local page, size = o.page, o.size
  local list = ctx.client:list_pipeline_runs { pipeline_name = o.pipeline, status = o.status,
    tag = o.tag, page = page, size = size }
  if o.json then print_json(records.page(list, records.run)); return 0 end
  local rows = {}
  for i, r in ipairs(list) do
    local ms = duration_ms(r.start_time, r.end_time)
    rows[i] = {
      human = { r.id:sub(1, 8), r.name, r.pipeline_name, r.status, human_time(r.start_time),
        human_duration(ms), table.concat(r.tags, ", ") },
      plain = { r.id, r.name, r.pipeline_name, r.status, r.start_time or "",
        ms and string.format("%.3f", ms) or "", table.concat(r.tags, ",") },
    }
  end
  return print_listing(ctx, list, "no pipeline runs", "run",
    { { title = "ID", max = 8 }, { title = "NAME" }, { title = "PIPELINE" },
      { title = "STATUS" }, { title = "STARTED" }, { title = "DURATION", right = true },
      { title = "TAGS" } }, rows)
end

local function refs_text(map, sep)
  local out = {}
  for _, name in ipairs(sorted_keys(map)) do
    local av = map[name]
    out[#out + 1] = string.format("%s%s%s:%s%s", name, sep, av.name, av.version,
      av.deleted and " (deleted)" or "")
  end
  return out
end

local function cmd_runs_describe(ctx)
  local run = ctx.client:get_pipeline_run(ctx.args[1])
  if ctx.opts.json then
    print_json(records.run_record(run))
    return 0
  end
  local steps = records.steps_of(run)
  local ms = duration_ms(run.start_time, run.end_time)
  if not ctx.tty then
    print_record(ctx, {
      { "id", "", run.id }, { "name", "", run.name }, { "pipeline", "", run.pipeline_name },
      { "status", "", run.status }, { "start_time", "", run.start_time or "" },
      { "end_time", "", run.end_time or "" },
      { "duration_ms", "", ms and string.format("%.3f", ms) or "" },
      { "tags", "", table.concat(run.tags, ",") }, { "error", "", run.error or "" },
    })
    for _, sr in ipairs(steps) do
      local sms = duration_ms(sr.start_time, sr.end_time)
      tsv_line { "step", sr.name, sr.status, sms and string.format("%.3f", sms) or "" }
      if sr.seed then tsv_line { "seed", sr.name, tostring(sr.seed) } end
      if sr.orchestrator then tsv_line { "orchestrator", sr.name, sr.orchestrator } end
      if sr.job then tsv_line { "job", sr.name, sr.job } end
      for _, kind in ipairs { "inputs", "outputs", "manual_outputs", "lookups" } do
        local map = sr[kind]
        for _, name in ipairs(sorted_keys(map)) do
          local av = map[name]
          tsv_line { kind:sub(1, -2), sr.name, name, av.name .. ":" .. av.version, av.id,
            av.deleted and "deleted" or nil }
        end
      end
      for _, name in ipairs(sorted_keys(sr.parameters or {})) do
        tsv_line { "parameter", sr.name, name, value_text(sr.parameters[name]) }
      end
      if sr.cache_note then tsv_line { "cache_note", sr.name, sr.cache_note } end
      if sr.error then tsv_line { "step_error", sr.name, sr.error } end
    end
    return 0
  end
  print_record(ctx, {
    { "name", "run", run.name },
    { "id", "id", run.id },
    { "pipeline", "pipeline", run.pipeline_name },
    { "status", "status", run.status },
    { "start_time", "started", run.start_time and (human_time(run.start_time) .. " UTC") or "" },
    { "duration", "duration", ms and human_duration(ms) or "(not finished)" },
    { "tags", "tags", table.concat(run.tags, ", ") },
  })
  if run.error then print_record(ctx, { { "error", "error", run.error } }) end
  io.write("steps:\n")
  for _, sr in ipairs(steps) do
    local sms = duration_ms(sr.start_time, sr.end_time)
    io.write("  ", names.visible(string.format("%s  %s  %s", sr.name, sr.status,
      sms and human_duration(sms) or "-")), "\n")
    local params = {}
    for _, name in ipairs(sorted_keys(sr.parameters or {})) do
      params[#params + 1] = name .. " = " .. value_text(sr.parameters[name])
    end
    local looked_up = {}
    for _, name in ipairs(sorted_keys(sr.lookups)) do
      looked_up[#looked_up + 1] = name .. ":" .. sr.lookups[name].version
    end
    local lines = {
      { "inputs", refs_text(sr.inputs, " <- ") },
      { "outputs", refs_text(sr.outputs, " -> ") },
      { "manual", refs_text(sr.manual_outputs, " -> ") },
      { "looked up", looked_up },
      { "parameters", params },
      { "seed", sr.seed and { tostring(sr.seed) } or {} },
      { "ran on", sr.orchestrator and { sr.orchestrator .. (sr.job and (", Slurm job " .. sr.job)
        or "") } or {} },
      { "cache note", sr.cache_note and { sr.cache_note } or {} },
      { "error", sr.error and { (sr.error:gsub("\n.*", "")) } or {} },
    }
    for _, l in ipairs(lines) do
      for i, s in ipairs(l[2]) do
        local label = i == 1 and (l[1] .. ":") or ""
        io.write("    ", label, string.rep(" ", 12 - #label), truncate(names.visible(s), 100), "\n")
      end
    end
  end
  return 0
end

local function cmd_lineage(ctx)
  local o = ctx.opts
  local format = o.format or "text"
  if o.json then
    if o.format and o.format ~= "json" then
      usage(ctx.path, "--json and --format %s ask for different things", o.format)
    end
    format = "json"
  end
  local direction = "both"
  if o.up and not o.down then direction = "upstream" end
  if o.down and not o.up then direction = "downstream" end
  local av = resolve_version(ctx.client, ctx.args[1])
  local graph = ctx.client:get_lineage(av, { direction = direction, depth = o.depth })
  local text = lineage.format(graph, format)
  io.write(text, text:sub(-1) == "\n" and "" or "\n")
  return 0
end

-- Ask on the terminal; true if the answer is y or yes.
local function confirm(question)
  io.stderr:write(question, " [y/N] ")
  io.stderr:flush()
  local answer = io.read("l")
  return answer ~= nil and (answer:lower() == "y" or answer:lower() == "yes")
end

local function prune_lines(result)
  local lines = {}
  for _, v in ipairs(result.versions or {}) do
    lines[#lines + 1] = names.visible(string.format("%s:%s", v.name, v.version)) .. "\t" .. v.id
  end
  return lines
end

local function cmd_prune(ctx)
  local o = ctx.opts
  local client = ctx.client
  local listed, plan = false, nil
  if not o["dry-run"] and not o.yes then
    if not ctx.stdin_tty then
      usage(ctx.path, "refusing to delete without confirmation: pass -y to prune "
        .. "(or --dry-run to see what would be deleted)")
    end
    plan = client:prune_artifacts { dry_run = true }
    if #(plan.versions or {}) == 0 and #(plan.artifacts or {}) == 0 then
      io.write("nothing to prune\n")
      return 0
    end
    for _, line in ipairs(prune_lines(plan)) do io.stderr:write("  ", line, "\n") end
    if not confirm(string.format("delete %s and %s?", plural(#plan.versions,
        "artifact version"), plural(#plan.artifacts, "artifact"))) then
      io.stderr:write("lupine: not pruned\n")
      return 1
    end
    listed = true
  end
  -- after a question, only what was listed: not a version saved meanwhile
  local result = client:prune_artifacts { dry_run = o["dry-run"] == true,
    versions = listed and plan.versions or nil }
  local versions, artifacts = result.versions or {}, result.artifacts or {}
  if o.json then
    local vs, as = {}, {}
    for i, v in ipairs(versions) do vs[i] = records.ref(v) end
    for i, a in ipairs(artifacts) do as[i] = a end
    print_json(json.object { dry_run = o["dry-run"] == true, versions = json.array(vs),
      artifacts = json.array(as) })
    return 0
  end
  if ctx.tty then
    if not listed then
      for _, line in ipairs(prune_lines(result)) do io.write("  ", line, "\n") end
    end
    io.write(string.format("%s %s and %s\n", o["dry-run"] and "would delete" or "deleted",
      plural(#versions, "artifact version"), plural(#artifacts, "artifact")))
  else
    for _, v in ipairs(versions) do tsv_line { "version", v.id, v.name, v.version } end
    for _, a in ipairs(artifacts) do tsv_line { "artifact", a } end
  end
  return 0
end

local DURATION_UNITS = { [""] = 1, s = 1, m = 60, h = 3600, d = 86400 }

-- "90", "90s", "30m", "1h", "2d" -> seconds; nil if it is none of those.
local function duration(text)
  local n, unit = text:match("^(%d+%.?%d*)(%a?)$")
  return n and DURATION_UNITS[unit] and tonumber(n) * DURATION_UNITS[unit]
end

local function cmd_gc(ctx)
  local o = ctx.opts
  local dry = o["dry-run"] == true
  local grace = o.grace and duration(o.grace)
  if o.grace and not grace then
    usage(ctx.path, "--grace: '%s' is not a duration (such as 0, 90s, 30m, 1h or 2d)", o.grace)
  end
  local result = ctx.client:gc { dry_run = dry, store = o.store, grace = grace,
    force = o.force == true }
  if o.json then
    print_json(json.object { dry_run = dry, objects = result.objects, bytes = result.bytes,
      copies = result.copies, copy_bytes = result.copy_bytes, recent = result.recent })
  elseif ctx.tty then
    io.write(string.format("%s %s (%s)%s", dry and "would free" or "freed",
      plural(result.objects, "object"), human_size(result.bytes), result.copies == 0 and ""
        or string.format(" and %s (%s)", plural(result.copies, "extracted copy",
          "extracted copies"), human_size(result.copy_bytes))))
    if result.recent > 0 then
      io.write(string.format("; kept %s written in the last %s (--grace)",
        plural(result.recent, "unused object"), o.grace or "1h"))
    end
    io.write("\n")
  else
    tsv_line { "objects", result.objects }
    tsv_line { "bytes", result.bytes }
    tsv_line { "copies", result.copies }
    tsv_line { "copy_bytes", result.copy_bytes }
    tsv_line { "recent", result.recent }
  end
  return 0
end

-- ---- stacks and artifact stores ----

local stacks = require "lupine.stacks"

local function store_json(s)
  return json.object { id = s.id, name = s.name, flavor = s.flavor, path = s.path,
    created = s.created, bucket = s.bucket, prefix = s.prefix, endpoint = s.endpoint,
    region = s.region, path_style = s.path_style }
end

local function stack_json(k)
  return json.object { id = k.id, name = k.name, orchestrator = k.orchestrator,
    jobs = k.jobs or json.null, active = k.active, created = k.created,
    artifact_store = store_json(k.artifact_store) }
end

local function items_json(list, fn)
  local items = {}
  for i, x in ipairs(list) do items[i] = fn(x) end
  return json.object { items = items, total = #items }
end

-- The command that lists what the Client's method gives: things with a
-- name, a flavor and a folder (field), shown under the title, or each as
-- to_json makes it.
local function folders_command(method, to_json, field, title)
  return function(ctx)
    local list = ctx.client[method](ctx.client)
    if ctx.opts.json then print_json(items_json(list, to_json)); return 0 end
    local rows = {}
    for i, x in ipairs(list) do
      rows[i] = { plain = { x.id, x.name, x.flavor, x[field] or "" },
        human = { x.name, x.flavor, x[field] or "" } }
    end
    print_table(ctx, { { title = "NAME" }, { title = "FLAVOR" }, { title = title, max = 80 } },
      rows)
    return 0
  end
end
local cmd_store_list = folders_command("list_artifact_stores", store_json, "path", "PATH")

-- The command that deletes a thing of this kind by its name, with the
-- Client's method of that name.
local function delete_command(method, kind)
  return function(ctx)
    ctx.client[method](ctx.client, ctx.args[1])
    if ctx.opts.json then print_json(json.object { deleted = ctx.args[1] })
    else io.write(string.format("deleted %s '%s'\n", kind, ctx.args[1])) end
    return 0
  end
end

-- The command that lists these flavors ({ name, description } each).
local function flavors_command(flavors)
  return function(ctx)
    if ctx.opts.json then
      print_json(items_json(flavors, function(f)
        return json.object { name = f.name, description = f.description } end))
      return 0
    end
    local rows = {}
    for i, f in ipairs(flavors) do
      rows[i] = { plain = { f.name, f.description }, human = { f.name, f.description } }
    end
    print_table(ctx, { { title = "FLAVOR" }, { title = "DESCRIPTION" } }, rows)
    return 0
  end
end
local cmd_store_flavors = flavors_command(stacks.flavors)

local function cmd_store_describe(ctx)
  local s = ctx.client:artifact_store(ctx.args[1])
  if ctx.opts.json then print_json(store_json(s)); return 0 end
  local rows = { { "id", "id", s.id }, { "name", "name", s.name },
    { "flavor", "flavor", s.flavor }, { "path", "path", s.path } }
  if s.flavor == "s3" then
    local from_env = "(from the environment: AWS_%s)"
    for _, r in ipairs {
      { "bucket", "bucket", s.bucket }, { "prefix", "prefix", s.prefix },
      { "endpoint", "endpoint", s.endpoint or from_env:format("ENDPOINT_URL_S3, AWS_ENDPOINT_URL"
        .. " or AWS's own") },
      { "region", "region", s.region or from_env:format("REGION, AWS_DEFAULT_REGION or us-east-1") },
      { "path_style", "path-style", s.path_style and "yes" or "no" } } do
      rows[#rows + 1] = r
    end
  end
  rows[#rows + 1] = { "created", "created", ctx.tty and human_time(s.created) or s.created }
  print_record(ctx, rows)
  return 0
end

local function cmd_store_register(ctx)
  if not ctx.opts.path and not ctx.opts.bucket then usage(ctx.path, "missing option '--path'") end
  local flavor = ctx.opts.flavor or "local"
  local known = {}
  for i, f in ipairs(stacks.flavors) do known[i] = f.name end
  if flavor ~= "local" and flavor ~= "s3" then
    usage(ctx.path, "unknown flavor '%s' (known flavors: %s)", flavor, table.concat(known, ", "))
  end
  local s = ctx.client:register_artifact_store(ctx.args[1], { flavor = flavor,
    path = ctx.opts.path, bucket = ctx.opts.bucket, prefix = ctx.opts.prefix,
    endpoint = ctx.opts.endpoint, region = ctx.opts.region, path_style = ctx.opts["path-style"] })
  if ctx.opts.json then print_json(store_json(s))
  else io.write(string.format("registered artifact store '%s' (%s, %s)\n", s.name, s.flavor, s.path)) end
  return 0
end

local cmd_store_delete = delete_command("delete_artifact_store", "artifact store")

local function cmd_store_verify(ctx)
  local name = ctx.args[1] or ctx.client.active_stack.artifact_store.name
  local repair = ctx.opts.repair == true
  local r = ctx.client:verify_artifact_store(name, { repair = repair })
  local bad, changed, repaired = 0, 0, 0
  for _, p in ipairs(r.problems) do
    if p.repaired then repaired = repaired + 1
    elseif p.kind == "copy" then changed = changed + 1
    else bad = bad + 1 end
  end
  if ctx.opts.json then
    local problems = {}
    for i, p in ipairs(r.problems) do
      local vs = {}
      for j, v in ipairs(p.versions) do vs[j] = records.ref(v) end
      local fields = { status = p.status, kind = p.kind, hash = p.hash, message = p.message,
        versions = vs }
      if repair then fields.repaired, fields.source = p.repaired == true, p.source end
      problems[i] = json.object(fields)
    end
    print_json(json.object { store = r.store, checked = r.checked, copies = r.copies,
      problems = problems })
  else
    for _, p in ipairs(r.problems) do
      local vs = {}
      for j, v in ipairs(p.versions) do vs[j] = v.name .. ":" .. v.version end
      local outcome = not repair and "" or p.source and ("repaired from '" .. p.source .. "'")
        or p.repaired and "removed" or ("not repaired: " .. p.why)
      if ctx.tty then
        io.write(string.format("%s %s %s (%s)%s\n", p.status, p.kind, p.hash,
          table.concat(vs, ", "), repair and (": " .. outcome) or ""))
      else
        local line = { p.status, p.kind, p.hash, table.concat(vs, ",") }
        if repair then line[5] = outcome end
        tsv_line(line)
      end
    end
    if ctx.tty or bad + changed == 0 then
      local line = string.format("%s checked in '%s': %d missing or corrupt",
        plural(r.checked, "object"), r.store, bad)
      if r.copies > 0 then
        line = line .. string.format(", %d of %s changed", changed,
          plural(r.copies, "extracted copy", "extracted copies"))
      end
      if repair then line = line .. string.format(", %d repaired", repaired) end
      io.write(line, "\n")
    end
  end
  return bad + changed > 0 and 1 or 0
end

local function cmd_store_copy(ctx)
  local r = ctx.client:copy_artifact_store(ctx.args[1], ctx.args[2],
    { name = ctx.opts.name, tag = ctx.opts.tag })
  if ctx.opts.json then
    print_json(json.object { from = ctx.args[1], to = ctx.args[2], versions = r.versions,
      objects = r.objects })
  else
    io.write(string.format("moved %s (%s copied) from '%s' to '%s'\n",
      plural(r.versions, "version"), plural(r.objects, "object"), ctx.args[1], ctx.args[2]))
  end
  return 0
end

-- `lupine catalog copy --to TARGET`: every row, then each table read back
-- and checked (runtime/catalog_copy.c)
local function cmd_catalog_copy(ctx)
  if not ctx.opts.to or ctx.opts.to == "" then usage(ctx.path, "missing option '--to'") end
  local counts = core.copy_catalog(ctx.opts.to)
  local _, from = core.catalog()
  if ctx.opts.json then
    local tables = {}
    for _, c in ipairs(counts) do tables[#tables + 1] = { table = c[1], rows = c[2] } end
    print_json(json.object { from = from, tables = tables })
    return 0
  end
  io.write(string.format("copied %s into %s, each table read back and checked:\n", from,
    select(2, core.catalog(ctx.opts.to))))
  for _, c in ipairs(counts) do io.write(string.format("  %-20s %d\n", c[1], c[2])) end
  return 0
end

local function cmd_stack_list(ctx)
  local list = ctx.client:list_stacks()
  if ctx.opts.json then print_json(items_json(list, stack_json)); return 0 end
  local rows = {}
  for i, k in ipairs(list) do
    rows[i] = { plain = { k.id, k.name, k.active and "active" or "", k.artifact_store.name,
        k.orchestrator },
      human = { (k.active and "* " or "  ") .. k.name, k.artifact_store.name, k.orchestrator } }
  end
  print_table(ctx, { { title = "  NAME" }, { title = "ARTIFACT STORE" }, { title = "ORCHESTRATOR" } }, rows)
  return 0
end

local function cmd_stack_describe(ctx)
  local k = ctx.args[1] and ctx.client:get_stack(ctx.args[1]) or ctx.client.active_stack
  if ctx.opts.json then print_json(stack_json(k)); return 0 end
  print_record(ctx, { { "id", "id", k.id }, { "name", "name", k.name },
    { "active", "active", k.active and "yes" or "no" },
    { "artifact_store", "artifact store", k.artifact_store.name },
    { "artifact_store_flavor", "flavor", k.artifact_store.flavor },
    { "artifact_store_path", "path", k.artifact_store.path },
    { "orchestrator", "orchestrator", k.orchestrator },
    { "jobs", "jobs", k.jobs and tostring(k.jobs) or "the number of cores" },
    { "catalog", "catalog", table.concat({ core.catalog() }, " ") } })
  return 0
end

local function cmd_stack_register(ctx)
  if not ctx.opts["artifact-store"] then usage(ctx.path, "missing option '--artifact-store'") end
  local k = ctx.client:register_stack(ctx.args[1], { artifact_store = ctx.opts["artifact-store"],
    orchestrator = ctx.opts.orchestrator, jobs = ctx.opts.jobs })
  if ctx.opts.json then print_json(stack_json(k))
  else io.write(string.format("registered stack '%s'\n", k.name)) end
  return 0
end

local function cmd_stack_set(ctx)
  local k = ctx.client:set_active_stack(ctx.args[1])
  if ctx.opts.json then print_json(stack_json(k))
  else io.write(string.format("active stack: '%s'\n", k.name)) end
  return 0
end

local cmd_stack_delete = delete_command("delete_stack", "stack")

-- ---- orchestrators ----

local function orchestrator_json(o)
  return json.object { id = o.id, name = o.name, flavor = o.flavor, work_dir = opt(o.work_dir),
    partition = opt(o.partition), account = opt(o.account), time = opt(o.time_limit),
    requeue = o.requeue, sbatch_args = opt(o.sbatch_args), grace = opt(o.grace),
    created = o.created }
end

local cmd_orchestrator_list = folders_command("list_orchestrators", orchestrator_json, "work_dir",
  "WORK DIR")

local function cmd_orchestrator_describe(ctx)
  local o = ctx.client:get_orchestrator(ctx.args[1])
  if ctx.opts.json then print_json(orchestrator_json(o)); return 0 end
  local fields = { { "id", "id", o.id }, { "name", "name", o.name },
    { "flavor", "flavor", o.flavor } }
  if o.flavor == "slurm" then
    for _, f in ipairs {
      { "work_dir", "work dir", o.work_dir }, { "partition", "partition", o.partition or "" },
      { "account", "account", o.account or "" }, { "time", "time", o.time_limit or "" },
      { "requeue", "requeue", o.requeue and "yes" or "no" },
      { "sbatch_args", "sbatch args", o.sbatch_args or "" },
      { "grace", "grace", o.grace and string.format("%g", o.grace) or "" },
    } do fields[#fields + 1] = f end
  end
  fields[#fields + 1] = { "created", "created", ctx.tty and human_time(o.created) or o.created }
  print_record(ctx, fields)
  return 0
end

local function cmd_orchestrator_register(ctx)
  local o = ctx.opts
  if o.flavor ~= "slurm" then
    usage(ctx.path, o.flavor == nil and "missing option '--flavor'"
      or "flavor must be slurm ('local' is built in)")
  end
  if not o["work-dir"] then usage(ctx.path, "missing option '--work-dir'") end
  local r = ctx.client:register_orchestrator(ctx.args[1], { flavor = o.flavor,
    work_dir = o["work-dir"], partition = o.partition, account = o.account, time = o.time,
    requeue = o.requeue == true or nil, sbatch_args = o["sbatch-args"], grace = o.grace })
  if o.json then print_json(orchestrator_json(r))
  else io.write(string.format("registered orchestrator '%s' (%s, %s)\n", r.name, r.flavor,
    r.work_dir)) end
  return 0
end

local cmd_orchestrator_delete = delete_command("delete_orchestrator", "orchestrator")

local cmd_orchestrator_flavors = flavors_command(stacks.orchestrator_flavors)

-- ---- tags ----

local function tag_json(t)
  return json.object { name = t.name, exclusive = t.exclusive, tagged_count = t.tagged_count }
end

-- "'production' (exclusive)": a tag as the commands' messages name it.
local function tag_text(t)
  return string.format("'%s'%s", t.name, t.exclusive and " (exclusive)" or "")
end

local function cmd_tag_create(ctx)
  local t = ctx.client:create_tag { name = ctx.args[1], exclusive = ctx.opts.exclusive == true }
  if ctx.opts.json then print_json(tag_json(t))
  else io.write(names.visible("created tag " .. tag_text(t)), "\n") end
  return 0
end

local function cmd_tag_list(ctx)
  local exclusive
  if ctx.opts.exclusive then exclusive = true end
  local list = ctx.client:list_tags { name = ctx.opts.name, exclusive = exclusive }
  if ctx.opts.json then print_json(items_json(list, tag_json)); return 0 end
  local rows = {}
  for i, t in ipairs(list) do
    rows[i] = { plain = { t.name, t.exclusive and "exclusive" or "", t.tagged_count },
      human = { t.name, t.exclusive and "yes" or "", t.tagged_count } }
  end
  if #rows == 0 and ctx.tty then io.write("no tags\n"); return 0 end
  print_table(ctx, { { title = "NAME" }, { title = "EXCLUSIVE" },
    { title = "TAGGED", right = true } }, rows)
  return 0
end

local function cmd_tag_update(ctx)
  local o = ctx.opts
  if o.exclusive and o["non-exclusive"] then
    usage(ctx.path, "--exclusive and --non-exclusive ask for different things")
  end
  local exclusive
  if o.exclusive then exclusive = true elseif o["non-exclusive"] then exclusive = false end
  if exclusive == nil and o.name == nil then
    usage(ctx.path, "nothing to do: give --exclusive, --non-exclusive or --name NEW")
  end
  local t = ctx.client:update_tag(ctx.args[1], { name = o.name, exclusive = exclusive })
  if o.json then print_json(tag_json(t))
  else io.write(names.visible("updated tag " .. tag_text(t)), "\n") end
  return 0
end

local function cmd_tag_delete(ctx)
  local t = ctx.client:delete_tag(ctx.args[1])
  if ctx.opts.json then print_json(json.object { deleted = t.name, tagged_count = t.tagged_count })
  else io.write(names.visible(string.format("deleted tag '%s' (it was on %s)", t.name,
    plural(t.tagged_count, "object"))), "\n") end
  return 0
end

-- ---- the command tree ----

local KEY = command.KEY

-- Every command (lupine.command says what a command and an option hold).
local tree = {
  summary = "Lupine runs pipelines of Lua steps and keeps what each step makes, versioned, "
    .. "in a catalog",
  order = { "run", "repl", "ui", "artifact", "pipeline", "tag", "lineage", "gc", "stack",
    "artifact-store", "orchestrator", "catalog", "exec", "help" },
  sub = {
    run = command.commands.run, repl = command.commands.repl, ui = command.commands.ui,
    exec = command.commands.exec, help = command.commands.help,
    tag = {
      summary = "tags of artifact versions, artifacts and runs",
      order = { "list", "create", "update", "delete" },
      sub = {
        list = { summary = "list tags, with how many objects carry each",
          options = { { "--name", arg = "NAME", help = "only the tag of this name" },
            { "--exclusive", help = "only exclusive tags" } },
          run = cmd_tag_list },
        create = { summary = "create a tag", args = { "NAME" },
          options = { { "--exclusive", help = "on one version of each artifact (and run of "
            .. "each pipeline) at most" } },
          run = cmd_tag_create },
        update = { summary = "make a tag exclusive or not, or rename it", args = { "NAME" },
          options = { { "--exclusive", help = "make it exclusive (not while two versions of "
              .. "an artifact have it)" },
            { "--non-exclusive", help = "make it an ordinary tag" },
            { "--name", arg = "NEW", help = "rename it" } },
          run = cmd_tag_update },
        delete = { summary = "delete a tag, taking it off everything that has it",
          args = { "NAME" }, run = cmd_tag_delete },
      },
    },
    stack = {
      summary = "stacks: the artifact store and orchestrator a run uses",
      order = { "list", "describe", "register", "set", "delete" },
      sub = {
        list = { summary = "list stacks (the active one marked)", run = cmd_stack_list },
        describe = { summary = "show a stack (the active one by default)", args = { "[NAME]" },
          optional = 1, run = cmd_stack_describe },
        register = { summary = "register a stack", args = { "NAME" }, catalog = "create",
          options = { { "--artifact-store", short = "-a", arg = "STORE",
              help = "the artifact store of the stack" },
            { "--orchestrator", short = "-o", arg = "ORCHESTRATOR",
              help = "its orchestrator (default: local)" },
            { "--jobs", short = "-j", arg = "N", int = true,
              help = "steps at once on the local orchestrator (default: the cores)" } },
          run = cmd_stack_register },
        set = { summary = "make a stack the active one", args = { "NAME" }, run = cmd_stack_set },
        delete = { summary = "delete a stack (not the active one)", args = { "NAME" },
          run = cmd_stack_delete },
      },
    },
    orchestrator = {
      summary = "orchestrators: where a stack's steps run (local, or Slurm jobs)",
      order = { "list", "describe", "register", "delete", "flavor" },
      sub = {
        list = { summary = "list orchestrators", run = cmd_orchestrator_list },
        describe = { summary = "show an orchestrator", args = { "NAME" },
          run = cmd_orchestrator_describe },
        register = { summary = "register an orchestrator that runs steps as Slurm jobs",
          args = { "NAME" }, catalog = "create",
          options = { { "--flavor", arg = "FLAVOR", choices = { "slurm" },
              help = "its flavor (slurm)" },
            { "--work-dir", arg = "DIR", help = "where steps' specs, results and logs go: a "
              .. "folder every node shares (created)" },
            { "--partition", arg = "P", help = "the partition of its jobs" },
            { "--account", arg = "A", help = "the account its jobs are charged to" },
            { "--time", arg = "T", help = "its jobs' time limit (a Slurm time: 1:30:00)" },
            { "--requeue", help = "let Slurm requeue its jobs (preemptible partitions)" },
            { "--sbatch-args", arg = "ARGS", help = "more sbatch options for every job" },
            { "--grace", arg = "SECONDS", int = true, min = 0,
              help = "how long a job that left the queue may take to show its result before "
                .. "its step fails (default 10; more for slow shared file systems)" } },
          run = cmd_orchestrator_register },
        delete = { summary = "delete an orchestrator no stack uses", args = { "NAME" },
          run = cmd_orchestrator_delete },
        flavor = { summary = "orchestrator flavors", order = { "list" },
          sub = { list = { summary = "list the known flavors", catalog = "none",
            run = cmd_orchestrator_flavors } } },
      },
    },
    catalog = {
      summary = "the catalog itself: moving it to another backend",
      order = { "copy" },
      sub = {
        copy = { summary = "copy the whole catalog in use into an empty one (a PostgreSQL "
            .. "catalog, or a new sqlite file), checking every table read back",
          options = { { "--to", arg = "TARGET", help = "the catalog to fill: a PostgreSQL "
            .. "connection string or URI, or the path of a new catalog file" } },
          run = cmd_catalog_copy },
      },
    },
    ["artifact-store"] = {
      summary = "artifact stores: where objects are kept",
      order = { "list", "describe", "register", "delete", "verify", "copy", "flavor" },
      sub = {
        list = { summary = "list artifact stores", run = cmd_store_list },
        describe = { summary = "show an artifact store", args = { "NAME" },
          run = cmd_store_describe },
        register = { summary = "register an artifact store", args = { "NAME" },
          catalog = "create",
          options = { { "--flavor", arg = "FLAVOR", help = "its flavor (local, s3)" },
            { "--path", arg = "DIR", help = "its folder (created; must be writable), or "
              .. "s3://BUCKET/PREFIX" },
            { "--bucket", arg = "BUCKET", help = "s3: the bucket (instead of --path)" },
            { "--prefix", arg = "PREFIX", help = "s3: the prefix of its keys in the bucket" },
            { "--endpoint", arg = "URL", help = "s3: the service's URL (default: "
              .. "AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or AWS)" },
            { "--region", arg = "REGION", help = "s3: the region (default: AWS_REGION, "
              .. "AWS_DEFAULT_REGION, or us-east-1)" },
            { "--path-style", help = "s3: the bucket in the URL's path, not its host name" } },
          run = cmd_store_register },
        delete = { summary = "delete an artifact store no stack and no version uses",
          args = { "NAME" }, run = cmd_store_delete },
        verify = { summary = "read and check every object a store should hold",
          args = { "[NAME]" }, optional = 1,
          options = { { "--repair", help = "write damaged objects again from another store "
              .. "that holds them, and remove changed extracted copies" } },
          run = cmd_store_verify },
        copy = { summary = "copy versions' objects to another store and re-point them",
          args = { "FROM", "TO" },
          options = { { "--name", arg = "NAME", help = "only versions of this artifact" },
            { "--tag", arg = "TAG", help = "only versions with this tag" } },
          run = cmd_store_copy },
        flavor = { summary = "artifact store flavors", order = { "list" },
          sub = { list = { summary = "list the known flavors", catalog = "none",
            run = cmd_store_flavors } } },
      },
    },
    artifact = {
      summary = "artifacts and their versions",
      order = { "list", "version", "export", "visualize", "prune" },
      sub = {
        list = {
          summary = "list artifacts, newest first",
          options = { { "--name", arg = "NAME", help = "only the artifact of this name" },
            { "--tag", arg = "TAG", help = "only artifacts with this tag" } },
          paged = true, run = cmd_artifact_list,
        },
        version = {
          summary = "artifact versions",
          order = { "list", "describe", "update" },
          sub = {
            list = {
              summary = "list artifact versions, newest first",
              options = { { "--name", arg = "NAME", help = "only versions of this artifact" },
                { "--tag", arg = "TAG", help = "only versions with this tag" },
                { "--type", arg = "TYPE", choices = records.artifact_types,
                  help = "only versions of this type (data, model, ...)" },
                { "--run", arg = "RUN", help = "only versions a pipeline run (name or id) "
                  .. "produced or used" } },
              paged = true, run = cmd_version_list,
            },
            describe = {
              summary = "show an artifact version: fields, tags, producer, metadata",
              args = { KEY }, run = cmd_version_describe,
            },
            update = {
              summary = "add or remove tags of an artifact version",
              args = { KEY },
              options = { { "--tag", short = "-t", arg = "TAG", multi = true,
                  help = "add this tag (repeatable)" },
                { "--remove-tag", short = "-r", arg = "TAG", multi = true,
                  help = "remove this tag (repeatable)" } },
              run = cmd_version_update,
            },
          },
        },
        export = {
          summary = "write an artifact version's value as JSON or its stored CBOR",
          args = { KEY },
          options = { { "--format", arg = "FORMAT", choices = { "json", "cbor" },
              help = "json (the value, see the man page) or cbor (the stored bytes); default json" },
            { "--output", short = "-o", arg = "FILE", help = "write to FILE, not stdout" } },
          run = cmd_export,
        },
        visualize = {
          summary = "write an artifact version's visualizations as one self-contained HTML page",
          args = { KEY },
          options = { { "--output", short = "-o", arg = "FILE",
              help = "write to FILE (default: stdout, or a new file in $TMPDIR on a terminal)" } },
          run = cmd_visualize,
        },
        prune = {
          summary = "delete artifact versions no step run produced or used (and artifacts left empty)",
          options = { { "--dry-run", help = "only show what would be deleted" },
            { "--yes", short = "-y", help = "do not ask for confirmation" } },
          run = cmd_prune,
        },
      },
    },
    pipeline = {
      summary = "pipelines and their runs",
      order = { "list", "runs" },
      sub = {
        list = {
          summary = "list pipelines",
          options = { { "--name", arg = "NAME", help = "only the pipeline of this name" } },
          paged = true, run = cmd_pipeline_list,
        },
        runs = {
          summary = "pipeline runs",
          order = { "list", "describe" },
          sub = {
            list = {
              summary = "list pipeline runs, newest first",
              options = { { "--pipeline", arg = "PIPELINE", help = "only runs of this pipeline" },
                { "--status", arg = "STATUS", choices = { "completed", "failed", "running" },
                  help = "only runs with this status (running, completed, failed)" },
                { "--tag", arg = "TAG", help = "only runs with this tag" } },
              paged = true, run = cmd_runs_list,
            },
            describe = {
              summary = "show a run, and each step's inputs, outputs, parameters and error",
              args = { "RUN" }, run = cmd_runs_describe,
            },
          },
        },
      },
    },
    lineage = {
      summary = "the artifact versions and steps upstream and downstream of a version",
      args = { KEY },
      options = { { "--up", help = "only upstream: what it was made from" },
        { "--down", help = "only downstream: what was made from it" },
        { "--depth", arg = "N", int = true, min = 0,
          help = "go at most N artifact versions away (0: the version alone)" },
        { "--format", arg = "FORMAT", choices = { "text", "dot", "mermaid", "json" },
          help = "text (default), dot (Graphviz), mermaid or json" } },
      run = cmd_lineage,
    },
    gc = {
      summary = "delete stored objects no artifact version refers to",
      options = { { "--dry-run", help = "only count what would be freed" },
        { "--store", arg = "NAME", help = "only this artifact store (default: every one)" },
        { "--grace", arg = "DURATION",
          help = "keep objects written within it (default 1h; 0, 90s, 30m, 2d...)" },
        { "--force", help = "remove even if the catalog records no artifact version" } },
      run = cmd_gc,
    },
  },
}

-- The tree of every command and each command's options: lupine.command
-- parses with them, lupine.complete completes with them.
M.tree, M.options_of = tree, command.options_of
M.main = command.main

return M
