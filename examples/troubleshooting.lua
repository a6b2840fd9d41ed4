-- SPDX-License-Identifier: MIT
-- The seed's "Troubleshooting": finding the right name, and what a failed
-- load says.
local lupine = require "lupine"

lupine.save_artifact({ weights = { 1, 2 } }, "trained_model")
local client = lupine.Client()

-- List all artifacts to find the right name.
for _, artifact in ipairs(client:list_artifact_versions()) do
  print(string.format("%s v%s", artifact.name, artifact.version))
end

-- A wrong name says what it looked for and what is near.
local ok, err = pcall(function()
  local artifact = client:get_artifact_version("trained_modle")
  return artifact:load()
end)
if not ok then
  print("Failed to load artifact: " .. tostring(err))
  print("Catalog: " .. lupine.home())
  print("Artifact store: " .. client.active_stack.artifact_store.name)
end
