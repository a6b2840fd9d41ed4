-- SPDX-License-Identifier: MIT
-- `lupine ui`: the dashboard over HTTP (curl) and in a real browser
-- (headless Chromium), on a catalog built by the examples.
local H = require "helper"
local dkjson = require "dkjson"

local function json(s)
  local v, _, msg = dkjson.decode(s, 1, dkjson.null)
  assert(v ~= nil, "not JSON: " .. tostring(msg) .. ": " .. s:sub(1, 300))
  return v
end

local XSS = [[<script>alert(1)</script>"']]

-- An SVG that would run script, load things and take over the page if it
-- were shown as it is.
local HOSTILE_SVG = [[<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" onload="document.title='PWNED'">]]
  .. [[<script>document.title = 'PWNED'</script><style>body { display: none }</style>]]
  .. [[<rect id="run-arrow" width="80" height="40" fill="#48c" onclick="document.title='PWNED'">]]
  .. [[<title>a bar &lt;script&gt;</title></rect>]]
  .. [[<a href="javascript:document.title='PWNED'"><text x="10" y="80">click</text></a>]]
  .. [[<foreignObject><iframe src="javascript:parent.document.title='PWNED'"></iframe></foreignObject>]]
  .. [[<image href="https://evil.example/track.png" width="1" height="1"/></svg>]]

-- A pipeline whose names, tags, metadata and error carry markup, with a
-- chain of steps (load -> clean -> train -> evaluate) of which train fails,
-- and a step with no outputs that saves a version by hand.
-- (A failed step's inputs are not linked in the catalog, so the graph has
-- the edge load -> clean only.)
local HOSTILE = [[
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline
local XSS = ]] .. string.format("%q", XSS) .. [[

local load = step { name = "load", outputs = { lupine.ArtifactConfig { name = "rows" .. XSS,
    tags = { XSS }, run_metadata = { [XSS] = XSS } } },
  function() return { { name = XSS, n = 1 }, { name = "b", n = 2 } } end }
local clean = step { name = "clean", function(rows) return #rows end }
local train = step { name = "train", function(n) error("bad data " .. XSS) end }
local evaluate = step { name = "evaluate", function(model) return 1 end }
local report = step { name = "report", outputs = { "page" }, function()
  return lupine.HTMLString("<p>report</p><script>parent.document.title = 'PWNED'</script>")
end }
local note = step { name = "note", outputs = {}, function()
  lupine.save_artifact({ XSS }, "note" .. XSS)
end }
local drawing = step { name = "drawing", outputs = { "drawing" }, function()
  return lupine.SVGString(]] .. string.format("%q", HOSTILE_SVG) .. [[)
end }
pipeline { name = "hostile", tags = { XSS }, function()
  evaluate(train(clean(load())))
  report()
  note()
  drawing()
end }:with_options { raise_on_failure = false } ()
]]

local SLOW = [[
local lupine = require "lupine"
local wait = lupine.step { name = "wait", enable_cache = false, function()
  local f
  repeat f = io.open(arg[1]) until f or not os.execute("sleep 0.05")
  return 1
end }
lupine.pipeline { name = "slow", function() wait() end } ()
]]

-- Start `lupine ui --port 0` on home in the background; returns the
-- server: { url, pid, dir } once it says where it listens.
local function start(home, extra)
  local dir = H.tmpdir()
  os.execute("( env -u LD_PRELOAD ASAN_OPTIONS=detect_leaks=1 LUPINE_HOME=" .. H.quote(home) .. " "
    .. H.quote(H.cli) .. " ui --port 0 " .. (extra or "") .. " > " .. H.quote(dir .. "/out") .. " 2> "
    .. H.quote(dir .. "/err") .. " & echo $! > " .. H.quote(dir .. "/pid") .. "; wait $!; echo $? > "
    .. H.quote(dir .. "/rc") .. " ) > /dev/null 2>&1 &")
  for _ = 1, 200 do
    local out = H.read(dir .. "/out") or ""
    local url, port = out:match("at (http://[%d.]+:(%d+)/)")
    if url then
      return { url = "http://127.0.0.1:" .. port, port = port, pid = H.read(dir .. "/pid"):match("%d+"),
        dir = dir }
    end
    if H.read(dir .. "/rc") then break end
    os.execute("sleep 0.05")
  end
  error("lupine ui did not start: " .. (H.read(dir .. "/err") or ""))
end

-- Stop it with SIGTERM; returns its exit status, stdout and stderr.
local function stop(srv)
  os.execute("kill -TERM " .. srv.pid)
  for _ = 1, 200 do
    local rc = H.read(srv.dir .. "/rc")
    if rc and rc:find("\n") then return tonumber(rc), H.read(srv.dir .. "/out"), H.read(srv.dir .. "/err") end
    os.execute("sleep 0.05")
  end
  os.execute("kill -KILL " .. srv.pid)
  error("lupine ui did not stop on SIGTERM")
end

-- GET (or method) path: status, body, headers (lower-case names).
local function fetch(srv, path, method, curl_args)
  local dir = H.tmpdir()
  local out = H.sh("curl -s -S --path-as-is --max-time 20 -o " .. H.quote(dir .. "/body") .. " -D "
    .. H.quote(dir .. "/headers") .. " -w '%{http_code}' -X " .. (method or "GET") .. " "
    .. (curl_args or "") .. " " .. H.quote(srv.url .. path))
  local headers = {}
  for k, v in (H.read(dir .. "/headers") or ""):gmatch("([%w%-]+): ([^\r\n]*)") do headers[k:lower()] = v end
  local body = H.read(dir .. "/body") or ""
  H.rm(dir)
  return tonumber(out), body, headers
end

local function get_json(srv, path)
  local status, body, headers = fetch(srv, path)
  assert.equal(200, status, body)
  assert.equal("application/json; charset=utf-8", headers["content-type"])
  return json(body)
end

local function chromium()
  for _, name in ipairs { "chromium", "chromium-browser" } do
    local path = H.sh("command -v " .. name):match("[^\n]+")
    if path then return path end
  end
end

-- Load url in headless Chromium: the rendered DOM, or with a screenshot
-- file, that file.
local function browse(url, screenshot)
  local profile = H.tmpdir()
  local flags = "--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking "
    .. "--disable-component-update --disable-sync --user-data-dir=" .. H.quote(profile)
  local cmd = "timeout 120 " .. H.quote(chromium()) .. " " .. flags .. " "
    .. (screenshot and ("--screenshot=" .. H.quote(screenshot) .. " --window-size=1280,900")
      or "--dump-dom") .. " " .. H.quote(url)
  local out, err, code = H.sh(cmd)
  H.rm(profile)
  assert.equal(0, code, err)
  return out
end

describe("lupine.ui", function()
  it("shapes records with lupine.records, not the command line's module", function()
    local out, err, code = H.sh("LUA_CPATH=" .. H.quote(H.build .. "/?.so") .. " lua5.4 -e "
      .. H.quote('require "lupine"; require "lupine.ui"; print(package.loaded["lupine.records"] ~= nil, '
      .. 'package.loaded["lupine.cli"], package.loaded["lupine.command"])'), true)
    assert.equal(0, code, err)
    assert.equal("true\tnil\tnil\n", out)
  end)
end)

describe("lupine ui", function()
  local home, srv, ids
  setup(function()
    home = H.tmpdir() .. "/home"
    for _, e in ipairs { "examples/analysis.lua", "examples/performance_plot.lua", H.script(HOSTILE) } do
      local _, err, code = H.lupine(home, "run " .. H.quote(e))
      assert.is_true(code == 0 or e:find("pipeline.lua$") ~= nil, err)
    end
    srv = start(home)
    ids = {}
    for _, run in ipairs(get_json(srv, "/api/runs").items) do ids[run.pipeline] = run.id end
    for _, v in ipairs(get_json(srv, "/api/versions?size=100").items) do ids[v.name] = v.id end
  end)
  teardown(function()
    if srv then stop(srv) end
  end)

  describe("over HTTP", function()
    it("lists pipelines and runs, newest first", function()
      local status, body, headers = fetch(srv, "/")
      assert.equal(200, status)
      assert.equal("text/html; charset=utf-8", headers["content-type"])
      assert.matches("default-src 'none'", headers["content-security-policy"], 1, true)
      assert.equal("nosniff", headers["x-content-type-options"])
      for _, p in ipairs { "analysis_pipeline", "plot_pipeline", "hostile" } do
        assert.matches(">" .. p .. "</a>", body, 1, true)
      end
      local runs = get_json(srv, "/api/runs")
      assert.same({ "hostile", "plot_pipeline", "analysis_pipeline" },
        { runs.items[1].pipeline, runs.items[2].pipeline, runs.items[3].pipeline })
      assert.same({ "failed", "completed", "completed" },
        { runs.items[1].status, runs.items[2].status, runs.items[3].status })
      assert.same({ 3, 1, 1 }, { runs.total, runs.page, runs.total_pages })
      assert.equal("number", type(runs.items[2].duration_ms))
      local pipelines = get_json(srv, "/api/pipelines")
      assert.equal(3, pipelines.total)
      assert.equal(1, pipelines.items[1].run_count)
      assert.equal(1, get_json(srv, "/api/runs?status=failed").total)
      assert.equal("plot_pipeline", get_json(srv, "/api/runs?pipeline=plot_pipeline").items[1].pipeline)
    end)

    it("gives a run's steps, their statuses, errors and the edges between them", function()
      local run = get_json(srv, "/api/runs/" .. ids.hostile)
      assert.equal("failed", run.status)
      local steps = {}
      for _, s in ipairs(run.steps) do steps[s.name] = s end
      assert.same({ "completed", "completed", "failed", "skipped", "completed" }, { steps.load.status,
        steps.clean.status, steps.train.status, steps.evaluate.status, steps.report.status })
      assert.matches("bad data " .. XSS, steps.train.error, 1, true)
      assert.matches("stack traceback", steps.train.traceback, 1, true)
      assert.same({ 0, 1, 0 }, { steps.load.layer, steps.clean.layer, steps.report.layer })
      assert.equal("miss", steps.load.cache.state)
      -- the failed step's input is recorded too (inputs are linked when a step starts)
      assert.equal(2, #run.edges)
      local edges = {}
      for _, e in ipairs(run.edges) do edges[#edges + 1] = e.from .. ">" .. e.to end
      table.sort(edges)
      local want = { steps.load.id .. ">" .. steps.clean.id, steps.clean.id .. ">" .. steps.train.id }
      table.sort(want)
      assert.same(want, edges)
      local step = get_json(srv, "/api/steps/" .. steps.load.id)
      assert.equal("rows" .. XSS, step.outputs["rows" .. XSS].name)
      assert.equal(run.name, step.run)
    end)

    it("shows a step's seed, and what it saved by hand apart from its outputs", function()
      local run = get_json(srv, "/api/runs/" .. ids.hostile)
      local steps = {}
      for _, s in ipairs(run.steps) do steps[s.name] = s end
      local note = steps.note
      assert.same({ "completed", {} }, { note.status, note.outputs })
      assert.equal("note" .. XSS, note.manual_outputs["note" .. XSS].name)
      assert.same({}, steps.load.manual_outputs)
      assert.equal("integer", math.type(note.seed))
      local status, body = fetch(srv, "/steps/" .. note.id)
      assert.equal(200, status)
      assert.matches("<dt>seed</dt><dd>" .. note.seed .. "</dd>", body, 1, true)
      assert.matches("<h2>Saved by hand</h2>", body, 1, true)
      assert.matches("<h2>Outputs</h2>\n<p class=\"note\">none</p>", body, 1, true)
      assert.not_matches("Saved by hand", select(2, fetch(srv, "/steps/" .. steps.load.id)), 1, true)
      local manual = get_json(srv, "/api/versions/" .. note.manual_outputs["note" .. XSS].id)
      assert.same({ "manual", "note" }, { manual.save_type, manual.producer.step })
      assert.equal("step_output", get_json(srv, "/api/versions/" .. ids["rows" .. XSS]).save_type)
      status, body = fetch(srv, "/versions/" .. manual.id)
      assert.matches("<dt>save type</dt><dd>manual</dd>", body, 1, true)
    end)

    it("filters artifact versions by name, tag and type", function()
      assert.equal(1, get_json(srv, "/api/versions?name=analysis").total)
      local tagged = get_json(srv, "/api/versions?tag=" .. XSS:gsub("[^%w]", function(c)
        return string.format("%%%02X", c:byte()) end))
      assert.same({ 1, "rows" .. XSS }, { tagged.total, tagged.items[1].name })
      assert.equal(0, get_json(srv, "/api/versions?type=model").total)
      assert.equal(1, get_json(srv, "/api/versions?name=contains:plot").total)
      local status, body = fetch(srv, "/artifacts?name=analysis&type=data")
      assert.equal(200, status)
      assert.matches(">analysis</a>", body, 1, true)
      assert.not_matches(">performance_plot</a>", body, 1, true)
    end)

    it("gives a version with its metadata, producer, consumers and visualizations", function()
      local v = get_json(srv, "/api/versions/" .. ids["rows" .. XSS])
      assert.same({ XSS }, v.tags)
      assert.equal(XSS, v.run_metadata[XSS])
      assert.equal("load", v.producer.step)
      assert.same({ "clean", "rows" }, { v.consumers[1].step, v.consumers[1].input })
      assert.same({ "html", "csv", "html" }, { v.visualizations[1].type, v.visualizations[2].type,
        v.visualizations[3].type })
      local csv = get_json(srv, "/api/versions/" .. v.id .. "/visualizations/2")
      assert.equal("csv", csv.type)
      assert.equal('n,name\n1,"<script>alert(1)</script>""\'"\n2,b\n', csv.content)
      local g = get_json(srv, "/api/versions/" .. v.id .. "/lineage?direction=downstream")
      assert.equal(v.id, g.root)
      assert.same({ "rows" .. XSS, "clean", "hostile::clean::output" },
        { g.nodes[1].name, g.nodes[2].name, g.nodes[3].name })
    end)

    it("gives each record the shape `--json` gives it, adding only its links and graph", function()
      local function cli(args)
        local out, err, code = H.lupine(home, args .. " --json")
        assert.equal(0, code, err)
        return json(out)
      end
      -- a run described: the dashboard adds its graph (edges, plan, progress, steps' layers)
      local run = get_json(srv, "/api/runs/" .. ids.hostile)
      assert.truthy(run.edges and run.plan and run.progress)
      run.edges, run.plan, run.progress = nil, nil, nil
      for _, step in ipairs(run.steps) do
        assert.equal("number", type(step.layer))
        step.layer = nil
      end
      local described = cli("pipeline runs describe " .. ids.hostile)
      assert.same(described, run)
      assert.equal(7, #run.steps)
      assert.same({ "miss", {} }, { run.steps[1].cache.state, run.steps[1].lookups })
      -- a step run: the run's step, plus where it ran, its logs and metadata
      local step = get_json(srv, "/api/steps/" .. run.steps[1].id)
      assert.same({ run.id, run.name }, { step.run_id, step.run })
      step.run_id, step.run, step.logs, step.run_metadata = nil, nil, nil, nil
      assert.same(described.steps[1], step)
      -- a version described: the dashboard adds its downloads and its visualizations' paths
      local v = get_json(srv, "/api/versions/" .. ids["rows" .. XSS])
      assert.equal("/versions/" .. v.id .. "/value.json", v.downloads.json)
      v.downloads = nil
      for i, viz in ipairs(v.visualizations) do
        assert.equal("/api/versions/" .. v.id .. "/visualizations/" .. i, viz.href)
        viz.href = nil
      end
      assert.same(cli("artifact version describe " .. v.id), v)
      assert.same({ "clean", "table (records)" }, { v.consumers[1].step, v.data_type_label })
      -- the listings' items, by id
      local function by_id(page)
        local out = {}
        for _, item in ipairs(page.items) do out[item.id] = item end
        return out
      end
      for _, pair in ipairs { { "/api/runs", "pipeline runs list" },
          { "/api/versions?size=100", "artifact version list --size 100" },
          { "/api/artifacts", "artifact list" }, { "/api/pipelines", "pipeline list" } } do
        local api, listed = get_json(srv, pair[1]), cli(pair[2])
        assert.equal(api.total, listed.total)
        assert.is_true(#api.items > 0)
        assert.same(by_id(listed), by_id(api))
      end
    end)

    it("answers 404, 405 and 400, never a crash", function()
      local cases = {
        { "/nope", 404 }, { "/../../etc/passwd", 404 }, { "/runs/../catalog.db", 404 },
        { "/versions/" .. string.rep("f", 36), 404 }, { "/runs/not-an-id!", 404 },
        { "/api/versions/" .. ids.analysis .. "/visualizations/9", 404 },
        { "/api/nope", 404 }, { "/api/%FF%00", 404 }, { "/api/runs?page=0", 400 }, { "/api/runs?page=abc", 400 },
        { "/api/runs?status=sleeping", 400 }, { "/api/versions?type=modle", 400 }, { "/api/runs?colour=red", 400 },
        { "/api/runs?page=1&page=2", 400 }, { "/api/versions?name=nope:x", 400 },
        { "/api/versions/" .. ids.analysis .. "/lineage?depth=-1", 400 },
      }
      for _, c in ipairs(cases) do
        local status, body, headers = fetch(srv, c[1])
        assert.equal(c[2], status, c[1])
        if c[1]:find("^/api") then
          local doc = json(body)
          assert.equal(c[2], doc.error.status)
          assert.equal("string", type(doc.error.message))
        else
          assert.equal("text/html; charset=utf-8", headers["content-type"])
        end
      end
      local _, body = fetch(srv, "/api/runs?status=sleeping")
      assert.equal("query parameter 'status' must be running, completed, failed or stopped (got 'sleeping')",
        json(body).error.message)
      for _, m in ipairs { "POST", "PUT", "DELETE" } do
        local status, b, headers = fetch(srv, "/api/runs", m, "-d x=1")
        assert.equal(405, status, m)
        assert.equal("GET, HEAD", headers.allow)
        assert.matches("read%-only", json(b).error.message)
      end
      local status = fetch(srv, "/", "HEAD", "-I")
      assert.equal(200, status)
      -- another name for this machine (DNS rebinding) is refused
      status = fetch(srv, "/api/runs", "GET", "-H 'Host: attacker.example'")
      assert.equal(400, status)
      -- still serving
      assert.equal(200, (fetch(srv, "/api")))
    end)

    it("escapes every catalog string in every page", function()
      local run = get_json(srv, "/api/runs/" .. ids.hostile)
      local paths = { "/", "/artifacts", "/runs/" .. ids.hostile, "/versions/" .. ids["rows" .. XSS],
        "/versions/" .. ids.page, "/artifacts?tag=" .. "%3Cscript%3E" }
      for _, s in ipairs(run.steps) do paths[#paths + 1] = "/steps/" .. s.id end
      for _, path in ipairs(paths) do
        local status, body = fetch(srv, path)
        assert.equal(200, status, path)
        assert.is_nil(body:find("<script", 1, true), path)
        assert.is_nil(body:find("alert(1)</", 1, true), path)
      end
      local _, body = fetch(srv, "/runs/" .. ids.hostile)
      assert.matches("bad data &lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;", body, 1, true)
      _, body = fetch(srv, "/versions/" .. ids.page)
      assert.matches('<iframe class="viz-html" sandbox="" ', body, 1, true)
    end)
  end)

  describe("escaping", function()
    local function enc(s) return (s:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end)) end

    it("escapes every catalog string and query value in search, artifact, pipeline, compare", function()
      local artifact = get_json(srv, "/api/search?q=" .. enc("rows" .. XSS)).artifacts[1]
      assert.equal("rows" .. XSS, artifact.name)
      local pipelines = {}
      for _, p in ipairs(get_json(srv, "/api/pipelines").items) do pipelines[p.name] = p.id end
      local runs = get_json(srv, "/api/runs").items
      local paths = {
        "/search?q=" .. enc(XSS), "/search?q=script", "/search?q=" .. enc("rows<scirpt>"),
        "/search?q=" .. enc("<"), "/artifacts/" .. artifact.id,
        "/artifacts/" .. artifact.id .. "?chosen=1&col=" .. enc(XSS),
        "/pipelines/" .. pipelines.hostile,
        "/compare?v=" .. ids["rows" .. XSS] .. "&v=" .. ids["note" .. XSS],
        "/compare?v=" .. ids.page .. "&v=" .. ids.drawing,
        "/compare?r=" .. runs[1].id .. "&r=" .. runs[2].id,
      }
      for _, path in ipairs(paths) do
        local status, body = fetch(srv, path)
        assert.equal(200, status, path)
        assert.is_nil(body:find("<script", 1, true), path)
        assert.is_nil(body:find("alert(1)</", 1, true), path)
      end
      local _, body = fetch(srv, "/search?q=" .. enc(XSS))
      assert.matches("<h1>Search: &lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;</h1>", body, 1, true)
      assert.matches('value="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;"', body, 1, true)
      -- error pages that repeat what was asked for
      for _, c in ipairs {
        { "/artifacts/" .. artifact.id .. "?chart=" .. enc(XSS), 400 }, { "/search?" .. enc(XSS) .. "=1", 400 },
        { "/compare?v=" .. enc(XSS) .. "&v=x", 404 }, { "/versions/" .. enc(XSS) .. "/value.json", 404 },
        { "/pipelines/" .. enc(XSS), 404 }, { "/artifacts/" .. ids.page, 404 },
      } do
        local status, b, headers = fetch(srv, c[1])
        assert.equal(c[2], status, c[1])
        assert.equal("text/html; charset=utf-8", headers["content-type"])
        assert.is_nil(b:find("<script", 1, true), c[1])
      end
      -- a download's file name keeps nothing that could break its header
      local _, _, headers = fetch(srv, "/versions/" .. ids["rows" .. XSS] .. "/value.json")
      assert.equal('attachment; filename="rows_script_alert_1___script____1.json"', headers["content-disposition"])
    end)
  end)

  describe("in a browser", function()
    local have = chromium()
    local shots = H.build .. "/test-output"

    local function skip()
      if not have then pending("chromium is not installed (make deps installs it)") return true end
    end

    it("shows a run's steps with their statuses, and takes a screenshot", function()
      if skip() then return end
      local dom = browse(srv.url .. "/runs/" .. ids.hostile)
      local nodes = {}
      for g in dom:gmatch('<g class="node".-</g>') do
        local texts = {}
        for t in g:gmatch("<text[^>]*>(.-)</text>") do texts[#texts + 1] = t end
        nodes[texts[1]] = texts[2]
      end
      assert.matches("^completed · ", nodes.load)
      assert.matches("^completed · ", nodes.clean)
      assert.matches("^failed · ", nodes.train)
      assert.matches("^skipped", nodes.evaluate)
      assert.matches("^completed · ", nodes.report)
      assert.matches('<path class="edge"', dom, 1, true)
      assert.matches('<span class="status s%-failed">failed</span>', dom)
      assert.not_matches("<title>PWNED", dom, 1, true)
      os.execute("mkdir -p " .. H.quote(shots))
      local png = shots .. "/ui-run.png"
      os.remove(png)
      browse(srv.url .. "/runs/" .. ids.hostile, png)
      local data = H.read(png)
      assert.equal("\137PNG\r\n\26\n", data:sub(1, 8))
      local width, height = string.unpack(">I4I4", data, 17)
      assert.same({ 1280, 900 }, { width, height })
      print("# screenshot: " .. png)
    end)

    it("shows a table visualization", function()
      if skip() then return end
      local dom = browse(srv.url .. "/versions/" .. ids.analysis)
      assert.matches('<iframe class="viz-html" sandbox="" ', dom, 1, true)
      assert.matches("<th>metric</th><th>value</th>", dom, 1, true)
      assert.matches("<td>precision</td><td>0.93</td>", dom, 1, true)
      browse(srv.url .. "/versions/" .. ids.analysis, shots .. "/ui-table.png")
    end)

    it("shows a plot's SVG inline, so that its <title> tooltips work", function()
      if skip() then return end
      local dom = browse(srv.url .. "/versions/" .. ids.performance_plot)
      local svg = dom:match('<section class="viz" id="viz%-1">.-<div class="viz%-svg">(<svg .-</svg>)</div>')
      assert.is_string(svg)
      assert.matches("<title>Model Performance</title>", svg, 1, true)
      assert.matches("<polyline ", svg, 1, true)
      assert.not_matches("<img", dom, 1, true)
      browse(srv.url .. "/versions/" .. ids.performance_plot, shots .. "/ui-plot.png")
    end)

    it("shows a hostile SVG inline with nothing left that runs, loads or restyles the page", function()
      if skip() then return end
      local dom = browse(srv.url .. "/versions/" .. ids.drawing)
      local svg = dom:match('<div class="viz%-svg">(<svg .-</svg>)</div>')
      assert.is_string(svg)
      assert.matches('<rect id="svg1%-run%-arrow" width="80" height="40" fill="#48c"><title>a bar '
        .. '&lt;script&gt;</title></rect><text x="10" y="80">click</text></svg>$', svg)
      for _, bad in ipairs { "onload", "onclick", "<script", "<style", "javascript:", "<foreignObject",
          "<iframe", "<image", "evil.example", "<a " } do
        assert.not_matches(bad, svg, 1, true)
      end
      assert.matches("<title>drawing:1 · lupine</title>", dom, 1, true)   -- not PWNED
      browse(srv.url .. "/versions/" .. ids.drawing, shots .. "/ui-hostile-svg.png")
    end)

    it("gives a table and its summary frames tall enough for all they hold", function()
      if skip() then return end
      local dom = browse(srv.url .. "/versions/" .. ids.analysis)
      local heights = {}
      for h in dom:gmatch('<iframe class="viz%-html"[^>]- style="height:(%d+)px"') do
        heights[#heights + 1] = tonumber(h)
      end
      assert.equal(2, #heights)   -- the table and its summary (the CSV is no frame)
      -- what each takes, measured in the same browser
      for i, position in ipairs { 1, 3 } do
        local html = get_json(srv, "/api/versions/" .. ids.analysis .. "/visualizations/" .. position).content
        local file = H.tmpdir() .. "/frame.html"
        H.write(file, (html:gsub("</body>", "<script>document.title = 'H=' + Math.ceil("
          .. "document.documentElement.getBoundingClientRect().height)</script></body>")))
        local needed = tonumber(browse("file://" .. file):match("<title>H=(%d+)</title>"))
        assert.is_true(needed > 100, tostring(needed))
        assert.is_true(heights[i] >= needed, string.format("frame %d: %d px for %d px", i, heights[i], needed))
      end
    end)
  end)
end)

-- Three runs of a training pipeline whose outputs change from run to run:
-- rows (a table: rows added and one changed), a model with metadata, a
-- curve (numbers) and per-class scores (a map of numbers); strings with
-- markup in values, tags and names. Then a table of 250 rows, a file and a
-- folder.
local TRAINING = [[
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline
local XSS = ]] .. string.format("%q", XSS) .. [[

local i = tonumber(arg[1])
local prepare = step { name = "prepare", outputs = { "rows" }, function(n)
  local rows = {}
  for k = 1, n do rows[k] = { id = "r" .. k, x = k * 10, label = k % 2 == 0 and "even" or XSS } end
  if n > 3 then rows[2].x = 99 end
  return rows
end }
local train = step { name = "train", outputs = { lupine.ArtifactConfig { name = "trained_model",
    tags = { i == 3 and XSS or "nightly" } }, "curve" }, function(rows, lr)
  local ctx = lupine.get_step_context()
  local acc = ({ 0.75, 0.8, 0.77 })[i]
  ctx:add_output_metadata("trained_model", { accuracy = acc, loss = 1 - acc, optimizer = "adam",
    note = XSS })
  lupine.log_metadata { run = ctx.pipeline_run, metadata = { accuracy = acc, learning_rate = lr } }
  local curve = {}
  for e = 1, 5 do curve[e] = e * i end
  return { weights = { acc, lr } }, curve
end }
local scores = step { name = "scores", outputs = { "per_class" }, function(model)
  return { cat = 0.8 + 0.01 * i, dog = 0.7, [XSS] = 0.5 }
end }
pipeline { name = "training", function()
  local m = train(prepare(2 + i), 0.1 * i)
  scores(m)
end } ()
]]

local FILES = [[
local lupine = require "lupine"
local dir = arg[1]
local big = lupine.step { name = "big", outputs = { "big_table" }, function()
  local rows = {}
  for k = 1, 250 do rows[k] = { n = k, name = "row " .. k } end
  return lupine.table { columns = { "name", "n" }, rows }
end }
local files = lupine.step { name = "files", outputs = { "weights", "report_dir" }, function()
  return lupine.file(dir .. "/weights.bin"), lupine.dir(dir .. "/report")
end }
lupine.pipeline { name = "files", function() big() files() end } ()
]]

describe("lupine ui, finding and comparing", function()
  local home, srv, files_dir
  local function search(q)
    return get_json(srv, "/api/search?q=" .. q:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end))
  end
  local function versions_of(name)
    local a = get_json(srv, "/api/artifacts?name=" .. name).items[1]
    return get_json(srv, "/api/artifacts/" .. a.id), a.id
  end
  setup(function()
    home = H.tmpdir() .. "/home"
    local script = H.script(TRAINING)
    for i = 1, 3 do
      local _, err, code = H.lupine(home, "run " .. H.quote(script) .. " " .. i)
      assert.equal(0, code, err)
    end
    files_dir = H.tmpdir()
    H.write(files_dir .. "/weights.bin", "\0\1\2binary\255")
    os.execute("mkdir -p " .. H.quote(files_dir .. "/report/sub"))
    H.write(files_dir .. "/report/a.txt", "a\n")
    H.write(files_dir .. "/report/sub/b.txt", "b\n")
    local _, err, code = H.lupine(home, "run " .. H.quote(H.script(FILES)) .. " " .. H.quote(files_dir))
    assert.equal(0, code, err)
    srv = start(home)
  end)
  teardown(function()
    if srv then stop(srv) end
  end)

  it("searches by part of a name, in any case, and by near spelling, with suggestions", function()
    local r = search("MODEL")
    assert.same({ "trained_model" }, { r.artifacts[1].name, r.artifacts[2] })
    assert.equal(dkjson.null, r.artifacts[1].near)
    assert.equal(3, r.artifacts[1].version_count)
    local vs = {}
    for i, v in ipairs(r.versions) do vs[i] = v.name .. ":" .. v.version end
    assert.same({ "trained_model:3", "trained_model:2", "trained_model:1" }, vs)
    r = search("trained_modle")   -- two letters swapped
    assert.same({ "trained_model", 1 }, { r.artifacts[1].name, r.artifacts[1].near })
    assert.same({ "trained_model" }, r.suggestions)
    r = search("zzzqqqxxx")
    assert.same({ {}, {}, {}, {}, {}, {}, {} }, { r.artifacts, r.versions, r.runs, r.pipelines, r.tags,
      r.metadata, r.suggestions })
    local status, body = fetch(srv, "/search?q=trained_modle")
    assert.equal(200, status)
    assert.matches('<p class="suggest">Did you mean <a href="/search?q=trained_model">trained_model</a></p>',
      body, 1, true)
    assert.matches('>trained_model</a> <span class="note">(near spelling)</span>', body, 1, true)
    assert.matches("Nothing matches “zzzqqqxxx”", select(2, fetch(srv, "/search?q=zzzqqqxxx")), 1, true)
    -- the box is on every page, suggesting names as one types
    _, body = fetch(srv, "/")
    assert.matches('<form class="search" method="get" action="/search"><input type="search" name="q"', body, 1, true)
    assert.matches('<datalist id="lupine%-names">.-<option value="trained_model">', body)
  end)

  it("searches tags, metadata keys and values, run and pipeline names, ids and name:version", function()
    local r = search("nightly")
    assert.same({ "nightly", 2 }, { r.tags[1].name, r.tags[1].tagged_count })
    r = search("adam")   -- a metadata value
    assert.equal(3, #r.metadata)
    assert.same({ "optimizer", "adam", "artifact_version", "trained_model:v3" }, { r.metadata[1].key,
      r.metadata[1].value, r.metadata[1].on.kind, r.metadata[1].on.label })
    r = search("optimzer")   -- a metadata key, misspelt: its entries
    assert.same({ 3, "optimizer", "adam" }, { #r.metadata, r.metadata[1].key, r.metadata[1].value })
    assert.same({ "optimizer" }, r.suggestions)
    r = search("learning")   -- a metadata key, on runs
    assert.same({ 3, "learning_rate", "pipeline_run" }, { #r.metadata, r.metadata[1].key,
      r.metadata[1].on.kind })
    r = search("trainin")
    assert.same({ "training", 3 }, { r.pipelines[1].name, #r.runs })
    r = search("trained_model:v2")
    assert.same({ "trained_model", "2" }, { r.versions[1].name, r.versions[1].version })
    local run = get_json(srv, "/api/runs?pipeline=training").items[2]
    r = search(run.id:sub(1, 8))
    assert.equal(run.id, r.runs[1].id)
    local status, body = fetch(srv, "/api/search")
    assert.same({ 400, "query parameter 'q' is required" }, { status, json(body).error.message })
    status, body = fetch(srv, "/api/search?q=" .. string.rep("x", 201))
    assert.same({ 400, "query parameter 'q' is longer than 200 bytes" }, { status, json(body).error.message })
  end)

  it("shows an artifact's versions with tags and chosen metadata columns, and a chart of one", function()
    local a, id = versions_of("trained_model")
    assert.same({ "accuracy", "loss", "note", "optimizer" }, a.metadata_keys)
    assert.same({ "accuracy", "loss" }, a.numeric_keys)
    assert.same({ "1", "2", "3" }, { a.versions[1].version, a.versions[2].version, a.versions[3].version })
    assert.same({ 0.75, { "nightly" }, "columns" }, { a.versions[1].run_metadata.accuracy, a.versions[1].tags,
      a.versions[1].data_type })
    local status, body = fetch(srv, "/artifacts/" .. id)
    assert.equal(200, status)
    -- every key a column (there are no more than 6), the first numeric one charted
    assert.matches("<th>producer</th><th>accuracy</th><th>loss</th><th>note</th><th>optimizer</th></tr>", body, 1, true)
    assert.matches('<div class="chart"><svg xmlns="http://www.w3.org/2000/svg" width="640" height="400"'
      .. '.-<title>accuracy across versions</title>', body)
    assert.matches('<input type="checkbox" name="v" value="' .. a.versions[3].id .. '"', body, 1, true)
    -- chosen: only loss, charted
    _, body = fetch(srv, "/artifacts/" .. id .. "?chosen=1&col=loss&chart=loss")
    assert.matches("<th>producer</th><th>loss</th></tr>", body, 1, true)
    assert.matches("<title>loss across versions</title>", body, 1, true)
    assert.matches('<input type="checkbox" name="col" value="loss" checked>', body, 1, true)
    assert.matches('<input type="checkbox" name="col" value="accuracy">', body, 1, true)
    -- none at all
    _, body = fetch(srv, "/artifacts/" .. id .. "?chosen=1")
    assert.matches("<th>producer</th></tr>", body, 1, true)
    assert.not_matches('class="chart"', body, 1, true)
    status, body = fetch(srv, "/artifacts/" .. id .. "?chart=optimizer")
    assert.same({ 400, true }, { status, body:find("query parameter &#39;chart&#39; must be a metadata key "
      .. "whose values are numbers (got &#39;optimizer&#39;)", 1, true) ~= nil })
    assert.equal(404, (fetch(srv, "/artifacts/" .. string.rep("0", 36))))
    assert.equal(404, (fetch(srv, "/api/artifacts/not-an-id!")))
  end)

  it("shows a pipeline's runs with their metadata as columns, and a chart of one", function()
    local pl = get_json(srv, "/api/pipelines?name=training").items[1]
    local p = get_json(srv, "/api/pipelines/" .. pl.id)
    assert.same({ "accuracy", "learning_rate" }, p.metadata_keys)
    assert.equal(3, #p.runs)
    assert.same({ 0.77, 0.30000000000000004 }, { p.runs[1].run_metadata.accuracy,
      p.runs[1].run_metadata.learning_rate })
    local status, body = fetch(srv, "/pipelines/" .. pl.id .. "?chosen=1&col=learning_rate&chart=accuracy")
    assert.equal(200, status)
    assert.matches("<th>tags</th><th>learning_rate</th></tr>", body, 1, true)
    assert.matches("<title>accuracy across runs</title>", body, 1, true)
    assert.matches('<input type="checkbox" name="r" value="' .. p.runs[1].id .. '"', body, 1, true)
  end)

  it("compares versions of a table: rows added and changed, by a key column", function()
    local a = versions_of("rows")
    local v1, v3 = a.versions[1].id, a.versions[3].id
    local c = get_json(srv, "/api/compare?v=" .. v3 .. "&v=" .. v1)   -- oldest first whatever the order
    assert.same({ "1", "3" }, { c.versions[1].version, c.versions[2].version })
    assert.same({ "tables", false }, { c.value.kind, c.value.same })
    local d = c.value.against_first[1]
    assert.equal("id", d.key)
    assert.same({ {}, {}, { "id", "label", "x" } }, { d.columns.added, d.columns.removed, d.columns.common })
    assert.same({ "r4", "r5" }, { d.rows.added[1].at, d.rows.added[2].at })
    assert.same({}, d.rows.removed)
    assert.same({ "r2", { "x" }, 20, 99 }, { d.rows.changed[1].at, d.rows.changed[1].columns,
      d.rows.changed[1].before.x, d.rows.changed[1].after.x })
    assert.equal(2, d.rows.unchanged)
    local status, body = fetch(srv, "/compare?v=" .. v1 .. "&v=" .. v3)
    assert.equal(200, status)
    assert.matches("rows: <b>2 added</b>, <b>0 removed</b>, <b>1 changed</b>, 2 the same (matched by "
      .. "column <code>id</code>)", body, 1, true)
    assert.matches('<tr class="diff"><td>r2</td><td>changed</td><td>r2</td><td>even</td><td><del>20</del>'
      .. "<br><ins>99</ins></td></tr>", body, 1, true)
    assert.matches('<tr class="added"><td>r4</td><td>added</td>', body, 1, true)
    -- by position, when asked
    d = get_json(srv, "/api/compare?v=" .. v1 .. "&v=" .. v3 .. "&key=label").value
    assert.equal(400, (fetch(srv, "/api/compare?v=" .. v1 .. "&v=" .. v3 .. "&key=nope")))
    -- the visualizations side by side
    assert.matches('<h2>Visualizations</h2>\n<div class="grid"><div><h3>rows:v1</h3>.-</div><div><h3>rows:v3</h3>', body)
  end)

  it("compares metadata, arrays of numbers on one chart, and maps of numbers", function()
    local m = versions_of("trained_model")
    local c = get_json(srv, "/api/compare?v=" .. m.versions[1].id .. "&v=" .. m.versions[2].id)
    local md = {}
    for _, row in ipairs(c.run_metadata) do md[row.key] = row end
    assert.same({ { 0.75, 0.8 }, true }, { md.accuracy.values, md.accuracy.differs })
    assert.same({ { "adam", "adam" }, false }, { md.optimizer.values, md.optimizer.differs })
    local curve = versions_of("curve")
    local ids = {}
    for i, v in ipairs(curve.versions) do ids[i] = "v=" .. v.id end
    c = get_json(srv, "/api/compare?" .. table.concat(ids, "&"))
    assert.same({ "numbers", 5, 5, 5 }, { c.value.kind, c.value.against_first[1].length,
      c.value.against_first[1].differing, c.value.against_first[2].differing })
    assert.equal(10, c.value.against_first[2].largest_difference)   -- 15 - 5
    local _, body = fetch(srv, "/compare?" .. table.concat(ids, "&"))
    local chart = body:match('<h2>Value</h2>\n<div class="grid"><div><div class="chart">(<svg .-</svg>)')
    assert.is_string(chart)
    assert.equal(3, select(2, chart:gsub("<polyline ", "")))   -- one line each
    for _, label in ipairs { "curve:v1", "curve:v2", "curve:v3" } do assert.matches(">" .. label .. "<", chart, 1, true) end
    local scores = versions_of("per_class")
    c = get_json(srv, "/api/compare?v=" .. scores.versions[1].id .. "&v=" .. scores.versions[3].id)
    assert.equal("number_map", c.value.kind)
    local keys = {}
    for _, k in ipairs(c.value.keys) do keys[k.key] = k end
    assert.same({ { 0.8 + 0.01, 0.8 + 0.03 }, true }, { keys.cat.values, keys.cat.differs })
    assert.same({ { 0.7, 0.7 }, false }, { keys.dog.values, keys.dog.differs })
  end)

  it("compares runs: steps, parameters, cache status and outputs", function()
    local runs = get_json(srv, "/api/runs?pipeline=training").items
    local c = get_json(srv, "/api/compare?r=" .. runs[1].id .. "&r=" .. runs[3].id)
    assert.same({ runs[3].id, runs[1].id }, { c.runs[1].id, c.runs[2].id })   -- oldest first
    local steps = {}
    for i, s in ipairs(c.steps) do steps[i] = s.name .. ":" .. s.runs[1].status .. "/" .. s.runs[2].cache end
    assert.same({ "prepare:completed/miss", "train:completed/miss", "scores:completed/miss" }, steps)
    local params = {}
    for _, p in ipairs(c.parameters) do params[p.step .. "." .. p.name] = p end
    assert.same({ { 3, 5 }, true }, { params["prepare.n"].values, params["prepare.n"].differs })
    local outs = {}
    for _, o in ipairs(c.outputs) do outs[o.step .. "." .. o.name] = o end
    assert.same({ false, "rows", "1", "3" }, { outs["prepare.rows"].same, outs["prepare.rows"].versions[1].name,
      outs["prepare.rows"].versions[1].version, outs["prepare.rows"].versions[2].version })
    local status, body = fetch(srv, "/compare?r=" .. runs[1].id .. "&r=" .. runs[3].id)
    assert.equal(200, status)
    assert.matches('<tr class="diff"><td>prepare.n</td><td>3</td><td>5</td></tr>', body, 1, true)
    assert.matches("differ · <a href=\"/compare?v=" .. outs["prepare.rows"].versions[1].id, body, 1, true)
    -- two or more, of one kind, at most 8
    local cases = {
      { "/api/compare?v=" .. runs[1].id, "compare takes from 2 to 8 versions (v=ID&v=ID) or runs (r=ID&r=ID) (got 1)" },
      { "/api/compare?v=a&r=b", "compare takes versions (v=) or runs (r=), not both" },
      { "/api/compare?" .. string.rep("r=" .. runs[1].id .. "&", 9), "compare takes from 2 to 8 versions "
        .. "(v=ID&v=ID) or runs (r=ID&r=ID) (got 9)" },
      { "/api/compare?r=" .. runs[1].id .. "&r=" .. runs[2].id .. "&key=id", "query parameter 'key' is for "
        .. "comparing versions' tables" },
    }
    for _, case in ipairs(cases) do
      local s, b = fetch(srv, case[1])
      assert.same({ 400, case[2] }, { s, json(b).error.message })
    end
  end)

  it("downloads a value as JSON and CBOR, a table's CSV whole, a file, a folder as tar", function()
    local rows = versions_of("rows").versions[1]
    local status, body, headers = fetch(srv, "/versions/" .. rows.id .. "/value.json")
    assert.equal(200, status)
    assert.equal('attachment; filename="rows_1.json"', headers["content-disposition"])
    assert.matches("; sandbox$", headers["content-security-policy"])
    assert.equal(H.lupine(home, "artifact export rows:1"), body)
    status, body, headers = fetch(srv, "/versions/" .. rows.id .. "/value.cbor")
    assert.same({ 200, "application/cbor" }, { status, headers["content-type"] })
    assert.equal(H.lupine(home, "artifact export rows:1 --format cbor"), body)
    local big = get_json(srv, "/api/versions?name=big_table").items[1]
    status, body = fetch(srv, "/versions/" .. big.id .. "/value.csv")
    assert.equal(200, status)
    local lines = {}
    for l in body:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.same({ 251, "name,n", "row 250,250" }, { #lines, lines[1], lines[251] })   -- in its order
    local curve = get_json(srv, "/api/versions?name=curve").items[1]
    status, body = fetch(srv, "/versions/" .. curve.id .. "/value.csv")
    assert.equal(404, status)
    assert.matches("artifact version " .. curve.id .. " is not a table (it is number array): it has no CSV",
      body, 1, true)
    local weights = get_json(srv, "/api/versions?name=weights").items[1]
    status, body, headers = fetch(srv, "/versions/" .. weights.id .. "/file")
    assert.same({ 200, "\0\1\2binary\255", 'attachment; filename="weights.bin"', "application/octet-stream" },
      { status, body, headers["content-disposition"], headers["content-type"] })
    assert.equal(404, (fetch(srv, "/versions/" .. weights.id .. "/value.json")))
    assert.equal(404, (fetch(srv, "/versions/" .. rows.id .. "/file")))
    local dir = get_json(srv, "/api/versions?name=report_dir").items[1]
    local tar = H.tmpdir() .. "/report.tar"
    local out = H.sh("curl -s -o " .. H.quote(tar) .. " " .. H.quote(srv.url .. "/versions/" .. dir.id .. "/file")
      .. " && tar -tf " .. H.quote(tar))
    assert.equal("report/\nreport/a.txt\nreport/sub/\nreport/sub/b.txt\n", out)
    -- the version's page links them, and says what the value is
    _, body = fetch(srv, "/versions/" .. big.id)
    assert.matches('<dt>data type</dt><dd>table (records) <span class="note">records</span></dd>', body, 1, true)
    assert.matches('<a href="/versions/' .. big.id .. '/value.csv" download>CSV</a>', body, 1, true)
    _, body = fetch(srv, "/versions/" .. dir.id)
    assert.matches('<dt>data type</dt><dd>folder <span class="note">dir</span></dd>', body, 1, true)
    assert.matches('<a href="/versions/' .. dir.id .. '/file" download>folder (tar)</a>', body, 1, true)
    local v = get_json(srv, "/api/versions/" .. dir.id)
    assert.same({ "/versions/" .. dir.id .. "/file", dkjson.null, "folder" }, { v.downloads.file, v.downloads.json,
      v.data_type_label })
  end)

  it("looks right in a browser: search, an artifact's page, compare", function()
    if not chromium() then pending("chromium is not installed (make deps installs it)") return end
    local shots = H.build .. "/test-output"
    os.execute("mkdir -p " .. H.quote(shots))
    local dom = browse(srv.url .. "/search?q=trained_modle")
    assert.matches('<input type="search" name="q" placeholder="search artifacts, versions, runs, tags, '
      .. 'metadata" list="lupine-names" value="trained_modle"', dom, 1, true)
    browse(srv.url .. "/search?q=model", shots .. "/ui-search.png")
    local a, id = versions_of("trained_model")
    dom = browse(srv.url .. "/artifacts/" .. id)
    local svg = dom:match('<div class="chart">(<svg .-</svg>)</div>')
    assert.matches("<title>accuracy across versions</title>", svg, 1, true)
    assert.equal(3, select(2, svg:gsub("<circle ", "")))   -- a point a version
    browse(srv.url .. "/artifacts/" .. id, shots .. "/ui-artifact.png")
    local rows = versions_of("rows")
    local url = srv.url .. "/compare?v=" .. rows.versions[1].id .. "&v=" .. rows.versions[3].id
    dom = browse(url)
    assert.matches('<tr class="added"><td>r5</td>', dom, 1, true)
    browse(url, shots .. "/ui-compare.png")
    assert.equal(3, #a.versions)
  end)
end)

-- Four steps: fetch, then wait (until the file arg[1] exists), then train,
-- and evaluate taking train's output and fetch's.
local PLANNED = [[
local lupine = require "lupine"
local step = lupine.step
local fetch = step { name = "fetch", enable_cache = false, function() return 1 end }
local wait = step { name = "wait", enable_cache = false, function(x)
  local f
  repeat f = io.open(arg[1]) until f or not os.execute("sleep 0.05")
  return x + 1
end }
local train = step { name = "train", enable_cache = false, function(x) return x * 2 end }
local evaluate = step { name = "evaluate", enable_cache = false, function(x, y) return x + y end }
lupine.pipeline { name = "planned", function()
  local x = fetch()
  evaluate(train(wait(x)), x)
end } ()
]]

describe("lupine ui, starting and stopping", function()
  it("shows every step a running run planned, those yet to start too, and how far it is", function()
    local home = H.tmpdir() .. "/home"
    local go = H.tmpdir() .. "/go"
    local dir = H.tmpdir()
    os.execute("( env -u LD_PRELOAD LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli) .. " run "
      .. H.quote(H.script(PLANNED)) .. " " .. H.quote(go) .. " > /dev/null 2>&1; echo $? > "
      .. H.quote(dir .. "/rc") .. " ) > /dev/null 2>&1 &")
    local srv = start(home)
    local run
    for _ = 1, 400 do
      local status, body = fetch(srv, "/api/runs?status=running")
      local id = status == 200 and json(body).total == 1 and json(body).items[1].id
      run = id and get_json(srv, "/api/runs/" .. id)
      if run and #run.steps == 2 and run.steps[2].status == "running" then break end
      os.execute("sleep 0.05")
    end
    local plan = {}
    for i, p in ipairs(run.plan) do plan[i] = p.name .. ":" .. p.status .. "<" .. table.concat(p.after, ",") end
    assert.same({ "fetch:completed<", "wait:running<fetch", "train:pending<wait", "evaluate:pending<train,fetch" },
      plan)
    assert.equal(dkjson.null, run.plan[3].step_run_id)
    assert.same({ 4, 1, 2 }, { run.progress.planned, run.progress.finished, run.progress.counts.pending })
    local _, page = fetch(srv, "/runs/" .. run.id)
    assert.matches("<dt>steps</dt><dd>4 planned: 1 completed, 1 running, 2 pending</dd>", page, 1, true)
    assert.matches('<progress value="1" max="4"></progress> 1 of 4 finished', page, 1, true)
    assert.matches('<tr><td>train</td><td><span class="status s-pending">pending</span></td>', page, 1, true)
    if chromium() then
      local dom = browse(srv.url .. "/runs/" .. run.id)
      local nodes = {}
      for g in dom:gmatch('<g class="node".-</g>') do
        local texts = {}
        for t in g:gmatch("<text[^>]*>(.-)</text>") do texts[#texts + 1] = t end
        nodes[texts[1]] = texts[2]
      end
      assert.same({ "pending", "pending" }, { nodes.train, nodes.evaluate })
      assert.matches("^running · ", nodes.wait)
      assert.matches('<path class="edge planned"', dom, 1, true)
      local shots = H.build .. "/test-output"
      os.execute("mkdir -p " .. H.quote(shots))
      browse(srv.url .. "/runs/" .. run.id, shots .. "/ui-run-plan.png")
    end
    H.write(go, "")
    for _ = 1, 400 do
      if H.read(dir .. "/rc") then break end
      os.execute("sleep 0.05")
    end
    run = get_json(srv, "/api/runs/" .. run.id)
    assert.same({ "completed", "completed", 4 }, { run.plan[3].status, run.plan[4].status, run.progress.finished })
    -- a run recorded before plans were has none: its steps are all there is
    local _, err, code = H.sqlite(home, "UPDATE pipeline_runs SET plan = NULL")
    assert.equal(0, code, err)
    run = get_json(srv, "/api/runs/" .. run.id)
    assert.same({ dkjson.null, dkjson.null, 4 }, { run.plan, run.progress.planned, run.progress.finished })
    _, page = fetch(srv, "/runs/" .. run.id)
    assert.matches("<dt>steps</dt><dd>4: 4 completed</dd>", page, 1, true)
    assert.equal(0, (stop(srv)))
  end)

  it("refreshes the page of a run that is still going", function()
    local home = H.tmpdir() .. "/home"
    local go = H.tmpdir() .. "/go"
    local dir = H.tmpdir()
    os.execute("( env -u LD_PRELOAD LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli) .. " run "
      .. H.quote(H.script(SLOW)) .. " " .. H.quote(go) .. " > /dev/null 2>&1; echo $? > "
      .. H.quote(dir .. "/rc") .. " ) > /dev/null 2>&1 &")
    local srv = start(home)
    local run
    for _ = 1, 200 do
      local status, body = fetch(srv, "/api/runs?status=running")
      if status == 200 and json(body).total == 1 then run = json(body).items[1]; break end
      os.execute("sleep 0.05")
    end
    assert.is_table(run)
    local _, page = fetch(srv, "/runs/" .. run.id)
    assert.matches('<meta http-equiv="refresh" content="2">', page, 1, true)
    assert.matches("running: this page refreshes every 2 s", page, 1, true)
    H.write(go, "")
    for _ = 1, 200 do
      if H.read(dir .. "/rc") then break end
      os.execute("sleep 0.05")
    end
    _, page = fetch(srv, "/runs/" .. run.id)
    assert.not_matches('http-equiv="refresh"', page, 1, true)
    assert.matches('<span class="status s-completed">completed</span>', page, 1, true)
    local code, out, err = stop(srv)
    assert.same({ 0, "" }, { code, err })
    assert.matches("lupine ui: stopped\n$", out)
  end)

  it("refuses bad options and a port in use", function()
    local home = H.tmpdir() .. "/home"
    local out, err, code = H.lupine(home, "ui --port 70000")
    assert.same({ "", "lupine: ui: option '--port' is at most 65535 (got 70000)\n"
      .. "Try 'lupine ui --help'.\n", 2 }, { out, err, code })
    _, err, code = H.lupine(home, "ui --colour")
    assert.same({ "lupine: ui: unknown option '--colour'\nTry 'lupine ui --help'.\n", 2 }, { err, code })
    -- the one grammar of every command: --opt=value, and near names suggested
    out, err, code = H.lupine(home, "ui --port=x")
    assert.same({ "", "lupine: ui: option '--port' needs a non-negative integer (got 'x')\n"
      .. "Try 'lupine ui --help'.\n", 2 }, { out, err, code })
    _, err, code = H.lupine(home, "ui --prot 1")
    assert.same({ "lupine: ui: unknown option '--prot'; did you mean '--port'?\n"
      .. "Try 'lupine ui --help'.\n", 2 }, { err, code })
    out, _, code = H.lupine(home, "ui --help")
    assert.equal(0, code)
    assert.matches("^usage: lupine ui %[options%]\n", out)
    assert.matches("\n      %-%-port PORT          listen on this port", out)
    local srv = start(home)
    local port = srv.url:match(":(%d+)$")
    out, err, code = H.lupine(home, "ui --port " .. port)
    assert.same({ "", "lupine: ui: cannot listen on 127.0.0.1 port " .. port
      .. " (Address already in use)\n", 1 }, { out, err, code })
    assert.equal(0, (stop(srv)))
  end)
end)

-- Strings a catalog written before keys were checked (or by another tool)
-- might hold: a metadata key that is not UTF-8 (put in with sqlite3), and
-- values with control characters and bytes that are not UTF-8 (allowed).
describe("lupine ui, strings that would break JSON #sqlite", function()
  it("answers valid JSON for every /api/* path", function()
    local home = H.tmpdir() .. "/home"
    local _, err, code = H.lupine(home, "run " .. H.quote(H.script([[
local lupine = require "lupine"
local make = lupine.step { name = "make", outputs = { "odd" }, function(p)
  return { ["\255"] = "\27[31m", text = "bell\7" }
end }
lupine.pipeline { name = "odd_pipe", function() make("\27]0;title\7\255") end } ()
lupine.log_metadata { artifact_name = "odd", metadata = { note = "\27[2J\255", keep = 1 } }
]])))
    assert.equal(0, code, err)
    _, err, code = H.sqlite(home, "UPDATE run_metadata SET key = CAST(X'6B6579FF' AS TEXT) "
      .. "WHERE key = 'keep'")
    assert.equal(0, code, err)
    local srv = start(home)
    local v = get_json(srv, "/api/versions?name=odd").items[1]
    local run = get_json(srv, "/api/runs").items[1]
    local step = get_json(srv, "/api/runs/" .. run.id).steps[1]
    for _, path in ipairs { "/api/versions", "/api/versions/" .. v.id, "/api/runs",
        "/api/runs/" .. run.id, "/api/steps/" .. step.id, "/api/artifacts", "/api/pipelines" } do
      local status, body = fetch(srv, path)
      assert.equal(200, status, path)
      assert.is_true(H.strict_json(body), path .. ": " .. body)
    end
    assert.same({ ["key\u{FFFD}"] = 1, note = { ["$bytes"] = "G1sySv8=" } },
      get_json(srv, "/api/versions/" .. v.id).run_metadata)
    assert.same({ ["$bytes"] = "G10wO3RpdGxlB/8=" }, get_json(srv, "/api/steps/" .. step.id).parameters.p)
    assert.equal(0, (stop(srv)))
  end)
end)

-- Raw HTTP from Python (curl sends one Host header, always): each request
-- on its own connection; prints each answer's status line.
local RAW = [[
import socket, sys
port = int(sys.argv[1])
for req in sys.argv[2:]:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(req.encode().decode("unicode_escape").encode("latin-1"))
    print(s.recv(65536).split(b"\r\n")[0].decode())
    s.close()
]]

-- Slow clients: open N connections (from 127.0.0.1, or each from its own
-- address 127.0.x.y with "spread"), each sending a request it never
-- finishes, then time a request on a new connection; then (with "wait")
-- wait for the server to close every slow one. Prints: status, seconds for
-- the request, how many slow ones the server closed at once (to make room),
-- seconds by which the rest were closed.
local SLOW_CLIENTS = [[
import socket, sys, time
port, n, spread, wait = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "spread", len(sys.argv) > 4
slow = []
for i in range(n):
    s = socket.socket()
    if spread:
        s.bind(("127.0.%d.%d" % (1 + i // 250, 2 + i % 250), 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    slow.append(s)
start = time.monotonic()
time.sleep(0.3)
t = time.monotonic()
status = ""
try:
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    status = c.recv(100).split(b"\r\n")[0].decode()
except OSError:
    pass
took = time.monotonic() - t
def closed(s):
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
at_once = sum(1 for s in slow if closed(s))
left = [s for s in slow if not closed(s)]
while wait and left and time.monotonic() - start < 12:
    time.sleep(0.2)
    left = [s for s in left if not closed(s)]
print("%s|%.3f|%d|%s" % (status, took, at_once, "%.1f" % (time.monotonic() - start) if not left else "never"))
]]

describe("lupine ui, hostile clients", function()
  local home, srv, raw, slow
  setup(function()
    home = H.tmpdir() .. "/home"
    local _, err, code = H.lupine(home, "run examples/quickstart.lua")
    assert.equal(0, code, err)
    raw = H.write(H.tmpdir() .. "/raw.py", RAW)
    slow = H.write(H.tmpdir() .. "/slow.py", SLOW_CLIENTS)
  end)
  teardown(function()
    if srv then stop(srv) end
  end)

  local function statuses(server, requests)
    local args = {}
    for i, r in ipairs(requests) do args[i] = H.quote(r) end
    local out, err, code = H.sh("python3 " .. H.quote(raw) .. " " .. server.port .. " "
      .. table.concat(args, " "))
    assert.equal(0, code, err)
    local got = {}
    for line in out:gmatch("[^\n]+") do got[#got + 1] = line end
    return got
  end

  it("refuses two Host headers, and an HTTP/1.1 request without one", function()
    srv = start(home)
    assert.same({ "HTTP/1.1 400 Bad Request", "HTTP/1.1 400 Bad Request",
      "HTTP/1.1 400 Bad Request", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK" }, statuses(srv, {
      "GET /api HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nHost: evil.example\\r\\n\\r\\n",
      "GET /api HTTP/1.1\\r\\nHost: evil.example\\r\\nhost: 127.0.0.1\\r\\n\\r\\n",
      "GET /api HTTP/1.1\\r\\n\\r\\n",
      "GET /api HTTP/1.0\\r\\n\\r\\n",
      "GET /api HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n" }))
    local status, body = fetch(srv, "/api", "GET", "--http1.1 -H 'Host:'")
    assert.equal(400, status)
    assert.equal("no Host header (HTTP/1.1 requires one)", json(body).error.message)
    assert.equal(0, (stop(srv)))
    srv = nil
  end)

  it("answers under an IP address, localhost or an --allowed-host name only", function()
    srv = start(home, "--allowed-host Dash.Example --allowed-host other.example")
    assert.same({ "HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK",
      "HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request", "HTTP/1.1 400 Bad Request" }, statuses(srv, {
      "GET /api HTTP/1.1\\r\\nHost: dash.example:" .. srv.port .. "\\r\\n\\r\\n",
      "GET /api HTTP/1.1\\r\\nHost: OTHER.example\\r\\n\\r\\n",
      "GET /api HTTP/1.1\\r\\nHost: LOCALHOST\\r\\n\\r\\n",
      "GET /api HTTP/1.1\\r\\nHost: 10.1.2.3:80\\r\\n\\r\\n",
      "GET /api HTTP/1.1\\r\\nHost: [::1]:" .. srv.port .. "\\r\\n\\r\\n",
      "GET /api HTTP/1.1\\r\\nHost: dash.example.evil.example\\r\\n\\r\\n",
      "GET /api HTTP/1.1\\r\\nHost: 127.0.0.1.evil.example\\r\\n\\r\\n" }))
    local status, body = fetch(srv, "/api", "GET", "-H 'Host: evil.example'")
    assert.equal(400, status)
    assert.equal("unexpected Host header 'evil.example' (the dashboard answers under an IP "
      .. "address, localhost, or a name given with --allowed-host)", json(body).error.message)
    assert.equal(0, (stop(srv)))
    srv = nil
  end)

  it("warns when it can be reached from other machines, and checks its options", function()
    srv = start(home, "--host 0.0.0.0")
    assert.equal(400, (fetch(srv, "/api", "GET", "-H 'Host: dash.example'")))
    local code, _, err = stop(srv)
    srv = nil
    assert.equal(0, code)
    assert.matches("^lupine ui: warning: 0%.0%.0%.0:%d+ can be reached from other machines, and "
      .. "the dashboard has no login and no encryption: whoever reaches it reads the whole "
      .. "catalog%. Requests are answered under an IP address, localhost %(add names with "
      .. "%-%-allowed%-host%) only%.\n$", err)
    local _, err2, code2 = H.lupine(home, "ui --allowed-host 'a b'")
    assert.same({ "lupine: ui: option '--allowed-host' takes a host name: letters, digits, '.', "
      .. "'-' and '_' (got 'a b')\nTry 'lupine ui --help'.\n", 2 }, { err2, code2 })
  end)

  it("answers a new request within 1 s with 150 slow connections open, and closes them", function()
    srv = start(home)
    -- all from 127.0.0.1: past 32, each new connection replaces the oldest
    -- of that address that never finished a request
    local out, err, code = H.sh("python3 " .. H.quote(slow) .. " " .. srv.port .. " 150 same wait")
    assert.equal(0, code, err)
    local status, took, at_once, gone = out:match("^(.-)|([%d.]+)|(%d+)|(%S+)\n$")
    assert.equal("HTTP/1.1 200 OK", status, out)
    assert.is_true(tonumber(took) < 1, out)
    assert.is_true(tonumber(at_once) >= 150 - 32, out)
    assert.is_true(gone ~= "never" and tonumber(gone) >= 4 and tonumber(gone) < 10, out)   -- 5 s
    -- 300, each from its own address: past 256 in all, the same
    out, err, code = H.sh("python3 " .. H.quote(slow) .. " " .. srv.port .. " 300 spread")
    assert.equal(0, code, err)
    status, took, at_once = out:match("^(.-)|([%d.]+)|(%d+)|")
    assert.equal("HTTP/1.1 200 OK", status, out)
    assert.is_true(tonumber(took) < 1, out)
    assert.is_true(tonumber(at_once) >= 300 - 256, out)
    assert.equal(200, (fetch(srv, "/api")))
    assert.equal(0, (stop(srv)))
    srv = nil
  end)
end)
