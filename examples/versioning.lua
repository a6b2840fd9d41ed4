-- SPDX-License-Identifier: MIT
-- "Artifact Versioning" of ZenML's artifact guide: every run makes a new
-- version.
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local train_model = step { name = "train_model", outputs = { "fraud_model" },
  function(seed) return { weights = { seed, seed * 2 } } end }
local training = pipeline { name = "train_fraud_model", function(seed) train_model(seed) end }
for seed = 1, 3 do training(seed) end

local client = lupine.Client()
local artifact_versions = client:list_artifact_versions { name = "fraud_model" }
for _, version in ipairs(artifact_versions) do
  print(string.format("Version %s: %s", version.version, version.id))
  print(string.format("  Created: %s", version.created))
  print(string.format("  Tags: %s", table.concat(version.tags, ", ")))
end
