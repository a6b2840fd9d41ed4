-- SPDX-License-Identifier: MIT
-- "Troubleshooting" of ZenML's artifact guide: finding the right name, and what
-- a failed load says.
local lupine = require "lupine"

lupine.save_artifact({ weights = { 1, 2 } }, "spam_filter")
local client = lupine.Client()

-- List all artifacts to find the right name, with their latest versions
-- (the newest first; list_artifact_versions() lists every version).
for _, artifact in ipairs(client:list_artifacts()) do
  print(string.format("%s v%s", artifact.name, artifact.latest_version.version))
end

-- A wrong name says what it looked for and what is near.
local ok, err = pcall(function()
  local artifact = client:get_artifact_version("spam_fitler")
  return artifact:load()
end)
if not ok then
  print("Failed to load artifact: " .. tostring(err))
  print("Catalog: " .. lupine.home())
  print("Artifact store: " .. client.active_stack.artifact_store.name)
end
