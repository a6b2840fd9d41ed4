-- SPDX-License-Identifier: MIT
-- Quickstart: "Understanding Artifacts" of ZenML's artifact guide. Every output
-- of a step becomes a versioned artifact: here 'dataset' and 'processed'.
-- Run it with `lupine run examples/quickstart.lua` (or plain
-- `lua5.4 examples/quickstart.lua` with the module on LUA_CPATH).
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

-- Returns an artifact named 'dataset'.
local load_data = step { name = "load_data", outputs = { "dataset" },
  function() return { values = { 1, 2, 3, 4, 5 } } end }

-- Takes the 'dataset' artifact and produces 'processed'.
local process_data = step { name = "process_data", outputs = { "processed" },
  function(dataset)
    local out = {}
    for i, x in ipairs(dataset.values) do out[i] = x * 2 end
    return out
  end }

local ml_pipeline = pipeline { name = "ml_pipeline", function()
  local dataset = load_data()
  process_data(dataset)
end }

local run = ml_pipeline()

-- What was stored, read back from the catalog.
local client = lupine.Client()
print(string.format("\nrun %s: %s", run.name, run.status))
for _, name in ipairs { "dataset", "processed" } do
  local av = client:get_artifact_version(name)
  print(string.format("  %-10s v%s  %s  %d bytes (%d stored)  by step '%s'", av.name,
    av.version, av.content_hash:sub(1, 19), av.size, av.stored_size,
    av.producer_step_run.name))
end
local processed = client:get_artifact_version("processed"):load()
print("  processed = { " .. table.concat(processed, ", ") .. " }")
print("catalog: " .. lupine.home())
