-- SPDX-License-Identifier: MIT
-- "Version Promotion Workflow" of ZenML's artifact guide: a step tags the model
-- of its own run as production when it is good enough. "production" is an
-- exclusive tag: promoting a model takes it off the model promoted before, so
-- nothing demotes by hand and exactly one model is production.
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

-- The tag may exist already (another script tagged something "production"):
-- make it exclusive then, which is refused if two versions of one artifact
-- carry it.
local client = lupine.Client()
local production = client:list_tags { name = "production" }[1]
if not production then
  client:create_tag { name = "production", exclusive = true }
elseif not production.exclusive then
  client:update_tag("production", { exclusive = true })
end

local train_model = step { name = "train_model",
  function(quality) return { weights = { 1, 2, 3 }, quality = quality } end }

local evaluate = step { name = "evaluate", outputs = { "quality_metrics" },
  function(model) return { accuracy = model.quality } end }

local promote_model_to_production = step { name = "promote_model_to_production",
  function(metrics)
    local client = lupine.Client()
    if metrics.accuracy > 0.95 then
      -- the model from this run
      local context = lupine.get_step_context()
      local current_run = context.pipeline_run
      local model_artifact = current_run.steps["train_model"].output
      -- tag it as production
      client:update_artifact_version(model_artifact.id, { tags = { "production", "promoted" } })
      print("Model " .. model_artifact.id .. " promoted to production")
    else
      print("Model did not meet promotion criteria")
    end
  end }

local ml_pipeline = pipeline { name = "promotion", function(quality)
  local model = train_model(quality)
  promote_model_to_production(evaluate(model))
end }

ml_pipeline(0.90)
ml_pipeline(0.97)
local run = ml_pipeline(0.99)
local promoted = client:get_artifact_version(run.steps.train_model.output.id)
print("tags of the promoted model: " .. table.concat(promoted.tags, ", "))
for _, av in ipairs(client:list_artifact_versions { name = "promotion::train_model::output",
    sort_by = "desc:created" }) do
  print(string.format("model v%s (quality %.2f): %s", av.version, av:load().quality,
    table.concat(av.tags, ", ")))
end
