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
pipeline { name = "hostile", tags = { XSS }, function()
  evaluate(train(clean(load())))
  report()
  note()
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

    it("shows a plot's SVG", function()
      if skip() then return end
      local dom = browse(srv.url .. "/versions/" .. ids.performance_plot)
      local b64 = dom:match('<img class="viz%-svg" alt="SVG visualization" src="data:image/svg%+xml;base64,([%w+/=]+)">')
      assert.is_string(b64)
      local svg = H.sh("printf %s " .. H.quote(b64) .. " | base64 -d")
      assert.matches("<title>Model Performance</title>", svg, 1, true)
      assert.matches("<polyline ", svg, 1, true)
      browse(srv.url .. "/versions/" .. ids.performance_plot, shots .. "/ui-plot.png")
    end)
  end)
end)

describe("lupine ui, starting and stopping", function()
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
    assert.same({ "", "lupine: ui: --port takes a number from 0 to 65535 (got '70000')\n"
      .. "Try 'lupine ui --help'.\n", 2 }, { out, err, code })
    _, err, code = H.lupine(home, "ui --colour")
    assert.same({ "lupine: ui: unknown option '--colour'\nTry 'lupine ui --help'.\n", 2 }, { err, code })
    out, _, code = H.lupine(home, "ui --help")
    assert.equal(0, code)
    assert.matches("^usage: lupine ui %[%-%-host HOST%] %[%-%-port PORT%]", out)
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
describe("lupine ui, strings that would break JSON", function()
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
    assert.same({ "lupine: ui: --allowed-host takes a host name: letters, digits, '.', '-' and "
      .. "'_' (got 'a b')\nTry 'lupine ui --help'.\n", 2 }, { err2, code2 })
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
