-- SPDX-License-Identifier: MIT
-- "Loading Artifacts" of ZenML's artifact guide: from the client, from inside a
-- step, and from earlier pipeline runs.
local lupine = require "lupine"
local step, pipeline, ArtifactConfig = lupine.step, lupine.pipeline, lupine.ArtifactConfig

local function evaluate(model) return model.accuracy end

local train_model = step { name = "train_model", outputs = { "forecaster" },
  function(accuracy) return { accuracy = accuracy } end }
local training = pipeline { name = "train_forecaster",
  function(accuracy) train_model(accuracy) end }

-- A production model to compare against.
lupine.save_artifact({ accuracy = 0.90 }, "production_forecaster")
training(0.80)
local first_run = training(0.93)

-- From the client: the latest version, a given version, or by id.
local client = lupine.Client()
local artifact = client:get_artifact_version("forecaster")
local model = artifact:load()
print("latest forecaster: v" .. artifact.version .. ", accuracy " .. model.accuracy)
artifact = client:get_artifact_version("forecaster", "1")
print("forecaster v1: accuracy " .. artifact:load().accuracy)
artifact = client:get_artifact_version(artifact.id)
print("by id " .. artifact.id .. ": v" .. artifact.version)

-- From inside a step: load another artifact while the step runs.
local compare_models = step { name = "compare_models", outputs = { "comparison" },
  function(current_model)
    local production_artifact = lupine.Client():get_artifact_version("production_forecaster")
    local production_model = production_artifact:load()
    local current, production = evaluate(current_model), evaluate(production_model)
    return { current = current, production = production, improvement = current - production }
  end }
local comparing = pipeline { name = "compare_forecasters", function()
  -- in a body, the latest version is looked up when compare_models starts
  -- (this run's, if a step of it made forecaster)
  compare_models(client:get_artifact_version("forecaster"))
end }
local c = comparing().steps.compare_models.output:load()
print(string.format("comparison: current %.2f, production %.2f, improvement %.2f",
  c.current, c.production, c.improvement))

-- From a previous pipeline run.
local run = client:get_pipeline_run(first_run.name)
model = run.steps["train_model"].outputs["forecaster"]:load()
print("from run " .. run.name .. ": accuracy " .. model.accuracy)
model = run.steps["train_model"].output:load()   -- the only output
print("same, through .output: accuracy " .. model.accuracy)
