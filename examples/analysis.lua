-- SPDX-License-Identifier: MIT
-- "Artifact Visualization" of ZenML's artifact guide, first half: a table (the
-- DataFrame of the original) is visualized automatically when it is saved.
--
--   lupine run examples/analysis.lua
--   lupine artifact visualize analysis -o analysis.html
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

-- A map of column names to equal-length columns, as pd.DataFrame({...}) takes
-- them; a list of rows ({ { metric = "accuracy", value = 0.95 }, ... })
-- is visualized the same way.
local analyze_data = step { name = "analyze_data", outputs = { "analysis" }, function()
  return {
    metric = { "accuracy", "precision", "recall" },
    value = { 0.95, 0.93, 0.96 },
  }
end }

pipeline { name = "analysis_pipeline", function() analyze_data() end } ()

-- What was stored with it: an HTML table, a CSV of every row, and a summary
-- of the numeric columns (count, mean, std, min, quartiles, max).
local av = lupine.Client():get_artifact_version("analysis")
for _, v in ipairs(av.visualizations) do
  print(string.format("visualization %d: %s, %d bytes", v.position, v.type, v.size))
end
print(av.visualizations[2]:read())
