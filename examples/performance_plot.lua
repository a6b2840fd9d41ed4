-- SPDX-License-Identifier: MIT
-- "Artifact Visualization" of ZenML's artifact guide, second half: a plot.
-- lupine.plot describes it; the description is the artifact's value, and its
-- SVG rendering is stored with it as a visualization.
--
--   lupine run examples/performance_plot.lua
--   lupine ui        (then open the version's page)
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local create_plot = step { name = "create_plot", outputs = { "performance_plot" }, function()
  return lupine.plot { kind = "line", x = { 1, 2, 3, 4 }, y = { 1, 4, 2, 3 },
    title = "Model Performance" }
end }

pipeline { name = "plot_pipeline", function() create_plot() end } ()

local av = lupine.Client():get_artifact_version("performance_plot")
local plot = av:load()
print(string.format("performance_plot v%s: a %s plot, '%s', %d points", av.version, plot.kind,
  plot.title, #plot.y))
local v = av.visualizations[1]
local svg = v:read()
print(string.format("visualization %d: %s, %d bytes, %s", v.position, v.type, v.size,
  svg:match("<title>(.-)</title>")))
