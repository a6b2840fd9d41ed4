-- SPDX-License-Identifier: MIT
-- Tags as objects: create_tag, get_tag, list_tags, update_tag, delete_tag,
-- and exclusive tags, which are on at most one version of each artifact and
-- one run of each pipeline, whatever path adds them; through the Client
-- and through `lupine tag`.
local H = require "helper"
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local train = step { name = "train", outputs = { "model" },
  function(q) return { quality = q } end }
local p = pipeline { name = "p", function(q) train(q) end }

-- The versions of artifact name that carry tag, as "name:version" in order.
local function tagged(client, tag, name)
  local out = {}
  for _, av in ipairs(client:list_artifact_versions { tag = tag, name = name,
      sort_by = "created" }) do
    out[#out + 1] = av.name .. ":" .. av.version
  end
  table.sort(out)
  return out
end

local function runs_tagged(client, tag)
  local out = {}
  for _, r in ipairs(client:list_pipeline_runs { tag = tag }) do out[#out + 1] = r.name end
  table.sort(out)
  return out
end

local function count(home, sql)
  local out, err = H.sqlite(home, sql)
  return assert(tonumber(out), err)
end

describe("exclusive tags", function()
  local home, client
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
    for q = 1, 3 do p(q) end                     -- model:1, model:2, model:3
    lupine.save_artifact({ 1 }, "other")
    lupine.save_artifact({ 2 }, "other")
  end)

  it("move from version to version of an artifact with update_artifact_version", function()
    client:create_tag { name = "production", exclusive = true }
    client:update_artifact_version("model", "1", { add_tags = { "production" } })
    client:update_artifact_version("other", "1", { tags = { "production" } })
    assert.same({ "model:1", "other:1" }, tagged(client, "production"))
    local av = client:update_artifact_version("model", "3", { add_tags = { "production" } })
    assert.same({ "production" }, av.tags)
    -- the other artifact keeps its own
    assert.same({ "model:3", "other:1" }, tagged(client, "production"))
    assert.same({}, client:get_artifact_version("model", "1").tags)
    -- adding it where it already is changes nothing
    client:update_artifact_version("model", "3", { add_tags = { "production" } })
    assert.same({ "model:3", "other:1" }, tagged(client, "production"))
    assert.equal(2, client:get_tag("production").tagged_count)
  end)

  it("an ordinary tag stays on every version it is added to", function()
    client:update_artifact_version("model", "1", { add_tags = { "seen" } })
    client:update_artifact_version("model", "2", { add_tags = { "seen" } })
    assert.same({ "model:1", "model:2" }, tagged(client, "seen"))
    assert.is_false(client:get_tag("seen").exclusive)
  end)

  it("move when a step's ArtifactConfig or add_output_tags puts them on new versions", function()
    client:create_tag { name = "latest", exclusive = true }
    client:create_tag { name = "best", exclusive = true }
    local configured = step { name = "configured",
      outputs = { lupine.ArtifactConfig { name = "scores", tags = { "latest" } } },
      function(q)
        if q > 1 then lupine.get_step_context():add_output_tags { "best" } end
        return { q }
      end }
    local scored = pipeline { name = "scored", function(q) configured(q) end }
    scored(1)
    assert.same({ "scores:1" }, tagged(client, "latest"))
    scored(2)
    scored(3)
    assert.same({ "scores:3" }, tagged(client, "latest"))
    assert.same({ "scores:3" }, tagged(client, "best"))
  end)

  it("move from run to run of a pipeline, and not across pipelines", function()
    client:create_tag { name = "deployed", exclusive = true }
    local a = pipeline { name = "a", tags = { "deployed" }, function(q) train(q) end }
    local b = pipeline { name = "b", function(q) train(q) end }
    a:with_options { run_name = "a-1" }(11)
    a:with_options { run_name = "a-2" }(12)
    b:with_options { run_name = "b-1", tags = { "deployed" } }(13)
    assert.same({ "a-2", "b-1" }, runs_tagged(client, "deployed"))
    b:with_options { run_name = "b-2" }(14)
    client:update_pipeline_run("a-1", { add_tags = { "deployed" } })
    client:update_pipeline_run("b-2", { tags = "deployed" })
    assert.same({ "a-1", "b-2" }, runs_tagged(client, "deployed"))
  end)

  it("move in one transaction: a failed tagging leaves the tag where it was", function()
    client:create_tag { name = "production", exclusive = true }
    client:update_artifact_version("model", "1", { add_tags = { "production" } })
    H.block(home, "INSERT", "tag_links")
    assert.matches("blocked by test", H.err(function()
      client:update_artifact_version("model", "2", { add_tags = { "production" } })
    end))
    assert.same({ "model:1" }, tagged(client, "production"))
  end)

  it("ZenML's promotion workflow needs no demotion", function()
    client:create_tag { name = "production", exclusive = true }
    local evaluate = step { name = "evaluate", outputs = { "metrics" },
      function(model) return { accuracy = model.quality } end }
    local promote = step { name = "promote_model_to_production",
      function(metrics)
        if metrics.accuracy > 0.95 then
          local model = lupine.get_step_context().pipeline_run.steps["train"].output
          lupine.Client():update_artifact_version(model.id, { tags = { "production" } })
        end
      end }
    local ml = pipeline { name = "promotion", function(q) promote(evaluate(train(q))) end }
    for _, q in ipairs { 0.97, 0.90, 0.99 } do ml(q) end
    local list = client:list_artifact_versions { name = "model", tag = "production" }
    assert.equal(1, list.total)
    assert.equal(0.99, list[1]:load().quality)
  end)
end)

describe("tags as objects", function()
  local home, client
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
    for q = 1, 2 do p(q) end
  end)

  it("create_tag, get_tag and list_tags", function()
    local t = client:create_tag { name = "production", exclusive = true }
    assert.same({ "production", true, 0 }, { t.name, t.exclusive, t.tagged_count })
    assert.equal("<Tag production (exclusive, on 0)>", tostring(t))
    client:create_tag { name = "candidate" }
    client:update_artifact_version("model", "1", { add_tags = { "candidate", "auto" } })
    local names = {}
    for i, x in ipairs(client:list_tags()) do
      names[i] = string.format("%s %s %d", x.name, tostring(x.exclusive), x.tagged_count)
    end
    assert.same({ "auto false 1", "candidate false 1", "production true 0" }, names)
    assert.equal(1, #client:list_tags { exclusive = true })
    assert.equal("production", client:list_tags { exclusive = true }[1].name)
    assert.same({ "candidate" }, { client:list_tags { name = "candidate" }[1].name })
    assert.equal("<Tag candidate (on 1)>", tostring(client:get_tag("candidate")))
    assert.equal(1, count(home, "SELECT exclusive FROM tags WHERE name = 'production'"))
  end)

  it("create_tag refuses a tag that exists and bad arguments", function()
    client:create_tag { name = "production" }
    assert.equal("create_tag: tag 'production' already exists",
      H.err(function() client:create_tag { name = "production", exclusive = true } end))
    assert.is_false(client:get_tag("production").exclusive)
    assert.equal("create_tag: missing field 'name'",
      H.err(function() client:create_tag { exclusive = true } end))
    assert.equal("create_tag: unknown option 'color'",
      H.err(function() client:create_tag { name = "x", color = "red" } end))
    assert.equal("create_tag: option 'exclusive' must be a boolean (got string)",
      H.err(function() client:create_tag { name = "x", exclusive = "yes" } end))
    assert.equal("bad argument #1 to 'create_tag' (table expected, got string)",
      H.err(function() client:create_tag("x") end))
    assert.equal("tag name must not be empty", H.err(function() client:create_tag { name = "" } end))
    assert.equal("get_tag: tag 'prodution' not found; did you mean 'production'?",
      H.err(function() client:get_tag("prodution") end))
  end)

  it("update_tag makes a tag exclusive or not, and renames it", function()
    client:update_artifact_version("model", "2", { add_tags = { "prod" } })
    local t = client:update_tag("prod", { exclusive = true, name = "production" })
    assert.same({ "production", true, 1 }, { t.name, t.exclusive, t.tagged_count })
    assert.same({ "production" }, client:get_artifact_version("model", "2").tags)
    client:update_artifact_version("model", "1", { add_tags = { "production" } })
    assert.same({ "model:1" }, tagged(client, "production"))
    t = client:update_tag("production", { exclusive = false })
    assert.is_false(t.exclusive)
    client:update_artifact_version("model", "2", { add_tags = { "production" } })
    assert.same({ "model:1", "model:2" }, tagged(client, "production"))
  end)

  it("update_tag refuses to make exclusive a tag on two versions of an artifact", function()
    client:update_artifact_version("model", "1", { add_tags = { "best" } })
    client:update_artifact_version("model", "2", { add_tags = { "best" } })
    assert.equal("update_tag: tag 'best' cannot be made exclusive: it is on 2 versions of "
      .. "artifact 'model' ('1', '2'); remove it from all but one first",
      H.err(function() client:update_tag("best", { exclusive = true }) end))
    assert.is_false(client:get_tag("best").exclusive)
    -- nor renamed by the same call
    assert.equal("update_tag: tag 'best' cannot be made exclusive: it is on 2 versions of "
      .. "artifact 'model' ('1', '2'); remove it from all but one first",
      H.err(function() client:update_tag("best", { exclusive = true, name = "top" }) end))
    assert.equal("best", client:get_tag("best").name)
    client:update_artifact_version("model", "1", { remove_tags = { "best" } })
    assert.is_true(client:update_tag("best", { exclusive = true }).exclusive)
  end)

  it("update_tag refuses to make exclusive a tag on two runs of a pipeline, or an artifact", function()
    client:update_pipeline_run(client:list_pipeline_runs()[1].name, { add_tags = { "ok" } })
    client:update_pipeline_run(client:list_pipeline_runs()[2].name, { add_tags = { "ok" } })
    local runs = client:list_pipeline_runs { sort_by = "created" }
    assert.equal("update_tag: tag 'ok' cannot be made exclusive: it is on 2 runs of pipeline 'p' ('"
      .. runs[1].name .. "', '" .. runs[2].name .. "'); remove it from all but one first",
      H.err(function() client:update_tag("ok", { exclusive = true }) end))
    client:update_artifact("model", { add_tags = { "family" } })
    assert.equal("update_tag: tag 'family' cannot be made exclusive: it is on artifact 'model' "
      .. "itself, and only artifact versions and pipeline runs take exclusive tags",
      H.err(function() client:update_tag("family", { exclusive = true }) end))
    client:create_tag { name = "solo", exclusive = true }
    assert.equal("update_artifact: tag 'solo' is exclusive: only artifact versions and "
      .. "pipeline runs take it",
      H.err(function() client:update_artifact("model", { add_tags = { "solo" } }) end))
    assert.same({ "family" }, client:update_artifact("model", {}))
  end)

  it("update_tag says what is wrong with its arguments", function()
    client:create_tag { name = "a" }
    client:create_tag { name = "b" }
    assert.equal("update_tag: tag 'b' already exists",
      H.err(function() client:update_tag("a", { name = "b" }) end))
    -- (a one-letter name is near no other: 'c' is no typo of 'a')
    assert.equal("update_tag: tag 'c' not found",
      H.err(function() client:update_tag("c", { exclusive = true }) end))
    assert.equal("update_tag: unknown option 'color'",
      H.err(function() client:update_tag("a", { color = "red" }) end))
    assert.equal("bad argument #2 to 'update_tag' (table expected, got boolean)",
      H.err(function() client:update_tag("a", true) end))
    assert.equal("tag name must be a string (got number)",
      H.err(function() client:update_tag(1, {}) end))
  end)

  it("delete_tag takes the tag off everything", function()
    client:update_artifact_version("model", "1", { add_tags = { "gone", "kept" } })
    client:update_pipeline_run(client:list_pipeline_runs()[1].name, { add_tags = { "gone" } })
    client:delete_tag("gone")
    assert.same({ "kept" }, client:get_artifact_version("model", "1").tags)
    assert.same({}, client:list_pipeline_runs()[1].tags)
    assert.equal(0, count(home, "SELECT count(*) FROM tags WHERE name = 'gone'"))
    assert.equal("delete_tag: tag 'gone' not found",
      H.err(function() client:delete_tag("gone") end))
  end)
end)

describe("lupine tag", function()
  local home
  before_each(function()
    home = H.fresh(lupine)
    for q = 1, 2 do p(q) end
  end)

  local function run(args) return H.lupine(home, args) end

  it("create, list, update and delete, with exact messages", function()
    assert.same({ "created tag 'production' (exclusive)\n", "", 0 },
      { run("tag create production --exclusive") })
    assert.same({ "created tag 'nightly'\n", "", 0 }, { run("tag create nightly") })
    assert.same({ "model:1 tags: production\n", "", 0 },
      { run("artifact version update model:1 -t production") })
    assert.same({ "model:2 tags: production\n", "", 0 },
      { run("artifact version update model:2 -t production") })
    assert.same({ "model:1 tags: (none)\n", "", 0 },
      { run("artifact version update model:1 -t nightly -r nightly") })
    assert.same({ "nightly\t\t0\nproduction\texclusive\t1\n", "", 0 }, { run("tag list") })
    assert.same({ "production\texclusive\t1\n", "", 0 }, { run("tag list --exclusive") })
    assert.same({ '{"items":[{"exclusive":false,"name":"nightly","tagged_count":0}],"total":1}\n',
      "", 0 }, { run("tag list --name nightly --json") })
    assert.same({ "updated tag 'nightly' (exclusive)\n", "", 0 },
      { run("tag update nightly --exclusive") })
    assert.same({ "updated tag 'prod'\n", "", 0 },
      { run("tag update production --non-exclusive --name prod") })
    assert.same({ '{"exclusive":true,"name":"prod","tagged_count":1}\n', "", 0 },
      { run("tag update prod --exclusive --json") })
    assert.same({ "deleted tag 'prod' (it was on 1 object)\n", "", 0 }, { run("tag delete prod") })
    assert.same({ "nightly\texclusive\t0\n", "", 0 }, { run("tag list") })
  end)

  it("is in the help", function()
    local out = run("--help")
    for _, cmd in ipairs { "tag list", "tag create NAME", "tag update NAME", "tag delete NAME" } do
      assert.matches("\n  " .. cmd .. " ", out, 1, true)
    end
    assert.same({ "usage: lupine tag create NAME [options]\n\nCreate a tag.\n\noptions:\n"
      .. "      --exclusive          on one version of each artifact (and run of each\n"
      .. "                           pipeline) at most\n"
      .. "      --json               print JSON (shapes in runtime/README.md)\n"
      .. "  -h, --help               show this help\n", "", 0 }, { run("tag create --help") })
  end)

  it("says what is wrong, with the exit status", function()
    run("artifact version update model:1 -t best")
    run("artifact version update model:2 -t best")
    assert.same({ "", "lupine: update_tag: tag 'best' cannot be made exclusive: it is on 2 "
      .. "versions of artifact 'model' ('1', '2'); remove it from all but one first\n", 1 },
      { run("tag update best --exclusive") })
    assert.same({ "", "lupine: create_tag: tag 'best' already exists\n", 1 },
      { run("tag create best") })
    assert.same({ "", "lupine: delete_tag: tag 'bets' not found; did you mean 'best'?\n", 1 },
      { run("tag delete bets") })
    assert.same({ "", "lupine: tag update: nothing to do: give --exclusive, --non-exclusive or "
      .. "--name NEW\nTry 'lupine tag update --help'.\n", 2 }, { run("tag update best") })
    assert.same({ "", "lupine: tag update: --exclusive and --non-exclusive ask for different "
      .. "things\nTry 'lupine tag update --help'.\n", 2 },
      { run("tag update best --exclusive --non-exclusive") })
    assert.same({ "", "lupine: tag: missing command (one of: list, create, update, delete)\n"
      .. "Try 'lupine tag --help'.\n", 2 }, { run("tag") })
  end)
end)
