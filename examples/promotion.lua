-- SPDX-License-Identifier: MIT
-- The seed's "Version Promotion Workflow": a step tags the model of its own
-- run as production when it is good enough.
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local train_model = step { name = "train_model",
  function(quality) return { weights = { 1, 2, 3 }, quality = quality } end }

local evaluate = step { name = "evaluate", outputs = { "metrics" },
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
local run = ml_pipeline(0.97)
local promoted = lupine.Client():get_artifact_version(run.steps.train_model.output.id)
print("tags of the promoted model: " .. table.concat(promoted.tags, ", "))
