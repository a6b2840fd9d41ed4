-- SPDX-License-Identifier: MIT
-- "Naming Artifacts" of ZenML's artifact guide: names from outputs,
-- ArtifactConfig, and dynamic names with placeholders.
local lupine = require "lupine"
local step, pipeline, ArtifactConfig = lupine.step, lupine.pipeline, lupine.ArtifactConfig

-- Step 1: the output's name becomes the artifact name.
local train_model = step { name = "train_model", outputs = { "trained_model" },
  function() return { weights = { 1, 2, 3 } } end }

-- Step 2: ArtifactConfig for more control.
local train_production = step { name = "train_production",
  outputs = { ArtifactConfig { name = "production_model", version = 42,
                               tags = { "production", "v2" } } },
  function() return { weights = { 1, 2, 3 } } end }

-- Step 3: dynamic names, like 'model_20260309_143022'.
local train_dated = step { name = "train_dated",
  outputs = { ArtifactConfig { name = "model_{date}_{time}" } },
  function() return { weights = { 1, 2, 3 } } end }

-- With custom placeholders, like 'model_v2.1_20260309'.
local train_versioned = step { name = "train_versioned",
  substitutions = { model_version = "v2.1" },
  outputs = { ArtifactConfig { name = "model_{model_version}_{date}" } },
  function() return { weights = { 1, 2, 3 } } end }

local naming = pipeline { name = "naming", function()
  train_model()
  train_production()
  train_dated()
  train_versioned()
end }

local run = naming()
for _, s in ipairs { "train_model", "train_production", "train_dated", "train_versioned" } do
  local av = run.steps[s].output
  print(string.format("%-16s -> %s v%s %s", s, av.name, av.version,
    #av.tags > 0 and ("[" .. table.concat(av.tags, ", ") .. "]") or ""))
end
