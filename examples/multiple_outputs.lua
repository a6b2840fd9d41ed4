-- SPDX-License-Identifier: MIT
-- "Multiple Artifacts" of ZenML's artifact guide: one step returns three
-- artifacts, which later steps take one by one.
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local split_and_train = step { name = "split_and_train",
  outputs = { "train_data", "test_data", "model" },
  function()
    local train_data = { X = { { 1, 2 }, { 2, 3 }, { 3, 4 } }, y = { 0, 1, 1 } }
    local test_data = { X = { { 4, 5 }, { 0, 1 } }, y = { 1, 0 } }
    -- "train": a threshold on the feature sum
    local model = { kind = "threshold", threshold = 4 }
    return train_data, test_data, model
  end }

local evaluate = step { name = "evaluate", outputs = { "metrics" },
  function(model, test_data)
    local correct = 0
    for i, x in ipairs(test_data.X) do
      local predicted = (x[1] + x[2] > model.threshold) and 1 or 0
      if predicted == test_data.y[i] then correct = correct + 1 end
    end
    return { accuracy = correct / #test_data.X }
  end }

local generate_report = step { name = "generate_report", outputs = { "report" },
  function(metrics)
    return string.format("Model evaluation report: accuracy %.2f", metrics.accuracy)
  end }

local ml_pipeline = pipeline { name = "ml_pipeline_multi", function()
  local train_data, test_data, model = split_and_train()
  local metrics = evaluate(model, test_data)
  generate_report(metrics)
end }

local run = ml_pipeline()
print(run.steps.generate_report.output:load())
