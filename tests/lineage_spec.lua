-- SPDX-License-Identifier: MIT
-- Lineage: consumers, get_lineage across runs, and its formats.
local H = require "helper"
local lupine = require "lupine"
local lineage = require "lupine.lineage"
local step, pipeline = lupine.step, lupine.pipeline

local load_data = step { name = "load_data", outputs = { "dataset" },
  function() return { values = { 1, 2, 3 } } end }
local process_data = step { name = "process_data", outputs = { "processed" },
  function(dataset)
    local out = {}
    for i, x in ipairs(dataset.values) do out[i] = x * 2 end
    return out
  end }
local ml = pipeline { name = "ml_pipeline", function() process_data(load_data()) end }
local sum = step("sum", function(xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s
end)

-- Labels of a graph's nodes, and its edges as "from-label -kind:name-> to-label".
local function labels(g)
  local out = {}
  for i, n in ipairs(g.nodes) do out[i] = n.label end
  return out
end
local function edges(g)
  local by, out = {}, {}
  for _, n in ipairs(g.nodes) do by[n.id] = n.label end
  for i, e in ipairs(g.edges) do
    out[i] = by[e.from] .. " -" .. e.kind .. ":" .. tostring(e.name) .. "-> " .. by[e.to]
  end
  return out
end

describe("lineage across two runs", function()
  local client, processed
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
    ml:with_options { run_name = "ml-1" }()
    processed = client:get_artifact_version("processed")
    -- run 2 takes run 1's output as an input
    pipeline { name = "reuse", function() sum(processed) end }:with_options { run_name = "reuse-1" }()
  end)

  it("consumers: the step runs, in any run, that took a version as input", function()
    local consumers = processed:consumers()
    assert.equal(1, #consumers)
    assert.equal("sum", consumers[1].name)
    assert.equal("xs", consumers[1].input_name)
    assert.equal("reuse-1", consumers[1].pipeline_run.name)
    assert.equal(processed.id, consumers[1].inputs.xs.id)
    local dataset = client:get_artifact_version("dataset")
    assert.same({ "process_data" }, { dataset:consumers()[1].name })
    assert.equal(1, #dataset:consumers())
    assert.same({}, client:get_artifact_version("reuse::sum::output"):consumers())
  end)

  it("upstream: producers and their inputs, back to the start", function()
    local g = client:get_lineage("reuse::sum::output", { direction = "upstream" })
    assert.equal(client:get_artifact_version("reuse::sum::output").id, g.root)
    assert.equal("upstream", g.direction)
    assert.is_nil(g.depth)
    assert.same({ "reuse::sum::output:v1", "sum (run reuse-1)", "processed:v1",
      "process_data (run ml-1)", "dataset:v1", "load_data (run ml-1)" }, labels(g))
    assert.same({
      "sum (run reuse-1) -output:output-> reuse::sum::output:v1",
      "processed:v1 -input:xs-> sum (run reuse-1)",
      "process_data (run ml-1) -output:processed-> processed:v1",
      "dataset:v1 -input:dataset-> process_data (run ml-1)",
      "load_data (run ml-1) -output:dataset-> dataset:v1",
    }, edges(g))
    local step_node = g.nodes[2]
    assert.same({ kind = "step_run", id = step_node.id, label = "sum (run reuse-1)", name = "sum",
      step_name = "sum", status = "completed", run_id = client:get_pipeline_run("reuse-1").id,
      run_name = "reuse-1" }, step_node)
    assert.same({ kind = "artifact_version", id = processed.id, label = "processed:v1",
      name = "processed", version = "1" }, g.nodes[3])
  end)

  it("depth counts hops between artifact versions", function()
    local key = "reuse::sum::output"
    assert.same({ "reuse::sum::output:v1" },
      labels(client:get_lineage(key, { direction = "upstream", depth = 0 })))
    assert.same({ "reuse::sum::output:v1", "sum (run reuse-1)", "processed:v1" },
      labels(client:get_lineage(key, { direction = "upstream", depth = 1 })))
    local g2 = client:get_lineage(key, { direction = "upstream", depth = 2 })
    assert.same({ "reuse::sum::output:v1", "sum (run reuse-1)", "processed:v1",
      "process_data (run ml-1)", "dataset:v1" }, labels(g2))
    assert.equal(2, g2.depth)
    assert.equal(6, #client:get_lineage(key, { direction = "upstream", depth = 3 }).nodes)
    assert.equal(6, #client:get_lineage(key, { direction = "upstream", depth = math.huge }).nodes)
    assert.same({ "dataset:v1", "process_data (run ml-1)", "processed:v1" },
      labels(client:get_lineage("dataset", { direction = "downstream", depth = 1 })))
  end)

  it("downstream: consumers and their outputs, across runs", function()
    local g = client:get_lineage("dataset", { direction = "downstream" })
    assert.same({ "dataset:v1", "process_data (run ml-1)", "processed:v1", "sum (run reuse-1)",
      "reuse::sum::output:v1" }, labels(g))
    assert.same({
      "dataset:v1 -input:dataset-> process_data (run ml-1)",
      "process_data (run ml-1) -output:processed-> processed:v1",
      "processed:v1 -input:xs-> sum (run reuse-1)",
      "sum (run reuse-1) -output:output-> reuse::sum::output:v1",
    }, edges(g))
  end)

  it("both (the default): upstream, then downstream, from the root", function()
    local g = client:get_lineage(processed)
    assert.equal("both", g.direction)
    assert.same({ "processed:v1", "process_data (run ml-1)", "dataset:v1", "load_data (run ml-1)",
      "sum (run reuse-1)", "reuse::sum::output:v1" }, labels(g))
    assert.same({
      "process_data (run ml-1) -output:processed-> processed:v1",
      "dataset:v1 -input:dataset-> process_data (run ml-1)",
      "load_data (run ml-1) -output:dataset-> dataset:v1",
      "processed:v1 -input:xs-> sum (run reuse-1)",
      "sum (run reuse-1) -output:output-> reuse::sum::output:v1",
    }, edges(g))
    -- the same graph from an id, an id prefix and the name (latest version)
    assert.same(g, client:get_lineage(processed.id))
    assert.same(g, client:get_lineage(processed.id:sub(1, 8)))
    assert.same(g, client:get_lineage("processed", { direction = "both" }))
    assert.equal(lineage.format(g, "json"), lineage.format(client:get_lineage("processed"), "json"))
  end)

  it("shows a cached step run as a consumer pointing at the version it reused", function()
    pipeline { name = "reuse", function() sum(processed) end }:with_options { run_name = "reuse-2" }()
    local consumers = processed:consumers()
    assert.same({ "completed", "cached" }, { consumers[1].status, consumers[2].status })
    assert.equal([[
processed:v1
  consumed by sum (run reuse-1) [completed] as 'xs'
    output 'output': reuse::sum::output:v1
  consumed by sum (run reuse-2) [cached] as 'xs'
    output 'output': reuse::sum::output:v1 (see above)
]], lineage.format(client:get_lineage(processed, { direction = "downstream" }), "text"))
    -- upstream, a version has one producer: the step run that computed it
    assert.same({ "reuse::sum::output:v1", "sum (run reuse-1)", "processed:v1" },
      labels(client:get_lineage("reuse::sum::output", { direction = "upstream", depth = 1 })))
  end)

  it("a version nothing produced or consumed is a graph of one node", function()
    local av = lupine.save_artifact({ 1 }, "loose")
    local g = client:get_lineage(av)
    assert.same({ "loose:v1" }, labels(g))
    assert.same({}, g.edges)
    assert.equal("loose:v1\n", lineage.format(g, "text"))
  end)

  it("refuses a bad direction, depth or key, naming the value", function()
    assert.equal("get_lineage: direction must be 'upstream', 'downstream' or 'both' (got 'sideways')",
      H.err(function() client:get_lineage("processed", { direction = "sideways" }) end))
    assert.equal("get_lineage: direction must be 'upstream', 'downstream' or 'both' (got 3)",
      H.err(function() client:get_lineage("processed", { direction = 3 }) end))
    assert.equal("get_lineage: depth must be a non-negative integer (got -1)",
      H.err(function() client:get_lineage("processed", { depth = -1 }) end))
    assert.equal("get_lineage: depth must be a non-negative integer (got 1.5)",
      H.err(function() client:get_lineage("processed", { depth = 1.5 }) end))
    assert.equal("get_lineage: depth must be a non-negative integer (got 'deep')",
      H.err(function() client:get_lineage("processed", { depth = "deep" }) end))
    assert.equal("get_lineage: unknown option 'dir'",
      H.err(function() client:get_lineage("processed", { dir = "upstream" }) end))
    assert.equal("bad argument #2 to 'get_lineage' (table expected, got string)",
      H.err(function() client:get_lineage("processed", "upstream") end))
    assert.equal("bad argument #1 to 'get_lineage' (ArtifactVersion or string expected, got nil)",
      H.err(function() client:get_lineage() end))
    assert.equal("artifact 'procesed' not found; did you mean 'processed'?",
      H.err(function() client:get_lineage("procesed") end))
  end)
end)

describe("lineage of a step with several outputs", function()
  before_each(function() H.fresh(lupine) end)

  it("shows a shared producer once and marks it when reached again", function()
    local split = step { name = "split", outputs = { "left", "right" },
      function() return { 1 }, { 2 } end }
    local join = step { name = "join", function(a, b) return a[1] + b[1] end }
    pipeline { name = "diamond", function()
      local l, r = split()
      join(l, r)
    end }:with_options { run_name = "d-1" }()
    local client = lupine.Client()
    local g = client:get_lineage("diamond::join::output", { direction = "upstream" })
    assert.same({ "diamond::join::output:v1", "join (run d-1)", "left:v1", "right:v1",
      "split (run d-1)" }, labels(g))
    assert.same({
      "join (run d-1) -output:output-> diamond::join::output:v1",
      "left:v1 -input:a-> join (run d-1)",
      "right:v1 -input:b-> join (run d-1)",
      "split (run d-1) -output:left-> left:v1",
      "split (run d-1) -output:right-> right:v1",
    }, edges(g))
    assert.equal([[
diamond::join::output:v1
  produced by join (run d-1) [completed] as 'output'
    input 'a': left:v1
      produced by split (run d-1) [completed] as 'left'
    input 'b': right:v1
      produced by split (run d-1) [completed] as 'right' (see above)
]], lineage.format(g, "text"))
    local down = client:get_lineage("left", { direction = "downstream" })
    assert.same({ "left:v1", "join (run d-1)", "diamond::join::output:v1" }, labels(down))
    -- the second input of join is not downstream of 'left'
    assert.same({ "left:v1 -input:a-> join (run d-1)",
      "join (run d-1) -output:output-> diamond::join::output:v1" }, edges(down))
  end)
end)

-- A fixed graph, with a name that needs escaping in every format.
local WEIRD = [[q"uo'te \back <b>&amp; #1 |p| `t` ü]]
local function fixed_graph()
  return {
    root = "v1", direction = "both", depth = nil,
    nodes = {
      { kind = "artifact_version", id = "v1", label = WEIRD .. ":v2", name = WEIRD, version = "2" },
      { kind = "step_run", id = "s1", label = "make (run r-1)", name = "make", step_name = "make",
        status = "completed", run_id = "r1", run_name = "r-1" },
      { kind = "artifact_version", id = "v0", label = "raw:v1", name = "raw", version = "1" },
      { kind = "step_run", id = "s2", label = "use (run r-2)", name = "use", step_name = "use",
        status = "failed", run_id = "r2", run_name = "r-2" },
      { kind = "artifact_version", id = "v3", label = "out:v1", name = "out", version = "1" },
    },
    edges = {
      { from = "s1", to = "v1", kind = "output", name = WEIRD },
      { from = "v0", to = "s1", kind = "input", name = "raw" },
      { from = "v1", to = "s2", kind = "input", name = "x" },
      { from = "s2", to = "v3", kind = "output", name = "output" },
    },
  }
end

describe("lineage formats", function()
  it("text: an indented tree from the root, names quoted and escaped", function()
    assert.equal([[
q"uo'te \back <b>&amp; #1 |p| `t` ü:v2
  produced by make (run r-1) [completed] as 'q"uo\'te \\back <b>&amp; #1 |p| `t` ü'
    input 'raw': raw:v1
  consumed by use (run r-2) [failed] as 'x'
    output 'output': out:v1
]], lineage.format(fixed_graph(), "text"))
    assert.equal(lineage.format(fixed_graph(), "text"), lineage.format(fixed_graph()))
    local up = fixed_graph()
    up.direction = "upstream"
    assert.not_matches("consumed by", lineage.format(up, "text"))
  end)

  it("dot: Graphviz, with quotes, backslashes and '&' escaped", function()
    assert.equal([[
digraph lineage {
  rankdir=LR;
  node [shape=box];
  "v1" [label="q\"uo'te \\back <b>&amp;amp; #1 |p| `t` ü:v2", style=bold];
  "s1" [label="make (run r-1)\n[completed]", shape=ellipse];
  "v0" [label="raw:v1"];
  "s2" [label="use (run r-2)\n[failed]", shape=ellipse, color=red];
  "v3" [label="out:v1"];
  "s1" -> "v1" [label="q\"uo'te \\back <b>&amp;amp; #1 |p| `t` ü"];
  "v0" -> "s1" [label="raw"];
  "v1" -> "s2" [label="x"];
  "s2" -> "v3" [label="output"];
}
]], lineage.format(fixed_graph(), "dot"))
  end)

  it("mermaid: a flowchart, special characters as #code; entities", function()
    assert.equal([[
flowchart LR
  n1["q#34;uo'te #92;back #60;b#62;#38;amp; #35;1 #124;p#124; #96;t#96; ü:v2"]
  n2(["make (run r-1) [completed]"])
  n3["raw:v1"]
  n4(["use (run r-2) [failed]"])
  n5["out:v1"]
  n2 -->|"q#34;uo'te #92;back #60;b#62;#38;amp; #35;1 #124;p#124; #96;t#96; ü"| n1
  n3 -->|"raw"| n2
  n1 -->|"x"| n4
  n4 -->|"output"| n5
]], lineage.format(fixed_graph(), "mermaid"))
  end)

  it("json: stable fields in a fixed order, one node or edge a line", function()
    local out = lineage.format(fixed_graph(), "json")
    assert.equal([[
{
  "root": "v1",
  "direction": "both",
  "depth": null,
  "nodes": [
    {"kind": "artifact_version", "id": "v1", "label": "q\"uo'te \\back <b>&amp; #1 |p| `t` ü:v2", "name": "q\"uo'te \\back <b>&amp; #1 |p| `t` ü", "version": "2", "deleted": null},
    {"kind": "step_run", "id": "s1", "label": "make (run r-1)", "name": "make", "step_name": "make", "status": "completed", "run_id": "r1", "run_name": "r-1"},
    {"kind": "artifact_version", "id": "v0", "label": "raw:v1", "name": "raw", "version": "1", "deleted": null},
    {"kind": "step_run", "id": "s2", "label": "use (run r-2)", "name": "use", "step_name": "use", "status": "failed", "run_id": "r2", "run_name": "r-2"},
    {"kind": "artifact_version", "id": "v3", "label": "out:v1", "name": "out", "version": "1", "deleted": null}
  ],
  "edges": [
    {"from": "s1", "to": "v1", "kind": "output", "name": "q\"uo'te \\back <b>&amp; #1 |p| `t` ü"},
    {"from": "v0", "to": "s1", "kind": "input", "name": "raw"},
    {"from": "v1", "to": "s2", "kind": "input", "name": "x"},
    {"from": "s2", "to": "v3", "kind": "output", "name": "output"}
  ]
}
]], out)
    -- a JSON parser reads the names back exactly
    local file = H.write(os.tmpname(), out)
    local names, _, code = H.sh("python3 -c 'import json,sys; g = json.load(open(sys.argv[1]));"
      .. " sys.stdout.write(g[\"nodes\"][0][\"name\"] + \"|\" + str(g[\"depth\"]))' " .. H.quote(file))
    os.remove(file)
    assert.equal(0, code)
    assert.equal(WEIRD .. "|None", names)
    local g = fixed_graph()
    g.depth, g.edges = 3, {}
    assert.matches('"depth": 3,', lineage.format(g, "json"), 1, true)
    assert.matches('"edges": []\n}', lineage.format(g, "json"), 1, true)
  end)

  it("escapes control characters a catalog written by another tool might hold", function()
    local g = fixed_graph()
    g.nodes[3].label = "a\tb\nc"
    assert.matches("input 'raw': a\\x09b\\x0Ac\n", lineage.format(g, "text"), 1, true)
    assert.matches('[label="a b\\nc"]', lineage.format(g, "dot"), 1, true)
    assert.matches('n3["a#9;b#10;c"]', lineage.format(g, "mermaid"), 1, true)
    assert.matches('"label": "a\\tb\\nc"', lineage.format(g, "json"), 1, true)
  end)

  it("refuses an unknown format or a non-graph", function()
    assert.equal("format: unknown format 'svg' (one of: dot, json, mermaid, text)",
      H.err(function() lineage.format(fixed_graph(), "svg") end))
    assert.equal("bad argument #1 to 'format' (lineage graph expected, got string)",
      H.err(function() lineage.format("graph", "dot") end))
  end)
end)

describe("lineage dot output", function()
  local have_dot = os.execute("command -v dot >/dev/null 2>&1")

  it("renders with `dot -Tsvg` without warnings, names escaped", function()
    if not have_dot then
      pending("Graphviz's dot is not installed (apt-get install graphviz): not rendered")
      return
    end
    H.fresh(lupine)
    local odd = [[odd "name" \ <b>&amp; #1 |p| ü]]
    local make = step { name = "make", outputs = { odd }, function() return { 1 } end }
    local use = step { name = [[use "it" \]], function(x) return x end }
    pipeline { name = "odd", function() use(make()) end }:with_options { run_name = "o-1" }()
    local g = lupine.Client():get_lineage(odd)
    assert.equal(4, #g.nodes)   -- make, its output, use, and its output
    local file = H.write(os.tmpname(), lineage.format(g, "dot"))
    local svg, err, code = H.sh("dot -Tsvg " .. H.quote(file))
    os.remove(file)
    assert.equal(0, code)
    assert.equal("", err)
    -- the label survives as text: SVG escapes it, nothing else changed it
    assert.matches("odd &quot;name&quot; \\ &lt;b&gt;&amp;amp; #1 |p| ü:v1", svg, 1, true)
    assert.matches("use &quot;it&quot; \\ (run o&#45;1)", svg, 1, true)
  end)
end)
