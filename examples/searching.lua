-- SPDX-License-Identifier: MIT
-- The seed's "Searching Artifacts": by name, by tag, and with a filter.
local lupine = require "lupine"
local step, pipeline, ArtifactConfig = lupine.step, lupine.pipeline, lupine.ArtifactConfig

local train_model = step { name = "train_model",
  outputs = { ArtifactConfig { name = "trained_model", tags = { "candidate" } } },
  function(seed) return { weights = { seed } } end }
local training = pipeline { name = "training", function(seed) train_model(seed) end }
for seed = 1, 3 do training(seed) end
lupine.save_artifact({ rows = 3 }, "model_card")

local client = lupine.Client()
-- promote version 2
client:update_artifact_version("trained_model", "2", { tags = { "production" } })

-- Find artifacts by name pattern
local artifacts = client:list_artifact_versions { name = "contains:model" }
print("name contains 'model': " .. artifacts.total .. " versions")

-- Filter by tags
artifacts = client:list_artifact_versions { tag = "production" }
print("tagged production: " .. artifacts.total)

-- Complex filters
local filter = lupine.ArtifactVersionFilter { name = "trained_model", tag = "production" }
artifacts = client:list_artifact_versions { filter = filter }
for _, artifact in ipairs(artifacts) do
  print(string.format("%s v%s: %s", artifact.name, artifact.version, artifact.id))
end
