-- SPDX-License-Identifier: MIT
-- "Artifact Lineage" of ZenML's artifact guide: which step produced an
-- artifact, and which steps, in any run, used it.
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local train_model = step { name = "train_model", outputs = { "recommender" },
  function() return { weights = { 1, 2, 3 } } end }
pipeline { name = "train_recommender", function() train_model() end } ()

local client = lupine.Client()
local evaluate = step { name = "evaluate", outputs = { "recommender_metrics" },
  function(model) return { accuracy = 0.9 + #model.weights / 100 } end }
pipeline { name = "evaluate_recommender", function()
  -- the latest version when evaluate starts, recorded as its input
  evaluate(client:get_artifact_version("recommender"))
end } ()

-- Get an artifact
local artifact = client:get_artifact_version("recommender")

-- Find which step produced it
local producer_step = artifact.producer_step_run
print("Produced by: " .. producer_step.name)
print("In pipeline: " .. producer_step.pipeline_run.pipeline_name)

-- Find which steps consumed it: one query
for _, consumer in ipairs(artifact:consumers()) do
  print(string.format("Consumed by: %s (input '%s') in run %s", consumer.name,
    consumer.input_name, consumer.pipeline_run.name))
end

-- The whole graph, as text
local lineage = client:get_lineage(artifact, { direction = "both" })
print(require("lupine.lineage").format(lineage, "text"))
