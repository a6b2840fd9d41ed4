-- SPDX-License-Identifier: MIT
-- "Artifact Configuration" of ZenML's artifact guide: tags, artifact types and
-- metadata.
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline
local ArtifactConfig, ArtifactType = lupine.ArtifactConfig, lupine.ArtifactType

-- A stand-in for a real trainer: fits y = w * x by least squares.
local function train(learning_rate, epochs)
  local xs, ys, w = { 1, 2, 3, 4 }, { 2.1, 3.9, 6.2, 7.8 }, 0
  for _ = 1, epochs do
    local grad = 0
    for i, x in ipairs(xs) do grad = grad + (w * x - ys[i]) * x end
    w = w - learning_rate * grad / #xs
  end
  return { kind = "linear", w = w }
end

-- Tags for discovery.
local tagged = step { name = "train_tagged",
  outputs = { ArtifactConfig { name = "classifier",
                               tags = { "experiment", "baseline", "rf-classifier" } } },
  function() return train(0.05, 50) end }

-- The semantic type of an artifact.
local typed = step { name = "train_typed",
  outputs = { ArtifactConfig { name = "classifier", artifact_type = ArtifactType.MODEL } },
  function() return train(0.05, 50) end }

local generate_report = step { name = "generate_report",
  outputs = { ArtifactConfig { name = "classifier_report", artifact_type = ArtifactType.DATA } },
  function() return "Model evaluation report: ..." end }

-- Metadata: static values in the ArtifactConfig, values known only while
-- the step runs through its context.
local train_model = step { name = "train_model",
  outputs = { ArtifactConfig { name = "classifier",
                               run_metadata = { framework = "lupine-demo" } } },
  function(learning_rate, epochs)
    local model = train(learning_rate, epochs)
    lupine.get_step_context():add_output_metadata("classifier", {
      learning_rate = learning_rate, epochs = epochs, accuracy = 0.95 })
    return model
  end }

local configured = pipeline { name = "configured", function()
  tagged()
  typed()
  generate_report()
  train_model(0.05, 100)
end }

local run = configured()
local av = run.steps.train_model.output
print(string.format("classifier v%s: type %s, w = %.3f", av.version, av.type, av:load().w))
local keys = {}
for k in pairs(av.run_metadata) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do print("  " .. k .. " = " .. tostring(av.run_metadata[k])) end
print("tags of classifier v1: " .. table.concat(run.steps.train_tagged.output.tags, ", "))
print("report type: " .. run.steps.generate_report.output.type)
