-- SPDX-License-Identifier: MIT
-- "Searching Artifacts" of ZenML's artifact guide: by name, by tag, and with a
-- filter.
local lupine = require "lupine"
local step, pipeline, ArtifactConfig = lupine.step, lupine.pipeline, lupine.ArtifactConfig

local train_model = step { name = "train_model",
  outputs = { ArtifactConfig { name = "churn_model", tags = { "candidate" } } },
  function(seed) return { weights = { seed } } end }
local training = pipeline { name = "train_churn_model", function(seed) train_model(seed) end }
for seed = 1, 3 do training(seed) end
lupine.save_artifact({ rows = 3 }, "churn_model_card")

local client = lupine.Client()
-- mark version 2 as reviewed
client:update_artifact_version("churn_model", "2", { tags = { "reviewed" } })

-- Find artifacts by name pattern
local artifacts = client:list_artifact_versions { name = "contains:churn_model" }
print("name contains 'churn_model': " .. artifacts.total .. " versions")

-- Filter by tags
artifacts = client:list_artifact_versions { tag = "reviewed" }
print("tagged reviewed: " .. artifacts.total)

-- Complex filters
local filter = lupine.ArtifactVersionFilter { name = "churn_model", tag = "reviewed" }
artifacts = client:list_artifact_versions { filter = filter }
for _, artifact in ipairs(artifacts) do
  print(string.format("%s v%s: %s", artifact.name, artifact.version, artifact.id))
end
